// Generated from crates/paw-proto by `cargo xtask bindings`. Do not edit by hand:
// the test suite fails when this file and the Rust types drift apart.

export type ErrorCode = "bad_request" | "payload_too_large" | "unsupported_media_type" | "not_found" | "method_not_allowed" | "timeout" | "storage_unavailable" | "internal" | "invalid_config" | "invalid_settings" | "broker_not_configured" | "broker_unreachable" | "broker_untrusted" | "broker_protocol" | "url_rejected" | "unauthenticated" | "reauthentication_required" | "challenge_invalid" | "webauthn_rejected" | "invite_invalid" | "account_locked" | "rate_limited" | "conflict" | "security_key_missing" | "pin_invalid" | "pin_blocked" | "pin_not_set" | "key_cancelled" | "key_timeout" | "keyring_unavailable" | "forbidden" | "audit_unavailable" | "target_unavailable" | "audit_diverged" | "audit_witness_changed" | "recording_tampered" | "checked_out" | "vault_unavailable";

export type ApiError = { code: ErrorCode, message: string, };

export type BrokerState = "unconfigured" | "connected" | "unreachable" | "untrusted" | "incompatible";

export type BrokerStatus = { state: BrokerState, 
/**
 * The broker in use: the primary, or a fallback after the primary could not be reached.
 */
url: string | null, 
/**
 * Whether `url` is a fallback broker rather than the primary one.
 */
failed_over: boolean, 
/**
 * Broker version when connected.
 */
version: string | null, 
/**
 * Round-trip time of the last health check.
 */
latency_ms: number | null, 
/**
 * Why the broker is not connected, when it is not.
 */
error: ApiError | null, };

export type SessionUser = { name: string, roles: Array<string>, };

export type SignOutReport = { 
/**
 * What the broker revoked, when it confirmed the sign-out.
 */
revoked: SignedOut | null, 
/**
 * Why the broker did not confirm it (unreachable, refused, …); the sign-in then ends at
 * the broker when it next expires. Both fields are empty when nobody was signed in.
 */
broker_error: ApiError | null, };

export type GrantSummary = { id: string, target: string, role: string, 
/**
 * Milliseconds left by the broker's clock when this status was taken. The UI counts down
 * from here with its own monotonic clock, so a wrong workstation clock cannot extend it.
 */
remaining_ms: number, };

export type BuildInfo = { version: string, debug: boolean, 
/**
 * The insecure virtual security key is the authenticator (demo and test builds only; case
 * G5). The UI must say so wherever it is in use.
 */
virtual_key: boolean, };

export type EnrollInput = { code: string, 
/**
 * A name for the key, shown on the security keys page.
 */
key_name: string, };

export type LoginInput = { user: string, };

export type SecurityKeyView = { id: string, name: string, created_at_ms: number, revoked_at_ms: number | null, locked: boolean, };

export type RenameKeyInput = { id: string, name: string, };

export type KeyAction = { "op": "add", name: string, } | { "op": "revoke", id: string, };

export type Purpose = "login" | "request" | "approve" | "session" | "break_glass" | "key_management" | "kill_session" | "command" | "approve_command" | "manage_machine" | "reveal_secret" | "rotate_secret";

export type StepUpPrompt = { 
/**
 * Handle for `confirm_step_up` / `cancel_step_up`; single use, kept only in the core.
 */
id: string, purpose: Purpose, description: string, 
/**
 * Hex SHA-256 of the canonical action, for the curious and for support.
 */
action_hash: string, 
/**
 * Seconds the broker gives the user to answer.
 */
expires_in_secs: number, };

export type KeyPromptView = { "kind": "idle" } | { "kind": "touch" } | { "kind": "pin", retries: number | null, wrong: boolean, };

export type PinInput = { pin: string, };

export type EntitlementView = { id: string, description: string, 
/**
 * `ssh` or `postgres`.
 */
target_kind: string, 
/**
 * The anchored target pattern (or exact name) a request must name a target within.
 */
target: string, role: string, max_duration_secs: number, 
/**
 * The approval rule in words ("needs 2 distinct approvers from dba-leads; …").
 */
rule: string, 
/**
 * True when a step-up alone approves a request.
 */
auto_approve: boolean, 
/**
 * When set, a ticket matching this pattern is required.
 */
ticket_pattern: string | null, 
/**
 * When set, break-glass is allowed for at most this long.
 */
break_glass_max_secs: number | null, 
/**
 * The command rules its sessions run under; `None`: every command runs.
 */
commands: CommandRulesView | null, };

