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
    /// Bearer token of the `/admin/v1` API and of Discovery's (`…/discovery/admin/v1`)
    /// (sandbox only).
    pub admin_token: String,
    /// The Discovery API (`…/discovery/v2/discovery`), when served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovery_url: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OperatorInfo {
    pub name: String,
    pub issuer: String,
    pub metadata_url: String,
    /// The operator's id at Discovery (`serving_operator`); empty in files of older runs.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// `<MCC>_<MNC>`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mcc_mnc: String,
    /// The demo service provider's client secret at this operator (each operator has its
    /// own registration); `None` for the first operator, whose credentials are the demo
    /// SP's own (`service_providers`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceProviderInfo {
    pub name: String,
    pub short_name: String,
    pub client_id: String,
    pub client_secret: String,
    pub redirect_uris: Vec<String>,
    pub scopes: Vec<String>,
    /// The service provider's *discovery* credentials (HTTP Basic at the Discovery API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovery_client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovery_client_secret: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SubscriberInfo {
    pub msisdn: String,
    pub pin: Option<String>,
    pub status: String,
    pub capabilities: Vec<String>,
    pub phone_url: String,
    /// The serving operator's id, when not the first operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
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

/// The test subscriber whose SIM carries the applet (the sandbox MSSP's SIM): LoA2 is "OK"
/// on the SIM, LoA3 the SIM PIN, checked by the (virtual) card; the app is the fallback.
pub const SIM_SUBSCRIBER: &str = "447700900305";
/// The PIN of that SIM (not a gateway PIN: the card checks it).
pub const SIM_PIN: &str = "2468";
/// Its authenticator capabilities.
const SIM_CAPABILITIES: &[&str] = &["sim_applet", "app_push"];

/// The demo SP's redirect URIs: the callback page, a local developer's app, and the demo
/// shop (served at the host's root, whatever the issuer's path).
pub fn demo_redirect_uris(base_url: &str) -> Vec<String> {
    vec![
        format!("{base_url}/demo-sp/callback"),
        "http://localhost:3000/callback".to_owned(),
        crate::shop::callback_url(&crate::operators::origin(base_url)),
    ]
}

/// Creates whatever demo data is missing and returns the description. `previous` is the
/// last `sandbox.json` (to keep the client secret across restarts: the store only has its
/// hash).
pub async fn seed(
    store: &DynStore,
    base_url: &str,
    previous: Option<SandboxInfo>,
    admin_token: String,
) -> Result<SandboxInfo, String> {
    let redirect_uris = demo_redirect_uris(base_url);
    let scopes = demo_scopes();
    let known_secret = previous
        .as_ref()
        .and_then(|p| {
            p.service_providers
                .iter()
                .find(|s| s.client_id == DEMO_CLIENT_ID)
        })
        .map(|s| s.client_secret.clone());
    let client_secret = seed_demo_client(
        store,
        &redirect_uris,
        &format!("{base_url}/demo-sp/jwks.json"),
        known_secret,
    )
    .await?;
    let mut subscribers = Vec::new();
    for (msisdn, pin, status) in SUBSCRIBERS {
        seed_subscriber(store, msisdn, *pin, status).await?;
        subscribers.push(SubscriberInfo {
            msisdn: format!("+{msisdn}"),
            pin: pin.map(String::from),
            status: (*status).into(),
            capabilities: vec!["app_push".into()],
            phone_url: format!("{base_url}/phone/{msisdn}"),
            operator: None,
        });
    }
    seed_subscriber_with(store, SIM_SUBSCRIBER, None, "active", SIM_CAPABILITIES).await?;
    subscribers.push(SubscriberInfo {
        msisdn: format!("+{SIM_SUBSCRIBER}"),
        pin: None,
        status: "active".into(),
        capabilities: SIM_CAPABILITIES.iter().map(|c| c.to_string()).collect(),
        phone_url: format!("{base_url}/phone/{SIM_SUBSCRIBER}"),
        operator: None,
    });
    seed_attributes(store).await?;
    Ok(SandboxInfo {
        operators: vec![OperatorInfo {
            name: "Sandbox Operator".into(),
            issuer: base_url.to_owned(),
            metadata_url: format!("{base_url}/.well-known/openid-configuration"),
            id: crate::discovery::OPERATOR_ID.into(),
            mcc_mnc: format!("{}_{}", crate::discovery::MCC, crate::discovery::MNC),
            client_secret: None,
        }],
        service_providers: vec![ServiceProviderInfo {
            name: DEMO_NAME.into(),
            short_name: DEMO_SHORT_NAME.into(),
            client_id: DEMO_CLIENT_ID.into(),
            client_secret,
            redirect_uris,
            scopes,
            discovery_client_id: None,
            discovery_client_secret: None,
        }],
        subscribers,
        admin_token,
        discovery_url: None,
    })
}

