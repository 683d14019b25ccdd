//! DTOs exchanged between the Rust core and the web UI over Tauri IPC.
//!
//! The UI is untrusted presentation: nothing here may carry a private key, a token, a password
//! or a target credential. The one exception is [`PinInput`]: the security key's PIN is typed by
//! the user, so it goes UI → core once, and nothing ever sends it back.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::ApiError;

/// Longest broker URL the settings accept; anything longer is a paste accident or an attack.
pub const MAX_URL_LEN: usize = 2048;
/// Most brokers the settings list after the primary one.
pub const MAX_FALLBACK_BROKERS: usize = 8;
/// Longest filesystem path the settings accept.
pub const MAX_PATH_LEN: usize = 4096;

/// Connection state of the broker as the workstation last saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum BrokerState {
    /// No broker URL or CA configured yet.
    Unconfigured,
    /// `/healthz` answered over TLS pinned to the configured CA.
    Connected,
    /// Network failure: refused, DNS, timeout.
    Unreachable,
    /// TLS failed: the broker's certificate does not chain to the pinned CA.
    Untrusted,
    /// The broker answered but not as a paw broker should.
    Incompatible,
}

/// What the status bar shows about the broker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct BrokerStatus {
    pub state: BrokerState,
    /// The broker in use: the primary, or a fallback after the primary could not be reached.
    pub url: Option<String>,
    /// Whether `url` is a fallback broker rather than the primary one.
    pub failed_over: bool,
    /// Broker version when connected.
    pub version: Option<String>,
    /// Round-trip time of the last health check.
    pub latency_ms: Option<u32>,
    /// Why the broker is not connected, when it is not.
    pub error: Option<ApiError>,
}

/// The signed-in user, when there is one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct SessionUser {
    pub name: String,
    pub roles: Vec<String>,
}

/// `logout` output: what the sign-out ended. The sign-in is always forgotten on this computer;
/// this says whether the broker also revoked it (its whole token family, on every broker on its
/// database) or could not be told.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct SignOutReport {
    /// What the broker revoked, when it confirmed the sign-out.
    pub revoked: Option<crate::http::SignedOut>,
    /// Why the broker did not confirm it (unreachable, refused, …); the sign-in then ends at
    /// the broker when it next expires. Both fields are empty when nobody was signed in.
    pub broker_error: Option<ApiError>,
}

/// The active grant with the least time left, for the status bar countdown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct GrantSummary {
    pub id: String,
    pub target: String,
    pub role: String,
    /// Milliseconds left by the broker's clock when this status was taken. The UI counts down
    /// from here with its own monotonic clock, so a wrong workstation clock cannot extend it.
    #[ts(type = "number")]
    pub remaining_ms: i64,
}

/// Build facts the UI shows so nobody mistakes a debug or demo build for a release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct BuildInfo {
    pub version: String,
    pub debug: bool,
    /// The insecure virtual security key is the authenticator (demo and test builds only; case
    /// G5). The UI must say so wherever it is in use.
    pub virtual_key: bool,
}

/// `enroll`: redeem a one-time invite code and register a security key and this device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct EnrollInput {
    pub code: String,
    /// A name for the key, shown on the security keys page.
    pub key_name: String,
}

/// `login`: sign in with the security key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct LoginInput {
    pub user: String,
}

/// One of the user's security keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct SecurityKeyView {
    pub id: String,
    pub name: String,
    #[ts(type = "number")]
    pub created_at_ms: i64,
    #[ts(type = "number | null")]
    pub revoked_at_ms: Option<i64>,
    pub locked: bool,
}

/// `rename_key`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct RenameKeyInput {
    pub id: String,
    pub name: String,
}

/// A privileged key-management operation the user asks for; it needs a step-up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(tag = "op", rename_all = "snake_case")]
#[serde(deny_unknown_fields)]
pub enum KeyAction {
    /// Register another security key under this name.
    Add { name: String },
    /// Revoke the key with this id; it stops working at once.
    Revoke { id: String },
}

/// `prepare_step_up` output: what the user is about to approve, in words the Rust core wrote
/// from the exact action the key will sign. The UI shows `description` verbatim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct StepUpPrompt {
    /// Handle for `confirm_step_up` / `cancel_step_up`; single use, kept only in the core.
    pub id: String,
    pub purpose: crate::action::Purpose,
    pub description: String,
    /// Hex SHA-256 of the canonical action, for the curious and for support.
    pub action_hash: String,
    /// Seconds the broker gives the user to answer.
    pub expires_in_secs: u32,
}

