//! Vaulted credentials (issue #17), cases L1–L5, against real `pawd` processes, a real OpenSSH
//! sshd standing in for a legacy host (root by password and by key, in a private `/etc`), and
//! the vault's sealed rows read back with the broker's own KEK file.
//!
//! The check that a secret "opens the account" is this test's own SSH login (russh, host key
//! pinned), not the broker's adapter, so a bug shared by both cannot hide.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use paw_client::terminal::{self, TermEvent};
use paw_proto::action::Action;
use paw_tests::replicas::{Options, Replicas, Store};
use paw_tests::vault_sshd::{change_password_directly, opens, LegacySshd, KEYS_FILE};
use paw_tests::virtual_user::VirtualUser;
use serde_json::{json, Value};
use tokio::sync::mpsc;

mod common;

use common::scan::Places;
use paw_tests::vault_sshd::open_sealed;

const PAWD: usize = 0;
const PASSWORD0: &str = "Legacy-Initial-Pw-7f3a9c";

fn config(legacy: &LegacySshd) -> String {
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

[vault]
kek_id = "kek-1"
kek_file = "vault-kek"
reconcile_secs = 1
step_timeout_secs = 3
reveal_show_secs = 30

[[vault.account]]
target = "legacy-2"
account = "root"
authorized_keys = "{KEYS_FILE}"

[groups]
sre = ["ada", "bob"]

[[entitlement]]
id = "legacy-root"
description = "root on the legacy hosts with the vaulted credential"
target_kind = "ssh"
target = "legacy-*"
role = "root"
max_duration_secs = 3600
requesters = ["sre"]
approval = "auto"
vault = ["inject", "reveal"]
max_sessions = 5
"#,
        addr = legacy.address(),
        hk = legacy.host_key(),
    )
}

struct World {
    r: Replicas,
    /// The broker's database, read (and for the schedule, written) by the tests.
    db: paw_broker::store::Db,
    legacy: LegacySshd,
    key0: String,
    ada: VirtualUser,
    bob: VirtualUser,
}

async fn world() -> World {
    world_with("", "").await
}

/// A world with `extra` config and `extra_rows` of the import CSV besides the legacy host's.
async fn world_with(extra: &str, extra_rows: &str) -> World {
    let (key0, public0) = paw_vault::generate_ssh_key("legacy-2 root").unwrap();
    let key0 = String::from_utf8(key0.expose().to_vec()).unwrap();
    let legacy = LegacySshd::start(PASSWORD0, &public0).unwrap();
    let r = Replicas::start_with(Options {
        replicas: 1,
        extra_config: config(&legacy) + extra,
        store: Store::Sqlite,
        sshd: true,
    })
    .await
    .unwrap();
    let ada = r.enrolled("ada", &[], PAWD).await.unwrap();
    let bob = r.enrolled("bob", &[], PAWD).await.unwrap();
    let db = paw_broker::store::Db::connect(
        &paw_broker::config::DatabaseUrl::new(format!(
            "sqlite://{}/pawd.db",
            r.broker_dir().display()
        )),
        paw_broker::store::Create::Never,
    )
    .await
    .unwrap();
    let w = World {
        r,
        db,
        legacy,
        key0,
        ada,
        bob,
    };
    w.import(extra_rows).await;
    w
}

