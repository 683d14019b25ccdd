/**
 * A fake core for unit tests and for `npm run dev` in a plain browser.
 *
 * It answers the same commands as src-tauri with a small in-memory state machine and
 * validates roughly like the Rust side, so the UI's error paths can be exercised.
 * It is never part of a production build (only tests and a DEV-only dynamic import use it).
 */
import { clearMocks, mockIPC } from '@tauri-apps/api/mocks';
import type {
  ApiError,
  AppStatus,
  BrokerState,
  BuildInfo,
  CaInfo,
  GrantSummary,
  KeyPromptView,
  SecurityKeyView,
  SessionUser,
  SettingsInput,
  SettingsView,
  SignOutReport,
  StepUpPrompt,
} from './bindings';
import type { StepUpAction } from './index';
import { AuditModel, type AuditOptions } from './mock-audit';
import { ElevationModel, fakeHash, type ElevationOptions } from './mock-elevation';
import { FILES_KEY_COMMANDS, FilesModel } from './mock-files';
import { HistoryModel, type HistoryOptions } from './mock-history';
import { HOLD_KEY_COMMANDS, HoldModel, type HoldOptions } from './mock-holds';
import { MACHINE_KEY_COMMANDS, MachineModel, type MachineOptions } from './mock-machines';
import { SESSION_KEY_COMMANDS, SessionModel, type SessionOptions } from './mock-sessions';
import { VAULT_KEY_COMMANDS, VaultModel, type VaultOptions } from './mock-vault';

export { defaultAuditRecords, mockAuditRecord } from './mock-audit';
export { defaultGrants, mockGrant, MOCK_ENTITLEMENTS, type MockEntitlement } from './mock-elevation';
export { defaultSessions, mockSession } from './mock-sessions';
export { mockHold } from './mock-holds';
export { defaultMachines, mockMachine, mockMachineKey } from './mock-machines';
export { defaultVaultAccounts, mockVaultAccount } from './mock-vault';
export {
  DEFAULT_MASK_PATTERNS,
  MOCK_DOWNLOAD_DIR,
  defaultHistory,
  defaultMasks,
  defaultSessionFiles,
  mockCast,
  mockHistoryEntry,
  mockSessionFile,
} from './mock-history';

export interface MockOptions
  extends ElevationOptions,
    AuditOptions,
    SessionOptions,
    HistoryOptions,
    HoldOptions,
    MachineOptions,
    VaultOptions {
  /** Broker state to report once a broker URL is configured. Default `connected`. */
  brokerState?: Exclude<BrokerState, 'unconfigured'>;
  settings?: Partial<SettingsView>;
  user?: SessionUser | null;
  grant?: GrantSummary | null;
  build?: BuildInfo;
  /** Initial value of `MockCore.statusFailure`. */
  statusFailure?: unknown;
  /** Simulated latency of every command, in ms (real timers). Default 0. */
  delayMs?: number;
  /** The signed-in user's security keys. Default: two active keys. */
  keys?: SecurityKeyView[];
  /** One-time invite codes → the user they enrol. Default `{ 'PAW-INVITE-1': 'ada' }`. */
  invites?: Record<string, string>;
  /** Users who may sign in. Default `['ada']`. */
  users?: string[];
  /**
   * The security key's PIN. When set, `login` / `enroll` / `confirm_step_up` first ask for it
   * (`key_prompt` reports `pin`) and wait for `submit_pin` or `cancel_key_prompt`.
   * Default: no PIN, nothing is asked.
   */
  pin?: string;
}

