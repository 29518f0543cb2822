//! `mobileconnect bench discovery`: Discovery's number lookup with millions of ported
//! numbers, in process.
//!
//! 1. **Data**: `--operators` operators (MCC 901), `--ranges` 7-digit range prefixes from
//!    4477000 up, spread over the operators, and `--entries` ported numbers spread evenly over
//!    those ranges (each ported to another operator than its range's), written as the CSV an
//!    operator would import (a temporary folder, or `--data`).
//! 2. **Import**: `mc_discovery::import::import_file` into a fresh SQLite store (the check
//!    pass, then batched upserts) — the time an operator waits for `discovery import-ranges`.
//! 3. **Load**: `DiscoveryState::load` reads the tables page by page into the in-memory index
//!    (what a node does at start); the resident set after it and the index's own bytes.
//! 4. **Lookups**: `--threads` threads (default 2) for `--duration`, each looking up random
//!    numbers on the shared snapshot: half ported numbers, four in ten other numbers of the
//!    ranges, one in ten unknown numbers. Every lookup is timed on its own (p50, p99 in
//!    nanoseconds), and every answer is checked against the generator's expectation.
//! 5. **Lookup + subscriber_id**: the same plus the RSA-OAEP encryption of the MSISDN to the
//!    serving operator's key, which every answer naming a number carries (the credentials'
//!    store read and the HTTP exchange are not included).
//!
//! Peak RSS is this process's `VmHWM` (the CSV writer and the store's caches included).

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use mc_discovery::import::{ImportMode, import_file};
use mc_discovery::registry::{self, OperatorSpec};
use mc_discovery::state::Snapshot;
use mc_discovery::{DiscoveryConfig, DiscoveryState};
use mc_store::DiscoveryStore;
use mc_store_sqlite::SqliteStore;
use serde_json::json;

#[derive(Subcommand, Debug)]
pub enum BenchMode {
    /// Discovery lookups with millions of ported numbers, in process.
    Discovery(DiscoveryBenchArgs),
}

#[derive(Args, Debug)]
pub struct DiscoveryBenchArgs {
    /// Ported numbers to import.
    #[arg(long, default_value_t = 10_000_000)]
    entries: u64,
    /// Number-range prefixes (7 digits each).
    #[arg(long, default_value_t = 2_000)]
    ranges: u64,
    /// Operators.
    #[arg(long, default_value_t = 4)]
    operators: u16,
    /// Lookup threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// How long each lookup measurement runs, in seconds.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Folder for the CSV and the database (default: a temporary folder, removed after).
    #[arg(long)]
    data: Option<PathBuf>,
    /// One JSON object on stdout (the progress goes to stderr either way).
    #[arg(long)]
    json: bool,
}

/// The first range prefix: 4477000, clear of the sandbox's 447700900.
const FIRST_RANGE: u64 = 4_477_000;
/// Numbers under one 7-digit prefix of a 12-digit MSISDN.
const PER_RANGE: u64 = 100_000;
/// Latency histogram: 1 ns buckets up to 100 µs, 100 ns buckets up to 10 ms, then one
/// overflow bucket.
const FINE: usize = 100_000;
const BUCKETS: usize = FINE + 99_000;

fn bucket(ns: usize) -> usize {
    if ns < FINE {
        ns
    } else {
        (FINE + (ns - FINE) / 100).min(BUCKETS)
    }
}

fn bucket_ns(b: usize) -> u64 {
    if b < FINE {
        b as u64
    } else {
        (FINE + (b - FINE) * 100) as u64
    }
}

fn progress(line: &str) {
    eprintln!("bench discovery: {line}");
}

fn rss_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The generator: ported number `i`, and which operators serve what.
#[derive(Clone, Copy)]
struct Plan {
    entries: u64,
    ranges: u64,
    operators: u64,
    /// Distance between two ported numbers.
    step: u64,
}

impl Plan {
    fn range_operator(&self, r: u64) -> u64 {
        r % self.operators
    }
    fn ported(&self, i: u64) -> u64 {
        FIRST_RANGE * PER_RANGE + i * self.step
    }
    /// A ported number goes to the next operator after its range's.
    fn ported_operator(&self, i: u64) -> u64 {
        let r = (self.ported(i) / PER_RANGE) - FIRST_RANGE;
        (self.range_operator(r) + 1 + i % (self.operators - 1).max(1)) % self.operators
    }
    /// What a lookup of `n` must find.
    fn expected(&self, n: u64) -> Option<u64> {
        let base = FIRST_RANGE * PER_RANGE;
        if n < base || n >= base + self.ranges * PER_RANGE {
            return None;
        }
        let off = n - base;
        if off.is_multiple_of(self.step) && off / self.step < self.entries {
            return Some(self.ported_operator(off / self.step));
        }
        Some(self.range_operator(off / PER_RANGE))
    }
}

