//! `mobileconnect bench`: the real gateway measured over loopback, next to the CPU floor of a
//! login measured in the same run.
//!
//! A Mobile Connect login hashes no password: its cost is HTTP, a few store writes and one
//! RS256 signature of the id_token (DESIGN.md, "Performance model"). So every throughput is
//! also printed as a fraction of this machine's RSA-2048 signing rate, measured a moment
//! before on the same cores: 100 % would mean the gateway does nothing but sign.
//!
//! * `floor`: RSA-2048 PKCS#1 v1.5 SHA-256 signatures per second with an `aws_lc_rs` key pair
//!   parsed once (how `mc_gateway::keys` signs id_tokens), on one core and on all cores; ES256
//!   (P-256) for comparison. In process, no HTTP.
//! * `login`: the device-initiated login over HTTP, as a server-side SP would drive it:
//!   `GET /authorize` (MSISDN hint) → 302 to the waiting URL → the phone approves →
//!   `GET` of the waiting URL (headless hold, 302 to the redirect URI with the code) →
//!   `POST /token` (Basic) → `GET /userinfo`.
//! * `ciba`: CIBA poll mode: `POST /bc-authorize` → the phone approves → `POST /token` with
//!   the CIBA grant right after the approval (the first poll of a request is never slowed
//!   down); `authorization_pending` and `slow_down` are honoured by waiting `interval`.
//!
//! The gateway runs inside this process on `127.0.0.1:0`, wired as `mobileconnect sandbox`
//! wires it: an SQLite store (a temporary folder, or `--data`), `KeyRing::load_or_create`,
//! `AppState::new`, the notification workers, the gateway routes plus the virtual phones'
//! device API (`mc_sandbox::phone`). It gets `--subscribers` subscribers (app push, no PIN)
//! and one service provider through `mc_gateway::registry`.
//!
//! **Load**: a closed loop of `--concurrency` workers for `--duration`; each owns the
//! subscribers whose index is its own modulo the concurrency and uses them in turn, so the
//! gateway's rule of one live transaction per MSISDN always holds. Latency is one whole
//! login, first request to last answer. The workers share one HTTP client (keep-alive pool).
//! Each step of a login is timed too (p50 per step in the table, `steps_p50_ms` and
//! `steps_p99_ms` in the JSON), including how long the SP's held request of the waiting URL
//! took to return the code after the phone's approval (`late_holds` counts the missed
//! wake-ups).
//!
//! **The phone** answers over HTTP through the virtual phone's JSON device API
//! (`GET /phone/{msisdn}/challenges`, `POST /phone/{msisdn}/challenges/{id}`), the two
//! requests an operator's app makes. What tells it a challenge exists is the gateway's
//! in-process event hub (`AppState::hub`), standing in for the push notification such an app
//! receives: each login subscribes before its first request and the phone fetches and
//! approves the moment its own subscriber's `Challenged` event is published, with no sleep.
//! (Long-polling `?wait=` instead would measure the virtual phone, not the gateway: a
//! waiting phone is woken by every subscriber's challenge and re-reads the store each time.)
//!
//! **Peak RSS** is `VmHWM` of this process, reset before each scenario (`/proc/self/clear_refs`)
//! when the kernel allows it. It includes the load generator, which shares the process and
//! the cores with the gateway.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, RSA_PKCS1_SHA256};
use clap::{Args, ValueEnum};
use mc_authn::hub::Event;
use mc_gateway::config::GatewayConfig;
use mc_gateway::keys::KeyRing;
use mc_gateway::registry::{self, ClientSpec, RegistryError, SubscriberSpec};
use mc_gateway::state::{AppState, now};
use mc_store::DynStore;
use mc_store_sqlite::SqliteStore;
use reqwest::{StatusCode, Url};
use serde_json::{Value, json};
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;

/// What to measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// Device-initiated login over HTTP, authorize to userinfo.
    Login,
    /// CIBA poll mode over HTTP, bc-authorize to tokens.
    Ciba,
    /// RSA-2048 and ES256 signatures per second, in process.
    Floor,
    /// floor, then login, then ciba.
    All,
}

/// `mobileconnect bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// What to measure.
    #[arg(long, value_enum, default_value = "all")]
    scenario: Scenario,
    /// Logins in flight at once (one worker each).
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// How long each HTTP scenario runs (`10s`, `500ms`, `1m`). The floor's measurements
    /// share about as long (0.25 to 3 s each).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Subscribers to provision (at least `--concurrency`).
    #[arg(long, default_value_t = 1000)]
    subscribers: usize,
    /// Folder for the gateway's database and key-encryption key (default: a temporary
    /// folder, removed afterwards).
    #[arg(long)]
    data: Option<PathBuf>,
    /// One JSON object per scenario on stdout, one per line (the table goes to stderr).
    #[arg(long)]
    json: bool,
}

