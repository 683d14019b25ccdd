/**
 * The sessions half of the fake core (see mock.ts): session step-ups on active grants, SSH
 * terminals whose output goes through a Tauri channel, local PostgreSQL ports, the live
 * session list and an administrator's kill. Test and dev use only.
 *
 * The terminal is a toy shell: it echoes what is typed, answers `whoami\r` with the grant's
 * role, holds `rm …` and `shutdown …` lines for a decision (mock-holds.ts), and can be ended
 * with any reason (`end`), or warned (`warn`), from a test.
 *
 * Watching (live oversight): an administrator may watch anyone else's live SSH session; anyone
 * else those stored with `may_watch: true` (the mock's stand-in for "the signed-in user approves
 * this session's entitlement"), which the live list then shows them too. A watch starts with
 * the current screen; a test plays the watched user's side with `watchOutput`, `watchResize`,
 * `watchRestart` (the broker's redraw after lag) and ends the session with `end`.
 */
import type {
  ApiError,
  FilesEvent,
  ForwardView,
  GrantView,
  SessionList,
  SessionView,
  StepUpPrompt,
  TerminalEvent,
  TerminalView,
  WatchEvent,
} from './bindings';
import { LIMITS } from './limits';
import { fakeHash, type ElevationModel } from './mock-elevation';
import type { HoldModel } from './mock-holds';

export interface SessionOptions {
  /** Other people's live sessions the broker holds (an administrator sees them). Default: one of dave's. */
  sessions?: (now: number) => SessionView[];
}

function apiError(code: ApiError['code'], message: string): ApiError {
  return { code, message };
}

function field(value: unknown, key: string): unknown {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[key] : undefined;
}

function str(value: unknown, key: string): string | null {
  const v = field(value, key);
  return typeof v === 'string' ? v : null;
}

const MIN = 60_000;

/** A session with every field filled; `fields` override. */
export function mockSession(fields: Partial<SessionView> & { id: string; user: string }): SessionView {
  return {
    grant_id: 'gr-dave-1',
    target_kind: 'ssh',
    target: 'app-prod-3',
    role: 'root',
    started_at_ms: 0,
    grant_ends_at_ms: 0,
    ended_at_ms: null,
    end_reason: null,
    recording_sha256: null,
    may_watch: false,
    ...fields,
  };
}

export function defaultSessions(now: number): SessionView[] {
  return [
    mockSession({
      id: 'se-dave-1',
      user: 'dave',
      grant_id: 'gr-dave-1',
      target: 'app-prod-3',
      role: 'root',
      started_at_ms: now - 12 * MIN,
      grant_ends_at_ms: now + 40 * MIN,
    }),
  ];
}

/** What the channel side of `window.__TAURI_INTERNALS__` offers (mockIPC installs it). */
interface Internals {
  runCallback?: (id: number, data: unknown) => void;
  callbacks?: Map<number, unknown>;
}

/** A mock terminal's channel: messages numbered like the core's, so the Channel keeps their order. */
export class MockChannel {
  private index = 0;
  constructor(private readonly id: number) {}

  send(event: TerminalEvent | WatchEvent | FilesEvent): void {
    const internals = (window as unknown as { __TAURI_INTERNALS__?: Internals }).__TAURI_INTERNALS__;
    // A channel whose page (or mock core) is gone has nobody to tell, as in the real core.
    if (internals?.callbacks?.has(this.id) !== true) return;
    internals.runCallback?.(this.id, { index: this.index++, message: event });
  }
}

function base64(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let binary = '';
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary);
}

type Prepared =
  | { op: 'session'; grant: GrantView; prompt: StepUpPrompt; at: number }
  | { op: 'kill'; session: SessionView; reason: string; prompt: StepUpPrompt; at: number };

interface Terminal {
  view: SessionView;
  channel: MockChannel;
  /** The line typed so far (for `whoami`). */
  line: string;
  /** The held command this terminal waits for, if any (its line end is kept from the target). */
  held: string | null;
}

export const SESSION_COMMANDS: ReadonlySet<string> = new Set([
  'prepare_session',
  'open_terminal',
  'open_forward',
  'open_in_terminal',
  'terminal_input',
  'terminal_resize',
  'close_terminal',
  'stop_forward',
  'list_forwards',
  'list_live_sessions',
  'prepare_kill_session',
  'confirm_kill_session',
  'watch_session',
  'stop_watch',
]);

