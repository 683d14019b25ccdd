//! Cases C2, B8 and E4 with real clocks (issue #19 items 2 and 3): grants end by the broker's
//! own timer and wall clock, whatever either side's wall clock does meanwhile.
//!
//! One real `pawd` on SQLite, a real OpenSSH sshd and a real PostgreSQL, as in
//! `live_sessions_end.rs`. Nothing ticks a clock by hand: the broker runs its own grant clock
//! and session timers. Clocks are moved with libfaketime (Debian's `faketime` package, installed
//! by `cargo xtask setup`) preloaded into the process whose wall clock is to move, driven by a
//! control file (`FAKETIME_TIMESTAMP_FILE`, re-read on every call with `FAKETIME_NO_CACHE=1`)
//! and with `FAKETIME_DONT_FAKE_MONOTONIC=1`, so only the wall clock moves, as an NTP step or an
//! operator's `date -s` moves it.
//!
//! A session's end is measured on the target, as in `live_sessions_end.rs`: the SSH session's
//! `sleep` leaving the sshd host's `/proc`, the PostgreSQL session's backend leaving
//! `pg_stat_activity` (polled as the superuser), each every 10 ms; the test process's own wall
//! clock (never faked) dates what it sees, against the grant's `ends_at_ms` as the broker
//! answered it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use paw_client::forward::{self, Forward};
use paw_client::terminal::{self, Terminal};
use paw_proto::action::Action;
use paw_tests::pawctl::{self, Run};
use paw_tests::postgres::TempPostgres;
use paw_tests::replicas::{Options, Replicas, Store, SSH_TARGET, WEB_ROOT_POLICY};
use paw_tests::virtual_user::VirtualUser;
use serde_json::Value;
use sqlx::Connection;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

mod common;
use common::live::{
    active_grant, backend_gone, client_end, process_gone, random_digits, redeem, wait_for_backend,
    wait_for_process,
};
use common::{credential, output_until, sqlite_audit, Events};

/// C2's bound: from the grant's end to the target seeing the session gone.
const BOUND: Duration = Duration::from_secs(1);
/// How much earlier than the grant's end a session may be seen gone: the broker rounds the
/// time left to whole milliseconds, and the target is polled every 10 ms.
const EARLY_MS: i64 = 100;
/// How long the setup may take and a session run before a poll gives up.
const GIVE_UP: Duration = Duration::from_secs(30);
/// The grants' length: long enough for both sessions to be up on a loaded 2-core machine
/// before the end, short enough to wait for. The policy allows any positive length.
const GRANT_SECS: u32 = 20;
/// The only broker.
const PAWD: usize = 0;
/// The PostgreSQL target and the role its grants give.
const DB_TARGET: &str = "db-1";
const DB_ROLE: &str = "dba";
/// The query the database session runs, as `pg_stat_activity` shows it.
const PG_SLEEP: &str = "SELECT pg_sleep(600)";
/// One hour and one day, in seconds: B8's and E4's skews and steps.
const HOUR: i64 = 3_600;
const DAY: i64 = 86_400;

/// The test process's wall clock in Unix ms. Never faked: it is the host's true time, which
/// the broker's equals whenever its own clock is not moved.
fn wall_ms() -> i64 {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    i64::try_from(d.as_millis()).unwrap()
}

/// The wall time of a monotonic instant of this process (both read together just now).
fn wall_ms_of(at: Instant) -> i64 {
    let (now, wall) = (Instant::now(), wall_ms());
    match now.checked_duration_since(at) {
        Some(ago) => wall - i64::try_from(ago.as_millis()).unwrap(),
        None => wall + i64::try_from(at.duration_since(now).as_millis()).unwrap(),
    }
}

// ---- libfaketime ---------------------------------------------------------------------------

/// A wall clock that a test moves: libfaketime preloaded into a process, reading its offset
/// from the real time in a control file on every clock call.
struct FakeClock {
    dir: tempfile::TempDir,
}

impl FakeClock {
    /// A control file at offset 0 (the true time).
    fn new() -> Self {
        let me = Self {
            dir: tempfile::Builder::new()
                .prefix("paw-faketime-")
                .tempdir()
                .unwrap(),
        };
        me.set(0);
        me
    }

    fn file(&self) -> PathBuf {
        self.dir.path().join("offset")
    }

