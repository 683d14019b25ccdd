//! The help-desk view from the workstation: the organisation's session history, the replay of
//! a recording, the patterns a replay masks and the files a session moved, all read from the
//! broker.
//!
//! Rules: the broker decides who sees what (help-desk and administrators everyone's, anyone
//! else their own), checks each recording against its audit record, masks the configured
//! secrets and audits the replay; the core only checks the input's shape, so a typo is a clear
//! `bad_request` here rather than a round trip, and passes the answer on as text for the UI to
//! render inert.
//!
//! A captured file's copy never goes to the WebView: the core checks its bytes against the
//! SHA-256 the broker kept (and, for a whole copy, against the hash of what passed in the
//! session), writes them to a new file in the user's download directory (never over an
//! existing file, never through a symlink) and tells the UI where, inside its own audit records.

use std::path::{Path, PathBuf};

use base64::Engine;
use paw_policy::limits::{MAX_HISTORY_FILTER_CHARS, MAX_HISTORY_PAGE};
use paw_proto::files::{SavedSessionFile, SessionFileInput};
use paw_proto::session::{
    CapturedFile, SessionFiles, SessionHistory, SessionHistoryQuery, SessionIdInput, SessionMasks,
    SessionRecording,
};
use paw_proto::{ApiError, ErrorCode};
use reqwest::Method;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::audit::{Audit, Summary};
use crate::elevation::check_id;
use crate::files::{create_unique, download_dir, local_name};
use crate::util::hex;
use crate::{ClientError, Core};

fn bad(field: &'static str, reason: impl Into<String>) -> ClientError {
    ClientError::InvalidInput {
        field,
        reason: reason.into(),
    }
}

/// `/v1/sessions/history` with the filters that are set, checked and URL-encoded. Blank text
/// filters are left out, as the page sends them when a field is cleared.
fn history_path(q: &SessionHistoryQuery) -> Result<String, ClientError> {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (field, value) in [
        ("user", &q.user),
        ("target", &q.target),
        ("reason", &q.reason),
    ] {
        let Some(v) = value.as_deref().map(str::trim).filter(|v| !v.is_empty()) else {
            continue;
        };
        if v.chars().count() > MAX_HISTORY_FILTER_CHARS || v.chars().any(char::is_control) {
            return Err(bad(
                field,
                format!("at most {MAX_HISTORY_FILTER_CHARS} printable characters"),
            ));
        }
        query.append_pair(field, v);
    }
    if let (Some(from), Some(until)) = (q.from_ms, q.until_ms) {
        if from > until {
            return Err(bad("until_ms", "the end of the range is before its start"));
        }
    }
    if let Some(from) = q.from_ms {
        query.append_pair("from_ms", &from.to_string());
    }
    if let Some(until) = q.until_ms {
        query.append_pair("until_ms", &until.to_string());
    }
    if let Some(limit) = q.limit {
        if !(1..=MAX_HISTORY_PAGE).contains(&limit) {
            return Err(bad("limit", format!("1 to {MAX_HISTORY_PAGE}")));
        }
        query.append_pair("limit", &limit.to_string());
    }
    if let Some(offset) = q.offset.filter(|o| *o > 0) {
        query.append_pair("offset", &offset.to_string());
    }
    let query = query.finish();
    Ok(if query.is_empty() {
        "/v1/sessions/history".to_owned()
    } else {
        format!("/v1/sessions/history?{query}")
    })
}

impl Core {
    /// One page of the session history the broker lets this user read, newest first.
    pub async fn session_history(
        &self,
        filter: SessionHistoryQuery,
    ) -> Result<SessionHistory, ClientError> {
        let path = history_path(&filter)?;
        self.authed(Method::GET, &path, None).await
    }

    /// A session's recording (asciicast v2, masked by the broker) for the replay player.
    pub async fn session_recording(
        &self,
        input: SessionIdInput,
    ) -> Result<SessionRecording, ClientError> {
        check_id("session_id", &input.session_id)?;
        let path = format!("/v1/sessions/{}/recording", input.session_id);
        self.authed(Method::GET, &path, None).await
    }

    /// The patterns the broker masks in every replay, for Settings: what help-desk will not
    /// see, and whether they are the broker's defaults. Any signed-in user may read them.
    pub async fn session_masks(&self) -> Result<SessionMasks, ClientError> {
        self.authed(Method::GET, "/v1/sessions/masks", None).await
    }

    /// The files a session moved through SFTP, in order, with what the broker kept of each.
    pub async fn session_files(&self, input: SessionIdInput) -> Result<SessionFiles, ClientError> {
        check_id("session_id", &input.session_id)?;
        let path = format!("/v1/sessions/{}/files", input.session_id);
        self.authed(Method::GET, &path, None).await
    }

