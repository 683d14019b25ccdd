/**
 * The UI's only door to the Rust core.
 *
 * Rules this module keeps (security cases G1/G3):
 * - It is the only place in `src/` that imports `@tauri-apps/*` (a test enforces it).
 * - Every command rejects with an `ApiError`; anything else is normalised to `internal`,
 *   so callers can branch on `code` and never on message text.
 * - Nothing here stores what it passes along: the UI presents, it never holds a secret.
 */
import { Channel, invoke } from '@tauri-apps/api/core';
import type {
  ApiError,
  AppStatus,
  AuditPage,
  AuditQueryInput,
  AuditVerifyView,
  CloseReviewInput,
  CommandHoldView,
  ConfirmMachineInput,
  ElevationAction,
  EnrollInput,
  EntitlementList,
  ErrorCode,
  FilesEvent,
  FilesView,
  ForwardView,
  GrantList,
  GrantView,
  HeldCommands,
  HoldDecisionInput,
  Inbox,
  KeyAction,
  KillSessionInput,
  KeyPromptView,
  ListRemoteInput,
  LiveFeed,
  LoginInput,
  MachineCreated,
  MachineInventory,
  MachineSpec,
  MachineView,
  OpenSessionInput,
  RemoteListing,
  PinInput,
  RenameKeyInput,
  RevealInput,
  RevealedSecret,
  RotateInput,
  RevokeGrantInput,
  SavedSessionFile,
  SecurityKeyView,
  SessionFiles,
  SessionHistory,
  SessionHistoryQuery,
  SessionIdInput,
  SessionList,
  SessionMasks,
  SessionRecording,
  SessionUser,
  SessionView,
  SettingsInput,
  SettingsView,
  SignOutReport,
  StartDownloadInput,
  StartUploadInput,
  StepUpPrompt,
  TerminalEvent,
  TerminalInput,
  TerminalResize,
  TerminalView,
  TransferIdInput,
  TransferMachineInput,
  TransferResult,
  TransferStart,
  UploadChunkInput,
  VaultAccountList,
  VaultAccountView,
  WatchEvent,
} from './bindings';

export type * from './bindings';
/** Every length, duration and count the core and the broker enforce (generated from paw-policy). */
export { LIMITS, type Limits } from './limits';

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
  'security_key_missing',
  'pin_invalid',
  'pin_blocked',
  'pin_not_set',
  'key_cancelled',
  'key_timeout',
  'keyring_unavailable',
  'forbidden',
  'audit_unavailable',
  'target_unavailable',
  'recording_tampered',
  'audit_diverged',
  'audit_witness_changed',
  'checked_out',
  'vault_unavailable',
] as const satisfies readonly ErrorCode[];

type MissingCode = Exclude<ErrorCode, (typeof ERROR_CODES)[number]>;
const everyCodeListed: [MissingCode] extends [never] ? true : MissingCode = true;
void everyCodeListed;

/**
 * The action a key-management step-up signs, as the core reads it: paw-proto's `KeyAction`
 * is `#[serde(tag = "op", rename_all = "snake_case")]`. Until bindings.ts is regenerated it may
 * still show the older externally tagged shape; the check below tolerates exactly that one and
 * fails `npm run check` on any other drift. Once regenerated, `StepUpAction` equals `KeyAction`.
 */
export type StepUpAction = { op: 'add'; name: string } | { op: 'revoke'; id: string };
type StaleKeyAction = { Add: { name: string } } | { Revoke: { id: string } };
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const keyActionWire: Same<KeyAction, StepUpAction> extends true
  ? true
  : Same<KeyAction, StaleKeyAction> extends true
    ? true
    : KeyAction = true;
void keyActionWire;

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

/*
 * Key operations. While one runs, the key may want its PIN or a touch; the core says which
 * through `key_prompt`, which the UI polls only while `onKeyOperation` reports one running.
 * Only the count of running operations is kept here, nothing they carry.
 */