    /// Steps the wall clock of every process using this file to the true time plus `secs`. The
    /// file is replaced by a rename: a reader never sees half of it.
    fn set(&self, secs: i64) {
        let tmp = self.dir.path().join("offset.new");
        std::fs::write(&tmp, format!("{secs:+}\n")).unwrap();
        std::fs::rename(&tmp, self.file()).unwrap();
    }

    /// The environment that preloads libfaketime with this control file.
    fn env(&self) -> Vec<(String, String)> {
        let mut env = faketime_env();
        env.push((
            "FAKETIME_TIMESTAMP_FILE".into(),
            self.file().display().to_string(),
        ));
        // Re-read the file on every call: a step takes effect at once, not after a cache.
        env.push(("FAKETIME_NO_CACHE".into(), "1".into()));
        env
    }
}

/// libfaketime's preload and the setting that leaves the monotonic clock alone.
fn faketime_env() -> Vec<(String, String)> {
    vec![
        ("LD_PRELOAD".into(), libfaketime().display().to_string()),
        ("FAKETIME_DONT_FAKE_MONOTONIC".into(), "1".into()),
    ]
}

/// libfaketime as Debian installs it (`faketime` package).
fn libfaketime() -> PathBuf {
    let arch = std::env::consts::ARCH;
    let candidates = [
        format!("/usr/lib/{arch}-linux-gnu/faketime/libfaketime.so.1"),
        "/usr/lib/faketime/libfaketime.so.1".to_owned(),
        "/usr/local/lib/faketime/libfaketime.so.1".to_owned(),
    ];
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("libfaketime is not installed (apt-get install faketime; cargo xtask setup)")
        })
}

// ---- the broker and the targets ------------------------------------------------------------

/// One broker (its wall clock on `broker_clock` when given), the sshd, a PostgreSQL target.
struct World {
    r: Replicas,
    pg: TempPostgres,
    _admin_url: tempfile::TempDir,
    broker_clock: Option<FakeClock>,
}

fn policy(pg: &TempPostgres, url_file: &Path, people: &[&str]) -> String {
    let sre: Vec<String> = people.iter().map(|p| format!("{p:?}")).collect();
    // WEB_ROOT_POLICY's groups, with more people in sre.
    let web = WEB_ROOT_POLICY.replace("sre = [\"ada\"]", &format!("sre = [{}]", sre.join(", ")));
    format!(
        r#"{web}
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
    )
}

async fn world(broker_clock: Option<FakeClock>, people: &[&str]) -> World {
    let pg = tokio::task::spawn_blocking(TempPostgres::start)
        .await
        .unwrap()
        .unwrap();
    pg.psql(&format!("CREATE ROLE {DB_ROLE} NOLOGIN")).unwrap();
    let admin_url = tempfile::tempdir().unwrap();
    let url_file = admin_url.path().join("db-1.admin-url");
    std::fs::write(&url_file, format!("{}\n", pg.url())).unwrap();
    let mut r = Replicas::start_with(Options {
        replicas: 0,
        store: Store::Sqlite,
        sshd: true,
        extra_config: policy(&pg, &url_file, people),
    })
    .await
    .unwrap();
    // Started by hand: with the preload in its environment, and accepting WebAuthn from its own
    // address (pawctl talks to it directly).
    r.add().unwrap();
    r.allow_direct_origins().unwrap();
    if let Some(c) = &broker_clock {
        for (k, v) in c.env() {
            r.set_env(PAWD, &k, &v).unwrap();
        }
    }
    r.spawn(PAWD).unwrap();
    r.wait_healthy(PAWD).await.unwrap();
    World {
        r,
        pg,
        _admin_url: admin_url,
        broker_clock,
    }
}

impl World {
    /// The broker's wall clock, from its `/healthz`.
    async fn broker_ms(&self) -> i64 {
        let health: Value = self
            .r
            .client()
            .unwrap()
            .get(format!("{}/healthz?shallow=true", self.r.url(PAWD)))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        health["time_ms"].as_i64().unwrap()
    }

