//! `mobileconnect discovery …`: managing the Discovery service's data on the configured
//! store (operators, service providers' discovery registrations and per-operator
//! credentials, number ranges and ported numbers, IP ranges), and mounting Discovery in
//! the sandbox.
//!
//! The commands write to the store; a running service picks the change up within its
//! `refresh_secs` (it polls the store's change counter).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Subcommand;
use mc_discovery::import::{ImportError, ImportMode, import_file};
use mc_discovery::registry::{self, AppSpec, CredentialSpec, OperatorSpec, RegistryError};
use mc_discovery::{DiscoveryConfig, DiscoveryState};
use mc_gateway::state::AppState;
use mc_store::{DiscoveryStore, NumberKind};

use crate::run::open_store;
use crate::settings::{self, KeySettings};

#[derive(Subcommand)]
pub enum DiscoveryCommand {
    /// Import number ranges and ported numbers from a CSV file
    /// (`kind,number,operator` lines; see docs/discovery.md).
    ImportRanges {
        file: PathBuf,
        /// The file replaces every entry of each kind it holds (default: merge).
        #[arg(long)]
        replace: bool,
    },
    /// Which operator serves a number.
    Lookup { msisdn: String },
    /// What the store holds.
    Status,
    /// Operators.
    #[command(subcommand)]
    Operators(OperatorCommand),
    /// Service providers' discovery registrations.
    #[command(subcommand)]
    Apps(AppCommand),
    /// Single number-range prefixes and ported numbers.
    #[command(subcommand)]
    Numbers(NumberCommand),
    /// Mobile-data IP ranges (for `X-Source-IP`).
    #[command(subcommand)]
    IpRanges(IpRangeCommand),
}

/// An operator's description.
#[derive(clap::Args)]
pub struct OperatorArgs {
    #[arg(long)]
    mcc: String,
    #[arg(long)]
    mnc: String,
    #[arg(long)]
    name: String,
    #[arg(long)]
    country: String,
    /// ISO 4217, e.g. GBP.
    #[arg(long)]
    currency: String,
    /// The operator's issuer URL.
    #[arg(long)]
    issuer: String,
    /// Read the endpoints from `<issuer>/.well-known/openid-configuration` and the MSISDN
    /// encryption key (the `use: enc` key) from its JWKS.
    #[arg(long)]
    fetch_metadata: bool,
    /// An endpoint, `rel=href` (authorization, token, userinfo, premiuminfo, jwks,
    /// tokenrevoke, tokenrefresh, openid-configuration, scope); repeat. Beats fetched ones.
    #[arg(long = "link", value_parser = parse_link)]
    links: Vec<(String, String)>,
    /// The MSISDN encryption key: a JWK or JWKS file.
    #[arg(long)]
    jwk: Option<PathBuf>,
    /// Added disabled (lookups ignore it).
    #[arg(long)]
    disabled: bool,
}

fn parse_link(raw: &str) -> Result<(String, String), String> {
    raw.split_once('=')
        .map(|(r, h)| (r.to_owned(), h.to_owned()))
        .ok_or_else(|| "rel=href".to_owned())
}

#[derive(Subcommand)]
pub enum OperatorCommand {
    List,
    Show {
        id: String,
    },
    /// Add an operator.
    Add {
        /// `serving_operator`: a-z, 0-9, '_' and '-'.
        #[arg(long)]
        id: String,
        #[command(flatten)]
        args: OperatorArgs,
    },
    /// Replace an operator's description.
    Update {
        id: String,
        #[command(flatten)]
        args: OperatorArgs,
    },
    /// Remove an operator with its numbers, IP ranges and credentials.
    Remove {
        id: String,
    },
}

#[derive(Subcommand)]
pub enum AppCommand {
    List,
    Show {
        client_id: String,
    },
    /// Register a service provider at Discovery; prints its discovery secret once.
    Add {
        #[arg(long)]
        client_id: Option<String>,
        #[arg(long)]
        name: String,
        #[arg(long)]
        short_name: String,
        #[arg(long = "redirect-uri", required = true)]
        redirect_uris: Vec<String>,
    },
    /// A new discovery secret (the old one stops working).
    RotateSecret {
        client_id: String,
    },
    /// Set what the service provider uses at one operator.
    Credentials {
        client_id: String,
        operator: String,
        #[arg(long = "operator-client-id")]
        operator_client_id: String,
        /// Read from the environment variable MC_OPERATOR_CLIENT_SECRET when absent.
        #[arg(long = "operator-client-secret", env = "MC_OPERATOR_CLIENT_SECRET")]
        operator_client_secret: String,
        #[arg(long)]
        client_name: Option<String>,
    },
    Remove {
        client_id: String,
    },
}

