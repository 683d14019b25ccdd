//! Verification straight from stored columns.
//!
//! [`crate::verify_from`] checks [`Record`](crate::Record)s: every stored row is first decoded
//! into owned strings and a `serde_json::Value`, then encoded again. Profiling the local trail
//! showed that decoding, not hashing, is where the time goes, so storage-backed verification
//! reads each row's columns as borrowed bytes ([`RawRecord`]) and writes the hash input from
//! them directly: the fixed fields are copied as stored, and `detail`'s JSON text is parsed
//! straight into its canonical encoding, without building a `Value` (see [`detail_into`]).
//!
//! The verdicts are those of decoding then [`crate::verify_from`], record for record: the
//! same checks in the same order (seq, decodability, link, hash), the same first failure.

use std::io::Write as _;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Number, Value};
use sha2::{Digest, Sha256};

use crate::chain::{Head, RECORD_TAG};
use crate::error::{VerifyError, VerifyFailure};
use crate::event::{canonical_detail, Outcome};

/// One stored record as its columns' bytes, borrowed from the storage driver's row buffer.
/// Text columns are bytes so that invalid UTF-8 is a verdict ([`VerifyFailure::Unreadable`]),
/// not a driver error.
#[derive(Debug, Clone, Copy)]
pub struct RawRecord<'a> {
    pub seq: i64,
    pub time_ms: i64,
    pub actor: &'a [u8],
    pub action: &'a [u8],
    pub subject: &'a [u8],
    pub outcome: &'a [u8],
    /// The stored JSON text of the event's detail.
    pub detail: &'a [u8],
    pub prev_hash: [u8; 32],
    pub hash: [u8; 32],
}

/// What a storage reader hands the verifier for one row.
#[derive(Debug, Clone, Copy)]
pub enum RawRow<'a> {
    Record(RawRecord<'a>),
    /// A field could not be read as its type (a hash of the wrong length, a number stored as
    /// text...). `seq` is the row's seq if that much could be read: a gap is reported as a
    /// gap even when the row after it is also damaged.
    Unreadable {
        seq: Option<i64>,
    },
}

/// Verifies rows one at a time, in chain order, from a start head.
///
/// A verifier can also start mid-chain with the previous record's hash not yet known (a chunk
/// of a parallel verification, [`RawVerifier::at_seam`]): the first record's link is then
/// recorded instead of checked, and [`crate::parallel`] checks it when the chunks are joined.
#[derive(Debug)]
pub struct RawVerifier {
    /// The start head's seq.
    after: u64,
    head: Head,
    index: usize,
    /// True until the first row of a seam chunk has been seen.
    seam_open: bool,
    /// The first row's stored `prev_hash`, when it was decodable (seam chunks only).
    seam_prev: Option<[u8; 32]>,
    /// The first row's seq as read (`Some(None)`: unreadable), once a row has been seen.
    first_seq: Option<Option<i64>>,
    watch: Option<u64>,
    watched: Option<[u8; 32]>,
    failure: Option<VerifyError>,
    /// The hash input of the current record, reused so a record costs no allocation.
    buf: Vec<u8>,
}

impl RawVerifier {
    /// Continues the chain at `start`; `index` is the position of the next row in the whole
    /// verification (it appears in a reported [`VerifyError`]).
    pub fn new(start: Head, index: usize) -> Self {
        RawVerifier {
            after: start.seq,
            head: start,
            index,
            seam_open: false,
            seam_prev: None,
            first_seq: None,
            watch: None,
            watched: None,
            failure: None,
            buf: Vec::with_capacity(512),
        }
    }

    /// A chunk that starts after seq `after`, whose previous record's hash is not known here.
    pub(crate) fn at_seam(after: u64, index: usize) -> Self {
        let mut v = RawVerifier::new(
            Head {
                seq: after,
                hash: [0; 32],
            },
            index,
        );
        v.seam_open = true;
        v
    }

    /// Remember the stored hash of the record with this seq if it verifies (for comparing
    /// with a checkpoint).
    pub(crate) fn watch(&mut self, seq: u64) {
        self.watch = Some(seq);
    }

    /// Checks the next row. Returns `false` once a record has failed: later rows cannot change
    /// the verdict, so the reader may stop.
    pub fn push(&mut self, row: RawRow<'_>) -> bool {
        if self.failure.is_some() {
            return false;
        }
        let first = self.first_seq.is_none();
        if first {
            self.first_seq = Some(match row {
                RawRow::Record(r) => Some(r.seq),
                RawRow::Unreadable { seq } => seq,
            });
        }
        let seam = std::mem::take(&mut self.seam_open);
        match self.check(row, seam) {
            Ok(hash) => {
                self.head = Head {
                    seq: self.head.seq + 1,
                    hash,
                };
                if self.watch == Some(self.head.seq) {
                    self.watched = Some(hash);
                }
                self.index += 1;
                true
            }
            Err(failure) => {
                self.failure = Some(failure);
                false
            }
        }
    }

