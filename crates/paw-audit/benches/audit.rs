//! End-to-end figures for the local audit trail, printed as Markdown tables for BENCHMARKS.md:
//!
//! (a) durable appends per second, one per transaction and group-committed in batches, with
//!     p50/p99 commit latency (the time an event waits to be acknowledged);
//! (b) verification speed in records/s, next to this machine's raw SHA-256 throughput on
//!     record-sized inputs measured in the same run;
//! (c) latency of filtered queries over a 1,000,000-record trail.
//!
//! `cargo bench -p paw-audit --bench audit` runs the full sizes. Under `cargo test --benches`
//! (no `--bench` argument) it runs tiny sizes, so the bench is built and exercised in CI
//! without taking minutes. `PAW_AUDIT_BENCH_RECORDS` overrides the trail size of (b) and (c).
//! The trail lives in a temporary directory under `$TMPDIR` (set it to
//! measure another disk).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use paw_audit::{
    canonical, verify_from, Chain, Chunking, Event, Filter, Head, LocalTrail, NewEvent,
    OpenOptions, Order, Outcome,
};
use serde_json::json;
use sha2::{Digest, Sha256};

struct Sizes {
    single: usize,
    group_events: usize,
    trail: u64,
    in_memory: u64,
    raw_hashes: usize,
    queries: usize,
    verify_runs: usize,
}

const FULL: Sizes = Sizes {
    single: 2_000,
    group_events: 16_384,
    trail: 1_000_000,
    in_memory: 200_000,
    raw_hashes: 2_000_000,
    queries: 40,
    verify_runs: 3,
};

const TINY: Sizes = Sizes {
    single: 20,
    group_events: 256,
    trail: 3_000,
    in_memory: 1_000,
    raw_hashes: 10_000,
    queries: 3,
    verify_runs: 1,
};

/// The synthetic year of activity: 1M events over 365 days (one every ~32 s).
const T0: i64 = 1_735_689_600_000; // 2025-01-01T00:00:00Z
const DAY: i64 = 86_400_000;
const SPAN: i64 = 365 * DAY;
const ACTIONS: [(&str, u64); 12] = [
    ("session.open", 30),
    ("session.close", 30),
    ("grant.request", 12),
    ("grant.approve", 8),
    ("grant.activate", 8),
    ("grant.expire", 6),
    ("grant.deny", 2),
    ("grant.revoke", 1),
    ("stepup.verify", 20),
    ("key.add", 1),
    ("breakglass.open", 1),
    ("login", 25),
];
const TARGETS: u64 = 2_000;
const ACTORS: u64 = 300;
const VOCABULARY: usize = 2_000;

/// splitmix64: deterministic data, no dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn vocabulary() -> Vec<String> {
    const SYL: [&str; 24] = [
        "ka", "to", "ri", "mu", "sel", "van", "dor", "pi", "len", "quo", "bra", "ne", "ost", "ul",
        "zer", "fa", "gim", "har", "ix", "jo", "lum", "mer", "nad", "op",
    ];
    let mut rng = Rng(7);
    let mut words: Vec<String> = Vec::new();
    while words.len() < VOCABULARY {
        let n = 2 + rng.below(2);
        let w: String = (0..n).map(|_| SYL[rng.below(24) as usize]).collect();
        if !words.contains(&w) {
            words.push(w);
        }
    }
    words
}

fn target(n: u64) -> String {
    let env = ["prod", "stage", "dev"][(n % 3) as usize];
    let kind = ["db", "web", "bastion", "cache"][(n / 3 % 4) as usize];
    format!(
        "{env}-{kind}-{n:04}/{}",
        ["dba", "root", "ro"][(n % 5 % 3) as usize]
    )
}

