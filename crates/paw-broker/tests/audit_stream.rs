//! The broker's audit log streamed to a SIEM as JSON lines (`[audit] stream_file`,
//! `[audit] stream_url`): every record in order, none missing and none twice, across restarts,
//! a torn last line and an endpoint that fails its first attempts; hostile text escaped (D5).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use paw_audit::{Event, Outcome, Record};
use paw_broker::audit::{self, Entry};
use paw_broker::base::clock::SystemClock;
use paw_broker::config::Config;
use paw_broker::server::App;
use serde_json::{json, Value};

fn config(dir: &Path, audit: &str) -> Config {
    config_on(dir, None, audit)
}

/// On the database at `url` (SQLite in `dir` if `None`).
fn config_on(dir: &Path, url: Option<String>, audit: &str) -> Config {
    let db =
        url.unwrap_or_else(|| format!("sqlite://{}?mode=rwc", dir.join("broker.db").display()));
    let text = format!(
        "listen = \"127.0.0.1:0\"\n\
         database_url = \"{db}\"\n\
         [tls]\ncert = \"unused.pem\"\nkey = \"unused.key\"\n\
         [webauthn]\nrp_id = \"localhost\"\norigin = \"https://localhost:8443\"\n\
         [audit]\n{audit}\n"
    );
    Config::from_toml(&text, dir, Vec::new()).unwrap()
}

async fn start(config: &Config) -> App {
    paw_broker::server::app(config, Arc::new(SystemClock))
        .await
        .unwrap()
}

async fn stop(app: App) {
    for t in &app.tasks {
        t.abort();
    }
    for t in app.tasks {
        let _ = t.await;
    }
    app.db.close().await;
}

/// Appends `n` records, one with hostile text (D5).
async fn record(app: &App, n: usize, tag: &str) {
    for i in 0..n {
        audit::record(
            &app.db,
            1_000,
            Entry::new(
                "ada",
                "grant.request",
                format!("db-{tag}-{i}"),
                Outcome::Started,
                json!({"justification": format!("{tag}\n{{\"seq\":1}}\u{202e}\u{1b}[2K")}),
            ),
        )
        .await
        .unwrap();
    }
}

async fn head(app: &App) -> u64 {
    audit::verify(&app.db).await.unwrap()
}

/// Parses streamed lines back into records: they must be raw-ASCII, one object each.
fn parse(text: &str) -> Vec<Record> {
    text.lines()
        .map(|l| {
            assert!(
                l.chars().all(|c| c.is_ascii() && !c.is_ascii_control()),
                "raw {l}"
            );
            let v: Value = serde_json::from_str(l).unwrap();
            let hash = |k: &str| -> [u8; 32] {
                hex::decode(v[k].as_str().unwrap())
                    .unwrap()
                    .try_into()
                    .unwrap()
            };
            let event: Event = serde_json::from_value(json!({
                "seq": v["seq"], "time_ms": v["time_ms"], "actor": v["actor"],
                "action": v["action"], "subject": v["subject"], "outcome": v["outcome"],
                "detail": v["detail"],
            }))
            .unwrap();
            Record {
                event,
                prev_hash: hash("prev_hash"),
                hash: hash("hash"),
            }
        })
        .collect()
}

async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..200 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for: {what}");
}

fn seqs(records: &[Record]) -> Vec<u64> {
    records.iter().map(|r| r.event.seq).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn d5_the_file_stream_has_every_record_once_in_order_across_restarts_and_a_torn_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), "stream_file = \"audit.jsonl\"");
    let file = dir.path().join("audit.jsonl");
    assert_eq!(config.audit.stream_file.as_deref(), Some(file.as_path()));
    let read = || parse(&std::fs::read_to_string(&file).unwrap_or_default());

    let app = start(&config).await;
    record(&app, 5, "first").await;
    let want = head(&app).await;
    eventually("the first records are in the file", || {
        read().last().map(|r| r.event.seq) == Some(want)
    })
    .await;
    stop(app).await;

    // A crash mid-write left half a line; records were added while the broker was down.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .unwrap();
    std::io::Write::write_all(&mut f, b"{\"seq\":").unwrap();
    drop(f);
    let db = paw_broker::store::Db::connect(&config.database_url, paw_broker::store::Create::Never)
        .await
        .unwrap();
    for i in 0..3 {
        audit::record(
            &db,
            2_000,
            Entry::new(
                "ada",
                "grant.release",
                format!("g-{i}"),
                Outcome::Success,
                json!({}),
            ),
        )
        .await
        .unwrap();
    }
    db.close().await;

    let app = start(&config).await;
    record(&app, 4, "second").await;
    let want = head(&app).await;
    eventually("the file catches up after the restart", || {
        read().last().map(|r| r.event.seq) == Some(want)
    })
    .await;
    let streamed = read();
    assert_eq!(seqs(&streamed), (1..=want).collect::<Vec<_>>());
    // The same records as the log, chain and all; hostile text round-trips, escaped.
    paw_audit::verify(&streamed).unwrap();
    assert_eq!(streamed, audit::records(&app.db, 0, 100_000).await.unwrap());
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains("\\u202e") && text.contains("\\u001b"),
        "{text}"
    );
    // Only the owner may read the copy of the log.
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    stop(app).await;
}