/** Commands of this model that use the security key. */
export const SESSION_KEY_COMMANDS: readonly string[] = ['open_terminal', 'open_forward', 'open_in_terminal', 'confirm_kill_session'];

export class SessionModel {
  /** Every session the broker holds (live and ended), all users. */
  sessions: SessionView[];
  /** Open terminals of the signed-in user, by session id. */
  readonly terminals = new Map<string, Terminal>();
  /** Open local ports of the signed-in user. */
  forwards: ForwardView[] = [];
  /** Prepared session and kill step-ups, by id. */
  readonly pending = new Map<string, Prepared>();
  /** When set, the next call of that command rejects with the value. */
  readonly failures = new Map<string, unknown>();
  /** Every `terminal_resize` received. */
  readonly resizes: { session_id: string; cols: number; rows: number }[] = [];
  /** Watches of other people's sessions by the signed-in user, by session id: their channels. */
  readonly watches = new Map<string, MockChannel>();
  /** What each watched session's screen shows, as its `start` event draws it. */
  readonly screens = new Map<string, string>();
  private nextId = 1;
  private nextPort = 54321;

  constructor(
    private readonly elevation: ElevationModel,
    private readonly isAdmin: () => boolean,
    options: SessionOptions = {},
    private readonly holds: HoldModel | null = null,
  ) {
    this.sessions = structuredClone((options.sessions ?? defaultSessions)(elevation.now()));
    if (holds !== null) holds.onDecided = (hold) => this.holdDecided(hold.session_id, hold.id, hold.command, hold.state, hold.decided_by);
  }

  /** A held command of a terminal was decided: it runs (a prompt follows), or the terminal says why not. */
  private holdDecided(sessionId: string, holdId: string, command: string, state: string, by: string | null): void {
    const t = this.terminals.get(sessionId);
    if (t === undefined || t.held !== holdId) return;
    t.held = null;
    const label = state === 'released' ? `released by ${by ?? ''}` : state === 'refused' ? `refused by ${by ?? ''}` : 'no decision in time';
    this.output(sessionId, `\r\npaw: \`${command}\` ${label}\r\n$ `);
  }

  /**
   * The command rules of the mock: a line starting with `rm ` waits for the user's own step-up,
   * one starting with `shutdown` for another person's approval. Returns what the terminal says.
   */
  private holdLine(t: Terminal, line: string): string | null {
    if (this.holds === null) return null;
    const command = line.trim().replace(/\s+/g, ' ');
    const needs = command.startsWith('rm ') ? 'step_up' : command.startsWith('shutdown') ? 'approve' : null;
    if (needs === null) return null;
    const hold = this.holds.hold({
      session_id: t.view.id,
      grant_id: t.view.grant_id,
      user: t.view.user,
      target: t.view.target,
      entitlement: this.elevation.grants.find((g) => g.id === t.view.grant_id)?.entitlement ?? '',
      command,
      needs,
    });
    t.held = hold.id;
    const secs = Math.round((hold.expires_at - hold.created_at) / 1000);
    return needs === 'step_up'
      ? `paw: \`${command}\` needs a security-key step-up: confirm it with your security key in the paw app (held ${secs} s, hold ${hold.id})\r\n`
      : `paw: \`${command}\` needs a second person's approval: it waits for a second person's approval (held ${secs} s, hold ${hold.id})\r\n`;
  }

  failNext(cmd: string, failure: unknown): void {
    this.failures.set(cmd, failure);
  }

  /** Sends output to a terminal, as the target would (text, UTF-8 encoded, base64 on the wire). */
  output(sessionId: string, text: string): void {
    this.terminal(sessionId).channel.send({ type: 'output', data: base64(text) });
  }

  /** The broker's warning that the session ends with its grant. */
  warn(sessionId: string, endsInMs = 5 * MIN - 1_000): void {
    const t = this.terminal(sessionId);
    const mins = Math.ceil(endsInMs / MIN);
    t.channel.send({
      type: 'warning',
      message: `the grant for ${t.view.role} on ${t.view.target} ends in ${mins} min`,
      ends_at_ms: this.elevation.now() + endsInMs,
    });
  }

