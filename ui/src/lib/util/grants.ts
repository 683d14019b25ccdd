import type { GrantView, LiveEvent } from '../ipc';

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
  command_held: 'Command held',
  command_decided: 'Held command decided',
  vault_rotated: 'Secret rotated',
  vault_rotation_failed: 'Rotation failed',
};

/** Events that deserve more than a passing glance. */
export const PROMINENT_EVENTS: ReadonlySet<string> = new Set(['grant_warning', 'break_glass', 'command_held', 'vault_rotation_failed']);

/**
 * When a grant counts as "ending soon": in the last fifth of its whole duration, and never
 * earlier than 5 minutes before its end. A 5-minute grant warns in its last minute, a
 * 1-hour or 8-hour grant in its last 5 minutes. (A flat 5 minutes made a 5-minute grant
 * "end soon" the moment it started.)
 */
export const WARNING_FRACTION = 0.2;
export const WARNING_CAP_MS = 5 * 60_000;

/** How long before its end a grant of `totalMs` starts to warn; the cap when the total is unknown. */
export function warningWindowMs(totalMs: number | null | undefined): number {
  if (totalMs === null || totalMs === undefined || !Number.isFinite(totalMs) || totalMs <= 0) return WARNING_CAP_MS;
  return Math.min(totalMs * WARNING_FRACTION, WARNING_CAP_MS);
}

/**
 * The one rule: a grant with `remainingMs` left of `totalMs` is ending soon (the boundary
 * itself included). Over means ended, not soon.
 */
export function endingSoon(remainingMs: number, totalMs: number | null | undefined): boolean {
  return remainingMs > 0 && remainingMs <= warningWindowMs(totalMs);
}

/** A grant's whole duration in ms (what it was granted for), or `null` when unknown. */
export function grantTotalMs(grant: Pick<GrantView, 'duration_secs'> | null | undefined): number | null {
  if (grant === null || grant === undefined || !(grant.duration_secs > 0)) return null;
  return grant.duration_secs * 1000;
}

/** The whole duration of the grant `id` in `grants`, or `null` when it is not among them. */
export function grantTotalMsById(grants: readonly GrantView[] | null, id: string | null | undefined): number | null {
  if (id === null || id === undefined) return null;
  return grantTotalMs(grants?.find((g) => g.id === id));
}

/**
 * Whether a live event deserves a toast now. The broker sends `grant_warning` 5 minutes and
 * 1 minute before a grant ends, whatever its length; a warning that comes before the grant's
 * own warning window (`endingSoon`, measured at the event's time) is not shown. Unknown grants
 * keep the broker's word.
 */
export function announceLiveEvent(event: LiveEvent, grants: readonly GrantView[] | null): boolean {
  if (event.kind !== 'grant_warning') return true;
  const grant = grants?.find((g) => g.id === event.grant_id);
  if (grant === undefined || grant.ends_at_ms === null) return true;
  return endingSoon(grant.ends_at_ms - event.at_ms, grantTotalMs(grant));
}
