/**
 * The vault half of the fake core (see mock.ts): the broker's vaulted accounts (metadata only),
 * a reveal under one of the user's active grants behind a step-up (it checks the account out
 * and marks it for rotation when the checkout ends), an administrator's rotation on demand, and
 * hooks for tests to make a rotation fail or settle, with the live events the broker sends.
 *
 * Validation is rough, like the rest of the mock. A revealed secret is made up per reveal and
 * returned once; the mock keeps no copy, as the core keeps none. Test and dev use only.
 */
import type {
  ApiError,
  RevealedSecret,
  RotationStatus,
  StepUpPrompt,
  VaultAccountList,
  VaultAccountView,
} from './bindings';
import { fakeHash, type ElevationModel } from './mock-elevation';

export interface VaultOptions {
  /** The broker's vaulted accounts when the mock starts, given its time. Default `defaultVaultAccounts`. */
  vaultAccounts?: (now: number) => VaultAccountView[];
  /** How long a revealed secret is shown, in seconds (the broker's `reveal_show_secs`). Default 30. */
  revealShowSecs?: number;
}

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const ID = /^[A-Za-z0-9_-]{1,128}$/;

function apiError(code: ApiError['code'], message: string): ApiError {
  return { code, message };
}

function field(value: unknown, key: string): unknown {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[key] : undefined;
}

/** An account with every field filled; `fields` override. Times are by the broker's clock. */
export function mockVaultAccount(
  fields: Partial<Omit<VaultAccountView, 'rotation'>> & {
    target: string;
    account: string;
    rotation?: Partial<RotationStatus>;
  },
  now = Date.now(),
): VaultAccountView {
  const { rotation, ...rest } = fields;
  return {
    id: `va-${fields.target}-${fields.account}`,
    name: `${fields.target}/${fields.account}`,
    kind: 'ssh_password',
    exclusive: true,
    version: 3,
    holder: null,
    created_at_ms: now - 90 * DAY,
    ...rest,
    rotation: {
      state: 'idle',
      last_result: 'ok',
      last_error: null,
      last_rotated_at_ms: now - 2 * DAY,
      next_rotation_at_ms: now + 5 * DAY,
      rotate_after_checkout: false,
      failing_since_ms: null,
      ...rotation,
    },
  };
}

/**
 * A small vault: web-1's root password (free), a database owner held by bob after a reveal, an
 * appliance whose rotation keeps failing, and a key being reconciled after an interruption.
 */
export function defaultVaultAccounts(now: number): VaultAccountView[] {
  return [
    mockVaultAccount({ target: 'web-1', account: 'root' }, now),
    mockVaultAccount(
      {
        target: 'db-prod-1',
        account: 'app_owner',
        kind: 'postgres_password',
        version: 12,
        holder: { user: 'bob', grant_id: 'gr-bob-9', until_ms: now + 25 * 60_000 },
        rotation: { next_rotation_at_ms: now + 25 * 60_000, rotate_after_checkout: true },
      },
      now,
    ),
    mockVaultAccount(
      {
        target: 'bmc-3',
        account: 'ADMIN',
        kind: 'generic',
        exclusive: false,
        version: 1,
        rotation: {
          state: 'failed',
          last_result: 'failed',
          last_error: 'target refused the new password: password history requires 5 new characters',
          last_rotated_at_ms: now - 40 * DAY,
          next_rotation_at_ms: now + HOUR,
          failing_since_ms: now - 26 * HOUR,
        },
      },
      now,
    ),
    mockVaultAccount(
      {
        target: 'web-2',
        account: 'deploy',
        kind: 'ssh_key',
        version: 7,
        rotation: { state: 'reconciling', last_rotated_at_ms: now - 6 * DAY, next_rotation_at_ms: null },
      },
      now,
    ),
  ];
}

export const VAULT_COMMANDS: ReadonlySet<string> = new Set([
  'list_vault_accounts',
  'prepare_reveal',
  'confirm_reveal',
  'prepare_rotation',
  'confirm_rotation',
]);

/** Commands of this model that use the security key. */
export const VAULT_KEY_COMMANDS: readonly string[] = ['confirm_reveal', 'confirm_rotation'];

type Prepared =
  | { op: 'reveal'; account: string; grant: string; reason: string; prompt: StepUpPrompt; at: number }
  | { op: 'rotate'; account: string; reason: string; prompt: StepUpPrompt; at: number };