#[derive(Subcommand)]
pub enum NumberCommand {
    /// Set a range prefix or a ported number.
    Set {
        /// `range` or `ported`.
        kind: String,
        number: String,
        operator: String,
    },
    Remove {
        kind: String,
        number: String,
    },
}

#[derive(Subcommand)]
pub enum IpRangeCommand {
    List,
    Add { cidr: String, operator: String },
    Remove { cidr: String },
}

fn print(v: serde_json::Value) -> Result<(), String> {
    println!(
        "{}",
        serde_json::to_string_pretty(&v).map_err(|e| e.to_string())?
    );
    Ok(())
}

fn e(e: RegistryError) -> String {
    e.to_string()
}

fn s(e: mc_store::StoreError) -> String {
    e.to_string()
}

/// The deployment's key-encryption key as the master key of Discovery's secrets:
/// `keys.kek`, else the key file.
pub fn master_key(keys: &KeySettings, kek_path: &Path) -> Result<[u8; 32], String> {
    let text = match &keys.kek {
        Some(k) => k.0.trim().to_owned(),
        None => std::fs::read_to_string(kek_path)
            .map_err(|e| format!("keys.kek_file: {}: {e}", kek_path.display()))?
            .trim()
            .to_owned(),
    };
    let bytes: Option<Vec<u8>> = (text.len() == 64 && text.is_ascii())
        .then(|| {
            (0..64)
                .step_by(2)
                .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
                .collect()
        })
        .flatten();
    bytes
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| "the key-encryption key must be 64 hex digits".to_owned())
}

/// Discovery on the gateway's store, its secrets sealed with the deployment's
/// key-encryption key; not loaded yet ([`started`]).
fn on_gateway_store(
    state: &AppState,
    config: DiscoveryConfig,
    keys: &KeySettings,
    kek_path: &Path,
) -> Result<DiscoveryState, String> {
    let master = master_key(keys, kek_path)?;
    let store: Arc<dyn DiscoveryStore> = state.store.clone();
    DiscoveryState::new(store, config, &master)
}

/// Loads the snapshot, then keeps it refreshed whenever the store's discovery data change
/// (the CLI, another node).
async fn started(discovery: DiscoveryState) -> Result<DiscoveryState, String> {
    discovery
        .reload()
        .await
        .map_err(|e| format!("discovery: {e}"))?;
    discovery.spawn_refresher();
    Ok(discovery)
}

/// Discovery as `serve` runs it (`[discovery]` of the configuration).
pub async fn serve(
    state: &AppState,
    config: DiscoveryConfig,
    keys: &KeySettings,
    kek_path: &Path,
) -> Result<DiscoveryState, String> {
    let discovery = started(on_gateway_store(state, config, keys, kek_path)?).await?;
    tracing::info!(
        base_url = discovery.config().base(),
        admin_api = discovery.config().admin_token_sha256.is_some(),
        "discovery served"
    );
    Ok(discovery)
}

/// Discovery in the sandbox, at `<issuer>/discovery`: the sandbox operator, the test range,
/// the demo service provider's discovery registration (`info` gets its credentials).
pub async fn sandbox(
    state: &AppState,
    keys: &KeySettings,
    kek_path: &Path,
    previous: Option<&mc_sandbox::SandboxInfo>,
    info: &mut mc_sandbox::SandboxInfo,
) -> Result<DiscoveryState, String> {
    let mut config = DiscoveryConfig::new(format!("{}/discovery", state.config.base_url()));
    config.admin_token_sha256 = state.config.admin.token_sha256.clone();
    let discovery = on_gateway_store(state, config, keys, kek_path)?;
    mc_sandbox::discovery::seed(
        &*state.store,
        discovery.secrets(),
        state,
        discovery.config().base(),
        previous,
        info,
    )
    .await?;
    started(discovery).await
}

async fn fetch_json(url: &str) -> Result<serde_json::Value, String> {
    let resp = reqwest::get(url).await.map_err(|e| format!("{url}: {e}"))?;
    if !resp.status().is_success() {
        return Err(format!("{url}: HTTP {}", resp.status()));
    }
    resp.json().await.map_err(|e| format!("{url}: {e}"))
}