/// The demo SP's display name and `client_name`.
pub const DEMO_NAME: &str = "OnlineShopper (demo)";
pub const DEMO_SHORT_NAME: &str = "OnlineShopper";

/// The scopes the demo SP may ask for.
pub fn demo_scopes() -> Vec<String> {
    [
        "openid",
        "mc_authn",
        "mc_authz",
        "mc_identity_phonenumber",
        "phone",
        "profile",
        "email",
        "address",
        "mc_identity_signup",
        "mc_identity_nationalid",
        "mc_kyc_plain",
        "mc_kyc_hashed",
    ]
    .map(String::from)
    .to_vec()
}

/// Registers (or refreshes) the demo SP in one operator's store and returns its client
/// secret: `known_secret` when the registration exists (the store only has the hash), a
/// rotated one when that was lost.
pub async fn seed_demo_client(
    store: &DynStore,
    redirect_uris: &[String],
    jwks_uri: &str,
    known_secret: Option<String>,
) -> Result<String, String> {
    let spec = ClientSpec {
        client_id: Some(DEMO_CLIENT_ID.into()),
        name: DEMO_NAME.into(),
        short_name: DEMO_SHORT_NAME.into(),
        redirect_uris: redirect_uris.to_vec(),
        scopes: demo_scopes(),
        sector_identifier_uri: Some("https://onlineshopper.example/sector_identifier.json".into()),
        // The demo SP's back end may also start logins (CIBA poll with its secret); CIBA
        // wants a registered jwks_uri from pairwise clients, served by the demo SP.
        metadata: mc_store::ClientMetadata {
            backchannel_token_delivery_mode: Some("poll".into()),
            jwks_uri: Some(jwks_uri.to_owned()),
            // SPs registered in the sandbox get the operator-demo default of 100 calls a
            // day; the demo SP, which the README, the examples and the test suites drive,
            // gets a day's worth of development (docs/decisions.md, "Throttling").
            quota_per_day: Some(DEMO_SP_CALLS_PER_DAY),
            ..Default::default()
        },
    };
    let err = |e: registry::RegistryError| e.to_string();
    Ok(
        match store
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
        },
    )
}

/// Creates a test subscriber (app push, optional PIN) unless the number exists.
pub async fn seed_subscriber(
    store: &DynStore,
    msisdn: &str,
    pin: Option<&str>,
    status: &str,
) -> Result<(), String> {
    seed_subscriber_with(store, msisdn, pin, status, &["app_push"]).await
}

/// As [`seed_subscriber`], with these authenticator capabilities.
pub async fn seed_subscriber_with(
    store: &DynStore,
    msisdn: &str,
    pin: Option<&str>,
    status: &str,
    capabilities: &[&str],
) -> Result<(), String> {
    let err = |e: registry::RegistryError| e.to_string();
    if store
        .find_subscriber_by_msisdn(msisdn)
        .await
        .map_err(|e| e.to_string())?
        .is_some()
    {
        return Ok(());
    }
    let s = SubscriberSpec {
        msisdn: msisdn.into(),
        pin: pin.map(String::from),
        capabilities: capabilities.iter().map(|c| c.to_string()).collect(),
    };
    registry::create_subscriber(store, &s).await.map_err(err)?;
    if status != "active" {
        registry::update_subscriber(
            store,
            msisdn,
            mc_store::SubscriberStatus::parse(status),
            None,
        )
        .await
        .map_err(err)?;
    }
    Ok(())
}