impl World {
    /// `pawd vault import` of both accounts from a CSV file that is deleted afterwards.
    async fn import(&self, extra_rows: &str) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("accounts.csv");
        let key = self.key0.replace('"', "\"\"");
        std::fs::write(
            &file,
            format!(
                "target,account,kind,secret\nlegacy-1,root,ssh_password,{PASSWORD0}\nlegacy-2,root,ssh_key,\"{key}\"\n{extra_rows}"
            ),
        )
        .unwrap();
        let dry = self
            .r
            .pawd(&[
                "vault".into(),
                "import".into(),
                "--dry-run".into(),
                file.display().to_string(),
            ])
            .unwrap();
        assert!(dry.status.success(), "{dry:?}");
        assert!(self.account("legacy-1").await.is_none(), "a dry run wrote");
        let out = self
            .r
            .pawd(&["vault".into(), "import".into(), file.display().to_string()])
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{text}");
        let n = 2 + extra_rows.lines().count();
        assert!(text.contains(&format!("{n} account(s) vaulted")), "{text}");
        assert!(
            !text.contains(PASSWORD0),
            "the import printed the secret: {text}"
        );
    }

    /// The stored row of `target/root`, read from the broker's database.
    async fn account(&self, target: &str) -> Option<Row> {
        paw_broker::vault::store::by_name(&self.db, target, "root")
            .await
            .unwrap()
            .map(Row::from)
    }

    /// Makes `target`'s rotation due now (as if its day had come).
    async fn due_now(&self, target: &str) {
        let paw_broker::store::Db::Sqlite(pool) = &self.db else {
            panic!("these tests run on SQLite")
        };
        sqlx::query("UPDATE vault_accounts SET next_rotation_at = 0 WHERE target = ?1")
            .bind(target)
            .execute(pool)
            .await
            .unwrap();
    }

    /// The account's current secret as the vault holds it, opened with the broker's KEK file.
    async fn vault_secret(&self, target: &str) -> String {
        let row = self.account(target).await.unwrap();
        open_sealed(self.r.broker_dir(), &row.id, row.version, &row.secret)
    }

    fn base(&self) -> String {
        self.r.url(PAWD)
    }

    /// `user` requests legacy-root on `target` (approved at once): the grant id.
    async fn grant(&self, user: &mut VirtualUser, target: &str) -> String {
        let action = Action::Request {
            entitlement: "legacy-root".into(),
            target: target.into(),
            role: "root".into(),
            duration_secs: 600,
            justification: "vault test on the legacy host".into(),
            ticket: None,
            start_at_ms: None,
        };
        let g = user
            .signed(&self.base(), "/v1/requests", &action)
            .await
            .unwrap()
            .ok()
            .unwrap();
        assert_eq!(g["state"], "active", "{g}");
        g["id"].as_str().unwrap().to_owned()
    }

    async fn release(&self, user: &mut VirtualUser, grant: &str) {
        let r = user
            .call(
                &self.base(),
                "POST",
                &format!("/v1/grants/{grant}/release"),
                None,
            )
            .await
            .unwrap();
        assert_eq!(r.status, 200, "{r:?}");
    }

    /// An exec session under `grant`: what it printed and how it ended.
    async fn exec(
        &self,
        user: &mut VirtualUser,
        grant: &str,
        target: &str,
        command: &str,
    ) -> (String, Option<String>, Value) {
        let session = Action::Session {
            grant_id: grant.into(),
            target: target.into(),
        };
        let minted = user
            .signed(
                &self.base(),
                &format!("/v1/grants/{grant}/redeem"),
                &session,
            )
            .await
            .unwrap()
            .ok()
            .unwrap();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let _t = terminal::open(
            common::credential(&minted),
            80,
            24,
            Some(command.to_owned()),
            move |e| {
                let _ = tx.send(e);
            },
        )
        .await
        .unwrap();
        let mut out = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        let ended = loop {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(TermEvent::Output(d))) => out.extend(d),
                Ok(Some(TermEvent::Ended { reason, message })) => {
                    break Some(format!("{reason}: {message}"))
                }
                Ok(None) => break None,
                Err(_) => panic!("{command:?} did not end: {}", String::from_utf8_lossy(&out)),
            }
        };
        (String::from_utf8_lossy(&out).into_owned(), ended, minted)
    }

    /// A reveal of `target/root` under `grant` for `reason` (the step-up signs `signed_reason`).
    async fn reveal(
        &self,
        user: &mut VirtualUser,
        target: &str,
        grant: &str,
        signed_reason: &str,
        reason: &str,
    ) -> paw_tests::virtual_user::Reply {
        let id = self.account(target).await.unwrap().id;
        let action = Action::RevealSecret {
            account: format!("{target}/root"),
            grant_id: grant.into(),
            reason: signed_reason.into(),
        };
        let start = user.stepup_start(&self.base(), &action).await.unwrap();
        let answer = user.stepup_answer(&start, &action).unwrap();
        user.call(
            &self.base(),
            "POST",
            &format!("/v1/vault/accounts/{id}/reveal"),
            Some(&json!({
                "grant_id": grant, "reason": reason,
                "challenge": answer["challenge"], "credential": answer["credential"],
            })),
        )
        .await
        .unwrap()
    }

    /// Waits until `target`'s rotation journal is settled (idle or failed) at a version other
    /// than `not_version` when given.
    async fn settled(&self, target: &str, not_version: Option<i64>, limit: Duration) -> Row {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(row) = self.account(target).await {
                let settled = matches!(row.state.as_str(), "idle" | "promoted" | "failed");
                if settled && not_version.is_none_or(|v| row.version != v) {
                    return row;
                }
            }
            if Instant::now() > deadline {
                panic!(
                    "{target} did not settle in {limit:?}: {:?}",
                    self.account(target).await
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl From<paw_broker::vault::store::AccountRow> for Row {
    fn from(r: paw_broker::vault::store::AccountRow) -> Self {
        Row {
            id: r.id,
            version: r.version,
            state: r.rotation_state,
            secret: r.secret,
            pending: r.pending_secret,
            last_result: r.last_result,
            last_error: r.last_error,
        }
    }
}

/// A stored account row, as the tests read it.
#[derive(Debug, Clone)]
struct Row {
    id: String,
    version: i64,
    state: String,
    secret: String,
    pending: Option<String>,
    last_result: String,
    last_error: Option<String>,
}

/// Every place a secret must not be: the user's API answers, the broker's log, the legacy
/// sshd's log, and every file of the broker's directory (database, WAL, recordings; it holds
/// vaulted secrets sealed only) but the KEK, which is a key, not a vaulted secret.
fn leak_places(w: &World, answers: &[String]) -> Places {
    let mut places = Places::new();
    for (i, a) in answers.iter().enumerate() {
        places.add(format!("API answer {i}"), a.as_bytes());
    }
    places.add("broker log", w.r.log(PAWD));
    places.add("legacy sshd log", w.legacy.log());
    places.add_tree(w.r.broker_dir(), &|p| {
        p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("vault-kek"))
    });
    places
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l1_sessions_log_in_with_the_vaulted_secret_and_it_is_nowhere_the_user_can_see() {
    let mut w = world().await;
    let mut ada = std::mem::replace(&mut w.ada, w.r.user("x").unwrap());
    let mut answers = Vec::new();

    // By password: the session logs in as root on the legacy host.
    let grant = w.grant(&mut ada, "legacy-1").await;
    let (out, ended, minted) = w
        .exec(&mut ada, &grant, "legacy-1", "id -un; echo vault-$((6*7))")
        .await;
    assert!(
        out.contains("root") && out.contains("vault-42"),
        "{out} / {ended:?}"
    );
    answers.push(minted.to_string());
    answers.push(out.clone());
    assert!(
        w.legacy.log().contains("Accepted password for root"),
        "{}",
        w.legacy.log()
    );
    // By key, on the other target.
    let grant2 = w.grant(&mut ada, "legacy-2").await;
    let (out, ended, minted) = w
        .exec(&mut ada, &grant2, "legacy-2", "id -un; echo key-$((6*7))")
        .await;
    assert!(
        out.contains("root") && out.contains("key-42"),
        "{out} / {ended:?}"
    );
    answers.push(minted.to_string());
    answers.push(out);
    assert!(
        w.legacy.log().contains("Accepted publickey for root"),
        "{}",
        w.legacy.log()
    );
    for path in ["/v1/grants", "/v1/vault/accounts", "/v1/sessions/live"] {
        let reply = ada.call(&w.base(), "GET", path, None).await.unwrap();
        answers.push(reply.body.to_string());
    }

    // Nowhere the user could see it: not in what ada got back, the logs, the audit, the
    // recordings, or any file of the broker (the database holds it sealed only).
    let places = leak_places(&w, &answers);
    // A line of the key's private part (the first lines are the same for every Ed25519 key).
    let key_body = w.key0.lines().nth(3).unwrap().to_owned();
    for secret in [PASSWORD0, key_body.as_str()] {
        let found = places.find(secret.as_bytes());
        assert!(found.is_empty(), "found in {found:?}");
    }
    let audit = common::sqlite_audit(&w.r).await;
    let audit_text = serde_json::to_string(&audit).unwrap();
    assert!(!audit_text.contains(PASSWORD0) && !audit_text.contains(&key_body));
    assert!(audit
        .iter()
        .any(|a| a["action"] == "vault_inject" && a["subject"] == "legacy-1/root"));
    // The negative control: the scan finds the secret where it is planted.
    let planted = places.planted("broker log", PASSWORD0.as_bytes());
    assert_eq!(planted.find(PASSWORD0.as_bytes()), ["broker log"]);
    // And the vault does hold it (sealed), so the scan was looking for the right thing.
    assert_eq!(w.vault_secret("legacy-1").await, PASSWORD0);
    w.ada = ada;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l3_l4_a_reveal_needs_its_own_step_up_holds_the_account_and_forces_a_rotation() {
    let mut w = world().await;
    let mut bob = std::mem::replace(&mut w.bob, w.r.user("x").unwrap());
    let mut ada = std::mem::replace(&mut w.ada, w.r.user("y").unwrap());
    let grant = w.grant(&mut bob, "legacy-1").await;

    // A step-up signed for another reason does not reveal.
    let wrong = w
        .reveal(
            &mut bob,
            "legacy-1",
            &grant,
            "a different reason here",
            "reason as sent to the broker",
        )
        .await;
    assert_eq!(wrong.code(), "challenge_invalid", "{wrong:?}");
    let shown = w
        .reveal(
            &mut bob,
            "legacy-1",
            &grant,
            "appliance console needs it",
            "appliance console needs it",
        )
        .await;
    assert_eq!(shown.status, 200, "{shown:?}");
    assert_eq!(shown.body["secret"], PASSWORD0);
    let audit = common::sqlite_audit(&w.r).await;
    let rec = audit
        .iter()
        .find(|a| a["action"] == "vault_reveal")
        .expect("no vault_reveal record");
    assert_eq!(rec["actor"], "bob");
    assert!(
        rec["detail"]
            .to_string()
            .contains("appliance console needs it"),
        "{rec}"
    );
    assert!(!rec["detail"].to_string().contains(PASSWORD0), "{rec}");

    // L3: while bob holds it, ada's session cannot check the account out: it ends at once,
    // saying who holds it, and the target saw no login from it.
    let logins = w.legacy.log().matches("Accepted password for root").count();
    let ada_grant = w.grant(&mut ada, "legacy-1").await;
    let (_, ended, _) = w.exec(&mut ada, &ada_grant, "legacy-1", "id -un").await;
    let ended = ended.unwrap_or_default();
    assert!(ended.starts_with("checked_out"), "{ended}");
    assert_eq!(
        w.legacy.log().matches("Accepted password for root").count(),
        logins
    );
    let again = w
        .reveal(
            &mut ada,
            "legacy-1",
            &ada_grant,
            "second person tries it",
            "second person tries it",
        )
        .await;
    assert_eq!(again.code(), "checked_out", "{again:?}");
    assert!(
        again.body["message"].as_str().unwrap().contains("bob"),
        "{again:?}"
    );

    // L4: bob's grant ends; the checkout with it; the secret is rotated at once.
    let before = w.account("legacy-1").await.unwrap().version;
    let t = Instant::now();
    w.release(&mut bob, &grant).await;
    let row = w
        .settled("legacy-1", Some(before), Duration::from_secs(20))
        .await;
    eprintln!(
        "rotation after the checkout ended: {:?} ({:?})",
        t.elapsed(),
        row
    );
    assert_eq!(row.version, before + 1, "{row:?}");
    assert_eq!(row.last_result, "ok", "{row:?}");
    let new = w.vault_secret("legacy-1").await;
    assert_ne!(new, PASSWORD0);
    assert!(
        opens(&w.legacy, &new).await,
        "the rotated secret does not open"
    );
    assert!(
        !opens(&w.legacy, PASSWORD0).await,
        "the revealed secret still opens"
    );
    w.bob = bob;
    w.ada = ada;
}

/// L2: the broker is killed with SIGKILL at random moments while rotations run (the target
/// changed or not, the journal written or not); after each restart the reconciler settles and
/// the vault's secret opens the account. With `PAW_VAULT_KILLS` (default 100) kills.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l2_kill_9_at_random_points_of_rotations_never_loses_the_secret() {
    let mut w = world().await;
    let kills = paw_counts::VAULT_KILLS.get();
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64 ^ std::process::id() as u64;
    let mut rand = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let mut landed = std::collections::BTreeMap::<String, usize>::new();
    let mut rotated = 0;
    // Where to kill: at each step of the journal in turn, or at a random moment.
    let phases = ["pending", "applied", "verified", "any"];
    for i in 0..kills {
        let target = if i % 3 == 2 { "legacy-2" } else { "legacy-1" };
        let before = w.account(target).await.unwrap();
        w.due_now(target).await;
        let phase = phases[i % phases.len()];
        let delay = Duration::from_millis(rand(1400));
        let t = Instant::now();
        // The ticker looks every second; each step of a rotation takes tens of milliseconds.
        let state = loop {
            let state = w.account(target).await.unwrap().state;
            let hit = if phase == "any" {
                t.elapsed() >= delay
            } else {
                state == phase
            };
            if hit || t.elapsed() > Duration::from_secs(3) {
                break state;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
        w.r.kill9(PAWD).unwrap();
        *landed.entry(state).or_default() += 1;
        w.r.restart(PAWD).await.unwrap();
        let row = w.settled(target, None, Duration::from_secs(30)).await;
        let secret = open_sealed(w.r.broker_dir(), &row.id, row.version, &row.secret);
        assert!(
            opens(&w.legacy, &secret).await,
            "kill {i} ({target}, phase {phase}): the vault's secret (version {}) does not open; row {row:?}",
            row.version
        );
        assert!(row.pending.is_none() || row.state == "failed", "{row:?}");
        if row.version > before.version {
            rotated += 1;
        }
    }
    eprintln!(
        "{kills} kills; journal state at the kill: {landed:?}; {rotated} rotations completed"
    );
    for phase in ["pending", "applied", "verified"] {
        if kills >= 12 {
            assert!(
                landed.get(phase).copied().unwrap_or(0) > 0,
                "no kill landed in {phase}: {landed:?}"
            );
        }
    }
    paw_counts::VAULT_KILLS.ran(
        "l2_kill_9_at_random_points_of_rotations_never_loses_the_secret",
        kills,
    );

    // The target unreachable mid-rotation (sshd stopped with SIGSTOP): the rotation fails
    // loudly, nothing is lost, and the next attempt after it is back succeeds.
    let before = w.account("legacy-1").await.unwrap();
    let good = w.vault_secret("legacy-1").await;
    unsafe_free_signal(w.legacy.pid(), "STOP");
    w.due_now("legacy-1").await;
    let deadline = Instant::now() + Duration::from_secs(40);
    let row = loop {
        let row = w.account("legacy-1").await.unwrap();
        if row.state == "failed" {
            break row;
        }
        assert!(
            Instant::now() < deadline,
            "no failed rotation with the target stopped: {row:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    unsafe_free_signal(w.legacy.pid(), "CONT");
    assert!(row.last_error.is_some(), "{row:?}");
    assert_eq!(w.vault_secret("legacy-1").await, good);
    assert!(
        opens(&w.legacy, &good).await,
        "unreachable target: the vault's secret no longer opens"
    );
    let audit = common::sqlite_audit(&w.r).await;
    assert!(
        audit.iter().any(|a| a["action"] == "vault_rotation_failed"),
        "no alert on record"
    );
    // Back: the reconciler settles the failed rotation (the target kept the current secret,
    // so the pending one is dropped), and the next scheduled rotation succeeds.
    w.due_now("legacy-1").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut row = w.account("legacy-1").await.unwrap();
    while row.version == before.version {
        if row.state == "idle" && row.pending.is_none() {
            w.due_now("legacy-1").await;
        }
        assert!(
            Instant::now() < deadline,
            "no rotation after the target came back: {row:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        row = w.account("legacy-1").await.unwrap();
    }
    let row = w.settled("legacy-1", None, Duration::from_secs(30)).await;
    assert_eq!(row.last_result, "ok", "{row:?}");
    assert!(opens(&w.legacy, &w.vault_secret("legacy-1").await).await);

    // Negative control: a rotation without the journal (change the target, then "crash"
    // before the vault learns the new secret) leaves the vault with a secret that no longer
    // opens. This is the failure the journal exists to prevent.
    let stored = w.vault_secret("legacy-1").await;
    let naive = "Naive-Rotation-Lost-9x";
    change_password_directly(&w.legacy, &stored, naive).await;
    assert!(
        !opens(&w.legacy, &stored).await,
        "the negative control did not lose the secret"
    );
    change_password_directly(&w.legacy, naive, &stored).await;
}

fn unsafe_free_signal(pid: u32, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

/// L3 at the level it lives: 1000 interleaved checkout attempts by 4 clients (each its own
/// connection) on one exclusive account, each holding for a few ms when it wins; the holding
/// intervals of different grants never overlap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l3_an_exclusive_account_never_has_two_holders_under_1000_interleaved_checkouts() {
    let w = world().await;
    let id = w.account("legacy-1").await.unwrap().id;
    let url = format!("sqlite://{}/pawd.db", w.r.broker_dir().display());
    let mut tasks = Vec::new();
    let start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    for c in 0..4 {
        let (url, id) = (url.clone(), id.clone());
        tasks.push(tokio::spawn(async move {
            let db = paw_broker::store::Db::connect(
                &paw_broker::config::DatabaseUrl::new(url),
                paw_broker::store::Create::Never,
            )
            .await
            .unwrap();
            let mut won = Vec::new();
            for i in 0..250i64 {
                // A logical clock per attempt keeps the test fast: each attempt is 1 ms apart
                // and a win holds the account for 3 ms of it.
                let now = start + i * 4 + c;
                let grant = format!("grant-{c}");
                if paw_broker::vault::store::claim(&db, &id, &grant, "u", now + 3, now)
                    .await
                    .unwrap()
                {
                    won.push((now, now + 3));
                }
                tokio::task::yield_now().await;
            }
            db.close().await;
            (c, won)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        let (c, won) = t.await.unwrap();
        all.extend(won.into_iter().map(|(a, b)| (a, b, c)));
    }
    all.sort();
    assert!(
        all.len() >= 50,
        "too few wins to mean anything: {}",
        all.len()
    );
    for pair in all.windows(2) {
        let ((_, end, a), (start, _, b)) = (pair[0], pair[1]);
        assert!(a == b || start >= end, "two holders at once: {pair:?}");
    }
    eprintln!("1000 attempts, {} wins by 4 clients, no overlap", all.len());
}

/// L5: the KEK is rotated while the broker serves (new key active, old one retired, then
/// `pawd vault rewrap`, then the old key removed): sessions keep logging in throughout. A
/// wrong KEK fails closed: the vault answers `vault_unavailable` and a session does not start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l5_the_kek_rotates_without_downtime_and_a_wrong_kek_fails_closed() {
    let mut w = world().await;
    let mut ada = std::mem::replace(&mut w.ada, w.r.user("x").unwrap());
    let dir = w.r.broker_dir().to_path_buf();
    let kek2 = paw_vault::Kek::generate("kek-2").unwrap();
    write_key(&dir.join("vault-kek-2"), &kek2);
    set_vault(
        &w.r,
        r#"kek_id = "kek-2"
kek_file = "vault-kek-2"
retired_keks = [{ id = "kek-1", file = "vault-kek" }]"#,
    );
    w.r.restart(PAWD).await.unwrap();
    let grant = w.grant(&mut ada, "legacy-1").await;
    let (out, ended, _) = w
        .exec(&mut ada, &grant, "legacy-1", "echo under-retired")
        .await;
    assert!(out.contains("under-retired"), "{out} {ended:?}");
    // Re-wrap while the broker serves, and a session right after.
    let out = w.r.pawd(&["vault".into(), "rewrap".into()]).unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && text.starts_with("2 secret(s)"),
        "{out:?}"
    );
    let row = w.account("legacy-1").await.unwrap();
    assert!(
        row.secret.starts_with("pawv1:kek-2:"),
        "{}",
        &row.secret[..20]
    );
    let (out, _, _) = w
        .exec(&mut ada, &grant, "legacy-1", "echo after-rewrap")
        .await;
    assert!(out.contains("after-rewrap"), "{out}");
    // The old key gone from the config: everything opens with the new one alone.
    set_vault(
        &w.r,
        r#"kek_id = "kek-2"
kek_file = "vault-kek-2""#,
    );
    w.r.restart(PAWD).await.unwrap();
    let (out, _, _) = w
        .exec(&mut ada, &grant, "legacy-1", "echo new-key-only")
        .await;
    assert!(out.contains("new-key-only"), "{out}");

    // A wrong KEK under the same id: nothing opens, and it says so.
    write_key(
        &dir.join("vault-kek-2"),
        &paw_vault::Kek::generate("kek-2").unwrap(),
    );
    w.r.restart(PAWD).await.unwrap();
    let list = ada
        .call(&w.base(), "GET", "/v1/vault/accounts", None)
        .await
        .unwrap();
    assert_eq!(list.code(), "vault_unavailable", "{list:?}");
    let logins = w.legacy.log().matches("Accepted password").count();
    let (_, ended, _) = w
        .exec(&mut ada, &grant, "legacy-1", "echo should-not-run")
        .await;
    assert!(ended.unwrap_or_default().starts_with("vault_unavailable"));
    assert_eq!(
        w.legacy.log().matches("Accepted password").count(),
        logins,
        "a session logged in"
    );
    // A missing KEK file: the same.
    std::fs::remove_file(dir.join("vault-kek-2")).unwrap();
    w.r.restart(PAWD).await.unwrap();
    let list = ada
        .call(&w.base(), "GET", "/v1/vault/accounts", None)
        .await
        .unwrap();
    assert_eq!(list.code(), "vault_unavailable", "{list:?}");
    w.ada = ada;
}

fn write_key(path: &std::path::Path, kek: &paw_vault::Kek) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, kek.to_hex().expose()).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// Replaces the `[vault]` keys of replica 0's config (its `[[vault.account]]` entries stay).
fn set_vault(r: &Replicas, keys: &str) {
    let path = r.config_path(PAWD).unwrap();
    let mut table: toml::Table = std::fs::read_to_string(path).unwrap().parse().unwrap();
    let accounts = table["vault"].get("account").cloned();
    let mut vault: toml::Table = format!("{keys}\nreconcile_secs = 1\nstep_timeout_secs = 3\n")
        .parse()
        .unwrap();
    if let Some(a) = accounts {
        vault.insert("account".into(), a);
    }
    table.insert("vault".into(), toml::Value::Table(vault));
    std::fs::write(path, toml::to_string(&table).unwrap()).unwrap();
}

const PG_PASSWORD0: &str = "Pg-Initial-Owner-4c81";

/// A PostgreSQL login role managed by the vault: a session through the broker's proxy logs in
/// as it with the vaulted password (L1: the client never gives one), and a rotation changes it
/// with `ALTER ROLE` sent as a SCRAM verifier (the server holds no plaintext), verified by a
/// fresh login, after which the old password is refused (L2's adapter on a real server).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l1_l2_a_postgres_login_role_is_injected_and_rotated_with_alter_role() {
    let pg = paw_tests::postgres::TempPostgres::start().unwrap();
    pg.psql(&format!(
        "CREATE ROLE app_owner LOGIN PASSWORD '{PG_PASSWORD0}'"
    ))
    .unwrap();
    let extra = format!(
        r#"
[[target]]
name = "legacy-db"
kind = "postgres"
address = "127.0.0.1:{port}"
database = "{db}"

[[entitlement]]
id = "legacy-db-owner"
description = "the application's owner login, vaulted"
target_kind = "postgres"
target = "legacy-db"
role = "app_owner"
max_duration_secs = 3600
requesters = ["sre"]
approval = "auto"
vault = ["inject"]
"#,
        port = pg.port(),
        db = pg.database(),
    );
    let mut w = world_with(
        &extra,
        &format!("legacy-db,app_owner,postgres_password,{PG_PASSWORD0}\n"),
    )
    .await;
    let mut ada = std::mem::replace(&mut w.ada, w.r.user("x").unwrap());
    let action = Action::Request {
        entitlement: "legacy-db-owner".into(),
        target: "legacy-db".into(),
        role: "app_owner".into(),
        duration_secs: 600,
        justification: "vault test on the legacy database".into(),
        ticket: None,
        start_at_ms: None,
    };
    let g = ada
        .signed(&w.base(), "/v1/requests", &action)
        .await
        .unwrap()
        .ok()
        .unwrap();
    let grant = g["id"].as_str().unwrap().to_owned();
    let session = Action::Session {
        grant_id: grant.clone(),
        target: "legacy-db".into(),
    };
    let minted = ada
        .signed(&w.base(), &format!("/v1/grants/{grant}/redeem"), &session)
        .await
        .unwrap()
        .ok()
        .unwrap();
    assert!(!minted.to_string().contains(PG_PASSWORD0), "{minted}");
    let fwd = paw_client::forward::start(common::credential(&minted), 0)
        .await
        .unwrap();
    // The client names any user and no password: the broker logs in as the vaulted role.
    let url = format!("postgres://anyone@{}/{}", fwd.local_addr(), pg.database());
    let mut c = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    let who: String = sqlx::query_scalar("SELECT current_user::text")
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert_eq!(who, "app_owner");
    drop(c);
    fwd.stop();
    let audit = common::sqlite_audit(&w.r).await;
    assert!(audit
        .iter()
        .any(|a| a["action"] == "vault_inject" && a["subject"] == "legacy-db/app_owner"));
    assert!(!serde_json::to_string(&audit)
        .unwrap()
        .contains(PG_PASSWORD0));

    // Rotation against the real server, once the grant (and with it the checkout) is over: a
    // scheduled rotation never changes a secret under a holder.
    w.release(&mut ada, &grant).await;
    let before = w.pg_account("legacy-db").await;
    w.due_now("legacy-db").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let row = loop {
        let row = w.pg_account("legacy-db").await;
        if row.version > before.version
            && row.state != "pending"
            && row.state != "applied"
            && row.state != "verified"
        {
            break row;
        }
        assert!(Instant::now() < deadline, "no rotation: {row:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(row.last_result, "ok", "{row:?}");
    let new = open_sealed(w.r.broker_dir(), &row.id, row.version, &row.secret);
    let login = |pw: String| {
        let url = format!(
            "postgres://app_owner:{}@127.0.0.1:{}/{}",
            urlencode(&pw),
            pg.port(),
            pg.database()
        );
        async move {
            <sqlx::PgConnection as sqlx::Connection>::connect(&url)
                .await
                .is_ok()
        }
    };
    assert!(
        login(new.clone()).await,
        "the rotated password does not log in"
    );
    assert!(
        !login(PG_PASSWORD0.to_owned()).await,
        "the old password still logs in"
    );
    let stored = pg
        .psql("SELECT rolpassword FROM pg_authid WHERE rolname = 'app_owner'")
        .unwrap();
    assert!(stored.trim().starts_with("SCRAM-SHA-256$"), "{stored}");
    assert!(!stored.contains(&new));
    w.ada = ada;
}

/// Percent-encodes a password for a URL (generated passwords have symbols).
fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

impl World {
    async fn pg_account(&self, target: &str) -> Row {
        paw_broker::vault::store::by_name(&self.db, target, "app_owner")
            .await
            .unwrap()
            .map(Row::from)
            .unwrap()
    }
}
