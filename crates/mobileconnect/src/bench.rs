//! `mobileconnect bench`: the real gateway measured over loopback, next to the CPU floor of a
//! login and the reference OP (npm `oidc-provider`), both measured in the same run.
//!
//! A Mobile Connect login hashes no password: its cost is HTTP, a few store writes and one
//! RS256 signature of the id_token (DESIGN.md, "Performance model"). So every login
//! throughput is also printed as a fraction of this machine's RSA-2048 signing rate on the
//! same cores, measured right before the scenario's warm-up and right after its run (the
//! mean of the two; neighbours on a shared machine move it within minutes): 100 % would mean
//! the gateway does nothing but sign.
//!
//! * `floor`: RSA-2048 PKCS#1 v1.5 SHA-256 signatures per second with an `aws_lc_rs` key pair
//!   parsed once (how `mc_gateway::keys` signs id_tokens), on one core and on all cores; ES256
//!   (P-256) for comparison. In process, no HTTP.
//! * `idle`: the resident set of a real `mobileconnect sandbox` child process (this
//!   executable), started on a free loopback port with a temporary data folder, once it
//!   answers `/healthz` and has sat idle for two seconds.
//! * `login`: the device-initiated login over HTTP, as a server-side SP would drive it:
//!   `GET /authorize` (MSISDN hint; held while the phone approves, then 302 to the redirect
//!   URI with the code; the waiting URL, held the same way, only if the hold ends first) →
//!   `POST /token` (Basic) → `GET /userinfo`.
//! * `ciba`: CIBA poll mode: `POST /bc-authorize` → the phone approves → `POST /token` with
//!   the CIBA grant right after the approval (the first poll of a request is never slowed
//!   down); `authorization_pending` and `slow_down` are honoured by waiting `interval`.
//! * `client_credentials`: `POST /token` with `grant_type=client_credentials` (Basic): client
//!   authentication and one access token, no signature.
//! * `userinfo`: one access token per worker, obtained once through a `login`, then
//!   `GET /userinfo` with it in a loop.
//! * `pending`: `--pending` CIBA requests (default 100,000) started over HTTP and left
//!   pending (no phone answers), one per subscriber; then the resident set of this process
//!   (gateway and load generator) and the gateway's own count of pending requests.
//!
//! **The reference OP** (`--peer URL`, see `bench/peer/`): an `oidc-provider` process on
//! loopback, configured for CIBA poll mode with a `triggerAuthenticationDevice` that approves
//! at once and for `client_credentials`. Right after each of our `ciba` and
//! `client_credentials` runs the same load (same workers, same duration, same load generator)
//! runs against it, and our figure is printed as a ratio to its figure. Its endpoints come
//! from its discovery document; its client is `bench-sp` / `bench-peer-secret`. With
//! `--peer-pid` its peak RSS is read too.
//!
//! The gateway runs inside this process on `127.0.0.1:0`, wired as `mobileconnect sandbox`
//! wires it: an SQLite store (a temporary folder, or `--data`), `KeyRing::load_or_create`,
//! `AppState::new`, the notification workers, the gateway routes plus the virtual phones'
//! device API (`mc_sandbox::phone`). It gets `--subscribers` subscribers (app push, no PIN)
//! and one service provider through `mc_gateway::registry`, registered without quotas.
//!
//! **Load**: after an unmeasured warm-up of a tenth of `--duration` (at most 2 s), for ours
//! and the peer alike, a closed loop of `--concurrency` workers for `--duration`; each owns the
//! subscribers whose index is its own modulo the concurrency and uses them in turn, so the
//! gateway's rule of one live transaction per MSISDN always holds. Latency is one whole
//! iteration, first request to last answer. Each worker owns its HTTP/1.1 keep-alive
//! connections, one per origin and side (the SP's to the OP under test, the phone's to ours:
//! a login's phone requests run while the SP's hold is in flight), used one request at a
//! time by a minimal HTTP/1.1 client (`bench_http`): the load generator shares the process
//! and the cores with the gateway, and a general client's per-request work (URL parsing,
//! pool checkout, channels between the request and the connection) costs CPU that would be
//! counted with the gateway's. A connection the
//! server closed is opened again (`reconnects`). Each step of a login is timed too (p50 per
//! step in the table, `steps_p50_ms` and `steps_p99_ms` in the JSON), including how long the
//! SP's held request (`/authorize` itself, as for any client that does not ask for HTML)
//! took to return the code after the phone's approval (`late_holds` counts the missed
//! wake-ups).
//!
//! **The phone** answers over HTTP through the virtual phone's JSON device API
//! (`GET /phone/{msisdn}/challenges`, `POST /phone/{msisdn}/challenges/{id}`), the two
//! requests an operator's app makes. What tells it a challenge exists is the gateway's
//! in-process event hub (`AppState::hub`), standing in for the push notification such an app
//! receives: one dispatcher task reads the hub and hands each subscriber's `Challenged`
//! event to the login waiting for it (registered before the login's first request), so the
//! phone fetches and approves at once, with no sleep and without every login reading every
//! event.
//!
//! **Peak RSS** is `VmHWM`, reset before each scenario (`/proc/…/clear_refs`) when the
//! kernel allows it: of this process for our runs (it includes the load generator, which
//! shares the process and the cores with the gateway), of `--peer-pid` for the peer's.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, RSA_PKCS1_SHA256};
use clap::{Args, ValueEnum};
use hyper::header::HeaderValue;
use mc_authn::hub::{Event, Watch};
use mc_gateway::config::GatewayConfig;
use mc_gateway::keys::KeyRing;
use mc_gateway::registry::{self, ClientSpec, RegistryError, SubscriberSpec};
use mc_gateway::state::{AppState, now};
use mc_store::DynStore;
use mc_store_postgres::{PgStore, PgStoreOptions};
use mc_store_sqlite::SqliteStore;
use reqwest::{StatusCode, Url};

use crate::bench_http::{self, LeanConn, Origin, Reply};
use serde_json::{Value, json};

/// What to measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// Device-initiated login over HTTP, authorize to userinfo.
    Login,
    /// CIBA poll mode over HTTP, bc-authorize to tokens (and the peer's, with --peer).
    Ciba,
    /// The token endpoint with client_credentials (and the peer's, with --peer).
    #[value(name = "client_credentials", alias = "client-credentials")]
    ClientCredentials,
    /// GET /userinfo with tokens obtained once.
    Userinfo,
    /// GET /healthz: what one HTTP request costs, gateway and load generator together.
    #[value(name = "http_floor", alias = "http-floor")]
    HttpFloor,
    /// --pending CIBA requests left pending; resident set afterwards.
    Pending,
    /// Resident set of an idle `mobileconnect sandbox` process.
    Idle,
    /// RSA-2048 and ES256 signatures per second, in process.
    Floor,
    /// floor, idle, login, ciba, client_credentials, userinfo, http_floor (not pending: it
    /// is long).
    All,
}

