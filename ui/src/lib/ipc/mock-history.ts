/**
 * The help-desk half of the fake core (see mock.ts): `session_history` over an in-memory list,
 * filtering like the broker (case-insensitive parts of user and target, exact end reason or
 * `live`, start time in [from, until), newest first), `session_recording` answering
 * asciicast text the broker has already masked, `session_masks` with the broker's default
 * patterns, and a session's files: `session_files` (the list) and `save_session_file` (the
 * core's save of a captured copy into the download directory, which answers with where and
 * the hash, never the bytes). Test and dev use only.
 */
import type {
  ApiError,
  SavedSessionFile,
  SessionFileView,
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

/** A file row with every field filled; `fields` override. A captured copy is whole unless said. */
export function mockSessionFile(fields: Partial<SessionFileView> & { n: number; path: string }): SessionFileView {
  const captured = fields.captured ?? true;
  return {
    direction: 'upload',
    size: 2048,
    sha256: sha(`${fields.n}:${fields.path}`),
    outcome: 'success',
    captured,
    capture_complete: captured,
    at_ms: 0,
    ...fields,
  };
}

/**
 * The files of the default history's SFTP sessions: ada's session on web-1 uploaded a
 * config (kept whole), downloaded a log (kept only in part, cut at the capture limit), and
 * tried a write the rules held and nobody released; dave's killed one moved nothing.
 */
export function defaultSessionFiles(now: number): Record<string, SessionFileView[]> {
  return {
    'se-ada-2': [
      mockSessionFile({ n: 1, path: '/etc/nginx/nginx.conf', size: 2_481, at_ms: now - 90 * MIN }),
      mockSessionFile({
        n: 2,
        path: '/var/log/nginx/error.log',
        direction: 'download',
        size: 91_224_311,
        capture_complete: false,
        at_ms: now - 89 * MIN,
      }),
      mockSessionFile({ n: 3, path: '/etc/shadow', outcome: 'denied', size: 0, sha256: null, captured: false, at_ms: now - 88 * MIN }),
    ],
  };
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
  /** The files of each session, by session id (none when absent). Default: `defaultSessionFiles(Date.now())`. */
  sessionFiles?: Record<string, SessionFileView[]>;
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

type HistoryCommand = 'session_history' | 'session_recording' | 'session_masks' | 'session_files' | 'save_session_file';
const HISTORY_COMMANDS: ReadonlySet<string> = new Set<HistoryCommand>([
  'session_history',
  'session_recording',
  'session_masks',
  'session_files',
  'save_session_file',
]);

/** The mock's download directory, as the core reports saved paths. */
export const MOCK_DOWNLOAD_DIR = '/home/user/Downloads';

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
  /** Each session's files, by session id. */
  files: Record<string, SessionFileView[]>;
  /** `session:n` of copies whose bytes no longer match the broker's SHA-256 (`recording_tampered`). */
  readonly tampered = new Set<string>();
  /** The copies saved, in order, as the core answered (the broker audits each read). */
  readonly saved: SavedSessionFile[] = [];
  /** Names taken in the fake download directory. */
  private readonly downloads = new Set<string>();

  constructor(options: HistoryOptions, seesEveryone: () => boolean) {
    this.sessions = structuredClone(options.history ?? defaultHistory(Date.now()));
    this.masks = structuredClone(options.masks ?? defaultMasks());
    this.files = structuredClone(options.sessionFiles ?? defaultSessionFiles(Date.now()));
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
    if (cmd === 'session_files' || cmd === 'save_session_file') return this.sessionFiles(cmd, i, visible);
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

  /** `session_files` and `save_session_file`, for the sessions the user may see. */
  private sessionFiles(cmd: 'session_files' | 'save_session_file', i: Record<string, unknown>, visible: SessionHistoryEntry[]): unknown {
    const id = typeof i['session_id'] === 'string' ? i['session_id'] : '';
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(id)) throw bad('session_id: not a valid id');
    if (!visible.some((s) => s.id === id)) throw { code: 'not_found', message: 'no such session' } satisfies ApiError;
    const files = this.files[id] ?? [];
    if (cmd === 'session_files') return { session_id: id, files: structuredClone(files) };
    const n = i['n'];
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 1) throw bad('n: a file\'s place in the session, from 1');
    const f = files.find((x) => x.n === n);
    if (f === undefined) throw { code: 'not_found', message: 'no such file in this session' } satisfies ApiError;
    if (!f.captured) throw { code: 'not_found', message: 'no copy of this file was kept' } satisfies ApiError;
    if (this.tampered.has(`${id}:${n}`)) {
      throw { code: 'recording_tampered', message: 'the captured copy no longer matches its SHA-256' } satisfies ApiError;
    }
    // Like the core: the last path component, never over an existing file.
    const base = f.path.split('/').filter((p) => p !== '').pop()?.replace(/^\.+/, '') || 'download';
    const dot = base.lastIndexOf('.');
    const [stem, ext] = dot > 0 ? [base.slice(0, dot), base.slice(dot)] : [base, ''];
    let name = base;
    for (let k = 2; this.downloads.has(name); k++) name = `${stem} (${k})${ext}`;
    this.downloads.add(name);
    const bytes = f.capture_complete ? f.size : Math.min(f.size, 64 * 1024 * 1024);
    const saved: SavedSessionFile = {
      session_id: id,
      n,
      remote_path: f.path,
      local_path: `${MOCK_DOWNLOAD_DIR}/${name}`,
      sha256: f.capture_complete && f.sha256 !== null ? f.sha256 : sha(`copy:${id}:${n}`),
      bytes,
      complete: f.capture_complete,
    };
    this.saved.push(saved);
    return structuredClone(saved);
  }
}
