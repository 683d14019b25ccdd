//! F2 through the real IPC: every command the app registers, called from the real app's WebView
//! with `window.__TAURI_INTERNALS__.invoke` (the path the UI's own calls take: the isolation
//! frame, Tauri's ACL and dispatcher, then the command), with missing, null, wrong-typed, empty,
//! oversized and unknown-field arguments. Each bad call is refused with the app's typed
//! `{code, message}`, within a bound, never a success, and the app answers afterwards.
//!
//! The list of commands is read from the app's sources at test time (the names shared with
//! Tauri's ACL, the `generate_handler!` list, the capability and the commands' signatures), so a
//! new command or argument fails this test until it has an entry in [`examples`].
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use paw_e2e::{App, Broker};
use serde_json::{json, Map, Value};

/// A bound for one IPC call. Bad arguments are refused before any I/O, so this is only
/// generous for a loaded machine; the well-formed controls may reach the broker.
const CALL_LIMIT_MS: u64 = 20_000;

/// Placeholders the page expands, so 1 MiB values are built there instead of crossing WebDriver
/// hundreds of times: a string of 1 MiB, an array of 64 Ki strings (1.1 MiB as JSON; past both
/// of args.rs's bounds, 64 KiB and the upload chunk's 512 KiB) and a fresh channel.
const BIG_STRING: &str = "\u{1}big-string";
const BIG_ARRAY: &str = "\u{1}big-array";
const CHANNEL: &str = "\u{1}channel";

