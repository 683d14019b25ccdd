//! The help-desk view of brokered sessions: the organisation's session history, and replays
//! of SSH recordings with configured secrets masked.
//!
//! Rules: help-desk and administrators read everyone's history and recordings; anyone else
//! only their own (another user's session is `not_found`, never a hint that it exists). A
//! recording is replayed only if its bytes still hash to the SHA-256 the session's end wrote
//! into the audit log — a file edited or deleted since is refused with `recording_tampered`,
//! never served. Every replay (and every refused one) is an audit record written before the
//! recording leaves the broker, so nobody reads a recording without a trace (fail closed).
//! Masking happens here, on the way out: the file on disk stays the exact evidence its hash
//! names, and help-desk sees `••••` where a configured pattern matched.

use std::io::Read;
use std::path::Path;

use paw_audit::Outcome;
use paw_proto::session::{
    SessionHistory, SessionHistoryEntry, SessionHistoryQuery, SessionRecording,
};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::audit::{self, Entry};
use crate::base::auth::AuthContext;
use crate::base::auth::HELPDESK_ROLE;
use crate::base::error::BrokerError;
use crate::config::masks::Masks;
use crate::sessions::error::{Result, SessionsError};
use crate::sessions::Sessions;
use crate::with_pool;

/// What help-desk sees instead of a masked passage.
pub const MASK: &str = "••••";
/// The largest recording the broker replays; a longer one is refused with a clear error
/// rather than held in memory whole (and again as JSON) by the broker and the app.
pub const MAX_RECORDING_BYTES: u64 = 64 * 1024 * 1024;
/// History page size when the query names none, and the most one page may hold.
pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = paw_policy::limits::MAX_HISTORY_PAGE;
/// The longest user or target filter: names are far shorter.
const MAX_FILTER_CHARS: usize = paw_policy::limits::MAX_HISTORY_FILTER_CHARS;

pub(crate) fn sees_everyone(auth: &AuthContext) -> bool {
    auth.is_admin() || auth.has_role(HELPDESK_ROLE)
}

/// Masks an asciicast v2 text: every match of a pattern in the output stream (`o` events), in
/// the input stream (`i` events) and in a marker's label (`m` events, which name a command
/// line) becomes [`MASK`]. Each stream is matched as one text, so a secret split across
/// events — input arrives a keystroke at a time, output in arbitrary chunks — is still found;
/// the mask goes where the passage starts and the rest of it is removed from the events it
/// spans. Each marker is matched alone: the broker writes a label whole, and one label's end
/// joined to the next one's start could only make up passages that are in neither. Lines with
/// nothing masked (and other events, such as `r`) are kept byte for byte.
/// Returns the masked text and how many passages were masked.
pub fn mask_cast(cast: &str, masks: &Masks) -> Result<(String, u32)> {
    let lines: Vec<&str> = cast.lines().collect();
    if masks.is_empty() {
        return Ok((cast.to_owned(), 0));
    }
    // (line index, time, code, data) for every event line; the header (line 0) is not masked:
    // the broker writes it from the session's metadata, not from anything typed or printed.
    let mut events: Vec<(usize, Value, String, String)> = Vec::new();
    for (i, line) in lines.iter().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let bad = || BrokerError::Internal(format!("recording line {} is not an event", i + 1));
        let v: Value = serde_json::from_str(line).map_err(|_| bad())?;
        let (Some(t), Some(code), Some(data)) = (
            v.get(0),
            v.get(1).and_then(Value::as_str),
            v.get(2).and_then(Value::as_str),
        ) else {
            return Err(bad().into());
        };
        events.push((i, t.clone(), code.to_owned(), data.to_owned()));
    }
    let mut replaced: Vec<Option<String>> = vec![None; lines.len()];
    let mut count = 0u32;
    let of =
        |code: &str| -> Vec<usize> { (0..events.len()).filter(|&k| events[k].2 == code).collect() };
    let mut texts = vec![of("o"), of("i")];
    texts.extend(of("m").into_iter().map(|k| vec![k]));
    for idx in texts {
        let mut joined = String::new();
        let mut starts = Vec::with_capacity(idx.len());
        for &k in &idx {
            starts.push(joined.len());
            joined.push_str(&events[k].3);
        }
        let ranges = masks.ranges(&joined);
        if ranges.is_empty() {
            continue;
        }
        count = count.saturating_add(u32::try_from(ranges.len()).unwrap_or(u32::MAX));
        for (n, &k) in idx.iter().enumerate() {
            let (s, e) = (starts[n], starts[n] + events[k].3.len());
            let hit = ranges.iter().any(|&(rs, re)| rs < e && re > s);
            if !hit {
                continue;
            }
            let mut out = String::new();
            let mut at = s;
            for &(rs, re) in ranges.iter().filter(|&&(rs, re)| rs < e && re > s) {
                if rs >= s {
                    out.push_str(&joined[at..rs]);
                    out.push_str(MASK);
                }
                at = re.min(e);
            }
            out.push_str(&joined[at..e]);
            let (line, t, code, _) = &events[k];
            replaced[*line] = Some(json!([t, code, out]).to_string());
        }
    }
    let mut text = String::with_capacity(cast.len());
    for (i, line) in lines.iter().enumerate() {
        text.push_str(replaced[i].as_deref().unwrap_or(line));
        text.push('\n');
    }
    Ok((text, count))
}