/// A tiny SIEM: fails the first `fail` POSTs, then keeps every record it is sent.
struct Siem {
    url: String,
    posts: Arc<Mutex<usize>>,
    got: Arc<Mutex<Vec<Record>>>,
    task: tokio::task::JoinHandle<()>,
}

async fn siem(fail: usize) -> Siem {
    use axum::routing::post;
    let posts = Arc::new(Mutex::new(0usize));
    let got = Arc::new(Mutex::new(Vec::new()));
    let (p, g) = (posts.clone(), got.clone());
    let app = axum::Router::new().route(
        "/ingest",
        post(move |headers: axum::http::HeaderMap, body: String| {
            let (p, g) = (p.clone(), g.clone());
            async move {
                assert_eq!(headers["content-type"], "application/x-ndjson");
                let n = {
                    let mut n = p.lock().unwrap();
                    *n += 1;
                    *n
                };
                if n <= fail {
                    return axum::http::StatusCode::SERVICE_UNAVAILABLE;
                }
                g.lock().unwrap().extend(parse(&body));
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/ingest", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Siem {
        url,
        posts,
        got,
        task,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_stream_delivers_every_record_exactly_once_despite_failures_and_restarts() {
    http_stream(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_stream_delivers_every_record_exactly_once_despite_failures_and_restarts_postgres()
{
    let pg = paw_tests::postgres::TempPostgres::start().unwrap();
    http_stream(Some(pg.url())).await;
}

async fn http_stream(url: Option<String>) {
    let dir = tempfile::tempdir().unwrap();
    let s = siem(3).await;
    let config = config_on(dir.path(), url, &format!("stream_url = \"{}\"", s.url));

    let app = start(&config).await;
    record(&app, 6, "one").await;
    let want = head(&app).await;
    let got = s.got.clone();
    eventually("the endpoint has everything", || {
        got.lock().unwrap().last().map(|r| r.event.seq) == Some(want)
    })
    .await;
    assert!(
        *s.posts.lock().unwrap() > 3,
        "it failed first, then succeeded"
    );
    stop(app).await;

    // Restart: resumes after the last acknowledged record, stored in the broker's database.
    let app = start(&config).await;
    record(&app, 2, "two").await;
    let want = head(&app).await;
    eventually("the endpoint has the new records", || {
        got.lock().unwrap().last().map(|r| r.event.seq) == Some(want)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(600)).await; // nothing more arrives
    let received = got.lock().unwrap().clone();
    assert_eq!(seqs(&received), (1..=want).collect::<Vec<_>>());
    paw_audit::verify(&received).unwrap();
    stop(app).await;
    s.task.abort();
}

#[test]
fn the_stream_url_follows_the_webhook_rule() {
    let dir = tempfile::tempdir().unwrap();
    let text = |audit: &str| {
        format!(
            "listen = \"127.0.0.1:0\"\ndatabase_url = \"sqlite://x.db\"\n\
             [tls]\ncert = \"c\"\nkey = \"k\"\n\
             [webauthn]\nrp_id = \"localhost\"\norigin = \"https://localhost:8443\"\n\
             [audit]\n{audit}\n"
        )
    };
    for bad in [
        "stream_url = \"http://siem.example/ingest\"",
        "stream_url = \"ftp://127.0.0.1/x\"",
        "stream_url = \"not a url\"",
        "stream_typo = \"x\"",
    ] {
        assert!(
            Config::from_toml(&text(bad), dir.path(), Vec::new()).is_err(),
            "{bad}"
        );
    }
    let c = Config::from_toml(
        &text("stream_url = \"https://siem.example/ingest\"\nstream_ca_file = \"ca.pem\""),
        dir.path(),
        Vec::new(),
    )
    .unwrap();
    assert_eq!(c.audit.stream_ca_file, Some(dir.path().join("ca.pem")));
}