type KeyOperationListener = (running: boolean) => void;
const keyOperationListeners = new Set<KeyOperationListener>();
let keyOperations = 0;

function announceKeyOperations(running: boolean): void {
  for (const listener of [...keyOperationListeners]) {
    try {
      listener(running);
    } catch {
      // A listener's failure must not change the outcome of the key operation.
    }
  }
}

/** Runs a command that uses the security key, counted for `onKeyOperation`. */
async function keyOperation<T>(run: () => Promise<T>): Promise<T> {
  const pending = run(); // issued first, so the first poll can already see what it asks for
  if (++keyOperations === 1) announceKeyOperations(true);
  try {
    return await pending;
  } finally {
    if (--keyOperations === 0) announceKeyOperations(false);
  }
}

/**
 * Calls `listener(true)` when the first key operation (`login`, `enroll`, `confirmStepUp`,
 * `confirmElevation`)
 * starts and `listener(false)` when the last one ends; at once with `true` if one is already
 * running. Returns the unsubscribe function.
 */
export function onKeyOperation(listener: KeyOperationListener): () => void {
  keyOperationListeners.add(listener);
  if (keyOperations > 0) listener(true);
  return () => {
    keyOperationListeners.delete(listener);
  };
}

/** Registers the first security key with a one-time invite code, and signs in. */
export function enroll(input: EnrollInput): Promise<SessionUser> {
  return keyOperation(() => call<SessionUser>('enroll', { input }));
}

/** Signs in with a security key (the core runs the WebAuthn ceremony). */
export function login(input: LoginInput): Promise<SessionUser> {
  return keyOperation(() => call<SessionUser>('login', { input }));
}

/** What the running key operation needs from the user now: nothing, a touch, or the PIN. */
export function keyPrompt(): Promise<KeyPromptView> {
  return call<KeyPromptView>('key_prompt');
}

/**
 * Hands the PIN to the key operation that asked for it. Passed along, never kept: the core
 * rejects with `bad_request` when no PIN is being asked for or its length is out of range.
 */
export async function submitPin(pin: string): Promise<void> {
  const input: PinInput = { pin };
  await call<null>('submit_pin', { input });
}

/** Answers the PIN prompt with "no": the running key operation fails with `key_cancelled`. */
export async function cancelKeyPrompt(): Promise<void> {
  await call<null>('cancel_key_prompt');
}

/**
 * Signs out. The core always forgets the sign-in on this computer; the report says whether the
 * broker revoked it too (and how many tokens), or why it could not be told.
 */
export function logout(): Promise<SignOutReport> {
  return call<SignOutReport>('logout');
}

export function listKeys(): Promise<SecurityKeyView[]> {
  return call<SecurityKeyView[]>('list_keys');
}

export function renameKey(input: RenameKeyInput): Promise<SecurityKeyView[]> {
  return call<SecurityKeyView[]>('rename_key', { input });
}

/** Asks the broker for a step-up challenge for `action`; nothing is signed yet. */
export function prepareStepUp(action: StepUpAction): Promise<StepUpPrompt> {
  return call<StepUpPrompt>('prepare_step_up', { action });
}

/** Signs the prepared challenge on the security key and performs the action. */
export function confirmStepUp(id: string): Promise<SecurityKeyView[]> {
  return keyOperation(() => call<SecurityKeyView[]>('confirm_step_up', { id }));
}

/** Cancels a prepared step-up, key management or elevation alike (best effort in the core). */
export async function cancelStepUp(id: string): Promise<void> {
  await call<null>('cancel_step_up', { id });
}

/*
 * Just-in-time elevation. The broker decides and keeps the clock: `GrantList.now_ms` and
 * `Inbox.now_ms` are its time at answer, for countdowns that the workstation clock cannot
 * stretch. Requests, decisions and break-glass go through a step-up like key management:
 * `prepareElevation` (the core words the action) → the user approves → `confirmElevation`.
 */