// ---- History -------------------------------------------------------------------------------

#[derive(Debug, sqlx::FromRow)]
struct Row {
    id: String,
    grant_id: String,
    user_name: String,
    target_kind: String,
    target: String,
    role: String,
    used_at: i64,
    ended_at: Option<i64>,
    end_reason: Option<String>,
    recording_sha256: Option<String>,
    recording_closed_at: Option<i64>,
}

const SELECT: &str = "SELECT s.id, s.grant_id, g.user_name, g.target_kind, g.target, g.role, \
    s.used_at, s.ended_at, s.end_reason, s.recording_sha256, s.recording_closed_at \
    FROM session_tickets s JOIN grants g ON g.id = s.grant_id";

/// A bound value of a query built from the filters that are set.
enum Arg {
    Text(String),
    Int(i64),
}

/// WHERE clauses with their `$n` placeholders numbered as they are added.
#[derive(Default)]
struct Filter {
    clauses: Vec<String>,
    args: Vec<Arg>,
}

impl Filter {
    /// Adds `clause`, whose `?` stands for `arg`.
    fn add(&mut self, clause: &str, arg: Arg) {
        self.args.push(arg);
        self.clauses
            .push(clause.replace('?', &format!("${}", self.args.len())));
    }
}

fn bad(message: impl Into<String>) -> SessionsError {
    SessionsError::BadRequest(message.into())
}

