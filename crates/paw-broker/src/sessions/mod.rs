//! Brokered sessions: a session ticket's one-time use, the session's end with its reason and
//! recording hash, the live registry the SSH front door closes connections through (and
//! watchers of a live SSH session attach to, [`watch`]), and the admin's kill.
//!
//! Rules: the credential is used at most once, in one transaction that also checks the grant
//! is active by the broker's clock and the user is live, with its audit record (case C3).
//! Whatever ends a session — the grant's end, a revocation, a kill, a failed recording — ends
//! it in the database first; the front door closes every connection whose session has ended
//! within [`WATCH_EVERY`] (case C2), and at the grant's end by its own timer.

pub mod brokers;
pub(crate) mod commands;
pub mod error;
pub mod front;
pub(crate) mod guard;
pub mod history;
pub mod holds;
pub mod postgres;
pub mod recording;
pub mod sftp;
pub(crate) mod shell;
pub mod watch;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use paw_audit::Outcome;
use paw_policy::GrantState;
use paw_proto::action::Action;
use paw_proto::session::{SessionList, SessionView};
use serde_json::json;

use crate::audit::{self, Entry};
use crate::base::auth::AuthContext;
use crate::base::util::secret_hash;
use crate::elevation;
use crate::identity::stepup::{kind, wrong_action, StepUp};
use crate::sessions::error::{Result, SessionsError};
use crate::{with_pool, with_tx};

/// Brokered sessions as a service: the store, the clock, the registry of live connections and
/// the SSH front door when `[sessions]` is configured.
#[derive(Clone)]
pub struct Sessions {
    pub db: crate::store::Db,
    pub clock: Arc<dyn crate::base::clock::Clock>,
    pub live_sessions: Arc<Live>,
    pub ssh: Option<Arc<front::Running>>,
    /// This process as a broker (`brokers.id`): the sessions it carries are marked with it,
    /// so another broker can end them if this one dies ([`brokers`]).
    pub broker_id: Arc<str>,
    /// The entitlements, for the command rules of the grant a session runs under (the same
    /// policy elevation decides with, reloaded together).
    pub policy: crate::elevation::policy::SharedPolicy,
    /// Whether this broker still reaches its database (lease renewals), for the grace
    /// watchdog and for refusing privileged calls at once when it does not (I5).
    pub heartbeat: Arc<brokers::Heartbeat>,
    /// Live events (held commands reach their user's and approvers' apps at once).
    pub notifier: crate::elevation::notify::Notifier,
    /// Vaulted accounts, for sessions whose entitlement logs in with them (`vault = ["inject"]`).
    pub vault: crate::vault::Vault,
}

/// How often the front door looks for sessions ended elsewhere (revoked, killed).
pub const WATCH_EVERY: Duration = Duration::from_millis(250);
/// How soon a failed session-end listener is opened again (the poll covers the gap).
const LISTEN_RETRY: Duration = Duration::from_secs(5);

/// A session whose credential was just used.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub id: String,
    pub grant_id: String,
    pub user: String,
    /// The entitlement the grant was given under (its command rules apply).
    pub entitlement: String,
    pub target_kind: String,
    pub target: String,
    pub role: String,
    pub grant_end_ms: i64,
    /// The session belongs to a machine identity: exec only unless the entitlement allows a
    /// terminal (K6).
    pub machine: bool,
}

