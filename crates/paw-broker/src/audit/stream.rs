//! The broker's audit log streamed to a SIEM, as JSON lines: appended to a file
//! (`[audit] stream_file`) and/or POSTed in batches to an HTTP endpoint (`[audit] stream_url`).
//!
//! Rules:
//! - Only committed records are streamed: each sink reads `audit_log` after its position.
//!   Every append runs under the audit lock and takes the next seq, so seq order is commit
//!   order and reading "after seq N" can never skip a record that commits later.
//! - In order, no gap, no duplicate. The file sink's position is the file's own last line:
//!   each batch is appended and fsynced before the position moves; a torn last line (a crash
//!   mid-write) is cut off at start and written again. The HTTP sink's position is the last seq
//!   the endpoint acknowledged (2xx), kept in `audit_stream`; a failed POST is retried with
//!   backoff from the same record. Only an acknowledgement lost with the broker between the 2xx
//!   and its own write can repeat a batch; every line carries its `seq` for the receiver.
//! - Lines are paw-audit's export ([`paw_audit::to_json_line`]): control, line-separator and
//!   bidi characters escaped (case D5), plus the record's `prev_hash` and `hash` so the SIEM
//!   can verify the chain itself.
//! - A sink that fails never blocks the broker: streaming is a copy of the log, which stays
//!   authoritative in the database.

use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use paw_audit::Record;

use crate::base::clock::Clock;
use crate::base::error::BrokerError;
use crate::base::error::Result;
use crate::config::AuditConfig;
use crate::store::Db;
use crate::with_pool;

/// How often an idle sink looks for new records.
pub const POLL: Duration = Duration::from_millis(250);
/// Records per batch (one write + fsync, or one POST).
const BATCH: i64 = 500;
/// First wait after a failure; doubled per failure up to [`BACKOFF_MAX`].
const BACKOFF_START: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// The tail read at start to find the file's last line, grown until a whole line fits.
const TAIL_START: u64 = 64 * 1024;

/// Starts the configured sinks; none configured, no task. A file or client that cannot be set
/// up stops the broker from starting (a SIEM feed that silently never starts is worse).
pub fn spawn(
    config: &AuditConfig,
    db: &Db,
    clock: Arc<dyn Clock>,
) -> Result<Vec<tokio::task::JoinHandle<()>>> {
    let mut tasks = Vec::new();
    if let Some(path) = &config.stream_file {
        let sink = FileSink::open(path)?;
        tracing::info!(path = %path.display(), after = sink.last_seq, "audit stream to file");
        tasks.push(tokio::spawn(run_file(sink, db.clone())));
    }
    if let Some(url) = &config.stream_url {
        let sink = HttpSink::new(url, config.stream_ca_file.as_deref())?;
        tasks.push(tokio::spawn(run_http(sink, db.clone(), clock)));
    }
    Ok(tasks)
}

/// One record as a line (no newline): paw-audit's escaped export of the event, with the hashes.
pub fn line(record: &Record) -> Result<String> {
    let event = paw_audit::to_json_line(&record.event)
        .map_err(|e| BrokerError::Internal(format!("audit stream: {e}")))?;
    // A compact JSON object: its last byte is the closing brace, and hex needs no escaping.
    let body = event
        .strip_suffix('}')
        .ok_or_else(|| BrokerError::Internal("audit stream: not a JSON object".into()))?;
    Ok(format!(
        "{body},\"prev_hash\":\"{}\",\"hash\":\"{}\"}}",
        hex::encode(record.prev_hash),
        hex::encode(record.hash)
    ))
}

fn lines(records: &[Record]) -> Result<String> {
    let mut out = String::new();
    for r in records {
        out.push_str(&line(r)?);
        out.push('\n');
    }
    Ok(out)
}

fn next_backoff(d: Duration) -> Duration {
    (d * 2).min(BACKOFF_MAX)
}

