//! The workstation's local audit trail (`<config dir>/audit.db`, [`paw_audit::LocalTrail`]):
//! the start and end records around every privileged use case, and the audit page's reads
//! (query, verify, export).
//!
//! Rules:
//! - Fail closed (case D1): a privileged action starts only after its `started` record is
//!   durably committed. If that append fails the action is refused with `audit_unavailable`
//!   and the broker is never asked. [`Core::audited`] is the one place that does this; use
//!   cases check their input first (a typo is not an audit event), then wrap the rest.
//! - The end record (`success`, `failure` with the error code, `denied`) is written after the
//!   fact. If *it* cannot be written the action has happened anyway: the result is returned
//!   and the gap is logged; the `started` record with no end shows the gap in the trail.
//! - Witnessed (case D3): after the `started` record and before the action, the trail's head
//!   is signed with the device key and cosigned by the broker ([`crate::witness`]); a refusal
//!   (the trail no longer continues what the broker last cosigned) or an unreachable broker
//!   stops the action. Login and enrolment are exempt: there is no session to upload with yet.
//! - No secret in a record: no token, PIN, invite code, challenge or assertion. Details hold
//!   the canonical action's words and hash, and the user's own justification or comment.
//! - The trail is opened on first use by its own thread (see [`Trail`]), not in `Core::open`
//!   (which is synchronous): a trail that cannot be opened refuses privileged actions with
//!   the reason, and the next attempt tries again, so the user can fix the disk and carry on
//!   without a restart.
//! - Reads hand the UI plain text only; export renders lines with [`paw_audit::to_json_line`],
//!   so hostile text in a justification stays inert (case D5). No file path crosses IPC: the
//!   UI saves the text itself.

use std::future::Future;
use std::path::PathBuf;

use ed25519_dalek::VerifyingKey;
use paw_audit::{
    AuditError, Checkpoint, Filter, Head, LocalTrail, NewEvent, Order, Outcome, Record, VerifyError,
};
use paw_policy::limits::{MAX_AUDIT_FILTER_CHARS, MAX_AUDIT_PAGE};
use paw_proto::action::Action;
use paw_proto::elevation::GrantView;
use paw_proto::ipc::{
    AuditBadRecord, AuditOutcome, AuditPage, AuditQueryInput, AuditRecordView, AuditVerifyView,
    SecurityKeyView, SessionUser,
};
use paw_proto::ErrorCode;
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};

use crate::paths::PIN_FILE;
use crate::util::hex;
use crate::{clock, ClientError, Core};

/// Records read per query while exporting.
const EXPORT_CHUNK: u32 = 5_000;

/// The local trail, served by a thread of its own that opens it on first use.
///
/// sqlx's futures carry higher-ranked executor bounds under which the compiler cannot prove
/// a future that awaits them `Send`, and every use case's future must be `Send` (the Tauri
/// commands run them on the multi-threaded runtime). So the trail lives on one thread with a
/// current-thread runtime, and the core talks to it over channels. The thread ends when the
/// core is dropped.
pub(crate) struct Trail {
    tx: mpsc::UnboundedSender<Cmd>,
    /// The broker's witness key pinned for this trail, and the checkpoint round in progress.
    pub(crate) witness: crate::witness::Witness,
}

type Reply<T> = oneshot::Sender<Result<T, AuditError>>;

enum Cmd {
    Append(NewEvent, Reply<Record>),
    Query(Filter, Reply<Vec<Record>>),
    Verify(Reply<Head>),
    Head(Reply<Head>),
    Records(u64, u32, Reply<Vec<Record>>),
    LatestCosigned(VerifyingKey, Reply<Option<Checkpoint>>),
    AddCosignature(Box<Checkpoint>, Vec<u8>, i64, Reply<()>),
    /// The cosigned checkpoints against a chain that verified up to `records` (case D3).
    CheckCosigned(
        Vec<VerifyingKey>,
        u64,
        Reply<crate::trail_check::TrailReport>,
    ),
}

