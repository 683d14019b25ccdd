//! Issue #14: live events reach a client whichever broker it streams from. Real `pawd`
//! processes on one real PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use paw_proto::action::Action;
use paw_tests::replicas::Replicas;

/// ada's requests need one approval from bob.
const POLICY: &str = r#"
[groups]
sre = ["ada"]
approvers = ["bob"]

[[entitlement]]
id = "db-admin"
description = "Administer the databases"
target_kind = "postgres"
target = "db-*"
role = "dba"
max_duration_secs = 3600
requesters = ["sre"]
approval = { required = 1, groups = ["approvers"] }
"#;

/// An SSE subscriber on A sees, within a second or so, an approval made on B: the event is
/// shared through the database (`live_events`), not only broadcast inside B.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_subscriber_on_one_broker_sees_an_approval_made_on_another() {
    let r = Replicas::start(2, POLICY).await.unwrap();
    let (a, b) = (r.url(0), r.url(1));
    let mut ada = r.enrolled("ada", &[], 0).await.unwrap();
    let mut bob = r.enrolled("bob", &[], 1).await.unwrap();

    let mut events = ada.stream(&a, "/v1/events").await.unwrap();
    assert_eq!(events.status(), 200);

    let request = Action::Request {
        entitlement: "db-admin".into(),
        target: "db-1".into(),
        role: "dba".into(),
        duration_secs: 1800,
        justification: "vacuum the bloated orders table".into(),
        ticket: None,
        start_at_ms: None,
    };
    let pending = ada
        .signed(&b, "/v1/requests", &request)
        .await
        .unwrap()
        .ok()
        .unwrap();
    assert_eq!(pending["state"], "pending", "{pending}");
    let id = pending["id"].as_str().unwrap().to_owned();

    let decide = Action::Approve {
        request_id: id.clone(),
        approve: true,
        comment: "ok, during the maintenance window".into(),
    };
    let approved_at = Instant::now();
    let decided = bob
        .signed(&b, &format!("/v1/requests/{id}/decide"), &decide)
        .await
        .unwrap()
        .ok()
        .unwrap();
    assert_eq!(decided["approvals_missing"], 0, "{decided}");

    // Read A's stream until the decision on this request arrives.
    let mut text = String::new();
    let deadline = Duration::from_secs(10);
    loop {
        let left = deadline.saturating_sub(approved_at.elapsed());
        assert!(!left.is_zero(), "no decision event on A's stream: {text}");
        match tokio::time::timeout(left, events.chunk()).await {
            Ok(Ok(Some(chunk))) => text.push_str(&String::from_utf8_lossy(&chunk)),
            Ok(Ok(None)) => panic!("A's stream ended: {text}"),
            Ok(Err(e)) => panic!("A's stream failed: {e}: {text}"),
            Err(_) => panic!("no decision event on A's stream within {deadline:?}: {text}"),
        }
        if text
            .lines()
            .any(|l| l.starts_with("data:") && l.contains(&id) && l.contains("request_decided"))
        {
            break;
        }
    }
    eprintln!(
        "A's subscriber saw B's approval after {:?}",
        approved_at.elapsed()
    );
    assert!(approved_at.elapsed() < Duration::from_secs(2), "{text}");
}
