//! `mobileconnect admin …`: the registry and provisioning rules of `mc_gateway::registry`,
//! run directly against the configured store.

use std::path::PathBuf;

use clap::Subcommand;
use mc_gateway::registry::{self, ClientSpec, ClientView, SubscriberSpec, SubscriberView};
use mc_store::{ClientStatus, SubscriberStatus};

use crate::run::open_store;
use crate::settings::{self, DatabaseSettings, Settings};

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Service providers.
    #[command(subcommand)]
    Clients(ClientCommand),
    /// Subscribers.
    #[command(subcommand)]
    Subscribers(SubscriberCommand),
    /// The operator's signing and encryption keys.
    #[command(subcommand)]
    Keys(crate::admin_keys::KeyCommand),
}

/// What a service provider registers (shared by `create` and `update`).
#[derive(clap::Args)]
pub struct Registration {
    #[arg(long)]
    name: String,
    #[arg(long)]
    short_name: String,
    #[arg(long = "redirect-uri", required = true)]
    redirect_uris: Vec<String>,
    /// Allowed scopes (repeat); default `openid mc_authn mc_authz`.
    #[arg(long = "scope")]
    scopes: Vec<String>,
    #[arg(long)]
    sector_identifier_uri: Option<String>,
    /// Back-channel and key metadata as JSON, e.g.
    /// `{"backchannel_token_delivery_mode":"poll","jwks_uri":"https://sp.example/jwks"}`.
    #[arg(long)]
    metadata: Option<String>,
}

impl Registration {
    fn spec(self, client_id: Option<String>) -> Result<ClientSpec, String> {
        let metadata = match &self.metadata {
            Some(json) => serde_json::from_str(json).map_err(|e| format!("--metadata: {e}"))?,
            None => Default::default(),
        };
        Ok(ClientSpec {
            client_id,
            name: self.name,
            short_name: self.short_name,
            redirect_uris: self.redirect_uris,
            scopes: self.scopes,
            sector_identifier_uri: self.sector_identifier_uri,
            metadata,
        })
    }
}

#[derive(Subcommand)]
pub enum ClientCommand {
    /// Register a service provider; prints its secret once.
    Create {
        #[arg(long)]
        client_id: Option<String>,
        #[command(flatten)]
        registration: Registration,
    },
    List,
    Show {
        client_id: String,
    },
    /// Replace a registration.
    Update {
        client_id: String,
        #[command(flatten)]
        registration: Registration,
    },
    Disable {
        client_id: String,
    },
    Enable {
        client_id: String,
    },
    RotateSecret {
        client_id: String,
    },
}

#[derive(Subcommand)]
pub enum SubscriberCommand {
    Create {
        msisdn: String,
        #[arg(long)]
        pin: Option<String>,
        /// Repeatable; default `app_push`.
        #[arg(long = "capability")]
        capabilities: Vec<String>,
        /// Data Gateway attributes as JSON, e.g.
        /// `{"given_name":"Ada","family_name":"Lovelace","sim_changed_at":"2026-01-01T00:00:00Z"}`.
        #[arg(long)]
        attributes: Option<String>,
    },
    /// Replace the Data Gateway attributes (`--merge`: JSON merge patch, `null` removes one).
    SetAttributes {
        msisdn: String,
        #[arg(long)]
        attributes: String,
        #[arg(long)]
        merge: bool,
    },
    List,
    Show {
        msisdn: String,
    },
    /// Block logins (stolen phone).
    Suspend {
        msisdn: String,
    },
    Activate {
        msisdn: String,
    },
    /// The number was recycled: the old subscriber is retired (a new one can take the number).
    Retire {
        msisdn: String,
    },
    /// Set a new PIN; also unlocks LoA3 after too many wrong PINs.
    SetPin {
        msisdn: String,
        pin: String,
    },
    /// Remove the PIN (no LoA3).
    ClearPin {
        msisdn: String,
    },
    SetCapabilities {
        msisdn: String,
        #[arg(long = "capability")]
        capabilities: Vec<String>,
    },
}

fn print(v: impl serde::Serialize) -> Result<(), String> {
    println!(
        "{}",
        serde_json::to_string_pretty(&v).map_err(|e| e.to_string())?
    );
    Ok(())
}

