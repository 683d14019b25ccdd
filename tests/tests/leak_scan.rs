//! Cases C4 and C7, broker side (issue #19 item 4): after a full run against a real `pawd` (on
//! SQLite), a real OpenSSH sshd and a real PostgreSQL — enrol, sign in, request, approval by a
//! second person, an SSH session through the front door and a PostgreSQL session through the
//! local forward, both ended, sign-out — the SSH CA's private key and the PostgreSQL admin
//! secret are searched for in every API answer the users got, the broker's logs and every file
//! of its directories, and the session's one-time credentials on the broker's disk. Each scan
//! has a negative control: the same scan finds each secret where it is planted.
//!
//! The secrets are read the way the broker reads them: the CA key from the file
//! `[sessions] ssh_ca_key` names, the admin URL from the target's `admin_url_file`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use paw_client::terminal::{self, TermEvent};
use paw_proto::action::Action;
use paw_tests::postgres::TempPostgres;
use paw_tests::replicas::{Options, Replicas, Store, SSH_TARGET};
use paw_tests::virtual_user::VirtualUser;
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::Connection;
use tokio::sync::mpsc;

mod common;
use common::scan::{self, Needle, Places};
use common::{credential, sqlite_audit};

/// The only broker.
const PAWD: usize = 0;
const DB_TARGET: &str = "db-1";
const DB_ROLE: &str = "dba";
/// How long a session step may take on a loaded machine (not a claim of the cases).
const GIVE_UP: Duration = Duration::from_secs(30);

/// ada may have root on the web servers and DBA on the databases, each approved by bob.
fn policy(admin_url_file: &Path, pg: &TempPostgres) -> String {
    format!(
        r#"
[groups]
sre = ["ada"]
leads = ["bob"]

[[target]]
name = "{DB_TARGET}"
kind = "postgres"
address = "127.0.0.1:{port}"
database = "{db}"
admin_url_file = "{file}"

[[entitlement]]
id = "web-root"
description = "Root on the web servers"
target_kind = "ssh"
target = "web-*"
role = "root"
max_duration_secs = 3600
requesters = ["sre"]
approval = {{ required = 1, groups = ["leads"] }}

[[entitlement]]
id = "db-dba"
description = "DBA on the databases"
target_kind = "postgres"
target = "db-*"
role = "{DB_ROLE}"
max_duration_secs = 3600
requesters = ["sre"]
approval = {{ required = 1, groups = ["leads"] }}
"#,
        port = pg.port(),
        db = pg.database(),
        file = admin_url_file.display(),
    )
}

/// Every answer body the users got, in order, with what asked for it.
#[derive(Default)]
struct Answers(Vec<(String, Value)>);

impl Answers {
    fn keep(&mut self, what: &str, body: &Value) {
        self.0.push((what.to_owned(), body.clone()));
    }

    /// Each answer as a place: its JSON and, one per line, every string in it unescaped (a PEM
    /// block inside a JSON string has `\n` where the file has newlines).
    fn add_to(&self, places: &mut Places) {
        for (i, (what, body)) in self.0.iter().enumerate() {
            let mut bytes = body.to_string().into_bytes();
            let mut strings = Vec::new();
            leaves(body, &mut strings);
            for s in strings {
                bytes.push(b'\n');
                bytes.extend_from_slice(s.as_bytes());
            }
            places.add(format!("API answer {i} ({what})"), bytes);
        }
    }
}

fn leaves(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|v| leaves(v, out)),
        Value::Object(o) => o.values().for_each(|v| leaves(v, out)),
        _ => {}
    }
}

/// Invite, enrol and sign in `name`, keeping every answer.
async fn enrolled(r: &Replicas, name: &str, answers: &mut Answers) -> (VirtualUser, String) {
    let url = r.url(PAWD);
    let code = r.invite(name, &[]).unwrap();
    let mut user = r.user(name).unwrap();
    answers.keep("enroll", &user.enroll(&url, &code).await.unwrap());
    let start = user.login_start(&url).await.unwrap();
    answers.keep("login start", &start.body);
    let answer = user.login_answer(&start.ok().unwrap()).unwrap();
    let done = user.login_finish(&url, &answer).await.unwrap();
    answers.keep("login finish", &done.body);
    assert_eq!(done.status, 200, "{:?}", done.body);
    (user, code)
}

