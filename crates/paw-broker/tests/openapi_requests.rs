//! F1 from the document itself: for every operation in `/openapi.json` the requests are
//! generated from its own schemas — no auth and bad auth, no body, a body of another content
//! type, bytes that are not JSON, each required field missing, an unknown field, each field
//! with each wrong JSON type, strings at and beyond their documented lengths, integers at and
//! beyond their documented bounds (and, where none is documented, values the schema allows),
//! path parameters that are too long or odd, query parameters unknown, wrong-typed and at and
//! beyond their bounds. Every answer must be a status the operation documents (bad input never
//! a 5xx), and an error must be `{code, message}` with a known code that carries that status,
//! under a status documented with the `ApiError` schema. A request the schema allows must not be
//! refused as malformed (400, 413, 415): a rule the broker enforces is one the document states.
//! All mismatches are collected and reported in one assertion.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "common/openapi_schema.rs"]
mod schema;

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::Request;
use common::idp::{Broker, Caller};
use paw_proto::ApiError;
use schema::{
    concrete, example, fields, first_type, norm, query_string, scalar, set, values, NIL_ID,
};
use serde_json::{json, Value};
use tower::ServiceExt;

const METHODS: &[&str] = &["get", "post", "put", "patch", "delete"];
const JSON: &str = "application/json";

/// Who sends a probe.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Auth {
    /// No `Authorization` or proof header.
    None,
    /// A bearer token and a proof that mean nothing.
    Bad,
    /// A live session's token with a fresh proof of this exact request.
    Caller,
}

/// One generated request.
struct Probe {
    what: String,
    path: String,
    query: String,
    body: Vec<u8>,
    content_type: Option<&'static str>,
    auth: Auth,
    /// The document allows this request: it must not be refused as malformed.
    allowed: bool,
}