/** The entitlements the signed-in user may request. */
export function listEntitlements(): Promise<EntitlementList> {
  return call<EntitlementList>('list_entitlements');
}

/** The signed-in user's requests and grants, newest first, with the broker's time. */
export function listGrants(): Promise<GrantList> {
  return call<GrantList>('list_grants');
}

/** Requests the caller may decide, and break-glass uses awaiting the caller's review. */
export function approvalsInbox(): Promise<Inbox> {
  return call<Inbox>('approvals_inbox');
}

/**
 * Other people's approved or active grants the caller may revoke (as an approver of their
 * entitlement, or an administrator), newest first, with the broker's time. Never the caller's own.
 */
export function listOversight(): Promise<GrantList> {
  return call<GrantList>('list_oversight');
}

/** Asks the broker for a step-up challenge for an elevation `action`; nothing is signed yet. */
export function prepareElevation(action: ElevationAction): Promise<StepUpPrompt> {
  return call<StepUpPrompt>('prepare_elevation', { action });
}

/** Signs the prepared elevation on the security key; the broker answers with the grant as stored. */
export function confirmElevation(id: string): Promise<GrantView> {
  return keyOperation(() => call<GrantView>('confirm_elevation', { id }));
}

/** Withdraws one of the caller's own requests before it was used. */
export function cancelRequest(id: string): Promise<GrantView> {
  return call<GrantView>('cancel_request', { id });
}

/** Ends one of the caller's own active grants early. */
export function releaseGrant(id: string): Promise<GrantView> {
  return call<GrantView>('release_grant', { id });
}

/** Ends someone's grant (an approver of its entitlement, or an administrator), with a reason for the audit trail. */
export function revokeGrant(input: RevokeGrantInput): Promise<GrantView> {
  return call<GrantView>('revoke_grant', { input });
}

/** The caller's review of someone else's break-glass use; two make it closed. */
export function closeReview(input: CloseReviewInput): Promise<GrantView> {
  return call<GrantView>('close_review', { input });
}

/** Live updates received since `since` (the `seq` of the previous answer; 0 at first). */
export function liveEvents(since: number): Promise<LiveFeed> {
  return call<LiveFeed>('live_events', { since });
}

/*
 * The workstation's local audit trail. Local reads: no broker call, no sign-in needed by the
 * core. The export comes back as text; the UI saves it as a download, so no path crosses IPC.
 */

/** One page of the local trail, newest first. */
export function auditQuery(input: AuditQueryInput): Promise<AuditPage> {
  return call<AuditPage>('audit_query', { input });
}

/** Verifies the whole hash chain; names the first bad record if there is one. */
export function auditVerify(): Promise<AuditVerifyView> {
  return call<AuditVerifyView>('audit_verify');
}

/** The records matching `input`'s filters (paging ignored) as inert JSON lines. */
export function auditExport(input: AuditQueryInput): Promise<string> {
  return call<string>('audit_export', { input });
}

/*
 * Brokered sessions. Opening one is a session-scoped step-up on an active grant:
 * `prepareSession` (the broker words what is signed) → the user approves → `openTerminal`
 * (SSH, output through a channel) or `openForward` (PostgreSQL on a loopback port). The key is
 * touched in the open call, like `confirmElevation`. No credential ever reaches the UI.
 */

/** Asks for a session step-up on one of the caller's active grants; nothing is signed yet. */
export function prepareSession(input: OpenSessionInput): Promise<StepUpPrompt> {
  return call<StepUpPrompt>('prepare_session', { input });
}

/**
 * Signs the prepared session step-up (`id`) and opens an SSH terminal. Output, warnings and the
 * end arrive through `onEvent`, possibly before this resolves.
 */
export function openTerminal(id: string, onEvent: (event: TerminalEvent) => void): Promise<TerminalView> {
  const channel = new Channel<TerminalEvent>();
  channel.onmessage = onEvent;
  return keyOperation(() => call<TerminalView>('open_terminal', { id, channel }));
}