/// Uses a session's one-time credential: `session_id` with its `ticket`. Refused (and audited)
/// when unknown, already used, expired, ended, or the grant is no longer active.
pub async fn claim(
    svc: &Sessions,
    session_id: &str,
    ticket: &str,
    peer: &str,
) -> Result<SessionInfo> {
    let now = svc.clock.now_ms();
    let refused =
        |why: &str| SessionsError::Unauthenticated(format!("session credential refused: {why}"));
    let mut tx = svc.db.begin().await?;
    audit::lock(&mut tx).await?;
    let used = with_tx!(&mut tx, t => {
        sqlx::query("UPDATE session_tickets SET used_at = $1, broker_id = $4 WHERE id = $2 AND ticket_hash = $3 \
                     AND used_at IS NULL AND ended_at IS NULL AND expires_at > $1")
            .bind(now).bind(session_id).bind(secret_hash(ticket)).bind(&*svc.broker_id)
            .execute(&mut **t).await?.rows_affected()
    });
    let checked: Result<_> = if used == 1 {
        let grant_id: String = with_tx!(&mut tx, t => {
            sqlx::query_scalar("SELECT grant_id FROM session_tickets WHERE id = $1")
                .bind(session_id).fetch_one(&mut **t).await?
        });
        let row = elevation::load(&mut tx, &grant_id).await?;
        match (
            elevation::effective(&row, now)?,
            elevation::live_user(&mut tx, &row.user_id).await,
        ) {
            (GrantState::Active, Ok(())) => Ok(row),
            (GrantState::Active, Err(e)) => Err(e.into()),
            _ => Err(refused("the grant is not active")),
        }
    } else {
        Err(refused("unknown, already used or expired"))
    };
    let row = match checked {
        Ok(row) => row,
        Err(e) => {
            drop(tx);
            audit::record(
                &svc.db,
                now,
                Entry::new(
                    "-",
                    "session_start",
                    session_id,
                    Outcome::Denied,
                    json!({"reason": e.to_string(), "peer": peer}),
                ),
            )
            .await?;
            return Err(e);
        }
    };
    audit::append(
        &mut tx,
        now,
        Entry::new(
            &row.user_name,
            "session_start",
            session_id,
            Outcome::Success,
            json!({"grant_id": row.id, "target": row.target, "role": row.role, "peer": peer}),
        ),
    )
    .await?;
    tx.commit().await?;
    let machine = crate::identity::user_by_id(&svc.db, &row.user_id)
        .await?
        .is_some_and(|u| u.is_machine());
    Ok(SessionInfo {
        machine,
        id: session_id.to_owned(),
        grant_id: row.id,
        user: row.user_name,
        entitlement: row.entitlement,
        target_kind: row.target_kind,
        target: row.target,
        role: row.role,
        grant_end_ms: row.ends_at.unwrap_or(now),
    })
}

/// Ends a session (if nothing ended it before) and records how, with the recording's hash.
pub async fn finish(
    svc: &Sessions,
    info: &SessionInfo,
    reason: &str,
    recording: Option<&crate::sessions::recording::Finished>,
    recording_error: Option<&str>,
) -> Result<()> {
    finish_with(
        svc,
        info,
        reason,
        recording,
        recording_error,
        EndDetail::default(),
    )
    .await
}

/// What a kind of session adds to its `session_end` record (a database session: the role
/// dropped and the backends terminated).
#[derive(Debug, Default)]
pub struct EndDetail {
    /// Merged into the record's detail; these keys never replace the common ones.
    pub fields: serde_json::Map<String, serde_json::Value>,
    /// The clean-up failed: the record's outcome is `failure`.
    pub failed: bool,
}