/// Every probe of one operation.
fn probes(doc: &Value, path: &str, op: &Value, max_body: usize, now: i64) -> Vec<Probe> {
    let params = op["parameters"].as_array().cloned().unwrap_or_default();
    let signed = params
        .iter()
        .any(|p| p["in"] == "header" && p["name"] == "paw-device-proof");
    let auth = if signed { Auth::Caller } else { Auth::None };
    // Each path parameter with a value its schema allows.
    let path_value = |name: &str| {
        params
            .iter()
            .find(|p| p["in"] == "path" && p["name"] == name)
            .map(|p| match example(doc, &p["schema"], false, 0) {
                Value::String(s) if s.chars().count() < 36 => NIL_ID.to_owned(),
                v => scalar(&v),
            })
            .unwrap_or_else(|| NIL_ID.into())
    };
    let base_path = concrete(path, &path_value);
    // The query: every required parameter with a value its schema allows.
    let query_params: Vec<&Value> = params.iter().filter(|p| p["in"] == "query").collect();
    let base_query: Vec<(String, String)> = query_params
        .iter()
        .filter(|p| p["required"] == true)
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_owned(),
                scalar(&example(doc, &p["schema"], false, 0)),
            )
        })
        .collect();
    let body_schema = &op["requestBody"]["content"][JSON]["schema"];
    let has_body = !body_schema.is_null();
    let minimal = has_body.then(|| example(doc, body_schema, false, 0));
    let full = has_body.then(|| example(doc, body_schema, true, 0));
    let bytes = |v: &Option<Value>| {
        v.as_ref()
            .map(|v| serde_json::to_vec(v).unwrap())
            .unwrap_or_default()
    };
    let ct = has_body.then_some(JSON);
    let probe = |what: String,
                 path: String,
                 query: &[(String, String)],
                 body: Vec<u8>,
                 content_type,
                 auth,
                 allowed| Probe {
        what,
        path,
        query: query_string(query),
        body,
        content_type,
        auth,
        allowed,
    };
    let mut out = Vec::new();
    out.push(probe(
        "the minimal request".into(),
        base_path.clone(),
        &base_query,
        bytes(&minimal),
        ct,
        auth,
        true,
    ));
    if has_body {
        out.push(probe(
            "every optional field".into(),
            base_path.clone(),
            &base_query,
            bytes(&full),
            ct,
            auth,
            true,
        ));
    }
    if signed {
        out.push(probe(
            "no auth".into(),
            base_path.clone(),
            &base_query,
            bytes(&minimal),
            ct,
            Auth::None,
            true,
        ));
        out.push(probe(
            "bad auth".into(),
            base_path.clone(),
            &base_query,
            bytes(&minimal),
            ct,
            Auth::Bad,
            true,
        ));
    }
    // Path parameters: too long, odd characters.
    let path_params: Vec<String> = params
        .iter()
        .filter(|p| p["in"] == "path")
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect();
    for name in &path_params {
        for (label, value) in [
            ("4096 chars", "a".repeat(4096)),
            ("a space, quote and NUL", "a%20%27%22%00b".to_owned()),
            ("an encoded slash and dots", "..%2F..%2Fetc".to_owned()),
            ("non-ASCII", "%C3%A9%E2%80%A8".to_owned()),
            ("invalid UTF-8", "%FF%FE".to_owned()),
        ] {
            let p = concrete(path, &|n| {
                if n == name {
                    value.clone()
                } else {
                    path_value(n)
                }
            });
            out.push(probe(
                format!("path {{{name}}} {label}"),
                p,
                &base_query,
                bytes(&minimal),
                ct,
                auth,
                false,
            ));
        }
    }
    // Query parameters: unknown, and each documented one wrong-typed and at its bounds.
    let mut unknown = base_query.clone();
    unknown.push(("no_such_param".into(), "1".into()));
    out.push(probe(
        "an unknown query parameter".into(),
        base_path.clone(),
        &unknown,
        bytes(&minimal),
        ct,
        auth,
        query_params.is_empty(),
    ));
    for p in &query_params {
        let name = p["name"].as_str().unwrap();
        for (label, v, allowed) in values(doc, &p["schema"], now) {
            // A query carries text: only values whose text is not of the parameter's type.
            if matches!(v, Value::Array(_) | Value::Object(_) | Value::Null) {
                continue;
            }
            let mut q: Vec<_> = base_query
                .iter()
                .filter(|(k, _)| k != name)
                .cloned()
                .collect();
            q.push((name.to_owned(), scalar(&v)));
            let t = first_type(&norm(doc, &p["schema"]));
            let allowed = allowed
                && match (&v, t.as_str()) {
                    (Value::String(s), "integer" | "number") => s.parse::<f64>().is_ok(),
                    (Value::String(s), "boolean") => s == "true" || s == "false",
                    _ => true,
                };
            out.push(probe(
                format!("query {name} {label}"),
                base_path.clone(),
                &q,
                bytes(&minimal),
                ct,
                auth,
                allowed,
            ));
        }
    }
    if !has_body {
        // A body where none belongs.
        out.push(probe(
            "an unexpected JSON body".into(),
            base_path.clone(),
            &base_query,
            b"{}".to_vec(),
            Some(JSON),
            auth,
            false,
        ));
        return out;
    }
    let minimal = minimal.unwrap();
    let full = full.unwrap();
    let q = &base_query;
    let bp = || base_path.clone();
    out.push(probe(
        "no body".into(),
        bp(),
        q,
        Vec::new(),
        None,
        auth,
        false,
    ));
    out.push(probe(
        "an empty JSON body".into(),
        bp(),
        q,
        Vec::new(),
        Some(JSON),
        auth,
        false,
    ));
    out.push(probe(
        "Content-Type: text/plain".into(),
        bp(),
        q,
        bytes(&Some(minimal.clone())),
        Some("text/plain"),
        auth,
        false,
    ));
    out.push(probe(
        "no Content-Type".into(),
        bp(),
        q,
        bytes(&Some(minimal.clone())),
        None,
        auth,
        false,
    ));
    out.push(probe(
        "invalid JSON".into(),
        bp(),
        q,
        b"{\"a\": ".to_vec(),
        Some(JSON),
        auth,
        false,
    ));
    out.push(probe(
        "JSON null".into(),
        bp(),
        q,
        b"null".to_vec(),
        Some(JSON),
        auth,
        false,
    ));
    out.push(probe(
        "a JSON array".into(),
        bp(),
        q,
        b"[]".to_vec(),
        Some(JSON),
        auth,
        false,
    ));
    out.push(probe(
        "an oversized body".into(),
        bp(),
        q,
        vec![b' '; max_body + 1],
        Some(JSON),
        auth,
        false,
    ));
    let mut extra = minimal.clone();
    let closed = norm(doc, body_schema)["additionalProperties"] == false;
    if let Some(o) = extra.as_object_mut() {
        o.insert("no_such_field".into(), json!(1));
        out.push(probe(
            "an unknown field".into(),
            bp(),
            q,
            bytes(&Some(extra)),
            ct,
            auth,
            !closed,
        ));
    }
    let mut fs = Vec::new();
    fields(doc, body_schema, "", 0, &mut fs);
    for f in &fs {
        let at = format!("{}/{}", f.parent, f.name);
        if f.required {
            let mut v = full.clone();
            if set(&mut v, &f.parent, &f.name, None) {
                out.push(probe(
                    format!("{at} missing"),
                    bp(),
                    q,
                    bytes(&Some(v)),
                    ct,
                    auth,
                    false,
                ));
            }
        } else {
            let mut v = minimal.clone();
            if v.pointer(&f.parent).is_some_and(Value::is_object) {
                let _ = set(
                    &mut v,
                    &f.parent,
                    &f.name,
                    Some(example(doc, &f.raw, false, 1)),
                );
                out.push(probe(
                    format!("{at} alone of the optional fields"),
                    bp(),
                    q,
                    bytes(&Some(v)),
                    ct,
                    auth,
                    true,
                ));
            }
        }
        for (label, value, allowed) in values(doc, &f.raw, now) {
            let mut v = full.clone();
            if set(&mut v, &f.parent, &f.name, Some(value)) {
                out.push(probe(
                    format!("{at} {label}"),
                    bp(),
                    q,
                    bytes(&Some(v)),
                    ct,
                    auth,
                    allowed,
                ));
            }
        }
    }
    out
}

