//! The files of a session's history (issue #18): the list, and a captured copy as help-desk
//! fetches it — checked against the SHA-256 taken when it was kept, and audited, as a replay
//! is. Who may see: help-desk, administrators and the session's own user.

use base64::Engine;
use paw_audit::Outcome;
use paw_proto::session::{CapturedFile, SessionFileView, SessionFiles};
use serde_json::json;

use crate::audit::{self, Entry};
use crate::base::auth::AuthContext;
use crate::base::error::BrokerError;
use crate::sessions::error::{Result, SessionsError};
use crate::sessions::history::{is_session_id, read_checked_bytes, sees_everyone, Checked};
use crate::sessions::Sessions;
use crate::with_pool;

#[derive(sqlx::FromRow)]
struct Row {
    n: i64,
    path: String,
    direction: String,
    size: i64,
    sha256: Option<String>,
    outcome: String,
    capture: Option<String>,
    capture_sha256: Option<String>,
    capture_complete: bool,
    created_at: i64,
}

impl Row {
    fn view(&self) -> SessionFileView {
        SessionFileView {
            n: self.n,
            path: self.path.clone(),
            direction: self.direction.clone(),
            size: self.size,
            sha256: self.sha256.clone(),
            outcome: self.outcome.clone(),
            captured: self.capture.is_some(),
            capture_complete: self.capture_complete,
            at_ms: self.created_at,
        }
    }
}

const COLUMNS: &str = "n, path, direction, size, sha256, outcome, capture, capture_sha256, \
                       capture_complete, created_at";

/// The session, if `auth` may see it; a refusal is audited and answers as "no such session".
async fn visible(svc: &Sessions, auth: &AuthContext, id: &str, what: &str) -> Result<()> {
    let not_found = || SessionsError::NotFound("no such session".into());
    if !is_session_id(id) {
        return Err(not_found());
    }
    let owner: Option<(String,)> = with_pool!(&svc.db, p => {
        sqlx::query_as("SELECT g.user_id FROM session_tickets s JOIN grants g ON g.id = s.grant_id \
                        WHERE s.id = $1 AND s.used_at IS NOT NULL")
            .bind(id).fetch_optional(p).await?
    });
    let Some((owner,)) = owner else {
        return Err(not_found());
    };
    if !sees_everyone(auth) && owner != auth.user_id {
        audit::record(
            &svc.db,
            svc.clock.now_ms(),
            Entry::new(
                &auth.user_name,
                "session_files_read",
                id,
                Outcome::Denied,
                json!({"what": what, "reason": "not help-desk, an administrator or the session's user"}),
            ),
        )
        .await?;
        return Err(not_found());
    }
    Ok(())
}

/// `GET /v1/sessions/{id}/files`.
pub async fn list(svc: &Sessions, auth: &AuthContext, id: &str) -> Result<SessionFiles> {
    visible(svc, auth, id, "list").await?;
    let rows: Vec<Row> = with_pool!(&svc.db, p => {
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM session_files WHERE session_id = $1 ORDER BY n"))
            .bind(id).fetch_all(p).await?
    });
    Ok(SessionFiles {
        session_id: id.to_owned(),
        files: rows.iter().map(Row::view).collect(),
    })
}

/// `GET /v1/sessions/{id}/files/{n}`: the captured copy.
pub async fn read(svc: &Sessions, auth: &AuthContext, id: &str, n: i64) -> Result<CapturedFile> {
    visible(svc, auth, id, "capture").await?;
    let row: Option<Row> = with_pool!(&svc.db, p => {
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM session_files WHERE session_id = $1 AND n = $2"))
            .bind(id).bind(n).fetch_optional(p).await?
    });
    let no_copy = || SessionsError::NotFound("this file has no captured copy".into());
    let row = row.ok_or_else(|| SessionsError::NotFound("no such file in this session".into()))?;
    let (Some(name), Some(want)) = (row.capture.clone(), row.capture_sha256.clone()) else {
        return Err(no_copy());
    };
    let dir = svc
        .ssh
        .as_ref()
        .map(|run| run.front.recordings_dir().join(format!("{id}.files")))
        .ok_or_else(no_copy)?;
    // The name was made by the broker from `NNN-direction-name` with a safe alphabet; a row
    // naming anything else is not followed.
    if name.contains('/') || name.starts_with('.') {
        return Err(no_copy());
    }
    let path = dir.join(&name);
    let want_c = want.clone();
    let read = tokio::task::spawn_blocking(move || read_checked_bytes(&path, &want_c))
        .await
        .map_err(|e| BrokerError::Internal(format!("capture read task: {e}")))??;
    let note = |outcome: Outcome, extra: serde_json::Value| {
        let mut detail = json!({"n": n, "path": row.path, "capture_sha256": want});
        if let (Some(d), Some(e)) = (detail.as_object_mut(), extra.as_object()) {
            d.extend(e.clone());
        }
        Entry::new(&auth.user_name, "session_file_read", id, outcome, detail)
    };
    let (entry, answer) = match read {
        Checked::Ok(bytes) => (
            note(Outcome::Success, json!({"bytes": bytes.len()})),
            Ok(CapturedFile {
                file: row.view(),
                capture_sha256: want.clone(),
                content_base64: base64::engine::general_purpose::STANDARD.encode(&bytes),
            }),
        ),
        Checked::Missing => (
            note(Outcome::Failure, json!({"found": "missing"})),
            Err(no_copy()),
        ),
        Checked::Mismatch(found) => (
            note(Outcome::Failure, json!({"found_sha256": found})),
            Err(SessionsError::RecordingTampered(
                "the captured copy changed since it was kept: it does not match its SHA-256, so \
                 it is not given out"
                    .into(),
            )),
        ),
        Checked::TooLarge(bytes) => (
            note(Outcome::Failure, json!({"bytes": bytes})),
            Err(SessionsError::PayloadTooLarge(format!(
                "the copy is {bytes} bytes, more than the {} the broker gives out",
                crate::sessions::history::MAX_RECORDING_BYTES
            ))),
        ),
    };
    audit::record(&svc.db, svc.clock.now_ms(), entry).await?;
    answer
}