/// The first bench number: `+447701000000` and up, clear of the sandbox's test numbers.
const FIRST_MSISDN: u64 = 447_701_000_000;
/// The most subscribers the number range above holds.
const MAX_SUBSCRIBERS: usize = 1_000_000;
/// Upper bound of one HTTP request, and of the wait for a phone's challenge.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);
/// The service provider's client id.
const CLIENT_ID: &str = "bench-sp";
/// CIBA's grant type (CIBA Core §10.1).
const CIBA_GRANT: &str = "urn:openid:params:grant-type:ciba";

/// Parses `10s`, `500ms`, `1m` or a bare number of seconds.
fn parse_duration(raw: &str) -> Result<Duration, String> {
    let s = raw.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let n: f64 = number
        .parse()
        .map_err(|_| format!("{raw:?}: a number and a unit, e.g. 10s, 500ms, 1m"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("{raw:?}: the unit is ms, s or m")),
    };
    if !(0.001..=3600.0).contains(&secs) {
        return Err(format!("{raw:?}: between 1ms and 1h"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// `mobileconnect bench …`.
pub async fn run(args: BenchArgs) -> Result<(), String> {
    init_logging();
    if args.concurrency == 0 {
        return Err("--concurrency: at least 1".into());
    }
    if args.subscribers < args.concurrency || args.subscribers > MAX_SUBSCRIBERS {
        return Err(format!(
            "--subscribers: at least --concurrency ({}) and at most {MAX_SUBSCRIBERS}: each worker owns its own numbers",
            args.concurrency
        ));
    }
    let machine = Machine::read();
    let report = Report::new(args.json, &machine);
    let full_floor = matches!(args.scenario, Scenario::Floor | Scenario::All);
    // The floor's measurements share `--duration`; within bounds that keep it meaningful
    // and a smoke run short.
    let parts: u32 = if full_floor { 4 } else { 2 };
    let part = (args.duration / parts).clamp(Duration::from_millis(250), Duration::from_secs(3));
    progress(&format!(
        "measuring the signing floor ({} ms per measurement)",
        part.as_millis()
    ));
    let floor = tokio::task::spawn_blocking(move || measure_floor(part, full_floor))
        .await
        .map_err(|_| "the floor measurement failed".to_owned())??;
    report.floor(&floor, full_floor);

    let http_scenarios: &[Scenario] = match args.scenario {
        Scenario::Floor => &[],
        Scenario::Login => &[Scenario::Login],
        Scenario::Ciba => &[Scenario::Ciba],
        Scenario::All => &[Scenario::Login, Scenario::Ciba],
    };
    if http_scenarios.is_empty() {
        return Ok(());
    }
    let bed = Arc::new(TestBed::start(&args).await?);
    for &scenario in http_scenarios {
        progress(&format!(
            "{}: {} workers for {:.1} s",
            scenario_name(scenario),
            args.concurrency,
            args.duration.as_secs_f64()
        ));
        let outcome = drive(bed.clone(), scenario, args.concurrency, args.duration).await;
        report.outcome(&outcome, &args, &floor);
    }
    bed.server.abort();
    Ok(())
}

fn scenario_name(s: Scenario) -> &'static str {
    match s {
        Scenario::Login => "login",
        Scenario::Ciba => "ciba",
        Scenario::Floor => "floor",
        Scenario::All => "all",
    }
}

/// Warnings and errors only (`RUST_LOG` overrides): per-request logs would be measured too.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .try_init();
}

fn progress(line: &str) {
    eprintln!("bench: {line}");
}

// ---------------------------------------------------------------------------------------
// The machine and the floor
// ---------------------------------------------------------------------------------------

/// Where the figures were taken.
struct Machine {
    cores: usize,
    cpu: String,
    build: &'static str,
}

impl Machine {
    fn read() -> Machine {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|t| {
                t.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".into());
        Machine {
            cores: cores(),
            cpu,
            build: if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            },
        }
    }
}

/// The cores this process may use (affinity and cgroup quota included).
fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// Signatures per second.
struct Floor {
    rsa_one_core: f64,
    rsa_all_cores: f64,
    es256: Option<(f64, f64)>,
    part: Duration,
}

/// A signing input of the size of one of our id_tokens (header and claims, base64url).
fn sample_signing_input() -> Vec<u8> {
    let mut s = String::from("eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6ImJlbmNoIn0.");
    while s.len() < 900 {
        s.push_str("eyJpc3MiOiJodHRwOi8vMTI3LjAuMC4xIiwic3ViIjoiQkVOQ0gifQ");
    }
    s.into_bytes()
}

fn measure_floor(part: Duration, with_es256: bool) -> Result<Floor, String> {
    let rng = SystemRandom::new();
    let input = sample_signing_input();
    let rsa = RsaKeyPair::generate(KeySize::Rsa2048).map_err(|_| "RSA key generation failed")?;
    let rsa_sign = || {
        let mut sig = vec![0u8; rsa.public_modulus_len()];
        rsa.sign(&RSA_PKCS1_SHA256, &rng, &input, &mut sig).is_ok()
    };
    let all = cores();
    let rsa_one_core = signing_rate(1, part, &rsa_sign)?;
    let rsa_all_cores = signing_rate(all, part, &rsa_sign)?;
    let es256 = if with_es256 {
        let ec = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .map_err(|_| "P-256 key generation failed")?;
        let ec_sign = || ec.sign(&rng, &input).is_ok();
        Some((
            signing_rate(1, part, &ec_sign)?,
            signing_rate(all, part, &ec_sign)?,
        ))
    } else {
        None
    };
    Ok(Floor {
        rsa_one_core,
        rsa_all_cores,
        es256,
        part,
    })
}

/// Runs `sign` in a loop on `threads` threads for `part`; signatures per second in total.
fn signing_rate(
    threads: usize,
    part: Duration,
    sign: &(dyn Fn() -> bool + Sync),
) -> Result<f64, String> {
    let start = Instant::now();
    let counts: Option<Vec<u64>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let deadline = Instant::now() + part;
                    let mut n = 0u64;
                    while Instant::now() < deadline {
                        if !sign() {
                            return None;
                        }
                        n += 1;
                    }
                    Some(n)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().ok().flatten())
            .collect()
    });
    let total: u64 = counts.ok_or("a signature failed")?.iter().sum();
    Ok(total as f64 / start.elapsed().as_secs_f64())
}