fn synthetic(i: u64, rng: &mut Rng, words: &[String]) -> NewEvent {
    let total: u64 = ACTIONS.iter().map(|a| a.1).sum();
    let mut pick = rng.below(total);
    let action = ACTIONS
        .iter()
        .find(|(_, w)| {
            if pick < *w {
                true
            } else {
                pick -= w;
                false
            }
        })
        .map_or("login", |a| a.0);
    let outcome = match rng.below(100) {
        0 => Outcome::Denied,
        1..=4 => Outcome::Failure,
        5..=19 => Outcome::Started,
        _ => Outcome::Success,
    };
    let justification: Vec<&str> = (0..6 + rng.below(6))
        .map(|_| words[rng.below(words.len() as u64) as usize].as_str())
        .collect();
    NewEvent::new(
        format!("user{:03}", rng.below(ACTORS)),
        action,
        target(rng.below(TARGETS)),
        outcome,
        json!({
            "justification": format!("{} INC-{:06}", justification.join(" "), i),
            "ticket": format!("CHG-{}", 10_000 + i / 40),
            "duration_s": 900 * (1 + rng.below(8)),
        }),
        T0 + (i as i64) * SPAN / 1_000_000,
    )
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1e3)
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cpu}, {cores} cores")
}

async fn sqlite_version(trail_dir: &std::path::Path) -> String {
    use sqlx::{ConnectOptions, Connection};
    let mut c = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(trail_dir.join("version.db"))
        .create_if_missing(true)
        .connect()
        .await
        .unwrap();
    let v: String = sqlx::query_scalar("SELECT sqlite_version()")
        .fetch_one(&mut c)
        .await
        .unwrap();
    c.close().await.unwrap();
    v
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let mut sizes = if full { FULL } else { TINY };
    // For quick or profiling runs: a smaller (or larger) trail for (b) and (c).
    if let Some(n) = std::env::var("PAW_AUDIT_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        sizes.trail = n;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(&sizes));
}

async fn run(s: &Sizes) {
    let dir = tempfile::tempdir().unwrap();
    let words = vocabulary();
    println!("# paw-audit local trail");
    println!();
    println!(
        "Machine: {}; SQLite {} (bundled), WAL, synchronous=FULL; trail in {}",
        machine(),
        sqlite_version(dir.path()).await,
        dir.path().display()
    );
    println!();
    appends(s, dir.path(), &words).await;
    let trail_path = dir.path().join("big.db");
    let (trail, build) = build_trail(s, &trail_path, &words).await;
    verification(s, &trail, &trail_path, build, &words).await;
    profile(s, &trail, &trail_path).await;
    queries(s, &trail, &words).await;
    trail.close().await;
    let size = std::fs::metadata(&trail_path).map_or(0, |m| m.len());
    println!();
    println!(
        "Trail file for {} records: {:.0} MiB ({:.0} bytes/record, indexes and FTS included).",
        s.trail,
        size as f64 / 1_048_576.0,
        size as f64 / s.trail as f64
    );
}

async fn appends(s: &Sizes, dir: &std::path::Path, words: &[String]) {
    println!("## (a) Durable appends (each acknowledged after its commit is fsynced)");
    println!();
    println!("| mode | events | events/s | commits/s | p50 ack latency ms | p99 ack latency ms |");
    println!("|---|---:|---:|---:|---:|---:|");
    let mut rng = Rng(1);

    let trail = LocalTrail::open(dir.join("single.db")).await.unwrap();
    let mut lat = Vec::with_capacity(s.single);
    let start = Instant::now();
    for i in 0..s.single as u64 {
        let e = synthetic(i, &mut rng, words);
        let t = Instant::now();
        trail
            .append(e.actor, e.action, e.subject, e.outcome, e.detail, e.time_ms)
            .await
            .unwrap();
        lat.push(t.elapsed());
    }
    let total = start.elapsed();
    lat.sort_unstable();
    println!(
        "| single (1 per transaction) | {} | {:.0} | {:.0} | {} | {} |",
        s.single,
        s.single as f64 / total.as_secs_f64(),
        s.single as f64 / total.as_secs_f64(),
        ms(percentile(&lat, 0.5)),
        ms(percentile(&lat, 0.99))
    );
    trail.close().await;

    for batch in [16usize, 64, 256] {
        let trail = LocalTrail::open(dir.join(format!("group-{batch}.db")))
            .await
            .unwrap();
        let commits = (s.group_events / batch).max(1);
        let mut lat = Vec::with_capacity(commits);
        let mut busy = Duration::ZERO;
        for c in 0..commits as u64 {
            let events: Vec<NewEvent> = (0..batch as u64)
                .map(|k| synthetic(c * batch as u64 + k, &mut rng, words))
                .collect();
            let t = Instant::now();
            trail.append_batch(events).await.unwrap();
            let d = t.elapsed();
            busy += d;
            lat.push(d);
        }
        lat.sort_unstable();
        let events = commits * batch;
        println!(
            "| group commit, {batch} per transaction | {events} | {:.0} | {:.0} | {} | {} |",
            events as f64 / busy.as_secs_f64(),
            commits as f64 / busy.as_secs_f64(),
            ms(percentile(&lat, 0.5)),
            ms(percentile(&lat, 0.99))
        );
        trail.close().await;
    }
    println!();
    println!(
        "Latency is per commit: every event of a group waits for the whole group's commit. \
         Event generation is outside the timed region for groups."
    );
    println!();
}

async fn build_trail(
    s: &Sizes,
    path: &std::path::Path,
    words: &[String],
) -> (LocalTrail, Duration) {
    let trail = LocalTrail::open(path).await.unwrap();
    let mut rng = Rng(2);
    let start = Instant::now();
    let mut i = 0u64;
    while i < s.trail {
        let n = 10_000.min(s.trail - i);
        let events = (i..i + n).map(|k| synthetic(k, &mut rng, words)).collect();
        trail.append_batch(events).await.unwrap();
        i += n;
    }
    (trail, start.elapsed())
}

async fn verification(
    s: &Sizes,
    trail: &LocalTrail,
    trail_path: &std::path::Path,
    build: Duration,
    words: &[String],
) {
    println!("## (b) Verification against raw SHA-256 on this machine");
    println!();
    // Record-sized inputs: what one record hash consumes (tag + prev hash + canonical event).
    let mut rng = Rng(3);
    let sample: Vec<Vec<u8>> = (0..1_000)
        .map(|i| {
            let e = synthetic(i, &mut rng, words);
            let ev = Event {
                seq: i + 1,
                time_ms: e.time_ms,
                actor: e.actor,
                action: e.action,
                subject: e.subject,
                outcome: e.outcome,
                detail: e.detail,
            };
            let mut input = b"paw-audit-record-v1\0".to_vec();
            input.extend_from_slice(&[0u8; 32]);
            input.extend_from_slice(&canonical(&ev));
            input
        })
        .collect();
    let avg_len = sample.iter().map(Vec::len).sum::<usize>() / sample.len();
    let t = Instant::now();
    let mut acc = 0u8;
    for k in 0..s.raw_hashes {
        acc ^= Sha256::digest(&sample[k % sample.len()])[0];
    }
    let raw = t.elapsed();
    std::hint::black_box(acc);
    let raw_hps = s.raw_hashes as f64 / raw.as_secs_f64();
    let bulk = vec![0x5au8; 64 << 20];
    let t = Instant::now();
    std::hint::black_box(Sha256::digest(&bulk));
    let bulk_mbs = 64.0 / t.elapsed().as_secs_f64();

    // The same chain logic without storage: canonical encoding + SHA-256 per record.
    let mut chain = Chain::new();
    let mut rng = Rng(4);
    let records: Vec<_> = (0..s.in_memory)
        .map(|i| {
            let e = synthetic(i, &mut rng, words);
            chain
                .append(Event {
                    seq: i + 1,
                    time_ms: e.time_ms,
                    actor: e.actor,
                    action: e.action,
                    subject: e.subject,
                    outcome: e.outcome,
                    detail: e.detail,
                })
                .unwrap()
        })
        .collect();
    let t = Instant::now();
    verify_from(&Head::genesis(), &records).unwrap();
    let mem = t.elapsed();
    drop(records);

    // The stored trail, verified as the app does (ranges on every core), then on one thread,
    // each the best of a few runs; raw SHA-256 over the same record-sized inputs is timed right
    // before each, so each ratio compares figures taken under the same load.
    let mut stored = Duration::MAX;
    let mut stored_raw_hps = 0.0;
    let mut one = Duration::MAX;
    let mut one_raw_hps = 0.0;
    let single = LocalTrail::open_with(
        trail_path,
        OpenOptions {
            verify_chunking: Chunking {
                threads: 1,
                ..Chunking::default()
            },
            ..OpenOptions::default()
        },
    )
    .await
    .unwrap();
    let mut ratios = Vec::new();
    for _ in 0..s.verify_runs {
        let raw_now = raw_rate(&sample, s.trail as usize);
        let t = Instant::now();
        let head = trail.verify().await.unwrap();
        let d = t.elapsed();
        assert_eq!(head.seq, s.trail);
        ratios.push(s.trail as f64 / d.as_secs_f64() / raw_now);
        if d < stored {
            stored = d;
            stored_raw_hps = raw_now;
        }
        let raw_now = raw_rate(&sample, s.trail as usize);
        let t = Instant::now();
        single.verify().await.unwrap();
        let d = t.elapsed();
        if d < one {
            one = d;
            one_raw_hps = raw_now;
        }
    }
    single.close().await;
    ratios.sort_by(f64::total_cmp);

    println!("| what | items | items/s | MB/s | vs raw SHA-256 |");
    println!("|---|---:|---:|---:|---:|");
    println!(
        "| raw SHA-256, {avg_len}-byte inputs (record-sized) | {} | {:.0} | {:.0} | 1.00 |",
        s.raw_hashes,
        raw_hps,
        raw_hps * avg_len as f64 / 1e6
    );
    println!("| raw SHA-256, one 64 MiB buffer | 1 | - | {bulk_mbs:.0} | - |");
    let mem_rps = s.in_memory as f64 / mem.as_secs_f64();
    println!(
        "| verify_from, records in memory (encode + hash) | {} | {:.0} | {:.0} | {:.2} |",
        s.in_memory,
        mem_rps,
        mem_rps * avg_len as f64 / 1e6,
        mem_rps / raw_hps
    );
    let st_rps = s.trail as f64 / stored.as_secs_f64();
    println!(
        "| LocalTrail::verify, from SQLite, ranges on {} threads (read + encode + hash) | {} | {:.0} | {:.0} | **{:.2}** |",
        Chunking::default().threads,
        s.trail,
        st_rps,
        st_rps * avg_len as f64 / 1e6,
        st_rps / stored_raw_hps
    );
    let one_rps = s.trail as f64 / one.as_secs_f64();
    println!(
        "| the same on 1 thread | {} | {:.0} | {:.0} | {:.2} |",
        s.trail,
        one_rps,
        one_rps * avg_len as f64 / 1e6,
        one_rps / one_raw_hps
    );
    println!();
    println!(
        "verify-vs-sha256: {:.2} (best of {}; all runs {}; raw SHA-256 {:.0}/s then)",
        st_rps / stored_raw_hps,
        ratios.len(),
        ratios
            .iter()
            .map(|r| format!("{r:.2}"))
            .collect::<Vec<_>>()
            .join(", "),
        stored_raw_hps
    );
    println!();
    println!(
        "Verifying {} stored records took {:.2} s (best run). Building that trail with group \
         commits of 10,000 took {:.1} s ({:.0} records/s).",
        s.trail,
        stored.as_secs_f64(),
        build.as_secs_f64(),
        s.trail as f64 / build.as_secs_f64()
    );
    println!();
}

/// Raw SHA-256 over `n` of the record-sized inputs, in hashes per second.
fn raw_rate(sample: &[Vec<u8>], n: usize) -> f64 {
    let t = Instant::now();
    let mut acc = 0u8;
    for k in 0..n {
        acc ^= Sha256::digest(&sample[k % sample.len()])[0];
    }
    std::hint::black_box(acc);
    n as f64 / t.elapsed().as_secs_f64()
}

/// Where verification's time goes, one thread, each phase over the whole stored trail: reading
/// rows through sqlx as the store did before issue #20 (without and with decoding them into
/// records), reading the same columns as borrowed bytes with rusqlite as it does now, and
/// encoding and hashing records already in memory.
async fn profile(s: &Sizes, trail: &LocalTrail, path: &std::path::Path) {
    use sqlx::Row;
    println!(
        "## (b2) Profile: verification's phases, one thread, {} stored records",
        s.trail
    );
    println!();
    println!("| phase | s | µs/record |");
    println!("|---|---:|---:|");
    let per = |d: Duration| d.as_secs_f64() * 1e6 / s.trail as f64;
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(
            sqlx::sqlite::SqliteConnectOptions::new()
                .filename(path)
                .read_only(true)
                .row_buffer_size(4096),
        )
        .await
        .unwrap();
    for decode in [false, true] {
        let t = Instant::now();
        let mut after = 0i64;
        let mut n = 0u64;
        loop {
            let rows = sqlx::query(
                "SELECT seq, time_ms, actor, action, subject, outcome, detail, prev_hash, hash \
                 FROM audit_log WHERE seq > ? ORDER BY seq LIMIT 4096",
            )
            .bind(after)
            .fetch_all(&pool)
            .await
            .unwrap();
            let Some(last) = rows.last() else { break };
            after = last.get(0);
            n += rows.len() as u64;
            if decode {
                for r in &rows {
                    let detail: String = r.get(6);
                    let v: serde_json::Value = serde_json::from_str(&detail).unwrap();
                    let actor: String = r.get(2);
                    let prev: Vec<u8> = r.get(7);
                    std::hint::black_box((v, actor, prev));
                }
            }
        }
        assert_eq!(n, s.trail);
        let name = if decode {
            "sqlx: rows, pages of 4,096, decoded (text columns, JSON into a Value)"
        } else {
            "sqlx: rows, pages of 4,096, not decoded"
        };
        let d = t.elapsed();
        println!("| {name} | {:.2} | {:.2} |", d.as_secs_f64(), per(d));
    }
    pool.close().await;
    let t = Instant::now();
    let conn = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT seq, time_ms, actor, action, subject, outcome, detail, prev_hash, hash \
             FROM audit_log WHERE seq BETWEEN 1 AND ?1 ORDER BY seq",
        )
        .unwrap();
    let mut rows = stmt.query([s.trail as i64]).unwrap();
    let mut bytes = 0usize;
    while let Some(r) = rows.next().unwrap() {
        for i in 2..9 {
            bytes += r.get_ref(i).unwrap().as_bytes().unwrap().len();
        }
    }
    std::hint::black_box(bytes);
    let d = t.elapsed();
    println!(
        "| rusqlite: the same columns as borrowed bytes (now) | {:.2} | {:.2} |",
        d.as_secs_f64(),
        per(d)
    );
    drop(rows);
    drop(stmt);
    drop(conn);
    let t = Instant::now();
    let single = LocalTrail::open_with(
        path,
        OpenOptions {
            verify_chunking: Chunking {
                threads: 1,
                ..Chunking::default()
            },
            ..OpenOptions::default()
        },
    )
    .await
    .unwrap();
    single.verify().await.unwrap();
    let d = t.elapsed();
    single.close().await;
    println!(
        "| LocalTrail::verify, 1 thread: read + encode from the text + hash (now) | {:.2} | {:.2} |",
        d.as_secs_f64(),
        per(d)
    );
    let _ = trail;
    println!();
}

