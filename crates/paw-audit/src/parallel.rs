//! Verifying a stored chain in chunks on several threads, with the chain joined at the seams.
//!
//! The seqs after the start head are cut into ranges of consecutive seqs. Each range is read and
//! verified on its own by a [`RawVerifier`] started at its seam: it checks every record's seq
//! against the record's position, and every link inside the range, but takes its first
//! record's `prev_hash` on trust and reports it. Joining the ranges in order then checks each
//! seam against the head the ranges before it actually reached, so the first failure in
//! chain order is the one reported, with the same seq, position and reason as a sequential
//! pass ([`crate::verify_from`]), for any deletion, reorder or edit, at a seam or not.
//!
//! Why a range's local verdicts hold: a position's due seq is its predecessor's seq + 1, and a
//! record only verifies if its seq is the one due, so as long as every record before a range
//! verified, the record before the range is exactly the range's start seq and the position
//! of its first row is known in advance. When that does not hold (an earlier range came up
//! short: its last records were deleted), the join sees it and reports the first row of the
//! range as out of sequence, which it must be: its seq is past the range start, and the
//! record due is before it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::chain::Head;
use crate::error::{AuditError, VerifyError, VerifyFailure};
use crate::raw::{RawVerifier, Segment};

/// How a verification is split.
#[derive(Debug, Clone, Copy)]
pub struct Chunking {
    /// Seqs per range.
    pub len: u64,
    /// Threads verifying ranges at once (1: one after another on the calling thread).
    pub threads: usize,
}

impl Default for Chunking {
    /// Ranges of 32,768 records (a few MiB of rows in flight per thread) on every core.
    fn default() -> Self {
        Chunking {
            len: 32_768,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

/// Verifies the records with seqs `start.seq + 1 ..= last` as the continuation of `start`
/// and returns the head they reach.
///
/// `read(from, to, verifier)` must push the stored rows with `from <= seq <= to` into
/// `verifier` in seq order ([`RawVerifier::push`]) and may stop when a push returns `false`.
/// It runs on several threads at once, each with its own range.
///
/// `watch`: a head the chain must pass through (a checkpoint). If the record at `watch.seq`
/// verifies but carries another hash, [`AuditError::ForkedFromCheckpoint`] is returned,
/// unless a record before it failed first.
pub fn verify_chunked<R>(
    start: Head,
    last: u64,
    chunking: Chunking,
    watch: Option<Head>,
    read: R,
) -> Result<Head, AuditError>
where
    R: Fn(u64, u64, &mut RawVerifier) -> Result<(), AuditError> + Sync,
{
    let len = chunking.len.max(1);
    let count = usize::try_from(last.saturating_sub(start.seq).div_ceil(len))
        .map_err(|_| AuditError::Storage("too many records to verify at once".into()))?;
    let run = |k: usize| -> Result<Segment, AuditError> {
        let from = start.seq + 1 + k as u64 * len;
        let to = (from - 1).saturating_add(len).min(last);
        // Valid whenever it is used: see the module documentation.
        let index = usize::try_from(from - 1 - start.seq)
            .map_err(|_| AuditError::Storage("too many records to verify at once".into()))?;
        let mut v = RawVerifier::at_seam(from - 1, index);
        if let Some(w) = watch {
            v.watch(w.seq);
        }
        read(from, to, &mut v)?;
        Ok(v.into_segment())
    };

    let threads = chunking.threads.clamp(1, count.max(1));
    let mut results: Vec<Option<Result<Segment, AuditError>>> = Vec::new();
    if threads == 1 {
        // In order on this thread, stopping at the first range that holds a failure.
        for k in 0..count {
            let r = run(k);
            let stop = !matches!(&r, Ok(s) if s.failure.is_none());
            results.push(Some(r));
            if stop {
                break;
            }
        }
    } else {
        let slots: Mutex<Vec<Option<Result<Segment, AuditError>>>> =
            Mutex::new((0..count).map(|_| None).collect());
        let next = AtomicUsize::new(0);
        // Ranges after one that failed cannot change the verdict: they are skipped.
        let first_bad = AtomicUsize::new(usize::MAX);
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    if k >= count || k > first_bad.load(Ordering::Relaxed) {
                        break;
                    }
                    let r = run(k);
                    if !matches!(&r, Ok(s) if s.failure.is_none()) {
                        first_bad.fetch_min(k, Ordering::Relaxed);
                    }
                    if let Ok(mut slots) = slots.lock() {
                        slots[k] = Some(r);
                    }
                });
            }
        });
        results = slots
            .into_inner()
            .map_err(|_| AuditError::Storage("a verification thread failed".into()))?;
    }
    join(start, watch, results)
}