/// For each command that takes an argument: its name and a well-formed value that the decoder
/// accepts and that the core then refuses or answers without changing anything (ids that do
/// not exist, settings it rejects), and which of the value's fields may be left out.
/// Every field and the value as a whole are then varied from this.
fn examples() -> Vec<(&'static str, &'static str, Value, &'static [&'static str])> {
    let spec = json!({
        "name": "f2-machine", "owner": "ada", "backup_owner": null, "purpose": "f2 check",
        "environment": "?", "expires_at_ms": null, "labels": {}, "auth": {"kind": "key"},
        "sources": []
    });
    vec![
        // An http URL and a missing CA: the core refuses both, so nothing is saved.
        (
            "save_settings",
            "input",
            json!({"broker_url": "http://f2.invalid", "ca_path": "/nonexistent/ca.pem"}),
            &["fallback_urls"],
        ),
        // Not https: refused before the system browser is asked.
        ("open_external", "url", json!("http://example.com/f2"), &[]),
        (
            "enroll",
            "input",
            json!({"code": "f2-code", "key_name": "?"}),
            &[],
        ),
        ("login", "input", json!({"user": "nobody-f2"}), &[]),
        (
            "rename_key",
            "input",
            json!({"id": "no-such-key", "name": "f2"}),
            &[],
        ),
        (
            "prepare_step_up",
            "action",
            json!({"op": "revoke", "id": "?"}),
            &[],
        ),
        ("confirm_step_up", "id", json!("no-such-prompt"), &[]),
        ("cancel_step_up", "id", json!("no-such-prompt"), &[]),
        ("submit_pin", "input", json!({"pin": "f2-pin-1234"}), &[]),
        (
            "prepare_elevation",
            "action",
            json!({"op": "decide", "request_id": "?", "approve": false, "comment": "f2"}),
            &[],
        ),
        ("confirm_elevation", "id", json!("no-such-prompt"), &[]),
        ("cancel_request", "id", json!("?"), &[]),
        ("release_grant", "id", json!("?"), &[]),
        (
            "revoke_grant",
            "input",
            json!({"id": "?", "reason": "f2"}),
            &[],
        ),
        (
            "close_review",
            "input",
            json!({"id": "?", "comment": "f2"}),
            &[],
        ),
        ("live_events", "since", json!(0), &[]),
        (
            "audit_query",
            "input",
            json!({"limit": 1, "offset": 0}),
            &["from_ms", "until_ms", "kind", "target", "outcome", "text"],
        ),
        (
            "audit_export",
            "input",
            json!({"limit": 1, "offset": 0}),
            &["from_ms", "until_ms", "kind", "target", "outcome", "text"],
        ),
        ("prepare_session", "input", json!({"grant_id": "?"}), &[]),
        ("open_terminal", "id", json!("no-such-prompt"), &[]),
        (
            "terminal_input",
            "input",
            json!({"session_id": "no-such-session", "data": "f2"}),
            &[],
        ),
        (
            "terminal_resize",
            "input",
            json!({"session_id": "no-such-session", "cols": 80, "rows": 24}),
            &[],
        ),
        ("close_terminal", "input", json!({"session_id": "?"}), &[]),
        (
            "prepare_kill_session",
            "input",
            json!({"session_id": "?", "reason": "f2"}),
            &[],
        ),
        ("confirm_kill_session", "id", json!("no-such-prompt"), &[]),
        ("watch_session", "input", json!({"session_id": "?"}), &[]),
        ("stop_watch", "input", json!({"session_id": "?"}), &[]),
        (
            "prepare_hold_decision",
            "input",
            json!({"hold_id": "?", "approve": true}),
            &[],
        ),
        ("confirm_hold_decision", "id", json!("no-such-prompt"), &[]),
        ("open_forward", "id", json!("no-such-prompt"), &[]),
        ("stop_forward", "input", json!({"session_id": "?"}), &[]),
        (
            "session_history",
            "input",
            json!({"limit": 1}),
            &[
                "user", "target", "reason", "from_ms", "until_ms", "limit", "offset",
            ],
        ),
        (
            "session_recording",
            "input",
            json!({"session_id": "?"}),
            &[],
        ),
        ("session_files", "input", json!({"session_id": "?"}), &[]),
        (
            "save_session_file",
            "input",
            json!({"session_id": "?", "n": 1}),
            &[],
        ),
        ("open_in_terminal", "id", json!("no-such-prompt"), &[]),
        ("open_files", "id", json!("no-such-prompt"), &[]),
        ("close_files", "input", json!({"session_id": "?"}), &[]),
        (
            "list_remote",
            "input",
            json!({"session_id": "?", "path": "/"}),
            &[],
        ),
        (
            "start_upload",
            "input",
            json!({"session_id": "?", "remote_path": "/tmp/f2", "size": 1}),
            &[],
        ),
        (
            "upload_chunk",
            "input",
            json!({"transfer_id": "no-such-transfer", "offset": 0, "data": "AA=="}),
            &[],
        ),
        (
            "start_download",
            "input",
            json!({"session_id": "?", "remote_path": "/tmp/f2"}),
            &[],
        ),
        (
            "finish_transfer",
            "input",
            json!({"transfer_id": "no-such-transfer"}),
            &[],
        ),
        (
            "cancel_transfer",
            "input",
            json!({"transfer_id": "no-such-transfer"}),
            &[],
        ),
        (
            "prepare_create_machine",
            "spec",
            spec.clone(),
            &["backup_owner", "expires_at_ms", "labels", "sources"],
        ),
        (
            "confirm_create_machine",
            "input",
            json!({"id": "no-such-prompt", "spec": spec}),
            &[],
        ),
        (
            "prepare_transfer_machine",
            "input",
            json!({"machine": "?", "owner": "ada"}),
            &[],
        ),
        (
            "confirm_transfer_machine",
            "id",
            json!("no-such-prompt"),
            &[],
        ),
        (
            "prepare_reveal",
            "input",
            json!({"account_id": "?", "grant_id": "?", "reason": "f2"}),
            &[],
        ),
        ("confirm_reveal", "id", json!("no-such-prompt"), &[]),
        (
            "prepare_rotation",
            "input",
            json!({"account_id": "?", "reason": "f2"}),
            &[],
        ),
        ("confirm_rotation", "id", json!("no-such-prompt"), &[]),
    ]
}

