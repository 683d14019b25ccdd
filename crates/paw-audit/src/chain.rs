//! Hash-linked records: append and verify.

use sha2::{Digest, Sha256};

use crate::error::{AuditError, VerifyError, VerifyFailure};
use crate::event::{canonical, Event};

/// Domain tag of a record hash. The version lives here: a new encoding gets a new tag.
pub(crate) const RECORD_TAG: &[u8] = b"paw-audit-record-v1\0";
/// Domain tag of the genesis value, distinct from any record hash input.
const GENESIS_TAG: &[u8] = b"paw-audit-genesis-v1\0";

/// An event sealed into the chain.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub event: Event,
    /// The previous record's `hash`, or [`genesis_hash`] for the first record.
    pub prev_hash: [u8; 32],
    /// `SHA-256(RECORD_TAG || prev_hash || canonical(event))`.
    pub hash: [u8; 32],
}

/// Where a chain stands: the last seq and the last hash. Seq 0 with [`genesis_hash`] is the
/// empty chain. This pair is what a checkpoint will sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub seq: u64,
    pub hash: [u8; 32],
}

impl Head {
    pub fn genesis() -> Self {
        Head {
            seq: 0,
            hash: genesis_hash(),
        }
    }
}

/// The value the first record links to.
pub fn genesis_hash() -> [u8; 32] {
    Sha256::digest(GENESIS_TAG).into()
}

/// The hash a record with this `prev_hash` and `event` must carry.
pub fn record_hash(prev_hash: &[u8; 32], event: &Event) -> [u8; 32] {
    Sha256::new()
        .chain_update(RECORD_TAG)
        .chain_update(prev_hash)
        .chain_update(canonical(event))
        .finalize()
        .into()
}

/// The writing end of a chain. It holds only the head; storing records is the caller's job.
#[derive(Debug, Clone)]
pub struct Chain {
    head: Head,
}

impl Default for Chain {
    fn default() -> Self {
        Chain::new()
    }
}

impl Chain {
    /// An empty chain, starting at genesis.
    pub fn new() -> Self {
        Chain {
            head: Head::genesis(),
        }
    }

    /// Continue a chain from a head the caller has verified (e.g. with [`verify_from`]).
    pub fn resume(head: Head) -> Self {
        Chain { head }
    }

    pub fn head(&self) -> Head {
        self.head
    }

    /// The seq the next appended event must carry.
    pub fn next_seq(&self) -> Result<u64, AuditError> {
        self.head.seq.checked_add(1).ok_or(AuditError::SeqExhausted)
    }

    /// Seals `event` onto the chain. Its seq must be [`Chain::next_seq`]: the event is what
    /// the caller built and may already have shown or logged, so it is refused, not renumbered.
    pub fn append(&mut self, event: Event) -> Result<Record, AuditError> {
        let expected = self.next_seq()?;
        if event.seq != expected {
            return Err(AuditError::UnexpectedSeq {
                expected,
                got: event.seq,
            });
        }
        let prev_hash = self.head.hash;
        let hash = record_hash(&prev_hash, &event);
        self.head = Head {
            seq: expected,
            hash,
        };
        Ok(Record {
            event,
            prev_hash,
            hash,
        })
    }
}

/// Verifies a whole chain from genesis. See [`verify_from`].
pub fn verify(records: &[Record]) -> Result<(), VerifyError> {
    verify_from(&Head::genesis(), records).map(|_| ())
}

