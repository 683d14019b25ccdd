/**
 * The held-commands half of the fake core (see mock.ts): commands a session's rules hold until
 * the session's own user confirms them with a step-up (`step_up`) or another person decides
 * (`approve`), with the broker's live events and its timeout.
 *
 * Like the elevation mock, groups are not modelled: anyone but the session's user may approve.
 * A mocked terminal holds a line starting with `rm ` for a step-up and one starting with
 * `shutdown` for an approval (mock-sessions.ts); `holdAs` makes a colleague's session hold
 * one. Test and dev use only.
 */
import type { ApiError, CommandHoldView, HeldCommands, StepUpPrompt } from './bindings';
import { fakeHash, type ElevationModel } from './mock-elevation';

export interface HoldOptions {
  /** Commands held when the mock starts (all users), given the broker's time. Default: none. */
  holds?: (now: number) => CommandHoldView[];
  /** How long a command is held before the broker refuses it, in seconds. Default 120. */
  holdSecs?: number;
}

function apiError(code: ApiError['code'], message: string): ApiError {
  return { code, message };
}

function field(value: unknown, key: string): unknown {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[key] : undefined;
}

/** A held command with every field filled; `fields` override. Times are by the broker's clock. */
export function mockHold(fields: Partial<CommandHoldView> & { id: string; user: string; command: string }): CommandHoldView {
  const created = fields.created_at ?? 0;
  return {
    session_id: 'se-dave-1',
    entitlement: 'app-prod-root',
    target: 'app-prod-3',
    needs: 'approve',
    state: 'pending',
    created_at: created,
    expires_at: created + 120_000,
    decided_by: null,
    ...fields,
  };
}

export const HOLD_COMMANDS: ReadonlySet<string> = new Set(['list_holds', 'prepare_hold_decision', 'confirm_hold_decision']);

/** Commands of this model that use the security key. */
export const HOLD_KEY_COMMANDS: readonly string[] = ['confirm_hold_decision'];

interface Prepared {
  hold: CommandHoldView;
  approve: boolean;
  prompt: StepUpPrompt;
  at: number;
}

export class HoldModel {
  /** Every hold the broker keeps (all users, all states), oldest first. */
  holds: CommandHoldView[];
  holdSecs: number;
  /** Prepared hold step-ups not yet confirmed or cancelled, by id. */
  readonly pending = new Map<string, Prepared>();
  /** When set, the next call of that command rejects with the value. */
  readonly failures = new Map<string, unknown>();
  /** Told when a hold is decided or times out (the session's terminal goes on, or says why not). */
  onDecided: ((hold: CommandHoldView) => void) | null = null;
  private nextId = 1;
  /** Each hold's grant, for the live events. */
  private readonly grants = new Map<string, string>();

  constructor(
    private readonly elevation: ElevationModel,
    private readonly me: () => string | null,
    options: HoldOptions = {},
  ) {
    this.holdSecs = options.holdSecs ?? 120;
    this.holds = structuredClone((options.holds ?? (() => []))(elevation.now()));
  }

  failNext(cmd: string, failure: unknown): void {
    this.failures.set(cmd, failure);
  }

  /** Holds `command` in a session, as the broker does at Enter; the line the terminal shows. */
  hold(fields: {
    session_id: string;
    /** The session's grant: the broker's live events name it. */
    grant_id?: string;
    user: string;
    target: string;
    entitlement: string;
    command: string;
    needs: 'step_up' | 'approve';
  }): CommandHoldView {
    const now = this.elevation.now();
    const { grant_id: grantId = '', ...rest } = fields;
    const hold: CommandHoldView = {
      id: fakeHash(`hold:${this.nextId++}:${fields.command}`).slice(0, 8),
      ...rest,
      state: 'pending',
      created_at: now,
      expires_at: now + this.holdSecs * 1000,
      decided_by: null,
    };
    this.holds.push(hold);
    this.grants.set(hold.id, grantId);
    const who = hold.needs === 'approve' ? 'waits for an approval' : 'waits for its user’s step-up';
    this.emit('command_held', hold, `${hold.user}'s session on ${hold.target} holds \`${hold.command}\`: it ${who}`);
    return structuredClone(hold);
  }

  /** A colleague's session holds `command` for an approval (the signed-in user may decide it). */
  holdAs(user: string, command: string, fields: Partial<CommandHoldView> = {}): CommandHoldView {
    return this.hold({
      session_id: fields.session_id ?? 'se-dave-1',
      user,
      target: fields.target ?? 'app-prod-3',
      entitlement: fields.entitlement ?? 'app-prod-root',
      command,
      needs: fields.needs === 'step_up' ? 'step_up' : 'approve',
    });
  }