  /** Ends a session (terminal or forward) with `reason`, as the broker would. */
  end(sessionId: string, reason: string, message = reason.replace(/_/g, ' ')): void {
    const session = this.sessions.find((s) => s.id === sessionId);
    if (session !== undefined && session.ended_at_ms === null) {
      session.ended_at_ms = this.elevation.now();
      session.end_reason = reason;
      session.recording_sha256 = fakeHash(`recording:${sessionId}`);
    }
    const t = this.terminals.get(sessionId);
    if (t !== undefined) {
      this.terminals.delete(sessionId);
      t.channel.send({ type: 'ended', reason, message });
    }
    this.forwards = this.forwards.filter((f) => f.session_id !== sessionId);
    const watch = this.watches.get(sessionId);
    if (watch !== undefined) {
      this.watches.delete(sessionId);
      watch.send({ type: 'ended', reason, message: `the session ended: ${message}` });
    }
  }

  /** The watched user's terminal prints `text` (every watcher sees it). */
  watchOutput(sessionId: string, text: string): void {
    this.screens.set(sessionId, (this.screens.get(sessionId) ?? '') + text);
    this.watches.get(sessionId)?.send({ type: 'output', data: base64(text) });
  }

  /** The watched user's terminal changed size. */
  watchResize(sessionId: string, cols: number, rows: number): void {
    this.watches.get(sessionId)?.send({ type: 'resize', cols, rows });
  }

  /** The broker draws the screen again (after the watcher fell behind): a `start` with `screen`. */
  watchRestart(sessionId: string, screen: string): void {
    this.screens.set(sessionId, screen);
    const session = this.sessions.find((s) => s.id === sessionId);
    if (session !== undefined) this.watches.get(sessionId)?.send(this.watchStart(session));
  }

  /** Ends every watch (the user signed out). */
  endWatches(reason: string, message: string): void {
    for (const [id, channel] of [...this.watches]) {
      this.watches.delete(id);
      channel.send({ type: 'ended', reason, message });
    }
  }

  private watchStart(session: SessionView): WatchEvent {
    const screen = this.screens.get(session.id) ?? `${session.role}@${session.target}:~# `;
    return {
      type: 'start',
      session_id: session.id,
      user: session.user,
      target: session.target,
      role: session.role,
      cols: 100,
      rows: 30,
      screen: base64(`\x1b[H\x1b[2J${screen}`),
    };
  }