export class VaultModel {
  /** Every account the broker keeps. */
  accounts: VaultAccountView[];
  revealShowSecs: number;
  /** Prepared vault step-ups not yet confirmed or cancelled, by id. */
  readonly pending = new Map<string, Prepared>();
  /** When set, the next call of that command rejects with the value. */
  readonly failures = new Map<string, unknown>();
  /** How many secrets were revealed (the secrets themselves are not kept). */
  reveals = 0;
  /** When set, the next rotation fails on the target with this error (the answer is the account, failed). */
  rotationFailure: string | null = null;
  private nextId = 1;

  constructor(
    private readonly elevation: ElevationModel,
    private readonly isAdmin: () => boolean,
    options: VaultOptions = {},
  ) {
    this.accounts = structuredClone((options.vaultAccounts ?? defaultVaultAccounts)(elevation.now()));
    this.revealShowSecs = options.revealShowSecs ?? 30;
  }

  failNext(cmd: string, failure: unknown): void {
    this.failures.set(cmd, failure);
  }

  /** The broker's rotation of `name` failed with `error`: the account says so until one works, and a live event goes out. */
  failRotation(name: string, error: string): void {
    const a = this.byName(name);
    const now = this.elevation.now();
    a.rotation.state = 'failed';
    a.rotation.last_result = 'failed';
    a.rotation.last_error = error;
    a.rotation.failing_since_ms ??= now;
    this.elevation.emitEvent({ kind: 'vault_rotation_failed', grant_id: '', state: name, message: `rotation of ${name} failed: ${error}` });
  }

  /** A rotation of `name` worked: a new version, the alert resolved, a live event. */
  settleRotation(name: string): void {
    const a = this.byName(name);
    const now = this.elevation.now();
    a.version += 1;
    a.rotation = {
      ...a.rotation,
      state: 'idle',
      last_result: 'ok',
      last_error: null,
      last_rotated_at_ms: now,
      failing_since_ms: null,
      rotate_after_checkout: false,
      next_rotation_at_ms: now + 7 * DAY,
    };
    this.elevation.emitEvent({ kind: 'vault_rotated', grant_id: '', state: name, message: `${name} was rotated (version ${a.version})` });
  }

