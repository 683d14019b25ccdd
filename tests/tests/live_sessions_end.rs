//! Cases B9, B12 and A16 on live sessions (issue #19 item 1): locking a user, disabling a user
//! and revoking the security key that asked for the grants each end a real SSH session and a
//! real PostgreSQL session within 1 s, measured on the target.
//!
//! One real `pawd` on SQLite, a real OpenSSH sshd and a real PostgreSQL. ada holds two live
//! sessions through the broker's front door: an interactive bash on the sshd running
//! `sleep 600.<marker>`, and a PostgreSQL connection through the local forward running
//! `SELECT pg_sleep(600)` as the session's temporary role. The change is made through the
//! interface that makes it in production: failed sign-ins that are evidence tied to her own
//! key (signed by it, but without user verification) up to `[auth] lock_after_failures`
//! (B9: nothing else locks a person's account, N1), the operator's `pawd user disable` (B12) and
//! `POST /v1/keys/{id}/revoke` signed by ada (A16). The clock runs from just before the change
//! until the target sees the session gone: the `sleep` process has left `/proc`, and the
//! session's backend has left `pg_stat_activity` (polled as the superuser), each polled every
//! 10 ms. The audit then says why each session ended (`session_end` with the reason) and what
//! ended it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use paw_client::forward::{self, Forward};
use paw_client::terminal::{self, Terminal};
use paw_proto::action::Action;
use paw_tests::postgres::TempPostgres;
use paw_tests::replicas::{request_web, Options, Replicas, Store, SSH_TARGET, WEB_ROOT_POLICY};
use paw_tests::virtual_user::VirtualUser;
use serde_json::{json, Value};
use sqlx::Connection;
use tokio::sync::mpsc;

mod common;
use common::live::{
    active, backend_gone, client_end, process_gone, random_digits, redeem, wait_for_backend,
    wait_for_process, POLL,
};
use common::{credential, output_until, sqlite_audit, Events};

/// The cases' bound: from the change to the target seeing the session gone.
const BOUND: Duration = Duration::from_secs(1);
/// How long a poll waits before it says the session survived.
const GIVE_UP: Duration = Duration::from_secs(10);
/// The only broker.
const PAWD: usize = 0;
/// The PostgreSQL target and the role its grants give.
const DB_TARGET: &str = "db-1";
const DB_ROLE: &str = "dba";
/// Failed sign-ins that lock an account here (B9).
const LOCK_AFTER: u32 = 3;

/// The sshd and PostgreSQL targets, ada's two live sessions and the people and processes
/// needed to end them.
struct Live {
    r: Replicas,
    pg: TempPostgres,
    _admin_url: tempfile::TempDir,
    ada: VirtualUser,
    web_grant: String,
    db_grant: String,
    ssh_sid: String,
    db_sid: String,
    /// The `sleep` the SSH session runs on the target.
    sleep_pid: u32,
    sleep_cmdline: Vec<u8>,
    /// The PostgreSQL backend the database session runs its query in.
    backend_pid: i32,
    /// The superuser's own connection, to watch `pg_stat_activity` with.
    watcher: Option<sqlx::PgConnection>,
    _term: Terminal,
    rx: Events,
    fwd: Forward,
    _query: tokio::task::JoinHandle<()>,
}

/// What the target saw: how long after the change each session was gone.
struct Ended {
    ssh: Duration,
    db: Duration,
}

/// The two sessions as their targets show them.
struct Watch {
    sleep_pid: u32,
    sleep_cmdline: Vec<u8>,
    backend_pid: i32,
    watcher: sqlx::PgConnection,
}

