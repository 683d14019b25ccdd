//! Values from an OpenAPI document's own schemas, for `openapi_requests.rs` (which includes
//! this file with `#[path]`): a value each schema accepts, and for each string, integer or
//! boolean its documented bounds at and beyond and values of every other JSON type.
#![allow(dead_code)]

use std::collections::BTreeSet;

use paw_proto::http::MAX_AHEAD_OF_BROKER_MS;
use serde_json::{json, Map, Value};

/// An id of the documented shape that names nothing.
pub const NIL_ID: &str = "00000000-0000-4000-8000-000000000000";

/// Follows `$ref`s and picks, of a `oneOf`/`anyOf`, the first variant that is not `null`; an
/// `allOf` is merged. The result has no `$ref` at its top.
pub fn norm(doc: &Value, s: &Value) -> Value {
    let mut s = s.clone();
    for _ in 0..32 {
        if let Some(r) = s["$ref"].as_str() {
            let name = r.rsplit('/').next().unwrap();
            s = doc["components"]["schemas"][name].clone();
            continue;
        }
        if let Some(vs) = s["oneOf"].as_array().or(s["anyOf"].as_array()) {
            let pick = vs
                .iter()
                .find(|v| norm(doc, v)["type"] != "null")
                .cloned()
                .unwrap_or(Value::Null);
            s = pick;
            continue;
        }
        if let Some(parts) = s["allOf"].as_array().cloned() {
            let mut merged = Map::new();
            let (mut props, mut required) = (Map::new(), Vec::new());
            for p in &parts {
                let p = norm(doc, p);
                for (k, v) in p.as_object().into_iter().flatten() {
                    match k.as_str() {
                        "properties" => props.extend(v.as_object().cloned().unwrap_or_default()),
                        "required" => required.extend(v.as_array().cloned().unwrap_or_default()),
                        _ => {
                            merged.insert(k.clone(), v.clone());
                        }
                    }
                }
            }
            if !props.is_empty() {
                merged.insert("properties".into(), Value::Object(props));
            }
            if !required.is_empty() {
                merged.insert("required".into(), Value::Array(required));
            }
            s = Value::Object(merged);
            continue;
        }
        break;
    }
    s
}

/// The JSON types a schema accepts (after [`norm`], plus `null` when a variant is).
pub fn types(doc: &Value, raw: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut add = |s: &Value| match &s["type"] {
        Value::String(t) => {
            out.insert(t.clone());
        }
        Value::Array(ts) => out.extend(ts.iter().filter_map(|t| t.as_str().map(str::to_owned))),
        _ => {}
    };
    let r = if raw["$ref"].is_string() {
        norm(doc, raw)
    } else {
        raw.clone()
    };
    for v in r["oneOf"]
        .as_array()
        .or(r["anyOf"].as_array())
        .into_iter()
        .flatten()
    {
        add(&norm(doc, v));
    }
    add(&norm(doc, &r));
    if r["nullable"] == true {
        out.insert("null".into());
    }
    if out.contains("integer") {
        out.insert("number".into());
    }
    out
}

pub fn first_type(s: &Value) -> String {
    match &s["type"] {
        Value::String(t) => t.clone(),
        Value::Array(ts) => ts
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null")
            .to_owned(),
        _ if s["properties"].is_object() => "object".into(),
        _ => String::new(),
    }
}

/// A string of exactly `len` characters the schema accepts, if one of the usual alphabets does.
pub fn string_of(s: &Value, len: usize) -> Option<String> {
    if let Some(e) = s["enum"].as_array() {
        return e.first().and_then(Value::as_str).map(str::to_owned);
    }
    match s["format"].as_str() {
        Some("uuid") if len == 36 => return Some(NIL_ID.into()),
        Some("date-time") => return Some("2026-01-01T00:00:00Z".into()),
        _ => {}
    }
    // The document's own example first: some values (a key on its curve) no pattern can state.
    if let Some(e) = s["example"].as_str().filter(|e| e.chars().count() == len) {
        return Some(e.to_owned());
    }
    ["a", "A", "0", "7", "ab", "a-", "a.", "a:"]
        .iter()
        .map(|unit| unit.repeat(len).chars().take(len).collect::<String>())
        .find(|c| fits(s, c))
}