/// [`finish`] with the detail a kind of session adds.
pub async fn finish_with(
    svc: &Sessions,
    info: &SessionInfo,
    reason: &str,
    recording: Option<&crate::sessions::recording::Finished>,
    recording_error: Option<&str>,
    extra: EndDetail,
) -> Result<()> {
    let now = svc.clock.now_ms();
    let mut tx = svc.db.begin().await?;
    audit::lock(&mut tx).await?;
    let sha = recording.map(|r| r.sha256.clone());
    // Once: the first finish closes the recording and writes its hash; a second one (another
    // replica's clean-up, a racing drop) changes nothing and writes no second record, so the
    // hash that replay checks against stays the first.
    let closed = with_tx!(&mut tx, t => {
        sqlx::query("UPDATE session_tickets SET ended_at = COALESCE(ended_at, $1), \
                     end_reason = COALESCE(end_reason, $2), recording_sha256 = $3, \
                     recording_closed_at = $1 WHERE id = $4 AND recording_closed_at IS NULL")
            .bind(now).bind(reason).bind(&sha).bind(&info.id).execute(&mut **t).await?.rows_affected()
    });
    if closed == 0 {
        return Ok(());
    }
    let final_reason: Option<String> = with_tx!(&mut tx, t => {
        sqlx::query_scalar("SELECT end_reason FROM session_tickets WHERE id = $1")
            .bind(&info.id).fetch_one(&mut **t).await?
    });
    let outcome = if recording_error.is_some() || extra.failed {
        Outcome::Failure
    } else {
        Outcome::Success
    };
    let mut detail = json!({
        "grant_id": info.grant_id,
        "target": info.target,
        "reason": final_reason.as_deref().unwrap_or(reason),
        "recording_sha256": sha,
        "recording_bytes": recording.map(|r| r.bytes),
        "recording_error": recording_error,
    });
    if let Some(d) = detail.as_object_mut() {
        for (k, v) in extra.fields {
            d.entry(k).or_insert(v);
        }
    }
    audit::append(
        &mut tx,
        now,
        Entry::new(&info.user, "session_end", &info.id, outcome, detail),
    )
    .await?;
    Ok(tx.commit().await?)
}

/// Ends a session from outside (kill, failed recording) in the database; the front door
/// closes the connection when it sees it.
async fn end_now(svc: &Sessions, tx: &mut crate::store::Tx, id: &str, reason: &str) -> Result<u64> {
    let now = svc.clock.now_ms();
    let n = with_tx!(tx, t => {
        sqlx::query("UPDATE session_tickets SET ended_at = $1, end_reason = $2 WHERE id = $3 AND ended_at IS NULL AND used_at IS NOT NULL")
            .bind(now).bind(reason).bind(id).execute(&mut **t).await?.rows_affected()
    });
    tx.notify(crate::store::SESSION_ENDS).await?;
    Ok(n)
}

/// The reason an administrator gives for ending a session: it goes into the audit record and
/// the user's terminal, so it is bounded and on one line. Checked before the step-up starts
/// and again on the signed action.
pub fn check_kill_reason(reason: &str) -> Result<()> {
    use paw_policy::limits::{MAX_KILL_REASON_CHARS, MIN_KILL_REASON_CHARS};
    let n = reason.trim().chars().count();
    if !(MIN_KILL_REASON_CHARS..=MAX_KILL_REASON_CHARS).contains(&n)
        || reason.chars().any(char::is_control)
    {
        return Err(SessionsError::BadRequest(format!(
            "a reason of {MIN_KILL_REASON_CHARS}–{MAX_KILL_REASON_CHARS} characters on one line"
        )));
    }
    Ok(())
}

/// An admin ends someone's session, after a step-up naming the session and the reason.
pub async fn kill(
    svc: &Sessions,
    auth: &AuthContext,
    session_id: &str,
    proof: &StepUp<kind::KillSession>,
) -> Result<SessionView> {
    let Some(Action::KillSession {
        session_id: signed,
        reason,
    }) = proof.action()
    else {
        return Err(wrong_action().into());
    };
    if signed != session_id {
        return Err(wrong_action().into());
    }
    check_kill_reason(reason)?;
    if !auth.is_admin() {
        return Err(SessionsError::Forbidden(
            "only administrators end other people's sessions".into(),
        ));
    }
    let now = svc.clock.now_ms();
    let mut tx = svc.db.begin().await?;
    audit::lock(&mut tx).await?;
    if end_now(svc, &mut tx, session_id, "killed").await? != 1 {
        return Err(SessionsError::NotFound("no such live session".into()));
    }
    audit::append(
        &mut tx,
        now,
        Entry::new(
            &auth.user_name,
            "session_kill",
            session_id,
            Outcome::Success,
            json!({"reason": reason, "action_hash": proof.action_hash()}),
        ),
    )
    .await?;
    tx.commit().await?;
    svc.live_sessions.signal(session_id, "killed");
    view(svc, session_id).await
}