impl Watch {
    /// Starts watching both targets, then runs `change` (a future: nothing of it happens before
    /// the clock starts, just before it is first polled), and returns when each session was
    /// seen gone on its target, with what `change` gave. Fails if either session outlives
    /// [`GIVE_UP`] or [`BOUND`].
    async fn run<T>(
        self,
        what: &str,
        r: &Replicas,
        change: impl std::future::Future<Output = T>,
    ) -> (Ended, T) {
        let Watch {
            sleep_pid,
            sleep_cmdline,
            backend_pid,
            mut watcher,
        } = self;
        let until = Instant::now() + GIVE_UP;
        let ssh = tokio::spawn(async move { process_gone(sleep_pid, &sleep_cmdline, until).await });
        let db = tokio::spawn(async move { backend_gone(&mut watcher, backend_pid, until).await });
        // Both watchers have looked before the clock starts: both sessions are alive.
        tokio::time::sleep(POLL * 5).await;
        assert!(
            !ssh.is_finished(),
            "{what}: the sleep ended before the change"
        );
        assert!(
            !db.is_finished(),
            "{what}: the backend ended before the change"
        );

        let t0 = Instant::now();
        let out = change.await;
        let ssh = ssh.await.unwrap();
        let db = db.await.unwrap();
        let after = |at: Option<Instant>| {
            at.map_or("never".to_owned(), |at| {
                format!("after {:?}", at.saturating_duration_since(t0))
            })
        };
        let (Some(ssh), Some(db)) = (ssh, db) else {
            panic!(
                "{what}: a session outlived the change by {GIVE_UP:?} (the SSH session's sleep \
                 gone {}, the PostgreSQL backend gone {})\n{}",
                after(ssh),
                after(db),
                r.log(PAWD)
            );
        };
        let ended = Ended {
            ssh: ssh.saturating_duration_since(t0),
            db: db.saturating_duration_since(t0),
        };
        eprintln!(
            "{what}: the SSH session's sleep left the target {} ms after the change; the \
             PostgreSQL session's backend left pg_stat_activity {} ms after it",
            ended.ssh.as_millis(),
            ended.db.as_millis()
        );
        assert!(
            ended.ssh <= BOUND,
            "{what}: the SSH session ended on the target {:?} after the change (bound {BOUND:?})",
            ended.ssh
        );
        assert!(
            ended.db <= BOUND,
            "{what}: the PostgreSQL session ended on the target {:?} after the change (bound \
             {BOUND:?})",
            ended.db
        );
        (ended, out)
    }
}

