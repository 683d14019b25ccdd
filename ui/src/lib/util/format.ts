import type { BrokerState, BrokerStatus, GrantSummary } from '../ipc';
import { endingSoon } from './grants';

export const BROKER_STATE_LABEL: Record<BrokerState, string> = {
  unconfigured: 'Not configured',
  connected: 'Connected',
  unreachable: 'Unreachable',
  untrusted: 'Untrusted certificate',
  incompatible: 'Incompatible broker',
};

/** "Connected · pawd 0.1.0 · 12 ms"; other states are their label alone. */
export function brokerSummary(broker: BrokerStatus): string {
  const parts: string[] = [BROKER_STATE_LABEL[broker.state]];
  if (broker.state === 'connected') {
    if (broker.version !== null) parts.push(`pawd ${broker.version}`);
    if (broker.latency_ms !== null) parts.push(`${Math.round(broker.latency_ms)} ms`);
  }
  return parts.join(' · ');
}

/** 872_000 → "14:32"; 3_723_000 → "1:02:03". Rounds up so "0:00" only shows at zero. */
export function formatCountdown(ms: number): string {
  const total = Math.max(0, Math.ceil(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const ss = String(s).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

export type GrantLevel = 'ok' | 'warning' | 'danger' | 'expired';

export const DANGER_BELOW_MS = 60_000;

/**
 * How a countdown looks: `warning` while the grant is ending soon (`endingSoon`: the last
 * fifth of `totalMs`, at most 5 minutes; 5 minutes when the total is unknown), `danger` in
 * its last minute.
 */
export function grantLevel(remainingMs: number, totalMs: number | null = null): GrantLevel {
  if (remainingMs <= 0) return 'expired';
  if (remainingMs < DANGER_BELOW_MS) return 'danger';
  if (endingSoon(remainingMs, totalMs)) return 'warning';
  return 'ok';
}

export function grantLabel(grant: GrantSummary): string {
  return `${grant.target} as ${grant.role}`;
}

/** RFC 3339 → a readable local date; the raw value when it does not parse. */
export function formatDate(rfc3339: string): string {
  const date = new Date(rfc3339);
  if (Number.isNaN(date.getTime())) return rfc3339;
  return date.toLocaleDateString(undefined, { year: 'numeric', month: 'short', day: 'numeric' });
}

/** Milliseconds since the epoch → a readable local date. */
export function formatDateMs(ms: number): string {
  const date = new Date(ms);
  if (Number.isNaN(date.getTime())) return '—';
  return date.toLocaleDateString(undefined, { year: 'numeric', month: 'short', day: 'numeric' });
}

/** 5400 → "1 h 30 min"; 90 → "1 min 30 s" (the broker's own words for durations). */
export function formatDuration(secs: number): string {
  const total = Math.max(0, Math.round(secs));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const parts: string[] = [];
  if (h > 0) parts.push(`${h} h`);
  if (m > 0) parts.push(`${m} min`);
  if (s > 0 || parts.length === 0) parts.push(`${s} s`);
  return parts.join(' ');
}

/**
 * A moment (ms since the epoch, by the broker's clock) in local words: the time alone when it
 * falls on the same day as `todayMs`, else the date and the time.
 */
export function formatMomentMs(ms: number, todayMs: number | null = null): string {
  const date = new Date(ms);
  if (Number.isNaN(date.getTime())) return '—';
  const time = date.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
  if (todayMs !== null && new Date(todayMs).toDateString() === date.toDateString()) return time;
  const day = date.toLocaleDateString(undefined, { month: 'short', day: 'numeric' });
  return `${day}, ${time}`;
}

/** "3 min ago", "2 h ago", "4 days ago" from two broker times. */
export function formatAgo(ms: number, nowMs: number): string {
  const secs = Math.max(0, Math.round((nowMs - ms) / 1000));
  if (secs < 60) return 'just now';
  const mins = Math.floor(secs / 60);
  if (mins < 60) return `${mins} min ago`;
  const hours = Math.floor(mins / 60);
  if (hours < 48) return `${hours} h ago`;
  return `${Math.floor(hours / 24)} days ago`;
}

/** "1 approval" / "2 approvals". */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}