/// `mobileconnect bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// What to measure.
    #[arg(long, value_enum, default_value = "all")]
    scenario: Scenario,
    /// Clients in flight at once (one worker each).
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// How long each HTTP scenario runs (`10s`, `500ms`, `1m`). The floor's measurements
    /// share about as long (0.25 to 3 s each).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Subscribers to provision (at least `--concurrency`; `pending` provisions at least
    /// `--pending`).
    #[arg(long, default_value_t = 1000)]
    subscribers: usize,
    /// CIBA requests the `pending` scenario leaves pending.
    #[arg(long, default_value_t = 100_000)]
    pending: usize,
    /// Folder for the gateway's database and key-encryption key (default: a temporary
    /// folder, removed afterwards).
    #[arg(long)]
    data: Option<PathBuf>,
    /// The store: `postgres://user:password@host:port/database` runs the gateway on that
    /// PostgreSQL database (empty, or used by an earlier bench with the same `--data`: its
    /// signing keys are sealed with that folder's key-encryption key). Default: SQLite in
    /// the data folder, as `mobileconnect sandbox` and `serve` use it.
    #[arg(long, value_name = "URL")]
    database: Option<String>,
    /// The reference OP (`bench/peer/`, npm oidc-provider) at this base URL: `ciba` and
    /// `client_credentials` run against it too, right after ours.
    #[arg(long)]
    peer: Option<Url>,
    /// The peer's process id, to read its peak RSS.
    #[arg(long, requires = "peer")]
    peer_pid: Option<u32>,
    /// One JSON object per scenario on stdout, one per line (the table goes to stderr).
    #[arg(long)]
    json: bool,
    /// In-process modes with options of their own (`bench discovery --entries N`).
    #[command(subcommand)]
    mode: Option<crate::bench_discovery::BenchMode>,
}

/// The first bench number: `+447701000000` and up, clear of the sandbox's test numbers.
const FIRST_MSISDN: u64 = 447_701_000_000;
/// The most subscribers the number range above holds.
const MAX_SUBSCRIBERS: usize = 1_000_000;
/// Upper bound of one HTTP request, and of the wait for a phone's challenge.
pub(crate) const STEP_TIMEOUT: Duration = Duration::from_secs(30);
/// The service provider's client id (ours and the peer's).
const CLIENT_ID: &str = "bench-sp";
/// The peer's client secret (`bench/peer/peer.mjs`; loopback only).
const PEER_SECRET: &str = "bench-peer-secret";
/// CIBA's grant type (CIBA Core §10.1).
const CIBA_GRANT: &str = "urn:openid:params:grant-type:ciba";
/// How long the `pending` scenario's requests live (the gateway's upper bound).
const PENDING_EXPIRY_SECS: u32 = 3600;
/// How long the idle sandbox sits before its resident set is read.
const IDLE_SETTLE: Duration = Duration::from_secs(2);

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
pub async fn run(mut args: BenchArgs) -> Result<(), String> {
    init_logging();
    if let Some(mode) = args.mode.take() {
        return crate::bench_discovery::run(mode).await;
    }
    if args.concurrency == 0 {
        return Err("--concurrency: at least 1".into());
    }
    if args.subscribers < args.concurrency || args.subscribers > MAX_SUBSCRIBERS {
        return Err(format!(
            "--subscribers: at least --concurrency ({}) and at most {MAX_SUBSCRIBERS}: each worker owns its own numbers",
            args.concurrency
        ));
    }
    if args.scenario == Scenario::Pending {
        if args.pending == 0 || args.pending >= MAX_SUBSCRIBERS {
            return Err(format!("--pending: 1 to {}", MAX_SUBSCRIBERS - 1));
        }
        // One pending request per subscriber (the rule of one live transaction per MSISDN),
        // and one more subscriber for a CIBA login made while they are pending.
        args.subscribers = args.subscribers.max(args.pending + 1);
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
    let rsa = Arc::new(RsaFloor::new()?);
    let floor = {
        let rsa = rsa.clone();
        tokio::task::spawn_blocking(move || measure_floor(&rsa, part, full_floor))
            .await
            .map_err(|_| "the floor measurement failed".to_owned())??
    };
    report.floor(&floor, full_floor);

    if matches!(args.scenario, Scenario::Idle | Scenario::All) {
        progress("idle: starting `mobileconnect sandbox`");
        let idle = measure_idle().await?;
        report.idle(&idle);
    }

    let http_scenarios: &[Scenario] = match args.scenario {
        Scenario::Floor | Scenario::Idle => &[],
        Scenario::All => &[
            Scenario::Login,
            Scenario::Ciba,
            Scenario::ClientCredentials,
            Scenario::Userinfo,
            Scenario::HttpFloor,
        ],
        Scenario::Login => &[Scenario::Login],
        Scenario::Ciba => &[Scenario::Ciba],
        Scenario::ClientCredentials => &[Scenario::ClientCredentials],
        Scenario::Userinfo => &[Scenario::Userinfo],
        Scenario::HttpFloor => &[Scenario::HttpFloor],
        Scenario::Pending => &[Scenario::Pending],
    };
    if http_scenarios.is_empty() {
        return Ok(());
    }
    let bed = Arc::new(TestBed::start(&args).await?);
    let peer = match &args.peer {
        Some(url) => Some(Arc::new(Endpoint::peer(&bed.http, url).await?)),
        None => None,
    };
    let ours = Arc::new(Endpoint::ours(&bed));
    for &scenario in http_scenarios {
        if scenario == Scenario::Pending {
            progress(&format!(
                "pending: {} CIBA requests left pending, {} workers",
                args.pending, args.concurrency
            ));
            let outcome = drive_pending(bed.clone(), args.pending, args.concurrency).await;
            report.pending(&outcome, &args);
            continue;
        }
        let job = match scenario {
            Scenario::Ciba => Job::Ciba(ours.clone()),
            Scenario::ClientCredentials => Job::ClientCredentials(ours.clone()),
            Scenario::Userinfo => {
                progress(&format!(
                    "userinfo: one access token per worker ({})",
                    args.concurrency
                ));
                Job::Userinfo(Arc::new(userinfo_tokens(&bed, args.concurrency).await?))
            }
            Scenario::HttpFloor => Job::HttpFloor,
            _ => Job::Login,
        };
        progress(&format!(
            "{}: {} workers for {:.1} s",
            scenario_name(scenario),
            args.concurrency,
            args.duration.as_secs_f64()
        ));
        let floor_before = if signs(scenario) {
            Some(rsa.all_cores(part).await?)
        } else {
            None
        };
        warm_up(&bed, scenario, &job, &args).await;
        let outcome = drive(
            bed.clone(),
            scenario,
            job,
            Rss::This,
            args.concurrency,
            args.duration,
        )
        .await;
        let around = match floor_before {
            Some(before) => Some(FloorAround {
                before,
                after: rsa.all_cores(part).await?,
            }),
            None => None,
        };
        let peer_job = match (&peer, scenario) {
            (Some(p), Scenario::Ciba) => Some(Job::Ciba(p.clone())),
            (Some(p), Scenario::ClientCredentials) => Some(Job::ClientCredentials(p.clone())),
            _ => None,
        };
        let Some(peer_job) = peer_job else {
            report.outcome(&outcome, None, &args, &floor, around);
            continue;
        };
        progress(&format!(
            "{} against the reference OP: {} workers for {:.1} s",
            scenario_name(scenario),
            args.concurrency,
            args.duration.as_secs_f64()
        ));
        warm_up(&bed, scenario, &peer_job, &args).await;
        let rss = args.peer_pid.map_or(Rss::Unknown, Rss::Pid);
        let theirs = drive(
            bed.clone(),
            scenario,
            peer_job,
            rss,
            args.concurrency,
            args.duration,
        )
        .await;
        report.outcome(&theirs, None, &args, &floor, None);
        report.outcome(&outcome, Some(&theirs), &args, &floor, around);
    }
    bed.server.abort();
    Ok(())
}

/// Logins sign one id_token each; the other scenarios sign nothing.
fn signs(scenario: Scenario) -> bool {
    matches!(scenario, Scenario::Login | Scenario::Ciba)
}

/// An unmeasured run of a tenth of `--duration` (at most 2 s) before each measured one, so
/// neither target is measured cold (Node's JIT, both sides' connection pools and caches).
async fn warm_up(bed: &Arc<TestBed>, scenario: Scenario, job: &Job, args: &BenchArgs) {
    let warm = (args.duration / 10).min(Duration::from_secs(2));
    let _ = drive(
        bed.clone(),
        scenario,
        job.clone(),
        Rss::Unknown,
        args.concurrency,
        warm,
    )
    .await;
}

fn scenario_name(s: Scenario) -> &'static str {
    match s {
        Scenario::Login => "login",
        Scenario::Ciba => "ciba",
        Scenario::ClientCredentials => "client_credentials",
        Scenario::Userinfo => "userinfo",
        Scenario::HttpFloor => "http_floor",
        Scenario::Pending => "pending",
        Scenario::Idle => "idle",
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

/// The RSA-2048 key and signing input of the floor (the input is ES256's too), kept for the
/// measurements around each signing scenario.
struct RsaFloor {
    key: RsaKeyPair,
    input: Vec<u8>,
    rng: SystemRandom,
}

impl RsaFloor {
    fn new() -> Result<RsaFloor, String> {
        Ok(RsaFloor {
            key: RsaKeyPair::generate(KeySize::Rsa2048).map_err(|_| "RSA key generation failed")?,
            input: sample_signing_input(),
            rng: SystemRandom::new(),
        })
    }

    fn sign(&self) -> bool {
        let mut sig = vec![0u8; self.key.public_modulus_len()];
        self.key
            .sign(&RSA_PKCS1_SHA256, &self.rng, &self.input, &mut sig)
            .is_ok()
    }

    /// Signatures per second on all cores, measured off the async runtime.
    async fn all_cores(self: &Arc<Self>, part: Duration) -> Result<f64, String> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || signing_rate(cores(), part, &|| me.sign()))
            .await
            .map_err(|_| "the floor measurement failed".to_owned())?
    }
}