async fn live() -> Live {
    let pg = tokio::task::spawn_blocking(TempPostgres::start)
        .await
        .unwrap()
        .unwrap();
    pg.psql(&format!("CREATE ROLE {DB_ROLE} NOLOGIN")).unwrap();
    let admin_url = tempfile::tempdir().unwrap();
    let url_file = admin_url.path().join("db-1.admin-url");
    std::fs::write(&url_file, format!("{}\n", pg.url())).unwrap();
    let extra = format!(
        r#"{WEB_ROOT_POLICY}
[auth]
lock_after_failures = {LOCK_AFTER}
# B9 is about the lock, not the per-source throttle that would delay these sign-ins (N1).
throttle_after_failures = 100

[[target]]
name = "{DB_TARGET}"
kind = "postgres"
address = "127.0.0.1:{port}"
database = "{db}"
admin_url_file = "{file}"

[[entitlement]]
id = "db-dba"
description = "DBA on the databases"
target_kind = "postgres"
target = "db-*"
role = "{DB_ROLE}"
max_duration_secs = 3600
requesters = ["sre"]
approval = "auto"
max_sessions = 2
"#,
        port = pg.port(),
        db = pg.database(),
        file = url_file.display(),
    );
    let r = Replicas::start_with(Options {
        replicas: 1,
        store: Store::Sqlite,
        sshd: true,
        extra_config: extra,
    })
    .await
    .unwrap();
    let url = r.url(PAWD);
    let mut ada = r.enrolled("ada", &[], PAWD).await.unwrap();

    // SSH: a bash on the sshd through the front door, running a `sleep` no other process has
    // the argv of.
    let web_grant = active(&mut ada, &url, &request_web()).await;
    let minted = redeem(&mut ada, &url, &web_grant, SSH_TARGET).await;
    let ssh_sid = minted["session_id"].as_str().unwrap().to_owned();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let term = terminal::open(credential(&minted), 80, 24, None, move |e| {
        let _ = tx.send((Instant::now(), e));
    })
    .await
    .unwrap_or_else(|e| panic!("the front door refused the ticket: {e}\n{}", r.log(PAWD)));
    term.input(b"echo paw-$((6*7))\n".to_vec()).await.unwrap();
    let out = output_until(&mut rx, "paw-42").await;
    assert!(out.contains("paw-42"), "no shell: {out:?}\n{}", r.log(PAWD));
    let marker = format!("600.{}", random_digits());
    term.input(format!("sleep {marker}\n").into_bytes())
        .await
        .unwrap();
    let sleep_cmdline = format!("sleep\0{marker}\0").into_bytes();
    let sleep_pid = wait_for_process(&sleep_cmdline, GIVE_UP).await;

    // PostgreSQL: a connection through the local forward, as the session's role, in a query
    // that would run for ten minutes.
    let db_request = Action::Request {
        entitlement: "db-dba".into(),
        target: DB_TARGET.into(),
        role: DB_ROLE.into(),
        duration_secs: 30 * 60,
        justification: "vacuum the bloated orders table".into(),
        ticket: None,
        start_at_ms: None,
    };
    let db_grant = active(&mut ada, &url, &db_request).await;
    let minted = redeem(&mut ada, &url, &db_grant, DB_TARGET).await;
    let db_sid = minted["session_id"].as_str().unwrap().to_owned();
    let fwd = forward::start(credential(&minted), 0).await.unwrap();
    let through = format!("postgres://anyone@{}/{}", fwd.local_addr(), pg.database());
    let mut conn = sqlx::PgConnection::connect(&through)
        .await
        .unwrap_or_else(|e| panic!("no database session: {e}\n{}", r.log(PAWD)));
    let role: String = sqlx::query_scalar("SELECT current_user::text")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        role,
        format!("paw_s_{}", db_sid.replace('-', "").to_ascii_lowercase()),
        "the session's own role"
    );
    let query = tokio::spawn(async move {
        // Ends in an error when the session is cut; the test looks at the server, not here.
        let _ = sqlx::query("SELECT pg_sleep(600)").execute(&mut conn).await;
    });
    let mut watcher = sqlx::PgConnection::connect(&pg.url()).await.unwrap();
    let backend_pid = wait_for_backend(&mut watcher, &role, "SELECT pg_sleep(600)", GIVE_UP).await;
    Live {
        r,
        pg,
        _admin_url: admin_url,
        ada,
        web_grant,
        db_grant,
        ssh_sid,
        db_sid,
        sleep_pid,
        sleep_cmdline,
        backend_pid,
        watcher: Some(watcher),
        _term: term,
        rx,
        fwd,
        _query: query,
    }
}

impl Live {
    /// What to watch the two sessions on their targets with.
    fn watch(&mut self) -> Watch {
        Watch {
            sleep_pid: self.sleep_pid,
            sleep_cmdline: self.sleep_cmdline.clone(),
            backend_pid: self.backend_pid,
            watcher: self.watcher.take().unwrap(),
        }
    }