export interface MockCore {
  brokerState: Exclude<BrokerState, 'unconfigured'>;
  settings: SettingsView;
  /**
   * Which of `settings.fallback_urls` is in use after the primary broker became unreachable;
   * `null` (the default) while the primary is in use.
   */
  fallbackInUse: number | null;
  user: SessionUser | null;
  /**
   * The active grant as of the moment it is assigned. Like the broker, the mock keeps its own
   * clock: `app_status` reports `remaining_ms` minus the time elapsed since (performance.now()).
   * When neither `MockOptions.grant` nor this was set, `app_status` reports the user's active
   * grant from `elevation` that ends first.
   */
  grant: GrantSummary | null;
  /** The broker side of elevation: entitlements, grants, its clock and the live feed. */
  readonly elevation: ElevationModel;
  /** The workstation's local audit trail (`audit_*` commands). */
  readonly audit: AuditModel;
  /** Brokered sessions: terminals (with their channels), local ports, live sessions, kills. */
  readonly sessions: SessionModel;
  /** File connections: a small remote file system, uploads, downloads, holds of the close. */
  readonly files: FilesModel;
  /** Held commands: the user's own (a terminal's `rm …`), colleagues' awaiting approval (`holdAs`). */
  readonly holds: HoldModel;
  /** The broker's session history, recordings (help-desk view), replay masks and sessions' files. */
  readonly history: HistoryModel;
  /** Machine identities: the inventory, creations and transfers, owners disabled. */
  readonly machines: MachineModel;
  /** Vaulted accounts: the list, reveals and rotations, rotation failures and their live events. */
  readonly vault: VaultModel;
  build: BuildInfo;
  /** When set, `app_status` rejects with this value (any shape, to test normalisation). */
  statusFailure: unknown;
  /**
   * How many tokens the broker revokes at the next `logout`. Default 2 access, 1 refresh.
   */
  signOutRevokes: { access_tokens: number; refresh_tokens: number };
  /**
   * When set, the next `logout` reports the broker did not confirm, with this error (the user
   * is signed out all the same). Without it, a broker that is not connected gives its own error.
   */
  signOutBrokerError: ApiError | null;
  /** When set, the next `save_settings` rejects with this value. */
  saveFailure: unknown;
  keys: SecurityKeyView[];
  invites: Record<string, string>;
  users: string[];
  /**
   * When set, the next `login` / `enroll` / `prepare_step_up` / `confirm_step_up` rejects with it;
   * `prepareFailure` and `confirmFailure` also serve `prepare_elevation` / `confirm_elevation`.
   */
  loginFailure: unknown;
  enrollFailure: unknown;
  prepareFailure: unknown;
  confirmFailure: unknown;
  /** `expires_in_secs` of the next step-up prompts. Default 60. */
  stepUpExpiresInSecs: number;
  /** When set, replaces the generated description of the next step-up prompts. */
  stepUpDescription: string | null;
  /** The key's PIN (see `MockOptions.pin`); `null`: the key asks for none. */
  pin: string | null;
  /** Wrong PINs the key still accepts before it blocks; 8 again after a right PIN. */
  pinRetries: number;
  /** When set, `key_prompt` rejects with this value. */
  promptFailure: unknown;
  /** What `key_prompt` answers now: `pin` while a key command waits for the PIN, `touch` during its `delayMs`. */
  readonly prompt: KeyPromptView;
  /** Prepared step-ups not yet confirmed or cancelled, by id. */
  readonly pending: Map<string, { action: StepUpAction; prompt: StepUpPrompt; at: number }>;
  /** Every command received, in order. */
  readonly calls: { cmd: string; args: unknown }[];
  /** URLs the core was asked to open. */
  readonly opened: string[];
  uninstall(): void;
}

function apiError(code: ApiError['code'], message: string): ApiError {
  return { code, message };
}

function fakeCa(path: string): CaInfo {
  // Deterministic per path, shaped like the real thing: upper-case hex pairs, colon separated.
  let h = 2166136261;
  for (const ch of path) h = Math.imul(h ^ ch.charCodeAt(0), 16777619) >>> 0;
  const bytes: string[] = [];
  for (let i = 0; i < 32; i++) {
    h = Math.imul(h ^ (h >>> 13), 2654435761) >>> 0;
    bytes.push((h & 0xff).toString(16).toUpperCase().padStart(2, '0'));
  }
  return {
    subject: 'CN=paw Test Broker CA, O=Example Corp',
    fingerprint_sha256: bytes.join(':'),
    not_after: '2030-01-01T00:00:00Z',
  };
}