// ---------------------------------------------------------------------------------------
// The gateway under test
// ---------------------------------------------------------------------------------------

/// The data folder: given, or temporary and removed on drop.
struct DataDir {
    path: PathBuf,
    temporary: bool,
}

impl DataDir {
    fn new(given: Option<PathBuf>) -> Result<DataDir, String> {
        let (path, temporary) = match given {
            Some(p) => (p, false),
            None => {
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or_default();
                let p =
                    std::env::temp_dir().join(format!("mc-bench-{}-{nanos}", std::process::id()));
                (p, true)
            }
        };
        std::fs::create_dir_all(&path).map_err(|e| format!("--data {}: {e}", path.display()))?;
        Ok(DataDir { path, temporary })
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        if self.temporary {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// A provisioned subscriber.
struct Subscriber {
    msisdn: String,
    /// The store id, which the hub's `Challenged` events carry.
    id: String,
}

/// A running gateway, its subscribers and its one service provider.
struct TestBed {
    base: String,
    state: AppState,
    http: reqwest::Client,
    secret: String,
    redirect_uri: String,
    subscribers: Vec<Subscriber>,
    server: tokio::task::JoinHandle<()>,
    // Dropped last: the store's files live there.
    _dir: DataDir,
}

impl TestBed {
    async fn start(args: &BenchArgs) -> Result<TestBed, String> {
        let dir = DataDir::new(args.data.clone())?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("listen on loopback: {e}"))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("listen on loopback: {e}"))?;
        let base = format!("http://{addr}");
        // Every section at its default (what `serve` runs with), built through serde so the
        // bench follows new sections; only the CIBA poll interval is the bench's own: the SP
        // may poll every second, and polls right after the approval.
        let mut config: GatewayConfig = serde_json::from_value(json!({ "issuer": base }))
            .map_err(|e| format!("bench configuration: {e}"))?;
        config.backchannel.poll_interval_secs = 1;
        config.validate()?;
        let db = dir.path.join("mobileconnect.db");
        let store: DynStore = Arc::new(
            SqliteStore::open(&db)
                .await
                .map_err(|e| format!("database {}: {e}", db.display()))?,
        );
        let kek = crate::run::load_kek(&dir.path.join("kek.hex"))?;
        let keys = KeyRing::load_or_create(&*store, &kek, now())
            .await
            .map_err(|e| format!("keys: {e}"))?;
        let state = AppState::new(store, config, keys);
        mc_gateway::notify::spawn_workers(state.clone());
        let app = mc_gateway::with_layers(
            mc_gateway::routes(&state)
                .merge(mc_sandbox::phone::router())
                .with_state(state.clone()),
        );
        let server = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "bench gateway stopped");
            }
        });

        progress(&format!(
            "gateway on {base}, data in {}; provisioning {} subscribers",
            dir.path.display(),
            args.subscribers
        ));
        let redirect_uri = format!("{base}/bench/callback");
        let secret = provision_client(&state.store, &base, &redirect_uri).await?;
        let mut subscribers = Vec::with_capacity(args.subscribers);
        for i in 0..args.subscribers {
            let msisdn = (FIRST_MSISDN + i as u64).to_string();
            subscribers.push(provision_subscriber(&state.store, msisdn).await?);
        }
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .tcp_nodelay(true)
            .timeout(STEP_TIMEOUT)
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(TestBed {
            base,
            state,
            http,
            secret,
            redirect_uri,
            subscribers,
            server,
            _dir: dir,
        })
    }
}