/// An elevation the user asks for; like [`KeyAction`] it needs a step-up, and the core turns
/// it into the exact `Action` the key signs (`prepare_elevation`), showing its words first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(tag = "op", rename_all = "snake_case")]
#[serde(deny_unknown_fields)]
pub enum ElevationAction {
    /// Ask for an entitlement (approval as its policy says).
    Request {
        entitlement: String,
        target: String,
        role: String,
        duration_secs: u32,
        justification: String,
        ticket: Option<String>,
        /// Unix ms by the broker's clock; `None` = as soon as approved.
        #[ts(type = "number | null")]
        start_at_ms: Option<i64>,
    },
    /// An approver's decision on someone else's request.
    Decide {
        request_id: String,
        approve: bool,
        comment: String,
    },
    /// Emergency access without approval: loud, audited, time-boxed, reviewed.
    BreakGlass {
        entitlement: String,
        target: String,
        role: String,
        duration_secs: u32,
        justification: String,
    },
}

/// `revoke_grant` input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct RevokeGrantInput {
    pub id: String,
    pub reason: String,
}

/// `close_review` input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct CloseReviewInput {
    pub id: String,
    pub comment: String,
}

/// `prepare_hold_decision` input: which held command, and the user's answer. Only the id
/// crosses from the UI; the core takes the command, session and target from the broker's own
/// list of holds, so what the key signs is what the broker holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct HoldDecisionInput {
    pub hold_id: String,
    /// `true`: run it (the user's own step-up) or let it run (an approver); `false`: an
    /// approver refuses it.
    pub approve: bool,
}

/// `list_holds` output: the held commands the user may act on (their own, and those they may
/// approve), with the broker's time for the countdowns to `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct HeldCommands {
    pub holds: Vec<crate::session::CommandHoldView>,
    /// The broker's time now as the core estimates it (unix ms); `None` before the core has
    /// heard the broker's clock, when no countdown is shown.
    #[ts(type = "number | null")]
    pub now_ms: Option<i64>,
}

/// `machines` output: the machine identities the user may see (every one for an administrator,
/// otherwise those the user owns or backs up), with the broker's time for the ages shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct MachineInventory {
    pub machines: Vec<crate::machine::MachineView>,
    /// The broker's time now as the core estimates it (unix ms); `None` before the core has
    /// heard the broker's clock.
    #[ts(type = "number | null")]
    pub now_ms: Option<i64>,
}

/// `confirm_create_machine` input: the prompt to answer and the spec it was prepared for. The
/// key signs the spec's hash; the core refuses a spec whose hash is not the prepared one before
/// the key is touched, so the spec sent here is exactly the one the prompt described.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct ConfirmMachineInput {
    pub id: String,
    pub spec: crate::machine::MachineSpec,
}

/// `prepare_transfer_machine` input: hand `machine` to the person `owner` (an administrator's
/// action, which lifts a suspension caused by the previous owner's departure).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct TransferMachineInput {
    pub machine: String,
    pub owner: String,
}

/// A key machine's single-use join token, for its operator. The one secret that crosses IPC
/// towards the UI: it is not the user's credential but one the user hands over, so the UI shows
/// it once (masked until asked), never stores it, and the core keeps no copy. Debug redacts it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct JoinTokenView {
    pub token: String,
    /// When it stops working (unix ms, the broker's clock).
    #[ts(type = "number")]
    pub expires_at_ms: i64,
    /// Milliseconds left by the broker's clock when the core answered; the UI counts down from
    /// here with its own monotonic clock. `None` when the core has not heard the broker's clock.
    #[ts(type = "number | null")]
    pub expires_in_ms: Option<i64>,
}

impl std::fmt::Debug for JoinTokenView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinTokenView")
            .field("token", &"<redacted>")
            .field("expires_at_ms", &self.expires_at_ms)
            .field("expires_in_ms", &self.expires_in_ms)
            .finish()
    }
}

/// `confirm_create_machine` output: the machine as the broker stored it and, for a key
/// machine, its join token (shown once).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct MachineCreated {
    pub machine: crate::machine::MachineView,
    pub join: Option<JoinTokenView>,
}

