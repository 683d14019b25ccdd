/**
 * The help-desk half of the fake core (see mock.ts): `session_history` over an in-memory list,
 * filtering like the broker (case-insensitive parts of user and target, exact end reason or
 * `live`, start time in [from, until), newest first), `session_recording` answering
 * asciicast text the broker has already masked, and `session_masks` with the broker's default
 * patterns. Test and dev use only.
 */
import type {
  ApiError,
  SessionHistory,
  SessionHistoryEntry,
  SessionHistoryQuery,
  SessionMasks,
  SessionRecording,
} from './bindings';
import { LIMITS } from './limits';

const MIN = 60_000;
const MAX_LIMIT = LIMITS.history_page_max;

/** An entry with every field filled; `fields` override. */
export function mockHistoryEntry(fields: Partial<SessionHistoryEntry> & { id: string }): SessionHistoryEntry {
  return {
    grant_id: `gr-${fields.id}`,
    user: 'dave',
    target_kind: 'ssh',
    target: 'app-prod-3',
    role: 'root',
    started_at_ms: 0,
    ended_at_ms: null,
    end_reason: null,
    recording_sha256: null,
    has_recording: false,
    ...fields,
  };
}

function sha(seed: string): string {
  let h = 2166136261;
  for (const ch of seed) h = Math.imul(h ^ ch.charCodeAt(0), 16777619) >>> 0;
  return h.toString(16).padStart(8, '0').repeat(8);
}

/** A small organisation's week: SSH sessions with recordings, a database session, a kill, a live one. */
export function defaultHistory(now: number): SessionHistoryEntry[] {
  const ended = (id: string, user: string, target: string, startMinsAgo: number, mins: number, reason: string, extra: Partial<SessionHistoryEntry> = {}) =>
    mockHistoryEntry({
      id,
      user,
      target,
      started_at_ms: now - startMinsAgo * MIN,
      ended_at_ms: now - (startMinsAgo - mins) * MIN,
      end_reason: reason,
      recording_sha256: sha(id),
      has_recording: true,
      ...extra,
    });
  return [
    mockHistoryEntry({ id: 'se-live-1', user: 'dave', target: 'app-prod-3', started_at_ms: now - 4 * MIN }),
    ended('se-ada-2', 'ada', 'web-1', 95, 12, 'closed'),
    ended('se-eve-1', 'eve', 'db-prod-1', 6 * 60, 40, 'grant_ended', {
      target_kind: 'postgres',
      role: 'dba',
      recording_sha256: null,
      has_recording: false,
    }),
    ended('se-dave-0', 'dave', 'app-prod-3', 26 * 60, 7, 'killed'),
    ended('se-ada-1', 'ada', 'web-1', 3 * 24 * 60, 25, 'target_closed'),
  ];
}

/**
 * An asciicast v2 recording with a prompt, commands, a masked secret and the broker's markers
 * (chapters) for its decisions: one masked like the input it names, one after a long pause
 * (12:00 into the session, 0:03 into the replay, which shortens pauses to 2 s).
 */
export function mockCast(title = 'root@web-1 (ada)'): string {
  const lines = [
    JSON.stringify({ version: 2, width: 80, height: 24, timestamp: 1_767_000_000, title, env: { TERM: 'xterm-256color' } }),
    JSON.stringify([0.1, 'o', 'root@web-1:~# ']),
    JSON.stringify([0.9, 'i', 'systemctl restart worker\r']),
    JSON.stringify([0.9, 'm', 'warn: systemctl restart worker']),
    JSON.stringify([1.0, 'o', 'systemctl restart worker\r\nroot@web-1:~# ']),
    JSON.stringify([1.6, 'i', 'export TOKEN=••••\r']),
    JSON.stringify([1.6, 'm', 'flagged: export TOKEN=••••']),
    JSON.stringify([1.7, 'o', 'export TOKEN=••••\r\nroot@web-1:~# ']),
    JSON.stringify([720.0, 'i', 'rm -rf /var/lib/worker\r']),
    JSON.stringify([720.0, 'm', 'deny: rm -rf /var/lib/worker']),
    JSON.stringify([720.1, 'o', 'rm -rf /var/lib/worker\r\npaw: command refused: rm is denied\r\nroot@web-1:~# ']),
    JSON.stringify([721.4, 'i', 'exit\r']),
  ];
  return `${lines.join('\n')}\n`;
}

/**
 * The broker's default `[sessions] mask` patterns (crates/paw-broker/src/config/masks.rs,
 * `DEFAULT_MASKS`), as `GET /v1/sessions/masks` reports them when the config says nothing.
 */
export const DEFAULT_MASK_PATTERNS: readonly string[] = [
  String.raw`(?i)\b(?:token|password|passwd|secret|api[_-]?key)=\S+`,
  String.raw`\bAKIA[0-9A-Z]{16}\b`,
  String.raw`(?i)aws_secret_access_key\s*[=:]\s*\S+`,
  String.raw`(?i)authorization:\s*bearer\s+\S+`,
  String.raw`-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----`,
];