#[derive(Debug, sqlx::FromRow)]
struct Row {
    id: String,
    grant_id: String,
    user_name: String,
    target_kind: String,
    target: String,
    role: String,
    used_at: i64,
    ends_at: Option<i64>,
    ended_at: Option<i64>,
    end_reason: Option<String>,
    recording_sha256: Option<String>,
    user_id: String,
    person: String,
    entitlement: String,
}

const SELECT: &str = "SELECT s.id, s.grant_id, g.user_name, g.target_kind, g.target, g.role, \
    s.used_at, g.ends_at, s.ended_at, s.end_reason, s.recording_sha256, g.user_id, g.person, \
    g.entitlement FROM session_tickets s JOIN grants g ON g.id = s.grant_id WHERE s.used_at IS NOT NULL";

fn to_view(r: Row) -> SessionView {
    SessionView {
        id: r.id,
        grant_id: r.grant_id,
        user: r.user_name,
        target_kind: r.target_kind,
        target: r.target,
        role: r.role,
        started_at_ms: r.used_at,
        grant_ends_at_ms: r.ends_at.unwrap_or(r.used_at),
        ended_at_ms: r.ended_at,
        end_reason: r.end_reason,
        recording_sha256: r.recording_sha256,
        may_watch: false,
    }
}

async fn view(svc: &Sessions, id: &str) -> Result<SessionView> {
    let sql = format!("{SELECT} AND s.id = $1");
    let row: Row = with_pool!(&svc.db, p => {
        sqlx::query_as(&sql).bind(id).fetch_one(p).await?
    });
    Ok(to_view(row))
}

/// Live sessions: everyone's for an admin; otherwise the caller's own and those of the
/// entitlements the caller may approve for the session's person (case J6: the sessions an
/// approver may watch). Each says whether the caller may watch it ([`watch`]'s rule, by the
/// policy now): an SSH session of someone else, for an admin or an approver.
pub async fn live(svc: &Sessions, auth: &AuthContext) -> Result<SessionList> {
    let admin = auth.is_admin();
    let policy = svc.policy.get();
    // The entitlements the caller approves for someone: only their sessions can be listed
    // besides the caller's own (whose person is checked per row below).
    let approves: Vec<String> = if admin {
        Vec::new()
    } else {
        policy
            .entitlements
            .iter()
            .filter(|e| policy.is_approver_of(&auth.user_name, e))
            .map(|e| e.id().to_owned())
            .collect()
    };
    let marks: Vec<String> = (0..approves.len()).map(|i| format!("${}", i + 4)).collect();
    let theirs = if marks.is_empty() {
        String::new()
    } else {
        format!(" OR g.entitlement IN ({})", marks.join(", "))
    };
    let sql = format!(
        "{SELECT} AND s.recording_closed_at IS NULL AND (s.ended_at IS NULL OR $1) \
         AND ($2 OR g.user_id = $3{theirs}) ORDER BY s.used_at DESC LIMIT 500"
    );
    let rows: Vec<Row> = with_pool!(&svc.db, p => {
        let mut q = sqlx::query_as(&sql).bind(false).bind(admin).bind(&auth.user_id);
        for e in &approves {
            q = q.bind(e);
        }
        q.fetch_all(p).await?
    });
    let sessions = rows
        .into_iter()
        .filter_map(|r| {
            let watcher =
                watch::may_watch_session(svc, auth, &r.user_name, &r.person, &r.entitlement)
                    .is_ok();
            // An approver sees a session only while the policy lets them watch its person
            // (never their own person's other account).
            if !admin && r.user_id != auth.user_id && !watcher {
                return None;
            }
            let ssh = r.target_kind == "ssh";
            let mut v = to_view(r);
            v.may_watch = ssh && watcher;
            Some(v)
        })
        .collect();
    Ok(SessionList { sessions })
}

