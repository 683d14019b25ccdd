//! What the vault costs (BENCHMARKS.md, issue #17).
//!
//! One real `pawd` (SQLite), the replicas harness's sshd (`web-1`, certificate logins), a legacy
//! sshd whose root the vault manages (password on `legacy-1`, key on `legacy-2`) and a real
//! PostgreSQL with a vaulted login role. Figures:
//! 1. **Session set-up with injection**: redeem a session and run `true` through the broker,
//!    until its end, for a certificate session (`web-1`, the broker mints a certificate) and
//!    for vaulted password and key sessions (the account checked out, its secret opened and
//!    used); interleaved run by run; p50, p99, and what injection adds to the p50.
//! 2. **Rotations per minute**: an administrator's `POST /v1/vault/accounts/{id}/rotate` (its
//!    step-up included) run to its end — generate, store pending, change on the target, verify
//!    with a fresh login, promote — for the password, key and PostgreSQL accounts, against the
//!    floor of the same change done directly from this process (log in, `chpasswd`, log in
//!    again with the new password; `ALTER ROLE` and a fresh connection for PostgreSQL).
//!
//! `cargo xtask bench vault`, or `PAW_TEST_PAWD=… cargo bench -p paw-tests --bench vault`.
//! `PAW_BENCH_RUNS` (default 50). Without `--bench`, a short check.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use paw_client::terminal::{self, TermEvent};
use paw_proto::action::Action;
use paw_tests::bench::{loadavg, ms, pct};
use paw_tests::postgres::TempPostgres;
use paw_tests::replicas::{Options, Replicas, Store, SSH_TARGET};
use paw_tests::vault_sshd::{change_password_directly, opens, LegacySshd, KEYS_FILE};
use paw_tests::virtual_user::VirtualUser;
use serde_json::{json, Value};

const PAWD: usize = 0;
const PW0: &str = "Bench-Legacy-Pw-0a1b2c";
const PG_PW0: &str = "Bench-Pg-Pw-3d4e5f";