/// What is wrong with one answer, if anything.
fn judge(op: &Value, probe: &Probe, status: u16, content_type: &str, bytes: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let documented = &op["responses"][status.to_string()];
    if documented.is_null() {
        let listed: Vec<&String> = op["responses"].as_object().unwrap().keys().collect();
        out.push(format!(
            "answered {status}, which it does not document ({listed:?})"
        ));
    }
    if status >= 500 && !probe.allowed {
        out.push(format!("answered {status}: bad input must never be a 5xx"));
    }
    if status < 400 {
        return out;
    }
    if !documented.is_null()
        && documented["content"][JSON]["schema"]["$ref"] != "#/components/schemas/ApiError"
    {
        out.push(format!(
            "{status} is documented without the ApiError schema"
        ));
    }
    let text = String::from_utf8_lossy(bytes);
    if !content_type.starts_with(JSON) {
        out.push(format!("{status} with Content-Type {content_type:?}"));
    }
    match serde_json::from_slice::<ApiError>(bytes) {
        Err(e) => out.push(format!(
            "{status} body is not {{code, message}} ({e}): {text:.120}"
        )),
        Ok(err) => {
            if err.code.http_status() != status {
                out.push(format!(
                    "code {} carries {}, answered {status}",
                    err.code,
                    err.code.http_status()
                ));
            }
            if probe.allowed && matches!(status, 400 | 413 | 415) {
                out.push(format!(
                    "the schema allows this request; refused {status} {}: {:.160}",
                    err.code, err.message
                ));
            }
        }
    }
    out
}

async fn send(b: &Broker, ada: &Caller, method: &str, p: &Probe) -> axum::response::Response {
    let uri = format!("{}{}", p.path, p.query);
    let mut req = Request::builder().method(method).uri(&uri);
    if let Some(ct) = p.content_type {
        req = req.header("content-type", ct);
    }
    let headers: Vec<(String, String)> = match p.auth {
        Auth::None => Vec::new(),
        Auth::Bad => vec![
            ("authorization".into(), "Bearer not-a-token".into()),
            ("paw-device-proof".into(), "not-a-proof".into()),
        ],
        Auth::Caller => ada.headers(b, method, &uri, &p.body),
    };
    for (k, v) in headers {
        req = req.header(k, v);
    }
    b.app
        .clone()
        .oneshot(req.body(Body::from(p.body.clone())).unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn f1_every_generated_request_gets_a_documented_answer() {
    let b = Broker::start().await;
    let (status, doc) = b.send("GET", "/openapi.json", Vec::new(), &[]).await;
    assert_eq!(status, 200);
    let max_body = paw_broker::config::Limits::default().max_body_bytes;
    // Sign-out ends the caller's session: probed last.
    let mut paths: Vec<(&String, &Value)> = doc["paths"].as_object().unwrap().iter().collect();
    paths.sort_by_key(|(path, _)| path.as_str() == "/v1/auth/sign-out");

    let mut problems = Vec::new();
    let (mut calls, mut ops) = (0, 0);
    let mut seen = BTreeSet::new();
    for (path, item) in paths {
        for method in METHODS {
            let Some(op) = item.get(*method) else {
                continue;
            };
            ops += 1;
            let m = method.to_uppercase();
            // A fresh caller per operation: one operation's refusals never throttle another's.
            let caller = b.enrolled_as(&format!("u{ops}"), &["admin"]).await.caller();
            for p in probes(&doc, path, op, max_body, b.now()) {
                let res = send(&b, &caller, &m, &p).await;
                calls += 1;
                let status = res.status().as_u16();
                seen.insert(status);
                let ct = res
                    .headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                // A live event stream is not read to its end.
                let bytes = if ct.starts_with("text/event-stream") {
                    Vec::new()
                } else {
                    axum::body::to_bytes(res.into_body(), 1 << 22)
                        .await
                        .unwrap()
                        .to_vec()
                };
                for problem in judge(op, &p, status, &ct, &bytes) {
                    problems.push(format!(
                        "{m} {path} [{}; auth {:?}]: {problem}",
                        p.what, p.auth
                    ));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} mismatches between the document and the broker's answers ({calls} requests, {ops} operations):\n{}",
        problems.len(),
        problems.join("\n")
    );
    // The probes reached every stage: success, parsing, size, media type, authentication, lookups.
    for want in [200, 400, 401, 404, 413, 415] {
        assert!(seen.contains(&want), "no probe answered {want}: {seen:?}");
    }
    assert!(
        ops >= 40 && calls > 1000,
        "{ops} operations, {calls} requests"
    );
}