    /// The checks of `verify_from` after decoding, in its order. Returns the record's hash.
    fn check(&mut self, row: RawRow<'_>, seam: bool) -> Result<[u8; 32], VerifyError> {
        let Some(due) = self.head.seq.checked_add(1) else {
            return Err(VerifyError {
                seq: self.head.seq,
                index: self.index,
                reason: VerifyFailure::SeqExhausted,
            });
        };
        let fail = |reason| VerifyError {
            seq: due,
            index: self.index,
            reason,
        };
        let seq = match row {
            RawRow::Record(r) => Some(r.seq),
            RawRow::Unreadable { seq } => seq,
        };
        match seq {
            None => return Err(fail(VerifyFailure::Unreadable)),
            Some(found) if u64::try_from(found).ok() != Some(due) => {
                // A negative seq cannot follow a positive one; shown as its bit pattern.
                return Err(fail(VerifyFailure::SeqMismatch {
                    found: found as u64,
                }));
            }
            Some(_) => {}
        }
        let RawRow::Record(r) = row else {
            return Err(fail(VerifyFailure::Unreadable));
        };
        if !hash_input(&mut self.buf, &r) {
            return Err(fail(VerifyFailure::Unreadable));
        }
        if seam {
            self.seam_prev = Some(r.prev_hash);
        } else if r.prev_hash != self.head.hash {
            return Err(fail(VerifyFailure::BrokenLink));
        }
        if <[u8; 32]>::from(Sha256::digest(&self.buf)) != r.hash {
            return Err(fail(VerifyFailure::HashMismatch));
        }
        Ok(r.hash)
    }

    /// The head after the last good record, or the first failure.
    pub fn finish(self) -> Result<Head, VerifyError> {
        match self.failure {
            Some(e) => Err(e),
            None => Ok(self.head),
        }
    }

    pub(crate) fn into_segment(self) -> Segment {
        Segment {
            after: self.after,
            first_seq: self.first_seq,
            seam_prev: self.seam_prev,
            end: self.head,
            watched: self.watched,
            failure: self.failure,
        }
    }
}

/// What a seam chunk found, for [`crate::parallel`] to join.
#[derive(Debug)]
pub(crate) struct Segment {
    /// The seq the chunk assumed its first row follows.
    pub after: u64,
    pub first_seq: Option<Option<i64>>,
    pub seam_prev: Option<[u8; 32]>,
    pub end: Head,
    pub watched: Option<[u8; 32]>,
    pub failure: Option<VerifyError>,
}

/// Writes `RECORD_TAG || prev_hash || canonical(event)` for `r` into `buf`. `false` if a field
/// does not decode (not UTF-8, an unknown outcome, a detail that is not JSON), which decoding
/// into a [`crate::Record`] would also have refused.
fn hash_input(buf: &mut Vec<u8>, r: &RawRecord<'_>) -> bool {
    buf.clear();
    buf.extend_from_slice(RECORD_TAG);
    buf.extend_from_slice(&r.prev_hash);
    // A negative seq never gets here: it failed the seq check.
    buf.extend_from_slice(&(r.seq as u64).to_be_bytes());
    buf.extend_from_slice(&r.time_ms.to_be_bytes());
    for text in [r.actor, r.action, r.subject] {
        if std::str::from_utf8(text).is_err() {
            return false;
        }
        put_bytes(buf, text);
    }
    if !Outcome::ALL
        .iter()
        .any(|o| o.as_str().as_bytes() == r.outcome)
    {
        return false;
    }
    put_bytes(buf, r.outcome);
    let Ok(detail) = std::str::from_utf8(r.detail) else {
        return false;
    };
    detail_into(buf, detail)
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u64).to_be_bytes());
    out.extend_from_slice(b);
}