/// Joins the ranges' findings in chain order; see the module documentation.
fn join(
    start: Head,
    watch: Option<Head>,
    results: Vec<Option<Result<Segment, AuditError>>>,
) -> Result<Head, AuditError> {
    let mut head = start;
    for (k, slot) in results.into_iter().enumerate() {
        // Every range up to the first bad one was run; the join stops at that one.
        let seg = slot.ok_or_else(|| {
            AuditError::Storage(format!("verification range {k} was not verified"))
        })??;
        let Some(first_seq) = seg.first_seq else {
            continue; // No rows in this range: the next range's seam says what that means.
        };
        let index = usize::try_from(head.seq - start.seq)
            .map_err(|_| AuditError::Storage("too many records to verify at once".into()))?;
        let Some(due) = head.seq.checked_add(1) else {
            return Err(VerifyError {
                seq: head.seq,
                index,
                reason: VerifyFailure::SeqExhausted,
            }
            .into());
        };
        let fail = |reason| -> AuditError {
            VerifyError {
                seq: due,
                index,
                reason,
            }
            .into()
        };
        if seg.after != head.seq {
            // An earlier range came up short. This range's first row has a seq past its range
            // start, so past the one due: that is the first failure.
            return Err(match first_seq {
                None => fail(VerifyFailure::Unreadable),
                Some(found) => fail(VerifyFailure::SeqMismatch {
                    found: found as u64,
                }),
            });
        }
        // The first row's seq and decoding are checked before its link, its hash after.
        if let Some(e) = &seg.failure {
            if e.index == index && e.reason != VerifyFailure::HashMismatch {
                return Err(e.clone().into());
            }
        }
        if seg.seam_prev != Some(head.hash) {
            return Err(fail(VerifyFailure::BrokenLink));
        }
        if let (Some(w), Some(found)) = (watch, seg.watched) {
            if found != w.hash {
                return Err(AuditError::ForkedFromCheckpoint { seq: w.seq });
            }
        }
        if let Some(e) = seg.failure {
            return Err(e.into());
        }
        head = seg.end;
    }
    Ok(head)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::Chain;
    use crate::event::{Event, Outcome};
    use crate::raw::{RawRecord, RawRow};
    use serde_json::json;

    const LEN: u64 = 12;

    /// A stored row as a table would hold it: unique seqs, read back in seq order.
    #[derive(Debug, Clone)]
    struct Row {
        seq: i64,
        time_ms: i64,
        actor: String,
        outcome: String,
        detail: String,
        prev_hash: Vec<u8>,
        hash: Vec<u8>,
    }

    fn table() -> Vec<Row> {
        let mut c = Chain::new();
        (1..=LEN)
            .map(|seq| {
                let r = c
                    .append(Event {
                        seq,
                        time_ms: 1_700_000_000_000 + seq as i64,
                        actor: format!("user-{seq}"),
                        action: "grant.request".into(),
                        subject: "db/dba".into(),
                        outcome: Outcome::ALL[seq as usize % 4],
                        detail: json!({"n": seq, "why": "rotate", "deep": {"b": [1, 2.5]}}),
                    })
                    .unwrap();
                Row {
                    seq: seq as i64,
                    time_ms: r.event.time_ms,
                    actor: r.event.actor,
                    outcome: r.event.outcome.as_str().into(),
                    detail: serde_json::to_string(&r.event.detail).unwrap(),
                    prev_hash: r.prev_hash.to_vec(),
                    hash: r.hash.to_vec(),
                }
            })
            .collect()
    }

    fn raw(r: &Row) -> RawRow<'_> {
        let (Ok(prev_hash), Ok(hash)) = (r.prev_hash[..].try_into(), r.hash[..].try_into()) else {
            return RawRow::Unreadable { seq: Some(r.seq) };
        };
        RawRow::Record(RawRecord {
            seq: r.seq,
            time_ms: r.time_ms,
            actor: r.actor.as_bytes(),
            action: b"grant.request",
            subject: b"db/dba",
            outcome: r.outcome.as_bytes(),
            detail: r.detail.as_bytes(),
            prev_hash,
            hash,
        })
    }

    /// The reference: one verifier over every row after the start (`seq > 0`, as the store has
    /// always read), in order, then the checkpoint comparison the store made record by record
    /// before chunking.
    fn sequential(rows: &[Row], watch: Option<Head>) -> String {
        let mut v = RawVerifier::new(Head::genesis(), 0);
        let mut seen = Vec::new();
        for r in rows.iter().filter(|r| r.seq > 0) {
            if !v.push(raw(r)) {
                break;
            }
            seen.push((r.seq as u64, r.hash.clone()));
        }
        if let Some(w) = watch {
            if seen.iter().any(|(s, h)| *s == w.seq && h[..] != w.hash) {
                let forked: Result<Head, _> = Err(AuditError::ForkedFromCheckpoint { seq: w.seq });
                return format!("{forked:?}");
            }
        }
        format!("{:?}", v.finish().map_err(AuditError::from))
    }

    fn chunked(rows: &[Row], chunking: Chunking, watch: Option<Head>) -> String {
        let last = rows.iter().map(|r| r.seq).max().unwrap_or(0).max(0) as u64;
        let got = verify_chunked(Head::genesis(), last, chunking, watch, |from, to, v| {
            for r in rows {
                if (from as i64..=to as i64).contains(&r.seq) && !v.push(raw(r)) {
                    break;
                }
            }
            Ok(())
        });
        format!("{got:?}")
    }

    /// Every deletion, run of deletions, swap, renumbering and edit of every record, each
    /// verified in ranges of every length from 1 to past the end (so every record sits at a
    /// seam in some run) on 1, 2 and 3 threads, with and without a checkpoint to pass: the
    /// verdict is always the sequential one.
    #[test]
    fn d2_chunked_verification_reports_the_sequential_first_failure_at_every_seam() {
        let good = table();
        let mut cases: Vec<(String, Vec<Row>)> = vec![("untouched".into(), good.clone())];
        for i in 0..good.len() {
            for n in 1..=3 {
                let mut t = good.clone();
                t.drain(i..(i + n).min(good.len()));
                cases.push((format!("delete {n} from {i}"), t));
            }
            for j in i + 1..good.len() {
                // Contents trade places; the seqs stay where they are, as in a table keyed by
                // seq (and a second swap also renumbers them).
                let mut t = good.clone();
                let (a, b) = (t[i].clone(), t[j].clone());
                t[i] = Row {
                    seq: a.seq,
                    ..b.clone()
                };
                t[j] = Row {
                    seq: b.seq,
                    ..a.clone()
                };
                cases.push((format!("swap contents {i} {j}"), t));
                let mut t = good.clone();
                t.swap(i, j);
                t.sort_by_key(|r| r.seq);
                cases.push((format!("swap rows {i} {j}"), t));
            }
            type Edit = Box<dyn Fn(&mut Row)>;
            let mut edits: Vec<(&str, Edit)> = vec![
                ("time", Box::new(|r| r.time_ms += 1)),
                ("actor", Box::new(|r| r.actor.push('x'))),
                ("detail", Box::new(|r| r.detail = r#"{"n":0}"#.into())),
                ("detail not json", Box::new(|r| r.detail.truncate(3))),
                ("outcome", Box::new(|r| r.outcome = "approved".into())),
                ("prev", Box::new(|r| r.prev_hash[31] ^= 1)),
                ("hash", Box::new(|r| r.hash[0] ^= 0x80)),
                ("short hash", Box::new(|r| r.hash.truncate(31))),
                ("seq past the end", Box::new(|r| r.seq += 100)),
                ("negative seq", Box::new(|r| r.seq = -r.seq)),
            ];
            edits.push((
                "both hashes",
                Box::new(|r| {
                    r.prev_hash[0] ^= 1;
                    r.hash[0] ^= 1;
                }),
            ));
            for (name, edit) in edits {
                let mut t = good.clone();
                edit(&mut t[i]);
                t.sort_by_key(|r| r.seq);
                cases.push((format!("{name} of {i}"), t));
            }
        }
        let head_at = |k: usize| Head {
            seq: k as u64 + 1,
            hash: good[k].hash[..].try_into().unwrap(),
        };
        let watches = [
            None,
            Some(head_at(0)),
            Some(head_at(5)),
            Some(head_at(good.len() - 1)),
            Some(Head {
                seq: 6,
                hash: [9; 32],
            }),
        ];
        let mut runs = 0;
        for (name, rows) in &cases {
            for watch in watches {
                let want = sequential(rows, watch);
                for len in 1..=LEN + 1 {
                    for threads in 1..=3 {
                        let got = chunked(rows, Chunking { len, threads }, watch);
                        assert_eq!(got, want, "{name}, len {len}, {threads} threads, {watch:?}");
                        runs += 1;
                    }
                }
            }
        }
        // The cases did tamper: most of them fail, and at positions all over the chain.
        let failing = cases
            .iter()
            .filter(|(_, rows)| sequential(rows, None).starts_with("Err"))
            .count();
        assert!(
            failing > cases.len() * 3 / 4,
            "{failing} of {}",
            cases.len()
        );
        assert!(runs > 50_000, "{runs}");
    }

    #[test]
    fn an_empty_chain_and_a_start_mid_chain_verify_in_ranges() {
        let rows = table();
        assert_eq!(
            chunked(&[], Chunking::default(), None),
            format!("{:?}", Ok::<Head, AuditError>(Head::genesis()))
        );
        // From a verified prefix on: positions count from the start head.
        let start = Head {
            seq: 4,
            hash: rows[3].hash[..].try_into().unwrap(),
        };
        let mut tampered = rows.clone();
        tampered[9].time_ms += 1;
        let got = verify_chunked(
            start,
            LEN,
            Chunking { len: 3, threads: 2 },
            None,
            |f, t, v| {
                for r in &tampered {
                    if (f as i64..=t as i64).contains(&r.seq) && !v.push(raw(r)) {
                        break;
                    }
                }
                Ok(())
            },
        );
        assert!(
            matches!(
                got,
                Err(AuditError::Verify(VerifyError {
                    seq: 10,
                    index: 5,
                    reason: VerifyFailure::HashMismatch
                }))
            ),
            "{got:?}"
        );
    }
}