/// `request` by ada, approved by bob: the active grant's id.
async fn approved(
    r: &Replicas,
    ada: &mut VirtualUser,
    bob: &mut VirtualUser,
    request: &Action,
    answers: &mut Answers,
) -> String {
    let url = r.url(PAWD);
    let v = ada
        .signed(&url, "/v1/requests", request)
        .await
        .unwrap()
        .ok()
        .unwrap();
    answers.keep("request", &v);
    let g = v["id"].as_str().unwrap().to_owned();
    let pending = bob.call(&url, "GET", "/v1/approvals", None).await.unwrap();
    answers.keep("approvals", &pending.body);
    let approve = Action::Approve {
        request_id: g.clone(),
        approve: true,
        comment: "ok".into(),
    };
    let v = bob
        .signed(&url, &format!("/v1/requests/{g}/decide"), &approve)
        .await
        .unwrap()
        .ok()
        .unwrap();
    answers.keep("decide", &v);
    assert_eq!(v["state"], "active", "{v}");
    g
}

async fn redeem(
    r: &Replicas,
    ada: &mut VirtualUser,
    grant: &str,
    target: &str,
    answers: &mut Answers,
) -> Value {
    let session = Action::Session {
        grant_id: grant.into(),
        target: target.into(),
    };
    let v = ada
        .signed(
            &r.url(PAWD),
            &format!("/v1/grants/{grant}/redeem"),
            &session,
        )
        .await
        .unwrap()
        .ok()
        .unwrap();
    answers.keep("redeem", &v);
    v
}

/// The SSH CA's private key as `[sessions] ssh_ca_key` of replica 0's config names it
/// (relative paths are the config directory's, as the broker resolves them).
fn ca_key_path(r: &Replicas) -> PathBuf {
    let config = r.config_path(PAWD).unwrap();
    let table: toml::Table = std::fs::read_to_string(config).unwrap().parse().unwrap();
    let file = table
        .get("sessions")
        .and_then(|s| s.get("ssh_ca_key"))
        .and_then(toml::Value::as_str)
        .unwrap_or("ssh_user_ca");
    config.parent().unwrap().join(file)
}

