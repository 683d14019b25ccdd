//! Case I5 across replicas: the database is unreachable. After at most 10 s no privileged
//! session continues and privileged calls answer 503 with a code; nothing is lost or duplicated
//! in the audit when it returns.
//!
//! Two real `pawd` processes on one real PostgreSQL and a real sshd. A shell through replica A's
//! SSH front door runs a command; then PostgreSQL is stopped (immediate shutdown, every
//! connection cut) for 15 s. A must end the session it carries within the grace
//! (`sessions::brokers::DB_GRACE`, 8 s, bound 10 s) and say why (`database_lost`); both replicas
//! answer privileged calls 503 `storage_unavailable`, `/healthz` 503 and the shallow liveness
//! probe 200. When PostgreSQL is back the session's end is on record once (row ended, recording
//! closed and its SHA-256 that of the file on disk, one `session_end` record), the records from
//! before are untouched, the chain verifies, and A carries a new session again.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use paw_client::terminal::{self, TermEvent, Terminal};
use paw_proto::action::Action;
use paw_tests::replicas::{request_web, Replicas, SSH_TARGET};
use paw_tests::virtual_user::{Reply, VirtualUser};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

mod common;
use common::{output_until, psql, Events};

/// ada may have root on web-1 at once (automatic approval).
const POLICY: &str = r#"
[groups]
sre = ["ada"]

[[entitlement]]
id = "web-root"
description = "Root on the web servers"
target_kind = "ssh"
target = "web-*"
role = "root"
max_duration_secs = 3600
requesters = ["sre"]
approval = "auto"
max_sessions = 3
"#;

/// The case's bound: from the database going away to the session's connection closing.
const BOUND: Duration = Duration::from_secs(10);
/// How long PostgreSQL stays down (issue #14: "PostgreSQL stopped for 15 s").
const OUTAGE: Duration = Duration::from_secs(15);
/// How long the session's end may take to reach the database once it is back.
const RECORDED_WITHIN: Duration = Duration::from_secs(20);
/// How long one HTTP call may take while the database is down: it must answer, not hang
/// (the pool gives up acquiring a connection after 5 s, the health check's ping after 3 s).
const CALL_LIMIT: Duration = Duration::from_secs(8);

