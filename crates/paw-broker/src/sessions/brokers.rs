//! Several brokers on one database (issue #14, cases I2 and I3): each serving process is a row
//! in `brokers` with a lease it renews; each session records the broker that carries its
//! connection (`session_tickets.broker_id`).
//!
//! - A broker whose lease has expired is gone (crashed, killed, cut off). Any other broker
//!   notices within [`RENEW_EVERY`] of the expiry and ends its sessions with `broker_lost`:
//!   the recording is closed where it was cut and its hash recorded, one `session_end` record
//!   each. Claiming the dead broker's row is one conditional update, so when several brokers
//!   notice together exactly one does it.
//! - A clean shutdown ends the sessions the broker carries with `broker_shutdown` (their
//!   connections close and finish their recordings themselves) and releases the lease.
//! - Nothing here ends a session of a broker that is alive: a restarting peer leaves the
//!   others' sessions alone.

use std::time::Duration;

use paw_audit::Outcome;
use serde_json::json;

use crate::audit::{self, Entry};
use crate::sessions::error::Result;
use crate::sessions::recording::file_sha256;
use crate::sessions::Sessions;
use crate::{with_pool, with_tx};

/// How long a broker stays alive in the others' eyes without renewing: long enough to ride out
/// a slow database statement or a GC-free pause, short enough that a dead broker's sessions end
/// within seconds.
pub const LEASE: Duration = Duration::from_secs(10);
/// How often a broker renews its lease and looks for lost peers.
pub const RENEW_EVERY: Duration = Duration::from_secs(2);
/// How long a broker carries sessions without reaching its database (case I5): then it ends
/// them all, since nothing it does can be recorded or revoked. Under the lease, so a broker
/// cut off from the database has ended its sessions before its peers take it for dead; plus
/// [`WATCH_EVERY`], within the 10 s the issue allows.
pub const DB_GRACE: Duration = Duration::from_secs(8);
/// How often the grace is checked.
pub const WATCH_EVERY: Duration = Duration::from_millis(500);
/// A broker whose lease renewals have failed for this long answers privileged calls 503 at
/// once instead of each waiting for the pool: more than one renewal missed is not a blip.
pub const REFUSE_AFTER: Duration = Duration::from_secs(3);

/// When this broker last reached its database, as its lease renewals see it. Unknown (no
/// refusals) until the lease task first runs: a broker without a front door has no lease.
#[derive(Debug, Default)]
pub struct Heartbeat(std::sync::Mutex<Option<tokio::time::Instant>>);

impl Heartbeat {
    /// The database answered just now.
    pub fn beat(&self) {
        self.beat_at(tokio::time::Instant::now());
    }

    /// The database last answered at `at` (tests set a past beat).
    pub(crate) fn beat_at(&self, at: tokio::time::Instant) {
        if let Ok(mut t) = self.0.lock() {
            *t = Some(at);
        }
    }

    /// How long since the database last answered, once the lease task runs.
    pub fn silent_for(&self) -> Option<Duration> {
        self.0.lock().ok().and_then(|t| t.map(|t| t.elapsed()))
    }
}

fn lease_ms() -> i64 {
    i64::try_from(LEASE.as_millis()).unwrap_or(i64::MAX)
}

/// One broker as `pawd status` lists it.
#[derive(Debug, sqlx::FromRow)]
pub struct BrokerRow {
    pub id: String,
    pub host: String,
    pub pid: i64,
    pub started_at: i64,
    pub lease_until: i64,
    pub stopped_at: Option<i64>,
    pub stop_reason: Option<String>,
    /// Sessions it carries whose recording is still open.
    pub sessions: i64,
}

impl BrokerRow {
    /// One line: id, host and pid, state (serving with the lease left, expired, or stopped and
    /// why), open sessions.
    pub fn describe(&self, now: i64) -> String {
        let state = match (&self.stopped_at, &self.stop_reason) {
            (Some(_), reason) => format!("stopped ({})", reason.as_deref().unwrap_or("?")),
            (None, _) if self.lease_until >= now => {
                format!(
                    "serving, lease {:.1} s",
                    (self.lease_until - now) as f64 / 1000.0
                )
            }
            (None, _) => format!(
                "lease expired {:.1} s ago",
                (now - self.lease_until) as f64 / 1000.0
            ),
        };
        format!(
            "{}  {} pid {}  started {}  {}  {} open session(s)",
            self.id, self.host, self.pid, self.started_at, state, self.sessions
        )
    }
}