/// Whether a string meets the schema's pattern and lengths.
pub fn fits(s: &Value, text: &str) -> bool {
    let n = text.chars().count() as u64;
    s["pattern"]
        .as_str()
        .is_none_or(|p| regex::Regex::new(p).unwrap().is_match(text))
        && s["minLength"].as_u64().is_none_or(|m| n >= m)
        && s["maxLength"].as_u64().is_none_or(|m| n <= m)
}

pub fn min_len(s: &Value) -> usize {
    let min = s["minLength"].as_u64().unwrap_or(0) as usize;
    match s["format"].as_str() {
        Some("uuid") => 36,
        _ => min.max(1),
    }
}

/// A value the schema accepts; with `full`, every optional property too.
pub fn example(doc: &Value, raw: &Value, full: bool, depth: usize) -> Value {
    let s = norm(doc, raw);
    if let Some(e) = s["enum"].as_array().and_then(|e| e.first()) {
        return e.clone();
    }
    if let Some(c) = s.get("const") {
        return c.clone();
    }
    match first_type(&s).as_str() {
        "string" => {
            let by_example = s["example"].as_str().filter(|e| fits(&s, e));
            // The shortest string of a usual alphabet the pattern and lengths accept.
            let text = by_example
                .map(str::to_owned)
                .or_else(|| (min_len(&s)..=300).find_map(|n| string_of(&s, n)));
            Value::String(text.unwrap_or_else(|| "a".into()))
        }
        "integer" | "number" => {
            let lo = s["minimum"].as_i64().unwrap_or(1).max(1);
            let hi = s["maximum"].as_i64().unwrap_or(i64::MAX);
            json!(lo.min(hi))
        }
        "boolean" => json!(true),
        "array" => {
            let n = s["minItems"].as_u64().unwrap_or(0);
            let item = example(doc, &s["items"], full, depth + 1);
            Value::Array((0..n).map(|_| item.clone()).collect())
        }
        "object" => {
            let required: BTreeSet<&str> = s["required"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let mut out = Map::new();
            for (name, p) in s["properties"].as_object().into_iter().flatten() {
                if (full && depth < 4) || required.contains(name.as_str()) {
                    out.insert(name.clone(), example(doc, p, full, depth + 1));
                }
            }
            Value::Object(out)
        }
        _ => json!("a"),
    }
}

/// A property of the body: where its parent object is, its name, its schema as written.
pub struct Field {
    pub parent: String,
    pub name: String,
    pub raw: Value,
    pub required: bool,
}

pub fn fields(doc: &Value, raw: &Value, at: &str, depth: usize, out: &mut Vec<Field>) {
    let s = norm(doc, raw);
    let required: BTreeSet<&str> = s["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    for (name, p) in s["properties"].as_object().into_iter().flatten() {
        out.push(Field {
            parent: at.to_owned(),
            name: name.clone(),
            raw: p.clone(),
            required: required.contains(name.as_str()),
        });
        if depth < 3 && first_type(&norm(doc, p)) == "object" {
            fields(doc, p, &format!("{at}/{name}"), depth + 1, out);
        }
    }
}

/// `(label, value, allowed by the schema)` for one string, integer or boolean schema: its
/// documented bounds, at and beyond, and values of every other JSON type. `now` is the
/// broker's clock, for a bound relative to it ([`MAX_AHEAD_OF_BROKER_MS`]).
pub fn values(doc: &Value, raw: &Value, now: i64) -> Vec<(String, Value, bool)> {
    let s = norm(doc, raw);
    let accepted = types(doc, raw);
    let mut out = Vec::new();
    for (label, wrong) in [
        ("null", Value::Null),
        ("a boolean", json!(true)),
        ("a number", json!(12345)),
        ("a fraction", json!(1.5)),
        ("a string", json!("not-the-type")),
        ("an array", json!(["x"])),
        ("an object", json!({"x": 1})),
    ] {
        let t = match &wrong {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(n) if n.is_i64() => "integer",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        };
        if !accepted.is_empty() && !accepted.contains(t) {
            out.push((format!("as {label}"), wrong, false));
        }
    }
    match first_type(&s).as_str() {
        "string" if s["enum"].is_null() && s["format"] != "uuid" => {
            let min = s["minLength"].as_u64().unwrap_or(0) as usize;
            if min > 0 {
                out.push((
                    format!("{} chars (< minLength)", min - 1),
                    json!("a".repeat(min - 1)),
                    false,
                ));
            } else {
                out.push(("empty".into(), json!(""), fits(&s, "")));
            }
            match s["maxLength"].as_u64() {
                Some(max) => {
                    let max = max as usize;
                    if let Some(at) = string_of(&s, max) {
                        out.push((format!("{max} chars (= maxLength)"), json!(at), true));
                        let over = string_of(&s, max + 1).unwrap_or_else(|| format!("{at}a"));
                        out.push((
                            format!("{} chars (> maxLength)", max + 1),
                            json!(over),
                            false,
                        ));
                    }
                }
                // Nothing documented: a long string is one the schema allows.
                None => {
                    if let Some(long) = string_of(&s, 4096) {
                        out.push(("4096 chars (no maxLength)".into(), json!(long), true));
                    }
                }
            }
            let odd = "a\u{0}é";
            out.push(("with a NUL and non-ASCII".into(), json!(odd), fits(&s, odd)));
        }
        "string" if s["enum"].is_array() => {
            out.push((
                "not one of its enum".into(),
                json!("no-such-variant"),
                false,
            ));
        }
        "integer" | "number" => {
            let min = s["minimum"].as_i64();
            let max = s["maximum"].as_i64();
            match min {
                Some(m) => {
                    out.push((format!("{m} (= minimum)"), json!(m), true));
                    out.push((format!("{} (< minimum)", m - 1), json!(m - 1), false));
                }
                None => out.push(("-1 (no minimum)".into(), json!(-1), true)),
            }
            match max {
                Some(m) => {
                    out.push((format!("{m} (= maximum)"), json!(m), true));
                    out.push((
                        format!("{} (> maximum)", m + 1),
                        json!(m.saturating_add(1)),
                        false,
                    ));
                }
                None => match s[MAX_AHEAD_OF_BROKER_MS].as_i64() {
                    Some(ahead) => {
                        let at = now + ahead;
                        out.push((
                            format!("{at} (= the broker's clock + {ahead})"),
                            json!(at),
                            true,
                        ));
                        out.push((
                            format!("{} (> the broker's clock + {ahead})", at + 1),
                            json!(at + 1),
                            false,
                        ));
                    }
                    None => {
                        let big: i64 = if s["format"] == "int32" {
                            i32::MAX.into()
                        } else {
                            i64::MAX
                        };
                        out.push((format!("{big} (no maximum)"), json!(big), true));
                    }
                },
            }
        }
        _ => {}
    }
    out
}

/// The path with each `{param}` replaced by `fill(param)`.
pub fn concrete(path: &str, fill: &dyn Fn(&str) -> String) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let j = rest[i..].find('}').unwrap();
        out.push_str(&fill(&rest[i + 1..i + j]));
        rest = &rest[i + j + 1..];
    }
    out.push_str(rest);
    out
}

pub fn set(v: &mut Value, parent: &str, name: &str, to: Option<Value>) -> bool {
    let Some(obj) = v.pointer_mut(parent).and_then(Value::as_object_mut) else {
        return false;
    };
    match to {
        Some(to) => obj.insert(name.to_owned(), to),
        None => obj.remove(name),
    };
    true
}

pub fn query_string(pairs: &[(String, String)]) -> String {
    if pairs.is_empty() {
        return String::new();
    }
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    let parts: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect();
    format!("?{}", parts.join("&"))
}

pub fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