const A: usize = 0;
const B: usize = 1;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i5_database_outage_ends_sessions_within_the_grace_and_loses_nothing() {
    let mut r = Replicas::start_with_sshd(2, POLICY).await.unwrap();
    let (a, b) = (r.url(A), r.url(B));
    let mut ada = r.enrolled("ada", &[], A).await.unwrap();
    let granted = ada
        .signed(&a, "/v1/requests", &request_web())
        .await
        .unwrap();
    assert_eq!(granted.body["state"], "active", "{:?}", granted.body);
    let grant = granted.body["id"].as_str().unwrap().to_owned();

    // A shell through A's front door, a command in it and its output.
    let minted = redeem(&mut ada, &a, &grant).await.ok().unwrap();
    assert_eq!(
        minted["ssh_addr"],
        r.ssh_addr(A).unwrap().as_str(),
        "{minted}"
    );
    let sid = minted["session_id"].as_str().unwrap().to_owned();
    let (term, mut rx) = open(&minted).await;
    term.input(b"echo before-$((6*7))\n".to_vec())
        .await
        .unwrap();
    let out = output_until(&mut rx, "before-42").await;
    assert!(
        out.contains("before-42"),
        "no output: {out:?}\n{}",
        r.log(A)
    );

    // Step-up answers made while the database is up, for requests sent while it is down: a
    // privileged call that would be complete and valid but for the database.
    let mut signed_requests = Vec::new();
    for url in [&a, &b] {
        let start = ada.stepup_start(url, &request_web()).await.unwrap();
        let answer = ada.stepup_answer(&start, &request_web()).unwrap();
        signed_requests.push(json!({ "stepup": answer }));
    }

    // The audit before the outage: its records and their hashes, and the chain verified.
    let before = psql(&r, "SELECT count(*), max(seq) FROM audit_log");
    let (before_count, before_max) = before.split_once('|').unwrap();
    let before_count: i64 = before_count.parse().unwrap();
    let before_max: i64 = before_max.parse().unwrap();
    // Bounded by the same max: a record written between the two queries (the grant's
    // `grant_started`, say) is not "from before".
    let before_hashes = psql(
        &r,
        &format!(
            "SELECT string_agg(seq || ':' || hash, ',' ORDER BY seq) FROM audit_log \
             WHERE seq <= {before_max}"
        ),
    );
    let verified_before = audit_verify(&r);
    let before_rows = psql(
        &r,
        "SELECT seq || ' ' || actor || ' ' || action || ' ' || subject FROM audit_log \
         ORDER BY seq",
    );
    println!("I5 before: records:\n{before_rows}");
    println!("I5 before: {before_count} audit records (max seq {before_max}); {verified_before}");

    // PostgreSQL goes away.
    r.pg().unwrap().stop();
    let stopped = Instant::now();
    assert!(
        !r.pg().unwrap().is_running().unwrap(),
        "PostgreSQL still runs"
    );

    // A ends the session it carries within the grace, and says why.
    let (closed_at, said, message) = ended(&mut rx, BOUND + Duration::from_secs(5))
        .await
        .unwrap_or_else(|| {
            panic!(
                "the session on A did not end within {:?} of the database going away\n{}",
                BOUND + Duration::from_secs(5),
                r.log(A)
            )
        });
    let took = closed_at.saturating_duration_since(stopped);
    println!(
        "I5 outage: A's SSH connection closed {} ms after PostgreSQL stopped ({said}: {message})",
        took.as_millis()
    );
    assert!(
        took <= BOUND,
        "the session on A ended {took:?} after the database went away (bound {BOUND:?})\n{}",
        r.log(A)
    );
    assert_eq!(
        said,
        "database_lost",
        "A's disconnect message ({message})\n{}",
        r.log(A)
    );

    // While the database is down, on both replicas: privileged calls 503 with a code, the
    // readiness check 503, the liveness probe 200. The calls run together (each may wait for
    // the pool's acquire timeout) and each must answer within CALL_LIMIT.
    let http = r.client().unwrap();
    // The readiness check answers the load balancer fast, 503 with a code, not a timeout.
    for i in [A, B] {
        let asked = Instant::now();
        let ready = health(&http, &r.url(i), "/readyz").await.unwrap();
        let took = asked.elapsed();
        println!(
            "I5 outage: replica {i} /readyz: {} in {} ms",
            ready.status,
            took.as_millis()
        );
        assert_eq!(
            (ready.status, ready.code()),
            (503, "storage_unavailable"),
            "replica {i} readiness while the database is down: {:?}",
            ready.body
        );
        assert!(
            took < Duration::from_millis(1500),
            "replica {i} /readyz took {took:?}"
        );
    }
    let kill = Action::KillSession {
        session_id: sid.clone(),
        reason: "checking the broker fails closed".into(),
    };
    let checked_at = stopped.elapsed();
    let (on_a, on_b) = tokio::join!(
        while_down(&ada, &http, &a, &kill, &signed_requests[0]),
        while_down(&ada, &http, &b, &kill, &signed_requests[1])
    );
    for (i, name, [stepup, request, deep, shallow]) in [(A, "A", on_a), (B, "B", on_b)] {
        for (what, reply) in [
            ("POST /v1/stepup/start", &stepup),
            ("POST /v1/requests (signed before the outage)", &request),
            ("GET /healthz", &deep),
        ] {
            println!(
                "I5 outage: {name} {what}: {} {}",
                reply.status,
                reply.code()
            );
            assert_eq!(
                (reply.status, reply.code()),
                (503, "storage_unavailable"),
                "{name} {what} while the database is down: {:?}\n{}",
                reply.body,
                r.log(i)
            );
        }
        println!(
            "I5 outage: {name} GET /healthz?shallow=true: {}",
            shallow.status
        );
        assert_eq!(
            shallow.status,
            200,
            "{name} liveness while the database is down: {:?}\n{}",
            shallow.body,
            r.log(i)
        );
    }
    println!(
        "I5 outage: calls checked from {} ms to {} ms after the stop",
        checked_at.as_millis(),
        stopped.elapsed().as_millis()
    );
    // Past the lease's REFUSE_AFTER (3 s) without the database, a privileged call no longer
    // waits for the pool: 503 at once, so a client moves to another broker without delay.
    for (i, url) in [(A, &a), (B, &b)] {
        let asked = Instant::now();
        let fast = ada
            .call(
                url,
                "POST",
                "/v1/stepup/start",
                Some(&json!({ "action": kill })),
            )
            .await
            .unwrap();
        let took = asked.elapsed();
        println!(
            "I5 outage: replica {i} step-up start {} ms after the stop: {} in {} ms",
            stopped.elapsed().as_millis(),
            fast.status,
            took.as_millis()
        );
        assert_eq!(
            (fast.status, fast.code()),
            (503, "storage_unavailable"),
            "{:?}",
            fast.body
        );
        assert!(
            took < Duration::from_millis(500),
            "replica {i} took {took:?} to refuse a privileged call"
        );
    }
    // What each replica logged about the outage, for the record.
    for (i, name) in [(A, "A"), (B, "B")] {
        for line in r
            .log(i)
            .lines()
            .filter(|l| l.contains("lease") || l.contains("grace") || l.contains("database"))
        {
            println!("I5 log {name}: {line}");
        }
    }
    // Both replicas live through the outage: they fail closed, they do not exit.
    assert!(r.is_running(A).unwrap(), "A exited\n{}", r.log(A));
    assert!(r.is_running(B).unwrap(), "B exited\n{}", r.log(B));

    // The rest of the outage (the one long sleep this test takes), then PostgreSQL returns.
    tokio::time::sleep(OUTAGE.saturating_sub(stopped.elapsed())).await;
    r.pg().unwrap().start_again().unwrap();
    let back = Instant::now();
    println!(
        "I5: PostgreSQL was down {} ms",
        back.duration_since(stopped).as_millis()
    );

    // The session's end reaches the database.
    let (reason, sha) = wait_ended(&r, &sid, RECORDED_WITHIN).await;
    println!(
        "I5 after: the session row ended as {reason} {} ms after PostgreSQL returned",
        back.elapsed().as_millis()
    );
    assert!(
        reason == "database_lost" || reason == "broker_lost",
        "end_reason {reason}\n{}",
        r.log(A)
    );
    // A late second writer (the other replica reaping A's lease, or A's front door retrying)
    // would show here.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let file = r
        .broker_dir()
        .join("recordings")
        .join(format!("{sid}.cast"));
    let bytes = std::fs::read(&file).unwrap();
    assert!(
        String::from_utf8_lossy(&bytes).contains("before-42"),
        "the recording holds what ran before the outage"
    );
    let file_sha = hex::encode(Sha256::digest(&bytes));
    assert_eq!(
        sha.as_deref(),
        Some(file_sha.as_str()),
        "the row's recording hash is the file's\n{}",
        r.log(A)
    );
    let row = psql(
        &r,
        &format!(
            "SELECT end_reason, recording_closed_at IS NOT NULL, recording_sha256 \
             FROM session_tickets WHERE id = '{sid}'"
        ),
    );
    assert_eq!(row, format!("{reason}|t|{file_sha}"), "session row");
    let ends = psql(
        &r,
        &format!(
            "SELECT actor || '|' || outcome || '|' || coalesce(detail::json->>'reason', '-') \
             || '|' || coalesce(detail::json->>'recording_sha256', '-') \
             FROM audit_log WHERE action = 'session_end' AND subject = '{sid}' ORDER BY seq"
        ),
    );
    println!("I5 after: session_end records for the session: {ends}");
    let ends: Vec<&str> = ends.lines().collect();
    assert_eq!(ends.len(), 1, "exactly one session_end record: {ends:?}");
    assert!(
        ends[0].ends_with(&format!("|{reason}|{file_sha}")),
        "the session_end record holds the reason and the recording's hash: {}",
        ends[0]
    );

    // Nothing lost: every record from before is there, unchanged. Nothing duplicated: no two
    // session_end records for one subject anywhere, and no (action, subject) twice among the
    // records written since the outage.
    let kept = psql(
        &r,
        &format!(
            "SELECT string_agg(seq || ':' || hash, ',' ORDER BY seq) FROM audit_log \
             WHERE seq <= {before_max}"
        ),
    );
    assert_eq!(
        kept,
        before_hashes,
        "the records from before the outage; now:\n{}",
        psql(
            &r,
            "SELECT seq || ' ' || actor || ' ' || action || ' ' || subject FROM audit_log \
             ORDER BY seq"
        )
    );
    let dup_ends = psql(
        &r,
        "SELECT subject || ' x' || count(*) FROM audit_log WHERE action = 'session_end' \
         GROUP BY subject HAVING count(*) > 1",
    );
    assert_eq!(dup_ends, "", "duplicated session_end records");
    let since = psql(
        &r,
        &format!(
            "SELECT seq || ' ' || actor || ' ' || action || ' ' || subject || ' ' || outcome \
             FROM audit_log WHERE seq > {before_max} ORDER BY seq"
        ),
    );
    println!("I5 after: records written since the outage began:\n{since}");
    let dup_since = psql(
        &r,
        &format!(
            "SELECT action || ' ' || subject || ' x' || count(*) FROM audit_log \
             WHERE seq > {before_max} GROUP BY action, subject HAVING count(*) > 1"
        ),
    );
    assert_eq!(dup_since, "", "records written twice since the outage");
    let after_count: i64 = psql(&r, "SELECT count(*) FROM audit_log").parse().unwrap();
    assert!(
        after_count > before_count,
        "{after_count} <= {before_count}"
    );
    let verified_after = audit_verify(&r);
    println!("I5 after: {after_count} audit records; {verified_after}");

    // A recovered: a new session through its front door runs a command.
    let deadline = Instant::now() + RECORDED_WITHIN;
    let minted = loop {
        let reply = redeem(&mut ada, &a, &grant).await;
        if reply.status == 200 {
            break reply.body;
        }
        assert!(
            Instant::now() < deadline,
            "A does not carry new sessions {RECORDED_WITHIN:?} after the database returned: \
             {reply:?}\n{}",
            r.log(A)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(
        minted["ssh_addr"],
        r.ssh_addr(A).unwrap().as_str(),
        "{minted}"
    );
    let (again, mut rx) = open(&minted).await;
    again
        .input(b"echo after-$((6*7))\n".to_vec())
        .await
        .unwrap();
    let out = output_until(&mut rx, "after-42").await;
    assert!(out.contains("after-42"), "no output: {out:?}\n{}", r.log(A));
    println!(
        "I5 after: a new session through A ran a command {} ms after PostgreSQL returned",
        back.elapsed().as_millis()
    );
    for i in [A, B] {
        let h = health(&http, &r.url(i), "/healthz").await.unwrap();
        assert_eq!(
            h.status, 200,
            "replica {i} health after the outage: {:?}",
            h.body
        );
    }
    // Ready again, each with a live lease of its own.
    for i in [A, B] {
        let ready = health(&http, &r.url(i), "/readyz").await.unwrap();
        assert_eq!(
            ready.status, 200,
            "replica {i} readiness after: {:?}",
            ready.body
        );
        let left = ready.body["lease_ms_left"].as_i64().unwrap_or(-1);
        assert!(
            left > 0,
            "replica {i} lease after the outage: {:?}",
            ready.body
        );
        assert!(ready.body["broker_id"].is_string(), "{:?}", ready.body);
    }
}

/// A session credential for `grant` redeemed on `url` (step-up and redeem); the reply as is.
async fn redeem(user: &mut VirtualUser, url: &str, grant: &str) -> Reply {
    let session = Action::Session {
        grant_id: grant.into(),
        target: SSH_TARGET.into(),
    };
    match user
        .signed(url, &format!("/v1/grants/{grant}/redeem"), &session)
        .await
    {
        Ok(reply) => reply,
        // The step-up start failed (its error names the status and body).
        Err(e) => Reply {
            status: 0,
            body: json!({ "error": format!("{e:#}") }),
        },
    }
}

/// Opens a shell with a minted credential; its events, timestamped on arrival.
async fn open(minted: &Value) -> (Terminal, Events) {
    let credential = common::credential(minted);
    let (tx, rx) = mpsc::unbounded_channel();
    let term = terminal::open(credential, 80, 24, None, move |e| {
        let _ = tx.send((Instant::now(), e));
    })
    .await
    .unwrap_or_else(|e| panic!("the front door refused the ticket: {e}"));
    (term, rx)
}

/// `GET url+path` without credentials: status and JSON body.
async fn health(http: &reqwest::Client, url: &str, path: &str) -> anyhow::Result<Reply> {
    let res = http.get(format!("{url}{path}")).send().await?;
    let status = res.status().as_u16();
    let body = res.json().await.unwrap_or(Value::Null);
    Ok(Reply { status, body })
}

/// A call that must answer within [`CALL_LIMIT`]; a hang or a transport error fails the test.
async fn bounded(
    what: String,
    call: impl std::future::Future<Output = anyhow::Result<Reply>>,
) -> Reply {
    let sent = Instant::now();
    match tokio::time::timeout(CALL_LIMIT, call).await {
        Ok(Ok(reply)) => {
            println!(
                "I5 outage: {what} answered {} in {} ms",
                reply.status,
                sent.elapsed().as_millis()
            );
            reply
        }
        Ok(Err(e)) => panic!("the call failed without an answer: {e:#}"),
        Err(_) => panic!("no answer within {CALL_LIMIT:?} while the database is down"),
    }
}

/// The calls made on one replica while the database is down, together: a step-up start, a
/// request signed before the outage, `/healthz` and `/healthz?shallow=true`.
async fn while_down(
    ada: &VirtualUser,
    http: &reqwest::Client,
    url: &str,
    kill: &Action,
    signed: &Value,
) -> [Reply; 4] {
    let start = json!({ "action": kill });
    let (stepup, request, deep, shallow) = tokio::join!(
        bounded(
            format!("{url} step-up start"),
            ada.call(url, "POST", "/v1/stepup/start", Some(&start))
        ),
        bounded(
            format!("{url} request"),
            ada.call(url, "POST", "/v1/requests", Some(signed))
        ),
        bounded(format!("{url} /healthz"), health(http, url, "/healthz")),
        bounded(
            format!("{url} /healthz?shallow=true"),
            health(http, url, "/healthz?shallow=true")
        )
    );
    [stepup, request, deep, shallow]
}

/// When the session ended, the broker's reason and its words (at most `limit`).
async fn ended(rx: &mut Events, limit: Duration) -> Option<(Instant, String, String)> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some((_, TermEvent::Output(_)))) => {}
            Ok(Some((at, TermEvent::Ended { reason, message }))) => {
                return Some((at, reason, message))
            }
            Ok(None) | Err(_) => return None,
        }
    }
}