/// Appends the canonical encoding of the JSON text `text` to `out`: the same bytes as
/// `canonical_detail(&serde_json::from_str::<Value>(text)?)`, without building the `Value`.
/// `false` if the text is not JSON (`out` is then left as it was).
pub(crate) fn detail_into(out: &mut Vec<u8>, text: &str) -> bool {
    let base = out.len();
    let mut de = serde_json::Deserializer::from_str(text);
    let parsed = Canon { out: &mut *out }
        .deserialize(&mut de)
        .and_then(|()| de.end());
    match parsed {
        Ok(()) => true,
        Err(e) => {
            out.truncate(base);
            if e.to_string().starts_with(FALLBACK_MARK) {
                // An object whose keys are not in canonical order, or keyed like serde_json's
                // internal tokens (which `Value` treats specially): this rare text gets its
                // verdict the slow way, exactly as decoding it would.
                match serde_json::from_str::<Value>(text) {
                    Ok(v) => {
                        out.extend_from_slice(&canonical_detail(&v));
                        true
                    }
                    Err(_) => false,
                }
            } else {
                false
            }
        }
    }
}

/// Error text that sends a detail down the `Value` road (see [`detail_into`]).
const FALLBACK_MARK: &str = "paw-audit: take the Value road";

/// Writes one JSON value's canonical encoding (see [`crate::canonical`]), mirroring what
/// serde_json's `Value` visitor would build and `put_value` would then write.
struct Canon<'o> {
    out: &'o mut Vec<u8>,
}

impl<'de> DeserializeSeed<'de> for Canon<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

/// `#` then the number's text as `Value`'s Display writes it, length-prefixed.
fn put_number(out: &mut Vec<u8>, n: &Number) {
    out.push(b'#');
    let at = out.len();
    out.extend_from_slice(&[0; 8]);
    // Writing to a Vec cannot fail.
    let _ = write!(out, "{n}");
    let len = (out.len() - at - 8) as u64;
    out[at..at + 8].copy_from_slice(&len.to_be_bytes());
}

impl<'de> Visitor<'de> for Canon<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<(), E> {
        self.out.push(if v { b't' } else { b'f' });
        Ok(())
    }
    fn visit_i64<E>(self, v: i64) -> Result<(), E> {
        put_number(self.out, &Number::from(v));
        Ok(())
    }
    fn visit_u64<E>(self, v: u64) -> Result<(), E> {
        put_number(self.out, &Number::from(v));
        Ok(())
    }
    fn visit_f64<E>(self, v: f64) -> Result<(), E> {
        // As `Value`: a float that is not finite becomes null.
        match Number::from_f64(v) {
            Some(n) => put_number(self.out, &n),
            None => self.out.push(b'n'),
        }
        Ok(())
    }
    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        self.out.push(b's');
        put_bytes(self.out, v.as_bytes());
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        self.out.push(b'n');
        Ok(())
    }
    fn visit_none<E>(self) -> Result<(), E> {
        self.out.push(b'n');
        Ok(())
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        Canon { out: self.out }.deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let out = self.out;
        out.push(b'[');
        let at = out.len();
        out.extend_from_slice(&[0; 8]);
        let mut n = 0u64;
        while seq.next_element_seed(Canon { out: &mut *out })?.is_some() {
            n += 1;
        }
        out[at..at + 8].copy_from_slice(&n.to_be_bytes());
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        // The store writes details as serde_json renders a `Value`: keys sorted by their bytes
        // and unique, which is the canonical order, so entries are written as they come. Keys
        // out of order or repeated (a text written some other way) send the whole detail
        // down the `Value` road, which sorts them and keeps the last of a repeated key.
        let out = self.out;
        out.push(b'{');
        let at = out.len();
        out.extend_from_slice(&[0; 8]);
        let mut n = 0u64;
        let mut prev: Option<std::ops::Range<usize>> = None;
        loop {
            let start = out.len();
            if map.next_key_seed(Key { out: &mut *out })?.is_none() {
                break;
            }
            let key = start + 8..out.len();
            let in_order = match &prev {
                None => !is_private_key(&out[key.clone()]),
                Some(p) => out[p.clone()] < out[key.clone()],
            };
            if !in_order {
                return Err(de::Error::custom(FALLBACK_MARK));
            }
            prev = Some(key);
            map.next_value_seed(Canon { out: &mut *out })?;
            n += 1;
        }
        out[at..at + 8].copy_from_slice(&n.to_be_bytes());
        Ok(())
    }
}

/// The keys serde_json's `Value` gives a meaning of its own when they come first in an object
/// (its raw-value and arbitrary-precision tokens, when those features are on).
fn is_private_key(key: &[u8]) -> bool {
    key.starts_with(b"$serde_json::private::")
}

/// Writes an object key as `str(key)`.
struct Key<'o> {
    out: &'o mut Vec<u8>,
}

impl<'de> DeserializeSeed<'de> for Key<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an object key")
    }
    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        put_bytes(self.out, v.as_bytes());
        Ok(())
    }
}