/// The all-cores floor measured right before a signing scenario's warm-up and right after
/// its run: neighbours on a shared machine move the floor within minutes, so the scenario is
/// compared with the floor of its own moment (the mean of the two).
#[derive(Clone, Copy)]
struct FloorAround {
    before: f64,
    after: f64,
}

impl FloorAround {
    fn mean(self) -> f64 {
        (self.before + self.after) / 2.0
    }
}

fn measure_floor(rsa: &RsaFloor, part: Duration, with_es256: bool) -> Result<Floor, String> {
    let rsa_sign = || rsa.sign();
    let all = cores();
    let rsa_one_core = signing_rate(1, part, &rsa_sign)?;
    let rsa_all_cores = signing_rate(all, part, &rsa_sign)?;
    let es256 = if with_es256 {
        let ec = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .map_err(|_| "P-256 key generation failed")?;
        let ec_sign = || ec.sign(&rsa.rng, &rsa.input).is_ok();
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
    /// The gateway's address, for the load generator's connections.
    origin: Origin,
    state: AppState,
    /// Setup only (the peer's discovery document); the timed requests go through
    /// [`LeanConn`]s.
    http: reqwest::Client,
    /// `Authorization: Basic` of the bench SP.
    basic: HeaderValue,
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
        // The `pending` scenario's requests outlive the run.
        config.backchannel.max_expiry_secs = PENDING_EXPIRY_SECS;
        config.validate()?;
        let store = open_store(args.database.as_deref(), &dir.path).await?;
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
            "gateway on {base}, data in {}, store {}; provisioning {} subscribers",
            dir.path.display(),
            if args.database.is_some() {
                "postgres"
            } else {
                "sqlite"
            },
            args.subscribers
        ));
        let redirect_uri = format!("{base}/bench/callback");
        let secret = provision_client(&state.store, &base, &redirect_uri).await?;
        let basic = bench_http::basic(CLIENT_ID, &secret)?;
        let provisioning = Instant::now();
        let mut subscribers = Vec::with_capacity(args.subscribers);
        for i in 0..args.subscribers {
            let msisdn = (FIRST_MSISDN + i as u64).to_string();
            subscribers.push(provision_subscriber(&state.store, msisdn).await?);
        }
        if args.subscribers >= 10_000 {
            progress(&format!(
                "provisioned {} subscribers in {:.1} s",
                args.subscribers,
                provisioning.elapsed().as_secs_f64()
            ));
        }
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .tcp_nodelay(true)
            .timeout(STEP_TIMEOUT)
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(TestBed {
            origin: Origin::at(addr)?,
            state,
            http,
            basic,
            redirect_uri,
            subscribers,
            server,
            _dir: dir,
        })
    }
}