impl Trail {
    pub(crate) fn new(path: PathBuf) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let trail_path = path.clone();
        let spawned = std::thread::Builder::new()
            .name("paw-audit".into())
            .spawn(move || serve(trail_path, rx));
        if let Err(e) = spawned {
            // Every call then fails with `Unavailable` (its channel is closed): fail closed.
            tracing::error!(error = %e, "could not start the audit trail thread");
        }
        Self {
            tx,
            witness: crate::witness::Witness::new(path.with_file_name(PIN_FILE)),
        }
    }

    async fn ask<T>(
        &self,
        cmd: impl FnOnce(oneshot::Sender<Result<T, AuditError>>) -> Cmd,
    ) -> Result<T, AuditError> {
        let gone = || AuditError::Unavailable("the audit trail thread is not running".into());
        let (reply, answer) = oneshot::channel();
        self.tx.send(cmd(reply)).map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }

    /// Appends one record; returns once it is durably committed.
    pub(crate) async fn append(&self, event: NewEvent) -> Result<Record, AuditError> {
        self.ask(|r| Cmd::Append(event, r)).await
    }

    pub(crate) async fn query(&self, f: Filter) -> Result<Vec<Record>, AuditError> {
        self.ask(|r| Cmd::Query(f, r)).await
    }

    pub(crate) async fn verify(&self) -> Result<Head, AuditError> {
        self.ask(Cmd::Verify).await
    }

    pub(crate) async fn head(&self) -> Result<Head, AuditError> {
        self.ask(Cmd::Head).await
    }

    /// Up to `limit` records after `after_seq`, in chain order.
    pub(crate) async fn records(
        &self,
        after_seq: u64,
        limit: u32,
    ) -> Result<Vec<Record>, AuditError> {
        self.ask(|r| Cmd::Records(after_seq, limit, r)).await
    }

    /// The newest stored checkpoint with a valid cosignature by `witness`.
    pub(crate) async fn latest_cosigned(
        &self,
        witness: VerifyingKey,
    ) -> Result<Option<Checkpoint>, AuditError> {
        self.ask(|r| Cmd::LatestCosigned(witness, r)).await
    }

    /// Stores `checkpoint` with the broker's `cosignature` (durably, like an append).
    pub(crate) async fn add_cosignature(
        &self,
        checkpoint: Checkpoint,
        cosignature: Vec<u8>,
        received_ms: i64,
    ) -> Result<(), AuditError> {
        self.ask(|r| Cmd::AddCosignature(Box::new(checkpoint), cosignature, received_ms, r))
            .await
    }

    /// Checks the checkpoints cosigned by `witnesses` against the chain, which verified up to
    /// seq `records`: each must still be in it (see [`crate::trail_check`]).
    pub(crate) async fn check_cosigned(
        &self,
        witnesses: Vec<VerifyingKey>,
        records: u64,
    ) -> Result<crate::trail_check::TrailReport, AuditError> {
        self.ask(|r| Cmd::CheckCosigned(witnesses, records, r))
            .await
    }
}

/// The trail thread: opens the trail at the first command (and again after a failed open,
/// so a fixed disk needs no restart) and answers commands in order.
fn serve(path: PathBuf, mut rx: mpsc::UnboundedReceiver<Cmd>) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "could not start the audit trail runtime");
            return;
        }
    };
    rt.block_on(async move {
        let mut trail: Option<LocalTrail> = None;
        while let Some(cmd) = rx.recv().await {
            if trail.is_none() {
                match LocalTrail::open(&path).await {
                    Ok(t) => trail = Some(t),
                    Err(e) => {
                        let msg = e.to_string();
                        tracing::warn!(error = %msg, "the audit trail cannot be opened");
                        reply_err(cmd, e);
                        continue;
                    }
                }
            }
            let Some(t) = trail.as_ref() else { continue };
            // A dropped receiver means the caller stopped waiting; nothing to do about it.
            match cmd {
                Cmd::Append(event, r) => {
                    let out = t.append_batch(vec![event]).await.and_then(|mut v| {
                        v.pop()
                            .ok_or_else(|| AuditError::Storage("append produced no record".into()))
                    });
                    let _ = r.send(out);
                }
                Cmd::Query(f, r) => {
                    let _ = r.send(t.query(&f).await);
                }
                Cmd::Verify(r) => {
                    let _ = r.send(t.verify().await);
                }
                Cmd::Head(r) => {
                    let _ = r.send(t.head().await);
                }
                Cmd::Records(after, limit, r) => {
                    let _ = r.send(t.records(after, limit).await);
                }
                Cmd::LatestCosigned(key, r) => {
                    let _ = r.send(t.latest_cosigned(&key).await);
                }
                Cmd::AddCosignature(cp, body, at, r) => {
                    let _ = r.send(t.add_cosignature(&cp, &body, at).await);
                }
                Cmd::CheckCosigned(keys, records, r) => {
                    let mut report = crate::trail_check::TrailReport::new(path.clone());
                    report.records = records;
                    let checked =
                        crate::trail_check::check_checkpoints(t, &keys, &mut report).await;
                    let _ = r.send(checked.map(|()| report));
                }
            }
        }
        if let Some(t) = trail {
            t.close().await;
        }
    });
}