  /** Refuses the holds whose time ran out, as the broker's session does. */
  tick(): void {
    const now = this.elevation.now();
    for (const h of this.holds) {
      if (h.state === 'pending' && h.expires_at <= now) {
        h.state = 'expired';
        h.decided_by = 'paw';
        this.emit('command_decided', h, `a held command in ${h.user}'s session on ${h.target} was refused: no decision in time`);
        this.onDecided?.(h);
      }
    }
  }

  /** Answers a held-command command; `undefined` when `cmd` is not one. */
  handle(cmd: string, args: unknown, requireUser: () => string): unknown {
    if (!HOLD_COMMANDS.has(cmd)) return undefined;
    const failure = this.failures.get(cmd);
    if (failure !== undefined) {
      this.failures.delete(cmd);
      throw failure;
    }
    const me = requireUser();
    this.tick();
    switch (cmd) {
      case 'list_holds': {
        const list: HeldCommands = {
          holds: structuredClone(this.visible(me)),
          now_ms: this.elevation.now(),
        };
        return list;
      }
      case 'prepare_hold_decision': {
        const input = field(args, 'input');
        const id = field(input, 'hold_id');
        const approve = field(input, 'approve');
        if (typeof id !== 'string' || typeof approve !== 'boolean') {
          throw apiError('bad_request', 'expected { input: { hold_id, approve } }');
        }
        const hold = this.visible(me).find((h) => h.id === id);
        if (hold === undefined) {
          throw apiError('bad_request', 'hold_id: this held command is not waiting for you (decided, timed out, or not yours)');
        }
        const mine = hold.user === me;
        let prompt: StepUpPrompt;
        if (hold.needs === 'step_up') {
          if (!approve) {
            throw apiError('bad_request', 'hold_id: a held command of your own is refused by letting it time out or pressing nothing');
          }
          prompt = {
            id: `hd-${this.nextId++}`,
            purpose: 'command',
            description: `Run \`${hold.command}\` on ${hold.target} in session ${hold.session_id}`,
            action_hash: fakeHash(`command:${hold.session_id}:${hold.target}:${hold.command}`),
            expires_in_secs: 60,
          };
        } else {
          if (mine) throw apiError('bad_request', 'hold_id: your own held command waits for another person’s approval');
          prompt = {
            id: `hd-${this.nextId++}`,
            purpose: 'approve_command',
            description: `In ${hold.user}'s session ${hold.session_id} on ${hold.target}: ${approve ? 'Let run' : 'Refuse'} \`${hold.command}\` (held command ${hold.id})`,
            action_hash: fakeHash(`approve-command:${hold.id}:${hold.command}:${approve}`),
            expires_in_secs: 60,
          };
        }
        this.pending.set(prompt.id, { hold, approve, prompt, at: performance.now() });
        return structuredClone(prompt);
      }
      case 'confirm_hold_decision': {
        const id = field(args, 'id');
        const pending = typeof id === 'string' ? this.pending.get(id) : undefined;
        if (pending === undefined) throw apiError('challenge_invalid', 'unknown or used step-up');
        this.pending.delete(pending.prompt.id);
        if (performance.now() - pending.at > pending.prompt.expires_in_secs * 1000) {
          throw apiError('challenge_invalid', 'the step-up challenge expired');
        }
        const hold = pending.hold;
        if (hold.state !== 'pending') throw apiError('conflict', `the hold is ${hold.state}`);
        hold.state = pending.approve ? 'released' : 'refused';
        hold.decided_by = me;
        const verb = hold.needs === 'step_up' ? `released by ${me}'s step-up` : pending.approve ? `approved by ${me}` : `refused by ${me}`;
        this.emit('command_decided', hold, `\`${hold.command}\` ${verb}`);
        this.onDecided?.(hold);
        return structuredClone(hold);
      }
      default:
        return undefined;
    }
  }

  /** What `GET /v1/holds` lists for `me`: pending, in time, their own or others' awaiting approval. */
  private visible(me: string): CommandHoldView[] {
    const now = this.elevation.now();
    return this.holds.filter(
      (h) => h.state === 'pending' && h.expires_at > now && (h.user === me || h.needs === 'approve'),
    );
  }

  /** The broker tells the session's user and the entitlement's approvers (here: everyone concerned). */
  private emit(kind: string, hold: CommandHoldView, message: string): void {
    const me = this.me();
    if (me !== null && (hold.user === me || hold.needs === 'approve')) {
      this.elevation.emitEvent({ kind, grant_id: this.grants.get(hold.id) ?? '', state: hold.state, message });
    }
  }
}