export type CommandRulesView = { 
/**
 * What happens to a command no rule matches: `allow`, `warn`, `step_up`, `approve`, `deny`.
 */
default: string, 
/**
 * Whether what cannot be decided (a program from a variable, a script) is held.
 */
strict: boolean, 
/**
 * In order: the first that matches decides.
 */
rules: Array<CommandRuleView>, };

export type CommandRuleView = { 
/**
 * The match in words: `rm`, `systemctl status *`, `rm with -r -f`.
 */
matches: string, action: string, reason: string | null, };

export type EntitlementList = { entitlements: Array<EntitlementView>, };

export type DecisionView = { approver: string, approve: boolean, comment: string, at_ms: number, };

export type GrantView = { id: string, user: string, entitlement: string, target_kind: string, target: string, role: string, duration_secs: number, justification: string, ticket: string | null, break_glass: boolean, state: string, created_at_ms: number, 
/**
 * Requested start; `None` means as soon as approved.
 */
start_at_ms: number | null, starts_at_ms: number | null, ends_at_ms: number | null, ended_at_ms: number | null, 
/**
 * Why it ended or was refused, in words (expired, released, "revoked by bob: …").
 */
end_reason: string | null, decisions: Array<DecisionView>, 
/**
 * The approval rule in words, from the entitlement as it is now.
 */
rule: string, 
/**
 * Approvals still missing while pending.
 */
approvals_missing: number, 
/**
 * Break-glass only: who closed the review so far, and whether it is closed.
 */
reviewers: Array<string>, review_closed: boolean, };

export type GrantList = { grants: Array<GrantView>, now_ms: number, };

export type InboxItem = { request: GrantView, 
/**
 * The requester's latest grants (newest first), for context.
 */
requester_recent: Array<GrantView>, 
/**
 * Separation of duties in words ("needs 2 of dba-leads; the requester cannot approve").
 */
rule: string, };

export type Inbox = { requests: Array<InboxItem>, reviews: Array<GrantView>, now_ms: number, };

export type RevokeGrantRequest = { reason: string, };

export type CloseReviewRequest = { comment: string, };

export type LiveEvent = { 
/**
 * `request_new`, `request_decided`, `grant_started`, `grant_warning`, `grant_ended`,
 * `break_glass`, `review_closed`, and for held commands `command_held` and
 * `command_decided` (`state` is the hold's: pending, released, refused, expired).
 */
kind: string, grant_id: string, state: string, message: string, at_ms: number, };

export type ElevationAction = { "op": "request", entitlement: string, target: string, role: string, duration_secs: number, justification: string, ticket: string | null, 
/**
 * Unix ms by the broker's clock; `None` = as soon as approved.
 */
start_at_ms: number | null, } | { "op": "decide", request_id: string, approve: boolean, comment: string, } | { "op": "break_glass", entitlement: string, target: string, role: string, duration_secs: number, justification: string, };

export type RevokeGrantInput = { id: string, reason: string, };

export type CloseReviewInput = { id: string, comment: string, };

export type LiveFeed = { 
/**
 * The sequence number of the newest event held; pass it as `since` next time.
 */
seq: number, events: Array<LiveEvent>, 
/**
 * Whether the core's live connection to the broker is up (else the UI polls slower data).
 */
connected: boolean, };

export type AppStatus = { broker: BrokerStatus, user: SessionUser | null, grant: GrantSummary | null, build: BuildInfo, };

export type SettingsInput = { 
/**
 * `https://host[:port]`; plain http is refused.
 */
broker_url: string, 
/**
 * More brokers of the same deployment (same database, CA and witness key), tried in this
 * order when the one in use cannot be reached. Same form as `broker_url`.
 */
fallback_urls: Array<string>, 
/**
 * Path to the PEM file of the broker's CA. The client trusts this CA alone.
 */
ca_path: string, };

