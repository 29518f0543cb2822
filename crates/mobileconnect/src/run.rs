//! Starting the gateway: store, keys, state, routes, listener, graceful shutdown.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mc_gateway::keys::{Kek, KeyRing};
use mc_gateway::state::{AppState, now, random_token, sha256_hex};
use mc_store::DynStore;
use mc_store_postgres::{PgStore, PgStoreOptions};
use mc_store_sqlite::SqliteStore;

use crate::settings::{
    self, Database, DatabaseSettings, KeySettings, LogSettings, SandboxSettings, Settings,
};

fn init_logging(log: &LogSettings) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&log.filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    // A second initialisation (tests) is harmless.
    let _ = if log.format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Opens the configured store.
pub async fn open_store(settings: &Settings) -> Result<DynStore, String> {
    match settings.database()? {
        Database::Sqlite(path) => {
            let store = SqliteStore::open(&path)
                .await
                .map_err(|e| format!("database {}: {e}", path.display()))?;
            Ok(Arc::new(store))
        }
        // The URL may hold a password: not repeated in the error.
        Database::Postgres(url) => {
            let mut options = PgStoreOptions::default();
            if let Some(n) = settings.database.max_connections {
                options.max_connections = n;
            }
            let store = PgStore::connect_with(&url, options)
                .await
                .map_err(|e| format!("database (postgres): {e}"))?;
            Ok(Arc::new(store))
        }
    }
}

/// Reads the key-encryption key, creating it (owner-only) on first start.
pub fn load_kek(path: &Path) -> Result<Kek, String> {
    if !path.exists() {
        let b = mc_gateway::keys::new_kek_bytes().map_err(|e| format!("keys.kek_file: {e}"))?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("keys.kek_file: {}: {e}", dir.display()))?;
        }
        let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
        write_private(path, hex.as_bytes())
            .map_err(|e| format!("keys.kek_file: {}: {e}", path.display()))?;
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("keys.kek_file: {}: {e}", path.display()))?;
    kek_from_hex(text.trim())
        .ok_or_else(|| format!("keys.kek_file: {} must hold 64 hex digits", path.display()))
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

/// The key-encryption key of `keys`: `keys.kek` if set, else the file (`kek_path`), which
/// is created only for a database that holds no key yet (a new key-encryption key could not
/// open stored keys: a missing file then is an error, not a fresh start).
pub async fn configured_kek(
    keys: &KeySettings,
    kek_path: &Path,
    store: &DynStore,
) -> Result<Kek, String> {
    if let Some(hex) = &keys.kek {
        return kek_from_hex(hex.0.trim()).ok_or_else(|| "keys.kek: must be 64 hex digits".into());
    }
    if !kek_path.exists() {
        let stored = store.list_keys().await.map_err(|e| format!("keys: {e}"))?;
        if !stored.is_empty() {
            return Err(format!(
                "keys.kek_file: {} not found, but the database holds keys sealed with a key-encryption key: restore the file (or set keys.kek)",
                kek_path.display()
            ));
        }
        tracing::info!(path = %kek_path.display(), "creating a new key-encryption key");
    }
    load_kek(kek_path)
}

fn kek_from_hex(text: &str) -> Option<Kek> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..64)
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect();
    Kek::new(&bytes?).ok()
}

async fn build_state(settings: &Settings, kek_path: &Path) -> Result<AppState, String> {
    let store = open_store(settings).await?;
    let kek = configured_kek(&settings.keys, kek_path, &store).await?;
    let keys = KeyRing::load_or_create(&*store, &kek, now())
        .await
        .map_err(|e| format!("keys: {e}"))?;
    tracing::info!(kid = keys.signing_kid(), "signing key loaded");
    Ok(AppState::new(store, settings.gateway.clone(), keys))
}

/// How long open requests (long polls) may run on after a shutdown signal.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