/// IPC channel message from the core to a watch pane: someone else's live SSH session, read
/// only (case J6). Given to `watch_session`; the pane sends nothing back but `stop_watch`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WatchEvent {
    /// First, and again whenever the watch fell behind and skipped output: reset the terminal
    /// to `cols` × `rows` and write `screen` (base64 of the escape sequences that draw what the
    /// user sees now; may be empty). Output continues from there.
    Start {
        session_id: String,
        /// Whose session it is.
        user: String,
        target: String,
        role: String,
        cols: u16,
        rows: u16,
        screen: String,
    },
    /// Bytes the target sent to the user's terminal, base64.
    Output { data: String },
    /// The user's terminal changed size.
    Resize { cols: u16, rows: u16 },
    /// Last: the watch is over. `reason`: the session's end reason (as in
    /// `SessionView::end_reason`) when it ended; `access_ended` (the broker stopped the watch);
    /// `stopped` (this user stopped it); `signed_out`; `connection_lost`; `broker_protocol`.
    Ended { reason: String, message: String },
}

/// `live_events` output: live updates from the broker received since `since` (the UI passes
/// back the `seq` it last saw), so pages refresh and the user is told at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct LiveFeed {
    /// The sequence number of the newest event held; pass it as `since` next time.
    #[ts(type = "number")]
    pub seq: u64,
    pub events: Vec<crate::elevation::LiveEvent>,
    /// Whether the core's live connection to the broker is up (else the UI polls slower data).
    pub connected: bool,
}

/// `key_prompt`: what the security key needs from the user right now. The UI asks while a
/// key operation (sign-in, enrollment, step-up) is running and shows the matching prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum KeyPromptView {
    /// Nothing: no key operation, or the key is busy on its own.
    Idle,
    /// The key blinks and waits for a touch.
    Touch,
    /// The key wants its PIN. `retries`: attempts left before it locks itself, if it said;
    /// `wrong`: the previous PIN of this operation was wrong.
    Pin { retries: Option<u32>, wrong: bool },
}

/// `submit_pin` input: the security key's PIN, on its way to the key through the core. The
/// core wipes it after use; it is never logged, stored or returned.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct PinInput {
    pub pin: String,
}

impl std::fmt::Debug for PinInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PinInput { pin: <redacted> }")
    }
}

/// Longest PIN accepted: CTAP2 PINs are at most 63 bytes of UTF-8.
pub const MAX_PIN_BYTES: usize = 63;

/// `app_status`: everything the frame and status bar need in one call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct AppStatus {
    pub broker: BrokerStatus,
    pub user: Option<SessionUser>,
    pub grant: Option<GrantSummary>,
    pub build: BuildInfo,
}

/// `save_settings` input: where the broker is and which CA its certificate must chain to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct SettingsInput {
    /// `https://host[:port]`; plain http is refused.
    pub broker_url: String,
    /// More brokers of the same deployment (same database, CA and witness key), tried in this
    /// order when the one in use cannot be reached. Same form as `broker_url`.
    #[serde(default)]
    pub fallback_urls: Vec<String>,
    /// Path to the PEM file of the broker's CA. The client trusts this CA alone.
    pub ca_path: String,
}

/// The pinned CA as the user should see it to compare with what the broker admin gave them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct CaInfo {
    pub subject: String,
    /// SHA-256 of the DER certificate, upper-case hex pairs separated by colons.
    pub fingerprint_sha256: String,
    /// RFC 3339.
    pub not_after: String,
}

/// `get_settings` / `save_settings` output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct SettingsView {
    pub broker_url: String,
    pub fallback_urls: Vec<String>,
    pub ca_path: String,
    pub ca: Option<CaInfo>,
}

/// How an audited action ended, or that it was about to start (the local trail's outcomes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum AuditOutcome {
    /// Written, durably, before the action started.
    Started,
    Success,
    Failure,
    /// Policy or authentication refused it.
    Denied,
}

/// `audit_query` input, and `audit_export`'s filter (which ignores `limit` and `offset`).
/// Unset fields match everything; set fields must all match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct AuditQueryInput {
    /// Records at or after this time (Unix ms).
    #[ts(type = "number | null")]
    pub from_ms: Option<i64>,
    /// Records before this time (Unix ms, exclusive).
    #[ts(type = "number | null")]
    pub until_ms: Option<i64>,
    /// Exact kind (action), e.g. `grant.release`.
    pub kind: Option<String>,
    /// A substring of the target (subject), case-insensitive.
    pub target: Option<String>,
    pub outcome: Option<AuditOutcome>,
    /// Words that must all occur in the details (justifications, comments, descriptions).
    pub text: Option<String>,
    /// Page size, 1 to 500.
    pub limit: u32,
    #[ts(type = "number")]
    pub offset: u64,
}