export type CaInfo = { subject: string, 
/**
 * SHA-256 of the DER certificate, upper-case hex pairs separated by colons.
 */
fingerprint_sha256: string, 
/**
 * RFC 3339.
 */
not_after: string, };

export type SettingsView = { broker_url: string, fallback_urls: Array<string>, ca_path: string, ca: CaInfo | null, };

export type AuditOutcome = "started" | "success" | "failure" | "denied";

export type AuditQueryInput = { 
/**
 * Records at or after this time (Unix ms).
 */
from_ms: number | null, 
/**
 * Records before this time (Unix ms, exclusive).
 */
until_ms: number | null, 
/**
 * Exact kind (action), e.g. `grant.release`.
 */
kind: string | null, 
/**
 * A substring of the target (subject), case-insensitive.
 */
target: string | null, outcome: AuditOutcome | null, 
/**
 * Words that must all occur in the details (justifications, comments, descriptions).
 */
text: string | null, 
/**
 * Page size, 1 to 500.
 */
limit: number, offset: number, };

export type AuditRecordView = { seq: number, time_ms: number, actor: string, kind: string, target: string, outcome: AuditOutcome, 
/**
 * The record's detail as indented JSON text.
 */
detail: string, 
/**
 * The record's hash, hex.
 */
hash: string, 
/**
 * The previous record's hash, hex.
 */
prev_hash: string, };

export type AuditPage = { records: Array<AuditRecordView>, offset: number, 
/**
 * More records match after this page.
 */
has_more: boolean, };

export type AuditBadRecord = { seq: number, reason: string, };

export type AuditVerifyView = { ok: boolean, 
/**
 * Records verified (the chain's length when `ok`).
 */
records: number, 
/**
 * The chain head's hash, hex (empty when verification failed).
 */
head_hash: string, 
/**
 * The first bad record, when one is named.
 */
first_bad: AuditBadRecord | null, 
/**
 * Why verification could not complete when no record is named (the file is damaged below
 * the records, unreadable, …).
 */
problem: string | null, };

export type SessionView = { id: string, grant_id: string, user: string, 
/**
 * `ssh` or `postgres`.
 */
target_kind: string, target: string, 
/**
 * The login (SSH principal) or database role the grant gives.
 */
role: string, started_at_ms: number, 
/**
 * When the grant ends; the broker closes the session then at the latest.
 */
grant_ends_at_ms: number, ended_at_ms: number | null, 
/**
 * Why it ended: `closed`, `grant_ended`, `revoked`, `killed`, `recording_failed`,
 * `broker_restart`, `broker_shutdown`, `broker_lost`, `database_lost`, `target_closed`, `command_denied`.
 */
end_reason: string | null, 
/**
 * SHA-256 (hex) of the finished recording, also in the broker's audit log.
 */
recording_sha256: string | null, 
/**
 * The caller may watch this live session read-only (`GET /v1/sessions/{id}/watch`): an
 * SSH session of someone else, and the caller an administrator or an approver of its
 * entitlement. Absent (false) from a broker before live oversight.
 */
may_watch: boolean, };

export type SessionList = { sessions: Array<SessionView>, };

export type CommandHoldView = { id: string, session_id: string, 
/**
 * Whose session holds it.
 */
user: string, entitlement: string, target: string, 
/**
 * The normalized command a step-up or approval is bound to.
 */
command: string, 
/**
 * `step_up` (the session's user releases it) or `approve` (someone else decides).
 */
needs: string, 
/**
 * `pending`, `released`, `refused` or `expired`.
 */
state: string, created_at: number, expires_at: number, decided_by: string | null, };

export type CommandHoldList = { holds: Array<CommandHoldView>, };

export type HoldDecisionInput = { hold_id: string, 
/**
 * `true`: run it (the user's own step-up) or let it run (an approver); `false`: an
 * approver refuses it.
 */
approve: boolean, };

export type HeldCommands = { holds: Array<CommandHoldView>, 
/**
 * The broker's time now as the core estimates it (unix ms); `None` before the core has
 * heard the broker's clock, when no countdown is shown.
 */
now_ms: number | null, };

export type OpenSessionInput = { grant_id: string, };