    /// Saves a session file's captured copy as a new file in the user's download directory,
    /// once its bytes match the broker's SHA-256; the UI learns where and the hash.
    pub async fn save_session_file(
        &self,
        input: SessionFileInput,
    ) -> Result<SavedSessionFile, ClientError> {
        check_file_input(&input)?;
        let dir = download_dir()?;
        self.save_session_file_in(input, &dir).await
    }

    /// [`Core::save_session_file`] into `dir`.
    pub(crate) async fn save_session_file_in(
        &self,
        input: SessionFileInput,
        dir: &Path,
    ) -> Result<SavedSessionFile, ClientError> {
        check_file_input(&input)?;
        let what = Audit::new(
            "session.file_save",
            input.session_id.clone(),
            json!({"session": input.session_id, "n": input.n}),
        );
        self.audited(what, async {
            let path = format!("/v1/sessions/{}/files/{}", input.session_id, input.n);
            let copy: CapturedFile = self.authed(Method::GET, &path, None).await?;
            let (bytes, sha256) = checked_copy(&input, &copy)?;
            let local = write_new(dir, &local_name(&copy.file.path), &bytes).await?;
            Ok(SavedSessionFile {
                session_id: input.session_id.clone(),
                n: input.n,
                remote_path: copy.file.path,
                local_path: local.display().to_string(),
                sha256,
                bytes: bytes.len() as u64,
                complete: copy.file.capture_complete,
            })
        })
        .await
    }
}

impl Summary for SavedSessionFile {
    fn summary(&self) -> Value {
        json!({
            "n": self.n,
            "remote": self.remote_path,
            "local": self.local_path,
            "bytes": self.bytes,
            "sha256": self.sha256,
            "complete": self.complete,
        })
    }
}

fn check_file_input(input: &SessionFileInput) -> Result<(), ClientError> {
    check_id("session_id", &input.session_id)?;
    if input.n < 1 {
        return Err(bad("n", "a file's place in the session, from 1"));
    }
    Ok(())
}

fn tampered(message: impl Into<String>) -> ClientError {
    ClientError::Transfer(ApiError::new(ErrorCode::RecordingTampered, message))
}