async fn page(db: &Db, after: u64) -> Result<Vec<Record>> {
    let after = i64::try_from(after)
        .map_err(|_| BrokerError::Internal("audit stream: seq out of range".into()))?;
    crate::audit::records(db, after, BATCH).await
}

// ---- file ------------------------------------------------------------------------------------

/// The file sink: the open file, its length (the end of its last whole line) and that line's
/// seq.
struct FileSink {
    path: PathBuf,
    file: Option<std::fs::File>,
    len: u64,
    last_seq: u64,
}

impl FileSink {
    /// Opens (creating, mode 0600: it is the audit log) and finds where the file left off.
    fn open(path: &Path) -> Result<Self> {
        let ctx = |e| BrokerError::io(format!("audit.stream_file {}", path.display()), e);
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)
            .map_err(ctx)?;
        let (len, last_seq) = last_line(&mut file).map_err(|e| match e {
            Tail::Io(e) => ctx(e),
            Tail::Bad(why) => BrokerError::Config(format!(
                "audit.stream_file {}: {why}; move it aside to start a new file",
                path.display()
            )),
        })?;
        let size = file.metadata().map_err(ctx)?.len();
        if size != len {
            // A line torn by a crash mid-write: never fsynced as a whole, so never "sent".
            tracing::warn!(path = %path.display(), bytes = size - len, "cutting a torn last line off the audit stream file");
            file.set_len(len).map_err(ctx)?;
            file.sync_all().map_err(ctx)?;
        }
        Ok(Self {
            path: path.to_owned(),
            file: Some(file),
            len,
            last_seq,
        })
    }

    /// Appends `records` (which follow `last_seq`) and fsyncs. On failure the file is cut back
    /// to where it was, so a retry never leaves half a line behind.
    async fn write(&mut self, records: &[Record]) -> Result<()> {
        let text = lines(records)?;
        let last = records.last().map_or(self.last_seq, |r| r.event.seq);
        let mut file = self
            .file
            .take()
            .ok_or_else(|| BrokerError::Internal("audit stream file is gone".into()))?;
        let len = self.len;
        let (file, written) = tokio::task::spawn_blocking(move || {
            let out = file
                .write_all(text.as_bytes())
                .and_then(|()| file.sync_data());
            if out.is_err() {
                // Best effort; if even this fails the file keeps a torn line, which the next
                // start cuts off (the position in memory has not moved).
                let _ = file.set_len(len);
            }
            let added = text.len() as u64;
            (file, out.map(|()| len + added))
        })
        .await
        .map_err(|e| BrokerError::Internal(format!("audit stream task: {e}")))?;
        self.file = Some(file);
        let new_len = written.map_err(|e| {
            BrokerError::io(format!("audit.stream_file {}", self.path.display()), e)
        })?;
        self.len = new_len;
        self.last_seq = last;
        Ok(())
    }
}

enum Tail {
    Io(std::io::Error),
    Bad(String),
}

/// The end of the file's last whole line and that line's seq (0 for an empty file).
fn last_line(file: &mut std::fs::File) -> std::result::Result<(u64, u64), Tail> {
    let size = file.metadata().map_err(Tail::Io)?.len();
    let mut want = TAIL_START;
    loop {
        let start = size.saturating_sub(want);
        file.seek(SeekFrom::Start(start)).map_err(Tail::Io)?;
        let mut buf = Vec::new();
        file.read_to_end(&mut buf).map_err(Tail::Io)?;
        // Everything after the last newline is a torn line.
        let Some(end) = buf.iter().rposition(|&b| b == b'\n') else {
            if start == 0 {
                return Ok((0, 0));
            }
            want = want.saturating_mul(2);
            continue;
        };
        let from = match buf[..end].iter().rposition(|&b| b == b'\n') {
            Some(i) => i + 1,
            None if start == 0 => 0,
            None => {
                want = want.saturating_mul(2);
                continue;
            }
        };
        let seq = serde_json::from_slice::<serde_json::Value>(&buf[from..end])
            .ok()
            .and_then(|v| v["seq"].as_u64())
            .ok_or_else(|| Tail::Bad("its last line is not an audit record".into()))?;
        return Ok((start + end as u64 + 1, seq));
    }
}