async fn listen(addr: SocketAddr, app: axum::Router) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("listen {addr}: {e}"))?;
    let (stopping_tx, mut stopping) = tokio::sync::watch::channel(false);
    // With the peer address recorded: header enrichment trusts only configured sources.
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown_signal().await;
        let _ = stopping_tx.send(true);
    });
    // Long polls (phone challenges, the waiting page) would hold a graceful shutdown for up
    // to 25 s; nothing they hold is lost by cutting them (all state is in the store).
    let deadline = async {
        let _ = stopping.changed().await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        r = server => r.map_err(|e| format!("server: {e}")),
        _ = deadline => {
            tracing::info!("open requests cut after the shutdown grace period");
            Ok(())
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}

/// `mobileconnect serve --config FILE`.
pub async fn serve(config: &Path) -> Result<(), String> {
    let settings = settings::load(config)?;
    init_logging(&settings.log);
    let kek_path = settings
        .keys
        .kek_file
        .clone()
        .unwrap_or_else(|| PathBuf::from("./data/kek.hex"));
    let state = build_state(&settings, &kek_path).await?;
    let discovery = match &settings.discovery {
        Some(config) => Some(
            crate::discovery_cli::serve(&state, config.clone(), &settings.keys, &kek_path).await?,
        ),
        None => None,
    };
    mc_gateway::notify::spawn_workers(state.clone());
    tracing::info!(listen = %settings.listen, issuer = %settings.gateway.issuer, "gateway starting");
    let mut routes = mc_gateway::routes(&state);
    if settings.sandbox.virtual_phones {
        tracing::warn!(
            "sandbox.virtual_phones is on: anyone who reaches /phone/... can approve any login \
             (test and staging only)"
        );
        routes = routes.merge(mc_sandbox::phone::router());
    }
    let mut app = routes.with_state(state);
    if let Some(discovery) = discovery {
        app = app.merge(mc_discovery::router(discovery));
    }
    listen(settings.listen, mc_gateway::with_layers(app)).await
}

/// The sandbox gateway's application-provider id at the built-in MSSP.
const SANDBOX_AP_ID: &str = "mid://sandbox.mobileconnect";
/// The sandbox gateway's SMPP `system_id` at the built-in SMSC (at most 15 characters).
const SANDBOX_SMPP_SYSTEM_ID: &str = "mcsandbox";

/// `mobileconnect sandbox`.
pub async fn sandbox(
    listen_addr: SocketAddr,
    data: PathBuf,
    issuer: Option<String>,
) -> Result<(), String> {
    std::fs::create_dir_all(&data).map_err(|e| format!("--data {}: {e}", data.display()))?;
    let info_path = data.join("sandbox.json");
    let previous = mc_sandbox::seed::read_info(&info_path);
    let admin_token = previous
        .as_ref()
        .map(|p| p.admin_token.clone())
        .unwrap_or_else(random_token);
    let host = if listen_addr.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], listen_addr.port()))
    } else {
        listen_addr
    };
    let issuer_flag = issuer.clone();
    let issuer = issuer.unwrap_or_else(|| format!("http://{host}"));
    // The built-in MSSP (its virtual SIM shows on the phone page), reached over loopback by
    // the gateway's real MSSP client: the SIM applet channel runs end to end.
    let mssp_password = random_token();
    let mssp_defaults = mc_authn::mssp::MsspConfig::new("", SANDBOX_AP_ID, "");
    let mssp = mc_sandbox::mssp::MsspSim::new(mc_sandbox::mssp::MsspSimConfig {
        ap_id: SANDBOX_AP_ID.into(),
        ap_password: mssp_password.clone(),
        profile_loa2: mssp_defaults.profile_loa2,
        profile_loa3: mssp_defaults.profile_loa3,
    });
    mssp.add_sim(
        &format!("+{}", mc_sandbox::seed::SIM_SUBSCRIBER),
        mc_sandbox::seed::SIM_PIN,
    );
    // The built-in SMSC (SMPP 3.4 server side) that delivers to the virtual phones' inboxes;
    // the gateway's real SMPP client binds to it over loopback.
    let smsc_password = random_token()[..8].to_owned();
    let smsc = mc_sandbox::smsc::Smsc::start(
        "127.0.0.1:0",
        mc_sandbox::smsc::SmscConfig::new(SANDBOX_SMPP_SYSTEM_ID, &smsc_password),
    )
    .await
    .map_err(|e| format!("sandbox SMSC: {e}"))?;
    let sms_inbox = mc_sandbox::sms_inbox::SmsInbox::attach(&smsc);
    let sms: mc_gateway::routes::sms::SmsConfig = serde_json::from_value(serde_json::json!({
        "smsc_address": smsc.local_addr().to_string(),
        "system_id": SANDBOX_SMPP_SYSTEM_ID,
        "password": smsc_password,
        "link_base": format!("{issuer}/sms/link"),
    }))
    .map_err(|e| format!("sandbox SMS settings: {e}"))?;
    let base = Settings {
        listen: listen_addr,
        database: DatabaseSettings {
            url: format!("sqlite:{}", data.join("mobileconnect.db").display()),
            ..Default::default()
        },
        keys: KeySettings {
            kek_file: Some(data.join("kek.hex")),
            kek: None,
        },
        log: LogSettings::default(),
        gateway: mc_gateway::config::GatewayConfig {
            issuer: issuer.clone(),
            tokens: Default::default(),
            login: Default::default(),
            // The SIM applet first (for the one subscriber with an applet SIM), then the app.
            authenticators: mc_gateway::config::AuthenticatorsConfig {
                // SMS (code and link) is the last resort, after the delay.
                enabled: vec!["sim_applet".into(), "app_push".into(), "sms_otp_url".into()],
                sms: Some(sms),
                sim_applet: Some(mc_gateway::config::SimAppletConfig {
                    mssp_url: format!("http://{host}/mssp/rest/service"),
                    ap_id: SANDBOX_AP_ID.into(),
                    ap_password: mssp_password,
                    mssp_id: None,
                    profile_loa2: None,
                    profile_loa3: None,
                    transaction_timeout_secs: 120,
                    poll_interval_millis: 500,
                    display_text: "truncate".into(),
                    outbox_lease_secs: 30,
                }),
                ..Default::default()
            },
            admin: mc_gateway::config::AdminConfig {
                token_sha256: Some(sha256_hex(&admin_token)),
            },
            // Sandbox SPs poll every second: quick feedback for developers.
            backchannel: mc_gateway::config::BackchannelConfig {
                poll_interval_secs: 1,
                ..Default::default()
            },
            telemetry: Default::default(),
            keys: Default::default(),
            retention: Default::default(),
            datagw: Default::default(),
            // Like operators' demo environments: 100 calls a day per SP unless its
            // registration says otherwise (the demo SP's does; docs/decisions.md).
            throttle: mc_gateway::throttle::ThrottleConfig {
                default_per_day: 100,
                ..Default::default()
            },
        },
        sandbox: SandboxSettings {
            virtual_phones: true,
        },
        // The sandbox mounts its own Discovery (`discovery_cli::sandbox`).
        discovery: None,
    };
    let mut settings = settings::from_defaults(base)?;
    if let Some(flag) = issuer_flag {
        // A flag beats the environment.
        settings.gateway.issuer = flag;
        settings
            .gateway
            .validate()
            .map_err(|e| format!("--issuer: {e}"))?;
    }
    init_logging(&settings.log);
    let kek_path = settings
        .keys
        .kek_file
        .clone()
        .unwrap_or_else(|| data.join("kek.hex"));
    let state = build_state(&settings, &kek_path).await?;
    let mut info = mc_sandbox::seed(
        &state.store,
        settings.gateway.base_url(),
        previous.clone(),
        admin_token,
    )
    .await?;
    // The other virtual operators: each its own gateway over its own SQLite file in the
    // data folder (docs/decisions.md, "Multi-operator sandbox").
    let kek = configured_kek(&settings.keys, &kek_path, &state.store).await?;
    let extra = mc_sandbox::operators::open_extra(
        &data,
        &kek,
        &settings.gateway,
        previous.as_ref(),
        &mut info,
    )
    .await?;
    let discovery = crate::discovery_cli::sandbox(
        &state,
        &settings.keys,
        &kek_path,
        previous.as_ref(),
        &mut info,
    )
    .await?;
    mc_sandbox::discovery::seed_operators(discovery.store(), discovery.secrets(), &extra).await?;
    discovery
        .reload()
        .await
        .map_err(|e| format!("discovery: {e}"))?;
    mc_sandbox::seed::write_info(&info_path, &info)
        .map_err(|e| format!("{}: {e}", info_path.display()))?;
    let origin = mc_sandbox::operators::origin(settings.gateway.base_url());
    let shop = mc_sandbox::shop::ShopConfig::from_info(&info, &origin)
        .map(mc_sandbox::shop::Shop::new)
        .ok_or("the demo shop needs the sandbox's Discovery registration")?;
    mc_gateway::notify::spawn_workers(state.clone());
    for op in &extra {
        mc_gateway::notify::spawn_workers(op.state.clone());
    }
    let phones = mc_sandbox::operators::Phones::new(&extra);
    let app = mc_gateway::with_layers(
        mc_gateway::routes(&state)
            .merge(mc_sandbox::phone::router())
            .with_state(state)
            .merge(mc_sandbox::operators::routes(&extra))
            .merge(mc_discovery::router(discovery))
            .merge(mssp.router())
            .merge(mc_sandbox::sms_inbox::router(sms_inbox))
            .merge(shop.router())
            .layer(axum::middleware::from_fn_with_state(
                phones,
                mc_sandbox::operators::phone_dispatch,
            )),
    );
    println!("{}", info.banner(&info_path));
    listen(settings.listen, app).await
}