async fn queries(s: &Sizes, trail: &LocalTrail, words: &[String]) {
    println!(
        "## (c) Filtered queries over {} records (first page of 100, newest first)",
        s.trail
    );
    println!();
    println!("| query | runs | rows/run (avg) | p50 ms | p99 ms |");
    println!("|---|---:|---:|---:|---:|");
    let mut rng = Rng(5);
    let span_days = ((s.trail as i64) * SPAN / 1_000_000 / DAY).max(1);
    type Make = Box<dyn Fn(&mut Rng) -> Filter>;
    let day_start = move |r: &mut Rng| T0 + (r.below(span_days as u64) as i64) * DAY;
    let action = |r: &mut Rng| ACTIONS[r.below(ACTIONS.len() as u64) as usize].0.to_owned();
    let trail_len = s.trail;
    let w = words.to_vec();
    let w2 = words.to_vec();
    let cases: Vec<(&str, Make)> = vec![
        (
            "time range (1 day) + action",
            Box::new(move |r| {
                let from = day_start(r);
                Filter {
                    from_ms: Some(from),
                    until_ms: Some(from + DAY),
                    action: Some(action(r)),
                    ..Filter::default()
                }
            }),
        ),
        (
            "time range (30 days) + action",
            Box::new(move |r| {
                let from = day_start(r);
                Filter {
                    from_ms: Some(from),
                    until_ms: Some(from + 30 * DAY),
                    action: Some(action(r)),
                    ..Filter::default()
                }
            }),
        ),
        (
            "outcome = denied (1% of events), whole year",
            Box::new(|_| Filter {
                outcome: Some(Outcome::Denied),
                ..Filter::default()
            }),
        ),
        (
            "subject substring (one target, ~500 rows)",
            Box::new(|r| Filter {
                subject_contains: Some(target(r.below(TARGETS))),
                ..Filter::default()
            }),
        ),
        (
            "subject substring + time range (7 days)",
            Box::new(move |r| {
                let from = day_start(r);
                Filter {
                    subject_contains: Some(target(r.below(TARGETS))),
                    from_ms: Some(from),
                    until_ms: Some(from + 7 * DAY),
                    ..Filter::default()
                }
            }),
        ),
        (
            "subject substring, broad (\"prod-db\", ~1/12 of rows)",
            Box::new(|_| Filter {
                subject_contains: Some("prod-db".into()),
                ..Filter::default()
            }),
        ),
        (
            "full text: incident id in justification (1 row)",
            Box::new(move |r| Filter {
                text: Some(format!("INC-{:06}", r.below(trail_len))),
                ..Filter::default()
            }),
        ),
        (
            "full text: one word (~0.4% of rows)",
            Box::new(move |r| Filter {
                text: Some(w[r.below(w.len() as u64) as usize].clone()),
                ..Filter::default()
            }),
        ),
        (
            "full text: two words + time range (30 days)",
            Box::new(move |r| {
                let from = day_start(r);
                Filter {
                    text: Some(format!(
                        "{} {}",
                        w2[r.below(w2.len() as u64) as usize],
                        w2[r.below(w2.len() as u64) as usize]
                    )),
                    from_ms: Some(from),
                    until_ms: Some(from + 30 * DAY),
                    ..Filter::default()
                }
            }),
        ),
        (
            "action only, page 50 (offset 4,900)",
            Box::new(move |r| Filter {
                action: Some(action(r)),
                offset: 4_900,
                ..Filter::default()
            }),
        ),
        (
            "no filter, oldest first",
            Box::new(|_| Filter {
                order: Order::OldestFirst,
                ..Filter::default()
            }),
        ),
    ];
    for (name, make) in cases {
        let mut lat = Vec::with_capacity(s.queries);
        let mut rows = 0usize;
        for _ in 0..s.queries {
            let f = make(&mut rng);
            let t = Instant::now();
            let got = trail.query(&f).await.unwrap();
            lat.push(t.elapsed());
            rows += got.len();
        }
        lat.sort_unstable();
        println!(
            "| {name} | {} | {:.0} | {} | {} |",
            s.queries,
            rows as f64 / s.queries as f64,
            ms(percentile(&lat, 0.5)),
            ms(percentile(&lat, 0.99))
        );
    }
}