function validate(input: SettingsInput): ApiError | null {
  let url: URL;
  try {
    url = new URL(input.broker_url);
  } catch {
    return apiError('invalid_settings', 'broker URL is not a valid URL');
  }
  if (url.protocol !== 'https:') {
    return apiError('invalid_settings', 'broker URL must use https://');
  }
  if (url.username !== '' || url.password !== '') {
    return apiError('invalid_settings', 'broker URL must not contain credentials');
  }
  for (const fallback of input.fallback_urls) {
    if (!fallback.startsWith('https://') || fallback === input.broker_url) {
      return apiError('invalid_settings', `fallback_urls: ${fallback} is not another https:// broker`);
    }
  }
  if (input.ca_path.trim() === '') {
    return apiError('invalid_settings', 'CA certificate path is required');
  }
  if (input.ca_path.includes('missing')) {
    return apiError('invalid_settings', `cannot read CA certificate at ${input.ca_path}`);
  }
  return null;
}

function asSettingsInput(args: unknown): SettingsInput | null {
  if (typeof args !== 'object' || args === null) return null;
  const input = (args as Record<string, unknown>)['input'];
  if (typeof input !== 'object' || input === null) return null;
  const { broker_url, fallback_urls = [], ca_path } = input as Record<string, unknown>;
  if (typeof broker_url !== 'string' || typeof ca_path !== 'string') return null;
  if (!Array.isArray(fallback_urls) || !fallback_urls.every((u) => typeof u === 'string')) return null;
  return { broker_url, fallback_urls: fallback_urls as string[], ca_path };
}

export const MOCK_KEYS: readonly SecurityKeyView[] = [
  { id: 'k-1', name: 'YubiKey 5C', created_at_ms: Date.UTC(2026, 0, 12), revoked_at_ms: null, locked: false },
  { id: 'k-2', name: 'Backup key', created_at_ms: Date.UTC(2026, 1, 3), revoked_at_ms: null, locked: false },
];

/** Commands that use the security key: they may ask for its PIN and a touch. */
const KEY_COMMANDS: ReadonlySet<string> = new Set([
  'login',
  'enroll',
  'confirm_step_up',
  'confirm_elevation',
  ...SESSION_KEY_COMMANDS,
  ...FILES_KEY_COMMANDS,
  ...HOLD_KEY_COMMANDS,
  ...MACHINE_KEY_COMMANDS,
  ...VAULT_KEY_COMMANDS,
]);
/** Commands the core answers locally and at once (no broker, no key): never delayed. */
const PROMPT_COMMANDS: ReadonlySet<string> = new Set(['key_prompt', 'submit_pin', 'cancel_key_prompt']);
const PIN_RETRIES = 8;
/** CTAP2 keys refuse further PINs after three wrong ones until replugged; the core stops asking. */
const PIN_TRIES_PER_OPERATION = 3;
const IDLE: KeyPromptView = { kind: 'idle' };

type PinAnswer = { pin: string } | 'cancel';

/**
 * Ends the installed core's key commands that are still waiting (for a PIN, or a touch under
 * timers a test no longer advances), so that no key operation outlives its test.
 */
let abortKeyCommands: (() => void) | null = null;

function arg(args: unknown, key: string): unknown {
  return typeof args === 'object' && args !== null ? (args as Record<string, unknown>)[key] : undefined;
}

function stringField(value: unknown, key: string): string | null {
  const field = typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[key] : undefined;
  return typeof field === 'string' ? field : null;
}