/**
 * Signs the prepared session step-up (`id`) and hands the SSH session to a stock `ssh` in the
 * user's own terminal program; the one-time credential stays between the core and `ssh`.
 */
export function openInTerminal(id: string): Promise<TerminalView> {
  return keyOperation(() => call<TerminalView>('open_in_terminal', { id }));
}

/** Signs the prepared session step-up (`id`) and opens a local PostgreSQL port. */
export function openForward(id: string): Promise<ForwardView> {
  return keyOperation(() => call<ForwardView>('open_forward', { id }));
}

/** Keystrokes or pasted text for a terminal, as typed (not encoded). */
export async function terminalInput(input: TerminalInput): Promise<void> {
  await call<null>('terminal_input', { input });
}

export async function terminalResize(input: TerminalResize): Promise<void> {
  await call<null>('terminal_resize', { input });
}

/** Closes one of the caller's terminals (its channel then reports `ended`, reason `closed`). */
export async function closeTerminal(input: SessionIdInput): Promise<void> {
  await call<null>('close_terminal', { input });
}

/*
 * File transfer on an SSH grant: a session step-up opens a file connection (the broker's SFTP,
 * checked against the grant's file rules). Uploads send the bytes of the file the user picked,
 * in order, in chunks of at most `TransferStart.chunk_bytes`; downloads are written by the core
 * into the user's download directory and `TransferStart.local_path` says where. Progress and the
 * connection's end arrive through the channel given at open.
 */

/** Signs the prepared session step-up (`id`) and opens a file connection. */
export function openFiles(id: string, onEvent: (event: FilesEvent) => void): Promise<FilesView> {
  const channel = new Channel<FilesEvent>();
  channel.onmessage = onEvent;
  return keyOperation(() => call<FilesView>('open_files', { id, channel }));
}

export async function closeFiles(input: SessionIdInput): Promise<void> {
  await call<null>('close_files', { input });
}

/** One remote directory, directories first. */
export function listRemote(input: ListRemoteInput): Promise<RemoteListing> {
  return call<RemoteListing>('list_remote', { input });
}

/** Creates (or truncates) the remote file; the bytes follow with `uploadChunk`, then `finishTransfer`. */
export function startUpload(input: StartUploadInput): Promise<TransferStart> {
  return call<TransferStart>('start_upload', { input });
}

/** The next bytes of an upload (base64), at `offset` = bytes sent so far. */
export async function uploadChunk(input: UploadChunkInput): Promise<void> {
  await call<null>('upload_chunk', { input });
}

export function startDownload(input: StartDownloadInput): Promise<TransferStart> {
  return call<TransferStart>('start_download', { input });
}

/**
 * Ends an upload (all bytes sent; the broker may hold the close for an approval, so this can
 * take long) or waits for a download; resolves with the bytes moved and their SHA-256, or with
 * `cancelled: true` after `cancelTransfer`.
 */
export function finishTransfer(input: TransferIdInput): Promise<TransferResult> {
  return call<TransferResult>('finish_transfer', { input });
}

export async function cancelTransfer(input: TransferIdInput): Promise<void> {
  await call<null>('cancel_transfer', { input });
}

/** Stops one of the caller's local ports. */
export async function stopForward(input: SessionIdInput): Promise<void> {
  await call<null>('stop_forward', { input });
}

/** The caller's open local ports. */
export function listForwards(): Promise<ForwardView[]> {
  return call<ForwardView[]>('list_forwards');
}

/**
 * Live sessions: everyone's for an administrator; otherwise the caller's own and those of the
 * entitlements the caller approves. `may_watch` marks the ones the caller may watch.
 */
export function listLiveSessions(): Promise<SessionList> {
  return call<SessionList>('list_live_sessions');
}