/// What a call must answer.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Expect {
    /// Refused by the argument decoder: `bad_request` naming the argument.
    Rejected,
    /// Refused by the decoder's size bound: `payload_too_large` naming the argument.
    TooLarge,
    /// Refused with `bad_request`, whatever the message (bytes for arguments: there is no
    /// argument to name).
    BadRequest,
    /// An empty string: refused with `{code, message}`, any code (an empty id is the core's to
    /// refuse); or, where the well-formed call succeeded, the same success (closing or
    /// cancelling something that does not exist is a no-op for any id, the empty one too).
    Empty,
    /// An optional field set to null: the decoder may take it (an `Option`) or refuse it (a
    /// defaulted list or map), either way with a typed answer.
    Answered,
    /// Passes the decoder: whatever the core answers, it is not an argument rejection.
    Decoded,
    /// Exactly what the well-formed call answered (success or error code).
    SameAsControl,
}

struct Case {
    label: String,
    /// The argument a decoder refusal must name.
    arg: String,
    /// The invoke arguments (with placeholders), or `None` for a raw bytes payload.
    args: Option<Value>,
    expect: Expect,
}

fn case(label: impl Into<String>, arg: &str, args: Value, expect: Expect) -> Case {
    Case {
        label: label.into(),
        arg: arg.into(),
        args: Some(args),
        expect,
    }
}

/// Values of other JSON types than `v`'s (numbers: a fraction too, which no integer field
/// takes), one of them carrying a marker that must never be quoted back.
fn wrong_types(v: &Value) -> Vec<Value> {
    let all = [
        json!(42),
        json!(1.5),
        json!(true),
        json!("s3cret-f2"),
        json!(["s3cret-f2"]),
        json!({"s3cret-f2": 1}),
    ];
    all.into_iter()
        .filter(|w| match (v, w) {
            (Value::Number(a), Value::Number(b)) => a.is_u64() != b.is_u64(),
            // Valid for no `Option<T>` field, whatever its T.
            (Value::Null, _) => w.is_boolean() || w.is_array() || w.is_object(),
            _ => std::mem::discriminant(v) != std::mem::discriminant(w),
        })
        .collect()
}