/// One record of the local trail as the audit page shows it. Every field is plain text for
/// the UI to render inert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct AuditRecordView {
    #[ts(type = "number")]
    pub seq: u64,
    #[ts(type = "number")]
    pub time_ms: i64,
    pub actor: String,
    pub kind: String,
    pub target: String,
    pub outcome: AuditOutcome,
    /// The record's detail as indented JSON text.
    pub detail: String,
    /// The record's hash, hex.
    pub hash: String,
    /// The previous record's hash, hex.
    pub prev_hash: String,
}

/// `audit_query` output: one page, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct AuditPage {
    pub records: Vec<AuditRecordView>,
    #[ts(type = "number")]
    pub offset: u64,
    /// More records match after this page.
    pub has_more: bool,
}

/// The first record that fails verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct AuditBadRecord {
    #[ts(type = "number")]
    pub seq: u64,
    pub reason: String,
}

/// `audit_verify` output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct AuditVerifyView {
    pub ok: bool,
    /// Records verified (the chain's length when `ok`).
    #[ts(type = "number")]
    pub records: u64,
    /// The chain head's hash, hex (empty when verification failed).
    pub head_hash: String,
    /// The first bad record, when one is named.
    pub first_bad: Option<AuditBadRecord>,
    /// Why verification could not complete when no record is named (the file is damaged below
    /// the records, unreadable, …).
    pub problem: Option<String>,
}