/// The connections this broker process holds, by session id, each with a way to end it and,
/// for a live SSH session, the feed its watchers attach to ([`watch`]).
#[derive(Debug, Default)]
pub struct Live {
    map: Mutex<HashMap<String, LiveEntry>>,
}

#[derive(Debug)]
struct LiveEntry {
    ends: tokio::sync::watch::Sender<Option<String>>,
    /// Set while the SSH bridge relays (between the target's start and the session's end).
    feed: Option<Arc<watch::Feed>>,
}

impl Live {
    /// Registers a connection; the receiver yields the reason when the session must end.
    pub fn register(&self, id: &str) -> tokio::sync::watch::Receiver<Option<String>> {
        let (ends, rx) = tokio::sync::watch::channel(None);
        if let Ok(mut m) = self.map.lock() {
            m.insert(id.to_owned(), LiveEntry { ends, feed: None });
        }
        rx
    }

    pub fn unregister(&self, id: &str) {
        if let Ok(mut m) = self.map.lock() {
            m.remove(id);
        }
    }

    pub fn signal(&self, id: &str, reason: &str) {
        if let Ok(m) = self.map.lock() {
            if let Some(e) = m.get(id) {
                e.ends.send_replace(Some(reason.to_owned()));
            }
        }
    }

    /// The feed watchers of session `id` attach to, while its bridge relays.
    pub fn feed(&self, id: &str) -> Option<Arc<watch::Feed>> {
        self.map
            .lock()
            .ok()
            .and_then(|m| m.get(id).and_then(|e| e.feed.clone()))
    }

    /// Sets (or, with `None`, removes) the feed of a registered session.
    pub(crate) fn set_feed(&self, id: &str, feed: Option<Arc<watch::Feed>>) {
        if let Ok(mut m) = self.map.lock() {
            if let Some(e) = m.get_mut(id) {
                e.feed = feed;
            }
        }
    }