fn operator_id(i: u64) -> String {
    format!("bench-op-{i:02}")
}

/// xorshift64*: cheap, good enough to pick numbers.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn pick(plan: &Plan, rng: &mut Rng) -> u64 {
    let r = rng.next();
    match r % 10 {
        0..=4 => plan.ported(rng.next() % plan.entries),
        5..=8 => {
            let span = plan.ranges * PER_RANGE;
            FIRST_RANGE * PER_RANGE + rng.next() % span
        }
        // Unknown: French mobile numbers.
        _ => 33_600_000_000 + rng.next() % 100_000_000,
    }
}

struct Tally {
    lookups: u64,
    wrong: u64,
    hist: Vec<u64>,
}

impl Tally {
    fn new() -> Self {
        Tally {
            lookups: 0,
            wrong: 0,
            hist: vec![0; BUCKETS + 1],
        }
    }
    fn merge(&mut self, o: Tally) {
        self.lookups += o.lookups;
        self.wrong += o.wrong;
        for (a, b) in self.hist.iter_mut().zip(o.hist) {
            *a += b;
        }
    }
    fn percentile_ns(&self, p: f64) -> u64 {
        let total: u64 = self.hist.iter().sum();
        let rank = ((p / 100.0) * total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (ns, &c) in self.hist.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return bucket_ns(ns);
            }
        }
        bucket_ns(BUCKETS)
    }
}

/// Runs `threads` threads of lookups for `duration` on `snap`; `encrypt` adds the
/// `subscriber_id` encryption to each answer that found an operator.
fn measure(
    snap: &Arc<Snapshot>,
    plan: Plan,
    threads: usize,
    duration: Duration,
    encrypt: bool,
) -> (Tally, Duration) {
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let snap = snap.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ ((t as u64 + 1) * 0x1234_5678_9ABC));
                let mut tally = Tally::new();
                let ids: Vec<String> = (0..plan.operators).map(operator_id).collect();
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..256 {
                        let n = pick(&plan, &mut rng);
                        let t0 = Instant::now();
                        let found = snap.by_number(n);
                        if encrypt
                            && let Some((op, _)) = found
                            && let Some(key) = &op.key
                            && let Some(m) = mc_core::msisdn::Msisdn::parse(&n.to_string())
                        {
                            let _ = key.encrypt_msisdn(&m);
                        }
                        let ns = t0.elapsed().as_nanos() as usize;
                        tally.hist[bucket(ns)] += 1;
                        tally.lookups += 1;
                        let got = found.map(|(op, _)| op.record.id.as_str());
                        let want = plan.expected(n).map(|i| ids[i as usize].as_str());
                        if got != want {
                            tally.wrong += 1;
                        }
                    }
                }
                tally
            })
        })
        .collect();
    std::thread::sleep(duration);
    stop.store(true, Ordering::Relaxed);
    let mut total = Tally::new();
    for h in handles {
        if let Ok(t) = h.join() {
            total.merge(t);
        }
    }
    (total, started.elapsed())
}

struct Folder {
    path: PathBuf,
    remove: bool,
}