async fn run_file(mut sink: FileSink, db: Db) {
    let mut backoff = BACKOFF_START;
    loop {
        let step = match page(&db, sink.last_seq).await {
            Ok(records) if records.is_empty() => {
                tokio::time::sleep(POLL).await;
                continue;
            }
            Ok(records) => sink.write(&records).await,
            Err(e) => Err(e),
        };
        match step {
            Ok(()) => backoff = BACKOFF_START,
            Err(e) => {
                tracing::warn!(error = %e, after = sink.last_seq, "audit stream to file failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = next_backoff(backoff);
            }
        }
    }
}

// ---- HTTP ------------------------------------------------------------------------------------

struct HttpSink {
    url: String,
    client: reqwest::Client,
}

impl HttpSink {
    fn new(url: &str, ca_file: Option<&Path>) -> Result<Self> {
        let mut roots = rustls::RootCertStore::empty();
        if let Some(ca) = ca_file {
            let pem = std::fs::read(ca).map_err(|e| {
                BrokerError::Config(format!("audit.stream_ca_file {}: {e}", ca.display()))
            })?;
            for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
                let cert =
                    cert.map_err(|e| BrokerError::Config(format!("audit.stream_ca_file: {e}")))?;
                roots
                    .add(cert)
                    .map_err(|e| BrokerError::Config(format!("audit.stream_ca_file: {e}")))?;
            }
        } else if url.starts_with("https:") {
            return Err(BrokerError::Config(
                "audit.stream_ca_file is required for an https stream_url (for a public service, \
                 point it at the system bundle, e.g. /etc/ssl/certs/ca-certificates.crt)"
                    .into(),
            ));
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| BrokerError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .timeout(HTTP_TIMEOUT)
            // The log is not to be handed on to wherever a redirect points.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| BrokerError::Config(format!("audit stream client: {e}")))?;
        Ok(Self {
            url: url.to_owned(),
            client,
        })
    }

    async fn post(&self, records: &[Record]) -> Result<()> {
        let res = self
            .client
            .post(&self.url)
            .header("content-type", "application/x-ndjson")
            .body(lines(records)?)
            .send()
            .await
            .map_err(|e| BrokerError::Internal(format!("audit stream: {}", e.without_url())))?;
        if !res.status().is_success() {
            return Err(BrokerError::Internal(format!(
                "audit stream: the endpoint answered {}",
                res.status()
            )));
        }
        Ok(())
    }
}

async fn acked(db: &Db, sink: &str) -> Result<u64> {
    let seq: Option<i64> = with_pool!(db, pool => {
        sqlx::query_scalar("SELECT acked_seq FROM audit_stream WHERE sink = $1")
            .bind(sink)
            .fetch_optional(pool)
            .await?
    });
    Ok(seq.and_then(|s| u64::try_from(s).ok()).unwrap_or(0))
}

async fn ack(db: &Db, sink: &str, seq: u64, now: i64) -> Result<()> {
    let seq = i64::try_from(seq)
        .map_err(|_| BrokerError::Internal("audit stream: seq out of range".into()))?;
    with_pool!(db, pool => {
        sqlx::query(
            "INSERT INTO audit_stream (sink, acked_seq, acked_at) VALUES ($1, $2, $3) \
             ON CONFLICT (sink) DO UPDATE SET acked_seq = excluded.acked_seq, \
             acked_at = excluded.acked_at",
        )
        .bind(sink)
        .bind(seq)
        .bind(now)
        .execute(pool)
        .await?;
    });
    Ok(())
}

async fn run_http(sink: HttpSink, db: Db, clock: Arc<dyn Clock>) {
    let mut backoff = BACKOFF_START;
    // Where the endpoint left off; read again after a failure, so a database that was down at
    // start does not make the stream begin from the first record.
    let mut cursor: Option<u64> = None;
    loop {
        let step = async {
            let after = match cursor {
                Some(c) => c,
                None => {
                    let c = acked(&db, &sink.url).await?;
                    tracing::info!(after = c, "audit stream to HTTP endpoint");
                    cursor = Some(c);
                    c
                }
            };
            let records = page(&db, after).await?;
            let Some(last) = records.last().map(|r| r.event.seq) else {
                return Ok(false);
            };
            sink.post(&records).await?;
            // Acknowledged: move on in memory even if storing the position fails (it is then
            // re-sent only after a restart).
            cursor = Some(last);
            if let Err(e) = ack(&db, &sink.url, last, clock.now_ms()).await {
                tracing::warn!(error = %e, seq = last, "audit stream position not stored");
            }
            Ok::<bool, BrokerError>(true)
        }
        .await;
        match step {
            Ok(true) => backoff = BACKOFF_START,
            Ok(false) => tokio::time::sleep(POLL).await,
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "audit stream to HTTP failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = next_backoff(backoff);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use paw_audit::{Chain, Event, Outcome};
    use serde_json::json;

    fn records(n: u64) -> Vec<Record> {
        let mut c = Chain::new();
        (1..=n)
            .map(|seq| {
                c.append(Event {
                    seq,
                    time_ms: 1,
                    actor: "mallory\n{\"seq\":99}\u{202e}".into(),
                    action: "grant.request".into(),
                    subject: "db".into(),
                    outcome: Outcome::Started,
                    detail: json!({"why": "a\u{2028}b"}),
                })
                .unwrap()
            })
            .collect()
    }

    #[test]
    fn d5_a_line_is_one_escaped_json_object_with_the_hashes() {
        let r = &records(1)[0];
        let l = line(r).unwrap();
        assert!(!l.contains('\n') && l.is_ascii(), "{l}");
        assert!(l.contains("\\u202e") && l.contains("\\u2028"), "{l}");
        let v: serde_json::Value = serde_json::from_str(&l).unwrap();
        assert_eq!(v["seq"], 1);
        assert_eq!(v["actor"], "mallory\n{\"seq\":99}\u{202e}");
        assert_eq!(v["hash"], hex::encode(r.hash));
        assert_eq!(v["prev_hash"], hex::encode(r.prev_hash));
    }

    #[test]
    fn the_last_whole_line_is_found_and_a_torn_one_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        assert_eq!(FileSink::open(&path).unwrap().last_seq, 0);
        let mut text = lines(&records(3)).unwrap();
        let whole = text.len() as u64;
        text.push_str("{\"seq\":4,\"act");
        std::fs::write(&path, &text).unwrap();
        let sink = FileSink::open(&path).unwrap();
        assert_eq!((sink.last_seq, sink.len), (3, whole));
        assert_eq!(std::fs::metadata(&path).unwrap().len(), whole);
        // A file whose last line is not a record is not appended to.
        std::fs::write(&path, "hello\n").unwrap();
        assert!(FileSink::open(&path).is_err());
    }

    #[test]
    fn a_long_last_line_is_found_beyond_the_first_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let mut c = Chain::new();
        let big: Vec<Record> = (1..=3)
            .map(|seq| {
                c.append(Event {
                    seq,
                    time_ms: 1,
                    actor: "a".into(),
                    action: "x".into(),
                    subject: "s".into(),
                    outcome: Outcome::Success,
                    detail: json!({"blob": "z".repeat(100_000)}),
                })
                .unwrap()
            })
            .collect();
        std::fs::write(&path, lines(&big).unwrap()).unwrap();
        assert_eq!(FileSink::open(&path).unwrap().last_seq, 3);
    }
}