/** What the broker answers with no `[sessions] mask` in its config. */
export function defaultMasks(): SessionMasks {
  return { patterns: [...DEFAULT_MASK_PATTERNS], default: true, replacement: '••••' };
}

export interface HistoryOptions {
  /** The broker's session history. Default: `defaultHistory(Date.now())`. */
  history?: SessionHistoryEntry[];
  /** What `session_masks` answers. Default: `defaultMasks()`. */
  masks?: SessionMasks;
}

function bad(message: string): ApiError {
  return { code: 'bad_request', message };
}

function input(args: unknown): Record<string, unknown> {
  const i = (args as { input?: unknown } | null)?.input;
  if (typeof i !== 'object' || i === null) throw bad('input: missing');
  return i as Record<string, unknown>;
}

function text(v: unknown): string {
  return typeof v === 'string' ? v.trim().toLowerCase() : '';
}

type HistoryCommand = 'session_history' | 'session_recording' | 'session_masks';
const HISTORY_COMMANDS: ReadonlySet<string> = new Set<HistoryCommand>(['session_history', 'session_recording', 'session_masks']);

export class HistoryModel {
  sessions: SessionHistoryEntry[];
  /** Whether the signed-in user reads everyone's history (help-desk or administrator). */
  private readonly seesEveryone: () => boolean;
  /** Casts by session id; a session without one gets `mockCast()`. */
  readonly casts = new Map<string, string>();
  /** Per command, an error its next call rejects with. */
  private readonly failures = new Map<string, unknown>();
  /** Session ids whose recordings were replayed, in order (the broker audits each). */
  readonly replayed: string[] = [];
  /** What `session_masks` answers (the broker's `[sessions] mask`). */
  masks: SessionMasks;

  constructor(options: HistoryOptions, seesEveryone: () => boolean) {
    this.sessions = structuredClone(options.history ?? defaultHistory(Date.now()));
    this.masks = structuredClone(options.masks ?? defaultMasks());
    this.seesEveryone = seesEveryone;
  }

  /** The next `cmd` rejects with `failure`. */
  fail(cmd: HistoryCommand, failure: unknown): void {
    this.failures.set(cmd, failure);
  }

  /** Answers a history command, or `undefined` for any other command. */
  handle(cmd: string, args: unknown, requireUser: () => string): unknown {
    if (!HISTORY_COMMANDS.has(cmd)) return undefined;
    const me = requireUser();
    const failure = this.failures.get(cmd);
    if (failure !== undefined) {
      this.failures.delete(cmd);
      throw failure;
    }
    // Any signed-in user may read the patterns; there is no input.
    if (cmd === 'session_masks') return structuredClone(this.masks);
    const i = input(args);
    const visible = this.sessions.filter((s) => this.seesEveryone() || s.user === me);
    if (cmd === 'session_recording') {
      const id = typeof i['session_id'] === 'string' ? i['session_id'] : '';
      const s = visible.find((x) => x.id === id);
      if (s === undefined) throw { code: 'not_found', message: 'no such session' } satisfies ApiError;
      if (s.ended_at_ms === null) throw { code: 'conflict', message: 'the session is still running' } satisfies ApiError;
      if (!s.has_recording || s.recording_sha256 === null) {
        throw { code: 'not_found', message: 'this session has no recording' } satisfies ApiError;
      }
      this.replayed.push(id);
      const cast = this.casts.get(id) ?? mockCast(`${s.role}@${s.target} (${s.user})`);
      const answer: SessionRecording = { session_id: id, sha256: s.recording_sha256, masked: (cast.match(/••••/g) ?? []).length, cast };
      return answer;
    }
    const q = i as unknown as SessionHistoryQuery;
    const limit = q.limit ?? 50;
    const offset = q.offset ?? 0;
    if (limit < 1 || limit > MAX_LIMIT) throw bad(`limit: 1 to ${MAX_LIMIT}`);
    if (q.from_ms != null && q.until_ms != null && q.from_ms > q.until_ms) throw bad('until_ms: the end of the range is before its start');
    const user = text(q.user);
    const target = text(q.target);
    const reason = text(q.reason);
    const all = visible
      .filter(
        (s) =>
          (user === '' || s.user.toLowerCase().includes(user)) &&
          (target === '' || s.target.toLowerCase().includes(target)) &&
          (reason === '' || (reason === 'live' ? s.ended_at_ms === null : s.end_reason === reason)) &&
          (q.from_ms == null || s.started_at_ms >= q.from_ms) &&
          (q.until_ms == null || s.started_at_ms < q.until_ms),
      )
      .sort((a, b) => b.started_at_ms - a.started_at_ms || (a.id < b.id ? 1 : -1));
    const page: SessionHistory = {
      sessions: structuredClone(all.slice(offset, offset + limit)),
      offset,
      has_more: all.length > offset + limit,
    };
    return page;
  }
}