/// The admin URL file of [`DB_TARGET`] as replica 0's config names it.
fn admin_url_path(r: &Replicas) -> PathBuf {
    let config = r.config_path(PAWD).unwrap();
    let table: toml::Table = std::fs::read_to_string(config).unwrap().parse().unwrap();
    let target = table["target"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"].as_str() == Some(DB_TARGET))
        .unwrap();
    PathBuf::from(target["admin_url_file"].as_str().unwrap())
}

/// The CA key's forms: its PEM text, each PEM body line that carries private-key bytes, the
/// 32-byte Ed25519 seed and the 64-byte keypair (seed and public key, as OpenSSH stores it)
/// in every encoding of [`scan::encodings`].
fn ca_needles(path: &Path) -> Vec<Needle> {
    let pem = std::fs::read_to_string(path).unwrap();
    let key = russh::keys::PrivateKey::from_openssh(&pem).unwrap();
    let pair = key.key_data().ed25519().expect("an Ed25519 CA");
    let seed = pair.private.to_bytes();
    let mut keypair = seed.to_vec();
    keypair.extend_from_slice(pair.public.as_ref());
    let mut needles = vec![scan::text("CA private key PEM", &pem)];
    needles.extend(scan::encodings("CA private key seed", &seed));
    needles.extend(scan::encodings("CA private keypair", &keypair));
    // The body lines: 70 base64 characters each, so line i holds blob bytes [52.5 i, 52.5
    // (i + 1)). Lines before the seed hold the header and the public key, the same for every
    // key with this public half; those holding a seed byte are secret.
    let body: Vec<&str> = pem
        .lines()
        .filter(|l| !l.starts_with("-----") && !l.is_empty())
        .collect();
    let blob = base64::engine::general_purpose::STANDARD
        .decode(body.concat())
        .unwrap();
    let at = blob
        .windows(seed.len())
        .position(|w| w == seed)
        .expect("the seed is in the key file");
    let mut chars = 0usize;
    for (i, line) in body.iter().enumerate() {
        let (first, last) = (chars * 3 / 4, (chars + line.len()) * 3 / 4);
        chars += line.len();
        if first < at + seed.len() && at < last {
            needles.push(scan::text(
                &format!("CA private key PEM line {}", i + 1),
                line,
            ));
        }
    }
    needles
}

/// The admin secret's forms: the URL and its password.
fn admin_needles(path: &Path) -> Vec<Needle> {
    let url = std::fs::read_to_string(path).unwrap().trim().to_owned();
    let parsed = reqwest::Url::parse(&url).unwrap();
    let password = parsed.password().expect("the admin URL has a password");
    assert!(password.len() >= 16, "a real password");
    vec![
        scan::text("PostgreSQL admin URL", &url),
        scan::text("PostgreSQL admin password", password),
    ]
}

/// A one-time credential's forms: its text and the 32 random bytes it encodes.
fn one_time(name: &str, text: &str) -> Vec<Needle> {
    let mut n = vec![scan::text(name, text)];
    if let Ok(raw) = URL_SAFE_NO_PAD.decode(text) {
        n.extend(scan::encodings(name, &raw));
    }
    n
}

/// Files holding the text `PRIVATE KEY` under `dir`.
fn private_key_files(dir: &Path) -> Vec<String> {
    let mut all = Places::new();
    all.add_tree(dir, &|_| false);
    all.find(b"PRIVATE KEY")
}

/// Waits until the audit has one `session_end` for each of `sids`.
async fn session_ends(r: &Replicas, sids: &[&str]) {
    let deadline = Instant::now() + GIVE_UP;
    loop {
        let audit = sqlite_audit(r).await;
        let ended = |sid: &str| {
            audit
                .iter()
                .any(|e| e["action"] == "session_end" && e["subject"] == sid)
        };
        if sids.iter().all(|s| ended(s)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no session_end for {sids:?}\n{}",
            r.log(PAWD)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// C4 and C7 after a full run. C4: the CA private key (PEM, its private PEM lines, the seed
/// and keypair as raw bytes, hex and base64) and the PostgreSQL admin URL and password are in
/// no API answer, no log (broker, sshd) and no file under the broker's directories but the two
/// files that hold them. C7: the sessions' tickets, the invite codes and the sign-in tokens
/// are in no file under those directories, and the files holding a private key are the same
/// before and after the sessions (the broker's own keys). Each scan finds each secret where
/// it is planted in a copy of a scanned place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c4_c7_no_ca_key_admin_secret_or_one_time_credential_in_answers_logs_or_files() {
    let pg = tokio::task::spawn_blocking(TempPostgres::start)
        .await
        .unwrap()
        .unwrap();
    pg.psql(&format!("CREATE ROLE {DB_ROLE} NOLOGIN")).unwrap();
    // The operator's secrets directory beside the broker's, as /etc/paw/secrets would be.
    let secrets = tempfile::Builder::new()
        .prefix("paw-secrets-")
        .tempdir()
        .unwrap();
    let url_file = secrets.path().join("db-1.admin-url");
    std::fs::write(&url_file, format!("{}\n", pg.url())).unwrap();
    let mut r = Replicas::start_with(Options {
        replicas: 1,
        store: Store::Sqlite,
        sshd: true,
        extra_config: policy(&url_file, &pg),
    })
    .await
    .unwrap();
    let url = r.url(PAWD);
    // Logs, configs and data: the replicas' directory holds the broker directory (config,
    // database, keys, recordings) and each replica's stdout/stderr log.
    let home = r.broker_dir().parent().unwrap().to_path_buf();
    let keys_before = private_key_files(&home);

    let mut answers = Answers::default();
    let (mut ada, ada_code) = enrolled(&r, "ada", &mut answers).await;
    let (mut bob, bob_code) = enrolled(&r, "bob", &mut answers).await;
    let tokens: Vec<String> = [&ada, &bob]
        .iter()
        .flat_map(|u| [u.access.clone().unwrap(), u.refresh.clone().unwrap()])
        .collect();

    // An SSH session through the front door: a shell, a command, `exit`.
    let web = Action::Request {
        entitlement: "web-root".into(),
        target: SSH_TARGET.into(),
        role: "root".into(),
        duration_secs: 30 * 60,
        justification: "rotate the worker logs".into(),
        ticket: None,
        start_at_ms: None,
    };
    let web_grant = approved(&r, &mut ada, &mut bob, &web, &mut answers).await;
    let minted = redeem(&r, &mut ada, &web_grant, SSH_TARGET, &mut answers).await;
    let ssh_sid = minted["session_id"].as_str().unwrap().to_owned();
    let ssh_ticket = minted["ticket"].as_str().unwrap().to_owned();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let term = terminal::open(credential(&minted), 80, 24, None, move |e| {
        let _ = tx.send(e);
    })
    .await
    .unwrap_or_else(|e| panic!("the front door refused the ticket: {e}\n{}", r.log(PAWD)));
    term.input(b"echo paw-$((6*7)); exit\n".to_vec())
        .await
        .unwrap();
    let mut output = Vec::new();
    let deadline = tokio::time::Instant::now() + GIVE_UP;
    let ended = loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(TermEvent::Output(d))) => output.extend(d),
            Ok(Some(TermEvent::Ended { reason, .. })) => break reason,
            Ok(None) | Err(_) => panic!(
                "the SSH session did not end: {}",
                String::from_utf8_lossy(&output)
            ),
        }
    };
    assert!(
        String::from_utf8_lossy(&output).contains("paw-42"),
        "no shell ({ended}): {}",
        String::from_utf8_lossy(&output)
    );
    drop(term);

    // A PostgreSQL session through the local forward, as the session's temporary role.
    let db = Action::Request {
        entitlement: "db-dba".into(),
        target: DB_TARGET.into(),
        role: DB_ROLE.into(),
        duration_secs: 30 * 60,
        justification: "vacuum the orders table".into(),
        ticket: None,
        start_at_ms: None,
    };
    let db_grant = approved(&r, &mut ada, &mut bob, &db, &mut answers).await;
    let minted = redeem(&r, &mut ada, &db_grant, DB_TARGET, &mut answers).await;
    let db_sid = minted["session_id"].as_str().unwrap().to_owned();
    let db_ticket = minted["ticket"].as_str().unwrap().to_owned();
    let fwd = paw_client::forward::start(credential(&minted), 0)
        .await
        .unwrap();
    let through = format!("postgres://anyone@{}/{}", fwd.local_addr(), pg.database());
    let mut conn = sqlx::PgConnection::connect(&through)
        .await
        .unwrap_or_else(|e| panic!("no database session: {e}\n{}", r.log(PAWD)));
    let role: String = sqlx::query_scalar("SELECT current_user::text")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(role.starts_with("paw_s_"), "the session's own role: {role}");
    conn.close().await.unwrap();
    fwd.stop();
    session_ends(&r, &[&ssh_sid, &db_sid]).await;

    // Everything else the users can ask for, then sign-out.
    for (user, path) in [
        (&ada, "/v1/me"),
        (&ada, "/v1/grants"),
        (&ada, "/v1/sessions"),
        (&ada, "/v1/sessions/history"),
        (&ada, "/v1/entitlements"),
        (&ada, "/v1/keys"),
        (&bob, "/v1/oversight"),
        (&bob, "/v1/sessions/history"),
        (&ada, "/v1/audit/witness"),
    ] {
        let reply = user.call(&url, "GET", path, None).await.unwrap();
        answers.keep(&format!("GET {path} as {}", user.name), &reply.body);
    }
    for user in [&ada, &bob] {
        let out = user
            .call(&url, "POST", "/v1/auth/sign-out", None)
            .await
            .unwrap();
        assert_eq!(out.status, 200, "sign-out: {:?}", out.body);
        answers.keep("sign-out", &out.body);
    }

    // The secrets, from where the broker reads them.
    let ca_path = ca_key_path(&r);
    let admin_path = admin_url_path(&r);
    let c4: Vec<Needle> = ca_needles(&ca_path)
        .into_iter()
        .chain(admin_needles(&admin_path))
        .collect();
    let mut c7: Vec<Needle> = one_time("SSH session ticket", &ssh_ticket);
    c7.extend(one_time("PostgreSQL session ticket", &db_ticket));
    c7.push(scan::text("ada's invite code", &ada_code));
    c7.push(scan::text("bob's invite code", &bob_code));
    for (i, t) in tokens.iter().enumerate() {
        c7.push(scan::text(&format!("sign-in token {i}"), t));
    }
    // A certificate in OpenSSH's text form names its type; in the binary form, base64'd, the
    // blob starts with the length-prefixed type.
    c7.push(scan::text("an SSH certificate", "-cert-v01@openssh.com"));
    c7.push(scan::text(
        "an SSH certificate (base64 blob)",
        "AAAAIHNzaC1lZDI1NTE5LWNlcnQtdjAxQG9wZW5zc2guY29t",
    ));

    // Excluded from the file scans, each for the one secret it is meant to hold: the CA key
    // file (C4's CA key; every other file, its `.pub` included, is scanned) and the admin URL
    // file (C4's admin secret).
    let excluded = [ca_path.clone(), admin_path.clone()];
    let skip = |p: &Path| excluded.iter().any(|e| e == p);
    let mut report = Vec::new();
    for phase in ["running", "stopped"] {
        let mut places = Places::new();
        answers.add_to(&mut places);
        places.add("session output", output.clone());
        places.add("sshd log", r.sshd().unwrap().log());
        places.add(
            "audit records (decoded)",
            serde_json::to_vec(&sqlite_audit(&r).await).unwrap(),
        );
        let mut disk = Places::new();
        let mut files = disk.add_tree(&home, &skip);
        files.extend(disk.add_tree(secrets.path(), &skip));
        places.extend(&disk);
        let names: Vec<String> = files
            .iter()
            .map(|f| f.strip_prefix(home.parent().unwrap()).unwrap_or(f))
            .map(|f| f.display().to_string())
            .collect();
        // The scans cover what they claim: the database with its WAL while the broker runs,
        // the recording, the log, the configs.
        let has = |suffix: &str| files.iter().any(|f| f.to_string_lossy().ends_with(suffix));
        for want in [
            "pawd.db",
            "replica-0.log",
            "replica-0.toml",
            "pawd.toml",
            &format!("{ssh_sid}.cast"),
        ] {
            assert!(has(want), "{phase}: {want} not scanned: {names:?}");
        }
        if phase == "running" {
            assert!(has("pawd.db-wal"), "no WAL scanned: {names:?}");
        }

        let found = places.leaks(&c4);
        assert!(found.is_empty(), "{phase}: C4 leaks: {found:#?}");
        let found = disk.leaks(&c7);
        assert!(
            found.is_empty(),
            "{phase}: C7: reusable credentials on disk: {found:#?}"
        );
        // The broker does keep the tickets' SHA-256 (what it checks a redeem against): the
        // scan reads the database where the broker records them.
        for t in [&ssh_ticket, &db_ticket] {
            let hash = hex::encode(Sha256::digest(t.as_bytes()));
            let at = disk.find(hash.as_bytes());
            assert!(
                at.iter().any(|p| p.contains("pawd.db")),
                "{phase}: the ticket's hash is not in the database files: {at:?}"
            );
        }
        assert_eq!(
            private_key_files(&home),
            keys_before,
            "{phase}: a file with a private key appeared"
        );

        // Negative controls: one encoding of each secret planted in a copy of a scanned place
        // is found there, and only there.
        let db_file = disk
            .names()
            .into_iter()
            .find(|n| n.ends_with("pawd.db"))
            .unwrap()
            .to_owned();
        let log = disk
            .names()
            .into_iter()
            .find(|n| n.ends_with("replica-0.log"))
            .unwrap()
            .to_owned();
        let cast = disk
            .names()
            .into_iter()
            .find(|n| n.ends_with(".cast"))
            .unwrap()
            .to_owned();
        let pick = |set: &[Needle], what: &str| -> Needle {
            set.iter().find(|n| n.what == what).unwrap().clone()
        };
        let answer0 = places.names()[0].to_owned();
        for (set, needle, place, scanned) in [
            (&c4, "CA private key PEM (text)", &log, &places),
            (&c4, "CA private key seed (raw bytes)", &db_file, &places),
            (&c4, "CA private keypair (base64)", &answer0, &places),
            (&c4, "CA private key seed (hex)", &cast, &places),
            (&c4, "PostgreSQL admin URL (text)", &log, &places),
            (&c4, "PostgreSQL admin password (text)", &answer0, &places),
            (&c7, "SSH session ticket (text)", &db_file, &disk),
            (&c7, "PostgreSQL session ticket (raw bytes)", &cast, &disk),
            (&c7, "sign-in token 1 (text)", &log, &disk),
            (&c7, "an SSH certificate (text)", &db_file, &disk),
        ] {
            let n = pick(set, needle);
            let found = scanned.planted(place, &n.bytes).leaks(set);
            // Found where it was planted, and nowhere else (other forms of the same secret
            // may match too: a URL holds its password).
            assert!(
                found.contains(&format!("{needle} in {place}"))
                    && found.iter().all(|f| f.ends_with(&format!(" in {place}"))),
                "{phase}: the negative control of {needle} in {place}: {found:#?}"
            );
        }
        report.push(format!(
            "{phase}: {} places, {} bytes ({} files), {} C4 and {} C7 needles: nothing found",
            places.len(),
            places.total_bytes(),
            files.len(),
            c4.len(),
            c7.len()
        ));
        if phase == "running" {
            eprintln!("files scanned: {names:#?}");
            // Stopped: whatever a shutdown writes (a WAL checkpoint into the database, the
            // last log lines) is scanned too.
            let status = r.stop(PAWD).await.unwrap();
            assert!(
                status.success(),
                "pawd stopped with {status}\n{}",
                r.log(PAWD)
            );
        }
    }
    for line in report {
        eprintln!("{line}");
    }
    drop(secrets);
}