/// Registers (or, on a reused `--data` folder, updates) the bench SP: code flow and CIBA
/// poll with its secret. Returns the secret.
async fn provision_client(
    store: &DynStore,
    base: &str,
    redirect_uri: &str,
) -> Result<String, String> {
    let spec = ClientSpec {
        client_id: Some(CLIENT_ID.into()),
        name: "Bench SP".into(),
        short_name: "BenchSP".into(),
        redirect_uris: vec![redirect_uri.to_owned()],
        scopes: vec!["openid".into(), "mc_authn".into()],
        sector_identifier_uri: None,
        // CIBA wants a registered jwks_uri from pairwise clients (CIBA Core §4); the demo
        // SP's (empty) key set is served next to the phones. Never fetched: the SP
        // authenticates with its secret.
        metadata: mc_store::ClientMetadata {
            backchannel_token_delivery_mode: Some("poll".into()),
            jwks_uri: Some(format!("{base}/demo-sp/jwks.json")),
            ..Default::default()
        },
    };
    let err = |e: RegistryError| format!("registering the bench SP: {e}");
    match store
        .get_client(CLIENT_ID)
        .await
        .map_err(|e| e.to_string())?
    {
        None => Ok(registry::create_client(store, &spec).await.map_err(err)?.1),
        Some(_) => {
            registry::update_client(store, CLIENT_ID, &spec)
                .await
                .map_err(err)?;
            registry::rotate_client_secret(store, CLIENT_ID)
                .await
                .map_err(err)
        }
    }
}

async fn provision_subscriber(store: &DynStore, msisdn: String) -> Result<Subscriber, String> {
    let spec = SubscriberSpec {
        msisdn: msisdn.clone(),
        pin: None,
        capabilities: vec!["app_push".into()],
    };
    let record = match registry::create_subscriber(store, &spec).await {
        Ok(r) => r,
        // A reused `--data` folder already has it.
        Err(RegistryError::Conflict) => registry::find_subscriber(store, &msisdn)
            .await
            .map_err(|e| format!("subscriber {msisdn}: {e}"))?,
        Err(e) => return Err(format!("subscriber {msisdn}: {e}")),
    };
    Ok(Subscriber {
        msisdn,
        id: record.id,
    })
}

// ---------------------------------------------------------------------------------------
// The load
// ---------------------------------------------------------------------------------------

/// What one scenario measured.
struct Outcome {
    scenario: Scenario,
    logins: u64,
    errors: u64,
    first_error: Option<String>,
    elapsed: Duration,
    /// Whole logins, sorted, microseconds.
    latencies_us: Vec<u64>,
    /// The steps of the successful logins, in the order they happen; each sorted,
    /// microseconds.
    steps: Vec<(&'static str, Vec<u64>)>,
    /// CIBA polls answered `authorization_pending` / `slow_down` (0 when the poll follows
    /// the approval, as intended).
    pending_polls: u64,
    slow_downs: u64,
    peak_rss_kib: Option<u64>,
    peak_rss_reset: bool,
}

impl Outcome {
    fn per_sec(&self) -> f64 {
        self.logins as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile_ms(&self, p: f64) -> f64 {
        percentile_ms(&self.latencies_us, p)
    }

    fn max_ms(&self) -> f64 {
        percentile_ms(&self.latencies_us, 100.0)
    }

    fn step(&self, name: &str) -> Option<&[u64]> {
        self.steps
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_slice())
    }

    /// Logins whose code came [`LATE_HOLD`] or more after the phone's approval.
    fn late_holds(&self) -> usize {
        let late = LATE_HOLD.as_micros() as u64;
        self.step(CODE_AFTER_APPROVAL)
            .map_or(0, |v| v.len() - v.partition_point(|&h| h < late))
    }
}

/// The step from the phone's approval (its answer acknowledged) to the SP's held request of
/// the waiting URL returning the code. The hold is woken by the approval's event and
/// re-reads the store at least every 250 ms, so values near 250 ms are missed wake-ups.
const CODE_AFTER_APPROVAL: &str = "code after approval";
/// A hold this much longer than the approval was not woken by it.
const LATE_HOLD: Duration = Duration::from_millis(200);

/// Nearest-rank percentile of sorted microseconds, in milliseconds (0 when empty).
fn percentile_ms(sorted_us: &[u64], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted_us.len() as f64).ceil() as usize;
    let i = rank.clamp(1, sorted_us.len()) - 1;
    sorted_us[i] as f64 / 1000.0
}