/// `%part%` for a case-insensitive LIKE with `\` as the escape character, so `%` and `_` in
/// the filter match themselves.
fn contains_pattern(part: &str) -> String {
    let mut p = String::from("%");
    for c in part.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

fn text_filter(field: &str, v: Option<&String>) -> Result<Option<String>> {
    let Some(v) = v.map(|s| s.trim()).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    if v.chars().count() > MAX_FILTER_CHARS || v.chars().any(char::is_control) {
        return Err(bad(format!(
            "{field}: at most {MAX_FILTER_CHARS} printable characters"
        )));
    }
    Ok(Some(contains_pattern(v)))
}

/// Session ids are UUIDs; anything else cannot name a session (nor a file).
pub(crate) fn is_session_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn recording_path(svc: &Sessions, id: &str) -> Option<std::path::PathBuf> {
    let run = svc.ssh.as_ref()?;
    is_session_id(id).then(|| run.front.recordings_dir().join(format!("{id}.cast")))
}

/// The session history `auth` may read, newest first, filtered by `q`.
pub async fn history(
    svc: &Sessions,
    auth: &AuthContext,
    q: &SessionHistoryQuery,
) -> Result<SessionHistory> {
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(bad(format!("limit: 1 to {MAX_LIMIT}")));
    }
    let offset = q.offset.unwrap_or(0);
    let offset_i = i64::try_from(offset).map_err(|_| bad("offset is too large"))?;
    if let (Some(f), Some(u)) = (q.from_ms, q.until_ms) {
        if f > u {
            return Err(bad("from_ms is after until_ms"));
        }
    }
    let mut f = Filter::default();
    f.clauses.push("s.used_at IS NOT NULL".into());
    if !sees_everyone(auth) {
        f.add("g.user_id = ?", Arg::Text(auth.user_id.clone()));
    }
    if let Some(p) = text_filter("user", q.user.as_ref())? {
        f.add("LOWER(g.user_name) LIKE ? ESCAPE '\\'", Arg::Text(p));
    }
    if let Some(p) = text_filter("target", q.target.as_ref())? {
        f.add("LOWER(g.target) LIKE ? ESCAPE '\\'", Arg::Text(p));
    }
    match q.reason.as_deref().map(str::trim).filter(|r| !r.is_empty()) {
        None => {}
        Some("live") => f.clauses.push("s.ended_at IS NULL".into()),
        Some(r) => {
            if r.len() > 40 || !r.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
                return Err(bad(
                    "reason: an end reason such as `closed` or `killed`, or `live`",
                ));
            }
            f.add("s.end_reason = ?", Arg::Text(r.to_owned()));
        }
    }
    if let Some(from) = q.from_ms {
        f.add("s.used_at >= ?", Arg::Int(from));
    }
    if let Some(until) = q.until_ms {
        f.add("s.used_at < ?", Arg::Int(until));
    }
    // One row more than the page tells whether another page follows.
    f.args.push(Arg::Int(i64::from(limit) + 1));
    let lim = f.args.len();
    f.args.push(Arg::Int(offset_i));
    let off = f.args.len();
    let sql = format!(
        "{SELECT} WHERE {} ORDER BY s.used_at DESC, s.id DESC LIMIT ${lim} OFFSET ${off}",
        f.clauses.join(" AND ")
    );
    let mut rows: Vec<Row> = with_pool!(&svc.db, p => {
        let mut query = sqlx::query_as(&sql);
        for a in &f.args {
            query = match a {
                Arg::Text(s) => query.bind(s.clone()),
                Arg::Int(n) => query.bind(*n),
            };
        }
        query.fetch_all(p).await?
    });
    let has_more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let sessions = rows
        .into_iter()
        .map(|r| {
            let on_disk = r.recording_sha256.is_some()
                && r.recording_closed_at.is_some()
                && recording_path(svc, &r.id).is_some_and(|p| p.is_file());
            SessionHistoryEntry {
                has_recording: on_disk,
                id: r.id,
                grant_id: r.grant_id,
                user: r.user_name,
                target_kind: r.target_kind,
                target: r.target,
                role: r.role,
                started_at_ms: r.used_at,
                ended_at_ms: r.ended_at,
                end_reason: r.end_reason,
                recording_sha256: r.recording_sha256,
            }
        })
        .collect();
    Ok(SessionHistory {
        sessions,
        offset,
        has_more,
    })
}

// ---- Replay --------------------------------------------------------------------------------

#[derive(Debug, sqlx::FromRow)]
struct RecordingRow {
    user_id: String,
    user_name: String,
    target: String,
    recording_sha256: Option<String>,
    recording_closed_at: Option<i64>,
}

/// Why a recording (or a captured file) could not be read as its record describes it.
pub(crate) enum Checked<T = String> {
    Ok(T),
    Missing,
    TooLarge(u64),
    Mismatch(String),
}