/// The bench's store: PostgreSQL at `url` (pool as `serve` sizes it by default), else SQLite
/// in `dir`.
async fn open_store(url: Option<&str>, dir: &std::path::Path) -> Result<DynStore, String> {
    match url {
        // The URL may hold a password: not repeated in the error.
        Some(url) => Ok(Arc::new(
            PgStore::connect_with(url, PgStoreOptions::default())
                .await
                .map_err(|e| format!("database (postgres): {e}"))?,
        )),
        None => {
            let db = dir.join("mobileconnect.db");
            Ok(Arc::new(
                SqliteStore::open(&db)
                    .await
                    .map_err(|e| format!("database {}: {e}", db.display()))?,
            ))
        }
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
        // `mc_atp`: the scope of `client_credentials` (digest §8.4).
        scopes: vec!["openid".into(), "mc_authn".into(), "mc_atp".into()],
        sector_identifier_uri: None,
        // CIBA wants a registered jwks_uri from pairwise clients (CIBA Core §4); the demo
        // SP's (empty) key set is served next to the phones. Never fetched: the SP
        // authenticates with its secret.
        metadata: mc_store::ClientMetadata {
            backchannel_token_delivery_mode: Some("poll".into()),
            jwks_uri: Some(format!("{base}/demo-sp/jwks.json")),
            grant_types: vec!["client_credentials".into()],
            // No Access Gateway quota (0 = unlimited): the bench measures the gateway, not
            // the throttle.
            quota_per_second: Some(0),
            quota_per_day: Some(0),
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
    /// `mobileconnect` or the peer's name.
    target: &'static str,
    /// Completed iterations (logins, token requests, userinfo requests).
    ops: u64,
    errors: u64,
    first_error: Option<String>,
    elapsed: Duration,
    /// Whole iterations, sorted, microseconds.
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
    /// CPU seconds (user + system) the server under test used during the run: this process
    /// (gateway and load generator) for ours, `--peer-pid` for the peer's.
    cpu_secs: Option<f64>,
    /// CPU seconds of this process during a peer run: the load generator alone.
    loadgen_cpu_secs: Option<f64>,
    /// Connections of the workers opened again: closed by the server, or a request failed
    /// on them (such a request counts as an error of its iteration).
    reconnects: u64,
}

impl Outcome {
    /// CPU milliseconds per iteration, from `cpu_secs`.
    fn cpu_ms_per_op(&self, secs: Option<f64>) -> Option<f64> {
        secs.filter(|_| self.ops > 0)
            .map(|s| s * 1000.0 / self.ops as f64)
    }

    fn per_sec(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
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

    fn signs(&self) -> bool {
        signs(self.scenario)
    }
}

/// The step from the phone's approval (its answer acknowledged) to the SP's held request
/// (`/authorize`, or the waiting URL after a hold that ended first) returning the code. The
/// hold is woken by the approval's event and re-reads the store at least every 250 ms, so
/// values near 250 ms are missed wake-ups.
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
    reconnects: u64,
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
        self.reconnects += other.reconnects;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }

    fn record(&mut self, t0: Instant, result: Result<Steps, String>) {
        match result {
            Ok(steps) => {
                self.latencies_us.push(t0.elapsed().as_micros() as u64);
                for (name, d) in steps.0 {
                    self.add_step(name, [d.as_micros() as u64]);
                }
            }
            Err(e) => {
                self.errors += 1;
                self.first_error.get_or_insert(e);
            }
        }
    }
}

/// An OP's CIBA and token endpoints and the bench client's credentials there.
struct Endpoint {
    name: &'static str,
    /// Where both endpoints are.
    origin: Origin,
    /// The endpoints' paths (request targets at `origin`).
    token: String,
    bc_authorize: String,
    /// `Authorization: Basic` of the bench client there.
    basic: HeaderValue,
    /// Ours: Mobile Connect parameters (`mc_authn`, `acr_values`) and the virtual phone
    /// answers each CIBA request. The peer approves in `triggerAuthenticationDevice`.
    mobile_connect: bool,
}

impl Endpoint {
    fn ours(bed: &TestBed) -> Endpoint {
        Endpoint {
            name: "mobileconnect",
            origin: bed.origin.clone(),
            token: "/token".into(),
            bc_authorize: "/bc-authorize".into(),
            basic: bed.basic.clone(),
            mobile_connect: true,
        }
    }

    /// The reference OP, from its discovery document.
    async fn peer(http: &reqwest::Client, base: &Url) -> Result<Endpoint, String> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            base.as_str().trim_end_matches('/')
        );
        let resp = http
            .get(&url)
            .send()
            .await
            .map_err(|e| format!("--peer {url}: {e}"))?;
        let status = resp.status();
        let body = resp
            .text()
            .await
            .map_err(|e| format!("--peer {url}: {e}"))?;
        if status != StatusCode::OK {
            return Err(format!("--peer discovery: {status} {body}"));
        }
        let meta: Value = serde_json::from_str(&body)
            .map_err(|_| format!("--peer discovery: not JSON: {body}"))?;
        let field = |k: &str| {
            meta[k]
                .as_str()
                .and_then(|u| Url::parse(u).ok())
                .ok_or_else(|| format!("--peer: no {k} in {url} (is CIBA enabled?)"))
        };
        let token = field("token_endpoint")?;
        let bc_authorize = field("backchannel_authentication_endpoint")?;
        let origin = Origin::of(&token).await?;
        // One connection per worker serves both endpoints.
        if Origin::of(&bc_authorize).await? != origin {
            return Err(format!(
                "--peer: {token} and {bc_authorize} are on different hosts"
            ));
        }
        Ok(Endpoint {
            name: "oidc-provider",
            origin,
            token: bench_http::target(&token),
            bc_authorize: bench_http::target(&bc_authorize),
            basic: bench_http::basic(CLIENT_ID, PEER_SECRET)?,
            mobile_connect: false,
        })
    }
}

/// What each iteration of a worker does.
#[derive(Clone)]
enum Job {
    Login,
    Ciba(Arc<Endpoint>),
    ClientCredentials(Arc<Endpoint>),
    /// One access token per worker.
    Userinfo(Arc<Vec<String>>),
    /// `GET /healthz`, a handler that does nothing.
    HttpFloor,
}

impl Job {
    /// The OP the service provider's requests go to.
    fn origin<'a>(&'a self, bed: &'a TestBed) -> &'a Origin {
        match self {
            Job::Ciba(op) | Job::ClientCredentials(op) => &op.origin,
            _ => &bed.origin,
        }
    }

    /// Whether a virtual phone answers (over the phone's connection).
    fn uses_phone(&self) -> bool {
        match self {
            Job::Login => true,
            Job::Ciba(op) => op.mobile_connect,
            _ => false,
        }
    }
}

/// A worker's own keep-alive connections: the service provider's to the OP under test (ours
/// or the peer) and the phone's to ours. Two, because the phone's requests of a login run
/// while the SP's held `/authorize` is in flight.
struct Conns {
    sp: LeanConn,
    phone: LeanConn,
}

impl Conns {
    fn new(bed: &TestBed, sp: &Origin) -> Conns {
        Conns {
            sp: LeanConn::new(sp.clone()),
            phone: LeanConn::new(bed.origin.clone()),
        }
    }

    fn reconnects(&self) -> u64 {
        self.sp.reconnects() + self.phone.reconnects()
    }
}

/// Whose peak RSS a run reports.
#[derive(Clone, Copy)]
enum Rss {
    This,
    Pid(u32),
    Unknown,
}

impl Rss {
    fn proc_dir(self) -> Option<String> {
        match self {
            Rss::This => Some("/proc/self".into()),
            Rss::Pid(pid) => Some(format!("/proc/{pid}")),
            Rss::Unknown => None,
        }
    }

    /// Resets `VmHWM` to the current resident set (Linux ≥ 4.0); false when not allowed.
    fn reset(self) -> bool {
        self.proc_dir()
            .is_some_and(|d| std::fs::write(format!("{d}/clear_refs"), "5").is_ok())
    }

    fn peak_kib(self) -> Option<u64> {
        status_kib(&self.proc_dir()?, "VmHWM:")
    }

    /// CPU seconds (user + system, all threads) the process has used so far.
    fn cpu_secs(self) -> Option<f64> {
        cpu_secs(&self.proc_dir()?)
    }
}