export type TerminalView = { session_id: string, grant_id: string, target: string, role: string, grant_ends_at_ms: number, };

export type TerminalEvent = { "type": "output", data: string, } | { "type": "warning", message: string, ends_at_ms: number, } | { "type": "ended", reason: string, message: string, };

export type TerminalInput = { session_id: string, data: string, };

export type TerminalResize = { session_id: string, cols: number, rows: number, };

export type SessionIdInput = { session_id: string, };

export type KillSessionInput = { session_id: string, reason: string, };

export type ForwardView = { session_id: string, grant_id: string, target: string, database: string, 
/**
 * Always `127.0.0.1:PORT`.
 */
local_addr: string, grant_ends_at_ms: number, };

export type SessionHistoryQuery = { 
/**
 * A part of the user's name, case-insensitive.
 */
user: string | null, 
/**
 * A part of the target's name, case-insensitive.
 */
target: string | null, 
/**
 * Why it ended, exactly (see [`SessionView::end_reason`]), or `live` for sessions that
 * have not ended.
 */
reason: string | null, 
/**
 * Sessions that started at or after this time (Unix ms).
 */
from_ms: number | null, 
/**
 * Sessions that started before this time (Unix ms, exclusive).
 */
until_ms: number | null, 
/**
 * Page size, 1 to 200 (default 50).
 */
limit: number | null, offset: number | null, };

export type SessionHistoryEntry = { id: string, grant_id: string, user: string, 
/**
 * `ssh` or `postgres`.
 */
target_kind: string, target: string, 
/**
 * The login (SSH principal) or database role the grant gave.
 */
role: string, started_at_ms: number, ended_at_ms: number | null, 
/**
 * As in [`SessionView::end_reason`]; `null` while the session is live.
 */
end_reason: string | null, 
/**
 * SHA-256 (hex) of the finished recording, as the broker's audit log holds it.
 */
recording_sha256: string | null, 
/**
 * A finished recording is on the broker's disk and can be replayed.
 */
has_recording: boolean, };

export type SessionHistory = { sessions: Array<SessionHistoryEntry>, offset: number, 
/**
 * More sessions match after this page.
 */
has_more: boolean, };

export type SessionRecording = { session_id: string, 
/**
 * The SHA-256 (hex) the file on disk matched, before masking.
 */
sha256: string, 
/**
 * How many passages were replaced by `••••`.
 */
masked: number, 
/**
 * asciicast v2 text (a JSON header line, then one JSON event per line).
 */
cast: string, };

export type SessionMasks = { 
/**
 * The `[sessions] mask` patterns (Rust `regex` syntax), in config order; empty when
 * masking is off.
 */
patterns: Array<string>, 
/**
 * The config says nothing, so these are the broker's defaults.
 */
default: boolean, 
/**
 * What each match is replaced with in a replay.
 */
replacement: string, };

export type SessionWatchEvent = { "kind": "start", session_id: string, 
/**
 * Whose session it is.
 */
user: string, target: string, role: string, cols: number, rows: number, 
/**
 * base64 of the escape sequences that redraw the current screen; empty when the
 * broker could not read the session's recording.
 */
screen: string, } | { "kind": "output", data: string, } | { "kind": "resize", cols: number, rows: number, } | { "kind": "end", reason: string, message: string, };

export type SessionFileView = { 
/**
 * Its place in the session, from 1: what `GET /v1/sessions/{id}/files/{n}` takes.
 */
n: number, 
/**
 * As resolved on the target.
 */
path: string, 
/**
 * `upload` or `download`.
 */
direction: string, size: number, 
/**
 * SHA-256 (hex) of the bytes that passed; none when the broker could not tell.
 */
sha256: string | null, 
/**
 * `success`, `failure` or `denied` (a held write nobody released).
 */
outcome: string, 
/**
 * A copy was kept with the recording.
 */
captured: boolean, 
/**
 * The copy holds the whole file (not cut at `capture_max`).
 */
capture_complete: boolean, at_ms: number, };

export type SessionFiles = { session_id: string, files: Array<SessionFileView>, };

export type FilesView = { session_id: string, grant_id: string, target: string, role: string, 
/**
 * The remote directory the connection starts in (the login's home), absolute.
 */
home: string, grant_ends_at_ms: number, };