fn reply_err(cmd: Cmd, e: AuditError) {
    let _ = match cmd {
        Cmd::Append(_, r) => r.send(Err(e)).is_ok(),
        Cmd::Query(_, r) => r.send(Err(e)).is_ok(),
        Cmd::Verify(r) | Cmd::Head(r) => r.send(Err(e)).is_ok(),
        Cmd::Records(_, _, r) => r.send(Err(e)).is_ok(),
        Cmd::LatestCosigned(_, r) => r.send(Err(e)).is_ok(),
        Cmd::AddCosignature(_, _, _, r) => r.send(Err(e)).is_ok(),
        Cmd::CheckCosigned(_, _, r) => r.send(Err(e)).is_ok(),
    };
}

/// What a privileged use case is about to do, as its `started` record says it.
pub(crate) struct Audit {
    /// The event kind, e.g. `grant.release`.
    pub(crate) action: &'static str,
    /// What it acts on: a grant, request, key or user.
    pub(crate) subject: String,
    /// Plain facts about it; never a secret.
    pub(crate) detail: Value,
    /// Whether the broker must cosign the trail before the action runs (see the module doc).
    witnessed: bool,
}

impl Audit {
    pub(crate) fn new(action: &'static str, subject: impl Into<String>, detail: Value) -> Self {
        Self {
            action,
            subject: subject.into(),
            detail,
            witnessed: true,
        }
    }

    /// For login and enrolment: no session exists yet to upload a checkpoint with (the broker
    /// takes checkpoints only from a signed-in device), so the trail is not witnessed before
    /// them. They are covered by the next privileged action's checkpoint, which includes them.
    pub(crate) fn before_session(mut self) -> Self {
        self.witnessed = false;
        self
    }

    /// For a step-up: the words the user saw and the hash the key signs.
    pub(crate) fn for_action(action: &'static str, subject: impl Into<String>, a: &Action) -> Self {
        let mut detail = json!({
            "description": a.describe(),
            "action_hash": hex(&a.hash()),
        });
        if let Some(extra) = action_text(a) {
            detail["text"] = extra;
        }
        Self::new(action, subject, detail)
    }
}

/// The user's own words in an action (justification, ticket, comment), kept as fields of
/// their own so the full-text search finds them.
fn action_text(a: &Action) -> Option<Value> {
    match a {
        Action::Request {
            justification,
            ticket,
            ..
        } => Some(json!({"justification": justification, "ticket": ticket})),
        Action::BreakGlass { justification, .. } => Some(json!({"justification": justification})),
        Action::Approve { comment, .. } => Some(json!({"comment": comment})),
        _ => None,
    }
}

/// What the end record says about a successful result.
pub(crate) trait Summary {
    fn summary(&self) -> Value;
}

impl Summary for GrantView {
    fn summary(&self) -> Value {
        json!({"grant": self.id, "state": self.state, "target": self.target, "role": self.role})
    }
}

impl Summary for SessionUser {
    fn summary(&self) -> Value {
        json!({"user": self.name})
    }
}

impl Summary for Vec<SecurityKeyView> {
    fn summary(&self) -> Value {
        json!({"keys": self.len()})
    }
}

/// `denied` for refusals by policy or authentication, `failure` for everything else.
fn end_outcome(code: ErrorCode) -> Outcome {
    use ErrorCode as C;
    match code {
        C::Forbidden
        | C::Unauthenticated
        | C::ReauthenticationRequired
        | C::ChallengeInvalid
        | C::WebauthnRejected
        | C::InviteInvalid
        | C::AccountLocked
        | C::PinInvalid
        | C::PinBlocked
        | C::AuditDiverged
        | C::AuditWitnessChanged => Outcome::Denied,
        _ => Outcome::Failure,
    }
}

fn to_view_outcome(o: Outcome) -> AuditOutcome {
    match o {
        Outcome::Started => AuditOutcome::Started,
        Outcome::Success => AuditOutcome::Success,
        Outcome::Failure => AuditOutcome::Failure,
        Outcome::Denied => AuditOutcome::Denied,
    }
}

fn from_view_outcome(o: AuditOutcome) -> Outcome {
    match o {
        AuditOutcome::Started => Outcome::Started,
        AuditOutcome::Success => Outcome::Success,
        AuditOutcome::Failure => Outcome::Failure,
        AuditOutcome::Denied => Outcome::Denied,
    }
}