/** Asks for the step-up that ends someone's session (administrators), with a reason. */
export function prepareKillSession(input: KillSessionInput): Promise<StepUpPrompt> {
  return call<StepUpPrompt>('prepare_kill_session', { input });
}

/** Signs the prepared kill step-up; the broker answers with the session as it ended. */
export function confirmKillSession(id: string): Promise<SessionView> {
  return keyOperation(() => call<SessionView>('confirm_kill_session', { id }));
}

/*
 * Live oversight: an administrator, or an approver of a session's entitlement, watches someone
 * else's live SSH session read-only. The broker decides who may, tells the watched user, and
 * audits the watch. Nothing goes from a watch towards the session: the pane's only calls are
 * these two.
 */

/**
 * Starts watching live session `sessionId`. Resolves once the broker accepted; rejects with its
 * `{code, message}` (`forbidden`, `not_found`, `conflict` naming the broker that carries the
 * session). The screen (`start`, again after falling behind: reset the terminal), output,
 * resizes and, last, `ended` arrive through `onEvent`, possibly before this resolves.
 */
export async function watchSession(sessionId: string, onEvent: (event: WatchEvent) => void): Promise<void> {
  const channel = new Channel<WatchEvent>();
  channel.onmessage = onEvent;
  const input: SessionIdInput = { session_id: sessionId };
  await call<null>('watch_session', { input, channel });
}

/** Stops watching `sessionId` (its channel then reports `ended`, reason `stopped`); no error if it already ended. */
export async function stopWatch(sessionId: string): Promise<void> {
  const input: SessionIdInput = { session_id: sessionId };
  await call<null>('stop_watch', { input });
}

/*
 * Held commands (command control): a command the entitlement's rules mark `step_up` or
 * `approve` waits in its session until the session's own user confirms it with a step-up, or
 * another person approves it. The UI names a hold by id and answers yes or no; the core takes
 * the command, session and target it signs from the broker's own list.
 */

/** The held commands the caller may act on (their own, and those they may approve), with the broker's time. */
export function listHolds(): Promise<HeldCommands> {
  return call<HeldCommands>('list_holds');
}

/**
 * Asks for the step-up that answers a held command: run one's own (`approve: true`), or, as an
 * approver, let someone else's run or refuse it. Nothing is signed yet.
 */
export function prepareHoldDecision(input: HoldDecisionInput): Promise<StepUpPrompt> {
  return call<StepUpPrompt>('prepare_hold_decision', { input });
}

/** Signs the prepared hold step-up; the broker answers with the hold as decided. */
export function confirmHoldDecision(id: string): Promise<CommandHoldView> {
  return keyOperation(() => call<CommandHoldView>('confirm_hold_decision', { id }));
}

/**
 * One page of the broker's session history, newest first: everyone's for help-desk and
 * administrators, the caller's own otherwise.
 */
export function sessionHistory(input: SessionHistoryQuery): Promise<SessionHistory> {
  return call<SessionHistory>('session_history', { input });
}

/**
 * A session's recording (asciicast v2) for the replay player: checked by the broker against its
 * audit record, with the configured secrets masked. The broker audits every replay.
 */
export function sessionRecording(sessionId: string): Promise<SessionRecording> {
  return call<SessionRecording>('session_recording', { input: { session_id: sessionId } });
}

/**
 * The patterns the broker masks in every replay (for Settings), whether they are its defaults,
 * and what replaces each match. Any signed-in user may read them.
 */
export function sessionMasks(): Promise<SessionMasks> {
  return call<SessionMasks>('session_masks');
}

/**
 * The files a session moved through SFTP, in order: path, direction, size, SHA-256, outcome and
 * whether the broker kept a copy. For help-desk, administrators and the session's own user.
 */
export function sessionFiles(sessionId: string): Promise<SessionFiles> {
  return call<SessionFiles>('session_files', { input: { session_id: sessionId } });
}