  /** Answers a vault command; `undefined` when `cmd` is not one. */
  handle(cmd: string, args: unknown, requireUser: () => string): unknown {
    if (!VAULT_COMMANDS.has(cmd)) return undefined;
    const failure = this.failures.get(cmd);
    if (failure !== undefined) {
      this.failures.delete(cmd);
      throw failure;
    }
    const me = requireUser();
    switch (cmd) {
      case 'list_vault_accounts': {
        const list: VaultAccountList = { accounts: structuredClone(this.visible(me)), now_ms: this.elevation.now() };
        return list;
      }
      case 'prepare_reveal': {
        const input = field(args, 'input');
        const a = this.account(me, field(input, 'account_id'));
        const grantId = field(input, 'grant_id');
        if (typeof grantId !== 'string' || !ID.test(grantId)) throw apiError('bad_request', 'grant_id: not a valid id');
        const reason = this.reason(field(input, 'reason'));
        const g = this.elevation.grants.find((x) => x.id === grantId && x.user === me && x.state === 'active');
        if (g === undefined) throw apiError('bad_request', 'grant_id: no active grant of yours with this id');
        if (g.target !== a.target || g.role !== a.account) {
          throw apiError('bad_request', `grant_id: this grant is for ${g.role} on ${g.target}, not for ${a.name}`);
        }
        const prompt: StepUpPrompt = {
          id: `vr-${this.nextId++}`,
          purpose: 'reveal_secret',
          description: `Reveal the secret of ${a.name} under grant ${g.id}; it is rotated when the grant ends. Reason: ${reason}`,
          action_hash: fakeHash(`reveal:${a.name}:${g.id}:${reason}`),
          expires_in_secs: 60,
        };
        this.pending.set(prompt.id, { op: 'reveal', account: a.id, grant: g.id, reason, prompt, at: performance.now() });
        return structuredClone(prompt);
      }
      case 'confirm_reveal': {
        const p = this.take(field(args, 'id'), 'reveal');
        if (p.op !== 'reveal') throw apiError('challenge_invalid', 'unknown or used step-up');
        const a = this.accounts.find((x) => x.id === p.account);
        if (a === undefined) throw apiError('not_found', 'no such vaulted account');
        const now = this.elevation.now();
        if (a.exclusive && a.holder !== null && a.holder.user !== me && a.holder.until_ms > now) {
          throw apiError('checked_out', `${a.name} is checked out by ${a.holder.user} until ${new Date(a.holder.until_ms).toISOString()}`);
        }
        const grant = this.elevation.grants.find((g) => g.id === p.grant);
        const until = grant?.ends_at_ms ?? now + HOUR;
        a.holder = { user: me, grant_id: p.grant, until_ms: until };
        a.rotation.rotate_after_checkout = true;
        a.rotation.next_rotation_at_ms = until;
        this.reveals += 1;
        const revealed: RevealedSecret = {
          account: a.name,
          secret: `${fakeHash(`${a.name}:${now}:${this.reveals}`).slice(0, 12)}-Vq7#pL`,
          now_ms: now,
          show_until_ms: now + this.revealShowSecs * 1000,
          checkout_until_ms: until,
        };
        return revealed;
      }
      case 'prepare_rotation': {
        const input = field(args, 'input');
        const a = this.account(me, field(input, 'account_id'));
        const reason = this.reason(field(input, 'reason'));
        const prompt: StepUpPrompt = {
          id: `vo-${this.nextId++}`,
          purpose: 'rotate_secret',
          description: `Rotate the secret of ${a.name} now. Reason: ${reason}`,
          action_hash: fakeHash(`rotate:${a.name}:${reason}`),
          expires_in_secs: 60,
        };
        this.pending.set(prompt.id, { op: 'rotate', account: a.id, reason, prompt, at: performance.now() });
        return structuredClone(prompt);
      }
      case 'confirm_rotation': {
        const p = this.take(field(args, 'id'), 'rotate');
        if (!this.isAdmin()) throw apiError('forbidden', 'rotating a vaulted secret is for administrators');
        const a = this.accounts.find((x) => x.id === p.account);
        if (a === undefined) throw apiError('not_found', 'no such vaulted account');
        // As the broker: a generic secret (an appliance's) is changed by hand, never by paw.
        if (a.kind === 'generic') throw apiError('bad_request', `${a.name} is a generic secret: paw cannot change it`);
        const failure = this.rotationFailure;
        this.rotationFailure = null;
        if (failure !== null) this.failRotation(a.name, failure);
        else this.settleRotation(a.name);
        return structuredClone(a);
      }
      default:
        return undefined;
    }
  }

  /** What `GET /v1/vault/accounts` lists: everything for an admin; for others, accounts on targets they hold grants for. */
  private visible(me: string): VaultAccountView[] {
    if (this.isAdmin()) return this.accounts;
    const targets = new Set(this.elevation.grants.filter((g) => g.user === me).map((g) => g.target));
    return this.accounts.filter((a) => targets.has(a.target));
  }

  private account(me: string, id: unknown): VaultAccountView {
    if (typeof id !== 'string' || !ID.test(id)) throw apiError('bad_request', 'account_id: not a valid id');
    const a = this.visible(me).find((x) => x.id === id);
    if (a === undefined) throw apiError('bad_request', 'account_id: no vaulted account with this id is listed for you');
    return a;
  }

  private byName(name: string): VaultAccountView {
    const a = this.accounts.find((x) => x.name === name);
    if (a === undefined) throw new Error(`no vaulted account ${name}`);
    return a;
  }

  private reason(value: unknown): string {
    if (typeof value !== 'string' || value.trim() === '') throw apiError('bad_request', 'reason: required');
    if (value !== value.trim()) throw apiError('bad_request', 'reason: a reason does not start or end with a space');
    if (/[\u0000-\u001f\u007f]/.test(value)) {
      throw apiError('bad_request', 'reason: one line of visible text: no line breaks, control or invisible formatting characters');
    }
    return value;
  }

  private take(id: unknown, op: Prepared['op']): Prepared {
    const pending = typeof id === 'string' ? this.pending.get(id) : undefined;
    if (pending === undefined || pending.op !== op) throw apiError('challenge_invalid', 'unknown or used step-up');
    this.pending.delete(pending.prompt.id);
    if (performance.now() - pending.at > pending.prompt.expires_in_secs * 1000) {
      throw apiError('challenge_invalid', 'the step-up challenge expired');
    }
    return pending;
  }
}
