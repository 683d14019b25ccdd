/** The app's areas, in sidebar order. The ids are stable test hooks (nav-<id>, page-<id>). */
export const AREAS = [
  {
    id: 'access',
    label: 'Access',
    description: 'Request just-in-time elevation to a target, for a limited time.',
    group: 'Work',
  },
  {
    id: 'approvals',
    label: 'Approvals',
    description: 'Review and decide on elevation requests from your colleagues.',
    group: 'Work',
  },
  {
    id: 'sessions',
    label: 'Sessions',
    description: 'Open brokered SSH and PostgreSQL sessions under an active grant.',
    group: 'Work',
  },
  {
    id: 'vault',
    label: 'Vault',
    description: 'Shared accounts whose passwords the broker keeps: reveal one under a grant, and watch their rotation.',
    group: 'Work',
  },
  {
    id: 'audit',
    label: 'Audit',
    description: 'Verify the tamper-evident audit trail of this workstation.',
    group: 'Oversight',
  },
  {
    id: 'history',
    label: 'Session history',
    description: 'Browse past sessions and replay their recordings.',
    group: 'Oversight',
  },
  {
    id: 'machines',
    label: 'Machines',
    description: 'Machine identities: who answers for each, how it proves itself, and the risks it carries.',
    group: 'Oversight',
  },
  {
    id: 'keys',
    label: 'Security keys',
    description: 'The hardware keys that prove it is you.',
    group: 'Account',
  },
  {
    id: 'settings',
    label: 'Settings',
    description: 'Which broker this workstation talks to, and how it trusts it.',
    group: 'Account',
  },
] as const;

export type Area = (typeof AREAS)[number];
export type AreaId = Area['id'];

export const DEFAULT_AREA: AreaId = 'access';

export function isAreaId(value: string): value is AreaId {
  return AREAS.some((a) => a.id === value);
}

export function areaById(id: AreaId): Area {
  const area = AREAS.find((a) => a.id === id);
  if (area === undefined) throw new Error(`unknown area ${id}`);
  return area;
}