export function installMockCore(options: MockOptions = {}): MockCore {
  let grant: GrantSummary | null = options.grant ?? null;
  /** Whether `grant` was given; if not, the status shows the elevation model's active grant. */
  let grantGiven = options.grant !== undefined;
  let grantSetAt = performance.now();
  let prompt: KeyPromptView = IDLE;
  /** Set while a key operation waits for the PIN. */
  let answerPin: ((answer: PinAnswer) => void) | null = null;
  const core: MockCore = {
    brokerState: options.brokerState ?? 'connected',
    settings: { broker_url: '', fallback_urls: [], ca_path: '', ca: null, ...options.settings },
    fallbackInUse: null,
    user: options.user ?? null,
    get grant(): GrantSummary | null {
      return grant;
    },
    set grant(value: GrantSummary | null) {
      grant = value;
      grantGiven = true;
      grantSetAt = performance.now();
    },
    elevation: new ElevationModel(
      () => core.user?.name ?? null,
      () => core.user?.roles.includes('admin') === true,
      options,
    ),
    audit: new AuditModel(options),
    history: new HistoryModel(options, () => core.user?.roles.some((r) => r === 'admin' || r === 'helpdesk') === true),
    get machines(): MachineModel {
      return machines;
    },
    get vault(): VaultModel {
      return vault;
    },
    get sessions(): SessionModel {
      return sessions;
    },
    get files(): FilesModel {
      return files;
    },
    get holds(): HoldModel {
      return holds;
    },
    build: options.build ?? { version: '0.1.0', debug: true, virtual_key: false },
    keys: structuredClone(options.keys ?? [...MOCK_KEYS]),
    invites: { ...(options.invites ?? { 'PAW-INVITE-1': 'ada' }) },
    users: [...(options.users ?? ['ada'])],
    loginFailure: undefined,
    enrollFailure: undefined,
    prepareFailure: undefined,
    confirmFailure: undefined,
    stepUpExpiresInSecs: 60,
    stepUpDescription: null,
    pin: options.pin ?? null,
    pinRetries: PIN_RETRIES,
    promptFailure: undefined,
    get prompt(): KeyPromptView {
      return structuredClone(prompt);
    },
    pending: new Map(),
    statusFailure: options.statusFailure,
    signOutRevokes: { access_tokens: 2, refresh_tokens: 1 },
    signOutBrokerError: null,
    saveFailure: undefined,
    calls: [],
    opened: [],
    uninstall: () => resetMockCore(),
  };

  const holds = new HoldModel(core.elevation, () => core.user?.name ?? null, options);
  const machines = new MachineModel(core.elevation, () => core.user?.roles.includes('admin') === true, options);
  const vault = new VaultModel(core.elevation, () => core.user?.roles.includes('admin') === true, options);
  const sessions = new SessionModel(
    core.elevation,
    () => core.user?.roles.includes('admin') === true,
    options,
    holds,
  );
  const files = new FilesModel(sessions);

  const status = (): AppStatus => {
    const fallback = core.fallbackInUse === null ? undefined : core.settings.fallback_urls[core.fallbackInUse];
    const url = core.settings.broker_url === '' ? null : (fallback ?? core.settings.broker_url);
    const state: BrokerState = url === null ? 'unconfigured' : core.brokerState;
    const errors: Partial<Record<BrokerState, ApiError>> = {
      unconfigured: apiError('broker_not_configured', 'no broker configured'),
      unreachable: apiError('broker_unreachable', 'connection refused'),
      untrusted: apiError('broker_untrusted', 'certificate not signed by the pinned CA'),
      incompatible: apiError('broker_protocol', 'broker speaks an unsupported protocol version'),
    };
    return {
      broker: {
        state,
        url,
        failed_over: url !== null && fallback !== undefined,
        version: state === 'connected' ? '0.1.0' : null,
        latency_ms: state === 'connected' ? 12 : null,
        error: errors[state] ?? null,
      },
      user: core.user,
      grant: !grantGiven
        ? core.user === null
          ? null
          : core.elevation.summary()
        : grant === null
          ? null
          : { ...grant, remaining_ms: Math.max(0, Math.round(grant.remaining_ms - (performance.now() - grantSetAt))) },
      build: core.build,
    };
  };

  /** What the broker says to a sign-out: like the core, the user is signed out regardless. */
  const signOutReport = (): SignOutReport => {
    const failure = core.signOutBrokerError;
    core.signOutBrokerError = null;
    if (core.user === null) return { revoked: null, broker_error: null };
    const broker = status().broker;
    const brokerError = failure ?? (broker.state === 'connected' ? null : broker.error);
    if (brokerError !== null) return { revoked: null, broker_error: brokerError };
    return {
      revoked: { session_id: 'mock-session', revoked_at_ms: Date.now(), ...core.signOutRevokes },
      broker_error: null,
    };
  };

  let nextKey = 100;
  let nextPrompt = 1;
  const takeFailure = (key: 'loginFailure' | 'enrollFailure' | 'prepareFailure' | 'confirmFailure'): void => {
    const failure = core[key];
    if (failure === undefined) return;
    core[key] = undefined;
    throw failure;
  };
  const requireUser = (): void => {
    if (core.user === null) throw apiError('unauthenticated', 'sign in first');
  };
  const keyList = (): SecurityKeyView[] => structuredClone(core.keys);
  const findKey = (id: string | null): SecurityKeyView => {
    const key = core.keys.find((k) => k.id === id);
    if (key === undefined) throw apiError('not_found', 'no such security key');
    return key;
  };
  const keyName = (value: unknown): string => {
    const name = typeof value === 'string' ? value.trim() : '';
    if (name === '' || name.length > 64) throw apiError('bad_request', 'a key name is 1 to 64 characters');
    return name;
  };
  const describe = (action: StepUpAction, user: string): string => {
    if (action.op === 'add') return `Add a new security key named "${action.name}" to the account of ${user}`;
    const key = findKey(action.id);
    return `Revoke the security key "${key.name}" (${key.id}) of ${user}; it can no longer sign in or confirm actions`;
  };

  const askPin = (view: KeyPromptView): Promise<PinAnswer> =>
    new Promise((resolve) => {
      answerPin?.('cancel'); // one prompt at a time: an older waiting operation gives up
      prompt = view;
      answerPin = resolve;
    });

  /** Like the core's `with_pin`: ask, try, ask again saying it was wrong, at most three times. */
  const unlockKey = async (pin: string): Promise<void> => {
    let wrong = false;
    for (let tries = 0; tries < PIN_TRIES_PER_OPERATION; tries++) {
      if (core.pinRetries <= 0) throw apiError('pin_blocked', 'the security key PIN is blocked');
      const answer = await askPin({ kind: 'pin', retries: core.pinRetries, wrong }); // answering resets `prompt`
      if (answer === 'cancel') throw apiError('key_cancelled', 'the PIN prompt was cancelled');
      if (answer.pin === pin) {
        core.pinRetries = PIN_RETRIES;
        return;
      }
      core.pinRetries -= 1;
      if (core.pinRetries <= 0) throw apiError('pin_blocked', 'the security key PIN is blocked');
      wrong = true;
    }
    throw apiError('pin_invalid', 'wrong PIN, three times');
  };

  /** A key command: the PIN first (if the key has one), then `delayMs` waiting for a touch. */
  const waiting = new Set<() => void>();
  const keyCommand = (cmd: string, args: unknown, delay: number): Promise<unknown> =>
    new Promise((resolve, reject) => {
      const abort = (): void => reject(apiError('key_cancelled', 'the mock core was removed'));
      waiting.add(abort);
      runKeyCommand(cmd, args, delay)
        .then(resolve, reject)
        .finally(() => waiting.delete(abort));
    });
  const runKeyCommand = async (cmd: string, args: unknown, delay: number): Promise<unknown> => {
    if (core.pin !== null) await unlockKey(core.pin);
    if (delay > 0) {
      prompt = { kind: 'touch' };
      try {
        await new Promise((resolve) => setTimeout(resolve, delay));
      } finally {
        if (prompt.kind === 'touch') prompt = IDLE;
      }
    }
    return handle(cmd, args);
  };

  const handle = (cmd: string, args: unknown): unknown => {
    if (cmd === 'prepare_elevation') {
      requireUser();
      takeFailure('prepareFailure');
    } else if (cmd === 'confirm_elevation') {
      requireUser();
      takeFailure('confirmFailure');
    }
    const elevation = core.elevation.handle(cmd, args, () => {
      requireUser();
      return core.user?.name ?? '';
    });
    if (elevation !== undefined) return elevation;
    const session = core.sessions.handle(cmd, args, () => {
      requireUser();
      return core.user?.name ?? '';
    });
    if (session !== undefined) return session;
    const filesAnswer = core.files.handle(cmd, args, () => {
      requireUser();
      return core.user?.name ?? '';
    });
    if (filesAnswer !== undefined) return filesAnswer;
    const held = core.holds.handle(cmd, args, () => {
      requireUser();
      return core.user?.name ?? '';
    });
    if (held !== undefined) return held;
    const audit = core.audit.handle(cmd, args);
    if (audit !== undefined) return audit;
    const history = core.history.handle(cmd, args, () => {
      requireUser();
      return core.user?.name ?? '';
    });
    if (history !== undefined) return history;
    const machine = core.machines.handle(cmd, args, () => {
      requireUser();
      return core.user?.name ?? '';
    });
    if (machine !== undefined) return machine;
    const vaulted = core.vault.handle(cmd, args, () => {
      requireUser();
      return core.user?.name ?? '';
    });
    if (vaulted !== undefined) return vaulted;
    switch (cmd) {
      case 'key_prompt':
        if (core.promptFailure !== undefined) throw core.promptFailure;
        return structuredClone(prompt);
      case 'submit_pin': {
        const pin = stringField(arg(args, 'input'), 'pin');
        if (pin === null) throw apiError('bad_request', 'expected { input: { pin } }');
        if (new TextEncoder().encode(pin).length > 63) throw apiError('bad_request', 'pin: at most 63 bytes');
        if ([...pin].length < 4) throw apiError('bad_request', 'pin: at least 4 characters');
        const answer = answerPin;
        if (answer === null) throw apiError('bad_request', 'pin: the security key is not asking for a PIN');
        answerPin = null;
        prompt = IDLE;
        answer({ pin });
        return null;
      }
      case 'cancel_key_prompt': {
        const answer = answerPin;
        answerPin = null;
        if (answer !== null) {
          prompt = IDLE;
          answer('cancel');
        }
        return null;
      }
      case 'login': {
        takeFailure('loginFailure');
        const user = stringField(arg(args, 'input'), 'user')?.trim() ?? '';
        if (user === '') throw apiError('bad_request', 'user name is required');
        if (!core.users.includes(user)) throw apiError('webauthn_rejected', 'no security key of this user answered');
        core.user = { name: user, roles: ['engineer'] };
        return structuredClone(core.user);
      }
      case 'enroll': {
        takeFailure('enrollFailure');
        const input = arg(args, 'input');
        const code = stringField(input, 'code')?.trim() ?? '';
        const user = core.invites[code];
        if (user === undefined) throw apiError('invite_invalid', 'invite code is not valid');
        const name = keyName(stringField(input, 'key_name'));
        delete core.invites[code];
        if (!core.users.includes(user)) core.users.push(user);
        core.keys = [{ id: `k-${nextKey++}`, name, created_at_ms: Date.now(), revoked_at_ms: null, locked: false }];
        core.user = { name: user, roles: ['engineer'] };
        return structuredClone(core.user);
      }
      case 'logout': {
        const report = signOutReport();
        core.user = null;
        core.pending.clear();
        core.elevation.pending.clear();
        core.sessions.pending.clear();
        core.holds.pending.clear();
        core.machines.pending.clear();
        core.vault.pending.clear();
        for (const id of [...core.sessions.terminals.keys()]) core.sessions.end(id, 'closed', 'signed out');
        core.sessions.endWatches('signed_out', 'you signed out');
        core.sessions.forwards = [];
        for (const id of [...core.files.connections.keys()]) core.files.end(id, 'closed', 'signed out');
        return report;
      }
      case 'list_keys':
        requireUser();
        return keyList();
      case 'rename_key': {
        requireUser();
        const input = arg(args, 'input');
        const key = findKey(stringField(input, 'id'));
        key.name = keyName(stringField(input, 'name'));
        return keyList();
      }
      case 'prepare_step_up': {
        requireUser();
        takeFailure('prepareFailure');
        const action = arg(args, 'action');
        const op = stringField(action, 'op');
        let canonical: StepUpAction;
        if (op === 'add') {
          canonical = { op: 'add', name: keyName(stringField(action, 'name')) };
        } else if (op === 'revoke') {
          const key = findKey(stringField(action, 'id'));
          if (key.revoked_at_ms !== null) throw apiError('conflict', 'this key is already revoked');
          const active = core.keys.filter((k) => k.revoked_at_ms === null && !k.locked);
          if (active.length === 1 && active[0] === key) throw apiError('conflict', 'cannot revoke your last active key');
          canonical = { op: 'revoke', id: key.id };
        } else {
          throw apiError('bad_request', 'expected { action: { op: "add" | "revoke", … } }');
        }
        const user = core.user?.name ?? '';
        const prompt: StepUpPrompt = {
          id: `su-${nextPrompt++}`,
          purpose: 'key_management',
          description: core.stepUpDescription ?? describe(canonical, user),
          action_hash: fakeHash(JSON.stringify(canonical)),
          expires_in_secs: core.stepUpExpiresInSecs,
        };
        core.pending.set(prompt.id, { action: canonical, prompt, at: performance.now() });
        return structuredClone(prompt);
      }
      case 'confirm_step_up': {
        requireUser();
        const id = arg(args, 'id');
        const pending = typeof id === 'string' ? core.pending.get(id) : undefined;
        if (pending === undefined) throw apiError('challenge_invalid', 'unknown or used step-up');
        if (performance.now() - pending.at > pending.prompt.expires_in_secs * 1000) {
          core.pending.delete(pending.prompt.id);
          throw apiError('challenge_invalid', 'the step-up challenge expired');
        }
        takeFailure('confirmFailure');
        core.pending.delete(pending.prompt.id);
        const action = pending.action;
        if (action.op === 'add') {
          core.keys.push({
            id: `k-${nextKey++}`,
            name: action.name,
            created_at_ms: Date.now(),
            revoked_at_ms: null,
            locked: false,
          });
        } else {
          findKey(action.id).revoked_at_ms = Date.now();
        }
        return keyList();
      }
      case 'cancel_step_up': {
        const id = arg(args, 'id');
        if (typeof id === 'string') {
          core.pending.delete(id);
          core.elevation.pending.delete(id);
          core.sessions.pending.delete(id);
          core.holds.pending.delete(id);
          core.machines.pending.delete(id);
          core.vault.pending.delete(id);
        }
        return null;
      }
      case 'app_status':
        if (core.statusFailure !== undefined) throw core.statusFailure;
        return status();
      case 'get_settings':
        return structuredClone(core.settings);
      case 'save_settings': {
        if (core.saveFailure !== undefined) {
          const failure = core.saveFailure;
          core.saveFailure = undefined;
          throw failure;
        }
        const input = asSettingsInput(args);
        if (input === null) throw apiError('bad_request', 'expected { input: SettingsInput }');
        const problem = validate(input);
        if (problem !== null) throw problem;
        core.settings = {
          broker_url: input.broker_url,
          fallback_urls: input.fallback_urls,
          ca_path: input.ca_path,
          ca: fakeCa(input.ca_path),
        };
        return structuredClone(core.settings);
      }
      case 'open_external': {
        const url = typeof args === 'object' && args !== null ? (args as Record<string, unknown>)['url'] : undefined;
        if (typeof url !== 'string' || !url.startsWith('https://')) {
          throw apiError('url_rejected', 'only https links may be opened');
        }
        core.opened.push(url);
        return null;
      }
      default:
        throw apiError('not_found', `unknown command ${cmd}`);
    }
  };

  abortKeyCommands?.();
  abortKeyCommands = () => {
    answerPin = null;
    prompt = IDLE;
    for (const abort of [...waiting]) abort();
    waiting.clear();
  };
  mockIPC((cmd, args) => {
    core.calls.push({ cmd, args });
    const delay = PROMPT_COMMANDS.has(cmd) ? 0 : (options.delayMs ?? 0);
    if (KEY_COMMANDS.has(cmd) && (core.pin !== null || delay > 0)) return keyCommand(cmd, args, delay);
    if (delay <= 0) return handle(cmd, args);
    return new Promise((resolve, reject) => {
      setTimeout(() => {
        try {
          resolve(handle(cmd, args));
        } catch (e) {
          reject(e as Error);
        }
      }, delay);
    });
  });
  return core;
}

/** Removes any installed mock core (test teardown). */
export function resetMockCore(): void {
  abortKeyCommands?.();
  abortKeyCommands = null;
  clearMocks();
}