/// `utime + stime` of `/proc/…/stat`, in seconds. Linux reports them in `USER_HZ` ticks,
/// which is 100 on every architecture it exposes to user space (10 ms resolution).
fn cpu_secs(proc_dir: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("{proc_dir}/stat")).ok()?;
    // The command name (field 2) may hold spaces: count from the closing parenthesis.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of the line are the 12th and 13th after the name.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

/// A `kB` line of `/proc/…/status`.
fn status_kib(proc_dir: &str, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("{proc_dir}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Runs `concurrency` workers until `duration` has passed; iterations started before then
/// finish.
async fn drive(
    bed: Arc<TestBed>,
    scenario: Scenario,
    job: Job,
    rss: Rss,
    concurrency: usize,
    duration: Duration,
) -> Outcome {
    let target = match &job {
        Job::Ciba(e) | Job::ClientCredentials(e) => e.name,
        _ => "mobileconnect",
    };
    let peak_rss_reset = rss.reset();
    let cpu_before = rss.cpu_secs();
    let loadgen_before = Rss::This.cpu_secs();
    let start = Instant::now();
    let deadline = start + duration;
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..concurrency {
        let (bed, job) = (bed.clone(), job.clone());
        workers.spawn(async move { worker(&bed, &job, w, concurrency, deadline).await });
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
    let cpu_secs = rss.cpu_secs().zip(cpu_before).map(|(a, b)| a - b);
    let loadgen_cpu_secs = match rss {
        Rss::This => None,
        _ => Rss::This.cpu_secs().zip(loadgen_before).map(|(a, b)| a - b),
    };
    all.latencies_us.sort_unstable();
    for (_, v) in &mut all.steps {
        v.sort_unstable();
    }
    Outcome {
        scenario,
        target,
        ops: all.latencies_us.len() as u64,
        errors: all.errors,
        first_error: all.first_error,
        elapsed,
        latencies_us: all.latencies_us,
        steps: all.steps,
        pending_polls: all.pending_polls,
        slow_downs: all.slow_downs,
        peak_rss_kib: rss.peak_kib(),
        peak_rss_reset,
        cpu_secs,
        loadgen_cpu_secs,
        reconnects: all.reconnects,
    }
}

async fn worker(
    bed: &TestBed,
    job: &Job,
    index: usize,
    concurrency: usize,
    deadline: Instant,
) -> WorkerTally {
    let mine = owned_by(&bed.subscribers, index, concurrency);
    let mut tally = WorkerTally::default();
    let mut conns = Conns::new(bed, job.origin(bed));
    // Opened before the first iteration's clock starts, like a warm pool's. A failure here
    // shows again, as an error, in the first request.
    let _ = conns.sp.connect().await;
    if job.uses_phone() {
        let _ = conns.phone.connect().await;
    }
    let mut n = 0usize;
    while Instant::now() < deadline {
        let sub = mine[n % mine.len()];
        n += 1;
        let t0 = Instant::now();
        let result = match job {
            Job::Login => device_login(bed, sub, n, &mut conns)
                .await
                .map(|(steps, _)| steps),
            Job::Ciba(op) => ciba_login(bed, op, sub, &mut tally, &mut conns).await,
            Job::ClientCredentials(op) => client_credentials(op, &mut conns.sp).await,
            Job::Userinfo(tokens) => userinfo(&tokens[index % tokens.len()], &mut conns.sp).await,
            Job::HttpFloor => http_floor(&mut conns.sp).await,
        };
        tally.record(t0, result);
    }
    tally.reconnects = conns.reconnects();
    tally
}

/// What worker `index` of `concurrency` uses: indexes `index`, `index + concurrency`, …, so
/// no two workers share a subscriber (one live transaction per MSISDN).
fn owned_by<T>(items: &[T], index: usize, concurrency: usize) -> Vec<&T> {
    items.iter().skip(index).step_by(concurrency).collect()
}

/// Watches for the next challenge of subscriber `id` (taken before the request that makes
/// it, so it cannot be missed): the hub's event stands in for the push notification.
fn phone_watch(bed: &TestBed, id: &str) -> Watch {
    bed.state.hub.watch(Event::Challenged(id.to_owned()))
}

/// The phone of `sub`: waits for its challenge, then fetches and approves it over the
/// device API. Returns its steps and when the approval was acknowledged.
async fn phone_approves(
    sub: &Subscriber,
    notified: Watch,
    conn: &mut LeanConn,
) -> Result<(Steps, Instant), String> {
    let mut steps = Steps::default();
    let t = Instant::now();
    if !notified.wait(STEP_TIMEOUT).await {
        return Err("phone: no challenge arrived".to_owned());
    }
    let t = steps.done("phone notified", t);
    let phone = format!("/phone/{}/challenges", sub.msisdn);
    let resp = conn
        .get(&format!("{phone}?wait=0"), None)
        .await
        .map_err(|e| format!("phone challenges: {e}"))?;
    let list = json_of(&resp, StatusCode::OK, "phone challenges")?;
    let id = list["challenges"][0]["id"]
        .as_str()
        .ok_or("phone: no open challenge")?;
    let t = steps.done("phone fetch", t);
    let resp = conn
        .post_json(&format!("{phone}/{id}"), &json!({"decision": "approve"}))
        .await
        .map_err(|e| format!("phone answer: {e}"))?;
    let answer = json_of(&resp, StatusCode::OK, "phone answer")?;
    if answer["result"] != "approved" {
        return Err(format!("phone answer: {answer}"));
    }
    let approved_at = steps.done("phone answer", t);
    Ok((steps, approved_at))
}

/// One device-initiated login, authorize to userinfo, with the phone answering alongside.
/// Returns its steps and the access token.
async fn device_login(
    bed: &TestBed,
    sub: &Subscriber,
    n: usize,
    conns: &mut Conns,
) -> Result<(Steps, String), String> {
    let Conns {
        sp: sp_conn,
        phone: phone_conn,
    } = conns;
    // Registered before the first request, so the challenge's event cannot be missed.
    let phone = phone_approves(sub, phone_watch(bed, &sub.id), phone_conn);
    let sp = async {
        let mut steps = Steps::default();
        let t = Instant::now();
        let state = format!("bench-{n}");
        let hint = format!("MSISDN:{}", sub.msisdn);
        let query = bench_http::form(&[
            ("client_id", CLIENT_ID),
            ("redirect_uri", bed.redirect_uri.as_str()),
            ("response_type", "code"),
            ("scope", "openid mc_authn"),
            ("acr_values", "2"),
            ("version", "mc_di_r2_v2.3"),
            ("state", state.as_str()),
            ("nonce", state.as_str()),
            ("login_hint", hint.as_str()),
        ]);
        let resp = sp_conn
            .get(&format!("/authorize?{query}"), None)
            .await
            .map_err(|e| format!("authorize: {e}"))?;
        // A headless client is held at /authorize itself: its answer carries the code as
        // soon as the phone has approved, or the waiting URL (held the same way) when the
        // hold ends first.
        let mut to = location(&resp, "authorize")?;
        let t = steps.done("authorize", t);
        while to.starts_with('/') {
            let resp = sp_conn
                .get(&to, None)
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
        let resp = sp_conn
            .post_form(
                "/token",
                Some(&bed.basic),
                &[
                    ("grant_type", "authorization_code"),
                    ("code", code.as_str()),
                    ("redirect_uri", bed.redirect_uri.as_str()),
                ],
            )
            .await
            .map_err(|e| format!("token: {e}"))?;
        let tokens = json_of(&resp, StatusCode::OK, "token")?;
        let access_token = tokens["access_token"]
            .as_str()
            .ok_or("token: no access_token")?;
        if !tokens["id_token"].is_string() {
            return Err("token: no id_token".into());
        }
        let t = steps.done("token", t);
        let resp = sp_conn
            .get("/userinfo", Some(&bench_http::bearer(access_token)?))
            .await
            .map_err(|e| format!("userinfo: {e}"))?;
        json_of(&resp, StatusCode::OK, "userinfo")?;
        steps.done("userinfo", t);
        Ok((steps, code_at, access_token.to_owned()))
    };
    let ((phone_steps, approved_at), (mut steps, code_at, access_token)) =
        tokio::try_join!(phone, sp)?;
    steps.0.extend(phone_steps.0);
    steps.0.push((
        CODE_AFTER_APPROVAL,
        code_at.saturating_duration_since(approved_at),
    ));
    Ok((steps, access_token))
}

/// One CIBA poll login at `op`: bc-authorize (with our phone answering alongside; the peer
/// approves by itself), then the poll.
async fn ciba_login(
    bed: &TestBed,
    op: &Endpoint,
    sub: &Subscriber,
    tally: &mut WorkerTally,
    conns: &mut Conns,
) -> Result<Steps, String> {
    let Conns {
        sp: sp_conn,
        phone: phone_conn,
    } = conns;
    let hint = format!("MSISDN:{}", sub.msisdn);
    let mut form = vec![("login_hint", hint.as_str()), ("binding_message", "BENCH")];
    if op.mobile_connect {
        form.extend([("scope", "openid mc_authn"), ("acr_values", "2")]);
    } else {
        form.push(("scope", "openid"));
    }
    let notified = op.mobile_connect.then(|| phone_watch(bed, &sub.id));
    let start = async {
        let mut steps = Steps::default();
        let t = Instant::now();
        let resp = sp_conn
            .post_form(&op.bc_authorize, Some(&op.basic), &form)
            .await
            .map_err(|e| format!("bc-authorize: {e}"))?;
        let started = json_of(&resp, StatusCode::OK, "bc-authorize")?;
        steps.done("bc-authorize", t);
        Ok((steps, started))
    };
    let (mut steps, started) = match notified {
        Some(rx) => {
            let ((phone_steps, _), (mut steps, started)) =
                tokio::try_join!(phone_approves(sub, rx, phone_conn), start)?;
            steps.0.extend(phone_steps.0);
            (steps, started)
        }
        None => start.await?,
    };
    let auth_req_id = started["auth_req_id"]
        .as_str()
        .ok_or("bc-authorize: no auth_req_id")?;
    let mut interval = started["interval"].as_u64().unwrap_or(5);
    // The first poll of a request is never slowed down; the phone has approved already.
    let t = Instant::now();
    loop {
        let resp = sp_conn
            .post_form(
                &op.token,
                Some(&op.basic),
                &[("grant_type", CIBA_GRANT), ("auth_req_id", auth_req_id)],
            )
            .await
            .map_err(|e| format!("token: {e}"))?;
        let status = resp.status;
        let body: Value = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
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

/// One `client_credentials` token request at `op`.
async fn client_credentials(op: &Endpoint, conn: &mut LeanConn) -> Result<Steps, String> {
    let resp = conn
        .post_form(
            &op.token,
            Some(&op.basic),
            &[("grant_type", "client_credentials")],
        )
        .await
        .map_err(|e| format!("token: {e}"))?;
    let tokens = json_of(&resp, StatusCode::OK, "token (client_credentials)")?;
    if !tokens["access_token"].is_string() {
        return Err(format!(
            "token (client_credentials): no access_token: {tokens}"
        ));
    }
    Ok(Steps::default())
}

/// One `GET /userinfo` with a token obtained beforehand.
async fn userinfo(access_token: &str, conn: &mut LeanConn) -> Result<Steps, String> {
    let resp = conn
        .get("/userinfo", Some(&bench_http::bearer(access_token)?))
        .await
        .map_err(|e| format!("userinfo: {e}"))?;
    let claims = json_of(&resp, StatusCode::OK, "userinfo")?;
    if !claims["sub"].is_string() {
        return Err(format!("userinfo: no sub: {claims}"));
    }
    Ok(Steps::default())
}

/// One `GET /healthz`: no store, no crypto, the HTTP stack of both sides only. A login is
/// six such round trips plus its work, so this bounds what any login rate can reach here.
async fn http_floor(conn: &mut LeanConn) -> Result<Steps, String> {
    let resp = conn
        .get("/healthz", None)
        .await
        .map_err(|e| format!("healthz: {e}"))?;
    if resp.status != StatusCode::OK {
        return Err(format!("healthz: {}", resp.status));
    }
    Ok(Steps::default())
}

/// One access token per worker, each from a login of one of the worker's own subscribers.
async fn userinfo_tokens(bed: &Arc<TestBed>, workers: usize) -> Result<Vec<String>, String> {
    let mut logins = tokio::task::JoinSet::new();
    for w in 0..workers {
        let bed = bed.clone();
        logins.spawn(async move {
            let sub = &bed.subscribers[w];
            let mut conns = Conns::new(&bed, &bed.origin);
            device_login(&bed, sub, w, &mut conns)
                .await
                .map(|(_, t)| (w, t))
        });
    }
    let mut tokens = vec![String::new(); workers];
    while let Some(joined) = logins.join_next().await {
        let (w, token) = joined.map_err(|e| format!("userinfo tokens: {e}"))??;
        tokens[w] = token;
    }
    Ok(tokens)
}

/// What the `pending` scenario measured.
struct PendingOutcome {
    started: u64,
    errors: u64,
    first_error: Option<String>,
    elapsed: Duration,
    latencies_us: Vec<u64>,
    /// The gateway's own count (`BackchannelStore::pending_backchannel_count`).
    pending_in_store: Option<u64>,
    rss_before_kib: Option<u64>,
    rss_after_kib: Option<u64>,
    peak_rss_kib: Option<u64>,
    peak_rss_reset: bool,
    /// One CIBA login end to end with every other request still pending.
    login_while_pending: Result<Duration, String>,
}

/// Starts one CIBA request for each of the first `n` subscribers and leaves them pending;
/// then one full CIBA login with subscriber `n`.
async fn drive_pending(bed: Arc<TestBed>, n: usize, concurrency: usize) -> PendingOutcome {
    let n = n.min(bed.subscribers.len() - 1);
    let rss_before_kib = status_kib("/proc/self", "VmRSS:");
    let peak_rss_reset = Rss::This.reset();
    let start = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..concurrency {
        let bed = bed.clone();
        workers.spawn(async move {
            let mut tally = WorkerTally::default();
            let mut conn = LeanConn::new(bed.origin.clone());
            for sub in bed.subscribers[..n].iter().skip(w).step_by(concurrency) {
                let t0 = Instant::now();
                let result = start_pending(&bed, sub, &mut conn).await;
                tally.record(t0, result);
            }
            tally
        });
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
    let pending_in_store = bed.state.store.pending_backchannel_count(now()).await.ok();
    let rss_after_kib = status_kib("/proc/self", "VmRSS:");
    let peak_rss_kib = Rss::This.peak_kib();
    let ours = Endpoint::ours(&bed);
    let last = &bed.subscribers[n];
    let t = Instant::now();
    let mut conns = Conns::new(&bed, &bed.origin);
    let login_while_pending =
        ciba_login(&bed, &ours, last, &mut WorkerTally::default(), &mut conns)
            .await
            .map(|_| t.elapsed());
    PendingOutcome {
        started: all.latencies_us.len() as u64,
        errors: all.errors,
        first_error: all.first_error,
        elapsed,
        latencies_us: all.latencies_us,
        pending_in_store,
        rss_before_kib,
        rss_after_kib,
        peak_rss_kib,
        peak_rss_reset,
        login_while_pending,
    }
}

/// One CIBA request that nobody answers.
async fn start_pending(
    bed: &TestBed,
    sub: &Subscriber,
    conn: &mut LeanConn,
) -> Result<Steps, String> {
    let hint = format!("MSISDN:{}", sub.msisdn);
    let expiry = PENDING_EXPIRY_SECS.to_string();
    let resp = conn
        .post_form(
            "/bc-authorize",
            Some(&bed.basic),
            &[
                ("scope", "openid mc_authn"),
                ("login_hint", hint.as_str()),
                ("acr_values", "2"),
                ("binding_message", "BENCH"),
                ("requested_expiry", expiry.as_str()),
            ],
        )
        .await
        .map_err(|e| format!("bc-authorize: {e}"))?;
    json_of(&resp, StatusCode::OK, "bc-authorize")?;
    Ok(Steps::default())
}

/// The resident set of an idle `mobileconnect sandbox`.
struct Idle {
    rss_kib: Option<u64>,
    peak_rss_kib: Option<u64>,
    started_in: Duration,
}

/// Starts this executable as `sandbox` on a free loopback port with a temporary data
/// folder, waits for `/healthz`, lets it sit for [`IDLE_SETTLE`] and reads its resident set.
async fn measure_idle() -> Result<Idle, String> {
    let exe = std::env::current_exe().map_err(|e| format!("idle: this executable: {e}"))?;
    let dir = DataDir::new(None)?;
    // A free port: bound and released (another process could take it in between; then the
    // sandbox fails to start and the health check says so).
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("idle: a free port: {e}"))?;
    let started = Instant::now();
    let mut child = std::process::Command::new(exe)
        .arg("sandbox")
        .arg("--listen")
        .arg(addr.to_string())
        .arg("--data")
        .arg(&dir.path)
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("idle: starting the sandbox: {e}"))?;
    let proc_dir = format!("/proc/{}", child.id());
    let http = reqwest::Client::new();
    let health = format!("http://{addr}/healthz");
    let deadline = Instant::now() + STEP_TIMEOUT;
    let ready = loop {
        if let Ok(r) = http.get(&health).send().await
            && r.status().is_success()
        {
            break true;
        }
        if Instant::now() > deadline || matches!(child.try_wait(), Ok(Some(_))) {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let started_in = started.elapsed();
    if ready {
        tokio::time::sleep(IDLE_SETTLE).await;
    }
    let idle = Idle {
        rss_kib: status_kib(&proc_dir, "VmRSS:"),
        peak_rss_kib: status_kib(&proc_dir, "VmHWM:"),
        started_in,
    };
    let _ = child.kill();
    let _ = child.wait();
    if !ready {
        return Err(format!("idle: the sandbox did not answer {health}"));
    }
    Ok(idle)
}

/// The `Location` of a 302/303.
fn location(resp: &Reply, step: &str) -> Result<String, String> {
    if !resp.status.is_redirection() {
        return Err(format!("{step}: expected a redirect, got {}", resp.status));
    }
    resp.headers
        .get(hyper::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .ok_or_else(|| format!("{step}: redirect without Location"))
}

fn json_of(resp: &Reply, want: StatusCode, step: &str) -> Result<Value, String> {
    if resp.status != want {
        return Err(format!("{step}: {} {}", resp.status, resp.text()));
    }
    serde_json::from_slice(&resp.body).map_err(|_| format!("{step}: not JSON: {}", resp.text()))
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
            "{:<18} {:<13} {:>5} {:>8} {:>6} {:>9} {:>8} {:>8} {:>9} {:>9} {:>8}",
            "scenario",
            "target",
            "conc",
            "count",
            "errors",
            "per s",
            "p50 ms",
            "p99 ms",
            "peak RSS",
            "of floor",
            "vs peer"
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

    fn idle(&self, i: &Idle) {
        self.line(&format!(
            "idle      `mobileconnect sandbox` after {:.1} s idle: RSS {}, peak {} (answered /healthz {} ms after start)",
            IDLE_SETTLE.as_secs_f64(),
            mib(i.rss_kib),
            mib(i.peak_rss_kib),
            i.started_in.as_millis()
        ));
        if self.json {
            println!(
                "{}",
                json!({
                    "scenario": "idle",
                    "build": self.build,
                    "cores": self.cores,
                    "cpu": self.cpu,
                    "process": "mobileconnect sandbox",
                    "settle_secs": IDLE_SETTLE.as_secs_f64(),
                    "rss_kib": i.rss_kib,
                    "peak_rss_kib": i.peak_rss_kib,
                    "ready_ms": i.started_in.as_millis() as u64,
                })
            );
        }
    }

    fn pending(&self, p: &PendingOutcome, args: &BenchArgs) {
        let per_sec = p.started as f64 / p.elapsed.as_secs_f64();
        self.line(&format!(
            "pending   {} CIBA requests started in {:.1} s ({per_sec:.0}/s, p50 {:.1} ms, p99 {:.1} ms, {} errors); pending in the store: {}",
            p.started,
            p.elapsed.as_secs_f64(),
            percentile_ms(&p.latencies_us, 50.0),
            percentile_ms(&p.latencies_us, 99.0),
            p.errors,
            p.pending_in_store
                .map_or_else(|| "?".to_owned(), |n| n.to_string()),
        ));
        self.line(&format!(
            "          RSS {} before, {} after, peak {}; one more CIBA login meanwhile: {}",
            mib(p.rss_before_kib),
            mib(p.rss_after_kib),
            mib(p.peak_rss_kib),
            match &p.login_while_pending {
                Ok(d) => format!("{:.1} ms", d.as_secs_f64() * 1000.0),
                Err(e) => format!("failed: {e}"),
            }
        ));
        if let Some(e) = &p.first_error {
            self.line(&format!("          first error: {e}"));
        }
        if self.json {
            println!(
                "{}",
                json!({
                    "scenario": "pending",
                    "build": self.build,
                    "cores": self.cores,
                    "cpu": self.cpu,
                    "store": "sqlite",
                    "concurrency": args.concurrency,
                    "requested": args.pending,
                    "started": p.started,
                    "errors": p.errors,
                    "first_error": p.first_error,
                    "elapsed_secs": round3(p.elapsed.as_secs_f64()),
                    "started_per_sec": round1(per_sec),
                    "p50_ms": round3(percentile_ms(&p.latencies_us, 50.0)),
                    "p99_ms": round3(percentile_ms(&p.latencies_us, 99.0)),
                    "pending_in_store": p.pending_in_store,
                    "rss_before_kib": p.rss_before_kib,
                    "rss_after_kib": p.rss_after_kib,
                    "peak_rss_kib": p.peak_rss_kib,
                    "peak_rss_reset": p.peak_rss_reset,
                    "ciba_login_while_pending_ms": p.login_while_pending.as_ref().ok()
                        .map(|d| round3(d.as_secs_f64() * 1000.0)),
                })
            );
        }
    }

    /// One run's row; `peer` is the reference OP's run of the same scenario, when measured.
    /// A signing scenario is a fraction of the floor measured around it when it was
    /// (`around`), else of the floor at the start.
    fn outcome(
        &self,
        o: &Outcome,
        peer: Option<&Outcome>,
        args: &BenchArgs,
        f: &Floor,
        around: Option<FloorAround>,
    ) {
        let floor_all_cores = around.map_or(f.rsa_all_cores, FloorAround::mean);
        let fraction = o.signs().then(|| o.per_sec() / floor_all_cores);
        let ratio = peer
            .filter(|p| p.per_sec() > 0.0)
            .map(|p| o.per_sec() / p.per_sec());
        self.line(&format!(
            "{:<18} {:<13} {:>5} {:>8} {:>6} {:>9.1} {:>8.1} {:>8.1} {:>9} {:>9} {:>8}",
            scenario_name(o.scenario),
            o.target,
            args.concurrency,
            o.ops,
            o.errors,
            o.per_sec(),
            o.percentile_ms(50.0),
            o.percentile_ms(99.0),
            mib(o.peak_rss_kib),
            fraction.map_or_else(|| "-".into(), |x| format!("{:.1}%", x * 100.0)),
            ratio.map_or_else(|| "-".into(), |x| format!("{x:.2}x")),
        ));
        if let Some(e) = &o.first_error {
            self.line(&format!("          first error: {e}"));
        }
        if let Some(a) = around.filter(|_| o.signs()) {
            self.line(&format!(
                "          of the floor measured around this run: {:.0} sign/s before, {:.0} after (at the start: {:.0})",
                a.before, a.after, f.rsa_all_cores
            ));
        }
        if let Some(cpu) = o.cpu_ms_per_op(o.cpu_secs) {
            let loadgen = o
                .cpu_ms_per_op(o.loadgen_cpu_secs)
                .map(|l| format!(" (the load generator alone: {l:.2} ms)"))
                .unwrap_or_default();
            let whose = if o.target == "mobileconnect" {
                "gateway and load generator"
            } else {
                "the peer's process"
            };
            self.line(&format!(
                "          CPU per iteration: {cpu:.2} ms ({whose}){loadgen}"
            ));
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
        if o.reconnects > 0 {
            self.line(&format!(
                "          connections opened again (closed by the server, or a request failed): {}",
                o.reconnects
            ));
        }
        if o.pending_polls + o.slow_downs > 0 {
            self.line(&format!(
                "          polls answered authorization_pending: {}, slow_down: {}",
                o.pending_polls, o.slow_downs
            ));
        }
        if self.json {
            let mut obj = json!({
                "scenario": scenario_name(o.scenario),
                "target": o.target,
                "build": self.build,
                "cores": self.cores,
                "cpu": self.cpu,
                "concurrency": args.concurrency,
                "duration_secs": args.duration.as_secs_f64(),
                "ops": o.ops,
                "errors": o.errors,
                "first_error": o.first_error,
                "elapsed_secs": round3(o.elapsed.as_secs_f64()),
                "ops_per_sec": round1(o.per_sec()),
                "p50_ms": round3(o.percentile_ms(50.0)),
                "p99_ms": round3(o.percentile_ms(99.0)),
                "max_ms": round3(o.max_ms()),
                "peak_rss_kib": o.peak_rss_kib,
                "peak_rss_reset": o.peak_rss_reset,
                "rsa2048_sign_per_sec_all_cores": round1(floor_all_cores),
                "rsa2048_sign_per_sec_all_cores_before": around.map(|a| round1(a.before)),
                "rsa2048_sign_per_sec_all_cores_after": around.map(|a| round1(a.after)),
                "rsa2048_sign_per_sec_one_core": round1(f.rsa_one_core),
                "floor_fraction": fraction.map(round4),
                "cpu_ms_per_op": o.cpu_ms_per_op(o.cpu_secs).map(round3),
                "loadgen_cpu_ms_per_op": o.cpu_ms_per_op(o.loadgen_cpu_secs).map(round3),
                "reconnects": o.reconnects,
            });
            if let Some(p) = peer {
                obj["peer_ops_per_sec"] = json!(round1(p.per_sec()));
                obj["peer_ratio"] = json!(ratio.map(round4));
            }
            if o.target == "mobileconnect" {
                obj["store"] = json!(if args.database.is_some() {
                    "postgres"
                } else {
                    "sqlite"
                });
                obj["subscribers"] = json!(args.subscribers);
            }
            if o.signs() {
                obj["logins"] = json!(o.ops);
                obj["logins_per_sec"] = json!(round1(o.per_sec()));
                obj["steps_p50_ms"] = steps_json(&o.steps, 50.0);
                obj["steps_p99_ms"] = steps_json(&o.steps, 99.0);
                obj["pending_polls"] = json!(o.pending_polls);
                obj["slow_downs"] = json!(o.slow_downs);
                if o.target == "mobileconnect" {
                    obj["phone"] = json!("http device API, notified in process");
                }
            }
            if o.scenario == Scenario::Login {
                obj["late_holds"] = json!(o.late_holds());
            }
            println!("{obj}");
        }
    }
}

/// KiB as MiB for the table.
fn mib(kib: Option<u64>) -> String {
    kib.map_or_else(|| "?".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
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
            target: "mobileconnect",
            ops: 100,
            errors: 0,
            first_error: None,
            elapsed: Duration::from_secs(1),
            latencies_us: (1..=100).map(|i| i * 1000).collect(),
            steps: vec![(CODE_AFTER_APPROVAL, vec![1_000, 199_999, 200_000, 250_000])],
            pending_polls: 0,
            slow_downs: 0,
            peak_rss_kib: None,
            peak_rss_reset: false,
            cpu_secs: Some(0.5),
            loadgen_cpu_secs: None,
            reconnects: 0,
        };
        assert_eq!(o.cpu_ms_per_op(o.cpu_secs), Some(5.0));
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