/// The TypeScript declarations of every IPC type, in a stable order. Committed as
/// `ui/src/lib/ipc/bindings.ts`; regenerate with `cargo xtask bindings`.
pub fn typescript_bindings() -> String {
    let decls = [
        crate::ErrorCode::decl(),
        ApiError::decl(),
        BrokerState::decl(),
        BrokerStatus::decl(),
        SessionUser::decl(),
        SignOutReport::decl(),
        GrantSummary::decl(),
        BuildInfo::decl(),
        EnrollInput::decl(),
        LoginInput::decl(),
        SecurityKeyView::decl(),
        RenameKeyInput::decl(),
        KeyAction::decl(),
        crate::action::Purpose::decl(),
        StepUpPrompt::decl(),
        KeyPromptView::decl(),
        PinInput::decl(),
        crate::elevation::EntitlementView::decl(),
        crate::elevation::CommandRulesView::decl(),
        crate::elevation::CommandRuleView::decl(),
        crate::elevation::EntitlementList::decl(),
        crate::elevation::DecisionView::decl(),
        crate::elevation::GrantView::decl(),
        crate::elevation::GrantList::decl(),
        crate::elevation::InboxItem::decl(),
        crate::elevation::Inbox::decl(),
        crate::elevation::RevokeGrantRequest::decl(),
        crate::elevation::CloseReviewRequest::decl(),
        crate::elevation::LiveEvent::decl(),
        ElevationAction::decl(),
        RevokeGrantInput::decl(),
        CloseReviewInput::decl(),
        LiveFeed::decl(),
        AppStatus::decl(),
        SettingsInput::decl(),
        CaInfo::decl(),
        SettingsView::decl(),
        AuditOutcome::decl(),
        AuditQueryInput::decl(),
        AuditRecordView::decl(),
        AuditPage::decl(),
        AuditBadRecord::decl(),
        AuditVerifyView::decl(),
        crate::session::SessionView::decl(),
        crate::session::SessionList::decl(),
        crate::session::CommandHoldView::decl(),
        crate::session::CommandHoldList::decl(),
        HoldDecisionInput::decl(),
        HeldCommands::decl(),
        crate::session::OpenSessionInput::decl(),
        crate::session::TerminalView::decl(),
        crate::session::TerminalEvent::decl(),
        crate::session::TerminalInput::decl(),
        crate::session::TerminalResize::decl(),
        crate::session::SessionIdInput::decl(),
        crate::session::KillSessionInput::decl(),
        crate::session::ForwardView::decl(),
        crate::session::SessionHistoryQuery::decl(),
        crate::session::SessionHistoryEntry::decl(),
        crate::session::SessionHistory::decl(),
        crate::session::SessionRecording::decl(),
        crate::session::SessionMasks::decl(),
        crate::session::SessionWatchEvent::decl(),
        crate::session::SessionFileView::decl(),
        crate::session::SessionFiles::decl(),
        crate::files::FilesView::decl(),
        crate::files::RemoteKind::decl(),
        crate::files::RemoteEntry::decl(),
        crate::files::RemoteListing::decl(),
        crate::files::ListRemoteInput::decl(),
        crate::files::StartUploadInput::decl(),
        crate::files::StartDownloadInput::decl(),
        crate::files::TransferStart::decl(),
        crate::files::UploadChunkInput::decl(),
        crate::files::TransferIdInput::decl(),
        crate::files::TransferDirection::decl(),
        crate::files::TransferResult::decl(),
        crate::files::FilesEvent::decl(),
        crate::files::SessionFileInput::decl(),
        crate::files::SavedSessionFile::decl(),
        WatchEvent::decl(),
        crate::vault::VaultKind::decl(),
        crate::vault::RotationStatus::decl(),
        crate::vault::Checkout::decl(),
        crate::vault::VaultAccountView::decl(),
        crate::vault::VaultAccountList::decl(),
        crate::vault::RevealedSecret::decl(),
        crate::vault::RevealInput::decl(),
        crate::vault::RotateInput::decl(),
        crate::http::SignedOut::decl(),
        crate::machine::MachineAuth::decl(),
        crate::machine::MachineSpec::decl(),
        crate::machine::MachineKeyView::decl(),
        crate::machine::MachineFlag::decl(),
        crate::machine::MachineView::decl(),
        MachineInventory::decl(),
        ConfirmMachineInput::decl(),
        TransferMachineInput::decl(),
        JoinTokenView::decl(),
        MachineCreated::decl(),
    ];
    let mut out = String::from(
        "// Generated from crates/paw-proto by `cargo xtask bindings`. Do not edit by hand:\n\
         // the test suite fails when this file and the Rust types drift apart.\n\n",
    );
    for d in decls {
        out.push_str("export ");
        out.push_str(&d);
        out.push_str("\n\n");
    }
    out.truncate(out.trim_end().len());
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bindings_are_exported_and_have_no_bigint() {
        let b = typescript_bindings();
        assert!(b.contains("export type AppStatus"));
        assert!(b.contains("export type ErrorCode"));
        // i64 becomes bigint by default, which JSON cannot carry.
        assert!(!b.contains("bigint"), "{b}");
        // ts-rs silently ignores a serde attribute it cannot parse in full (for example
        // `deny_unknown_fields` next to `tag`), so check the tagged enum's TS matches its JSON.
        let json = serde_json::to_string(&KeyAction::Add { name: "n".into() }).unwrap();
        assert_eq!(json, r#"{"op":"add","name":"n"}"#);
        assert!(
            b.contains(r#"export type KeyAction = { "op": "add", name: string, }"#),
            "{b}"
        );
        // MachineAuth's derived declaration must match the JSON serde writes.
        let json = serde_json::to_string(&crate::machine::MachineAuth::Key).unwrap();
        assert_eq!(json, r#"{"kind":"key"}"#);
        let oidc = crate::machine::MachineAuth::Oidc {
            issuer: "i".into(),
            claims: [("repository".to_owned(), "acme/*".to_owned())].into(),
        };
        let json = serde_json::to_string(&oidc).unwrap();
        assert_eq!(
            json,
            r#"{"kind":"oidc","issuer":"i","claims":{"repository":"acme/*"}}"#
        );
        assert!(
            b.contains(r#"export type MachineAuth = { "kind": "key" } | { "kind": "oidc", issuer: string, claims: { [key in string]?: string }, };"#),
            "{b}"
        );
    }

    #[test]
    fn a_join_token_never_shows_in_debug_output() {
        let view = MachineCreated {
            machine: crate::machine::MachineView {
                name: "ci".into(),
                owner: Some("ada".into()),
                backup_owner: None,
                purpose: "deploy".into(),
                environment: "prod".into(),
                labels: Default::default(),
                auth_kind: "key".into(),
                oidc_issuer: None,
                oidc_claims: Default::default(),
                sources: vec![],
                created_at_ms: 1,
                expires_at_ms: None,
                suspended_at_ms: None,
                suspended_reason: None,
                last_used_at_ms: None,
                last_source: None,
                credential_age_days: None,
                keys: vec![],
                open_grants: 0,
                flags: vec![],
            },
            join: Some(JoinTokenView {
                token: "s3cret-join-token".into(),
                expires_at_ms: 2,
                expires_in_ms: Some(1),
            }),
        };
        let debug = format!("{view:?}");
        assert!(!debug.contains("s3cret"), "{debug}");
        assert!(debug.contains("<redacted>"), "{debug}");
    }
}