/// The cases for one argument `arg` with well-formed `example`, next to `channels` (each a
/// valid channel).
fn cases_for(
    arg: &str,
    example: &Value,
    optional: &[&str],
    channels: &Map<String, Value>,
) -> Vec<Case> {
    let with = |v: Value| {
        let mut m = channels.clone();
        m.insert(arg.to_owned(), v);
        Value::Object(m)
    };
    let mut out = vec![
        case(
            "well-formed (control)",
            arg,
            with(example.clone()),
            Expect::Decoded,
        ),
        case(
            "no arguments",
            arg,
            Value::Object(channels.clone()),
            Expect::Rejected,
        ),
        case("null", arg, with(Value::Null), Expect::Rejected),
        case(
            "1 MiB string",
            arg,
            with(json!(BIG_STRING)),
            Expect::TooLarge,
        ),
        case("1 MiB array", arg, with(json!(BIG_ARRAY)), Expect::TooLarge),
        case(
            "unknown extra argument next to it",
            arg,
            {
                let mut a = with(example.clone());
                a["zz_unknown"] = json!(BIG_STRING);
                a
            },
            Expect::SameAsControl,
        ),
    ];
    // Not an object at all: a string has no `arg` in it; `invoke` sends an array as bytes.
    out.push(case(
        "arguments a string",
        arg,
        json!("junk"),
        Expect::Rejected,
    ));
    out.push(case(
        "arguments an array",
        arg,
        json!([1, 2]),
        Expect::BadRequest,
    ));
    out.push(Case {
        label: "arguments raw bytes".into(),
        arg: arg.into(),
        args: None,
        expect: Expect::BadRequest,
    });
    // Each channel: missing, null, of the wrong type, or a string that names no channel.
    for c in channels.keys() {
        for (label, v) in [
            ("missing", None),
            ("null", Some(Value::Null)),
            ("42", Some(json!(42))),
            ("not a channel", Some(json!("s3cret-f2"))),
        ] {
            let mut a = with(example.clone());
            match v {
                None => drop(a.as_object_mut().unwrap().remove(c)),
                Some(v) => a[c] = v,
            }
            out.push(case(format!("`{c}` {label}"), c, a, Expect::Rejected));
        }
    }
    for w in wrong_types(example) {
        out.push(case(
            format!("wrong type {w}"),
            arg,
            with(w),
            Expect::Rejected,
        ));
    }
    match example {
        Value::String(_) => out.push(case("empty string", arg, with(json!("")), Expect::Empty)),
        Value::Object(fields) => {
            out.push(case("empty string", arg, with(json!("")), Expect::Rejected));
            let mut extra = fields.clone();
            extra.insert("zz_unknown".into(), json!(1));
            out.push(case(
                "unknown field",
                arg,
                with(Value::Object(extra)),
                Expect::Rejected,
            ));
            if fields.keys().any(|k| !optional.contains(&k.as_str())) {
                out.push(case("empty object", arg, with(json!({})), Expect::Rejected));
            }
            for (name, value) in fields {
                let is_optional = optional.contains(&name.as_str());
                let field = |v: Value| {
                    let mut f = fields.clone();
                    f.insert(name.clone(), v);
                    with(Value::Object(f))
                };
                let mut missing = fields.clone();
                missing.remove(name);
                out.push(case(
                    format!("`{name}` missing"),
                    arg,
                    with(Value::Object(missing)),
                    if is_optional {
                        Expect::Decoded
                    } else {
                        Expect::Rejected
                    },
                ));
                if !value.is_null() {
                    out.push(case(
                        format!("`{name}` null"),
                        arg,
                        field(Value::Null),
                        if is_optional {
                            Expect::Answered
                        } else {
                            Expect::Rejected
                        },
                    ));
                }
                for w in wrong_types(value) {
                    out.push(case(
                        format!("`{name}` {w}"),
                        arg,
                        field(w),
                        Expect::Rejected,
                    ));
                }
                if value.is_string() {
                    out.push(case(
                        format!("`{name}` empty"),
                        arg,
                        field(json!("")),
                        Expect::Empty,
                    ));
                }
                out.push(case(
                    format!("`{name}` 1 MiB string"),
                    arg,
                    field(json!(BIG_STRING)),
                    Expect::TooLarge,
                ));
            }
        }
        _ => {}
    }
    out
}

/// Runs `cases` against `cmd` in the page, one after another, each bounded: for each,
/// `{ok, value, ms}` or `{hang: true}`.
async fn run(app: &App, cmd: &str, cases: &[Case]) -> Vec<Value> {
    let payloads: Vec<Value> = cases
        .iter()
        .map(|c| c.args.clone().unwrap_or(json!({"\u{1}bytes": true})))
        .collect();
    let answer = tokio::time::timeout(
        Duration::from_millis(CALL_LIMIT_MS * (cases.len() as u64 + 1)),
        app.client.execute_async(
            r#"const [cmd, payloads, limit, big, arr, chan, done] = arguments;
            const I = window.__TAURI_INTERNALS__;
            const expand = (v) => {
                if (v === big) return 'a'.repeat(1 << 20);
                if (v === arr) return new Array(1 << 16).fill('a'.repeat(15));
                if (v === chan) return '__CHANNEL__:' + I.transformCallback(() => {});
                if (Array.isArray(v)) return v.map(expand);
                if (v && typeof v === 'object') {
                    const o = {};
                    for (const k of Object.keys(v)) o[k] = expand(v[k]);
                    return o;
                }
                return v;
            };
            (async () => {
                const out = [];
                for (const p of payloads) {
                    const args = p && p['\u0001bytes'] ? new Uint8Array([1, 2, 3]) : expand(p);
                    const t0 = performance.now();
                    const timer = new Promise((ok) => setTimeout(() => ok({hang: true}), limit));
                    const call = I.invoke(cmd, args).then(
                        (value) => ({ok: true, value: value === undefined ? null : value}),
                        (value) => ({ok: false, value: value === undefined ? null : value}));
                    const r = await Promise.race([call, timer]);
                    r.ms = Math.round(performance.now() - t0);
                    out.push(r);
                }
                return out;
            })().then((out) => done(JSON.stringify(out)), (e) => done(JSON.stringify(String(e))));"#,
            vec![
                json!(cmd),
                json!(payloads),
                json!(CALL_LIMIT_MS),
                json!(BIG_STRING),
                json!(BIG_ARRAY),
                json!(CHANNEL),
            ],
        ),
    )
    .await
    .unwrap_or_else(|_| panic!("{cmd}: the page did not answer in time"))
    .unwrap_or_else(|e| panic!("{cmd}: WebDriver: {e}"));
    let text = answer.as_str().unwrap();
    match serde_json::from_str(text).unwrap() {
        Value::Array(results) => results,
        other => panic!("{cmd}: the page script failed: {other}"),
    }
}