    /// The one `session_end` record of each session, once both are written (at most 10 s).
    async fn session_ends(&self) -> (Value, Value) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let audit = sqlite_audit(&self.r).await;
            let ends = |sid: &str| -> Vec<Value> {
                audit
                    .iter()
                    .filter(|e| e["action"] == "session_end" && e["subject"] == sid)
                    .cloned()
                    .collect()
            };
            let (ssh, db) = (ends(&self.ssh_sid), ends(&self.db_sid));
            if ssh.len() == 1 && db.len() == 1 {
                return (ssh[0].clone(), db[0].clone());
            }
            assert!(
                ssh.len() <= 1 && db.len() <= 1,
                "one session_end per session: {ssh:?} {db:?}"
            );
            assert!(
                Instant::now() < deadline,
                "no session_end records: {ssh:?} {db:?}\n{}",
                self.r.log(PAWD)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Both clients were told `reason`, both sessions' one `session_end` records name it with
    /// their grant and target, and the database session's role is dropped. Returns the audit.
    async fn assert_ended_for(&mut self, what: &str, reason: &str) -> Vec<Value> {
        // The clients were told why.
        let told = client_end(&mut self.rx, GIVE_UP).await;
        assert_eq!(told.as_deref(), Some(reason), "{what}: the terminal's end");
        let told = tokio::time::timeout(GIVE_UP, self.fwd.ended())
            .await
            .unwrap();
        assert_eq!(told.reason, reason, "{what}: the forward's end: {told:?}");
        let (ssh, db) = self.session_ends().await;
        for (end, grant, target) in [
            (&ssh, &self.web_grant, SSH_TARGET),
            (&db, &self.db_grant, DB_TARGET),
        ] {
            assert_eq!(end["actor"], "ada", "{what}: {end}");
            assert_eq!(end["detail"]["reason"], reason, "{what}: {end}");
            assert_eq!(end["detail"]["grant_id"], grant.as_str(), "{what}: {end}");
            assert_eq!(end["detail"]["target"], target, "{what}: {end}");
        }
        assert!(
            ssh["detail"]["recording_sha256"].is_string(),
            "{what}: the SSH recording's hash: {ssh}"
        );
        let role = format!(
            "paw_s_{}",
            self.db_sid.replace('-', "").to_ascii_lowercase()
        );
        assert_eq!(db["detail"]["db_role"], role.as_str(), "{what}: {db}");
        let left = self
            .pg
            .psql(&format!(
                "SELECT count(*) FROM pg_roles WHERE rolname = '{role}'"
            ))
            .unwrap();
        assert_eq!(left.trim(), "0", "{what}: the session's role is dropped");
        sqlite_audit(&self.r).await
    }
}

/// B9. ada's account is locked mid-session by failed sign-ins that are evidence tied to her
/// key (her key signs, but without user verification: a key gone wrong, or someone holding
/// it without her PIN): the failure that locks it ends her live SSH and PostgreSQL sessions
/// within 1 s, each recorded as ended `locked`; she can no longer sign in. Failures anyone
/// can make (bad signatures, garbage) no longer lock (N1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b9_locking_a_user_ends_their_live_ssh_and_postgres_sessions_within_a_second() {
    let mut l = live().await;
    let url = l.r.url(PAWD);
    // Failed sign-ins: ada's own key signs, without user verification.
    l.ada.key_mut().set_knobs(paw_fido::FailureKnobs {
        no_user_verification: true,
        ..Default::default()
    });
    let mut failures = Vec::new();
    for _ in 0..LOCK_AFTER {
        let start = l.ada.login_start(&url).await.unwrap().ok().unwrap();
        failures.push(l.ada.login_answer(&start).unwrap());
    }
    l.ada.key_mut().set_knobs(paw_fido::FailureKnobs::default());
    let last = failures.pop().unwrap();
    for answer in &failures {
        let res = l.ada.login_finish(&url, answer).await.unwrap();
        assert_eq!(
            res.status, 401,
            "an assertion without user verification is refused: {:?}",
            res.body
        );
    }
    // The two sessions are still live after failures below the threshold.
    assert!(
        std::fs::read(format!("/proc/{}/cmdline", l.sleep_pid)).is_ok_and(|c| c == l.sleep_cmdline),
        "the SSH session survives failures below the threshold"
    );
    let watch = l.watch();
    let ada = &mut l.ada;
    let (_, res) = watch
        .run("B9 user locked", &l.r, async {
            ada.login_finish(&url, &last).await.unwrap()
        })
        .await;
    assert_eq!(res.status, 401, "the failure that locks is refused too");
    // Locked: even a good signature no longer signs her in (told only once her key signed).
    let start = l.ada.login_start(&url).await.unwrap().ok().unwrap();
    let answer = l.ada.login_answer(&start).unwrap();
    let res = l.ada.login_finish(&url, &answer).await.unwrap();
    assert_eq!(res.code(), "account_locked", "{:?}", res.body);
    l.assert_ended_for("B9", "locked").await;
}

