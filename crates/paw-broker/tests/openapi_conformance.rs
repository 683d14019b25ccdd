//! Schemathesis-style conformance of the OpenAPI document (issue 13): every operation in
//! `/openapi.json` is called — anonymously, as a user and as an admin, with no body, an empty
//! object, unknown fields, bytes that are not JSON, an oversized body, an unknown query
//! parameter and ids that name nothing — and every answer must be a status that operation
//! documents, with an `{code, message}` body whose code carries that status.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;

use common::idp::{Broker, Caller};
use paw_proto::{ApiError, ErrorCode};
use serde_json::Value;

const METHODS: &[&str] = &["get", "post", "put", "patch", "delete"];

/// The path with every `{param}` replaced by an id that names nothing.
fn concrete(path: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let j = rest[i..].find('}').unwrap();
        out.push_str("00000000-0000-4000-8000-000000000000");
        rest = &rest[i + j + 1..];
    }
    out.push_str(rest);
    out
}

fn bodies(op: &Value, max_body: usize) -> Vec<Vec<u8>> {
    let mut out = vec![Vec::new()];
    if !op["requestBody"].is_null() {
        out.push(b"{}".to_vec());
        out.push(br#"{"no_such_field": 1}"#.to_vec());
        out.push(b"this is not json".to_vec());
        out.push(vec![b'x'; max_body + 1]);
    }
    out
}

fn queries(op: &Value) -> Vec<&'static str> {
    let has_query = op["parameters"]
        .as_array()
        .is_some_and(|ps| ps.iter().any(|p| p["in"] == "query"));
    if has_query {
        vec!["", "?no_such_param=1", "?limit=not-a-number"]
    } else {
        vec![""]
    }
}

#[tokio::test]
async fn every_answer_of_every_operation_is_documented() {
    let b = Broker::start().await;
    let ada = b.enrolled_as("ada", &["admin"]).await.caller();
    let bob = b.enrolled("bob").await.caller();
    let callers: [(&str, Option<&Caller>); 3] = [
        ("anonymous", None),
        ("bob", Some(&bob)),
        ("ada", Some(&ada)),
    ];
    let (status, doc) = b.send("GET", "/openapi.json", Vec::new(), &[]).await;
    assert_eq!(status, 200);
    let max_body = paw_broker::config::Limits::default().max_body_bytes;

    let mut seen = BTreeSet::new();
    let mut problems = Vec::new();
    let mut calls = 0;
    // Sign-out ends the callers' sign-ins: probed last, so every other operation meets live
    // callers (and their 404s).
    let mut paths: Vec<_> = doc["paths"].as_object().unwrap().iter().collect();
    paths.sort_by_key(|(path, _)| path.as_str() == "/v1/auth/sign-out");
    for (path, item) in paths {
        for method in METHODS {
            let Some(op) = item.get(*method) else {
                continue;
            };
            let documented: BTreeSet<u16> = op["responses"]
                .as_object()
                .unwrap()
                .keys()
                .filter_map(|k| k.parse().ok())
                .collect();
            let m = method.to_uppercase();
            for query in queries(op) {
                let uri = format!("{}{query}", concrete(path));
                for body in bodies(op, max_body) {
                    for (who, caller) in &callers {
                        let headers = caller
                            .map(|c| c.headers(&b, &m, &uri, &body))
                            .unwrap_or_default();
                        let res = b.respond(&m, &uri, body.clone(), &headers).await;
                        let status = res.status().as_u16();
                        calls += 1;
                        seen.insert(status);
                        if !documented.contains(&status) {
                            problems.push(format!(
                                "{m} {path}{query} as {who} with a {}-byte body: {status} is not documented ({documented:?})",
                                body.len()
                            ));
                        }
                        if status >= 400 {
                            let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
                                .await
                                .unwrap();
                            match serde_json::from_slice::<ApiError>(&bytes) {
                                Ok(e) if e.code.http_status() == status => {}
                                Ok(e) => problems.push(format!(
                                    "{m} {path}: code {} carries {}, answered {status}",
                                    e.code,
                                    e.code.http_status()
                                )),
                                Err(_) => problems
                                    .push(format!("{m} {path}: {status} without an ApiError body")),
                            }
                        }
                    }
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} undocumented answers:\n{}",
        problems.len(),
        problems.join("\n")
    );
    // The probes reached every stage: parsing, size, authentication, lookups.
    for want in [200, 400, 401, 404, 413] {
        assert!(
            seen.contains(&want),
            "no probe answered {want}: {seen:?} in {calls} calls"
        );
    }
    assert!(calls > 200, "{calls}");
}

/// Every operation lists the status of each code its service's error type declares
/// (`service_error!`), so a refusal added to a service is documented by that alone; and every
/// operation is tagged with a service, so none falls back to the infrastructure codes only.
#[test]
fn every_operation_documents_the_codes_of_its_service_error() {
    let doc = serde_json::to_value(paw_broker::http::openapi()).unwrap();
    let known = [
        "identity",
        "keys",
        "elevation",
        "sessions",
        "audit",
        "machines",
        "vault",
        "system",
    ];
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            let Some(op) = item.get(*method) else {
                continue;
            };
            let tags = op["tags"].as_array().cloned().unwrap_or_default();
            assert!(!tags.is_empty(), "{method} {path} has no tag");
            for tag in tags {
                let tag = tag.as_str().unwrap();
                assert!(known.contains(&tag), "{method} {path}: unknown tag {tag}");
                for code in paw_broker::http::statuses::service_codes(tag) {
                    let status = code.http_status().to_string();
                    assert!(
                        !op["responses"][&status].is_null(),
                        "{method} {path} ({tag}) can answer {} with {status} but does not document it",
                        code.as_str()
                    );
                }
            }
        }
    }
    // The elevation service refuses a second decision with `conflict`: its operations say 409.
    let approve = &doc["paths"]["/v1/requests/{id}/decide"]["post"];
    assert!(!approve["responses"]["409"].is_null(), "{approve}");
}