/// `Some((code, message))` when `r` is the app's typed error.
fn typed_error(r: &Value) -> Option<(String, String)> {
    if r["ok"] != json!(false) {
        return None;
    }
    let v = r["value"].as_object()?;
    if v.len() != 2 {
        return None;
    }
    Some((
        v.get("code")?.as_str()?.into(),
        v.get("message")?.as_str()?.into(),
    ))
}

/// Checks one answer against its expectation; `Err` says what was wrong.
fn check(c: &Case, r: &Value, control: &Value) -> Result<(), String> {
    if r["hang"] == json!(true) {
        return Err(format!("no answer within {CALL_LIMIT_MS} ms"));
    }
    let typed = typed_error(r);
    if let Some((_, message)) = &typed {
        // Never the payload (1 MiB) or a planted value quoted back.
        if message.len() > 300 || message.contains("s3cret") || message.contains("aaaaaaaa") {
            return Err(format!("the message quotes the input: {message:.200}"));
        }
    }
    let decoder = |code: &str| {
        typed
            .as_ref()
            .is_some_and(|(k, m)| k == code && m.starts_with(&format!("`{}`", c.arg)))
    };
    let ok = match c.expect {
        Expect::Rejected => decoder("bad_request"),
        Expect::TooLarge => decoder("payload_too_large"),
        Expect::BadRequest => typed.as_ref().is_some_and(|(k, _)| k == "bad_request"),
        Expect::Empty => {
            typed.is_some() || (r["ok"] == json!(true) && control["ok"] == json!(true))
        }
        Expect::Answered => typed.is_some() || r["ok"] == json!(true),
        Expect::Decoded => {
            (r["ok"] == json!(true) || typed.is_some())
                && !decoder("bad_request")
                && !decoder("payload_too_large")
        }
        Expect::SameAsControl => {
            r["ok"] == control["ok"]
                && typed.as_ref().map(|t| &t.0) == typed_error(control).as_ref().map(|t| &t.0)
        }
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "expected {:?}, got {:.300}",
            c.expect,
            r.to_string()
        ))
    }
}

