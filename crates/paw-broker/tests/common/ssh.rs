//! The SSH session harness shared by the session tests: a broker with `[sessions]` whose user
//! CA a real sshd trusts, ada enrolled, and helpers to get a grant, redeem a session credential,
//! drive a terminal and check that nothing is left open.

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use paw_broker::audit;
use paw_client::terminal::{self, Credential, TermEvent};
use paw_proto::action::Action;
use paw_tests::sshd::TempSshd;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::idp::*;

pub struct Setup {
    pub b: Broker,
    pub sshd: TempSshd,
    pub ada: Client,
}

pub fn real_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A broker with `[sessions]`, whose CA a fresh sshd trusts, and ada enrolled.
pub async fn setup(extra: &str) -> Setup {
    let keys = tempfile::tempdir().unwrap();
    let ca_path = keys.path().join("ssh_user_ca");
    let ca = paw_broker::crypto::ssh_ca::load_or_create(&ca_path, "test CA").unwrap();
    let sshd = TempSshd::start(&ca.public_key().to_openssh().unwrap()).unwrap();
    let cfg = format!(
        "[sessions]\nssh_listen = \"127.0.0.1:0\"\nssh_ca_key = \"{ca}\"\n{extra}\n\
         [[target]]\nname = \"web-1\"\nkind = \"ssh\"\naddress = \"{addr}\"\nhost_key = \"{hk}\"\n",
        ca = ca_path.display(),
        addr = sshd.address(),
        hk = sshd.host_key(),
    );
    let b = Broker::start_with(&cfg).await;
    // Keep the key dir alive as long as the broker: leak it into the broker's temp dir.
    std::mem::forget(keys);
    b.clock
        .0
        .store(real_now_ms(), std::sync::atomic::Ordering::SeqCst);
    let ada = b.enrolled_as("ada", &[]).await;
    Setup { b, sshd, ada }
}

pub fn req_web(minutes: u32) -> Action {
    Action::Request {
        entitlement: "web-root".into(),
        target: "web-1".into(),
        role: "root".into(),
        duration_secs: minutes * 60,
        justification: "restart the stuck worker pool".into(),
        ticket: None,
        start_at_ms: None,
    }
}

pub async fn signed(
    c: &mut Client,
    b: &Broker,
    path: &str,
    action: &Action,
) -> (StatusCode, Value) {
    let body = c.stepup(b, action, &Tweak::default()).await;
    c.call(b, "POST", path, Some(&json!({ "stepup": body })))
        .await
}

pub async fn active_grant(s: &mut Setup) -> String {
    grant_for(&mut s.ada, &s.b).await
}

/// An active 30-minute web-1 grant for `c`.
pub async fn grant_for(c: &mut Client, b: &Broker) -> String {
    let (st, v) = signed(c, b, "/v1/requests", &req_web(30)).await;
    assert_eq!(
        (st, v["state"].as_str()),
        (StatusCode::OK, Some("active")),
        "{v}"
    );
    v["id"].as_str().unwrap().to_owned()
}

pub async fn redeem(s: &mut Setup, grant: &str) -> Value {
    redeem_for(&mut s.ada, &s.b, grant).await
}

/// `c` redeems a session credential on `grant`: the broker's answer.
pub async fn redeem_for(c: &mut Client, b: &Broker, grant: &str) -> Value {
    let action = Action::Session {
        grant_id: grant.into(),
        target: "web-1".into(),
    };
    let (st, v) = signed(c, b, &format!("/v1/grants/{grant}/redeem"), &action).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v
}

pub fn cred(v: &Value) -> Credential {
    Credential {
        addr: v["ssh_addr"].as_str().unwrap().into(),
        host_key: v["ssh_host_key"].as_str().unwrap().into(),
        session_id: v["session_id"].as_str().unwrap().into(),
        ticket: v["ticket"].as_str().unwrap().to_owned().into(),
    }
}

/// Opens a terminal; returns it and the stream of its events.
pub async fn open(
    c: Credential,
    command: Option<&str>,
) -> Result<(terminal::Terminal, mpsc::UnboundedReceiver<TermEvent>), paw_client::ClientError> {
    let (tx, rx) = mpsc::unbounded_channel();
    let t = terminal::open(c, 80, 24, command.map(str::to_owned), move |e| {
        let _ = tx.send(e);
    })
    .await?;
    Ok((t, rx))
}

/// Collects output until the session ends (or `limit` passes); returns output and the end.
pub async fn drain(
    rx: &mut mpsc::UnboundedReceiver<TermEvent>,
    limit: Duration,
) -> (String, Option<(String, String)>) {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(TermEvent::Output(d))) => out.extend(d),
            Ok(Some(TermEvent::Ended { reason, message })) => {
                return (
                    String::from_utf8_lossy(&out).into(),
                    Some((reason, message)),
                )
            }
            Ok(None) | Err(_) => return (String::from_utf8_lossy(&out).into(), None),
        }
    }
}

/// Waits until output contains `needle`.
pub async fn wait_for(rx: &mut mpsc::UnboundedReceiver<TermEvent>, needle: &str) -> String {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(TermEvent::Output(d))) => {
                out.extend(d);
                if String::from_utf8_lossy(&out).contains(needle) {
                    return String::from_utf8_lossy(&out).into();
                }
            }
            other => panic!(
                "waiting for {needle:?}: {other:?}; so far {:?}",
                String::from_utf8_lossy(&out)
            ),
        }
    }
}

/// After every test: no connection held, no session left open in the database.
pub async fn no_residual_sessions(b: &Broker) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !b.state.sessions.live_sessions.is_empty() {
        assert!(
            Instant::now() < deadline,
            "a session connection is still held"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    loop {
        let open: i64 = paw_broker::with_pool!(&b.db, p => {
            sqlx::query_scalar("SELECT COUNT(*) FROM session_tickets WHERE used_at IS NOT NULL AND recording_closed_at IS NULL")
                .fetch_one(p).await.unwrap()
        });
        if open == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{open} session(s) left open");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn session_end(b: &Broker, sid: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let end = audit::records(&b.db, 0, 1_000_000)
            .await
            .unwrap()
            .into_iter()
            .find(|r| r.event.subject == sid && r.event.action == "session_end");
        if let Some(r) = end {
            return r.event.detail;
        }
        assert!(Instant::now() < deadline, "no session_end record for {sid}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