/// Realistic Data Gateway attributes for the test subscribers (identity claims, KYC match
/// values, ATP provisioning facts), written where a subscriber has none yet. 302 had its
/// SIM swapped two hours before the first start, 309 is reported stolen.
async fn seed_attributes(store: &DynStore) -> Result<(), String> {
    let now = mc_gateway::state::now();
    let docs = [
        (
            "447700900301",
            serde_json::json!({
                "title": "Mr", "given_name": "David", "middle_name": "Andrew",
                "family_name": "Smith", "gender": "male", "birthdate": "1990-11-04",
                "email": "david.smith@example.com", "email_verified": true,
                "houseno_or_housename": "123", "street_address": "Fake Street",
                "city": "Manchester", "state": "Greater Manchester", "postal_code": "M1 1AB",
                "country": "GB", "national_identifier": "QQ123456C",
                "national_identifier_authority": "HMRC", "locale": "en-GB",
                "zoneinfo": "Europe/London", "account_state": "active",
                "lost_stolen": false, "billing_segment": "postpaid",
            }),
        ),
        (
            "447700900302",
            serde_json::json!({
                "title": "Ms", "given_name": "Priya", "family_name": "Sharma",
                "gender": "female", "birthdate": "1985-03-17",
                "email": "priya.sharma@example.com", "email_verified": true,
                "houseno_or_housename": "Flat 4, 27", "street_address": "Baker Street",
                "city": "London", "state": "Greater London", "postal_code": "NW1 6XE",
                "country": "GB", "national_identifier": "QQ654321A",
                "national_identifier_authority": "HMRC", "account_state": "active",
                "sim_changed_at": now - 2 * 3600, "lost_stolen": false,
                "billing_segment": "prepaid",
            }),
        ),
        (
            "447700900303",
            serde_json::json!({
                "title": "Dr", "given_name": "Tomasz", "family_name": "Nowak",
                "birthdate": "1978-07-02", "email": "t.nowak@example.org",
                "houseno_or_housename": "8", "street_address": "Castle Terrace",
                "city": "Edinburgh", "postal_code": "EH1 2DP", "country": "GB",
                "account_state": "active", "call_divert_active": true,
                "device_changed_at": now - 30 * 86_400, "billing_segment": "business",
            }),
        ),
        (
            "447700900309",
            serde_json::json!({
                "given_name": "Sam", "family_name": "Taylor", "birthdate": "2001-01-20",
                "city": "Bristol", "country": "GB", "account_state": "inactive",
                "lost_stolen": true,
            }),
        ),
    ];
    for (msisdn, doc) in docs {
        let sub = store
            .find_subscriber_by_msisdn(msisdn)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("sandbox subscriber {msisdn} missing"))?;
        if store
            .get_attributes(&sub.id)
            .await
            .map_err(|e| e.to_string())?
            .is_none()
        {
            mc_gateway::datagw::set_subscriber_attributes(store, msisdn, &doc, false)
                .await
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(())
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
        if self.discovery_url.is_some() {
            out.push_str(&format!(
                "  Open this:        {}  (the demo shop: log in with a test number below,\n                    approve on its phone page, then pay)\n\n",
                crate::shop::PATH
                    .strip_prefix('/')
                    .map(|p| format!("{}/{p}", crate::operators::origin(&op.issuer)))
                    .unwrap_or_default()
            ));
        }
        out.push_str(&format!("  Identity Gateway  {}\n", op.issuer));
        out.push_str(&format!("  Metadata          {}\n", op.metadata_url));
        for other in self.operators.iter().skip(1) {
            out.push_str(&format!(
                "  Operator          {} ({})  {}\n",
                other.name, other.mcc_mnc, other.issuer
            ));
        }
        out.push('\n');
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
            let note = match &s.operator {
                Some(id) => format!("{note}, at {id}"),
                None => note,
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
            if let (Some(url), Some(id), Some(secret)) = (
                &self.discovery_url,
                &sp.discovery_client_id,
                &sp.discovery_client_secret,
            ) {
                out.push_str(&format!(
                    "\n  Discovery (which operator serves a number), from the SP's back end:\n    curl -u {id}:{secret} -d MSISDN={hint} --data-urlencode Redirect_URL={redirect} {url}\n",
                    redirect = sp.redirect_uris[0],
                ));
            }
        }
        out.push_str(&format!(
            "\n  Admin API token   {}\n  All of the above  {}\n",
            self.admin_token,
            data_file.display()
        ));
        out
    }
}
