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
  SessionUser,
  SettingsInput,
  SettingsView,
} from './bindings';

export interface MockOptions {
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
}

export interface MockCore {
  brokerState: Exclude<BrokerState, 'unconfigured'>;
  settings: SettingsView;
  user: SessionUser | null;
  /**
   * The active grant as of the moment it is assigned. Like the broker, the mock keeps its own
   * clock: `app_status` reports `remaining_ms` minus the time elapsed since (performance.now()).
   */
  grant: GrantSummary | null;
  build: BuildInfo;
  /** When set, `app_status` rejects with this value (any shape, to test normalisation). */
  statusFailure: unknown;
  /** When set, the next `save_settings` rejects with this value. */
  saveFailure: unknown;
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
  const { broker_url, ca_path } = input as Record<string, unknown>;
  if (typeof broker_url !== 'string' || typeof ca_path !== 'string') return null;
  return { broker_url, ca_path };
}

export function installMockCore(options: MockOptions = {}): MockCore {
  let grant: GrantSummary | null = options.grant ?? null;
  let grantSetAt = performance.now();
  const core: MockCore = {
    brokerState: options.brokerState ?? 'connected',
    settings: { broker_url: '', ca_path: '', ca: null, ...options.settings },
    user: options.user ?? null,
    get grant(): GrantSummary | null {
      return grant;
    },
    set grant(value: GrantSummary | null) {
      grant = value;
      grantSetAt = performance.now();
    },
    build: options.build ?? { version: '0.1.0', debug: true },
    statusFailure: options.statusFailure,
    saveFailure: undefined,
    calls: [],
    opened: [],
    uninstall: () => clearMocks(),
  };

  const status = (): AppStatus => {
    const url = core.settings.broker_url === '' ? null : core.settings.broker_url;
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
        version: state === 'connected' ? '0.1.0' : null,
        latency_ms: state === 'connected' ? 12 : null,
        error: errors[state] ?? null,
      },
      user: core.user,
      grant:
        grant === null
          ? null
          : { ...grant, remaining_ms: Math.max(0, Math.round(grant.remaining_ms - (performance.now() - grantSetAt))) },
      build: core.build,
    };
  };

  const handle = (cmd: string, args: unknown): unknown => {
    switch (cmd) {
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
        core.settings = { broker_url: input.broker_url, ca_path: input.ca_path, ca: fakeCa(input.ca_path) };
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

  mockIPC((cmd, args) => {
    core.calls.push({ cmd, args });
    const delay = options.delayMs ?? 0;
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
  clearMocks();
}