/// The copy's bytes and their SHA-256 (hex), once they are the file asked for and match what
/// the broker kept: the SHA-256 taken when the copy was made, and, for a whole copy, the hash
/// of the bytes that passed in the session. The broker checks the first on its disk; checking
/// here as well covers what happened on the way and a broker answering with another file.
fn checked_copy(
    input: &SessionFileInput,
    copy: &CapturedFile,
) -> Result<(Vec<u8>, String), ClientError> {
    if copy.file.n != input.n {
        return Err(ClientError::Protocol(format!(
            "asked for file {} of the session, the broker sent file {}",
            input.n, copy.file.n
        )));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(copy.content_base64.as_bytes())
        .map_err(|e| ClientError::Protocol(format!("the captured copy is not base64: {e}")))?;
    let sha256 = hex(&Sha256::digest(&bytes));
    if !sha256.eq_ignore_ascii_case(&copy.capture_sha256) {
        return Err(tampered(format!(
            "the copy that arrived (SHA-256 {sha256}) does not match the SHA-256 the broker kept \
             ({}); nothing was saved",
            copy.capture_sha256
        )));
    }
    if copy.file.capture_complete {
        if let Some(moved) = copy.file.sha256.as_deref() {
            if !sha256.eq_ignore_ascii_case(moved) {
                return Err(tampered(format!(
                    "the copy (SHA-256 {sha256}) is not the file that passed in the session \
                     (SHA-256 {moved}); nothing was saved"
                )));
            }
        }
    }
    Ok((bytes, sha256))
}

/// Writes `bytes` to a new file named after `name` in `dir` (see [`create_unique`]); a file
/// that could not be written whole is removed.
async fn write_new(dir: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf, ClientError> {
    let (path, mut file) = create_unique(dir, name).await?;
    let written = async {
        file.write_all(bytes).await?;
        file.sync_all().await
    }
    .await;
    if let Err(e) = written {
        drop(file);
        let _ = tokio::fs::remove_file(&path).await;
        return Err(ClientError::Storage(format!(
            "writing {}: {e}",
            path.display()
        )));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use paw_proto::session::SessionFileView;

    #[test]
    fn only_set_filters_go_into_the_query_and_text_is_encoded() {
        assert_eq!(
            history_path(&SessionHistoryQuery::default()).unwrap(),
            "/v1/sessions/history"
        );
        let q = SessionHistoryQuery {
            user: Some(" ada lovelace ".into()),
            target: Some("  ".into()),
            reason: Some("closed".into()),
            from_ms: Some(10),
            until_ms: Some(20),
            limit: Some(50),
            offset: Some(0),
        };
        assert_eq!(
            history_path(&q).unwrap(),
            "/v1/sessions/history?user=ada+lovelace&reason=closed&from_ms=10&until_ms=20&limit=50"
        );
        let q = SessionHistoryQuery {
            target: Some("web&admin=1".into()),
            offset: Some(100),
            ..Default::default()
        };
        assert_eq!(
            history_path(&q).unwrap(),
            "/v1/sessions/history?target=web%26admin%3D1&offset=100"
        );
    }

    #[test]
    fn bad_filters_are_refused_before_the_broker() {
        let cases = [
            SessionHistoryQuery {
                limit: Some(0),
                ..Default::default()
            },
            SessionHistoryQuery {
                limit: Some(201),
                ..Default::default()
            },
            SessionHistoryQuery {
                from_ms: Some(2),
                until_ms: Some(1),
                ..Default::default()
            },
            SessionHistoryQuery {
                user: Some("a\nb".into()),
                ..Default::default()
            },
            SessionHistoryQuery {
                target: Some("x".repeat(129)),
                ..Default::default()
            },
        ];
        for q in cases {
            assert!(
                matches!(history_path(&q), Err(ClientError::InvalidInput { .. })),
                "{q:?}"
            );
        }
    }

    fn view(n: i64, path: &str, sha256: Option<&str>, complete: bool) -> SessionFileView {
        SessionFileView {
            n,
            path: path.into(),
            direction: "upload".into(),
            size: 11,
            sha256: sha256.map(Into::into),
            outcome: "success".into(),
            captured: true,
            capture_complete: complete,
            at_ms: 1,
        }
    }

    fn copy_of(file: SessionFileView, bytes: &[u8], capture_sha256: &str) -> CapturedFile {
        CapturedFile {
            file,
            capture_sha256: capture_sha256.into(),
            content_base64: base64::engine::general_purpose::STANDARD.encode(bytes),
        }
    }

    fn sha(b: &[u8]) -> String {
        hex(&Sha256::digest(b))
    }

    fn input(n: i64) -> SessionFileInput {
        SessionFileInput {
            session_id: "se-1".into(),
            n,
        }
    }

    #[test]
    fn a_copy_is_accepted_only_when_its_bytes_match_what_the_broker_kept() {
        let body = b"hello world";
        let h = sha(body);
        let ok = copy_of(
            view(2, "/srv/a.txt", Some(&h), true),
            body,
            &h.to_uppercase(),
        );
        assert_eq!(
            checked_copy(&input(2), &ok).unwrap(),
            (body.to_vec(), h.clone())
        );

        // Changed on the way: not the bytes whose hash the broker kept.
        let changed = copy_of(view(2, "/srv/a.txt", Some(&h), true), b"hello World", &h);
        let e = checked_copy(&input(2), &changed).unwrap_err();
        assert_eq!(e.code(), ErrorCode::RecordingTampered, "{e}");

        // A whole copy that is not the file that passed in the session.
        let other = b"other bytes";
        let swapped = copy_of(view(2, "/srv/a.txt", Some(&h), true), other, &sha(other));
        let e = checked_copy(&input(2), &swapped).unwrap_err();
        assert_eq!(e.code(), ErrorCode::RecordingTampered, "{e}");

        // A copy cut at the capture limit holds only the first bytes: only its own hash counts.
        let cut = &body[..5];
        let partial = copy_of(view(2, "/srv/a.txt", Some(&h), false), cut, &sha(cut));
        assert_eq!(checked_copy(&input(2), &partial).unwrap().0, cut.to_vec());

        // Another file than the one asked for, or no base64: the broker is not making sense.
        let e = checked_copy(&input(3), &ok).unwrap_err();
        assert_eq!(e.code(), ErrorCode::BrokerProtocol, "{e}");
        let mut garbled = ok.clone();
        garbled.content_base64 = "not base64!".into();
        let e = checked_copy(&input(2), &garbled).unwrap_err();
        assert_eq!(e.code(), ErrorCode::BrokerProtocol, "{e}");
    }

    #[test]
    fn a_file_is_named_by_session_id_and_place_from_one() {
        assert!(check_file_input(&input(1)).is_ok());
        assert!(check_file_input(&input(0)).is_err());
        assert!(check_file_input(&input(-4)).is_err());
        let bad_id = SessionFileInput {
            session_id: "../admin".into(),
            n: 1,
        };
        assert!(matches!(
            check_file_input(&bad_id),
            Err(ClientError::InvalidInput {
                field: "session_id",
                ..
            })
        ));
    }
}