    /// Steps the broker's wall clock to the true time plus `secs`, and waits until its
    /// `/healthz` says so (within 5 s of that).
    async fn step_broker(&self, secs: i64) {
        self.broker_clock.as_ref().unwrap().set(secs);
        let deadline = Instant::now() + GIVE_UP;
        loop {
            let off = self.broker_ms().await - wall_ms();
            if (off - secs * 1000).abs() < 5_000 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the broker's clock did not move to {secs:+} s (it is {off:+} ms off)\n{}",
                self.r.log(PAWD)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

// ---- ada's two live sessions ---------------------------------------------------------------

/// ada's two grants of [`GRANT_SECS`] and a live session under each: a bash through the front
/// door running `sleep 600.N`, and a connection through the local forward running
/// [`PG_SLEEP`] as the session's role.
struct Live {
    web_grant: String,
    db_grant: String,
    /// Each grant's end as the broker answered the request (its wall clock, Unix ms).
    web_end_ms: i64,
    db_end_ms: i64,
    ssh_sid: String,
    db_sid: String,
    sleep_pid: u32,
    sleep_cmdline: Vec<u8>,
    backend_pid: i32,
    watcher: Option<sqlx::PgConnection>,
    _term: Terminal,
    rx: Events,
    fwd: Forward,
    _query: tokio::task::JoinHandle<()>,
}

fn request(entitlement: &str, target: &str, role: &str) -> Action {
    Action::Request {
        entitlement: entitlement.into(),
        target: target.into(),
        role: role.into(),
        duration_secs: GRANT_SECS,
        justification: "measure the end of a short grant".into(),
        ticket: None,
        start_at_ms: None,
    }
}

async fn live(w: &World, ada: &mut VirtualUser) -> Live {
    let url = w.r.url(PAWD);
    // Both grants first, so that both sessions have most of their grants' time.
    let web = active_grant(ada, &url, &request("web-root", SSH_TARGET, "root")).await;
    let db = active_grant(ada, &url, &request("db-dba", DB_TARGET, DB_ROLE)).await;
    let id = |g: &Value| g["id"].as_str().unwrap().to_owned();
    let end = |g: &Value| g["ends_at_ms"].as_i64().unwrap();
    let (web_grant, db_grant) = (id(&web), id(&db));
    let (web_end_ms, db_end_ms) = (end(&web), end(&db));

    let minted = redeem(ada, &url, &web_grant, SSH_TARGET).await;
    let ssh_sid = minted["session_id"].as_str().unwrap().to_owned();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let term = terminal::open(credential(&minted), 80, 24, None, move |e| {
        let _ = tx.send((Instant::now(), e));
    })
    .await
    .unwrap_or_else(|e| panic!("the front door refused the ticket: {e}\n{}", w.r.log(PAWD)));
    let marker = format!("600.{}", random_digits());
    term.input(format!("echo paw-$((6*7)); sleep {marker}\n").into_bytes())
        .await
        .unwrap();
    let out = output_until(&mut rx, "paw-42").await;
    assert!(
        out.contains("paw-42"),
        "no shell: {out:?}\n{}",
        w.r.log(PAWD)
    );
    let sleep_cmdline = format!("sleep\0{marker}\0").into_bytes();
    let sleep_pid = wait_for_process(&sleep_cmdline, GIVE_UP).await;

    let minted = redeem(ada, &url, &db_grant, DB_TARGET).await;
    let db_sid = minted["session_id"].as_str().unwrap().to_owned();
    let fwd = forward::start(credential(&minted), 0).await.unwrap();
    let through = format!("postgres://anyone@{}/{}", fwd.local_addr(), w.pg.database());
    let mut conn = sqlx::PgConnection::connect(&through)
        .await
        .unwrap_or_else(|e| panic!("no database session: {e}\n{}", w.r.log(PAWD)));
    let role = format!("paw_s_{}", db_sid.replace('-', "").to_ascii_lowercase());
    let query = tokio::spawn(async move {
        // Ends in an error when the session is cut; the test looks at the server, not here.
        let _ = sqlx::query(PG_SLEEP).execute(&mut conn).await;
    });
    let mut watcher = sqlx::PgConnection::connect(&w.pg.url()).await.unwrap();
    let backend_pid = wait_for_backend(&mut watcher, &role, PG_SLEEP, GIVE_UP).await;
    let left = web_end_ms.min(db_end_ms) - wall_ms();
    assert!(
        left > 3_000,
        "the sessions took too long to open: {left} ms of the grants were left"
    );
    Live {
        web_grant,
        db_grant,
        web_end_ms,
        db_end_ms,
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

/// When each session was seen gone on its target (the test's wall clock, Unix ms).
#[derive(Debug)]
struct Gone {
    ssh_ms: i64,
    db_ms: i64,
}

impl Live {
    /// Watches both targets from now until `limit` past the later grant's end, runs `during`
    /// while both watch (after both looked once: both sessions were alive when it started),
    /// and returns when each session was seen gone.
    async fn watch(
        &mut self,
        what: &str,
        w: &World,
        during: impl std::future::Future<Output = ()>,
    ) -> Gone {
        let until = Instant::now()
            + Duration::from_millis(
                u64::try_from(self.web_end_ms.max(self.db_end_ms) - wall_ms()).unwrap_or(0),
            )
            + Duration::from_secs(10);
        let (pid, cmdline) = (self.sleep_pid, self.sleep_cmdline.clone());
        let ssh = tokio::spawn(async move { process_gone(pid, &cmdline, until).await });
        let (mut watcher, backend) = (self.watcher.take().unwrap(), self.backend_pid);
        let db = tokio::spawn(async move { backend_gone(&mut watcher, backend, until).await });
        tokio::time::sleep(common::live::POLL * 5).await;
        assert!(!ssh.is_finished(), "{what}: the sleep ended before the end");
        assert!(
            !db.is_finished(),
            "{what}: the backend ended before the end"
        );
        during.await;
        let (ssh, db) = (ssh.await.unwrap(), db.await.unwrap());
        let (Some(ssh), Some(db)) = (ssh, db) else {
            panic!(
                "{what}: a session outlived its grant by 10 s (sleep gone: {:?}, backend gone: \
                 {:?}; grants end at {} and {}, now {})\n{}",
                ssh.map(wall_ms_of),
                db.map(wall_ms_of),
                self.web_end_ms,
                self.db_end_ms,
                wall_ms(),
                w.r.log(PAWD)
            );
        };
        Gone {
            ssh_ms: wall_ms_of(ssh),
            db_ms: wall_ms_of(db),
        }
    }

    /// Each session seen gone no earlier than [`EARLY_MS`] before its grant's end and within
    /// [`BOUND`] after it; returns the overruns (ms).
    fn assert_ended_at_grant_end(&self, what: &str, gone: &Gone) -> (i64, i64) {
        let ssh = gone.ssh_ms - self.web_end_ms;
        let db = gone.db_ms - self.db_end_ms;
        eprintln!(
            "{what}: the SSH session's sleep left the target {ssh} ms after its grant's end; \
             the PostgreSQL session's backend left pg_stat_activity {db} ms after its grant's end"
        );
        let bound = i64::try_from(BOUND.as_millis()).unwrap();
        for (which, over) in [("SSH", ssh), ("PostgreSQL", db)] {
            assert!(
                over >= -EARLY_MS,
                "{what}: the {which} session ended {} ms before its grant's end",
                -over
            );
            assert!(
                over <= bound,
                "{what}: the {which} session ended {over} ms after its grant's end (bound \
                 {BOUND:?})"
            );
        }
        (ssh, db)
    }

    /// Both clients were told `reason`, and both sessions' one `session_end` records say it.
    async fn assert_ended_for(&mut self, what: &str, w: &World, reason: &str) {
        let told = client_end(&mut self.rx, GIVE_UP).await;
        assert_eq!(told.as_deref(), Some(reason), "{what}: the terminal's end");
        let told = tokio::time::timeout(GIVE_UP, self.fwd.ended())
            .await
            .unwrap();
        assert_eq!(told.reason, reason, "{what}: the forward's end: {told:?}");
        let deadline = Instant::now() + GIVE_UP;
        loop {
            let audit = sqlite_audit(&w.r).await;
            let ends = |sid: &str, grant: &str| -> Vec<Value> {
                audit
                    .iter()
                    .filter(|e| e["action"] == "session_end" && e["subject"] == sid)
                    .inspect(|e| assert_eq!(e["detail"]["grant_id"], grant, "{what}: {e}"))
                    .cloned()
                    .collect()
            };
            let ssh = ends(&self.ssh_sid, &self.web_grant);
            let db = ends(&self.db_sid, &self.db_grant);
            assert!(ssh.len() <= 1 && db.len() <= 1, "{what}: {ssh:?} {db:?}");
            if ssh.len() == 1 && db.len() == 1 {
                for e in [&ssh[0], &db[0]] {
                    assert_eq!(e["detail"]["reason"], reason, "{what}: {e}");
                }
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: no session_end records: {ssh:?} {db:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// ada's grant `id` as the broker lists it to her now, and the broker's time of the list.
async fn grant_of(ada: &VirtualUser, w: &World, id: &str) -> (Value, i64) {
    let list = ada
        .call(&w.r.url(PAWD), "GET", "/v1/grants", None)
        .await
        .unwrap()
        .ok()
        .unwrap();
    let g = list["grants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("no grant {id}: {list}"));
    (g, list["now_ms"].as_i64().unwrap())
}

// ---- C2 ------------------------------------------------------------------------------------

/// C2 on the real clock: ada's grants of 20 s end by the broker's own timer, nothing ticking
/// it; her SSH session (a `sleep` on the sshd) and her PostgreSQL session (`pg_sleep` through
/// the forward) are seen gone on their targets within 1 s of each grant's `ends_at_ms`, and
/// not before it; both clients are told `grant_ended`, the audit says so, and the grants are
/// listed `expired`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c2_sessions_end_at_the_grant_end_by_the_real_clock_within_a_second() {
    let w = world(None, &["ada"]).await;
    let mut ada = w.r.enrolled("ada", &[], PAWD).await.unwrap();
    let mut l = live(&w, &mut ada).await;
    let gone = l.watch("C2 real clock", &w, async {}).await;
    l.assert_ended_at_grant_end("C2 real clock", &gone);
    l.assert_ended_for("C2 real clock", &w, "grant_ended").await;
    for id in [&l.web_grant, &l.db_grant] {
        let (g, _) = grant_of(&ada, &w, id).await;
        assert_eq!(g["state"], "expired", "{g}");
    }
}

/// C2 and E4 on the broker: its wall clock stepped back 1 h (libfaketime) while ada's grants
/// and sessions are live. The broker's clock does not go back with it (its `/healthz` time
/// stays the true time), the sessions end within 1 s of the grants' original end, the grant
/// clock expires the grants then, and a new session on one of them is refused after that end.
/// A step forward afterwards is followed (the shim is live in this pawd).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c2_e4_a_broker_wall_clock_step_back_does_not_keep_a_session_or_grant_past_its_end() {
    let w = world(Some(FakeClock::new()), &["ada"]).await;
    let mut ada = w.r.enrolled("ada", &[], PAWD).await.unwrap();
    let mut l = live(&w, &mut ada).await;
    let what = "E4 broker stepped back 1 h";
    let gone = l
        .watch(what, &w, async {
            w.broker_clock.as_ref().unwrap().set(-HOUR);
            // Read for a while after the step: the broker's clock stays with the true time.
            let until = Instant::now() + Duration::from_secs(2);
            while Instant::now() < until {
                let off = w.broker_ms().await - wall_ms();
                assert!(
                    off.abs() < 5_000,
                    "{what}: the broker's clock went back with the wall clock ({off:+} ms)"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await;
    l.assert_ended_at_grant_end(what, &gone);
    l.assert_ended_for(what, &w, "grant_ended").await;
    // The grant clock expired both at their original end.
    let expired = grants_expired(&w, &l).await;
    assert_eq!(expired.len(), 2, "{what}: {expired:?}");
    // And no new session comes from the grant after its end.
    let again = ada
        .signed(
            &w.r.url(PAWD),
            &format!("/v1/grants/{}/redeem", l.web_grant),
            &Action::Session {
                grant_id: l.web_grant.clone(),
                target: SSH_TARGET.into(),
            },
        )
        .await
        .unwrap();
    eprintln!(
        "{what}: a new session on the grant after its end: {} {}",
        again.status, again.body
    );
    assert_eq!(again.status, 403, "{what}: {:?}", again.body);
    assert_eq!(again.body["code"], "forbidden", "{what}: {:?}", again.body);
    // The shim is live in this pawd: a step forward is followed.
    w.step_broker(2 * HOUR).await;
}

/// E4 on the broker, the other way: its wall clock stepped forward 1 h while ada's sessions
/// are live. The broker's grant clock finds the grants over and ends both sessions early,
/// within 1 s of the step: the fail-safe direction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c2_e4_a_broker_wall_clock_step_forward_ends_the_sessions_early_within_a_second() {
    let w = world(Some(FakeClock::new()), &["ada"]).await;
    let mut ada = w.r.enrolled("ada", &[], PAWD).await.unwrap();
    let mut l = live(&w, &mut ada).await;
    let stepped = std::sync::Mutex::new(0i64);
    let gone = l
        .watch("E4 broker stepped forward", &w, async {
            *stepped.lock().unwrap() = wall_ms();
            w.step_broker(HOUR).await;
        })
        .await;
    let stepped = stepped.into_inner().unwrap();
    let (ssh, db) = (gone.ssh_ms - stepped, gone.db_ms - stepped);
    eprintln!(
        "E4 broker stepped forward 1 h: the SSH session's sleep left the target {ssh} ms after \
         the step, the PostgreSQL backend {db} ms after it ({} ms and {} ms before the grants' \
         ends)",
        l.web_end_ms - gone.ssh_ms,
        l.db_end_ms - gone.db_ms
    );
    let bound = i64::try_from(BOUND.as_millis()).unwrap();
    assert!(
        ssh <= bound && db <= bound,
        "ended {ssh} and {db} ms after the step"
    );
    l.assert_ended_for("E4 broker stepped forward 1 h", &w, "grant_ended")
        .await;
    // The broker's grant clock expired both (read from its database: ada's own calls now
    // carry a time an hour behind the broker's, and her sign-in is past its limit by it).
    let expired = grants_expired(&w, &l).await;
    assert_eq!(expired.len(), 2, "{expired:?}");
    for e in &expired {
        assert_eq!(e["actor"], "pawd", "{e}");
    }
}

/// The `grant_expired` records of `l`'s two grants, once both are written (at most
/// [`GIVE_UP`]; what there is then).
async fn grants_expired(w: &World, l: &Live) -> Vec<Value> {
    let deadline = Instant::now() + GIVE_UP;
    loop {
        let found: Vec<Value> = sqlite_audit(&w.r)
            .await
            .into_iter()
            .filter(|e| {
                e["action"] == "grant_expired"
                    && (e["subject"] == l.web_grant.as_str() || e["subject"] == l.db_grant.as_str())
            })
            .collect();
        if found.len() >= 2 || Instant::now() > deadline {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---- B8 and E4 on the workstation: the real pawctl under libfaketime -----------------------

/// A person using the real `pawctl` with their own state directory, its wall clock faked.
struct Pawctl<'a> {
    w: &'a World,
    name: &'static str,
    state: tempfile::TempDir,
    /// libfaketime's environment for every run.
    env: Vec<(String, String)>,
}

impl<'a> Pawctl<'a> {
    fn new(w: &'a World, name: &'static str, env: Vec<(String, String)>) -> Self {
        Self {
            w,
            name,
            state: tempfile::Builder::new()
                .prefix("pawctl-clock-")
                .tempdir()
                .unwrap(),
            env,
        }
    }

    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(pawctl::binary());
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy().into_owned();
            if k.starts_with("PAW_") || k.starts_with("PAWCTL_") || k.starts_with("FAKETIME") {
                cmd.env_remove(k);
            }
        }
        cmd.env("PAW_DEMO_VIRTUAL_KEY", "1")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .arg("--broker")
            .arg(self.w.r.direct_url(PAWD))
            .arg("--ca")
            .arg(self.w.r.ca_path())
            .arg("--state-dir")
            .arg(self.state.path())
            .args(["--store", "file"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    }

    async fn run(&self, args: &[&str]) -> Run {
        let out = tokio::time::timeout(Duration::from_secs(60), self.command(args).output())
            .await
            .unwrap_or_else(|_| panic!("pawctl {args:?} did not finish in 60 s"))
            .unwrap();
        Run::from(out, args)
    }

    /// `pawctl user enroll` with an invite in a 0600 file.
    async fn enroll(&self) {
        use std::os::unix::fs::PermissionsExt;
        let code = self.w.r.invite(self.name, &[]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("invite");
        std::fs::write(&file, &code).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let out = self
            .run(&[
                "--json",
                "user",
                "enroll",
                "--invite-file",
                file.to_str().unwrap(),
            ])
            .await;
        assert_eq!(out.status, Some(0), "{}: {out:?}", self.name);
    }

    /// `pawctl user request web-root web-1` for [`GRANT_SECS`]: the grant pawctl printed.
    async fn request(&self) -> Value {
        let secs = format!("{GRANT_SECS}s");
        let out = self
            .run(&[
                "--json",
                "user",
                "request",
                "web-root",
                SSH_TARGET,
                "--role",
                "root",
                "--duration",
                &secs,
                "--reason",
                "a clock test",
            ])
            .await;
        assert_eq!(out.status, Some(0), "{}: {out:?}", self.name);
        let g = out.json();
        assert_eq!(g["state"], "active", "{g}");
        g
    }

    /// `pawctl --json user grants`: grant `id` as pawctl shows it, and the list's `now_ms`.
    async fn grant(&self, id: &str) -> (Value, i64) {
        let out = self.run(&["--json", "user", "grants"]).await;
        assert_eq!(out.status, Some(0), "{}: {out:?}", self.name);
        let list = out.json();
        let g = list["grants"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("no grant {id}: {list}"));
        (g, list["now_ms"].as_i64().unwrap())
    }

    /// That this pawctl's own wall clock was `secs` off the true time when it wrote its newest
    /// `kind` record to its local audit trail, at true time `at_ms` (within 30 s): the trail is
    /// dated by the workstation's clock, so it shows the shim was in effect.
    async fn assert_local_clock(&self, what: &str, kind: &str, at_ms: i64, secs: i64) {
        let out = self.run(&["--json", "user", "audit", "--kind", kind]).await;
        assert_eq!(out.status, Some(0), "{what}: {out:?}");
        let records = out.json()["records"].as_array().unwrap().clone();
        // Newest first.
        let dated = records[0]["time_ms"].as_i64().unwrap();
        let off = dated - at_ms;
        assert!(
            (off - secs * 1000).abs() < 30_000,
            "{what}: the local trail dates {kind} {off:+} ms off the true time, not {secs:+} s"
        );
    }

    /// What `pawctl user grants` shows of grant `id` agrees with the broker: the same end as
    /// `end_ms`, `now_ms` the broker's true time (not this workstation's), so that the time
    /// left (`ends_at_ms - now_ms`) is the true time left.
    async fn assert_shows_broker_time(&self, what: &str, id: &str, end_ms: i64) {
        let before = wall_ms();
        let (g, now) = self.grant(id).await;
        let after = wall_ms();
        assert_eq!(g["state"], "active", "{what}: {g}");
        assert_eq!(g["ends_at_ms"].as_i64(), Some(end_ms), "{what}: {g}");
        // The broker stamped now_ms while pawctl ran; a workstation clock off by an hour or a
        // day would put it that far away.
        assert!(
            now >= before - 1_000 && now <= after + 1_000,
            "{what}: pawctl's list says the broker's time is {now}, true time {before}..{after}"
        );
        eprintln!(
            "{what}: pawctl shows {} ms left (true time left {} ms)",
            end_ms - now,
            end_ms - after
        );
    }

    /// `pawctl user shell GRANT` running `sleep 600.N` on the target until the broker ends
    /// it: when the target saw the sleep gone (test wall ms), and pawctl's run.
    async fn shell_until_the_end(
        &self,
        what: &str,
        grant: &str,
        end_ms: i64,
        during: impl std::future::Future<Output = ()>,
    ) -> (i64, Run) {
        let mut child = self
            .command(&["user", "shell", grant])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let marker = format!("600.{}", random_digits());
        stdin
            .write_all(format!("sleep {marker}\n").as_bytes())
            .await
            .unwrap();
        let cmdline = format!("sleep\0{marker}\0").into_bytes();
        let pid = wait_for_process(&cmdline, GIVE_UP).await;
        assert!(
            wall_ms() < end_ms - 1_000,
            "{what}: the shell took too long to open"
        );
        let until = Instant::now()
            + Duration::from_millis(u64::try_from(end_ms - wall_ms()).unwrap_or(0))
            + Duration::from_secs(10);
        let gone = tokio::spawn(async move { process_gone(pid, &cmdline, until).await });
        during.await;
        let gone = gone
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{what}: the session outlived its grant by 10 s"));
        let out = tokio::time::timeout(GIVE_UP, child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("{what}: pawctl did not exit after the session ended"))
            .unwrap();
        drop(stdin);
        (wall_ms_of(gone), Run::from(out, &["user", "shell"]))
    }
}

/// The session's end as the target saw it: within [`BOUND`] after the grant's end, not before;
/// pawctl says the broker ended it because the grant ended.
fn assert_shell_ended_at(what: &str, gone_ms: i64, end_ms: i64, run: &Run) -> i64 {
    let over = gone_ms - end_ms;
    eprintln!("{what}: the sleep left the target {over} ms after the grant's end");
    assert!(over >= -EARLY_MS, "{what}: ended {} ms early", -over);
    assert!(
        over <= i64::try_from(BOUND.as_millis()).unwrap(),
        "{what}: ended {over} ms after the grant's end"
    );
    assert_ne!(run.status, Some(0), "{what}: {run:?}");
    assert!(run.stderr.contains("grant_ended"), "{what}: {run:?}");
    over
}

/// B8: the workstation's clock 24 h behind, 1 h behind, 1 h ahead and 24 h ahead of a real
/// running broker (the real `pawctl` under libfaketime, `FAKETIME=±N`). For each, a person
/// enrolls, requests root on web-1 for 20 s (each a step-up whose device proofs carry the
/// broker's time), lists the grant, and runs a shell through the broker until the grant ends:
/// the grant pawctl prints has the broker's `ends_at_ms` (the same an administrator reads from
/// the broker), its list carries the broker's true time (so the time left is the true time
/// left), and the session ends at the broker's end, seen on the target within 1 s. pawctl's
/// own audit trail, dated by its own clock, shows the skew was in effect. A day behind works
/// because `pawd init`'s certificates are valid from 48 h before they were made: rustls checks
/// validity by the workstation's clock, and with validity starting 1 h back pawctl could not
/// connect at all (`broker_unreachable`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b8_a_workstation_clock_skewed_by_an_hour_or_a_day_changes_no_expiry() {
    const PEOPLE: [(&str, i64); 4] = [("ada", -DAY), ("ben", -HOUR), ("cai", HOUR), ("dot", DAY)];
    let w = world(None, &PEOPLE.map(|(n, _)| n)).await;
    let admin = w.r.enrolled("root-admin", &["admin"], PAWD).await.unwrap();
    for (name, skew) in PEOPLE {
        let what = format!("B8 {name}'s clock {skew:+} s");
        let mut env = faketime_env();
        env.push(("FAKETIME".into(), format!("{skew:+}")));
        let p = Pawctl::new(&w, name, env);
        p.enroll().await;
        let g = p.request().await;
        let id = g["id"].as_str().unwrap().to_owned();
        let end = g["ends_at_ms"].as_i64().unwrap();
        // The broker's own record, read by an administrator whose clock is right.
        let seen = admin
            .call(&w.r.url(PAWD), "GET", "/v1/oversight", None)
            .await
            .unwrap()
            .ok()
            .unwrap();
        let theirs = seen["grants"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["id"] == id.as_str())
            .cloned()
            .unwrap_or_else(|| panic!("{what}: {id} not in {seen}"));
        assert_eq!(theirs["ends_at_ms"].as_i64(), Some(end), "{what}: {theirs}");
        p.assert_local_clock(
            &what,
            "elevation.request",
            end - i64::from(GRANT_SECS) * 1000,
            skew,
        )
        .await;
        let requested = g["created_at_ms"].as_i64().unwrap();
        assert_eq!(end - requested, i64::from(GRANT_SECS) * 1000, "{what}: {g}");
        p.assert_shows_broker_time(&what, &id, end).await;
        let (gone, run) = p.shell_until_the_end(&what, &id, end, async {}).await;
        assert_shell_ended_at(&what, gone, end, &run);
    }
}

/// E4 on the workstation: the real `pawctl`'s wall clock stepped 1 h forward, then 1 h back
/// (libfaketime's control file) while ada's grant is active and her shell through the broker
/// runs. After each step `pawctl user grants` shows the same end and the broker's true time;
/// the shell opened after the forward step works (its step-up carries the broker's time) and
/// its session ends when the broker's grant ends, seen on the target within 1 s, not before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e4_a_workstation_clock_step_during_an_active_grant_changes_no_expiry() {
    let w = world(None, &["ada"]).await;
    let clock = FakeClock::new();
    let p = Pawctl::new(&w, "ada", clock.env());
    p.enroll().await;
    let g = p.request().await;
    let id = g["id"].as_str().unwrap().to_owned();
    let end = g["ends_at_ms"].as_i64().unwrap();
    p.assert_shows_broker_time("E4 before the steps", &id, end)
        .await;
    clock.set(HOUR);
    p.assert_shows_broker_time("E4 stepped 1 h forward", &id, end)
        .await;
    let opened = wall_ms();
    let (gone, run) = p
        .shell_until_the_end("E4", &id, end, async {
            clock.set(-HOUR);
            p.assert_shows_broker_time("E4 stepped 1 h back", &id, end)
                .await;
        })
        .await;
    assert_shell_ended_at("E4 workstation stepped", gone, end, &run);
    // The shell was opened with the workstation an hour ahead: its trail says so.
    p.assert_local_clock("E4", "session.open", opened, HOUR)
        .await;
}
