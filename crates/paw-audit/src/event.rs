//! Audit events and their canonical byte encoding.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How the audited action ended (or that it is about to start).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Written *before* a privileged action starts (fail closed: no record, no action).
    /// A later event records how it ended.
    Started,
    Success,
    /// The action was attempted and failed.
    Failure,
    /// Policy or authentication refused the action.
    Denied,
}

impl Outcome {
    pub const ALL: [Outcome; 4] = [
        Outcome::Started,
        Outcome::Success,
        Outcome::Failure,
        Outcome::Denied,
    ];

    /// Stable tag used in the canonical encoding; never derived from the variant's name,
    /// so renaming a variant cannot change old hashes.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Started => "started",
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Denied => "denied",
        }
    }
}

/// One audit event. `seq` is its position in its chain (the first event has seq 1);
/// `time_ms` is Unix time in milliseconds from the writer's clock, recorded, not trusted
/// for ordering (seq orders the chain).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub seq: u64,
    pub time_ms: i64,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub outcome: Outcome,
    pub detail: Value,
}

/// The canonical bytes of an event, the input to its record hash.
///
/// Layout, all integers big-endian:
/// `seq:u64 | time_ms:i64 | str(actor) | str(action) | str(subject) | str(outcome tag) | value(detail)`
/// where `str(s) = len:u64 | utf8 bytes` and `value` is a typed, length-prefixed tree:
/// `n` null, `f`/`t` booleans, `#` str(number text), `s` str, `[` count:u64 then items,
/// `{` count:u64 then (str(key), value) pairs sorted by key bytes.
/// Sorting here, not in serde_json, keeps the bytes independent of `preserve_order`.
pub fn canonical(event: &Event) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(&event.seq.to_be_bytes());
    out.extend_from_slice(&event.time_ms.to_be_bytes());
    put_str(&mut out, &event.actor);
    put_str(&mut out, &event.action);
    put_str(&mut out, &event.subject);
    put_str(&mut out, event.outcome.as_str());
    put_value(&mut out, &event.detail);
    out
}

/// The canonical bytes of a detail value alone: the store compares these before and after a
/// JSON round trip, so a value that would read back differently is refused, not stored.
pub(crate) fn canonical_detail(detail: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    put_value(&mut out, detail);
    out
}

fn put_len(out: &mut Vec<u8>, len: usize) {
    // usize is at most 64 bits on every supported target.
    out.extend_from_slice(&(len as u64).to_be_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_len(out, s.len());
    out.extend_from_slice(s.as_bytes());
}

/// Iterative so that a deeply nested `detail` cannot overflow the stack while hashing.
fn put_value(out: &mut Vec<u8>, root: &Value) {
    enum Item<'a> {
        Value(&'a Value),
        Key(&'a str),
    }
    let mut stack = vec![Item::Value(root)];
    while let Some(item) = stack.pop() {
        let value = match item {
            Item::Key(key) => {
                put_str(out, key);
                continue;
            }
            Item::Value(value) => value,
        };
        match value {
            Value::Null => out.push(b'n'),
            Value::Bool(false) => out.push(b'f'),
            Value::Bool(true) => out.push(b't'),
            Value::Number(n) => {
                out.push(b'#');
                put_str(out, &n.to_string());
            }
            Value::String(s) => {
                out.push(b's');
                put_str(out, s);
            }
            Value::Array(items) => {
                out.push(b'[');
                put_len(out, items.len());
                stack.extend(items.iter().rev().map(Item::Value));
            }
            Value::Object(map) => {
                out.push(b'{');
                put_len(out, map.len());
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
                for (key, value) in entries.into_iter().rev() {
                    stack.push(Item::Value(value));
                    stack.push(Item::Key(key));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(actor: &str, action: &str, detail: Value) -> Event {
        Event {
            seq: 1,
            time_ms: 1_700_000_000_000,
            actor: actor.into(),
            action: action.into(),
            subject: "grant:42".into(),
            outcome: Outcome::Success,
            detail,
        }
    }

    #[test]
    fn d2_field_boundaries_are_unambiguous() {
        let a = canonical(&event("ab", "c", Value::Null));
        let b = canonical(&event("a", "bc", Value::Null));
        assert_ne!(a, b);
    }

    #[test]
    fn d2_detail_types_are_distinguished() {
        let variants = [
            json!(null),
            json!(false),
            json!(true),
            json!(1),
            json!("1"),
            json!(1.5),
            json!([]),
            json!({}),
            json!([1]),
            json!({"1": 1}),
            json!(["a", "b"]),
            json!(["ab"]),
        ];
        let encodings: Vec<_> = variants
            .iter()
            .map(|v| canonical(&event("a", "b", v.clone())))
            .collect();
        for (i, x) in encodings.iter().enumerate() {
            for y in &encodings[i + 1..] {
                assert_ne!(x, y);
            }
        }
    }

    #[test]
    fn d2_detail_key_order_does_not_matter() {
        let mut first = serde_json::Map::new();
        first.insert("b".into(), json!(2));
        first.insert("a".into(), json!({"y": 1, "x": [true, null]}));
        let mut second = serde_json::Map::new();
        second.insert("a".into(), json!({"x": [true, null], "y": 1}));
        second.insert("b".into(), json!(2));
        assert_eq!(
            canonical(&event("a", "b", Value::Object(first))),
            canonical(&event("a", "b", Value::Object(second)))
        );
    }

    #[test]
    fn deep_detail_does_not_overflow_the_stack() {
        let mut v = json!(0);
        for _ in 0..100_000 {
            v = Value::Array(vec![v]);
        }
        let mut e = event("a", "b", v);
        let bytes = canonical(&e);
        assert!(bytes.len() > 100_000 * 9);
        // serde_json's Value drops recursively; unwind it by hand so the test itself is safe.
        let mut v = std::mem::take(&mut e.detail);
        while let Value::Array(mut inner) = v {
            v = inner.pop().unwrap_or(Value::Null);
        }
    }

    #[test]
    fn canonical_layout_is_as_documented() {
        let e = Event {
            seq: 1,
            time_ms: -1,
            actor: "a".into(),
            action: "".into(),
            subject: "s".into(),
            outcome: Outcome::Denied,
            detail: json!({"k": [null, true]}),
        };
        let mut want = Vec::new();
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1]);
        want.extend_from_slice(&[0xff; 8]);
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1, b'a']);
        want.extend_from_slice(&[0; 8]);
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1, b's']);
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 6]);
        want.extend_from_slice(b"denied");
        want.extend_from_slice(&[b'{', 0, 0, 0, 0, 0, 0, 0, 1]);
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1, b'k']);
        want.extend_from_slice(&[b'[', 0, 0, 0, 0, 0, 0, 0, 2, b'n', b't']);
        assert_eq!(canonical(&e), want);
    }
}