    pub fn ids(&self) -> Vec<String> {
        self.map
            .lock()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    pub fn len(&self) -> usize {
        self.map.lock().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Runs forever: closes connections whose session the database says has ended (the grant
/// expired, was revoked or released, the user was disabled, an admin killed it).
pub async fn watch_ends(svc: Sessions) {
    let mut every = tokio::time::interval(WATCH_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // On PostgreSQL a change made through another broker also wakes this one at once
    // (`store::SESSION_ENDS`); the poll stays, for notices lost while the listener reconnects.
    let mut listener = None;
    let mut listen_again = tokio::time::Instant::now();
    loop {
        if listener.is_none() && tokio::time::Instant::now() >= listen_again {
            listen_again = tokio::time::Instant::now() + LISTEN_RETRY;
            match svc.db.listen(crate::store::SESSION_ENDS).await {
                Ok(l) => listener = l,
                Err(e) => tracing::warn!(error = %e, "listening for session ends failed"),
            }
        }
        let woken = async {
            match listener.as_mut() {
                Some(l) => l.recv().await.map(|_| ()),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = every.tick() => {}
            r = woken => {
                if let Err(e) = r {
                    tracing::warn!(error = %e, "the session-end listener failed; polling");
                    listener = None;
                }
            }
        }
        let ids = svc.live_sessions.ids();
        if ids.is_empty() {
            continue;
        }
        match ended_among(&svc, &ids).await {
            Ok(ended) => {
                for (id, reason) in ended {
                    svc.live_sessions.signal(&id, &reason);
                }
            }
            Err(e) => tracing::warn!(error = %e, "session watch failed"),
        }
    }
}

async fn ended_among(svc: &Sessions, ids: &[String]) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    // Bounded IN lists; a broker holds hundreds of sessions, not millions.
    for chunk in ids.chunks(200) {
        let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT id, end_reason FROM session_tickets WHERE ended_at IS NOT NULL AND id IN ({})",
            marks.join(", ")
        );
        let rows: Vec<(String, Option<String>)> = with_pool!(&svc.db, p => {
            let mut q = sqlx::query_as(&sql);
            for id in chunk {
                q = q.bind(id);
            }
            q.fetch_all(p).await?
        });
        out.extend(
            rows.into_iter()
                .map(|(id, r)| (id, r.unwrap_or_else(|| "ended".into()))),
        );
    }
    Ok(out)
}

/// At start-up on SQLite, the only broker (`store::SingleBroker`): sessions a previous broker
/// process held cannot have survived it (their TCP connections died with it, by a crash, a
/// `kill -9` or a clean stop that could not finish); end them, so the history and the session
/// count are right (E2). Each recording is closed where the process was cut (a torn last event
/// trimmed) and hashed, and the hash goes into the row and the one `session_end` record, as
/// for a peer's lost sessions on PostgreSQL ([`brokers::reap_lost`]). The previous processes'
/// broker rows are stopped as `lost`.
pub async fn close_orphans(svc: &Sessions) -> Result<usize> {
    let now = svc.clock.now_ms();
    let mut tx = svc.db.begin().await?;
    audit::lock(&mut tx).await?;
    let orphans: Vec<(String, String, String, String, Option<String>)> = with_tx!(&mut tx, t => {
        sqlx::query_as("SELECT s.id, g.id, g.target, g.user_name, s.broker_id FROM session_tickets s \
                        JOIN grants g ON g.id = s.grant_id \
                        WHERE s.used_at IS NOT NULL AND s.recording_closed_at IS NULL")
            .fetch_all(&mut **t).await?
    });
    for (id, grant_id, target, user, broker) in &orphans {
        let recording = brokers::close_cut_recording(svc, id);
        let (sha, bytes, error) = match &recording {
            Some(Ok((sha, bytes))) => (Some(sha.clone()), Some(*bytes), None),
            Some(Err(e)) => (None, None, Some(e.clone())),
            None => (None, None, None),
        };
        with_tx!(&mut tx, t => {
            sqlx::query("UPDATE session_tickets SET ended_at = COALESCE(ended_at, $1), \
                         end_reason = COALESCE(end_reason, 'broker_restart'), recording_sha256 = $2, \
                         recording_closed_at = $1 WHERE id = $3")
                .bind(now).bind(&sha).bind(id).execute(&mut **t).await?;
        });
        audit::append(
            &mut tx,
            now,
            Entry::new(
                "pawd",
                "session_end",
                id,
                Outcome::Failure,
                json!({
                    "reason": "broker_restart",
                    "grant_id": grant_id,
                    "target": target,
                    "user": user,
                    "broker_id": broker,
                    "recording_sha256": sha,
                    "recording_bytes": bytes,
                    "recording_error": error,
                }),
            ),
        )
        .await?;
    }
    with_tx!(&mut tx, t => {
        sqlx::query("UPDATE brokers SET stopped_at = $1, stop_reason = 'lost' WHERE stopped_at IS NULL AND id <> $2")
            .bind(now).bind(&*svc.broker_id).execute(&mut **t).await?;
    });
    tx.commit().await?;
    Ok(orphans.len())
}

/// A session the database has not ended yet: the front door asks before each new channel.
pub async fn still_open(svc: &Sessions, id: &str) -> Result<Option<String>> {
    let r: Option<(Option<i64>, Option<String>)> = with_pool!(&svc.db, p => {
        sqlx::query_as("SELECT ended_at, end_reason FROM session_tickets WHERE id = $1")
            .bind(id).fetch_optional(p).await?
    });
    Ok(match r {
        Some((None, _)) => None,
        Some((Some(_), reason)) => Some(reason.unwrap_or_else(|| "ended".into())),
        None => Some("ended".into()),
    })
}

/// Shared handle type for the state.
pub type SharedLive = Arc<Live>;