fn runs() -> usize {
    let env = std::env::var("PAW_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok());
    if std::env::args().any(|a| a == "--bench") || env.is_some() {
        env.unwrap_or(50).max(2)
    } else {
        3
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(runs()));
}

fn config(legacy: &LegacySshd, pg: &TempPostgres) -> String {
    format!(
        r#"
[[target]]
name = "legacy-1"
kind = "ssh"
address = "{addr}"
host_key = "{hk}"

[[target]]
name = "legacy-2"
kind = "ssh"
address = "{addr}"
host_key = "{hk}"

[[target]]
name = "legacy-db"
kind = "postgres"
address = "127.0.0.1:{port}"
database = "{db}"

[vault]
kek_id = "kek-1"
kek_file = "vault-kek"
reconcile_secs = 3600
step_timeout_secs = 10

[[vault.account]]
target = "legacy-2"
account = "root"
authorized_keys = "{KEYS_FILE}"

[[vault.account]]
target = "legacy-1"
account = "root"
exclusive = false

[groups]
sre = ["ada"]

[[entitlement]]
id = "web-root"
description = "root on web-1 by certificate"
target_kind = "ssh"
target = "web-*"
role = "root"
max_duration_secs = 3600
requesters = ["sre"]
approval = "auto"
max_sessions = 16

[[entitlement]]
id = "legacy-root"
description = "root on the legacy hosts, vaulted"
target_kind = "ssh"
target = "legacy-*"
role = "root"
max_duration_secs = 3600
requesters = ["sre"]
approval = "auto"
vault = ["inject"]
max_sessions = 16

[[entitlement]]
id = "legacy-db-owner"
description = "the vaulted owner login"
target_kind = "postgres"
target = "legacy-db"
role = "app_owner"
max_duration_secs = 3600
requesters = ["sre"]
approval = "auto"
vault = ["inject"]
"#,
        addr = legacy.address(),
        hk = legacy.host_key(),
        port = pg.port(),
        db = pg.database(),
    )
}

async fn grant(r: &Replicas, ada: &mut VirtualUser, entitlement: &str, target: &str) -> String {
    let action = Action::Request {
        entitlement: entitlement.into(),
        target: target.into(),
        role: "root".into(),
        duration_secs: 3600,
        justification: "vault bench session set-up".into(),
        ticket: None,
        start_at_ms: None,
    };
    let g = ada
        .signed(&r.url(PAWD), "/v1/requests", &action)
        .await
        .unwrap()
        .ok()
        .unwrap();
    g["id"].as_str().unwrap().to_owned()
}

/// Redeem, exec `true`, wait for the end: the session's whole set-up and teardown.
async fn session(r: &Replicas, ada: &mut VirtualUser, grant: &str, target: &str) -> Duration {
    let t = Instant::now();
    let action = Action::Session {
        grant_id: grant.into(),
        target: target.into(),
    };
    let minted = ada
        .signed(&r.url(PAWD), &format!("/v1/grants/{grant}/redeem"), &action)
        .await
        .unwrap()
        .ok()
        .unwrap();
    let cred = paw_client::terminal::Credential {
        addr: minted["ssh_addr"].as_str().unwrap().to_owned(),
        host_key: minted["ssh_host_key"].as_str().unwrap().to_owned(),
        session_id: minted["session_id"].as_str().unwrap().to_owned(),
        ticket: minted["ticket"].as_str().unwrap().to_owned().into(),
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let _t = terminal::open(cred, 80, 24, Some("true".into()), move |e| {
        let _ = tx.send(e);
    })
    .await
    .unwrap();
    loop {
        match tokio::time::timeout(Duration::from_secs(20), rx.recv()).await {
            Ok(Some(TermEvent::Ended { reason, message })) => {
                assert_eq!(reason, "closed", "{target}: {message}");
                break;
            }
            Ok(Some(_)) => {}
            other => panic!("{target}: the session did not end: {other:?}"),
        }
    }
    t.elapsed()
}

async fn rotate(r: &Replicas, admin: &mut VirtualUser, id: &str, name: &str) -> Duration {
    let t = Instant::now();
    let action = Action::RotateSecret {
        account: name.into(),
        reason: "vault bench rotation".into(),
    };
    let base = r.url(PAWD);
    let start = admin.stepup_start(&base, &action).await.unwrap();
    let answer = admin.stepup_answer(&start, &action).unwrap();
    let v: Value = admin
        .call(
            &base,
            "POST",
            &format!("/v1/vault/accounts/{id}/rotate"),
            Some(&json!({"reason": "vault bench rotation", "challenge": answer["challenge"], "credential": answer["credential"]})),
        )
        .await
        .unwrap()
        .ok()
        .unwrap();
    assert_eq!(v["rotation"]["last_result"], "ok", "{v}");
    t.elapsed()
}

fn line(what: &str, v: &mut [Duration]) -> f64 {
    let p50 = ms(pct(v, 50));
    println!(
        "  {what:<44} p50 {p50:>7.1} ms   p99 {:>7.1} ms",
        ms(pct(v, 99))
    );
    p50
}

async fn run(n: usize) {
    let (key0, public0) = paw_vault::generate_ssh_key("bench legacy-2").unwrap();
    let key0 = String::from_utf8(key0.expose().to_vec()).unwrap();
    let legacy = LegacySshd::start(PW0, &public0).unwrap();
    let pg = TempPostgres::start().unwrap();
    pg.psql(&format!("CREATE ROLE app_owner LOGIN PASSWORD '{PG_PW0}'"))
        .unwrap();
    let r = Replicas::start_with(Options {
        replicas: 1,
        extra_config: config(&legacy, &pg),
        store: Store::Sqlite,
        sshd: true,
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.csv");
    std::fs::write(
        &file,
        format!(
            "target,account,kind,secret\nlegacy-1,root,ssh_password,{PW0}\nlegacy-2,root,ssh_key,\"{}\"\nlegacy-db,app_owner,postgres_password,{PG_PW0}\n",
            key0.replace('"', "\"\"")
        ),
    )
    .unwrap();
    let out = r
        .pawd(&["vault".into(), "import".into(), file.display().to_string()])
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let mut ada = r.enrolled("ada", &[], PAWD).await.unwrap();
    let mut admin = r.enrolled("root-admin", &["admin"], PAWD).await.unwrap();
    println!(
        "vault bench: {n} runs, {} cores, load {}",
        std::thread::available_parallelism().map_or(0, |p| p.get()),
        loadavg()
    );

    // 1. Session set-up.
    let g_cert = grant(&r, &mut ada, "web-root", SSH_TARGET).await;
    let g_pw = grant(&r, &mut ada, "legacy-root", "legacy-1").await;
    let g_key = grant(&r, &mut ada, "legacy-root", "legacy-2").await;
    let (mut cert, mut pw, mut key) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..n {
        cert.push(session(&r, &mut ada, &g_cert, SSH_TARGET).await);
        pw.push(session(&r, &mut ada, &g_pw, "legacy-1").await);
        key.push(session(&r, &mut ada, &g_key, "legacy-2").await);
    }
    println!("session set-up, redeem + exec `true` + end:");
    let c = line("certificate minted (web-1)", &mut cert);
    let p = line("vaulted password injected (legacy-1)", &mut pw);
    let k = line("vaulted key injected (legacy-2)", &mut key);
    println!(
        "  injection adds: password {:+.1} ms, key {:+.1} ms to the p50",
        p - c,
        k - c
    );
    // The grants end, so the accounts can rotate.
    for g in [&g_cert, &g_pw, &g_key] {
        ada.call(
            &r.url(PAWD),
            "POST",
            &format!("/v1/grants/{g}/release"),
            None,
        )
        .await
        .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;

    // 2. Rotations.
    let list = admin
        .call(&r.url(PAWD), "GET", "/v1/vault/accounts", None)
        .await
        .unwrap()
        .ok()
        .unwrap();
    let id_of = |name: &str| -> String {
        list["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == name)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let rn = n.clamp(2, 20);
    println!("rotations ({rn} each; paw = step-up + generate + store pending + change + verify + promote):");
    for (name, floor_kind) in [
        ("legacy-1/root", "ssh"),
        ("legacy-2/root", "none"),
        ("legacy-db/app_owner", "pg"),
    ] {
        let id = id_of(name);
        let mut paw = Vec::new();
        for _ in 0..rn {
            paw.push(rotate(&r, &mut admin, &id, name).await);
        }
        let p50 = line(&format!("paw {name}"), &mut paw);
        println!("  {:<44} {:>7.1} per minute", "", 60_000.0 / p50);
        let mut floor = Vec::new();
        match floor_kind {
            "ssh" => {
                let mut cur = "Bench-Floor-Pw-0".to_owned();
                // The vault now holds another password: reset it to a known one, directly.
                let row_secret = vault_secret(&r, &id).await;
                change_password_directly(&legacy, &row_secret, &cur).await;
                for i in 1..=rn {
                    let next = format!("Bench-Floor-Pw-{i}");
                    let t = Instant::now();
                    change_password_directly(&legacy, &cur, &next).await;
                    assert!(opens(&legacy, &next).await);
                    floor.push(t.elapsed());
                    cur = next;
                }
                // Leave the host as the vault believes it is.
                change_password_directly(&legacy, &cur, &row_secret).await;
            }
            "pg" => {
                let mut cur = vault_secret(&r, &id).await;
                for i in 1..=rn {
                    let next = format!("Bench-Floor-Pg-{i}");
                    let t = Instant::now();
                    pg_change(&pg, &cur, &next).await;
                    floor.push(t.elapsed());
                    cur = next;
                }
                let back = vault_secret(&r, &id).await;
                pg_change(&pg, &cur, &back).await;
            }
            _ => {}
        }
        if !floor.is_empty() {
            let f = line(&format!("direct floor for {name}"), &mut floor);
            println!("  {:<44} ratio paw/direct {:.2}", "", p50 / f);
        }
    }
}

async fn vault_secret(r: &Replicas, id: &str) -> String {
    let db = paw_broker::store::Db::connect(
        &paw_broker::config::DatabaseUrl::new(format!(
            "sqlite://{}/pawd.db",
            r.broker_dir().display()
        )),
        paw_broker::store::Create::Never,
    )
    .await
    .unwrap();
    let row = paw_broker::vault::store::by_id(&db, id)
        .await
        .unwrap()
        .unwrap();
    db.close().await;
    paw_tests::vault_sshd::open_sealed(r.broker_dir(), &row.id, row.version, &row.secret)
}

/// `ALTER ROLE` as the role itself with a SCRAM verifier, then a fresh login with the new one.
async fn pg_change(pg: &TempPostgres, cur: &str, next: &str) {
    use sqlx::Connection;
    let opts = |pw: &str| {
        sqlx::postgres::PgConnectOptions::new()
            .host("127.0.0.1")
            .port(pg.port())
            .username("app_owner")
            .password(pw)
            .database(pg.database())
    };
    let mut c = sqlx::PgConnection::connect_with(&opts(cur)).await.unwrap();
    let v = postgres_protocol::password::scram_sha_256(next.as_bytes());
    sqlx::query(&format!("ALTER ROLE CURRENT_USER PASSWORD '{v}'"))
        .execute(&mut c)
        .await
        .unwrap();
    c.close().await.unwrap();
    sqlx::PgConnection::connect_with(&opts(next))
        .await
        .unwrap()
        .close()
        .await
        .unwrap();
}
