//! Command arguments arrive as raw JSON and are decoded here, so that a missing, null, malformed
//! or oversized argument is refused with `{code, message}` like every other error (case F2).
//! Left to Tauri, a bad argument is rejected before the command runs, with a plain string the UI
//! cannot branch on.

use paw_proto::{ApiError, ErrorCode};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tauri::ipc::{Channel, Invoke, InvokeBody, JavaScriptChannelId};

/// Largest argument the UI may send. The biggest real one (settings paths) is a few KiB.
pub const MAX_ARG_BYTES: usize = 64 * 1024;

/// Largest upload chunk argument: the core's largest chunk, base64, with room for its JSON.
pub const MAX_CHUNK_ARG_BYTES: usize = 512 * 1024;

/// Decodes the command argument `name` into `T`.
pub fn decode<T: DeserializeOwned>(name: &str, raw: Option<Value>) -> Result<T, ApiError> {
    decode_at_most(name, raw, MAX_ARG_BYTES)
}

/// [`decode`] with another size bound: only for an upload's chunks, which carry file bytes.
pub fn decode_at_most<T: DeserializeOwned>(
    name: &str,
    raw: Option<Value>,
    max: usize,
) -> Result<T, ApiError> {
    let value = match raw {
        None | Some(Value::Null) => {
            return Err(bad(format!("`{name}` is required")));
        }
        Some(v) => v,
    };
    let size = serde_json::to_vec(&value)
        .map_err(|_| bad(format!("`{name}` is not valid JSON")))?
        .len();
    if size > max {
        return Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("`{name}` is {size} bytes; at most {max} are accepted"),
        ));
    }
    // No argument is a list, and serde reads a list into a struct by position
    // (`["ada"]` as `{"user": "ada"}`): refused like any other wrong type.
    if value.is_array() {
        return Err(bad(format!(
            "`{name}` has a value of the wrong type or shape"
        )));
    }
    serde_json::from_value(value).map_err(|e| {
        // serde's text for a wrong type quotes the value, which may be a PIN: only the
        // messages that name fields (never values) are passed on.
        let text = e.to_string();
        if text.starts_with("missing field") || text.starts_with("unknown field") {
            bad(format!("`{name}`: {text}"))
        } else {
            bad(format!("`{name}` has a value of the wrong type or shape"))
        }
    })
}

/// Decodes the channel argument `name` (a UI `Channel`, sent as `__CHANNEL__:ID`) into a
/// channel to `webview`. Taken as JSON rather than as Tauri's `Channel` argument so that a
/// missing or malformed one is refused with `{code, message}` (Tauri's own refusal is a plain
/// string that quotes the value).
pub fn channel<T: tauri::ipc::IpcResponse>(
    name: &str,
    raw: Option<Value>,
    webview: tauri::Webview,
) -> Result<Channel<T>, ApiError> {
    let id: JavaScriptChannelId = decode(name, raw)?;
    Ok(id.channel_on(webview))
}

/// Wraps the app's command handler so that a call whose arguments are bytes (what `invoke`
/// sends for an `ArrayBuffer`, a typed array or a plain array) is refused with
/// `{code, message}`. No paw command takes bytes; left to Tauri, a command with an argument
/// refuses them with a plain string, and one without runs as if nothing had been sent.
pub fn refuse_byte_arguments<R: tauri::Runtime>(
    handler: impl Fn(Invoke<R>) -> bool + Send + Sync + 'static,
) -> impl Fn(Invoke<R>) -> bool + Send + Sync + 'static {
    move |invoke| {
        if matches!(invoke.message.payload(), InvokeBody::Raw(_)) {
            invoke
                .resolver
                .reject(bad("the arguments must be a JSON object, not bytes".into()));
            return true;
        }
        handler(invoke)
    }
}

fn bad(message: String) -> ApiError {
    ApiError::new(ErrorCode::BadRequest, message)
}

#[cfg(test)]
mod tests {
    use paw_proto::ipc::{LoginInput, PinInput, SettingsInput};
    use serde_json::json;

    use super::*;

    #[test]
    fn f2_missing_and_null_arguments_are_bad_request() {
        for raw in [None, Some(Value::Null)] {
            let e = decode::<LoginInput>("input", raw).unwrap_err();
            assert_eq!(e.code, ErrorCode::BadRequest);
            assert!(e.message.contains("`input`"), "{}", e.message);
        }
    }