/// The timed steps of one login.
#[derive(Default)]
struct Steps(Vec<(&'static str, Duration)>);

impl Steps {
    /// Records `name` as lasting from `since` until now; returns now.
    fn done(&mut self, name: &'static str, since: Instant) -> Instant {
        let t = Instant::now();
        self.0.push((name, t.saturating_duration_since(since)));
        t
    }
}

#[derive(Default)]
struct WorkerTally {
    latencies_us: Vec<u64>,
    steps: Vec<(&'static str, Vec<u64>)>,
    errors: u64,
    first_error: Option<String>,
    pending_polls: u64,
    slow_downs: u64,
}

impl WorkerTally {
    fn add_step(&mut self, name: &'static str, us: impl IntoIterator<Item = u64>) {
        match self.steps.iter_mut().find(|(n, _)| *n == name) {
            Some((_, v)) => v.extend(us),
            None => self.steps.push((name, us.into_iter().collect())),
        }
    }

    fn merge(&mut self, other: WorkerTally) {
        self.latencies_us.extend(other.latencies_us);
        for (name, v) in other.steps {
            self.add_step(name, v);
        }
        self.errors += other.errors;
        self.pending_polls += other.pending_polls;
        self.slow_downs += other.slow_downs;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

/// Runs `concurrency` workers until `duration` has passed; logins started before then finish.
async fn drive(
    bed: Arc<TestBed>,
    scenario: Scenario,
    concurrency: usize,
    duration: Duration,
) -> Outcome {
    let peak_rss_reset = reset_peak_rss();
    let start = Instant::now();
    let deadline = start + duration;
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..concurrency {
        let bed = bed.clone();
        workers.spawn(async move { worker(&bed, scenario, w, concurrency, deadline).await });
    }
    let mut all = WorkerTally::default();
    while let Some(joined) = workers.join_next().await {
        match joined {
            Ok(t) => all.merge(t),
            Err(e) => {
                all.errors += 1;
                all.first_error
                    .get_or_insert_with(|| format!("worker: {e}"));
            }
        }
    }
    let elapsed = start.elapsed();
    all.latencies_us.sort_unstable();
    for (_, v) in &mut all.steps {
        v.sort_unstable();
    }
    Outcome {
        scenario,
        logins: all.latencies_us.len() as u64,
        errors: all.errors,
        first_error: all.first_error,
        elapsed,
        latencies_us: all.latencies_us,
        steps: all.steps,
        pending_polls: all.pending_polls,
        slow_downs: all.slow_downs,
        peak_rss_kib: peak_rss_kib(),
        peak_rss_reset,
    }
}

async fn worker(
    bed: &TestBed,
    scenario: Scenario,
    index: usize,
    concurrency: usize,
    deadline: Instant,
) -> WorkerTally {
    let mine = owned_by(&bed.subscribers, index, concurrency);
    let mut tally = WorkerTally::default();
    let mut n = 0usize;
    while Instant::now() < deadline {
        let sub = mine[n % mine.len()];
        n += 1;
        let t0 = Instant::now();
        let result = match scenario {
            Scenario::Ciba => ciba_login(bed, sub, &mut tally).await,
            _ => device_login(bed, sub, n).await,
        };
        match result {
            Ok(steps) => {
                tally.latencies_us.push(t0.elapsed().as_micros() as u64);
                for (name, d) in steps.0 {
                    tally.add_step(name, [d.as_micros() as u64]);
                }
            }
            Err(e) => {
                tally.errors += 1;
                tally.first_error.get_or_insert(e);
            }
        }
    }
    tally
}

/// What worker `index` of `concurrency` uses: indexes `index`, `index + concurrency`, …, so
/// no two workers share a subscriber (one live transaction per MSISDN).
fn owned_by<T>(items: &[T], index: usize, concurrency: usize) -> Vec<&T> {
    items.iter().skip(index).step_by(concurrency).collect()
}

/// The phone of `sub`: waits for its challenge (the hub's event stands in for the push
/// notification), then fetches and approves it over the device API. Returns its steps and
/// when the approval was acknowledged.
async fn phone_approves(
    bed: &TestBed,
    sub: &Subscriber,
    mut events: broadcast::Receiver<Event>,
) -> Result<(Steps, Instant), String> {
    let mut steps = Steps::default();
    let t = Instant::now();
    let notified = tokio::time::timeout(STEP_TIMEOUT, async {
        loop {
            match events.recv().await {
                Ok(Event::Challenged(id)) if id == sub.id => return true,
                Ok(_) => continue,
                // Events were missed or the hub is gone: ask the device API with a long poll.
                Err(RecvError::Lagged(_) | RecvError::Closed) => return false,
            }
        }
    })
    .await
    .map_err(|_| "phone: no challenge arrived".to_owned())?;
    drop(events);
    let t = steps.done("phone notified", t);
    let wait = if notified { "0" } else { "10" };
    let phone = format!("{}/phone/{}/challenges", bed.base, sub.msisdn);
    let resp = bed
        .http
        .get(&phone)
        .query(&[("wait", wait)])
        .send()
        .await
        .map_err(|e| format!("phone challenges: {e}"))?;
    let list = json_of(resp, StatusCode::OK, "phone challenges").await?;
    let id = list["challenges"][0]["id"]
        .as_str()
        .ok_or("phone: no open challenge")?;
    let t = steps.done("phone fetch", t);
    let resp = bed
        .http
        .post(format!("{phone}/{id}"))
        .json(&json!({"decision": "approve"}))
        .send()
        .await
        .map_err(|e| format!("phone answer: {e}"))?;
    let answer = json_of(resp, StatusCode::OK, "phone answer").await?;
    if answer["result"] != "approved" {
        return Err(format!("phone answer: {answer}"));
    }
    let approved_at = steps.done("phone answer", t);
    Ok((steps, approved_at))
}

/// One device-initiated login, authorize to userinfo, with the phone answering alongside.
async fn device_login(bed: &TestBed, sub: &Subscriber, n: usize) -> Result<Steps, String> {
    // Subscribed before the first request, so the challenge's event cannot be missed.
    let phone = phone_approves(bed, sub, bed.state.hub.subscribe());
    let sp = async {
        let mut steps = Steps::default();
        let t = Instant::now();
        let state = format!("bench-{n}");
        let hint = format!("MSISDN:{}", sub.msisdn);
        let resp = bed
            .http
            .get(format!("{}/authorize", bed.base))
            .query(&[
                ("client_id", CLIENT_ID),
                ("redirect_uri", bed.redirect_uri.as_str()),
                ("response_type", "code"),
                ("scope", "openid mc_authn"),
                ("acr_values", "2"),
                ("version", "mc_di_r2_v2.3"),
                ("state", state.as_str()),
                ("nonce", state.as_str()),
                ("login_hint", hint.as_str()),
            ])
            .send()
            .await
            .map_err(|e| format!("authorize: {e}"))?;
        let wait = location(&resp, "authorize")?;
        if !wait.starts_with('/') {
            return Err(format!("authorize: refused ({wait})"));
        }
        let t = steps.done("authorize", t);
        // The headless hold answers with the code as soon as the phone has approved, or
        // with the waiting URL again when the hold ends first.
        let mut to = wait.clone();
        while to == wait {
            let resp = bed
                .http
                .get(format!("{}{wait}", bed.base))
                .send()
                .await
                .map_err(|e| format!("wait: {e}"))?;
            to = location(&resp, "wait")?;
        }
        let t = steps.done("wait", t);
        let code_at = t;
        let url = Url::parse(&to).map_err(|_| format!("wait: bad redirect {to}"))?;
        let param = |k: &str| {
            url.query_pairs()
                .find(|(name, _)| name == k)
                .map(|(_, v)| v.into_owned())
        };
        let code = param("code").ok_or_else(|| format!("wait: no code in {to}"))?;
        if param("state").as_deref() != Some(state.as_str()) {
            return Err(format!("wait: state not echoed in {to}"));
        }
        let resp = bed
            .http
            .post(format!("{}/token", bed.base))
            .basic_auth(CLIENT_ID, Some(&bed.secret))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", bed.redirect_uri.as_str()),
            ])
            .send()
            .await
            .map_err(|e| format!("token: {e}"))?;
        let tokens = json_of(resp, StatusCode::OK, "token").await?;
        let access_token = tokens["access_token"]
            .as_str()
            .ok_or("token: no access_token")?;
        if !tokens["id_token"].is_string() {
            return Err("token: no id_token".into());
        }
        let t = steps.done("token", t);
        let resp = bed
            .http
            .get(format!("{}/userinfo", bed.base))
            .bearer_auth(access_token)
            .send()
            .await
            .map_err(|e| format!("userinfo: {e}"))?;
        json_of(resp, StatusCode::OK, "userinfo").await?;
        steps.done("userinfo", t);
        Ok((steps, code_at))
    };
    let ((phone_steps, approved_at), (mut steps, code_at)) = tokio::try_join!(phone, sp)?;
    steps.0.extend(phone_steps.0);
    steps.0.push((
        CODE_AFTER_APPROVAL,
        code_at.saturating_duration_since(approved_at),
    ));
    Ok(steps)
}

/// One CIBA poll login: bc-authorize with the phone answering alongside, then the poll.
async fn ciba_login(
    bed: &TestBed,
    sub: &Subscriber,
    tally: &mut WorkerTally,
) -> Result<Steps, String> {
    let phone = phone_approves(bed, sub, bed.state.hub.subscribe());
    let start = async {
        let mut steps = Steps::default();
        let t = Instant::now();
        let resp = bed
            .http
            .post(format!("{}/bc-authorize", bed.base))
            .basic_auth(CLIENT_ID, Some(&bed.secret))
            .form(&[
                ("scope", "openid mc_authn"),
                ("login_hint", format!("MSISDN:{}", sub.msisdn).as_str()),
                ("acr_values", "2"),
                ("binding_message", "BENCH"),
            ])
            .send()
            .await
            .map_err(|e| format!("bc-authorize: {e}"))?;
        let started = json_of(resp, StatusCode::OK, "bc-authorize").await?;
        steps.done("bc-authorize", t);
        Ok((steps, started))
    };
    let ((phone_steps, _), (mut steps, started)) = tokio::try_join!(phone, start)?;
    steps.0.extend(phone_steps.0);
    let auth_req_id = started["auth_req_id"]
        .as_str()
        .ok_or("bc-authorize: no auth_req_id")?;
    let mut interval = started["interval"].as_u64().unwrap_or(5);
    // The first poll of a request is never slowed down; the phone has approved already.
    let t = Instant::now();
    loop {
        let resp = bed
            .http
            .post(format!("{}/token", bed.base))
            .basic_auth(CLIENT_ID, Some(&bed.secret))
            .form(&[("grant_type", CIBA_GRANT), ("auth_req_id", auth_req_id)])
            .send()
            .await
            .map_err(|e| format!("token: {e}"))?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        match (status, body["error"].as_str()) {
            (StatusCode::OK, _) if body["id_token"].is_string() => {
                steps.done("token", t);
                return Ok(steps);
            }
            (StatusCode::BAD_REQUEST, Some("authorization_pending")) => {
                tally.pending_polls += 1;
            }
            // CIBA Core §11: slow_down adds 5 s to the interval for this and later polls.
            (StatusCode::BAD_REQUEST, Some("slow_down")) => {
                tally.slow_downs += 1;
                interval += 5;
            }
            _ => return Err(format!("token (ciba): {status} {body}")),
        }
        tokio::time::sleep(Duration::from_secs(interval)).await;
    }
}

/// The `Location` of a 302/303.
fn location(resp: &reqwest::Response, step: &str) -> Result<String, String> {
    if !resp.status().is_redirection() {
        return Err(format!(
            "{step}: expected a redirect, got {}",
            resp.status()
        ));
    }
    resp.headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .ok_or_else(|| format!("{step}: redirect without Location"))
}

async fn json_of(resp: reqwest::Response, want: StatusCode, step: &str) -> Result<Value, String> {
    let status = resp.status();
    let body = resp.text().await.map_err(|e| format!("{step}: {e}"))?;
    if status != want {
        return Err(format!("{step}: {status} {body}"));
    }
    serde_json::from_str(&body).map_err(|_| format!("{step}: not JSON: {body}"))
}

/// Resets `VmHWM` to the current resident set (Linux ≥ 4.0); false when not allowed.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// `VmHWM` of this process in KiB.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

// ---------------------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------------------

/// The table (stdout, or stderr under `--json`) and the JSON lines (stdout).
struct Report {
    json: bool,
    cores: usize,
    cpu: String,
    build: &'static str,
}

impl Report {
    fn new(json: bool, m: &Machine) -> Report {
        let r = Report {
            json,
            cores: m.cores,
            cpu: m.cpu.clone(),
            build: m.build,
        };
        r.line(&format!(
            "mobileconnect bench: {} build, {} cores, {}",
            r.build, r.cores, r.cpu
        ));
        r
    }

    fn line(&self, s: &str) {
        if self.json {
            eprintln!("{s}");
        } else {
            println!("{s}");
        }
    }

    fn floor(&self, f: &Floor, full: bool) {
        let mut text = format!(
            "floor     RSA-2048 sign/s: {:.0} on 1 core, {:.0} on {} cores",
            f.rsa_one_core, f.rsa_all_cores, self.cores
        );
        if let Some((one, all)) = f.es256 {
            text.push_str(&format!(
                "; ES256 sign/s: {one:.0} on 1 core, {all:.0} on {} cores",
                self.cores
            ));
        }
        self.line(&text);
        self.line(&format!(
            "{:<9} {:>5} {:>8} {:>6} {:>9} {:>8} {:>8} {:>9} {:>9}",
            "scenario",
            "conc",
            "logins",
            "errors",
            "logins/s",
            "p50 ms",
            "p99 ms",
            "peak RSS",
            "of floor"
        ));
        if self.json && full {
            println!(
                "{}",
                json!({
                    "scenario": "floor",
                    "build": self.build,
                    "cores": self.cores,
                    "cpu": self.cpu,
                    "seconds_per_measurement": f.part.as_secs_f64(),
                    "rsa2048_sign_per_sec_one_core": round1(f.rsa_one_core),
                    "rsa2048_sign_per_sec_all_cores": round1(f.rsa_all_cores),
                    "es256_sign_per_sec_one_core": f.es256.map(|e| round1(e.0)),
                    "es256_sign_per_sec_all_cores": f.es256.map(|e| round1(e.1)),
                })
            );
        }
    }

    fn outcome(&self, o: &Outcome, args: &BenchArgs, f: &Floor) {
        let fraction = o.per_sec() / f.rsa_all_cores;
        let rss = o
            .peak_rss_kib
            .map(|k| format!("{:.1} MiB", k as f64 / 1024.0))
            .unwrap_or_else(|| "?".into());
        self.line(&format!(
            "{:<9} {:>5} {:>8} {:>6} {:>9.1} {:>8.1} {:>8.1} {:>9} {:>8.1}%",
            scenario_name(o.scenario),
            args.concurrency,
            o.logins,
            o.errors,
            o.per_sec(),
            o.percentile_ms(50.0),
            o.percentile_ms(99.0),
            rss,
            fraction * 100.0
        ));
        if let Some(e) = &o.first_error {
            self.line(&format!("          first error: {e}"));
        }
        if !o.steps.is_empty() {
            let steps: Vec<String> = o
                .steps
                .iter()
                .map(|(name, v)| format!("{name} {:.1}", percentile_ms(v, 50.0)))
                .collect();
            self.line(&format!("          p50 ms by step: {}", steps.join(", ")));
        }
        if o.late_holds() > 0 {
            self.line(&format!(
                "          {} logins got their code {} ms or more after the approval: missed wake-ups of the hold",
                o.late_holds(),
                LATE_HOLD.as_millis(),
            ));
        }
        if o.pending_polls + o.slow_downs > 0 {
            self.line(&format!(
                "          polls answered authorization_pending: {}, slow_down: {}",
                o.pending_polls, o.slow_downs
            ));
        }
        if self.json {
            println!(
                "{}",
                json!({
                    "scenario": scenario_name(o.scenario),
                    "build": self.build,
                    "cores": self.cores,
                    "cpu": self.cpu,
                    "store": "sqlite",
                    "phone": "http device API, notified in process",
                    "concurrency": args.concurrency,
                    "duration_secs": args.duration.as_secs_f64(),
                    "subscribers": args.subscribers,
                    "logins": o.logins,
                    "errors": o.errors,
                    "first_error": o.first_error,
                    "elapsed_secs": round3(o.elapsed.as_secs_f64()),
                    "logins_per_sec": round1(o.per_sec()),
                    "p50_ms": round3(o.percentile_ms(50.0)),
                    "p99_ms": round3(o.percentile_ms(99.0)),
                    "max_ms": round3(o.max_ms()),
                    "steps_p50_ms": steps_json(&o.steps, 50.0),
                    "steps_p99_ms": steps_json(&o.steps, 99.0),
                    "late_holds": (o.scenario == Scenario::Login).then(|| o.late_holds()),
                    "pending_polls": o.pending_polls,
                    "slow_downs": o.slow_downs,
                    "peak_rss_kib": o.peak_rss_kib,
                    "peak_rss_reset": o.peak_rss_reset,
                    "rsa2048_sign_per_sec_all_cores": round1(f.rsa_all_cores),
                    "rsa2048_sign_per_sec_one_core": round1(f.rsa_one_core),
                    "floor_fraction": round4(fraction),
                })
            );
        }
    }
}

/// `{"step": milliseconds}` at percentile `p`.
fn steps_json(steps: &[(&'static str, Vec<u64>)], p: f64) -> Value {
    Value::Object(
        steps
            .iter()
            .map(|(name, v)| ((*name).to_owned(), json!(round3(percentile_ms(v, p)))))
            .collect(),
    )
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_a_unit() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert!(parse_duration("10h").is_err());
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("s").is_err());
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let o = Outcome {
            scenario: Scenario::Login,
            logins: 100,
            errors: 0,
            first_error: None,
            elapsed: Duration::from_secs(1),
            latencies_us: (1..=100).map(|i| i * 1000).collect(),
            steps: vec![(CODE_AFTER_APPROVAL, vec![1_000, 199_999, 200_000, 250_000])],
            pending_polls: 0,
            slow_downs: 0,
            peak_rss_kib: None,
            peak_rss_reset: false,
        };
        assert_eq!(o.percentile_ms(50.0), 50.0);
        assert_eq!(o.percentile_ms(99.0), 99.0);
        assert_eq!(o.max_ms(), 100.0);
        assert_eq!(o.late_holds(), 2, "200 ms and more");
        assert_eq!(percentile_ms(&[], 50.0), 0.0);
    }

    #[test]
    fn a_worker_owns_its_own_numbers() {
        let items: Vec<usize> = (0..10).collect();
        let mut seen: Vec<usize> = (0..3)
            .flat_map(|w| owned_by(&items, w, 3))
            .copied()
            .collect();
        assert_eq!(owned_by(&items, 1, 3), vec![&1, &4, &7]);
        seen.sort_unstable();
        assert_eq!(seen, items, "every subscriber used, by one worker only");
    }
}