/// Every broker that served on this database, the newest first.
pub async fn list(db: &crate::store::Db) -> crate::base::error::Result<Vec<BrokerRow>> {
    Ok(with_pool!(db, p => {
        sqlx::query_as("SELECT b.id, b.host, b.pid, b.started_at, b.lease_until, b.stopped_at, b.stop_reason, \
                        (SELECT COUNT(*) FROM session_tickets s WHERE s.broker_id = b.id \
                         AND s.used_at IS NOT NULL AND s.recording_closed_at IS NULL) AS sessions \
                        FROM brokers b ORDER BY b.started_at DESC")
            .fetch_all(p).await?
    }))
}

/// Registers this process as a broker with a fresh lease.
pub async fn register(svc: &Sessions) -> Result<()> {
    let now = svc.clock.now_ms();
    let host = crate::base::util::host_name();
    with_pool!(&svc.db, p => {
        sqlx::query("INSERT INTO brokers (id, host, pid, started_at, lease_until) VALUES ($1, $2, $3, $4, $5)")
            .bind(&*svc.broker_id).bind(&host).bind(i64::from(std::process::id()))
            .bind(now).bind(now + lease_ms()).execute(p).await?;
    });
    Ok(())
}

/// How long this broker's lease still runs (ms): `None` when it holds no lease (not
/// registered), negative or an error when the others may take it for dead.
pub async fn lease_left(svc: &Sessions) -> Result<Option<i64>> {
    let now = svc.clock.now_ms();
    let row: Option<(i64, Option<i64>)> = with_pool!(&svc.db, p => {
        sqlx::query_as("SELECT lease_until, stopped_at FROM brokers WHERE id = $1")
            .bind(&*svc.broker_id).fetch_optional(p).await?
    });
    Ok(match row {
        None => None,
        Some((_, Some(_))) => Some(-1),
        Some((until, None)) => Some(until - now),
    })
}

/// Renews this broker's lease. `false` when the others already consider it gone (its row was
/// reaped while it could not reach the database): its sessions were ended, and it must not
/// carry on as if they were not.
pub async fn renew(svc: &Sessions) -> Result<bool> {
    let now = svc.clock.now_ms();
    let n = with_pool!(&svc.db, p => {
        sqlx::query("UPDATE brokers SET lease_until = $1 WHERE id = $2 AND stopped_at IS NULL")
            .bind(now + lease_ms()).bind(&*svc.broker_id).execute(p).await?.rows_affected()
    });
    Ok(n == 1)
}

/// Takes the lease back after the others took this broker for dead (it could not renew for a
/// while): they ended every session it carried, so it starts again with none.
pub async fn revive(svc: &Sessions) -> Result<()> {
    let now = svc.clock.now_ms();
    with_pool!(&svc.db, p => {
        sqlx::query("UPDATE brokers SET lease_until = $1, stopped_at = NULL, stop_reason = NULL WHERE id = $2")
            .bind(now + lease_ms()).bind(&*svc.broker_id).execute(p).await?;
    });
    Ok(())
}

/// Ends the sessions of every broker whose lease has expired, each broker claimed by exactly
/// one caller. Returns how many sessions were ended.
pub async fn reap_lost(svc: &Sessions) -> Result<usize> {
    let now = svc.clock.now_ms();
    let lost: Vec<String> = with_pool!(&svc.db, p => {
        sqlx::query_scalar("SELECT id FROM brokers WHERE stopped_at IS NULL AND lease_until < $1 AND id <> $2")
            .bind(now).bind(&*svc.broker_id).fetch_all(p).await?
    });
    let mut ended = 0;
    for id in lost {
        ended += end_broker(svc, &id, "lost", "broker_lost", now).await?;
    }
    Ok(ended)
}

/// A clean shutdown: ends this broker's sessions with `broker_shutdown` and releases the
/// lease. Returns the ids of the sessions it ended, for the connections to be told.
pub async fn shutdown(svc: &Sessions) -> Result<Vec<String>> {
    let now = svc.clock.now_ms();
    let mut tx = svc.db.begin().await?;
    audit::lock(&mut tx).await?;
    let ids: Vec<String> = with_tx!(&mut tx, t => {
        sqlx::query_scalar("SELECT id FROM session_tickets WHERE broker_id = $1 AND used_at IS NOT NULL AND ended_at IS NULL")
            .bind(&*svc.broker_id).fetch_all(&mut **t).await?
    });
    for id in &ids {
        // The end only: the connection, told below, closes its recording and writes the
        // `session_end` record with the hash (`sessions::finish`).
        with_tx!(&mut tx, t => {
            sqlx::query("UPDATE session_tickets SET ended_at = $1, end_reason = 'broker_shutdown' WHERE id = $2 AND ended_at IS NULL")
                .bind(now).bind(id).execute(&mut **t).await?;
        });
    }
    with_tx!(&mut tx, t => {
        sqlx::query("UPDATE brokers SET stopped_at = $1, stop_reason = 'shutdown' WHERE id = $2 AND stopped_at IS NULL")
            .bind(now).bind(&*svc.broker_id).execute(&mut **t).await?;
    });
    tx.commit().await?;
    Ok(ids)
}

