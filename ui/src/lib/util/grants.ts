import type { GrantView } from '../ipc';

/** The grant states the broker reports (paw-policy `GrantState`). */
export const GRANT_STATES = [
  'pending',
  'approved',
  'active',
  'expired',
  'revoked',
  'released',
  'denied',
  'cancelled',
] as const;
export type GrantState = (typeof GRANT_STATES)[number];

export const STATE_LABEL: Record<GrantState, string> = {
  pending: 'Pending',
  approved: 'Approved',
  active: 'Active',
  expired: 'Expired',
  revoked: 'Revoked',
  released: 'Released',
  denied: 'Denied',
  cancelled: 'Cancelled',
};

/** Grants that will never give access again. */
const ENDED: ReadonlySet<string> = new Set(['expired', 'revoked', 'released', 'denied', 'cancelled']);

export function isEnded(grant: GrantView): boolean {
  return ENDED.has(grant.state);
}

/** A state's label; a state this UI does not know yet is shown as the broker wrote it. */
export function stateLabel(state: string): string {
  return (STATE_LABEL as Record<string, string>)[state] ?? state;
}

/** "dba on db-prod-1". */
export function grantTitle(grant: Pick<GrantView, 'role' | 'target'>): string {
  return `${grant.role} on ${grant.target}`;
}

/** The live event kinds the core forwards (LiveEvent.kind). */
export const LIVE_EVENT_LABEL: Record<string, string> = {
  request_new: 'New request',
  request_decided: 'Request decided',
  grant_started: 'Access active',
  grant_warning: 'Access ending soon',
  grant_ended: 'Access ended',
  break_glass: 'Break-glass access',
  review_closed: 'Review closed',
};

/** Events that deserve more than a passing glance. */
export const PROMINENT_EVENTS: ReadonlySet<string> = new Set(['grant_warning', 'break_glass']);