/// [`read_checked_bytes`] of an asciicast, which is UTF-8.
fn read_checked(path: &Path, want_sha: &str) -> Result<Checked> {
    Ok(match read_checked_bytes(path, want_sha)? {
        // The recorder writes JSON lines, which are UTF-8; the hash matched, so this is what
        // it wrote and anything else is a broker bug.
        Checked::Ok(bytes) => Checked::Ok(
            String::from_utf8(bytes)
                .map_err(|_| BrokerError::Internal("a recording is not UTF-8".into()))?,
        ),
        Checked::Missing => Checked::Missing,
        Checked::TooLarge(n) => Checked::TooLarge(n),
        Checked::Mismatch(m) => Checked::Mismatch(m),
    })
}

/// Reads at most [`MAX_RECORDING_BYTES`] of `path` and hashes what it read.
pub(crate) fn read_checked_bytes(path: &Path, want_sha: &str) -> Result<Checked<Vec<u8>>> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Checked::Missing),
        Err(e) => return Err(BrokerError::io("cannot open a recording", e).into()),
    };
    let len = file
        .metadata()
        .map_err(|e| BrokerError::io("cannot read a recording", e))?
        .len();
    if len > MAX_RECORDING_BYTES {
        return Ok(Checked::TooLarge(len));
    }
    // Bounded even if the file grows between the size check and the read.
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.take(MAX_RECORDING_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| BrokerError::io("cannot read a recording", e))?;
    if bytes.len() as u64 > MAX_RECORDING_BYTES {
        return Ok(Checked::TooLarge(bytes.len() as u64));
    }
    let sha = hex::encode(Sha256::digest(&bytes));
    if sha != want_sha {
        return Ok(Checked::Mismatch(sha));
    }
    Ok(Checked::Ok(bytes))
}

/// The recording of session `id`, checked against its audit record and masked, for `auth`.
pub async fn recording(svc: &Sessions, auth: &AuthContext, id: &str) -> Result<SessionRecording> {
    let not_found = || SessionsError::NotFound("no such session".into());
    if !is_session_id(id) {
        return Err(not_found());
    }
    let sql = "SELECT g.user_id, g.user_name, g.target, s.recording_sha256, s.recording_closed_at \
               FROM session_tickets s JOIN grants g ON g.id = s.grant_id \
               WHERE s.id = $1 AND s.used_at IS NOT NULL";
    let row: Option<RecordingRow> = with_pool!(&svc.db, p => {
        sqlx::query_as(sql).bind(id).fetch_optional(p).await?
    });
    let Some(row) = row else {
        return Err(not_found());
    };
    let now = svc.clock.now_ms();
    let note = |outcome: Outcome, detail: Value| {
        Entry::new(&auth.user_name, "session_replay", id, outcome, detail)
    };
    if !sees_everyone(auth) && row.user_id != auth.user_id {
        // Someone else's session: as if it did not exist, but on the record.
        audit::record(
            &svc.db,
            now,
            note(
                Outcome::Denied,
                json!({"reason": "not help-desk, an administrator or the session's user"}),
            ),
        )
        .await?;
        return Err(not_found());
    }
    if row.recording_closed_at.is_none() {
        return Err(SessionsError::Conflict(
            "the session is still running; its recording can be replayed once it ends".into(),
        ));
    }
    let (Some(want), Some(path)) = (row.recording_sha256, recording_path(svc, id)) else {
        return Err(SessionsError::NotFound(
            "this session has no recording".into(),
        ));
    };
    let masks = masks_of(svc);
    let want_c = want.clone();
    // File I/O, hashing and masking of up to 64 MiB: off the async workers.
    let read = tokio::task::spawn_blocking(move || -> Result<(Checked, u32)> {
        match read_checked(&path, &want_c)? {
            Checked::Ok(text) => {
                let (masked, n) = mask_cast(&text, &masks)?;
                Ok((Checked::Ok(masked), n))
            }
            other => Ok((other, 0)),
        }
    })
    .await
    .map_err(|e| BrokerError::Internal(format!("replay task: {e}")))??;
    let tampered = |what: &str, detail: Value| {
        let message = format!(
            "the recording {what} since the session ended: it does not match the SHA-256 in \
             the audit log, so it is not replayed"
        );
        (
            note(Outcome::Failure, detail),
            SessionsError::RecordingTampered(message),
        )
    };
    let base =
        json!({"session_user": row.user_name, "target": row.target, "recording_sha256": want});
    let with = |extra: Value| {
        let mut d = base.clone();
        if let (Some(d), Some(extra)) = (d.as_object_mut(), extra.as_object()) {
            d.extend(extra.clone());
        }
        d
    };
    let (entry, result) = match read {
        (Checked::Ok(cast), masked) => (
            note(
                Outcome::Success,
                with(json!({"masked": masked, "bytes": cast.len()})),
            ),
            Ok(SessionRecording {
                session_id: id.to_owned(),
                sha256: want.clone(),
                masked,
                cast,
            }),
        ),
        (Checked::Missing, _) => {
            let (e, err) = tampered("was deleted", with(json!({"reason": "recording_missing"})));
            (e, Err(err))
        }
        (Checked::Mismatch(found), _) => {
            let (e, err) = tampered(
                "was changed",
                with(json!({"reason": "recording_hash_mismatch", "found_sha256": found})),
            );
            (e, Err(err))
        }
        (Checked::TooLarge(bytes), _) => (
            note(
                Outcome::Failure,
                with(json!({"reason": "recording_too_large", "bytes": bytes})),
            ),
            Err(SessionsError::PayloadTooLarge(format!(
                "the recording is {} MiB; the broker replays recordings of at most {} MiB",
                bytes.div_ceil(1024 * 1024),
                MAX_RECORDING_BYTES / (1024 * 1024)
            ))),
        ),
    };
    // Fail closed: without its audit record, the recording does not leave the broker.
    audit::record(&svc.db, now, entry).await?;
    result
}

