import type { SessionHistoryEntry } from '../ipc';
import { formatDuration } from './format';

/** How a brokered session ended (`SessionHistoryEntry.end_reason`), in words, for labels and the filter. */
export const END_REASONS: readonly { id: string; label: string }[] = [
  { id: 'live', label: 'Still running' },
  { id: 'closed', label: 'Closed by the user' },
  { id: 'target_closed', label: 'Ended on the target' },
  { id: 'grant_ended', label: 'Grant ended' },
  { id: 'revoked', label: 'Grant revoked' },
  { id: 'killed', label: 'Ended by an administrator' },
  { id: 'recording_failed', label: 'Recording failed' },
  { id: 'target_unreachable', label: 'Target unreachable' },
  { id: 'broker_restart', label: 'Broker restarted' },
];

/** `null` is a session still running; an unknown reason is worded from its name. */
export function endReasonLabel(id: string | null): string {
  if (id === null) return 'Running';
  return END_REASONS.find((r) => r.id === id)?.label ?? id.replace(/_/g, ' ');
}

/** The colour of an end reason: running, a normal end, a forced end, or something that went wrong. */
export function endReasonTone(id: string | null): 'live' | 'ok' | 'bad' | 'warn' {
  if (id === null) return 'live';
  if (id === 'closed' || id === 'target_closed' || id === 'grant_ended') return 'ok';
  if (id === 'killed' || id === 'revoked' || id === 'recording_failed') return 'bad';
  return 'warn';
}

/** How long it ran, or "—" while it runs. */
export function sessionDuration(s: Pick<SessionHistoryEntry, 'started_at_ms' | 'ended_at_ms'>): string {
  return s.ended_at_ms === null ? '—' : formatDuration((s.ended_at_ms - s.started_at_ms) / 1000);
}