/// `s` with control, line-separator and bidi/invisible formatting characters written as
/// `\u{…}`, so that text shown in the UI reads as what it contains (case D5). The newlines of
/// pretty-printed JSON are kept when `keep_newlines` (inside its strings serde_json has
/// escaped them already).
fn inert(s: &str, keep_newlines: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let hostile = (c.is_control() && !(keep_newlines && c == '\n'))
            || matches!(c,
                '\u{061C}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{2069}'
                | '\u{FEFF}');
        if hostile {
            out.push_str(&format!("\\u{{{:04x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

fn view(r: &Record) -> AuditRecordView {
    let e = &r.event;
    AuditRecordView {
        seq: e.seq,
        time_ms: e.time_ms,
        actor: inert(&e.actor, false),
        kind: inert(&e.action, false),
        target: inert(&e.subject, false),
        outcome: to_view_outcome(e.outcome),
        detail: inert(
            &serde_json::to_string_pretty(&e.detail).unwrap_or_default(),
            true,
        ),
        hash: hex(&r.hash),
        prev_hash: hex(&r.prev_hash),
    }
}

/// An optional text filter: empty means unset; too long is refused.
fn text_filter(field: &'static str, v: Option<String>) -> Result<Option<String>, ClientError> {
    match v {
        Some(s) if s.chars().count() > MAX_AUDIT_FILTER_CHARS => Err(ClientError::InvalidInput {
            field,
            reason: format!("at most {MAX_AUDIT_FILTER_CHARS} characters"),
        }),
        Some(s) if s.trim().is_empty() => Ok(None),
        other => Ok(other),
    }
}

fn filter(input: AuditQueryInput) -> Result<Filter, ClientError> {
    if let (Some(from), Some(until)) = (input.from_ms, input.until_ms) {
        if from > until {
            return Err(ClientError::InvalidInput {
                field: "until_ms",
                reason: "the end of the time range is before its start".into(),
            });
        }
    }
    Ok(Filter {
        from_ms: input.from_ms,
        until_ms: input.until_ms,
        action: text_filter("kind", input.kind)?,
        actor: None,
        subject_contains: text_filter("target", input.target)?,
        outcome: input.outcome.map(from_view_outcome),
        text: text_filter("text", input.text)?,
        order: Order::NewestFirst,
        limit: 1,
        offset: 0,
    })
}

/// A read of the trail failed: not a privileged action, but the same reasons apply.
fn unavailable(e: AuditError) -> ClientError {
    match e {
        AuditError::BadFilter(reason) => ClientError::InvalidInput {
            field: "filter",
            reason,
        },
        e => ClientError::AuditUnavailable(e),
    }
}

impl Core {
    /// Runs the privileged operation `op` between its `started` record and its end record.
    /// `op` does not start unless `started` was durably committed (case D1).
    pub(crate) async fn audited<T, F>(&self, what: Audit, op: F) -> Result<T, ClientError>
    where
        T: Summary,
        F: Future<Output = Result<T, ClientError>>,
    {
        let actor = self
            .inner
            .state
            .read()
            .await
            .user
            .as_ref()
            .map_or_else(|| "-".to_owned(), |u| u.name.clone());
        let trail = &self.inner.audit;
        let started = trail
            .append(NewEvent::new(
                actor.clone(),
                what.action,
                what.subject.clone(),
                Outcome::Started,
                what.detail,
                clock::local_wall_ms(),
            ))
            .await
            .map_err(ClientError::AuditUnavailable)?;
        let seq = started.event.seq;
        // The broker cosigns the trail, `started` included, before the action may run; if it
        // refuses or cannot be asked, `op` is dropped unpolled and the end record says why.
        let witnessed = if what.witnessed {
            self.witness_checkpoint().await
        } else {
            Ok(())
        };
        let result = match witnessed {
            Ok(()) => op.await,
            Err(e) => Err(e),
        };
        let (outcome, detail) = match &result {
            Ok(v) => (
                Outcome::Success,
                json!({"started": seq, "result": v.summary()}),
            ),
            Err(e) => (
                end_outcome(e.code()),
                json!({"started": seq, "code": e.code().as_str(), "message": e.to_string()}),
            ),
        };
        if let Err(e) = trail
            .append(NewEvent::new(
                actor,
                what.action,
                what.subject,
                outcome,
                detail,
                clock::local_wall_ms(),
            ))
            .await
        {
            // The action already happened; its started record with no end marks the gap.
            tracing::error!(action = what.action, started = seq, error = %e, "audit end record not written");
        }
        result
    }

    /// A record of something that happened without a step of the user's (a session the broker
    /// ended). Best effort: the thing has already happened; a failure is logged.
    pub(crate) async fn audit_note(&self, what: Audit, outcome: Outcome) {
        let actor = self
            .inner
            .state
            .read()
            .await
            .user
            .as_ref()
            .map_or_else(|| "-".to_owned(), |u| u.name.clone());
        let event = NewEvent::new(
            actor,
            what.action,
            what.subject,
            outcome,
            what.detail,
            clock::local_wall_ms(),
        );
        if let Err(e) = self.inner.audit.append(event).await {
            tracing::error!(action = what.action, error = %e, "audit record not written");
        }
    }

    /// One page of the local trail, newest first.
    pub async fn audit_query(&self, input: AuditQueryInput) -> Result<AuditPage, ClientError> {
        if input.limit == 0 || input.limit > MAX_AUDIT_PAGE {
            return Err(ClientError::InvalidInput {
                field: "limit",
                reason: format!("between 1 and {MAX_AUDIT_PAGE}"),
            });
        }
        let (limit, offset) = (input.limit, input.offset);
        let mut f = filter(input)?;
        // One more than asked, to tell whether another page follows.
        f.limit = limit + 1;
        f.offset = offset;
        let mut records = self.inner.audit.query(f).await.map_err(unavailable)?;
        let has_more = records.len() > limit as usize;
        records.truncate(limit as usize);
        Ok(AuditPage {
            records: records.iter().map(view).collect(),
            offset,
            has_more,
        })
    }

    /// Verifies the whole local chain and names the first bad record, if any; then that every
    /// checkpoint the pinned witness cosigned is still in it (a tail cut below one, case D3).
    pub async fn audit_verify(&self) -> Result<AuditVerifyView, ClientError> {
        let mut view = self.audit_verify_chain().await?;
        if !view.ok {
            return Ok(view);
        }
        let witnesses = crate::trail_check::pinned_keys(self.inner.audit.witness.pin_file())?;
        let report = self
            .inner
            .audit
            .check_cosigned(witnesses, view.records)
            .await
            .map_err(unavailable)?;
        if let Some((seq, reason)) = report.first_bad {
            view.ok = false;
            view.first_bad = Some(AuditBadRecord { seq, reason });
        } else if let Some(problem) = report.problem {
            view.ok = false;
            view.problem = Some(problem);
        }
        Ok(view)
    }

    async fn audit_verify_chain(&self) -> Result<AuditVerifyView, ClientError> {
        Ok(match self.inner.audit.verify().await {
            Ok(head) => AuditVerifyView {
                ok: true,
                records: head.seq,
                head_hash: hex(&head.hash),
                first_bad: None,
                problem: None,
            },
            Err(AuditError::Verify(VerifyError { seq, index, reason })) => AuditVerifyView {
                ok: false,
                records: u64::try_from(index).unwrap_or(u64::MAX),
                head_hash: String::new(),
                first_bad: Some(AuditBadRecord {
                    seq,
                    reason: reason.to_string(),
                }),
                problem: None,
            },
            // Damage below the records (SQLite's own structures) or an unreadable file is a
            // failed verification too, just without a record to name.
            Err(e @ (AuditError::Corrupt(_) | AuditError::Unavailable(_))) => AuditVerifyView {
                ok: false,
                records: 0,
                head_hash: String::new(),
                first_bad: None,
                problem: Some(e.to_string()),
            },
            Err(e) => return Err(unavailable(e)),
        })
    }

    /// Every record matching `input`'s filters (its paging is ignored), oldest first, as JSON
    /// lines with hostile text made inert (case D5). The UI saves the text as a download.
    pub async fn audit_export(&self, input: AuditQueryInput) -> Result<String, ClientError> {
        let mut f = filter(input)?;
        f.order = Order::OldestFirst;
        f.limit = EXPORT_CHUNK;
        let mut out = String::new();
        loop {
            let page = self
                .inner
                .audit
                .query(f.clone())
                .await
                .map_err(unavailable)?;
            for r in &page {
                let line = paw_audit::to_json_line(&r.event).map_err(unavailable)?;
                out.push_str(&line);
                out.push('\n');
            }
            if page.len() < EXPORT_CHUNK as usize {
                return Ok(out);
            }
            f.offset += u64::from(EXPORT_CHUNK);
        }
    }
}
