/**
 * The UI's only door to the Rust core.
 *
 * Rules this module keeps (security cases G1/G3):
 * - It is the only place in `src/` that imports `@tauri-apps/*` (a test enforces it).
 * - Every command rejects with an `ApiError`; anything else is normalised to `internal`,
 *   so callers can branch on `code` and never on message text.
 * - Nothing here stores what it passes along: the UI presents, it never holds a secret.
 */
import { invoke } from '@tauri-apps/api/core';
import type { ApiError, AppStatus, ErrorCode, SettingsInput, SettingsView } from './bindings';

export type * from './bindings';

/** Every `ErrorCode` at run time. The checks below fail `npm run check` if bindings.ts drifts. */
export const ERROR_CODES = [
  'bad_request',
  'payload_too_large',
  'unsupported_media_type',
  'not_found',
  'method_not_allowed',
  'timeout',
  'storage_unavailable',
  'internal',
  'invalid_config',
  'invalid_settings',
  'broker_not_configured',
  'broker_unreachable',
  'broker_untrusted',
  'broker_protocol',
  'url_rejected',
  'unauthenticated',
  'reauthentication_required',
  'challenge_invalid',
  'webauthn_rejected',
  'invite_invalid',
  'account_locked',
  'rate_limited',
  'conflict',
] as const satisfies readonly ErrorCode[];

type MissingCode = Exclude<ErrorCode, (typeof ERROR_CODES)[number]>;
const everyCodeListed: [MissingCode] extends [never] ? true : MissingCode = true;
void everyCodeListed;

const KNOWN_CODES: ReadonlySet<string> = new Set(ERROR_CODES);

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && KNOWN_CODES.has(value);
}

export function isApiError(value: unknown): value is ApiError {
  if (typeof value !== 'object' || value === null) return false;
  const record = value as Record<string, unknown>;
  return isErrorCode(record['code']) && typeof record['message'] === 'string';
}

const FALLBACK_MESSAGE = 'The app core returned an unexpected error.';

/** Turns whatever a command rejected with into an `ApiError`. */
export function toApiError(reason: unknown): ApiError {
  if (isApiError(reason)) {
    return { code: reason.code, message: reason.message };
  }
  if (typeof reason === 'string' && reason.trim() !== '') {
    return { code: 'internal', message: reason };
  }
  return { code: 'internal', message: FALLBACK_MESSAGE };
}

async function call<T>(command: string, args?: Record<string, unknown>): Promise<T> {
  try {
    return await invoke<T>(command, args);
  } catch (reason) {
    throw toApiError(reason);
  }
}

export function appStatus(): Promise<AppStatus> {
  return call<AppStatus>('app_status');
}

export function getSettings(): Promise<SettingsView> {
  return call<SettingsView>('get_settings');
}

export function saveSettings(input: SettingsInput): Promise<SettingsView> {
  return call<SettingsView>('save_settings', { input });
}

/** Asks the core to open `url` in the system browser; the core decides whether it may. */
export async function openExternal(url: string): Promise<void> {
  await call<null>('open_external', { url });
}

/** True inside the desktop shell (the core injected its IPC bridge). */
export function hasCore(): boolean {
  return typeof window !== 'undefined' && '__TAURI_INTERNALS__' in window;
}