/// Whether all of `ids` have their recordings closed (their connections finished).
pub async fn all_closed(svc: &Sessions, ids: &[String]) -> Result<bool> {
    for id in ids {
        let open: Option<i64> = with_pool!(&svc.db, p => {
            sqlx::query_scalar("SELECT 1 FROM session_tickets WHERE id = $1 AND recording_closed_at IS NULL")
                .bind(id).fetch_optional(p).await?
        });
        if open.is_some() {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Claims broker `id` (stopped with `stop_reason`) and ends its open sessions with `reason`, in
/// one transaction. Zero when another caller claimed it first.
async fn end_broker(
    svc: &Sessions,
    id: &str,
    stop_reason: &str,
    reason: &str,
    now: i64,
) -> Result<usize> {
    let mut tx = svc.db.begin().await?;
    audit::lock(&mut tx).await?;
    let claimed = with_tx!(&mut tx, t => {
        sqlx::query("UPDATE brokers SET stopped_at = $1, stop_reason = $2 WHERE id = $3 AND stopped_at IS NULL AND lease_until < $1")
            .bind(now).bind(stop_reason).bind(id).execute(&mut **t).await?.rows_affected()
    });
    if claimed == 0 {
        return Ok(0);
    }
    let sessions: Vec<(String, String, String, String)> = with_tx!(&mut tx, t => {
        sqlx::query_as("SELECT s.id, g.id, g.target, u.name FROM session_tickets s \
                        JOIN grants g ON g.id = s.grant_id JOIN users u ON u.id = g.user_id \
                        WHERE s.broker_id = $1 AND s.used_at IS NOT NULL AND s.recording_closed_at IS NULL")
            .bind(id).fetch_all(&mut **t).await?
    });
    for (session_id, grant_id, target, user) in &sessions {
        let recording = close_cut_recording(svc, session_id);
        let (sha, bytes, error) = match &recording {
            Some(Ok((sha, bytes))) => (Some(sha.clone()), Some(*bytes), None),
            Some(Err(e)) => (None, None, Some(e.clone())),
            None => (None, None, None),
        };
        with_tx!(&mut tx, t => {
            sqlx::query("UPDATE session_tickets SET ended_at = COALESCE(ended_at, $1), \
                         end_reason = COALESCE(end_reason, $2), recording_sha256 = $3, \
                         recording_closed_at = $1 WHERE id = $4 AND recording_closed_at IS NULL")
                .bind(now).bind(reason).bind(&sha).bind(session_id).execute(&mut **t).await?;
        });
        let final_reason: Option<String> = with_tx!(&mut tx, t => {
            sqlx::query_scalar("SELECT end_reason FROM session_tickets WHERE id = $1")
                .bind(session_id).fetch_one(&mut **t).await?
        });
        audit::append(
            &mut tx,
            now,
            Entry::new(
                "pawd",
                "session_end",
                session_id,
                Outcome::Failure,
                json!({
                    "grant_id": grant_id,
                    "target": target,
                    "user": user,
                    "reason": final_reason.as_deref().unwrap_or(reason),
                    "broker_id": id,
                    "recording_sha256": sha,
                    "recording_bytes": bytes,
                    "recording_error": error,
                }),
            ),
        )
        .await?;
    }
    tx.commit().await?;
    if !sessions.is_empty() {
        tracing::warn!(
            alert = true,
            broker = id,
            sessions = sessions.len(),
            "a broker's lease expired; its sessions are ended"
        );
    }
    Ok(sessions.len())
}

/// The recording of a session whose broker died, as the kill left it: a last event cut
/// mid-line is dropped (the file stays valid asciicast), then it is hashed. `None` when this
/// broker has no recordings directory or the session has no recording (a database session).
/// Also for a single broker's own sessions after a restart (`sessions::close_orphans`).
pub(crate) fn close_cut_recording(
    svc: &Sessions,
    session_id: &str,
) -> Option<Result<(String, u64), String>> {
    let run = svc.ssh.as_ref()?;
    if !crate::sessions::history::is_session_id(session_id) {
        return None;
    }
    let path = run
        .front
        .recordings_dir()
        .join(format!("{session_id}.cast"));
    if !path.exists() {
        return None;
    }
    let result = (|| -> std::io::Result<(String, u64)> {
        let data = std::fs::read(&path)?;
        let keep = data.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        if keep < data.len() {
            let f = std::fs::OpenOptions::new().write(true).open(&path)?;
            f.set_len(keep as u64)?;
            f.sync_all()?;
        }
        Ok((file_sha256(&path)?, keep as u64))
    })();
    Some(result.map_err(|e| format!("{}: {e}", path.display())))
}
