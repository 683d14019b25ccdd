//! asciicast v2 recordings of SSH sessions, written by the broker as the bytes pass through.
//!
//! Rules: a recording that cannot be created refuses the session, and one that cannot be
//! written ends it (case C6) — every method returns the I/O error so the proxy can act on it.
//! The SHA-256 of the exact bytes on disk is computed as they are written and goes into the
//! audit log when the file is closed (after an fsync), so a recording edited later no longer
//! matches its record. Input typed after what looks like a password prompt is not recorded
//! (the broker cannot see the target's terminal echo flag; a prompt is the best signal it has).
//! Markers (`m` events) are chapters the broker adds itself — a decision about a command line —
//! so a replay can jump to them; they are hashed like every other line.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::json;
use sha2::{Digest, Sha256};

/// A recording being written. Not `Sync`: one proxy task owns it.
pub struct Recorder {
    path: PathBuf,
    file: std::io::BufWriter<std::fs::File>,
    hash: Sha256,
    bytes: u64,
    started: Instant,
    /// The tail of the output, to spot a password prompt.
    tail: Vec<u8>,
    /// Set while input follows a password prompt; cleared by the next newline typed.
    secret_input: bool,
}

/// A finished recording, as the audit log records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    pub path: PathBuf,
    pub sha256: String,
    pub bytes: u64,
}

const PROMPT_WORDS: [&str; 4] = ["password", "passphrase", "passcode", "pin"];
const TAIL: usize = 128;
/// The longest marker label, in characters (the cut ends in `…`). A label is a decision and
/// the command line it was about, and a chapter list shows it on one line; a pasted script
/// as the "command" must not turn every marker into a copy of it — the input events already
/// hold the whole line.
pub const MAX_MARKER_CHARS: usize = 200;

impl Recorder {
    /// Creates `<dir>/<session_id>.cast` (never overwriting) and writes the header.
    pub fn create(
        dir: &Path,
        session_id: &str,
        cols: u32,
        rows: u32,
        unix_secs: i64,
        title: &str,
        term: &str,
    ) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("{session_id}.cast"));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?;
        let mut r = Self {
            path,
            file: std::io::BufWriter::with_capacity(64 * 1024, file),
            hash: Sha256::new(),
            bytes: 0,
            started: Instant::now(),
            tail: Vec::new(),
            secret_input: false,
        };
        let header = json!({
            "version": 2,
            "width": cols.max(1),
            "height": rows.max(1),
            "timestamp": unix_secs,
            "title": title,
            "env": {"TERM": term},
        });
        r.line(&header.to_string())?;
        Ok(r)
    }

    fn line(&mut self, s: &str) -> std::io::Result<()> {
        self.file.write_all(s.as_bytes())?;
        self.file.write_all(b"\n")?;
        // Reach the kernel per event: a full disk shows up now, not at the end (C6).
        self.file.flush()?;
        self.hash.update(s.as_bytes());
        self.hash.update(b"\n");
        self.bytes += s.len() as u64 + 1;
        Ok(())
    }

    fn event(&mut self, code: &str, data: &str) -> std::io::Result<()> {
        let t = self.started.elapsed().as_secs_f64();
        let ev = json!([(t * 1e6).round() / 1e6, code, data]);
        self.line(&ev.to_string())
    }

    /// Output from the target.
    pub fn output(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.tail.extend_from_slice(data);
        if self.tail.len() > TAIL {
            let cut = self.tail.len() - TAIL;
            self.tail.drain(..cut);
        }
        if looks_like_secret_prompt(&self.tail) {
            self.secret_input = true;
        }
        self.event("o", &String::from_utf8_lossy(data))
    }

    /// Input from the user; withheld while it answers a password prompt.
    pub fn input(&mut self, data: &[u8]) -> std::io::Result<()> {
        if self.secret_input {
            if data.iter().any(|b| *b == b'\r' || *b == b'\n') {
                self.secret_input = false;
                self.tail.clear();
            }
            return Ok(());
        }
        self.event("i", &String::from_utf8_lossy(data))
    }

    /// The terminal changed size.
    pub fn resize(&mut self, cols: u32, rows: u32) -> std::io::Result<()> {
        self.event("r", &format!("{cols}x{rows}"))
    }

    /// A chapter mark at the current time: an asciicast v2 marker event `[t, "m", label]`,
    /// with `label` cut to [`MAX_MARKER_CHARS`]. The caller builds the label
    /// (`deny: rm -rf /tmp/x`); replays mask it like the typed input.
    pub fn marker(&mut self, label: &str) -> std::io::Result<()> {
        self.event("m", &cap_label(label))
    }

    /// Flushes, fsyncs and returns the hash of what is on disk.
    pub fn finish(mut self) -> std::io::Result<Finished> {
        self.file.flush()?;
        self.file.get_ref().sync_all()?;
        Ok(Finished {
            path: self.path,
            sha256: hex::encode(self.hash.finalize()),
            bytes: self.bytes,
        })
    }
}