/// Verifies `records` as the continuation of `start` and returns the new head.
///
/// Checks, per record and in this order: its seq is the next one, it links to the previous
/// hash, and its hash matches its contents. The first failure is returned, naming the seq due
/// at that position. A chain cut short at the tail still verifies; comparing the returned
/// head with a cosigned checkpoint is what catches that (case D3).
pub fn verify_from(start: &Head, records: &[Record]) -> Result<Head, VerifyError> {
    let mut head = *start;
    for (index, record) in records.iter().enumerate() {
        let Some(seq) = head.seq.checked_add(1) else {
            return Err(VerifyError {
                seq: head.seq,
                index,
                reason: VerifyFailure::SeqExhausted,
            });
        };
        let fail = |reason| VerifyError { seq, index, reason };
        if record.event.seq != seq {
            return Err(fail(VerifyFailure::SeqMismatch {
                found: record.event.seq,
            }));
        }
        if record.prev_hash != head.hash {
            return Err(fail(VerifyFailure::BrokenLink));
        }
        if record_hash(&record.prev_hash, &record.event) != record.hash {
            return Err(fail(VerifyFailure::HashMismatch));
        }
        head = Head {
            seq,
            hash: record.hash,
        };
    }
    Ok(head)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Outcome;
    use serde_json::{json, Value};

    const LEN: u64 = 5;

    fn event(seq: u64) -> Event {
        Event {
            seq,
            time_ms: 1_700_000_000_000 + seq as i64 * 1000,
            actor: format!("user-{seq}"),
            action: "grant.request".into(),
            subject: format!("prod-db-{seq}/dba"),
            outcome: Outcome::ALL[seq as usize % 4],
            detail: json!({"ticket": format!("T-{seq}"), "secs": 3600, "why": "rotate"}),
        }
    }

    fn chain() -> Vec<Record> {
        let mut c = Chain::new();
        (1..=LEN).map(|seq| c.append(event(seq)).unwrap()).collect()
    }

    /// Every byte of a byte string with each of two bit masks applied, one at a time.
    fn byte_flips(bytes: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for i in 0..bytes.len() {
            for mask in [0x01, 0x80] {
                let mut b = bytes.to_vec();
                b[i] ^= mask;
                out.push(b);
            }
        }
        out
    }

    fn string_flips(s: &str) -> Vec<String> {
        // A flip that breaks UTF-8 cannot be represented in an Event (storage would refuse
        // to decode it), so only the flips that stay valid text are tried.
        byte_flips(s.as_bytes())
            .into_iter()
            .filter_map(|b| String::from_utf8(b).ok())
            .collect()
    }

    fn to32(b: Vec<u8>) -> [u8; 32] {
        b.try_into().unwrap()
    }

    /// Every single-byte modification of every field of `r`, with the failure it must cause.
    fn mutations(r: &Record) -> Vec<(String, Record, VerifyFailure)> {
        let mut out = Vec::new();
        let mut push = |field: &str, changed: Record, why: VerifyFailure| {
            assert_ne!(&changed, r, "mutation of {field} changed nothing");
            out.push((field.to_owned(), changed, why));
        };
        for b in byte_flips(&r.event.seq.to_be_bytes()) {
            let mut m = r.clone();
            m.event.seq = u64::from_be_bytes(b.try_into().unwrap());
            let found = m.event.seq;
            push("seq", m, VerifyFailure::SeqMismatch { found });
        }
        for b in byte_flips(&r.event.time_ms.to_be_bytes()) {
            let mut m = r.clone();
            m.event.time_ms = i64::from_be_bytes(b.try_into().unwrap());
            push("time_ms", m, VerifyFailure::HashMismatch);
        }
        for field in ["actor", "action", "subject"] {
            let original = match field {
                "actor" => &r.event.actor,
                "action" => &r.event.action,
                _ => &r.event.subject,
            };
            for s in string_flips(original) {
                let mut m = r.clone();
                match field {
                    "actor" => m.event.actor = s,
                    "action" => m.event.action = s,
                    _ => m.event.subject = s,
                }
                push(field, m, VerifyFailure::HashMismatch);
            }
        }
        for outcome in Outcome::ALL {
            if outcome != r.event.outcome {
                let mut m = r.clone();
                m.event.outcome = outcome;
                push("outcome", m, VerifyFailure::HashMismatch);
            }
        }
        let detail_text = serde_json::to_vec(&r.event.detail).unwrap();
        for b in byte_flips(&detail_text) {
            // Flips that still parse to a different value are real edits of the detail.
            if let Ok(v) = serde_json::from_slice::<Value>(&b) {
                if v != r.event.detail {
                    let mut m = r.clone();
                    m.event.detail = v;
                    push("detail", m, VerifyFailure::HashMismatch);
                }
            }
        }
        for b in byte_flips(&r.prev_hash) {
            let mut m = r.clone();
            m.prev_hash = to32(b);
            push("prev_hash", m, VerifyFailure::BrokenLink);
        }
        for b in byte_flips(&r.hash) {
            let mut m = r.clone();
            m.hash = to32(b);
            push("hash", m, VerifyFailure::HashMismatch);
        }
        out
    }

    #[test]
    fn d2_untouched_chain_verifies() {
        let records = chain();
        assert_eq!(verify(&records), Ok(()));
        let head = verify_from(&Head::genesis(), &records).unwrap();
        assert_eq!(head.seq, LEN);
        assert_eq!(head.hash, records[records.len() - 1].hash);
        assert_eq!(verify(&[]), Ok(()));
    }

    #[test]
    fn d2_every_single_byte_change_of_every_field_is_detected_at_that_record() {
        let records = chain();
        let mut tried = 0;
        let mut fields = std::collections::BTreeSet::new();
        for (index, original) in records.iter().enumerate() {
            for (field, changed, why) in mutations(original) {
                let mut tampered = records.clone();
                tampered[index] = changed;
                let err = verify(&tampered).expect_err(&field);
                assert_eq!(
                    err,
                    VerifyError {
                        seq: index as u64 + 1,
                        index,
                        reason: why
                    },
                    "record {index}, field {field}"
                );
                fields.insert(field);
                tried += 1;
            }
        }
        assert_eq!(
            fields.into_iter().collect::<Vec<_>>(),
            [
                "action",
                "actor",
                "detail",
                "hash",
                "outcome",
                "prev_hash",
                "seq",
                "subject",
                "time_ms"
            ]
        );
        assert!(tried > 1000, "only {tried} mutations tried");
    }

    #[test]
    fn d2_deleting_any_record_but_the_last_is_detected() {
        let records = chain();
        for index in 0..records.len() - 1 {
            let mut tampered = records.clone();
            tampered.remove(index);
            let missing = index as u64 + 1;
            assert_eq!(
                verify(&tampered),
                Err(VerifyError {
                    seq: missing,
                    index,
                    reason: VerifyFailure::SeqMismatch { found: missing + 1 }
                })
            );
        }
    }

    #[test]
    fn d2_deleting_the_tail_is_left_to_checkpoints_d3() {
        // Documented limit: a shorter prefix is itself a valid chain. The head it yields is
        // older than the full head, which is what a cosigned checkpoint will catch.
        let records = chain();
        let full = verify_from(&Head::genesis(), &records).unwrap();
        let cut = verify_from(&Head::genesis(), &records[..records.len() - 1]).unwrap();
        assert_ne!(full, cut);
        assert_eq!(cut.seq, full.seq - 1);
    }

    #[test]
    fn d2_swapping_any_two_records_is_detected_at_the_first() {
        let records = chain();
        for i in 0..records.len() {
            for j in i + 1..records.len() {
                let mut tampered = records.clone();
                tampered.swap(i, j);
                assert_eq!(
                    verify(&tampered),
                    Err(VerifyError {
                        seq: i as u64 + 1,
                        index: i,
                        reason: VerifyFailure::SeqMismatch {
                            found: j as u64 + 1
                        }
                    }),
                    "swap {i} and {j}"
                );
            }
        }
    }

    #[test]
    fn d2_swapping_and_renumbering_is_still_detected() {
        let records = chain();
        for i in 0..records.len() - 1 {
            let mut tampered = records.clone();
            tampered.swap(i, i + 1);
            tampered[i].event.seq = i as u64 + 1;
            tampered[i + 1].event.seq = i as u64 + 2;
            let err = verify(&tampered).unwrap_err();
            assert_eq!((err.seq, err.index), (i as u64 + 1, i));
            assert!(matches!(
                err.reason,
                VerifyFailure::BrokenLink | VerifyFailure::HashMismatch
            ));
        }
    }

    #[test]
    fn d2_duplicated_record_is_detected() {
        let records = chain();
        let mut tampered = records.clone();
        tampered.insert(2, records[2].clone());
        assert_eq!(
            verify(&tampered),
            Err(VerifyError {
                seq: 4,
                index: 3,
                reason: VerifyFailure::SeqMismatch { found: 3 }
            })
        );
    }

    #[test]
    fn d2_chain_not_starting_at_genesis_is_detected() {
        let records = chain();
        // Starting mid-chain against genesis: wrong seq first.
        assert_eq!(verify(&records[1..]).unwrap_err().index, 0);
        // A well-formed chain rooted somewhere else: broken link at the first record.
        let mut other = Chain::resume(Head {
            seq: 0,
            hash: [7; 32],
        });
        let foreign = vec![other.append(event(1)).unwrap()];
        assert_eq!(
            verify(&foreign),
            Err(VerifyError {
                seq: 1,
                index: 0,
                reason: VerifyFailure::BrokenLink
            })
        );
    }

    #[test]
    fn d2_verify_from_continues_a_verified_prefix() {
        let records = chain();
        let mid = verify_from(&Head::genesis(), &records[..2]).unwrap();
        let end = verify_from(&mid, &records[2..]).unwrap();
        assert_eq!(end, verify_from(&Head::genesis(), &records).unwrap());
        let mut resumed = Chain::resume(end);
        assert!(resumed.append(event(LEN + 1)).is_ok());
    }

    /// `record` as a storage reader would hand it over: its columns, `detail` as JSON text.
    fn stored(r: &Record) -> (String, String, String, String, String) {
        (
            r.event.actor.clone(),
            r.event.action.clone(),
            r.event.subject.clone(),
            r.event.outcome.as_str().to_owned(),
            serde_json::to_string(&r.event.detail).unwrap(),
        )
    }

    /// Verifies `records` the way storage-backed verification does, through their stored
    /// columns and [`crate::RawVerifier`].
    fn verify_raw(records: &[Record]) -> Result<(), VerifyError> {
        let columns: Vec<_> = records.iter().map(stored).collect();
        let mut v = crate::RawVerifier::new(Head::genesis(), 0);
        for (r, c) in records.iter().zip(&columns) {
            let keep_going = v.push(crate::RawRow::Record(crate::RawRecord {
                seq: r.event.seq as i64,
                time_ms: r.event.time_ms,
                actor: c.0.as_bytes(),
                action: c.1.as_bytes(),
                subject: c.2.as_bytes(),
                outcome: c.3.as_bytes(),
                detail: c.4.as_bytes(),
                prev_hash: r.prev_hash,
                hash: r.hash,
            }));
            if !keep_going {
                break;
            }
        }
        v.finish().map(|_| ())
    }

    #[test]
    fn d2_verifying_stored_columns_agrees_with_verify_from_on_every_tamper() {
        let records = chain();
        assert_eq!(verify_raw(&records), Ok(()));
        let mut tried = 0;
        let mut agree = |tampered: &[Record]| {
            assert_eq!(verify_raw(tampered), verify(tampered), "{tampered:?}");
            tried += 1;
        };
        for (index, original) in records.iter().enumerate() {
            for (_, changed, _) in mutations(original) {
                let mut tampered = records.clone();
                tampered[index] = changed;
                agree(&tampered);
            }
            let mut deleted = records.clone();
            deleted.remove(index);
            agree(&deleted);
            for j in index + 1..records.len() {
                let mut swapped = records.clone();
                swapped.swap(index, j);
                agree(&swapped);
            }
        }
        assert!(tried > 1000, "only {tried} tampers tried");
    }

    /// The detail's canonical bytes written straight from its JSON text must be those of the
    /// parsed `Value`, for every text, valid or not: every single-byte change of real details,
    /// and texts chosen for the corners of serde_json's parser.
    #[test]
    fn d2_detail_encoded_from_text_matches_the_parsed_value() {
        let mut texts: Vec<Vec<u8>> = Vec::new();
        for r in chain() {
            let text = serde_json::to_vec(&r.event.detail).unwrap();
            texts.extend(byte_flips(&text));
            texts.push(text);
        }
        for t in [
            "null",
            "true",
            "false",
            "0",
            "-0",
            "-0.0",
            "1e400",
            "-1e400",
            "1.5e-7",
            "1E2",
            "18446744073709551615",
            "18446744073709551616",
            "-9223372036854775808",
            "-9223372036854775809",
            "0.1",
            "123456789012345678901234567890",
            "2.5000",
            "\"\\u00e9\\n\"",
            "\"\\ud800\"",
            "[]",
            "{}",
            "[1,[2,[3]]]",
            "{\"b\":1,\"a\":2}",
            "{\"a\":1,\"a\":2}",
            "{\"a\":{\"x\":1},\"a\":[2]}",
            "{\"\\u0061\":1,\"a\":2}",
            "{\"é\":1,\"z\":2,\"Z\":3,\"\":4}",
            " {\"a\" : [ true , null ] } ",
            "{\"a\":1} x",
            "{\"a\":1,}",
            "[1,]",
            "",
            "{\"$serde_json::private::RawValue\":\"1\"}",
            "{\"$serde_json::private::Number\":\"1\"}",
            "{\"x\":{\"$serde_json::private::RawValue\":\"[1]\"}}",
            "{\"a\":1,\"$serde_json::private::RawValue\":\"1\"}",
        ] {
            texts.push(t.as_bytes().to_vec());
        }
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        texts.push(deep(127).into_bytes());
        texts.push(deep(128).into_bytes());
        texts.push(deep(129).into_bytes());
        let mut checked = 0;
        for t in texts {
            let Ok(text) = std::str::from_utf8(&t) else {
                continue;
            };
            let mut out = b"prefix".to_vec();
            let ok = crate::raw::detail_into(&mut out, text);
            match serde_json::from_str::<Value>(text) {
                Ok(v) => {
                    assert!(ok, "{text}");
                    assert_eq!(&out[6..], &crate::event::canonical_detail(&v)[..], "{text}");
                }
                Err(_) => {
                    assert!(!ok, "{text}");
                    assert_eq!(out, b"prefix", "{text}");
                }
            }
            checked += 1;
        }
        assert!(checked > 200, "only {checked} texts");
    }

    #[test]
    fn append_refuses_a_wrong_seq_and_keeps_the_head() {
        let mut c = Chain::new();
        c.append(event(1)).unwrap();
        let head = c.head();
        for seq in [0, 1, 3, u64::MAX] {
            assert!(matches!(
                c.append(event(seq)),
                Err(AuditError::UnexpectedSeq { expected: 2, got }) if got == seq
            ));
        }
        assert_eq!(c.head(), head);
        let mut full = Chain::resume(Head {
            seq: u64::MAX,
            hash: [0; 32],
        });
        assert!(matches!(
            full.append(event(0)),
            Err(AuditError::SeqExhausted)
        ));
    }

    #[test]
    fn genesis_and_record_hashes_are_domain_separated() {
        assert_ne!(genesis_hash(), [0; 32]);
        assert_ne!(genesis_hash(), <[u8; 32]>::from(Sha256::digest(b"")));
        let e = event(1);
        let plain: [u8; 32] = Sha256::new()
            .chain_update(genesis_hash())
            .chain_update(canonical(&e))
            .finalize()
            .into();
        assert_ne!(record_hash(&genesis_hash(), &e), plain);
    }

    /// Pins the encoding: if this changes, every stored log stops verifying. Bump the tag
    /// instead of editing the encoding. Both values were cross-checked with an independent
    /// implementation of the documented layout (Python hashlib), not just copied from here.
    #[test]
    fn d2_golden_record_hash_v1() {
        let e = Event {
            seq: 1,
            time_ms: 1_700_000_000_000,
            actor: "alice".into(),
            action: "grant.request".into(),
            subject: "prod-db-1/dba".into(),
            outcome: Outcome::Started,
            detail: json!({"ticket": "T-1", "secs": 3600, "ok": true, "list": [null, 1.5]}),
        };
        assert_eq!(
            hex::encode(genesis_hash()),
            "c064d5d8897f4dcc213ffe0778875a315a5269995b307c4d411a19cef5b1061f"
        );
        assert_eq!(
            hex::encode(record_hash(&genesis_hash(), &e)),
            "186dc1fb7848d83591e85049f0be74aa034dbb627a0b79a8d417f61b958c6da5"
        );
    }
}