/// The patterns replays mask: the SSH front door's, or none when it is not configured (there
/// are then no SSH recordings to replay).
fn masks_of(svc: &Sessions) -> Masks {
    svc.ssh
        .as_ref()
        .map(|r| r.front.masks().clone())
        .unwrap_or_default()
}

/// `GET /v1/sessions/masks`: what a replay hides, for the Settings page.
pub fn mask_patterns(svc: &Sessions) -> paw_proto::session::SessionMasks {
    let masks = masks_of(svc);
    paw_proto::session::SessionMasks {
        patterns: masks.patterns(),
        default: masks.is_default(),
        replacement: MASK.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masks(p: &[&str]) -> Masks {
        Masks::compile(&p.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>()).unwrap()
    }

    const HEADER: &str = r#"{"version":2,"width":80,"height":24}"#;

    #[test]
    fn masks_a_pattern_inside_one_event_and_keeps_other_lines_verbatim() {
        let cast = format!(
            "{HEADER}\n[0.1,\"o\",\"$ \"]\n[0.2,\"o\",\"token=abc123SECRET ok\\r\\n\"]\n[0.3,\"r\",\"100x30\"]\n"
        );
        let (out, n) = mask_cast(&cast, &masks(&["token=[A-Za-z0-9]+"])).unwrap();
        assert_eq!(n, 1);
        assert!(!out.contains("abc123SECRET"), "{out}");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], HEADER);
        assert_eq!(lines[1], "[0.1,\"o\",\"$ \"]");
        let ev: Value = serde_json::from_str(lines[2]).unwrap();
        assert_eq!(ev[0], 0.2);
        assert_eq!(ev[2], format!("{MASK} ok\r\n"));
        assert_eq!(lines[3], "[0.3,\"r\",\"100x30\"]");
    }

    #[test]
    fn masks_a_secret_typed_one_keystroke_at_a_time() {
        let mut cast = format!("{HEADER}\n");
        for (i, c) in "echo token=s3cr3t\r".chars().enumerate() {
            let ev = json!([i as f64 / 10.0, "i", c.to_string()]);
            cast.push_str(&format!("{ev}\n"));
        }
        // Output split mid-secret too.
        cast.push_str("[2.0,\"o\",\"token=s3\"]\n[2.1,\"o\",\"cr3t\\r\\n$ \"]\n");
        let (out, n) = mask_cast(&cast, &masks(&["token=[a-z0-9]+"])).unwrap();
        assert_eq!(n, 2, "{out}");
        for needle in ["s3cr3t", "\"s3\"", "cr3t"] {
            assert!(!out.contains(needle), "{needle} in {out}");
        }
        let inputs: String = out
            .lines()
            .skip(1)
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v[1] == "i")
            .map(|v| v[2].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(inputs, format!("echo {MASK}\r"));
        let outputs: String = out
            .lines()
            .skip(1)
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v[1] == "o")
            .map(|v| v[2].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(outputs, format!("{MASK}\r\n$ "));
    }

    #[test]
    fn masks_a_marker_label_on_its_own() {
        let cast = format!(
            "{HEADER}\n[0.1,\"i\",\"curl -d token=s3cr3t x\\r\"]\n\
             [0.2,\"m\",\"deny: curl -d token=s3cr3t x\"]\n\
             [0.3,\"m\",\"warn: echo token=\"]\n[0.4,\"m\",\"abc\"]\n\
             [0.5,\"m\",\"allow: ls\"]\n"
        );
        let (out, n) = mask_cast(&cast, &masks(&["token=[a-z0-9]+"])).unwrap();
        assert_eq!(n, 2, "{out}");
        assert!(!out.contains("s3cr3t"), "{out}");
        let markers: Vec<Value> = out
            .lines()
            .skip(1)
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|v| v[1] == "m")
            .collect();
        assert_eq!(markers[0][0], 0.2);
        assert_eq!(markers[0][2], format!("deny: curl -d {MASK} x"));
        // Two labels are never read as one text: `token=` then `abc` is not a secret.
        assert_eq!(markers[1][2], "warn: echo token=");
        assert_eq!(markers[2][2], "abc");
        assert_eq!(out.lines().nth(5), Some("[0.5,\"m\",\"allow: ls\"]"));
    }

    #[test]
    fn overlapping_patterns_mask_once() {
        let cast = format!("{HEADER}\n[0.1,\"o\",\"password=hunter2 token=abc\"]\n");
        let (out, n) =
            mask_cast(&cast, &masks(&["password=\\S+", "hunter2", "token=[a-z]+"])).unwrap();
        assert_eq!(n, 2);
        let ev: Value = serde_json::from_str(out.lines().nth(1).unwrap()).unwrap();
        assert_eq!(ev[2], format!("{MASK} {MASK}"));
    }

    #[test]
    fn without_masks_the_cast_is_unchanged() {
        let cast = format!("{HEADER}\n[0.1,\"o\",\"token=abc\"]\n");
        assert_eq!(mask_cast(&cast, &Masks::default()).unwrap(), (cast, 0));
    }

    #[test]
    fn bad_patterns_are_config_errors() {
        for p in ["(", "a*", "x{0,3}", ""] {
            assert!(
                matches!(Masks::compile(&[p.to_owned()]), Err(BrokerError::Config(_))),
                "{p:?}"
            );
        }
        let many: Vec<String> = (0..=crate::config::masks::MAX_MASKS)
            .map(|i| format!("x{i}"))
            .collect();
        assert!(Masks::compile(&many).is_err());
    }

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(contains_pattern("Web_1%"), "%web\\_1\\%%");
        assert_eq!(contains_pattern("a\\b"), "%a\\\\b%");
    }

    #[test]
    fn only_uuid_like_ids_name_a_recording() {
        assert!(is_session_id("0b6f7c1e-9d7a-4a43-8f55-1d2a4c1e9b20"));
        for id in ["", "../x", "a/b", "a.cast", "a b", &"a".repeat(65)] {
            assert!(!is_session_id(id), "{id:?}");
        }
    }
}