  /** Answers a session command; `undefined` when `cmd` is not one. */
  handle(cmd: string, args: unknown, requireUser: () => string): unknown {
    if (!SESSION_COMMANDS.has(cmd)) return undefined;
    const failure = this.failures.get(cmd);
    if (failure !== undefined) {
      this.failures.delete(cmd);
      throw failure;
    }
    const me = requireUser();
    const input = field(args, 'input');
    switch (cmd) {
      case 'prepare_session': {
        const grantId = str(input, 'grant_id') ?? '';
        this.elevation.tick();
        const grant = this.elevation.grants.find((g) => g.id === grantId && g.user === me);
        if (grant === undefined) throw apiError('not_found', 'no such grant of yours');
        if (grant.state !== 'active') throw apiError('conflict', `a ${grant.state} grant opens no session`);
        const verb = grant.target_kind === 'postgres' ? 'Open a PostgreSQL session' : 'Open an SSH session';
        const prompt: StepUpPrompt = {
          id: `ss-${this.nextId++}`,
          purpose: 'session',
          description: `${verb} to ${grant.target} as ${grant.role} (grant ${grant.id}), recorded by the broker`,
          action_hash: fakeHash(`session:${grant.id}`),
          expires_in_secs: 60,
        };
        this.pending.set(prompt.id, { op: 'session', grant, prompt, at: performance.now() });
        return structuredClone(prompt);
      }
      case 'open_in_terminal': {
        const pending = this.take(field(args, 'id'));
        if (pending.op !== 'session') throw apiError('challenge_invalid', 'this step-up does not open a session');
        const grant = pending.grant;
        if (grant.target_kind !== 'ssh' || grant.state !== 'active' || grant.ends_at_ms === null) {
          throw apiError('bad_request', 'only an active SSH grant opens in a terminal');
        }
        const session = mockSession({
          id: `se-${this.nextId++}`,
          user: me,
          grant_id: grant.id,
          target_kind: grant.target_kind,
          target: grant.target,
          role: grant.role,
          started_at_ms: this.elevation.now(),
          grant_ends_at_ms: grant.ends_at_ms,
        });
        this.sessions.unshift(session);
        const view: TerminalView = {
          session_id: session.id,
          grant_id: grant.id,
          target: grant.target,
          role: grant.role,
          grant_ends_at_ms: grant.ends_at_ms,
        };
        return view;
      }
      case 'open_terminal':
      case 'open_forward': {
        const pending = this.take(field(args, 'id'));
        if (pending.op !== 'session') throw apiError('challenge_invalid', 'this step-up does not open a session');
        const grant = pending.grant;
        if (grant.state !== 'active' || grant.ends_at_ms === null) throw apiError('conflict', 'the grant is no longer active');
        const wantsSsh = cmd === 'open_terminal';
        if ((grant.target_kind === 'ssh') !== wantsSsh) {
          throw apiError('bad_request', `a ${grant.target_kind} grant opens ${wantsSsh ? 'no terminal' : 'no local port'}`);
        }
        const session = mockSession({
          id: `se-${this.nextId++}`,
          user: me,
          grant_id: grant.id,
          target_kind: grant.target_kind,
          target: grant.target,
          role: grant.role,
          started_at_ms: this.elevation.now(),
          grant_ends_at_ms: grant.ends_at_ms,
        });
        this.sessions.unshift(session);
        if (wantsSsh) {
          const id = field(field(args, 'channel'), 'id');
          if (typeof id !== 'number') throw apiError('bad_request', 'expected { id, channel }');
          const terminal: Terminal = { view: session, channel: new MockChannel(id), line: '', held: null };
          this.terminals.set(session.id, terminal);
          const view: TerminalView = {
            session_id: session.id,
            grant_id: grant.id,
            target: grant.target,
            role: grant.role,
            grant_ends_at_ms: grant.ends_at_ms,
          };
          // The greeting arrives after the answer, like the first bytes from the target.
          setTimeout(() => {
            if (this.terminals.get(session.id) === terminal) {
              this.output(session.id, `Connected to ${grant.target} as ${grant.role}. This session is recorded.\r\n$ `);
            }
          }, 0);
          return view;
        }
        const forward: ForwardView = {
          session_id: session.id,
          grant_id: grant.id,
          target: grant.target,
          database: 'postgres',
          local_addr: `127.0.0.1:${this.nextPort++}`,
          grant_ends_at_ms: grant.ends_at_ms,
        };
        this.forwards.push(forward);
        return structuredClone(forward);
      }
      case 'terminal_input': {
        const t = this.terminal(str(input, 'session_id'));
        const data = str(input, 'data');
        if (data === null) throw apiError('bad_request', 'expected { input: { session_id, data } }');
        let echo = '';
        for (const ch of data) {
          if (ch === '\r') {
            echo += '\r\n';
            if (t.held !== null) {
              t.line = ''; // the broker keeps this line end: the held command comes first
              continue;
            }
            const line = t.line;
            t.line = '';
            const held = this.holdLine(t, line);
            if (held !== null) {
              echo += held;
              continue;
            }
            if (line.trim() === 'whoami') echo += `${t.view.role}\r\n`;
            echo += '$ ';
          } else {
            echo += ch;
            t.line += ch;
          }
        }
        this.output(t.view.id, echo);
        return null;
      }
      case 'terminal_resize': {
        const t = this.terminal(str(input, 'session_id'));
        const cols = field(input, 'cols');
        const rows = field(input, 'rows');
        if (typeof cols !== 'number' || typeof rows !== 'number' || cols < 1 || rows < 1) {
          throw apiError('bad_request', 'cols and rows must be positive');
        }
        this.resizes.push({ session_id: t.view.id, cols, rows });
        return null;
      }
      case 'close_terminal': {
        const t = this.terminal(str(input, 'session_id'));
        this.end(t.view.id, 'closed', 'closed by you');
        return null;
      }
      case 'stop_forward': {
        const id = str(input, 'session_id');
        if (!this.forwards.some((f) => f.session_id === id)) throw apiError('not_found', 'no such local port of yours');
        this.end(id ?? '', 'closed', 'stopped by you');
        return null;
      }
      case 'list_forwards':
        return structuredClone(this.forwards);
      case 'list_live_sessions': {
        const admin = this.isAdmin();
        const live = this.sessions
          .filter((s) => s.ended_at_ms === null && (admin || s.user === me || s.may_watch))
          .map((s) => ({ ...s, may_watch: s.user !== me && s.target_kind === 'ssh' && (admin || s.may_watch) }));
        const list: SessionList = { sessions: structuredClone(live) };
        return list;
      }
      case 'watch_session': {
        const id = str(input, 'session_id') ?? '';
        const channelId = field(field(args, 'channel'), 'id');
        if (typeof channelId !== 'number') throw apiError('bad_request', 'expected { input, channel }');
        const session = this.sessions.find((s) => s.id === id);
        if (session === undefined) throw apiError('not_found', 'no such live session');
        if (session.user === me) throw apiError('forbidden', 'nobody watches their own session');
        if (!this.isAdmin() && !session.may_watch) {
          throw apiError('forbidden', 'only administrators and approvers of the session\'s entitlement watch it');
        }
        if (session.ended_at_ms !== null) throw apiError('not_found', 'no such live session');
        if (session.target_kind !== 'ssh') throw apiError('conflict', 'only SSH sessions have a terminal to watch');
        const previous = this.watches.get(id);
        if (previous !== undefined) previous.send({ type: 'ended', reason: 'stopped', message: 'you stopped watching' });
        const channel = new MockChannel(channelId);
        this.watches.set(id, channel);
        // The screen arrives after the answer, like the broker's first event.
        setTimeout(() => {
          if (this.watches.get(id) === channel) channel.send(this.watchStart(session));
        }, 0);
        return null;
      }
      case 'stop_watch': {
        const id = str(input, 'session_id');
        if (id === null) throw apiError('bad_request', 'expected { input: { session_id } }');
        const channel = this.watches.get(id);
        if (channel !== undefined) {
          this.watches.delete(id);
          channel.send({ type: 'ended', reason: 'stopped', message: 'you stopped watching' });
        }
        return null;
      }
      case 'prepare_kill_session': {
        if (!this.isAdmin()) throw apiError('forbidden', 'only an administrator can end someone’s session');
        const id = str(input, 'session_id') ?? '';
        const reason = str(input, 'reason') ?? '';
        const chars = [...reason.trim()].length;
        const { kill_reason_min_chars: min, kill_reason_max_chars: max } = LIMITS;
        if (chars < min || chars > max) throw apiError('bad_request', `a reason of ${min} to ${max} characters is required`);
        const session = this.sessions.find((s) => s.id === id);
        if (session === undefined) throw apiError('not_found', 'no such session');
        if (session.ended_at_ms !== null) throw apiError('conflict', 'this session has already ended');
        const prompt: StepUpPrompt = {
          id: `sk-${this.nextId++}`,
          purpose: 'kill_session',
          description: `End ${session.user}’s session ${session.id} to ${session.target} as ${session.role}. Reason: ${reason.trim()}`,
          action_hash: fakeHash(`kill:${session.id}:${reason}`),
          expires_in_secs: 60,
        };
        this.pending.set(prompt.id, { op: 'kill', session, reason: reason.trim(), prompt, at: performance.now() });
        return structuredClone(prompt);
      }
      case 'confirm_kill_session': {
        const pending = this.take(field(args, 'id'));
        if (pending.op !== 'kill') throw apiError('challenge_invalid', 'this step-up ends no session');
        if (pending.session.ended_at_ms !== null) throw apiError('conflict', 'this session has already ended');
        this.end(pending.session.id, 'killed', `ended by ${me}: ${pending.reason}`);
        return structuredClone(pending.session);
      }
      default:
        return undefined;
    }
  }

  /** Takes a prepared session step-up for a file connection (mock-files.ts): its grant. */
  takeSession(id: unknown): GrantView {
    const pending = this.take(id);
    if (pending.op !== 'session') throw apiError('challenge_invalid', 'this step-up does not open a session');
    return pending.grant;
  }

  private take(id: unknown): Prepared {
    const pending = typeof id === 'string' ? this.pending.get(id) : undefined;
    if (pending === undefined) throw apiError('challenge_invalid', 'unknown or used step-up');
    this.pending.delete(pending.prompt.id);
    if (performance.now() - pending.at > pending.prompt.expires_in_secs * 1000) {
      throw apiError('challenge_invalid', 'the step-up challenge expired');
    }
    return pending;
  }

  private terminal(id: string | null): Terminal {
    const t = id === null ? undefined : this.terminals.get(id);
    if (t === undefined) throw apiError('not_found', 'no such open terminal of yours');
    return t;
  }
}
