/** Client-side checks of elevation form fields: only what the user can fix at a glance. */
import { LIMITS } from '../ipc';

const { justification_min_chars: JUSTIFICATION_MIN, justification_max_chars: JUSTIFICATION_MAX } = LIMITS;

/** What is wrong with a justification (as it will be sent: trimmed), or `null`. Counts Unicode characters like the broker. */
export function checkJustification(text: string): string | null {
  const value = text.trim();
  const chars = [...value].length;
  if (chars === 0) return 'A justification is required.';
  if (/[\r\n]/.test(value)) return 'Keep the justification to one line.';
  if (chars < JUSTIFICATION_MIN) return `At least ${JUSTIFICATION_MIN} characters (${chars} so far).`;
  if (chars > JUSTIFICATION_MAX) return `At most ${JUSTIFICATION_MAX} characters (${chars} now).`;
  return null;
}

function pad(n: number): string {
  return String(n).padStart(2, '0');
}

/** ms since the epoch → the local `YYYY-MM-DDTHH:mm` a datetime-local input takes. */
export function toLocalInput(ms: number): string {
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/**
 * A datetime-local value → ms since the epoch, or `null`. The user names a moment on the
 * calendar; it is sent as is (the broker compares it with its own clock).
 */
export function fromLocalInput(value: string): number | null {
  const match = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?$/.exec(value);
  if (match === null) return null;
  const [y, mo, d, h, mi, s] = match.slice(1).map((part) => Number(part ?? 0)) as [number, number, number, number, number, number];
  const ms = new Date(y, mo - 1, d, h, mi, s).getTime();
  return Number.isNaN(ms) ? null : ms;
}