fn cap_label(label: &str) -> std::borrow::Cow<'_, str> {
    match label.char_indices().nth(MAX_MARKER_CHARS) {
        None => label.into(),
        Some(_) => {
            let keep: String = label.chars().take(MAX_MARKER_CHARS - 1).collect();
            format!("{keep}…").into()
        }
    }
}

fn looks_like_secret_prompt(tail: &[u8]) -> bool {
    let text = String::from_utf8_lossy(tail).to_lowercase();
    let trimmed = text.trim_end();
    let Some(before) = trimmed.strip_suffix(':') else {
        return false;
    };
    let last_line = before.rsplit(['\n', '\r']).next().unwrap_or(before);
    PROMPT_WORDS.iter().any(|w| last_line.contains(w))
}

/// SHA-256 of a file's bytes, to check a recording against its audit record.
pub fn file_sha256(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h)?;
    Ok(hex::encode(h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_asciicast_v2_and_hashes_what_is_on_disk() {
        let d = tempfile::tempdir().unwrap();
        let mut r = Recorder::create(d.path(), "s1", 80, 24, 1_800_000_000, "t", "xterm").unwrap();
        r.output(b"$ ").unwrap();
        r.input(b"whoami\r").unwrap();
        r.output(b"root\r\n\xff").unwrap();
        r.resize(100, 30).unwrap();
        let f = r.finish().unwrap();
        assert_eq!(file_sha256(&f.path).unwrap(), f.sha256);
        let text = std::fs::read_to_string(&f.path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0]["version"], 2);
        assert_eq!(lines[0]["width"], 80);
        assert_eq!(lines[1][1], "o");
        assert_eq!(lines[2][1], "i");
        assert_eq!(lines[2][2], "whoami\r");
        assert_eq!(lines[4][1], "r");
        assert_eq!(lines[4][2], "100x30");
        assert_eq!(f.bytes, text.len() as u64);
    }

    #[test]
    fn markers_are_events_in_time_order_and_hashed() {
        let d = tempfile::tempdir().unwrap();
        let mut r = Recorder::create(d.path(), "s5", 80, 24, 0, "t", "xterm").unwrap();
        r.output(b"$ ").unwrap();
        r.marker("deny: rm -rf /tmp/x").unwrap();
        r.input(b"ls\r").unwrap();
        r.marker("warn: echo \"quoted\" \\ back\ttab\u{1b}[31m")
            .unwrap();
        r.marker(&"é".repeat(MAX_MARKER_CHARS + 50)).unwrap();
        let f = r.finish().unwrap();
        let text = std::fs::read_to_string(&f.path).unwrap();
        assert_eq!(file_sha256(&f.path).unwrap(), f.sha256);
        assert_eq!(f.bytes, text.len() as u64);
        let events: Vec<serde_json::Value> = text
            .lines()
            .skip(1)
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let codes: Vec<&str> = events.iter().map(|e| e[1].as_str().unwrap()).collect();
        assert_eq!(codes, ["o", "m", "i", "m", "m"]);
        assert_eq!(events[1][2], "deny: rm -rf /tmp/x");
        assert_eq!(events[3][2], "warn: echo \"quoted\" \\ back\ttab\u{1b}[31m");
        let times: Vec<f64> = events.iter().map(|e| e[0].as_f64().unwrap()).collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
        let long = events[4][2].as_str().unwrap();
        assert_eq!(long.chars().count(), MAX_MARKER_CHARS);
        assert!(long.ends_with('…'));
        assert_eq!(cap_label("short"), "short");
        let exact = "x".repeat(MAX_MARKER_CHARS);
        assert_eq!(cap_label(&exact), exact);
    }

    #[test]
    fn input_after_a_password_prompt_is_not_recorded() {
        let d = tempfile::tempdir().unwrap();
        let mut r = Recorder::create(d.path(), "s2", 80, 24, 0, "t", "xterm").unwrap();
        r.output(b"[sudo] password for ada: ").unwrap();
        r.input(b"hunter2").unwrap();
        r.input(b"\r").unwrap();
        r.output(b"\r\n# ").unwrap();
        r.input(b"id\r").unwrap();
        let f = r.finish().unwrap();
        let text = std::fs::read_to_string(&f.path).unwrap();
        assert!(!text.contains("hunter2"));
        assert!(text.contains("id\\r"));
    }

    #[test]
    fn c6_an_existing_file_is_never_overwritten_and_a_bad_dir_refuses() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("s3.cast"), b"x").unwrap();
        assert!(Recorder::create(d.path(), "s3", 80, 24, 0, "t", "xterm").is_err());
        let file = d.path().join("not-a-dir");
        std::fs::write(&file, b"x").unwrap();
        assert!(Recorder::create(&file, "s4", 80, 24, 0, "t", "xterm").is_err());
    }

    #[test]
    fn c6_a_full_disk_fails_the_write_that_hits_it() {
        // /dev/full answers every write with ENOSPC.
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let mut r = Recorder {
            path: PathBuf::from("/dev/full"),
            file: std::io::BufWriter::new(file),
            hash: Sha256::new(),
            bytes: 0,
            started: Instant::now(),
            tail: Vec::new(),
            secret_input: false,
        };
        assert!(r.output(b"x").is_err());
    }
}
