//! Case E1: `kill -9` at random points while events are appended; every acknowledged event
//! must be present and the chain must verify.
//!
//! The test binary is its own child: `e1_child_writer` does nothing unless `PAW_E1_CHILD_DB` is
//! set, in which case it appends to that trail forever and prints `ack <seq> <hash>` on stdout
//! after each append returns (single appends and group-committed batches, mixed). The parent
//! SIGKILLs it after a random delay, reopens the trail, verifies it and checks every
//! acknowledged seq is there with the acknowledged hash. The random delay spreads the kill
//! points over process start-up, opening (and, on a fresh file every few iterations, creating)
//! the trail, and the append loop: mid-transaction, mid-commit and between appends.
//!
//! What this cannot show: a kill leaves the OS page cache intact, so it tests that nothing is
//! acknowledged before it is committed, not that the commit survives power loss. That rests on
//! WAL with `synchronous=FULL` (fsync before COMMIT returns), which the store's tests assert
//! on the live connection. For the same reason the negative control breaks the ordering
//! (acknowledge, then commit) rather than the fsync: a writer with `synchronous=OFF` would pass
//! a kill test.
//!
//! The negative control runs the same harness against a writer that acknowledges before it
//! commits (a write-behind buffer), and requires the harness to catch it losing events: a
//! harness that cannot fail proves nothing.
//!
//! `PAW_E1_ITERATIONS` overrides the iteration count (default 1000) and `PAW_E1_SEED` the seed
//! (printed on every run, so a failure can be replayed).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use paw_audit::{Chain, Event, LocalTrail, NewEvent, Outcome};
use serde_json::json;

const CHILD_DB: &str = "PAW_E1_CHILD_DB";
const CHILD_MODE: &str = "PAW_E1_CHILD_MODE";
/// A new trail file every this many iterations, so kills also land in file creation and
/// schema migration, and recovery is exercised on a file that has crashed many times.
const ITERATIONS_PER_FILE: usize = 25;

// ---------------------------------------------------------------------------------------------
// Child

/// The writer process. A no-op when run as an ordinary test.
#[test]
fn e1_child_writer() {
    let Some(db) = std::env::var_os(CHILD_DB) else {
        return;
    };
    let mode = std::env::var(CHILD_MODE).unwrap_or_default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let trail = LocalTrail::open(&db).await.unwrap();
        match mode.as_str() {
            "durable" => durable_writer(&trail).await,
            "ack-before-commit" => broken_writer(&trail).await,
            other => panic!("unknown child mode {other:?}"),
        }
    });
}

fn event(i: u64) -> NewEvent {
    NewEvent::new(
        "e1",
        "e1.append",
        format!("target-{}", i % 13),
        Outcome::Started,
        json!({"i": i, "why": "crash test", "pad": "x".repeat((i % 7) as usize * 40)}),
        1_700_000_000_000 + i as i64,
    )
}

/// Prints one acknowledgement. A write error means the parent is gone: stop.
fn ack(out: &mut impl Write, seq: u64, hash: &[u8; 32]) -> bool {
    writeln!(out, "ack {seq} {}", hex::encode(hash)).is_ok() && out.flush().is_ok()
}

async fn durable_writer(trail: &LocalTrail) {
    let mut out = std::io::stdout().lock();
    let mut i = 0u64;
    loop {
        i += 1;
        // Mostly single appends, every fourth a group commit of 2 to 9 events.
        let records = if i.is_multiple_of(4) {
            let n = 2 + i % 8;
            trail
                .append_batch((0..n).map(|k| event(i * 16 + k)).collect())
                .await
                .unwrap()
        } else {
            let e = event(i * 16);
            vec![trail
                .append(e.actor, e.action, e.subject, e.outcome, e.detail, e.time_ms)
                .await
                .unwrap()]
        };
        // Only now, after the commit returned, is anything acknowledged.
        for r in &records {
            if !ack(&mut out, r.event.seq, &r.hash) {
                return;
            }
        }
    }
}

