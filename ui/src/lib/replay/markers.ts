/**
 * Chapters of a replay: the marker events (`[t, "m", label]`) the broker writes into a
 * recording when it decides about a command line, labelled `<decision>: <command line>`
 * (`deny: rm -rf /tmp/x`), already masked by the broker like the rest of the recording.
 *
 * Times follow the player, not the file: the player shortens every pause longer than its idle
 * limit (`IDLE_TIME_LIMIT` in player.ts) to that limit, so a chapter's time is worked out the
 * same way, in milliseconds as the player does, to match the time the player shows. Each
 * chapter keeps its place among the recording's markers, which is how the player seeks to it.
 */

/** The decisions a label can start with; anything else is shown as plain text. */
export const DECISIONS = ['allow', 'warn', 'deny', 'step_up', 'approve', 'flagged'] as const;
export type Decision = (typeof DECISIONS)[number];

/** A decision in words, for the badge. */
export const DECISION_LABEL: Record<Decision, string> = {
  allow: 'allow',
  warn: 'warn',
  deny: 'deny',
  step_up: 'step-up',
  approve: 'approve',
  flagged: 'flagged',
};

export interface Chapter {
  /** The marker's place among the recording's markers, as the player counts them. */
  index: number;
  /** Seconds into the replay, pauses shortened as the player plays them. */
  at: number;
  /** Seconds into the session, as recorded. */
  sessionAt: number;
  /** The decision the label starts with, or `null` when it names none. */
  decision: Decision | null;
  /** The rest of the label (all of it when it names no decision), on one line. */
  text: string;
}

function isDecision(word: string): word is Decision {
  return (DECISIONS as readonly string[]).includes(word);
}

/** Control characters (a newline in a command line, an escape sequence) and the spaces around them as one space. */
function oneLine(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/\s*[\u0000-\u001f\u007f-\u009f][\s\u0000-\u001f\u007f-\u009f]*/g, ' ').trim();
}

/** `deny: rm -rf /tmp/x` → decision `deny`, text `rm -rf /tmp/x`. */
export function splitLabel(label: string): { decision: Decision | null; text: string } {
  const colon = label.indexOf(':');
  const word = colon === -1 ? '' : label.slice(0, colon).trim().toLowerCase();
  if (isDecision(word)) return { decision: word, text: oneLine(label.slice(colon + 1)) };
  return { decision: null, text: oneLine(label) };
}

/**
 * The chapters of `cast` (asciicast v2 text), in order. Reads event lines as the player does
 * (the lines after the header that start with `[`); a line that is not an event is skipped, and
 * so is a marker without a number for its time or text for its label, though it still counts
 * for the places of the others.
 * `idleTimeLimit` is the player's, in seconds (`Infinity`: pauses kept).
 */
export function parseChapters(cast: string, idleTimeLimit: number): Chapter[] {
  const limitMs = idleTimeLimit * 1000;
  const chapters: Chapter[] = [];
  let previousMs = 0;
  let shiftMs = 0;
  let index = 0;
  for (const line of cast.split('\n').slice(1)) {
    if (!line.startsWith('[')) continue;
    let ev: unknown;
    try {
      ev = JSON.parse(line);
    } catch {
      continue;
    }
    if (!Array.isArray(ev)) continue;
    // The player numbers every marker it is given, whatever its time and label.
    const place = ev[1] === 'm' ? index++ : null;
    const time: unknown = ev[0];
    if (typeof time !== 'number' || !Number.isFinite(time)) continue;
    const ms = time * 1000;
    const over = ms - previousMs - limitMs;
    previousMs = ms;
    if (over > 0) shiftMs += over;
    if (place === null || typeof ev[2] !== 'string') continue;
    chapters.push({ index: place, at: (ms - shiftMs) / 1000, sessionAt: time, ...splitLabel(ev[2]) });
  }
  return chapters;
}

/** Seconds → "m:ss", or "h:mm:ss" from an hour; whole seconds, rounded down as the player does. */
export function formatOffset(seconds: number): string {
  const total = Math.max(0, Math.floor(seconds));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const ss = String(total % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}
