/**
 * Time-range filters shared by the History and Audit pages: a preset ("Last 24 hours") or a
 * custom from/until pair of `datetime-local` values.
 */

const HOUR = 3_600_000;

export type RangeId = 'all' | '1h' | '24h' | '7d' | '30d' | 'custom';

export const TIME_RANGES: readonly { id: RangeId; label: string; ms?: number }[] = [
  { id: 'all', label: 'Any time' },
  { id: '1h', label: 'Last hour', ms: HOUR },
  { id: '24h', label: 'Last 24 hours', ms: 24 * HOUR },
  { id: '7d', label: 'Last 7 days', ms: 7 * 24 * HOUR },
  { id: '30d', label: 'Last 30 days', ms: 30 * 24 * HOUR },
  { id: 'custom', label: 'Custom…' },
];

/** The presets `ids` as select options, in the order of `TIME_RANGES`. */
export function rangeOptions(ids: readonly RangeId[]): { value: string; label: string }[] {
  return TIME_RANGES.filter((r) => ids.includes(r.id)).map((r) => ({ value: r.id, label: r.label }));
}

/** A `datetime-local` value as Unix ms, or null when empty or unreadable. */
export function localMs(value: string): number | null {
  if (value === '') return null;
  const ms = new Date(value).getTime();
  return Number.isNaN(ms) ? null : ms;
}

/** A custom range whose end is before its start. */
export function rangeInvalid(range: string, from: string, until: string): boolean {
  if (range !== 'custom') return false;
  const a = localMs(from);
  const b = localMs(until);
  return a !== null && b !== null && a > b;
}

/** The range as query bounds (Unix ms, `null` = open), a preset counted back from `nowMs`. */
export function rangeBounds(
  range: string,
  from: string,
  until: string,
  nowMs: number = Date.now(),
): { from_ms: number | null; until_ms: number | null } {
  const preset = TIME_RANGES.find((r) => r.id === range);
  if (preset?.ms !== undefined) return { from_ms: nowMs - preset.ms, until_ms: null };
  if (range === 'custom') return { from_ms: localMs(from), until_ms: localMs(until) };
  return { from_ms: null, until_ms: null };
}

/** A trimmed text filter, or `null` when blank. */
export function textFilter(value: string): string | null {
  const v = value.trim();
  return v === '' ? null : v;
}

/** "2030-01-02 09:05" (local time); with `seconds`, "2030-01-02 09:05:07". */
export function formatStamp(ms: number, seconds = false): string {
  const d = new Date(ms);
  const pad = (n: number) => String(n).padStart(2, '0');
  const day = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}${seconds ? `:${pad(d.getSeconds())}` : ''}`;
  return `${day} ${time}`;
}