/// The deliberately broken writer: acknowledges each event as soon as it is built and
/// commits them eight at a time. Killing it loses acknowledged events.
async fn broken_writer(trail: &LocalTrail) {
    let mut out = std::io::stdout().lock();
    let mut chain = Chain::resume(trail.head().await.unwrap());
    let mut pending = Vec::new();
    let mut i = 0u64;
    loop {
        i += 1;
        let e = event(i);
        let predicted = chain
            .append(Event {
                seq: chain.next_seq().unwrap(),
                time_ms: e.time_ms,
                actor: e.actor.clone(),
                action: e.action.clone(),
                subject: e.subject.clone(),
                outcome: e.outcome,
                detail: e.detail.clone(),
            })
            .unwrap();
        if !ack(&mut out, predicted.event.seq, &predicted.hash) {
            return;
        }
        pending.push(e);
        if pending.len() == 8 {
            trail
                .append_batch(std::mem::take(&mut pending))
                .await
                .unwrap();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Parent

/// xorshift64*: reproducible from the printed seed, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn seed() -> u64 {
    match std::env::var("PAW_E1_SEED") {
        Ok(s) => s.parse().unwrap(),
        Err(_) => {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap();
            (t.as_nanos() as u64) | 1
        }
    }
}

/// The kill count (`PAW_E1_ITERATIONS` lowers it locally; `cargo xtask test` refuses that).
fn iterations() -> usize {
    paw_counts::E1_KILLS.get()
}

/// What one kill left behind.
#[derive(Default)]
struct Verdict {
    /// Acknowledgements the child printed before it died.
    acks: usize,
    /// Acknowledged seqs missing from the trail, or present with another hash.
    lost: Vec<u64>,
    /// The chain did not verify (the message).
    broken: Option<String>,
    head: u64,
}

/// Runs one child against `db` in `mode`, kills it after `delay`, and checks the trail against
/// everything acknowledged on this file so far (`acked`, updated here).
fn kill_and_check(
    rt: &tokio::runtime::Runtime,
    db: &Path,
    mode: &str,
    delay: Duration,
    acked: &mut BTreeMap<u64, String>,
) -> Verdict {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "e1_child_writer",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DB, db)
        .env(CHILD_MODE, mode)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(delay);
    // SIGKILL on Unix: no destructor, no flush, no chance to finish a transaction.
    child.kill().unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(
        output.status.signal(),
        Some(9),
        "the child ended on its own ({}), stderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );

    let mut result = Verdict::default();
    let stdout = String::from_utf8_lossy(&output.stdout);
    // Only complete lines count: a line cut by the kill was never fully acknowledged.
    let complete = match stdout.rfind('\n') {
        Some(end) => &stdout[..=end],
        None => "",
    };
    for line in complete.lines() {
        let Some(rest) = line.strip_prefix("ack ") else {
            continue; // libtest's own chatter
        };
        let (seq, hash) = rest.split_once(' ').unwrap();
        let seq: u64 = seq.parse().unwrap();
        result.acks += 1;
        if let Some(before) = acked.insert(seq, hash.to_owned()) {
            if before != hash {
                // An earlier acknowledged record at this seq was replaced.
                result.lost.push(seq);
            }
        }
    }

    rt.block_on(async {
        let trail = LocalTrail::open(db).await.unwrap();
        match trail.verify().await {
            Ok(head) => result.head = head.seq,
            Err(e) => result.broken = Some(e.to_string()),
        }
        let present: BTreeMap<u64, String> = trail
            .records(0, u32::MAX)
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.event.seq, hex::encode(r.hash)))
            .collect();
        for (seq, hash) in acked.iter() {
            if present.get(seq) != Some(hash) {
                result.lost.push(*seq);
            }
        }
        trail.close().await;
    });
    result.lost.sort_unstable();
    result.lost.dedup();
    result
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn db_path(dir: &Path, i: usize) -> PathBuf {
    dir.join(format!("trail-{}.db", i / ITERATIONS_PER_FILE))
}

#[test]
fn e1_kill_9_at_random_points_loses_no_acknowledged_event() {
    let n = iterations();
    let seed = seed();
    eprintln!("e1: {n} iterations, PAW_E1_SEED={seed}");
    let mut rng = Rng(seed);
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let mut acked = BTreeMap::new();
    let (mut acks, mut no_ack_kills, mut max_head) = (0usize, 0usize, 0u64);
    for i in 0..n {
        if i.is_multiple_of(ITERATIONS_PER_FILE) {
            acked.clear();
        }
        // Child start-up (exec, libtest, runtime, open) takes a few ms; the window reaches
        // well past it so most kills land among appends, some before the first one.
        let delay = Duration::from_micros(rng.below(40_000));
        let r = kill_and_check(&rt, &db_path(dir.path(), i), "durable", delay, &mut acked);
        assert!(
            r.broken.is_none() && r.lost.is_empty(),
            "iteration {i} (PAW_E1_SEED={seed}, delay {delay:?}): chain error {:?}, \
             acknowledged but missing or changed: {:?}",
            r.broken,
            r.lost
        );
        acks += r.acks;
        no_ack_kills += usize::from(r.acks == 0);
        max_head = max_head.max(r.head);
    }
    eprintln!(
        "e1: {n} kills in {:.1} s: {acks} acknowledged events all present, {no_ack_kills} kills \
         before any acknowledgement, longest trail {max_head} records",
        started.elapsed().as_secs_f64()
    );
    assert!(
        acks > n,
        "too few acknowledgements ({acks}) for the kills to have hit appends"
    );
    paw_counts::E1_KILLS.ran("e1_kill_9_at_random_points_loses_no_acknowledged_event", n);
}

#[test]
fn e1_negative_control_harness_catches_a_writer_that_acknowledges_before_commit() {
    let n = iterations().clamp(1, 60);
    let seed = seed();
    eprintln!("e1 negative control: {n} iterations, PAW_E1_SEED={seed}");
    let mut rng = Rng(seed ^ 0x5eed);
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let mut acked = BTreeMap::new();
    let (mut caught, mut informative) = (0usize, 0usize);
    for i in 0..n {
        if i.is_multiple_of(ITERATIONS_PER_FILE) {
            acked.clear();
        }
        let delay = Duration::from_micros(10_000 + rng.below(40_000));
        let r = kill_and_check(
            &rt,
            &db_path(dir.path(), i),
            "ack-before-commit",
            delay,
            &mut acked,
        );
        // The broken writer never corrupts the chain; it loses its acknowledged tail.
        assert!(r.broken.is_none(), "{:?}", r.broken);
        // A kill before the first acknowledgement (start-up is slow on a loaded machine) has
        // nothing to lose, so it says nothing about the harness either way.
        informative += usize::from(r.acks > 0);
        if !r.lost.is_empty() {
            caught += 1;
            // Forget what was lost so the next iteration checks its own acknowledgements.
            for seq in r.lost {
                acked.remove(&seq);
            }
        }
    }
    eprintln!(
        "e1 negative control: losses detected in {caught} of {informative} kills after an \
         acknowledgement ({n} kills)"
    );
    assert!(
        caught > 0 && caught * 4 >= informative,
        "the harness caught a losing writer in only {caught} of {informative} kills after an \
         acknowledgement"
    );
}
