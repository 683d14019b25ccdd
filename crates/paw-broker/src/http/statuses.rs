//! The error statuses of each operation, documented from the stages that produce them rather
//! than written beside each handler: every request passes the layers (timeout, body limit,
//! panic catcher, storage), a JSON body passes [`super::ApiJson`], a signed request passes
//! authentication and the throttle, a path parameter names something that may not exist. Each
//! status is described by the [`ErrorCode`]s that carry it, read from the document's own
//! `ErrorCode` schema, so a new code shows up without an edit here.
//! `tests/openapi_conformance.rs` sends requests to every operation and fails on an answer
//! whose status the document does not list.

use std::collections::{BTreeMap, BTreeSet};

use paw_proto::ErrorCode;
use serde_json::{json, Value};

use crate::audit::error::AuditError;
use crate::base::error::{BrokerError, ServiceError};
use crate::elevation::error::ElevationError;
use crate::identity::error::IdentityError;
use crate::machines::error::MachinesError;
use crate::sessions::error::SessionsError;
use crate::vault::error::VaultError;

/// The header every authenticated operation declares.
const DEVICE_PROOF: &str = "paw-device-proof";

/// What any request can meet: the request timeout, a panic caught as `internal`, the
/// database being down.
const EVERY_REQUEST: &[u16] = &[408, 500, 503];
/// A body: unparsable or wrong fields, too large, not JSON.
const WITH_BODY: &[u16] = &[400, 413, 415];
/// A query string that does not parse.
const WITH_QUERY: &[u16] = &[400];
/// A path parameter naming nothing (or something of another user's).
const WITH_PATH: &[u16] = &[404];
/// A signed request: malformed proof, unauthenticated or re-authentication required, a
/// locked account or a missing role, throttled failures, and a body where none belongs.
const SIGNED: &[u16] = &[400, 401, 403, 413, 429];

/// The error type of the service behind each tag: its handlers call that service, so they
/// can answer with each code the type declares (`service_error!`).
pub fn service_codes(tag: &str) -> Vec<ErrorCode> {
    match tag {
        "identity" | "keys" => IdentityError::codes(),
        "elevation" => ElevationError::codes(),
        "sessions" => SessionsError::codes(),
        "audit" => AuditError::codes(),
        "machines" => MachinesError::codes(),
        "vault" => VaultError::codes(),
        _ => BrokerError::codes(),
    }
}

/// The statuses one operation can answer with an error, from the parts it declares and the
/// error type of its service.
pub fn error_statuses(op: &Value) -> BTreeSet<u16> {
    let mut out: BTreeSet<u16> = EVERY_REQUEST.iter().copied().collect();
    for tag in op["tags"].as_array().into_iter().flatten() {
        let codes = service_codes(tag.as_str().unwrap_or_default());
        out.extend(codes.iter().map(|c| c.http_status()));
    }
    let params = op["parameters"].as_array().cloned().unwrap_or_default();
    let has = |place: &str| params.iter().any(|p| p["in"] == place);
    if !op["requestBody"].is_null() {
        out.extend(WITH_BODY);
    }
    if has("query") {
        out.extend(WITH_QUERY);
    }
    if has("path") {
        out.extend(WITH_PATH);
    }
    if params
        .iter()
        .any(|p| p["in"] == "header" && p["name"] == DEVICE_PROOF)
    {
        out.extend(SIGNED);
    }
    out
}

/// Status → the error codes the broker answers it with, from the `ErrorCode` schema.
fn codes_by_status(doc: &Value) -> BTreeMap<u16, Vec<String>> {
    let mut out: BTreeMap<u16, Vec<String>> = BTreeMap::new();
    let names = doc["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for name in names {
        if let Ok(code) = serde_json::from_value::<ErrorCode>(name.clone()) {
            out.entry(code.http_status())
                .or_default()
                .push(format!("`{}`", code.as_str()));
        }
    }
    out
}

/// Adds, to every operation, each error status its parts can produce and it does not list
/// yet, with the `ApiError` body.
pub fn document(doc: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    let Ok(mut v) = serde_json::to_value(&doc) else {
        return doc;
    };
    let codes = codes_by_status(&v);
    let Some(paths) = v["paths"].as_object_mut() else {
        return doc;
    };
    for item in paths.values_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for op in item.values_mut() {
            if op.get("responses").is_none() {
                continue;
            }
            for status in error_statuses(op) {
                let key = status.to_string();
                if op["responses"].get(&key).is_some() {
                    continue;
                }
                let words = codes.get(&status).map(|c| c.join(", ")).unwrap_or_default();
                op["responses"][key] = json!({
                    "description": words,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ApiError"}}}
                });
            }
        }
    }
    serde_json::from_value(v).unwrap_or(doc)
}