/**
 * Saves a session file's captured copy: the core fetches it, checks its SHA-256 against the
 * broker's and writes it to a new file in the download directory. The bytes never come here;
 * the answer says where they went and their hash. The broker and the core both audit it.
 */
export function saveSessionFile(sessionId: string, n: number): Promise<SavedSessionFile> {
  return call<SavedSessionFile>('save_session_file', { input: { session_id: sessionId, n } });
}

/*
 * Machine identities (CI/CD, services, automation). The broker decides who sees which machine
 * (administrators every one, others those they own or back up) and computes the flags.
 * Creating a machine and handing one to a new owner are administrators' step-ups: prepare (the
 * core words the whole spec) → the user approves → confirm. A key machine's join token comes
 * back once from `confirmCreateMachine`: it is the machine operator's single-use secret, shown
 * once by the page and kept nowhere, here included.
 */

/** The machines the caller may see, with the broker's time. */
export function listMachines(): Promise<MachineInventory> {
  return call<MachineInventory>('list_machines');
}

/** Asks for the step-up that creates the machine `spec`; nothing is signed yet. */
export function prepareCreateMachine(spec: MachineSpec): Promise<StepUpPrompt> {
  return call<StepUpPrompt>('prepare_create_machine', { spec });
}

/**
 * Signs the prepared creation with the security key. `input.spec` must be the spec the prompt
 * was prepared for (the core checks its hash before the key is touched).
 */
export function confirmCreateMachine(input: ConfirmMachineInput): Promise<MachineCreated> {
  return keyOperation(() => call<MachineCreated>('confirm_create_machine', { input }));
}

/** Asks for the step-up that makes `input.owner` the owner of `input.machine`. */
export function prepareTransferMachine(input: TransferMachineInput): Promise<StepUpPrompt> {
  return call<StepUpPrompt>('prepare_transfer_machine', { input });
}

/** Signs the prepared transfer; the broker answers with the machine as it is now. */
export function confirmTransferMachine(id: string): Promise<MachineView> {
  return keyOperation(() => call<MachineView>('confirm_transfer_machine', { id }));
}

/*
 * Vaulted credentials: shared accounts (an appliance's root, a database owner) whose secrets the
 * broker keeps and rotates. The list is metadata only. A reveal is its own step-up, bound to the
 * account, one of the caller's grants on its target and a reason: prepare (the core takes the
 * account's name from the broker's own list) → the user approves → confirm. `confirmReveal` is
 * the one command whose answer carries a target's secret: it is passed to the caller and kept
 * nowhere here (no store, no storage, no log); the page shows it once and drops it.
 */

/** The vaulted accounts the caller may see, with their holder and rotation status, and the broker's time. */
export function listVaultAccounts(): Promise<VaultAccountList> {
  return call<VaultAccountList>('list_vault_accounts');
}

/** Asks for the step-up that reveals an account's secret under one of the caller's grants; nothing is signed yet. */
export function prepareReveal(input: RevealInput): Promise<StepUpPrompt> {
  return call<StepUpPrompt>('prepare_reveal', { input });
}

/** Signs the prepared reveal; resolves with the secret, once, and until when to show it (broker time). */
export function confirmReveal(id: string): Promise<RevealedSecret> {
  return keyOperation(() => call<RevealedSecret>('confirm_reveal', { id }));
}

/** Asks for an administrator's step-up that rotates an account's secret now. */
export function prepareRotation(input: RotateInput): Promise<StepUpPrompt> {
  return call<StepUpPrompt>('prepare_rotation', { input });
}

/** Signs the prepared rotation; resolves with the account as it stands after the attempt. */
export function confirmRotation(id: string): Promise<VaultAccountView> {
  return keyOperation(() => call<VaultAccountView>('confirm_rotation', { id }));
}

/** True inside the desktop shell (the core injected its IPC bridge). */
export function hasCore(): boolean {
  return typeof window !== 'undefined' && '__TAURI_INTERNALS__' in window;
}