async fn operator_spec(id: String, a: OperatorArgs) -> Result<OperatorSpec, String> {
    let mut links = BTreeMap::new();
    let issuer = a.issuer.trim_end_matches('/').to_owned();
    links.insert("issuer".to_owned(), issuer.clone());
    let mut jwk = None;
    if a.fetch_metadata {
        let url = format!("{issuer}/.well-known/openid-configuration");
        let doc = fetch_json(&url).await?;
        links.insert("openid-configuration".into(), url);
        for (rel, key) in [
            ("authorization", "authorization_endpoint"),
            ("token", "token_endpoint"),
            ("userinfo", "userinfo_endpoint"),
            ("premiuminfo", "premiuminfo_endpoint"),
            ("jwks", "jwks_uri"),
            ("tokenrevoke", "revocation_endpoint"),
        ] {
            if let Some(href) = doc.get(key).and_then(|v| v.as_str()) {
                links.insert(rel.into(), href.into());
            }
        }
        if let Some(jwks) = links.get("jwks").cloned() {
            jwk = Some(fetch_json(&jwks).await?);
        }
    }
    for (rel, href) in a.links {
        links.insert(rel, href);
    }
    if let Some(path) = a.jwk {
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("--jwk {}: {e}", path.display()))?;
        jwk = Some(serde_json::from_str(&text).map_err(|e| format!("--jwk: {e}"))?);
    }
    Ok(OperatorSpec {
        id,
        mcc: a.mcc,
        mnc: a.mnc,
        name: a.name,
        country: a.country,
        currency: a.currency,
        links,
        encryption_jwk: jwk,
        enabled: !a.disabled,
    })
}

fn kind(raw: &str) -> Result<NumberKind, String> {
    NumberKind::parse(raw).ok_or_else(|| "kind: range or ported".to_owned())
}