/// `pawd audit verify` (a real process, replica A's config): must succeed; its report.
fn audit_verify(r: &Replicas) -> String {
    let out = r.pawd(&["audit".into(), "verify".into()]).unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(
        out.status.success() && stdout.contains("chain intact"),
        "pawd audit verify failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Polls (PostgreSQL must be up) until the session's row is ended and its recording closed;
/// its end reason and recording hash. Fails after `limit`.
async fn wait_ended(r: &Replicas, sid: &str, limit: Duration) -> (String, Option<String>) {
    let deadline = Instant::now() + limit;
    loop {
        let row = psql(
            r,
            &format!(
                "SELECT coalesce(end_reason, '-'), coalesce(recording_sha256, '-') \
                 FROM session_tickets WHERE id = '{sid}' AND ended_at IS NOT NULL \
                 AND recording_closed_at IS NOT NULL"
            ),
        );
        if let Some((reason, sha)) = row.split_once('|') {
            return (reason.to_owned(), (sha != "-").then(|| sha.to_owned()));
        }
        assert!(
            Instant::now() < deadline,
            "session {sid} not recorded as ended within {limit:?} of the database's return: {}\n\
             A:\n{}\nB:\n{}",
            psql(
                r,
                &format!(
                    "SELECT coalesce(ended_at::text, '-') || '|' || coalesce(end_reason, '-') \
                     || '|' || (recording_closed_at IS NOT NULL) FROM session_tickets \
                     WHERE id = '{sid}'"
                )
            ),
            tail(&r.log(A)),
            tail(&r.log(B))
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}