impl Drop for Folder {
    fn drop(&mut self) {
        if self.remove {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

fn rsa_jwk() -> Result<serde_json::Value, String> {
    use aws_lc_rs::rsa::{KeyPair, KeySize};
    use aws_lc_rs::signature::KeyPair as _;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let pair = KeyPair::generate(KeySize::Rsa2048).map_err(|_| "RSA key generation")?;
    let public = pair.public_key();
    Ok(json!({
        "kty": "RSA",
        "use": "enc",
        "n": URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
        "e": URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
    }))
}

/// `mobileconnect bench discovery …`.
pub async fn run(mode: BenchMode) -> Result<(), String> {
    let BenchMode::Discovery(args) = mode;
    if args.entries == 0 || args.ranges == 0 || args.operators < 2 || args.threads == 0 {
        return Err("--entries, --ranges, --threads: at least 1; --operators: at least 2".into());
    }
    if args.entries > args.ranges * PER_RANGE / 2 {
        return Err(format!(
            "--entries: at most half the numbers of the ranges ({})",
            args.ranges * PER_RANGE / 2
        ));
    }
    if !(0.1..=600.0).contains(&args.duration) {
        return Err("--duration: 0.1 to 600 seconds".into());
    }
    let plan = Plan {
        entries: args.entries,
        ranges: args.ranges,
        operators: u64::from(args.operators),
        step: (args.ranges * PER_RANGE) / args.entries,
    };
    let folder = match &args.data {
        Some(p) => Folder {
            path: p.clone(),
            remove: false,
        },
        None => Folder {
            path: std::env::temp_dir().join(format!("mc-bench-discovery-{}", std::process::id())),
            remove: true,
        },
    };
    std::fs::create_dir_all(&folder.path).map_err(|e| format!("{}: {e}", folder.path.display()))?;
    let db = folder.path.join("discovery.db");
    let _ = std::fs::remove_file(&db);
    let store = Arc::new(SqliteStore::open(&db).await.map_err(|e| e.to_string())?);
    let dstore: &dyn DiscoveryStore = &*store;

    progress(&format!("{} operators with RSA-2048 keys", args.operators));
    for i in 0..u64::from(args.operators) {
        let jwk = tokio::task::spawn_blocking(rsa_jwk)
            .await
            .map_err(|_| "keygen task")??;
        let id = operator_id(i);
        let base = format!("https://{id}.example");
        let links = [
            ("authorization", format!("{base}/authorize")),
            ("token", format!("{base}/token")),
            ("issuer", base.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let spec = OperatorSpec {
            id,
            mcc: "901".into(),
            mnc: format!("{:02}", 10 + i),
            name: format!("Bench Operator {i}"),
            country: "Benchland".into(),
            currency: "XTS".into(),
            links,
            encryption_jwk: Some(jwk),
            enabled: true,
        };
        registry::create_operator(dstore, &spec)
            .await
            .map_err(|e| e.to_string())?;
    }

    let csv = folder.path.join("numbers.csv");
    progress(&format!(
        "writing {} ranges and {} ported numbers to {}",
        args.ranges,
        args.entries,
        csv.display()
    ));
    let written = Instant::now();
    {
        let path = csv.clone();
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            let mut w = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&path)?);
            writeln!(w, "kind,number,operator")?;
            for r in 0..plan.ranges {
                writeln!(
                    w,
                    "range,{},{}",
                    FIRST_RANGE + r,
                    operator_id(plan.range_operator(r))
                )?;
            }
            for i in 0..plan.entries {
                writeln!(
                    w,
                    "ported,{},{}",
                    plan.ported(i),
                    operator_id(plan.ported_operator(i))
                )?;
            }
            w.flush()
        })
        .await
        .map_err(|_| "csv task")?
        .map_err(|e| format!("{}: {e}", csv.display()))?;
    }
    let csv_bytes = std::fs::metadata(&csv).map(|m| m.len()).unwrap_or(0);
    progress(&format!(
        "CSV written: {:.1} MB in {:.1} s; importing",
        csv_bytes as f64 / 1e6,
        written.elapsed().as_secs_f64()
    ));

    let t = Instant::now();
    let report = import_file(dstore, &csv, ImportMode::Merge, 1)
        .await
        .map_err(|e| e.to_string())?;
    let import_secs = t.elapsed().as_secs_f64();
    let db_bytes = ["", "-wal"]
        .iter()
        .filter_map(|s| std::fs::metadata(format!("{}{s}", db.display())).ok())
        .map(|m| m.len())
        .sum::<u64>();
    progress(&format!(
        "imported {} ranges + {} ported in {import_secs:.1} s ({:.0} entries/s); loading",
        report.ranges,
        report.ported,
        (report.ranges + report.ported) as f64 / import_secs
    ));

    let t = Instant::now();
    let config = DiscoveryConfig::new("http://127.0.0.1/discovery");
    let state = DiscoveryState::load(store.clone(), config, &[7u8; 32]).await?;
    let load_secs = t.elapsed().as_secs_f64();
    let snap = state.snapshot();
    let rss_after_load = rss_kib("VmRSS:");
    progress(&format!(
        "loaded {} ported + {} ranges in {load_secs:.1} s; index {:.1} MB, RSS {:.1} MB",
        snap.numbers().ported_len(),
        snap.numbers().ranges_len(),
        snap.numbers().heap_bytes() as f64 / 1e6,
        rss_after_load.unwrap_or(0) as f64 / 1024.0
    ));
    if snap.numbers().ported_len() as u64 != args.entries {
        return Err("the index does not hold every imported number".into());
    }

    let duration = Duration::from_secs_f64(args.duration);
    progress(&format!(
        "lookups: {} threads for {:.1} s",
        args.threads, args.duration
    ));
    let (lookups, elapsed) = {
        let snap = snap.clone();
        let threads = args.threads;
        tokio::task::spawn_blocking(move || measure(&snap, plan, threads, duration, false))
            .await
            .map_err(|_| "lookup threads")?
    };
    progress("lookups with subscriber_id encryption");
    let (answers, answers_elapsed) = {
        let snap = snap.clone();
        let threads = args.threads;
        tokio::task::spawn_blocking(move || measure(&snap, plan, threads, duration, true))
            .await
            .map_err(|_| "answer threads")?
    };
    if lookups.wrong + answers.wrong > 0 {
        return Err(format!(
            "{} lookups found another operator than expected",
            lookups.wrong + answers.wrong
        ));
    }
    let per_sec = lookups.lookups as f64 / elapsed.as_secs_f64();
    let answers_per_sec = answers.lookups as f64 / answers_elapsed.as_secs_f64();
    let peak = rss_kib("VmHWM:");
    let result = json!({
        "scenario": "discovery",
        "build": if cfg!(debug_assertions) { "debug" } else { "release" },
        "store": "sqlite",
        "threads": args.threads,
        "operators": args.operators,
        "ranges": report.ranges,
        "ported_entries": report.ported,
        "csv_bytes": csv_bytes,
        "import_secs": (import_secs * 1000.0).round() / 1000.0,
        "import_entries_per_sec": ((report.ranges + report.ported) as f64 / import_secs).round(),
        "db_bytes": db_bytes,
        "load_secs": (load_secs * 1000.0).round() / 1000.0,
        "index_bytes": snap.numbers().heap_bytes(),
        "rss_after_load_kib": rss_after_load,
        "lookups": lookups.lookups,
        "lookups_per_sec": per_sec.round(),
        "lookup_p50_ns": lookups.percentile_ns(50.0),
        "lookup_p99_ns": lookups.percentile_ns(99.0),
        "answers_with_subscriber_id_per_sec": answers_per_sec.round(),
        "answer_p50_ns": answers.percentile_ns(50.0),
        "answer_p99_ns": answers.percentile_ns(99.0),
        "wrong_answers": 0,
        "peak_rss_kib": peak,
        "target_lookups_per_sec": 100_000,
    });
    let table = format!(
        "discovery {} ported + {} ranges: import {:.1} s, load {:.1} s, index {:.1} MB, peak RSS {:.1} MB\n\
         lookups   {:>12.0}/s on {} threads, p50 {} ns, p99 {} ns (target 100000/s)\n\
         + subscriber_id {:>6.0}/s, p50 {} ns, p99 {} ns",
        report.ported,
        report.ranges,
        import_secs,
        load_secs,
        snap.numbers().heap_bytes() as f64 / 1e6,
        peak.unwrap_or(0) as f64 / 1024.0,
        per_sec,
        args.threads,
        lookups.percentile_ns(50.0),
        lookups.percentile_ns(99.0),
        answers_per_sec,
        answers.percentile_ns(50.0),
        answers.percentile_ns(99.0),
    );
    if args.json {
        eprintln!("{table}");
        println!("{result}");
    } else {
        println!("{table}");
    }
    store.close().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_predicts_every_kind_of_number() {
        let plan = Plan {
            entries: 1000,
            ranges: 10,
            operators: 3,
            step: 1000,
        };
        // A ported number: another operator than its range's.
        let n = plan.ported(5);
        let range_op = plan.range_operator((n / PER_RANGE) - FIRST_RANGE);
        assert_ne!(plan.expected(n), Some(range_op));
        // Its neighbour stays with the range.
        assert_eq!(plan.expected(n + 1), Some(range_op));
        assert_eq!(plan.expected(33_612_345_678), None);
        assert_eq!(plan.expected(FIRST_RANGE * PER_RANGE - 1), None);
    }
}