/// B12. An operator disables ada with `pawd user disable` (the real command, beside the
/// running broker, on its database): her live SSH and PostgreSQL sessions end within 1 s of
/// the command starting; their grants are revoked and the audit names the disabling.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b12_disabling_a_user_ends_their_live_ssh_and_postgres_sessions_within_a_second() {
    let mut l = live().await;
    let config = l.r.config_path(PAWD).unwrap().to_owned();
    let watch = l.watch();
    let r = &l.r;
    let (_, (out, returned)) = watch
        .run("B12 user disabled", r, async {
            let started = Instant::now();
            let out = r
                .pawd_with(&config, &["user".into(), "disable".into(), "ada".into()])
                .unwrap();
            (out, started.elapsed())
        })
        .await;
    assert!(
        out.status.success(),
        "pawd user disable failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "B12: pawd user disable returned {} ms after it was started",
        returned.as_millis()
    );
    let audit = l.assert_ended_for("B12", "revoked").await;
    let disabled: Vec<&Value> = audit
        .iter()
        .filter(|e| e["action"] == "user_disabled" && e["subject"] == "ada")
        .collect();
    assert_eq!(disabled.len(), 1, "{disabled:?}");
    assert_eq!(disabled[0]["actor"], "pawd (cli)", "{}", disabled[0]);
    let voided = disabled[0]["detail"]["grants_voided"].as_array().unwrap();
    for g in [&l.web_grant, &l.db_grant] {
        assert!(voided.contains(&json!(g)), "{g} voided: {}", disabled[0]);
    }
}

/// A16. ada revokes her security key (lost, say) with a step-up signed by it: the grants it
/// asked for are revoked and their live SSH and PostgreSQL sessions end within 1 s of her call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a16_revoking_a_key_ends_the_live_ssh_and_postgres_sessions_it_asked_for_within_a_second() {
    let mut l = live().await;
    let url = l.r.url(PAWD);
    let keys = l.ada.call(&url, "GET", "/v1/keys", None).await.unwrap();
    let keys = keys.ok().unwrap();
    let list = keys["keys"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{keys}");
    let key = list[0]["id"].as_str().unwrap().to_owned();
    let revoke = Action::KeyManagement {
        operation: "revoke".into(),
        credential: key.clone(),
    };
    // The step-up is prepared first: the clock runs from the revoking call.
    let start = l.ada.stepup_start(&url, &revoke).await.unwrap();
    let answer = l.ada.stepup_answer(&start, &revoke).unwrap();
    let path = format!("/v1/keys/{key}/revoke");
    let watch = l.watch();
    let ada = &l.ada;
    let (_, reply) = watch
        .run("A16 key revoked", &l.r, async {
            ada.call(&url, "POST", &path, Some(&json!({ "stepup": answer })))
                .await
                .unwrap()
        })
        .await;
    assert_eq!(reply.status, 200, "{:?}\n{}", reply.body, l.r.log(PAWD));
    let audit = l.assert_ended_for("A16", "revoked").await;
    let revoked: Vec<&Value> = audit
        .iter()
        .filter(|e| e["action"] == "security_key_revoked")
        .collect();
    assert_eq!(revoked.len(), 1, "{revoked:?}");
    let grants = revoked[0]["detail"]["grants_revoked"].as_array().unwrap();
    for g in [&l.web_grant, &l.db_grant] {
        assert!(grants.contains(&json!(g)), "{g} revoked: {}", revoked[0]);
    }
}