fn source(rel: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A command's parameters as the page must send them, read from its signature in
/// src-tauri/src/commands.rs.
#[derive(Debug, Default)]
struct Signature {
    /// The JSON arguments (`Option<Value>`, decoded by args.rs).
    json: Vec<String>,
    /// The channel arguments (named `channel`: a UI `Channel`, sent as `__CHANNEL__:ID`).
    channels: Vec<String>,
}

/// Every `#[tauri::command]` in commands.rs with its signature. A parameter of any other kind
/// than the core's `State`, a JSON argument or a channel fails the test: it would be decoded
/// by Tauri, outside args.rs.
fn signatures() -> Vec<(String, Signature)> {
    let text = source("src-tauri/src/commands.rs");
    let mut out = Vec::new();
    for chunk in text.split("#[tauri::command]").skip(1) {
        let after_fn = chunk.split_once("fn ").unwrap().1;
        let (name, rest) = after_fn.split_once('(').unwrap();
        // The parameter list ends at the `)` that closes it; types nest `<>` but not `()`.
        let params = rest.split_once(')').unwrap().0;
        let mut sig = Signature::default();
        let mut depth = 0;
        let mut current = String::new();
        let mut parts = Vec::new();
        for ch in params.chars() {
            match ch {
                '<' => depth += 1,
                '>' => depth -= 1,
                ',' if depth == 0 => {
                    parts.push(std::mem::take(&mut current));
                    continue;
                }
                _ => {}
            }
            current.push(ch);
        }
        parts.push(current);
        for p in parts.iter().map(|p| p.trim()).filter(|p| !p.is_empty()) {
            let (pname, ty) = p.split_once(':').unwrap();
            let ty: String = ty.split_whitespace().collect();
            match ty.as_str() {
                // Supplied by Tauri, not by the page.
                t if t.starts_with("State<") || t == "tauri::Webview" => {}
                // The UI's `Channel`, decoded through args.rs too.
                "Option<Value>" if pname.trim() == "channel" => {
                    sig.channels.push(pname.trim().into())
                }
                "Option<Value>" => sig.json.push(pname.trim().into()),
                t => panic!("{name}: parameter `{p}` ({t}) is not decoded through args.rs"),
            }
        }
        out.push((name.trim().to_owned(), sig));
    }
    out
}

/// The command names in command_names.rs, main.rs's `generate_handler!` and the capability,
/// which must be the same set.
fn registered() -> BTreeSet<String> {
    let names_rs = source("src-tauri/src/command_names.rs");
    let list = names_rs
        .split_once("= &[")
        .unwrap()
        .1
        .split_once("];")
        .unwrap()
        .0;
    let names: BTreeSet<String> = list
        .split(',')
        .map(|s| s.trim().trim_matches('"').to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    let main_rs = source("src-tauri/src/main.rs");
    let handler = main_rs
        .split_once("generate_handler![")
        .unwrap()
        .1
        .split_once(']')
        .unwrap()
        .0;
    let handled: BTreeSet<String> = handler
        .split(',')
        .map(|s| s.trim().trim_start_matches("commands::").to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    let capability: Value =
        serde_json::from_str(&source("src-tauri/capabilities/main.json")).unwrap();
    let allowed: BTreeSet<String> = capability["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            p.as_str()
                .unwrap()
                .trim_start_matches("allow-")
                .replace('-', "_")
        })
        .collect();
    assert_eq!(
        names, handled,
        "command_names.rs and generate_handler! differ"
    );
    assert_eq!(names, allowed, "command_names.rs and the capability differ");
    names
}

/// The app's status, through its IPC: it still answers.
async fn answers(app: &App, after: &str) -> Value {
    let status = app.invoke("app_status", json!({})).await.unwrap();
    let v: Value = serde_json::from_str(&status)
        .unwrap_or_else(|_| panic!("after {after}, app_status answered {status}"));
    assert!(v["build"]["version"].is_string(), "after {after}: {status}");
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f2_every_ipc_command_refuses_bad_arguments_with_a_typed_error() {
    let names = registered();
    let sigs = signatures();
    let in_source: BTreeSet<String> = sigs.iter().map(|(n, _)| n.clone()).collect();
    assert_eq!(
        names, in_source,
        "the registered commands and commands.rs differ"
    );
    let examples = examples();
    let with_args: BTreeSet<String> = sigs
        .iter()
        .filter(|(_, s)| !s.json.is_empty())
        .map(|(n, _)| n.clone())
        .collect();
    let covered: BTreeSet<String> = examples.iter().map(|e| e.0.to_owned()).collect();
    assert_eq!(
        with_args, covered,
        "every command with an argument needs an example here"
    );

    let broker = Broker::start_trusting_virtual_key().unwrap();
    let app = App::launch(Some(&broker)).await.unwrap();
    // One page script runs all of a command's calls, each bounded in the page; WebDriver's
    // own 30 s default would cut a long batch short on a loaded machine. [`run`] bounds the
    // batch instead.
    let mut timeouts = fantoccini::wd::TimeoutConfiguration::default();
    timeouts.set_script(Some(Duration::from_secs(3600)));
    app.client.update_timeouts(timeouts).await.unwrap();
    app.enroll_and_sign_in(&broker, "ada").await.unwrap();
    let mut failures = Vec::new();
    let mut calls = 0;
    let mut total_ms = 0;
    let mut slowest = (0u64, String::new());
    // Sign-out last, so that every other command runs signed in.
    let mut order: Vec<&(String, Signature)> = sigs.iter().filter(|(n, _)| n != "logout").collect();
    order.extend(sigs.iter().filter(|(n, _)| n == "logout"));
    for (cmd, sig) in order {
        let channels: Map<String, Value> = sig
            .channels
            .iter()
            .map(|c| (c.clone(), json!(CHANNEL)))
            .collect();
        let cases = match sig.json.as_slice() {
            [] => {
                // No argument: whatever is sent next to nothing changes nothing.
                let junk = json!({"input": BIG_STRING, "id": null, "zz_unknown": [1]});
                vec![
                    case(
                        "no arguments (control)",
                        "",
                        json!({}),
                        Expect::SameAsControl,
                    ),
                    case("unknown arguments", "", junk, Expect::SameAsControl),
                    case(
                        "arguments a string",
                        "",
                        json!("junk"),
                        Expect::SameAsControl,
                    ),
                    case("arguments an array", "", json!([1, 2]), Expect::BadRequest),
                    Case {
                        label: "arguments raw bytes".into(),
                        arg: String::new(),
                        args: None,
                        expect: Expect::BadRequest,
                    },
                ]
            }
            [arg] => {
                let (_, name, example, optional) = examples
                    .iter()
                    .find(|e| e.0 == cmd)
                    .unwrap_or_else(|| panic!("no example for {cmd}"));
                assert_eq!(name, arg, "{cmd}'s argument is `{arg}`");
                cases_for(arg, example, optional, &channels)
            }
            more => panic!("{cmd} takes several JSON arguments ({more:?}): vary each"),
        };
        let results = run(&app, cmd, &cases).await;
        assert_eq!(results.len(), cases.len(), "{cmd}");
        let control = results[0].clone();
        for (c, r) in cases.iter().zip(&results) {
            calls += 1;
            let ms = r["ms"].as_u64().unwrap_or_default();
            total_ms += ms;
            if ms > slowest.0 {
                slowest = (ms, format!("{cmd} / {}", c.label));
            }
            if let Err(e) = check(c, r, &control) {
                failures.push(format!("{cmd} / {}: {e}", c.label));
            }
        }
        answers(&app, cmd).await;
    }
    // A name outside the app's commands is refused by Tauri and changes nothing.
    let unknown = app
        .invoke("reveal_every_secret", json!({"input": {}}))
        .await
        .unwrap();
    assert!(unknown.starts_with("refused: "), "{unknown}");
    let status = answers(&app, "an unknown command").await;
    // The last command was `logout`: the app knows it is signed out.
    assert_eq!(status["user"], Value::Null, "{status}");
    app.wait_for("[data-testid=broker-state][data-state=connected]")
        .await
        .unwrap();
    eprintln!(
        "f2: {calls} IPC calls over {} commands in {total_ms} ms; slowest {} ms ({})",
        sigs.len(),
        slowest.0,
        slowest.1
    );
    assert!(
        failures.is_empty(),
        "{} of {calls} calls answered wrongly:\n{}",
        failures.len(),
        failures.join("\n")
    );
    app.close().await.unwrap();
}