    #[test]
    fn f2_empty_wrong_and_unknown_fields_are_bad_request() {
        for raw in [
            json!({}),
            json!(""),
            json!([]),
            json!({"user": 5}),
            json!({"broker_url": "https://b", "ca_path": "/x", "extra": 1}),
        ] {
            let e = decode::<SettingsInput>("input", Some(raw.clone())).unwrap_err();
            assert_eq!(e.code, ErrorCode::BadRequest, "{raw}");
        }
        let e = decode::<String>("id", Some(json!(42))).unwrap_err();
        assert_eq!(e.code, ErrorCode::BadRequest);
    }

    #[test]
    fn f2_a_list_is_never_read_into_a_struct_by_position() {
        let e = decode::<LoginInput>("input", Some(json!(["ada"]))).unwrap_err();
        assert_eq!(e.code, ErrorCode::BadRequest);
        assert!(!e.message.contains("ada"), "{}", e.message);
    }

    #[test]
    fn f2_oversized_arguments_are_payload_too_large() {
        let e = decode::<LoginInput>("input", Some(json!({"user": "a".repeat(MAX_ARG_BYTES)})))
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::PayloadTooLarge);
    }

    #[test]
    fn the_largest_upload_chunk_fits_only_the_chunk_bound() {
        use base64::Engine;
        let data = base64::engine::general_purpose::STANDARD.encode(vec![
            0xa5u8;
            paw_client::UPLOAD_CHUNK_BYTES
                as usize
        ]);
        let raw = json!({"transfer_id": "t1", "offset": 0, "data": data});
        let e = decode::<paw_proto::files::UploadChunkInput>("input", Some(raw.clone()));
        assert_eq!(e.unwrap_err().code, ErrorCode::PayloadTooLarge);
        let ok = decode_at_most::<paw_proto::files::UploadChunkInput>(
            "input",
            Some(raw),
            MAX_CHUNK_ARG_BYTES,
        );
        assert_eq!(ok.unwrap().data.len(), data.len());
    }

    #[test]
    fn f2_a_rejected_pin_is_never_quoted_back() {
        let e = decode::<PinInput>("input", Some(json!({"pin": ["s3cret-PIN"]}))).unwrap_err();
        assert_eq!(e.code, ErrorCode::BadRequest);
        assert!(!e.message.contains("s3cret"), "{}", e.message);
    }

    #[test]
    fn f2_elevation_arguments_are_checked_for_shape() {
        use paw_proto::ipc::{ElevationAction, RevokeGrantInput};
        for raw in [
            json!(-1),
            json!(1.5),
            json!("7"),
            json!(u64::MAX as f64 * 2.0),
        ] {
            let e = decode::<u64>("since", Some(raw.clone())).unwrap_err();
            assert_eq!(e.code, ErrorCode::BadRequest, "{raw}");
        }
        assert_eq!(decode::<u64>("since", Some(json!(42))).unwrap(), 42);
        for raw in [
            json!({"op": "grant_everything"}),
            json!({"op": "decide", "request_id": "r1", "approve": "yes", "comment": ""}),
            json!({"op": "decide", "request_id": "r1", "approve": true, "comment": "", "x": 1}),
            json!({"op": "break_glass", "entitlement": "e"}),
        ] {
            let e = decode::<ElevationAction>("action", Some(raw.clone())).unwrap_err();
            assert_eq!(e.code, ErrorCode::BadRequest, "{raw}");
        }
        let a: ElevationAction = decode(
            "action",
            Some(json!({"op": "decide", "request_id": "r1", "approve": false, "comment": "no"})),
        )
        .unwrap();
        assert!(matches!(a, ElevationAction::Decide { approve: false, .. }));
        let e = decode::<RevokeGrantInput>("input", Some(json!({"id": "g1"}))).unwrap_err();
        assert!(e.message.contains("reason"), "{}", e.message);
    }

    #[test]
    fn good_arguments_decode() {
        let v: LoginInput = decode("input", Some(json!({"user": "alice"}))).unwrap();
        assert_eq!(v.user, "alice");
    }
}
