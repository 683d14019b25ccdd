//! The help-desk view from the workstation: the organisation's session history, the replay of
//! a recording and the patterns a replay masks, all read from the broker.
//!
//! Rules: the broker decides who sees what (help-desk and administrators everyone's, anyone
//! else their own), checks each recording against its audit record, masks the configured
//! secrets and audits the replay; the core only checks the input's shape, so a typo is a clear
//! `bad_request` here rather than a round trip, and passes the answer on as text for the UI to
//! render inert.

use paw_policy::limits::{MAX_HISTORY_FILTER_CHARS, MAX_HISTORY_PAGE};
use paw_proto::session::{
    SessionHistory, SessionHistoryQuery, SessionIdInput, SessionMasks, SessionRecording,
};
use reqwest::Method;

use crate::elevation::check_id;
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
