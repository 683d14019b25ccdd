//! Live sessions as their targets show them: ada's grants and session tickets through the
//! API, the `sleep` an SSH session runs in the sshd's `/proc`, the backend a PostgreSQL session
//! runs its query in in `pg_stat_activity`, each polled with a deadline.

use std::time::{Duration, Instant};

use paw_client::terminal::TermEvent;
use paw_proto::action::Action;
use paw_tests::virtual_user::VirtualUser;
use serde_json::Value;

use super::Events;

/// How often a target is looked at.
pub const POLL: Duration = Duration::from_millis(10);

/// ada's signed `request`, which the policy approves at once: the grant as the broker answered
/// it (state `active`).
pub async fn active_grant(ada: &mut VirtualUser, url: &str, request: &Action) -> Value {
    let v = ada
        .signed(url, "/v1/requests", request)
        .await
        .unwrap()
        .ok()
        .unwrap();
    assert_eq!(v["state"], "active", "{v}");
    v
}

/// [`active_grant`]'s id.
pub async fn active(ada: &mut VirtualUser, url: &str, request: &Action) -> String {
    active_grant(ada, url, request).await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A session on `target` under `grant`, signed by ada: the broker's redeem answer.
pub async fn redeem(ada: &mut VirtualUser, url: &str, grant: &str, target: &str) -> Value {
    let session = Action::Session {
        grant_id: grant.into(),
        target: target.into(),
    };
    ada.signed(url, &format!("/v1/grants/{grant}/redeem"), &session)
        .await
        .unwrap()
        .ok()
        .unwrap()
}

/// Six random digits, for an argv no other process has.
pub fn random_digits() -> u32 {
    let mut b = [0u8; 4];
    getrandom::getrandom(&mut b).unwrap();
    100_000 + u32::from_le_bytes(b) % 900_000
}

/// The pid of the one process whose argv is `cmdline` (NUL-separated), once it runs (at most
/// `limit`).
pub async fn wait_for_process(cmdline: &[u8], limit: Duration) -> u32 {
    let deadline = Instant::now() + limit;
    loop {
        let found: Vec<u32> = std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == cmdline))
            .collect();
        match found.as_slice() {
            [pid] => return *pid,
            [] => {}
            many => panic!("more than one process runs {cmdline:?}: {many:?}"),
        }
        assert!(
            Instant::now() < deadline,
            "the session never ran {:?}",
            String::from_utf8_lossy(cmdline)
        );
        tokio::time::sleep(POLL).await;
    }
}

/// When process `pid` (still running `cmdline`) was first seen gone; `None` if it still ran
/// at `until`.
pub async fn process_gone(pid: u32, cmdline: &[u8], until: Instant) -> Option<Instant> {
    loop {
        // A zombie's cmdline is empty: it has exited.
        if !std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == cmdline) {
            return Some(Instant::now());
        }
        if Instant::now() > until {
            return None;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The pid of `role`'s backend running `query`, once it runs (at most `limit`).
pub async fn wait_for_backend(
    watcher: &mut sqlx::PgConnection,
    role: &str,
    query: &str,
    limit: Duration,
) -> i32 {
    let deadline = Instant::now() + limit;
    loop {
        let pids: Vec<i32> = sqlx::query_scalar(
            "SELECT pid FROM pg_stat_activity WHERE usename = $1 AND state = 'active' \
             AND query = $2",
        )
        .bind(role)
        .bind(query)
        .fetch_all(&mut *watcher)
        .await
        .unwrap();
        if let [pid] = pids.as_slice() {
            return *pid;
        }
        assert!(pids.len() <= 1, "{pids:?}");
        assert!(Instant::now() < deadline, "the query never ran as {role}");
        tokio::time::sleep(POLL).await;
    }
}

/// When backend `pid` was first seen gone from `pg_stat_activity`; `None` if it was still
/// there at `until`.
pub async fn backend_gone(
    watcher: &mut sqlx::PgConnection,
    pid: i32,
    until: Instant,
) -> Option<Instant> {
    loop {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE pid = $1")
            .bind(pid)
            .fetch_one(&mut *watcher)
            .await
            .unwrap();
        if n == 0 {
            return Some(Instant::now());
        }
        if Instant::now() > until {
            return None;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The reason the broker gave the terminal when it ended the session (waiting at most
/// `limit`).
pub async fn client_end(rx: &mut Events, limit: Duration) -> Option<String> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some((_, TermEvent::Output(_)))) => {}
            Ok(Some((_, TermEvent::Ended { reason, .. }))) => return Some(reason),
            Ok(None) | Err(_) => return None,
        }
    }
}