pub async fn run(
    config: Option<PathBuf>,
    data: Option<PathBuf>,
    command: AdminCommand,
) -> Result<(), String> {
    let settings = match (config, data) {
        (Some(c), _) => settings::load(&c)?,
        (None, data) => {
            let data = data.unwrap_or_else(|| PathBuf::from("./data"));
            let mut s: Settings = toml_default();
            s.database = DatabaseSettings {
                url: format!("sqlite:{}", data.join("mobileconnect.db").display()),
                ..Default::default()
            };
            s.keys.kek_file = Some(data.join("kek.hex"));
            s
        }
    };
    let store = open_store(&settings).await?;
    let e = |e: registry::RegistryError| e.to_string();
    match command {
        AdminCommand::Keys(c) => crate::admin_keys::run(&settings, &store, c).await,
        AdminCommand::Clients(c) => match c {
            ClientCommand::Create {
                client_id,
                registration,
            } => {
                let spec = registration.spec(client_id)?;
                let (record, secret) = registry::create_client(&store, &spec).await.map_err(e)?;
                let mut v = serde_json::json!(ClientView::from(&record));
                v["client_secret"] = serde_json::json!(secret);
                print(v)
            }
            ClientCommand::List => {
                let all = store.list_clients().await.map_err(|e| e.to_string())?;
                print(all.iter().map(ClientView::from).collect::<Vec<_>>())
            }
            ClientCommand::Show { client_id } => {
                let c = store
                    .get_client(&client_id)
                    .await
                    .map_err(|e| e.to_string())?
                    .ok_or("client not found")?;
                print(ClientView::from(&c))
            }
            ClientCommand::Update {
                client_id,
                registration,
            } => {
                let spec = registration.spec(None)?;
                print(ClientView::from(
                    &registry::update_client(&store, &client_id, &spec)
                        .await
                        .map_err(e)?,
                ))
            }
            ClientCommand::Disable { client_id } => print(ClientView::from(
                &registry::set_client_status(&store, &client_id, ClientStatus::Disabled)
                    .await
                    .map_err(e)?,
            )),
            ClientCommand::Enable { client_id } => print(ClientView::from(
                &registry::set_client_status(&store, &client_id, ClientStatus::Active)
                    .await
                    .map_err(e)?,
            )),
            ClientCommand::RotateSecret { client_id } => {
                let secret = registry::rotate_client_secret(&store, &client_id)
                    .await
                    .map_err(e)?;
                print(serde_json::json!({"client_id": client_id, "client_secret": secret}))
            }
        },
        AdminCommand::Subscribers(c) => match c {
            SubscriberCommand::Create {
                msisdn,
                pin,
                capabilities,
                attributes,
            } => {
                let attributes = attributes.as_deref().map(parse_attributes).transpose()?;
                let sub = registry::create_subscriber(
                    &store,
                    &SubscriberSpec {
                        msisdn,
                        pin,
                        capabilities,
                    },
                )
                .await
                .map_err(e)?;
                let mut view = serde_json::json!(SubscriberView::from(&sub));
                if let Some(a) = attributes {
                    view["attributes"] = mc_gateway::datagw::set_subscriber_attributes(
                        &store,
                        &sub.msisdn,
                        &a,
                        false,
                    )
                    .await
                    .map_err(e)?;
                }
                print(view)
            }
            SubscriberCommand::SetAttributes {
                msisdn,
                attributes,
                merge,
            } => {
                let doc = parse_attributes(&attributes)?;
                print(
                    mc_gateway::datagw::set_subscriber_attributes(&store, &msisdn, &doc, merge)
                        .await
                        .map_err(e)?,
                )
            }
            SubscriberCommand::List => {
                let all = store.list_subscribers().await.map_err(|e| e.to_string())?;
                print(all.iter().map(SubscriberView::from).collect::<Vec<_>>())
            }
            SubscriberCommand::Show { msisdn } => print(SubscriberView::from(
                &registry::find_subscriber(&store, &msisdn)
                    .await
                    .map_err(e)?,
            )),
            SubscriberCommand::Suspend { msisdn } => {
                status(&store, &msisdn, SubscriberStatus::Suspended).await
            }
            SubscriberCommand::Activate { msisdn } => {
                status(&store, &msisdn, SubscriberStatus::Active).await
            }
            SubscriberCommand::Retire { msisdn } => {
                status(&store, &msisdn, SubscriberStatus::Retired).await
            }
            SubscriberCommand::SetPin { msisdn, pin } => print(SubscriberView::from(
                &registry::set_subscriber_pin(&store, &msisdn, Some(&pin))
                    .await
                    .map_err(e)?,
            )),
            SubscriberCommand::ClearPin { msisdn } => print(SubscriberView::from(
                &registry::set_subscriber_pin(&store, &msisdn, None)
                    .await
                    .map_err(e)?,
            )),
            SubscriberCommand::SetCapabilities {
                msisdn,
                capabilities,
            } => print(SubscriberView::from(
                &registry::update_subscriber(&store, &msisdn, None, Some(capabilities))
                    .await
                    .map_err(e)?,
            )),
        },
    }
}

async fn status(
    store: &mc_store::DynStore,
    msisdn: &str,
    s: SubscriberStatus,
) -> Result<(), String> {
    let sub = registry::update_subscriber(store, msisdn, Some(s), None)
        .await
        .map_err(|e| e.to_string())?;
    print(SubscriberView::from(&sub))
}

/// `--attributes`: a JSON object of the Data Gateway vocabulary, checked before anything
/// is written.
fn parse_attributes(json: &str) -> Result<serde_json::Value, String> {
    let doc: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("--attributes: {e}"))?;
    mc_gateway::datagw::check_attributes(&doc).map_err(|e| format!("--attributes: {e}"))?;
    Ok(doc)
}

/// Settings for a sandbox data folder (only the database is used by admin commands).
fn toml_default() -> Settings {
    Settings {
        listen: std::net::SocketAddr::from(([127, 0, 0, 1], 8080)),
        database: DatabaseSettings::default(),
        keys: Default::default(),
        log: Default::default(),
        gateway: mc_gateway::config::GatewayConfig {
            issuer: "http://127.0.0.1:8080".into(),
            tokens: Default::default(),
            login: Default::default(),
            authenticators: Default::default(),
            admin: Default::default(),
            backchannel: Default::default(),
            telemetry: Default::default(),
            keys: Default::default(),
            retention: Default::default(),
            datagw: Default::default(),
            throttle: Default::default(),
        },
        sandbox: Default::default(),
        discovery: None,
    }
}