/// Every operation lists the statuses its parts can produce, each with the ApiError body.
#[test]
fn every_operation_documents_the_errors_of_its_parts() {
    let doc = serde_json::to_value(paw_broker::http::openapi()).unwrap();
    let mut ops = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            let Some(op) = item.get(*method) else {
                continue;
            };
            ops += 1;
            let want = paw_broker::http::statuses::error_statuses(op);
            for status in want {
                let r = &op["responses"][status.to_string()];
                assert!(!r.is_null(), "{method} {path} does not document {status}");
                assert_eq!(
                    r["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/ApiError",
                    "{method} {path} {status}"
                );
            }
            for (status, r) in op["responses"].as_object().unwrap() {
                if status.starts_with('4') || status.starts_with('5') {
                    assert!(
                        !r["content"]["application/json"]["schema"].is_null(),
                        "{method} {path} {status} has no body schema"
                    );
                }
            }
        }
    }
    assert!(ops >= 30, "{ops}");
    // The shared `DeviceProof` parameter reaches the document under its wire name and place.
    let signed = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|item| METHODS.iter().filter_map(move |m| item.get(*m)))
        .filter(|op| {
            op["parameters"].as_array().is_some_and(|ps| {
                ps.iter()
                    .any(|p| p["name"] == "paw-device-proof" && p["in"] == "header")
            })
        })
        .count();
    assert!(signed >= 25, "{signed} operations declare paw-device-proof");
    // Each documented error status is one some error code really carries.
    let codes: BTreeSet<u16> = doc["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            serde_json::from_value::<ErrorCode>(n.clone())
                .unwrap()
                .http_status()
        })
        .collect();
    for want in [400, 401, 403, 404, 408, 409, 413, 415, 429, 500, 503] {
        assert!(codes.contains(&want), "{want}");
    }
}

/// The schema states the limits the broker enforces, and their values are those of the one
/// place they are defined (paw-policy's `limits`): a limit changed there and not in the
/// schema's attributes fails here.
#[test]
fn the_schema_states_the_limits_from_their_one_place() {
    use paw_policy::limits::{MAX_HISTORY_FILTER_CHARS, MAX_HISTORY_PAGE, MAX_NAME_CHARS};
    let doc = serde_json::to_value(paw_broker::http::openapi()).unwrap();
    let schemas = &doc["components"]["schemas"];
    let login_user = &schemas["LoginStartRequest"]["properties"]["user"];
    assert_eq!(login_user["maxLength"], MAX_NAME_CHARS, "{login_user}");
    assert_eq!(login_user["minLength"], 1, "{login_user}");
    assert_eq!(login_user["pattern"], "^[A-Za-z0-9._@-]+$", "{login_user}");
    // The pattern is the broker's own rule for a name.
    for (name, ok) in [
        ("ada.smith@corp", true),
        ("ada smith", false),
        ("a/b", false),
    ] {
        assert_eq!(
            paw_broker::base::util::validate_name("user", name).is_ok(),
            ok,
            "{name}"
        );
    }
    let key_name = &schemas["EnrollFinishRequest"]["properties"]["name"];
    assert_eq!(key_name["maxLength"], MAX_NAME_CHARS, "{key_name}");

    let params = doc["paths"]["/v1/sessions/history"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .clone();
    let param = |name: &str| {
        params
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("no parameter {name}"))["schema"]
            .clone()
    };
    assert_eq!(param("limit")["maximum"], MAX_HISTORY_PAGE);
    assert_eq!(param("limit")["minimum"], 1);
    for name in ["user", "target"] {
        assert_eq!(param(name)["maxLength"], MAX_HISTORY_FILTER_CHARS, "{name}");
    }
}