export type RemoteKind = "file" | "dir" | "link" | "other";

export type RemoteEntry = { name: string, kind: RemoteKind, size: number | null, modified_ms: number | null, };

export type RemoteListing = { 
/**
 * The directory as the target resolved it (absolute).
 */
path: string, entries: Array<RemoteEntry>, 
/**
 * More entries than the core shows in one listing: the rest were left out.
 */
truncated: boolean, };

export type ListRemoteInput = { session_id: string, path: string, };

export type StartUploadInput = { session_id: string, remote_path: string, size: number, };

export type StartDownloadInput = { session_id: string, remote_path: string, };

export type TransferStart = { transfer_id: string, 
/**
 * Bytes to move (the upload's declared size; the remote file's size for a download).
 */
total: number, 
/**
 * The largest upload chunk the core accepts (decoded bytes); 0 for a download.
 */
chunk_bytes: number, 
/**
 * Where a download is being written; `None` for an upload.
 */
local_path: string | null, };

export type UploadChunkInput = { transfer_id: string, offset: number, 
/**
 * The bytes, base64 (standard alphabet, padded).
 */
data: string, };

export type TransferIdInput = { transfer_id: string, };

export type TransferDirection = "upload" | "download";

export type TransferResult = { transfer_id: string, direction: TransferDirection, remote_path: string, 
/**
 * Where the download was saved; `None` for an upload, or a cancelled download (removed).
 */
local_path: string | null, 
/**
 * Bytes moved.
 */
bytes: number, 
/**
 * SHA-256 (hex) of exactly the bytes moved; empty when cancelled.
 */
sha256: string, cancelled: boolean, 
/**
 * What the user should know (a cancelled upload: the remote file may be partial).
 */
message: string | null, };

export type FilesEvent = { "type": "progress", transfer_id: string, done: number, total: number, } | { "type": "closing", transfer_id: string, } | { "type": "notice", message: string, } | { "type": "ended", reason: string, message: string, };

export type SessionFileInput = { session_id: string, n: number, };

export type SavedSessionFile = { session_id: string, n: number, 
/**
 * The file's path on the target, as the session's history keeps it.
 */
remote_path: string, 
/**
 * Where the copy was saved (a new file; nothing was overwritten).
 */
local_path: string, 
/**
 * SHA-256 (hex) of the saved bytes, computed by the core; equal to the broker's.
 */
sha256: string, bytes: number, 
/**
 * The copy holds the whole file; `false` when the broker cut it at its capture limit.
 */
complete: boolean, };

export type WatchEvent = { "type": "start", session_id: string, 
/**
 * Whose session it is.
 */
user: string, target: string, role: string, cols: number, rows: number, screen: string, } | { "type": "output", data: string, } | { "type": "resize", cols: number, rows: number, } | { "type": "ended", reason: string, message: string, };

export type VaultKind = "ssh_password" | "ssh_key" | "postgres_password" | "generic";

export type RotationStatus = { 
/**
 * The journal's state: `idle`, `pending`, `applied`, `verified`, `reconciling`, `failed`.
 */
state: string, 
/**
 * `ok`, `failed`, or `never`.
 */
last_result: string, 
/**
 * Why the last rotation failed (no secret in it), until one succeeds.
 */
last_error: string | null, last_rotated_at_ms: number | null, 
/**
 * When the broker will rotate it next (schedule, or the end of a checkout after a reveal).
 */
next_rotation_at_ms: number | null, 
/**
 * Set after a reveal: the secret is rotated as soon as its checkout ends.
 */
rotate_after_checkout: boolean, 
/**
 * Since when rotations have been failing (the alert stays until one succeeds).
 */
failing_since_ms: number | null, };

export type Checkout = { user: string, grant_id: string, until_ms: number, };

export type VaultAccountView = { id: string, 
/**
 * `target/account`.
 */
name: string, target: string, account: string, kind: VaultKind, 
/**
 * One holder at a time.
 */
exclusive: boolean, 
/**
 * The secret's version: 1 when imported, +1 at each rotation.
 */
version: number, holder: Checkout | null, rotation: RotationStatus, created_at_ms: number, };