pub async fn run(
    config: Option<PathBuf>,
    data: Option<PathBuf>,
    command: DiscoveryCommand,
) -> Result<(), String> {
    let (store, keys, kek_path) = match (config, data) {
        (Some(c), _) => {
            let settings = settings::load(&c)?;
            let kek = settings
                .keys
                .kek_file
                .clone()
                .unwrap_or_else(|| PathBuf::from("./data/kek.hex"));
            (open_store(&settings).await?, settings.keys, kek)
        }
        (None, data) => {
            let data = data.unwrap_or_else(|| PathBuf::from("./data"));
            let path = data.join("mobileconnect.db");
            let store: mc_store::DynStore = Arc::new(
                mc_store_sqlite::SqliteStore::open(&path)
                    .await
                    .map_err(|e| format!("database {}: {e}", path.display()))?,
            );
            (store, KeySettings::default(), data.join("kek.hex"))
        }
    };
    let store: &dyn DiscoveryStore = &*store;
    match command {
        DiscoveryCommand::ImportRanges { file, replace } => {
            let mode = if replace {
                ImportMode::Replace
            } else {
                ImportMode::Merge
            };
            let started = std::time::Instant::now();
            let id = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0);
            match import_file(store, &file, mode, id).await {
                Ok(report) => {
                    let mut v = serde_json::json!(report);
                    v["seconds"] = serde_json::json!(started.elapsed().as_secs_f64());
                    print(v)
                }
                Err(ImportError::Invalid(lines)) => Err(format!(
                    "{}: {}",
                    file.display(),
                    ImportError::Invalid(lines)
                )),
                Err(other) => Err(format!("{}: {other}", file.display())),
            }
        }
        DiscoveryCommand::Lookup { msisdn } => {
            let m = mc_core::msisdn::Msisdn::parse(&msisdn)
                .ok_or("an international MSISDN, e.g. +447700900301")?;
            let ix = mc_discovery::state::load_numbers(store).await.map_err(s)?;
            let n: u64 = m.as_str().parse().map_err(|_| "number")?;
            match ix.lookup(n) {
                Some(hit) => print(serde_json::json!({
                    "operator": ix.operator_ids()[usize::from(hit.operator)],
                    "match": hit.kind.as_str(),
                    "prefix_digits": hit.prefix_len,
                })),
                None => Err("no operator serves this number".into()),
            }
        }
        DiscoveryCommand::Status => {
            let g = store.discovery_generation().await.map_err(s)?;
            print(serde_json::json!({
                "generation": g.all,
                "operators": store.list_operators().await.map_err(s)?.len(),
                "apps": store.list_discovery_apps().await.map_err(s)?.len(),
                "ranges": store.count_numbers(NumberKind::Range).await.map_err(s)?,
                "ported": store.count_numbers(NumberKind::Ported).await.map_err(s)?,
                "ip_ranges": store.list_ip_ranges().await.map_err(s)?.len(),
            }))
        }
        DiscoveryCommand::Operators(c) => match c {
            OperatorCommand::List => {
                let all = store.list_operators().await.map_err(s)?;
                print(serde_json::json!(
                    all.iter().map(registry::operator_view).collect::<Vec<_>>()
                ))
            }
            OperatorCommand::Show { id } => {
                let o = store
                    .get_operator(&id)
                    .await
                    .map_err(s)?
                    .ok_or("operator not found")?;
                print(registry::operator_view(&o))
            }
            OperatorCommand::Add { id, args } => {
                let spec = operator_spec(id, args).await?;
                let r = registry::create_operator(store, &spec).await.map_err(e)?;
                print(registry::operator_view(&r))
            }
            OperatorCommand::Update { id, args } => {
                let spec = operator_spec(id.clone(), args).await?;
                let r = registry::update_operator(store, &id, &spec)
                    .await
                    .map_err(e)?;
                print(registry::operator_view(&r))
            }
            OperatorCommand::Remove { id } => {
                store.delete_operator(&id).await.map_err(s)?;
                print(serde_json::json!({"removed": id}))
            }
        },
        DiscoveryCommand::Apps(c) => match c {
            AppCommand::List => {
                let all = store.list_discovery_apps().await.map_err(s)?;
                print(serde_json::json!(
                    all.iter().map(registry::app_view).collect::<Vec<_>>()
                ))
            }
            AppCommand::Show { client_id } => {
                let a = store
                    .get_discovery_app(&client_id)
                    .await
                    .map_err(s)?
                    .ok_or("application not found")?;
                let creds = store
                    .list_operator_credentials(&client_id)
                    .await
                    .map_err(s)?;
                let mut v = registry::app_view(&a);
                v["credentials"] = serde_json::json!(
                    creds
                        .iter()
                        .map(registry::credential_view)
                        .collect::<Vec<_>>()
                );
                print(v)
            }
            AppCommand::Add {
                client_id,
                name,
                short_name,
                redirect_uris,
            } => {
                let spec = AppSpec {
                    client_id,
                    name,
                    short_name,
                    redirect_uris,
                    enabled: true,
                };
                let (r, secret) = registry::create_app(store, &spec, None).await.map_err(e)?;
                let mut v = registry::app_view(&r);
                v["client_secret"] = serde_json::json!(secret);
                print(v)
            }
            AppCommand::RotateSecret { client_id } => {
                let secret = registry::rotate_app_secret(store, &client_id)
                    .await
                    .map_err(e)?;
                print(serde_json::json!({"client_id": client_id, "client_secret": secret}))
            }
            AppCommand::Credentials {
                client_id,
                operator,
                operator_client_id,
                operator_client_secret,
                client_name,
            } => {
                let master = master_key(&keys, &kek_path)?;
                let secrets = mc_discovery::crypto::Secrets::from_master(&master)
                    .map_err(|e| e.to_string())?;
                let spec = CredentialSpec {
                    client_id: operator_client_id,
                    client_secret: operator_client_secret,
                    client_name,
                };
                registry::put_credential(store, &secrets, &client_id, &operator, &spec)
                    .await
                    .map_err(e)?;
                print(serde_json::json!({"client_id": client_id, "operator": operator}))
            }
            AppCommand::Remove { client_id } => {
                store.delete_discovery_app(&client_id).await.map_err(s)?;
                print(serde_json::json!({"removed": client_id}))
            }
        },
        DiscoveryCommand::Numbers(c) => match c {
            NumberCommand::Set {
                kind: k,
                number,
                operator,
            } => {
                let k = kind(&k)?;
                let n = registry::put_number(store, k, &number, &operator)
                    .await
                    .map_err(e)?;
                print(
                    serde_json::json!({"kind": k.as_str(), "number": n.to_string(), "operator": operator}),
                )
            }
            NumberCommand::Remove { kind: k, number } => {
                let k = kind(&k)?;
                let n = registry::parse_number(k, &number).map_err(e)?;
                if !store.delete_number(k, n).await.map_err(s)? {
                    return Err("no such entry".into());
                }
                print(serde_json::json!({"removed": n.to_string()}))
            }
        },
        DiscoveryCommand::IpRanges(c) => match c {
            IpRangeCommand::List => {
                let all = store.list_ip_ranges().await.map_err(s)?;
                print(serde_json::json!(
                    all.iter()
                        .map(|r| serde_json::json!({"cidr": r.cidr, "operator": r.operator_id}))
                        .collect::<Vec<_>>()
                ))
            }
            IpRangeCommand::Add { cidr, operator } => {
                let c = registry::put_ip_range(store, &cidr, &operator)
                    .await
                    .map_err(e)?;
                print(serde_json::json!({"cidr": c, "operator": operator}))
            }
            IpRangeCommand::Remove { cidr } => {
                let canonical = mc_discovery::ip::Cidr::parse(&cidr)
                    .ok_or("a CIDR block such as 10.64.0.0/10")?
                    .to_string();
                if !store.delete_ip_range(&canonical).await.map_err(s)? {
                    return Err("no such range".into());
                }
                print(serde_json::json!({"removed": canonical}))
            }
        },
    }
}
