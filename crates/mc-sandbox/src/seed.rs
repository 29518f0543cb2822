//! Demo data, created on first start and reused afterwards.

use std::path::Path;

use mc_gateway::registry::{self, ClientSpec, SubscriberSpec};
use mc_store::DynStore;
use serde::{Deserialize, Serialize};

/// What `sandbox.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SandboxInfo {
    pub operators: Vec<OperatorInfo>,
    pub service_providers: Vec<ServiceProviderInfo>,
    pub subscribers: Vec<SubscriberInfo>,
    /// Bearer token of the `/admin/v1` API (sandbox only).
    pub admin_token: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OperatorInfo {
    pub name: String,
    pub issuer: String,
    pub metadata_url: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceProviderInfo {
    pub name: String,
    pub short_name: String,
    pub client_id: String,
    pub client_secret: String,
    pub redirect_uris: Vec<String>,
    pub scopes: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SubscriberInfo {
    pub msisdn: String,
    pub pin: Option<String>,
    pub status: String,
    pub capabilities: Vec<String>,
    pub phone_url: String,
}

/// The demo service provider's client id.
pub const DEMO_CLIENT_ID: &str = "onlineshopper";
/// The demo SP's daily quota (other sandbox SPs: 100, the sandbox default).
pub const DEMO_SP_CALLS_PER_DAY: u64 = 100_000;

const SUBSCRIBERS: &[(&str, Option<&str>, &str)] = &[
    ("447700900301", None, "active"),
    ("447700900302", Some("1234"), "active"),
    ("447700900303", Some("5678"), "active"),
    ("447700900309", None, "suspended"),
];

/// Creates whatever demo data is missing and returns the description. `previous` is the
/// last `sandbox.json` (to keep the client secret across restarts: the store only has its
/// hash).
pub async fn seed(
    store: &DynStore,
    base_url: &str,
    previous: Option<SandboxInfo>,
    admin_token: String,
) -> Result<SandboxInfo, String> {
    let redirect_uris = vec![
        format!("{base_url}/demo-sp/callback"),
        "http://localhost:3000/callback".to_owned(),
    ];
    let scopes: Vec<String> = [
        "openid",
        "mc_authn",
        "mc_authz",
        "mc_identity_phonenumber",
        "phone",
    ]
    .map(String::from)
    .to_vec();
    let spec = ClientSpec {
        client_id: Some(DEMO_CLIENT_ID.into()),
        name: "OnlineShopper (demo)".into(),
        short_name: "OnlineShopper".into(),
        redirect_uris: redirect_uris.clone(),
        scopes: scopes.clone(),
        sector_identifier_uri: Some("https://onlineshopper.example/sector_identifier.json".into()),
        // The demo SP's back end may also start logins (CIBA poll with its secret); CIBA
        // wants a registered jwks_uri from pairwise clients, served by the demo SP.
        metadata: mc_store::ClientMetadata {
            backchannel_token_delivery_mode: Some("poll".into()),
            jwks_uri: Some(format!("{base_url}/demo-sp/jwks.json")),
            // SPs registered in the sandbox get the operator-demo default of 100 calls a
            // day; the demo SP, which the README, the examples and the test suites drive,
            // gets a day's worth of development (docs/decisions.md, "Throttling").
            quota_per_day: Some(DEMO_SP_CALLS_PER_DAY),
            ..Default::default()
        },
    };
    let err = |e: registry::RegistryError| e.to_string();
    let known_secret = previous
        .as_ref()
        .and_then(|p| {
            p.service_providers
                .iter()
                .find(|s| s.client_id == DEMO_CLIENT_ID)
        })
        .map(|s| s.client_secret.clone());
    let client_secret = match store
        .get_client(DEMO_CLIENT_ID)
        .await
        .map_err(|e| e.to_string())?
    {
        None => registry::create_client(store, &spec).await.map_err(err)?.1,
        Some(_) => {
            // Redirect URIs follow the listen address of this run.
            registry::update_client(store, DEMO_CLIENT_ID, &spec)
                .await
                .map_err(err)?;
            match known_secret {
                Some(s) => s,
                None => registry::rotate_client_secret(store, DEMO_CLIENT_ID)
                    .await
                    .map_err(err)?,
            }
        }
    };
    let mut subscribers = Vec::new();
    for (msisdn, pin, status) in SUBSCRIBERS {
        if store
            .find_subscriber_by_msisdn(msisdn)
            .await
            .map_err(|e| e.to_string())?
            .is_none()
        {
            let s = SubscriberSpec {
                msisdn: (*msisdn).into(),
                pin: pin.map(String::from),
                capabilities: vec!["app_push".into()],
            };
            registry::create_subscriber(store, &s).await.map_err(err)?;
            if *status != "active" {
                registry::update_subscriber(
                    store,
                    msisdn,
                    mc_store::SubscriberStatus::parse(status),
                    None,
                )
                .await
                .map_err(err)?;
            }
        }
        subscribers.push(SubscriberInfo {
            msisdn: format!("+{msisdn}"),
            pin: pin.map(String::from),
            status: (*status).into(),
            capabilities: vec!["app_push".into()],
            phone_url: format!("{base_url}/phone/{msisdn}"),
        });
    }
    Ok(SandboxInfo {
        operators: vec![OperatorInfo {
            name: "Sandbox Operator".into(),
            issuer: base_url.to_owned(),
            metadata_url: format!("{base_url}/.well-known/openid-configuration"),
        }],
        service_providers: vec![ServiceProviderInfo {
            name: spec.name,
            short_name: spec.short_name,
            client_id: DEMO_CLIENT_ID.into(),
            client_secret,
            redirect_uris,
            scopes,
        }],
        subscribers,
        admin_token,
    })
}

/// Reads a previous `sandbox.json`, if any.
pub fn read_info(path: &Path) -> Option<SandboxInfo> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// Writes `sandbox.json` (owner-only: it holds the demo secrets).
pub fn write_info(path: &Path, info: &SandboxInfo) -> std::io::Result<()> {
    let json = serde_json::to_vec_pretty(info).map_err(std::io::Error::other)?;
    std::fs::write(path, json)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

impl SandboxInfo {
    /// The console banner.
    pub fn banner(&self, data_file: &Path) -> String {
        let mut out = String::new();
        let op = &self.operators[0];
        out.push_str("\n  Mobile Connect sandbox is running\n\n");
        out.push_str(&format!("  Identity Gateway  {}\n", op.issuer));
        out.push_str(&format!("  Metadata          {}\n\n", op.metadata_url));
        for sp in &self.service_providers {
            out.push_str(&format!(
                "  Service provider  {} (client_name \"{}\")\n",
                sp.name, sp.short_name
            ));
            out.push_str(&format!(
                "    client_id       {}\n    client_secret   {}\n",
                sp.client_id, sp.client_secret
            ));
            for r in &sp.redirect_uris {
                out.push_str(&format!("    redirect_uri    {r}\n"));
            }
        }
        out.push_str("\n  Test subscribers (open the phone page, then log in with the number)\n");
        for s in &self.subscribers {
            let note = match (&s.pin, s.status.as_str()) {
                (_, "suspended") => "suspended (stolen phone): logins are refused".to_owned(),
                (Some(pin), _) => format!("LoA2 and LoA3, PIN {pin}"),
                (None, _) => "LoA2 only (no PIN)".to_owned(),
            };
            out.push_str(&format!("    {}  {}  {}\n", s.msisdn, s.phone_url, note));
        }
        if let (Some(sp), Some(sub)) = (self.service_providers.first(), self.subscribers.first()) {
            let hint = sub.msisdn.trim_start_matches('+');
            out.push_str(&format!(
                "\n  Try it: open the phone page of {}, then\n    {}/authorize?client_id={}&redirect_uri={}&response_type=code&scope=openid%20mc_authn&acr_values=2&version=mc_di_r2_v2.3&state=demo&nonce=demo&login_hint=MSISDN%3A{}\n",
                sub.msisdn, op.issuer, sp.client_id, sp.redirect_uris[0], hint
            ));
            out.push_str(&format!(
                "\n  Server-initiated (CIBA poll), from the SP's back end:\n    curl -u {id}:{secret} -d scope=openid -d login_hint=MSISDN:{hint} -d binding_message=AB12 {iss}/bc-authorize\n    curl -u {id}:{secret} -d grant_type=urn:openid:params:grant-type:ciba -d auth_req_id=… {iss}/token\n",
                id = sp.client_id,
                secret = sp.client_secret,
                iss = op.issuer
            ));
        }
        out.push_str(&format!(
            "\n  Admin API token   {}\n  All of the above  {}\n",
            self.admin_token,
            data_file.display()
        ));
        out
    }
}