export type VaultAccountList = { accounts: Array<VaultAccountView>, now_ms: number, };

export type RevealedSecret = { 
/**
 * `target/account`.
 */
account: string, secret: string, 
/**
 * The broker's time when it answered: the app counts the showing down from here, so a
 * slow answer does not lengthen it.
 */
now_ms: number, 
/**
 * When the app hides it again (broker time).
 */
show_until_ms: number, 
/**
 * The checkout this reveal holds; the secret is rotated when it ends.
 */
checkout_until_ms: number, };

export type RevealInput = { account_id: string, grant_id: string, reason: string, };

export type RotateInput = { account_id: string, reason: string, };

export type SignedOut = { 
/**
 * The sign-in (token family) that ended.
 */
session_id: string, 
/**
 * Broker time of the revocation, Unix ms.
 */
revoked_at_ms: number, 
/**
 * Access tokens of the family that were still valid.
 */
access_tokens: number, 
/**
 * Refresh tokens of the family that were still unused.
 */
refresh_tokens: number, };

export type MachineAuth = { "kind": "key" } | { "kind": "oidc", issuer: string, claims: { [key in string]?: string }, };

export type MachineSpec = { name: string, 
/**
 * The accountable person (a user name). Mandatory (case K1).
 */
owner: string, 
/**
 * A second user, or `group:NAME`, who may take ownership when the owner goes.
 */
backup_owner: string | null, purpose: string, 
/**
 * `prod`, `staging`, …: the inventory flags a credential seen across environments.
 */
environment: string, 
/**
 * After this (Unix ms) the machine cannot log in.
 */
expires_at_ms: number | null, labels: { [key in string]?: string }, auth: MachineAuth, 
/**
 * Source addresses (IPs or CIDRs) it may log in from; empty means any, flagged when new.
 */
sources: Array<string>, };

export type MachineKeyView = { 
/**
 * base64url public key, Ed25519 or compressed P-256 (not a secret).
 */
public_key: string, 
/**
 * `key` (registered) or `session` (made for one workload-token session).
 */
source: string, created_at_ms: number, retires_at_ms: number | null, last_used_at_ms: number | null, };

export type MachineFlag = { 
/**
 * `owner_missing`, `owner_disabled`, `suspended`, `expired`, `unused`, `never_used`,
 * `standing_privilege`, `key_not_rotated`, `new_source`, `source_refused`,
 * `interactive_use`.
 */
code: string, detail: string, 
/**
 * The audit record's sequence number, when one raised the flag.
 */
audit_seq: number | null, };

export type MachineView = { name: string, 
/**
 * The owner's name; `None` once the owner was disabled or removed.
 */
owner: string | null, backup_owner: string | null, purpose: string, environment: string, labels: { [key in string]?: string }, 
/**
 * `key` or `oidc`.
 */
auth_kind: string, 
/**
 * For `oidc`: the issuer and the claim rules.
 */
oidc_issuer: string | null, oidc_claims: { [key in string]?: string }, sources: Array<string>, created_at_ms: number, expires_at_ms: number | null, suspended_at_ms: number | null, suspended_reason: string | null, last_used_at_ms: number | null, 
/**
 * The address it last logged in from.
 */
last_source: string | null, 
/**
 * Age of the newest registered key (key machines), in days.
 */
credential_age_days: number | null, keys: Array<MachineKeyView>, 
/**
 * Grants approved or active now.
 */
open_grants: number, flags: Array<MachineFlag>, };

export type MachineInventory = { machines: Array<MachineView>, 
/**
 * The broker's time now as the core estimates it (unix ms); `None` before the core has
 * heard the broker's clock.
 */
now_ms: number | null, };

export type ConfirmMachineInput = { id: string, spec: MachineSpec, };

export type TransferMachineInput = { machine: string, owner: string, };

export type JoinTokenView = { token: string, 
/**
 * When it stops working (unix ms, the broker's clock).
 */
expires_at_ms: number, 
/**
 * Milliseconds left by the broker's clock when the core answered; the UI counts down from
 * here with its own monotonic clock. `None` when the core has not heard the broker's clock.
 */
expires_in_ms: number | null, };

export type MachineCreated = { machine: MachineView, join: JoinTokenView | null, };
