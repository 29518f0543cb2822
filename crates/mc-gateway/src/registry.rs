//! Registry (service providers) and Provisioning (subscribers): the rules shared by the
//! `mobileconnect admin` commands and the `/admin/v1` REST API.

use mc_core::grants;
use mc_core::msisdn::Msisdn;
use mc_core::scope::{KNOWN_SCOPES, Scope};
use mc_core::sector::{derive_sector, is_registrable_redirect_uri};
use mc_store::{
    ClientMetadata, ClientRecord, ClientStatus, DeliveryMode, DynStore, StoreError,
    SubscriberRecord, SubscriberStatus,
};
use serde::{Deserialize, Serialize};

use crate::client_auth::hash_client_secret;
use crate::state::{now, random_token};

/// A registry or provisioning request that cannot be carried out; the text names the field.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{0}")]
    Invalid(String),
    #[error("not found")]
    NotFound,
    #[error("already exists")]
    Conflict,
    #[error("storage failure")]
    Store(StoreError),
}

impl From<StoreError> for RegistryError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => RegistryError::NotFound,
            StoreError::Conflict(_) | StoreError::Busy => RegistryError::Conflict,
            other => RegistryError::Store(other),
        }
    }
}

fn invalid(s: impl Into<String>) -> RegistryError {
    RegistryError::Invalid(s.into())
}

/// Capabilities a subscriber may have.
pub const KNOWN_CAPABILITIES: &[&str] = &["app_push", "sim_applet", "sms", "passkey"];

/// A new or updated service provider.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSpec {
    /// Chosen by the operator, or generated when absent.
    pub client_id: Option<String>,
    pub name: String,
    pub short_name: String,
    pub redirect_uris: Vec<String>,
    /// Defaults to `openid mc_authn mc_authz`.
    #[serde(default)]
    pub scopes: Vec<String>,
    pub sector_identifier_uri: Option<String>,
    /// Back-channel and key registration (CIBA, Mobile Connect SI, `private_key_jwt`).
    #[serde(default)]
    pub metadata: ClientMetadata,
}

/// A client as the registry shows it: no secret hash.
#[derive(Debug, Clone, Serialize)]
pub struct ClientView {
    pub client_id: String,
    pub name: String,
    pub short_name: String,
    pub redirect_uris: Vec<String>,
    pub scopes: Vec<String>,
    pub grant_types: Vec<String>,
    pub sector: String,
    pub status: &'static str,
    pub created_at: i64,
    pub metadata: ClientMetadata,
}

impl From<&ClientRecord> for ClientView {
    fn from(c: &ClientRecord) -> Self {
        ClientView {
            client_id: c.client_id.clone(),
            name: c.name.clone(),
            short_name: c.short_name.clone(),
            redirect_uris: c.redirect_uris.clone(),
            scopes: c.allowed_scopes.clone(),
            grant_types: c.grant_types.clone(),
            sector: c.sector.clone(),
            status: c.status.as_str(),
            created_at: c.created_at,
            metadata: c.metadata.clone(),
        }
    }
}

/// The record fields a spec decides.
struct Checked {
    allowed_scopes: Vec<String>,
    sector: String,
    grant_types: Vec<String>,
}

/// Validates a spec into the fields of a record.
fn checked(spec: &ClientSpec) -> Result<Checked, RegistryError> {
    if spec.name.trim().is_empty() || spec.name.len() > 128 {
        return Err(invalid("name: required, at most 128 bytes"));
    }
    if spec.short_name.trim().is_empty()
        || spec.short_name.len() > 64
        || spec.short_name.chars().any(char::is_control)
    {
        return Err(invalid(
            "short_name: required, at most 64 bytes, no control characters",
        ));
    }
    if spec.redirect_uris.is_empty() || spec.redirect_uris.len() > 20 {
        return Err(invalid("redirect_uris: 1 to 20 URIs"));
    }
    if let Some(bad) = spec
        .redirect_uris
        .iter()
        .find(|u| !is_registrable_redirect_uri(u))
    {
        return Err(invalid(format!(
            "redirect_uris: {bad:?} must be https (or http on loopback), absolute, without fragment"
        )));
    }
    let scopes: Vec<String> = if spec.scopes.is_empty() {
        vec!["openid".into(), "mc_authn".into(), "mc_authz".into()]
    } else {
        spec.scopes.clone()
    };
    if let Some(bad) = scopes.iter().find(|s| !KNOWN_SCOPES.contains(&s.as_str())) {
        return Err(invalid(format!("scopes: unknown scope {bad:?}")));
    }
    if !scopes.iter().any(|s| s == "openid") {
        return Err(invalid("scopes: must include openid"));
    }
    let sector = derive_sector(spec.sector_identifier_uri.as_deref(), &spec.redirect_uris)
        .ok_or_else(|| {
            invalid("sector_identifier_uri: required when redirect_uris span several hosts")
        })?;
    let mut grant_types = checked_metadata(&spec.metadata)?;
    // Refresh tokens come with `offline_access` (docs/decisions.md, "Refresh tokens").
    if scopes.iter().any(|s| s == "offline_access") {
        grant_types.push(grants::REFRESH_TOKEN.to_owned());
    }
    Ok(Checked {
        allowed_scopes: Scope::from_values(scopes.iter().map(String::as_str))
            .iter()
            .map(str::to_owned)
            .collect(),
        sector,
        grant_types,
    })
}

/// A URL a client may register for us to call or fetch: https, or http on loopback.
fn callable_url(what: &str, u: &str) -> Result<(), RegistryError> {
    if is_registrable_redirect_uri(u) {
        Ok(())
    } else {
        Err(invalid(format!(
            "{what}: {u:?} must be https (or http on loopback), absolute, without fragment"
        )))
    }
}

fn client_jws_alg(what: &str, alg: &Option<String>) -> Result<(), RegistryError> {
    match alg {
        Some(a) if !grants::CLIENT_JWS_ALGS.contains(&a.as_str()) => Err(invalid(format!(
            "{what}: {a:?} is not one of {}",
            grants::CLIENT_JWS_ALGS.join(", ")
        ))),
        _ => Ok(()),
    }
}

/// Checks the optional registration metadata and derives the grant types it enables.
/// CIBA Core §4: a client with pairwise subjects (all of ours) must register a `jwks_uri`;
/// Mobile Connect SI: request objects are signed with a registered asymmetric key.
fn checked_metadata(m: &ClientMetadata) -> Result<Vec<String>, RegistryError> {
    let mut grant_types = vec![grants::AUTHORIZATION_CODE.to_owned()];
    match m.token_endpoint_auth_method.as_deref() {
        None | Some("client_secret_basic" | "client_secret_post") => {}
        Some("private_key_jwt") if m.jwks_uri.is_some() || m.jwks.is_some() => {}
        Some("private_key_jwt") => {
            return Err(invalid(
                "metadata.token_endpoint_auth_method: private_key_jwt needs jwks_uri or jwks",
            ));
        }
        Some(other) => {
            return Err(invalid(format!(
                "metadata.token_endpoint_auth_method: unsupported {other:?}"
            )));
        }
    }
    if let Some(u) = &m.jwks_uri {
        callable_url("metadata.jwks_uri", u)?;
    }
    if let Some(j) = &m.jwks {
        if !j.get("keys").is_some_and(serde_json::Value::is_array) {
            return Err(invalid(
                "metadata.jwks: must be a JWKS document {\"keys\": [...]}",
            ));
        }
        if m.jwks_uri.is_some() {
            return Err(invalid("metadata.jwks: give jwks or jwks_uri, not both"));
        }
    }
    client_jws_alg(
        "metadata.backchannel_authentication_request_signing_alg",
        &m.backchannel_authentication_request_signing_alg,
    )?;
    client_jws_alg(
        "metadata.request_object_signing_alg",
        &m.request_object_signing_alg,
    )?;
    // Userinfo answers are signed with the gateway's RSA key (OIDC Registration §2).
    if m.userinfo_signed_response_alg
        .as_deref()
        .is_some_and(|a| a != "RS256")
    {
        return Err(invalid("metadata.userinfo_signed_response_alg: only RS256"));
    }
    if let Some(mode) = &m.backchannel_token_delivery_mode {
        let mode = DeliveryMode::parse(mode).ok_or_else(|| {
            invalid("metadata.backchannel_token_delivery_mode: poll, ping or push")
        })?;
        if m.jwks_uri.is_none() {
            return Err(invalid(
                "metadata.jwks_uri: required for CIBA clients with pairwise subjects (CIBA Core §4)",
            ));
        }
        match (&m.backchannel_client_notification_endpoint, mode.notifies()) {
            (Some(u), true) => {
                callable_url("metadata.backchannel_client_notification_endpoint", u)?
            }
            (None, true) => {
                return Err(invalid(
                    "metadata.backchannel_client_notification_endpoint: required for ping and push",
                ));
            }
            _ => {}
        }
        if mode != DeliveryMode::Push {
            grant_types.push(grants::CIBA.to_owned());
        }
    }
    for u in &m.notification_uris {
        callable_url("metadata.notification_uris", u)?;
    }
    if !m.notification_uris.is_empty() && m.jwks_uri.is_none() && m.jwks.is_none() {
        return Err(invalid(
            "metadata.jwks_uri: Mobile Connect SI clients register their request-object keys (jwks_uri or jwks)",
        ));
    }

    // A client with registered keys can send Mobile Connect SI requests, whose polling
    // variant redeems at the token endpoint with the CIBA grant.
    if (m.jwks_uri.is_some() || m.jwks.is_some()) && !grant_types.iter().any(|g| g == grants::CIBA)
    {
        grant_types.push(grants::CIBA.to_owned());
    }
    // Grants asked for by name: `client_credentials` is opt-in; the others are derived
    // (`refresh_token` from the `offline_access` scope): listing them changes nothing.
    for g in &m.grant_types {
        match g.as_str() {
            grants::CLIENT_CREDENTIALS => {
                if !grant_types.iter().any(|x| x == g) {
                    grant_types.push(g.clone());
                }
            }
            grants::AUTHORIZATION_CODE | grants::REFRESH_TOKEN => {}
            grants::CIBA if grant_types.iter().any(|x| x == g) => {}
            grants::CIBA => {
                return Err(invalid(
                    "metadata.grant_types: the CIBA grant needs backchannel_token_delivery_mode poll/ping or registered keys",
                ));
            }
            other => {
                return Err(invalid(format!(
                    "metadata.grant_types: unsupported {other:?} (client_credentials, or the derived authorization_code, refresh_token, {})",
                    grants::CIBA
                )));
            }
        }
    }
    let known: Vec<String> = crate::authenticators::KNOWN
        .iter()
        .map(|n| n.to_string())
        .collect();
    crate::authenticators::validate_chains(&m.authenticator_chains, &known)
        .map_err(|e| invalid(format!("metadata.authenticator_chains: {e}")))?;
    if m.quota_per_second.is_some_and(|q| q > 100_000) {
        return Err(invalid(
            "metadata.quota_per_second: at most 100000 (0: unlimited)",
        ));
    }
    Ok(grant_types)
}

/// Registers a service provider; returns it and its secret (shown once, stored hashed).
pub async fn create_client(
    store: &DynStore,
    spec: &ClientSpec,
) -> Result<(ClientRecord, String), RegistryError> {
    let Checked {
        allowed_scopes,
        sector,
        grant_types,
    } = checked(spec)?;
    let client_id = match &spec.client_id {
        Some(id)
            if id.is_empty()
                || id.len() > 128
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) =>
        {
            return Err(invalid("client_id: 1 to 128 characters of [A-Za-z0-9-_.]"));
        }
        Some(id) => id.clone(),
        None => random_token(),
    };
    let secret = random_token();
    let record = ClientRecord {
        client_id,
        secret_hash: hash_client_secret(&secret),
        name: spec.name.clone(),
        short_name: spec.short_name.clone(),
        redirect_uris: spec.redirect_uris.clone(),
        allowed_scopes,
        grant_types,
        sector,
        status: ClientStatus::Active,
        created_at: now(),
        metadata: spec.metadata.clone(),
    };
    store.insert_client(&record).await?;
    Ok((record, secret))
}

/// Replaces a client's registration (not its id, secret or creation time).
pub async fn update_client(
    store: &DynStore,
    client_id: &str,
    spec: &ClientSpec,
) -> Result<ClientRecord, RegistryError> {
    let Checked {
        allowed_scopes,
        sector,
        grant_types,
    } = checked(spec)?;
    let mut record = store
        .get_client(client_id)
        .await?
        .ok_or(RegistryError::NotFound)?;
    record.name = spec.name.clone();
    record.short_name = spec.short_name.clone();
    record.redirect_uris = spec.redirect_uris.clone();
    record.allowed_scopes = allowed_scopes;
    record.sector = sector;
    record.grant_types = grant_types;
    record.metadata = spec.metadata.clone();
    store.update_client(&record).await?;
    Ok(record)
}

/// Enables or disables a client.
pub async fn set_client_status(
    store: &DynStore,
    client_id: &str,
    status: ClientStatus,
) -> Result<ClientRecord, RegistryError> {
    let mut record = store
        .get_client(client_id)
        .await?
        .ok_or(RegistryError::NotFound)?;
    record.status = status;
    store.update_client(&record).await?;
    Ok(record)
}

/// Issues a new secret for a client (the old one stops working at once).
pub async fn rotate_client_secret(
    store: &DynStore,
    client_id: &str,
) -> Result<String, RegistryError> {
    let mut record = store
        .get_client(client_id)
        .await?
        .ok_or(RegistryError::NotFound)?;
    let secret = random_token();
    record.secret_hash = hash_client_secret(&secret);
    store.update_client(&record).await?;
    Ok(secret)
}

/// A subscriber as provisioning shows it: never the PIN hash.
#[derive(Debug, Clone, Serialize)]
pub struct SubscriberView {
    pub id: String,
    pub msisdn: String,
    pub status: SubscriberStatus,
    pub pin_set: bool,
    pub pin_locked: bool,
    pub capabilities: Vec<String>,
    pub created_at: i64,
}

impl From<&SubscriberRecord> for SubscriberView {
    fn from(s: &SubscriberRecord) -> Self {
        SubscriberView {
            id: s.id.clone(),
            msisdn: s.msisdn.clone(),
            status: s.status,
            pin_set: s.pin_hash.is_some(),
            pin_locked: s.pin_locked,
            capabilities: s.capabilities.clone(),
            created_at: s.created_at,
        }
    }
}

/// A new subscriber.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriberSpec {
    pub msisdn: String,
    pub pin: Option<String>,
    /// Defaults to `app_push`.
    #[serde(default)]
    pub capabilities: Vec<String>,
}

fn checked_capabilities(caps: &[String]) -> Result<Vec<String>, RegistryError> {
    if let Some(bad) = caps
        .iter()
        .find(|c| !KNOWN_CAPABILITIES.contains(&c.as_str()))
    {
        return Err(invalid(format!(
            "capabilities: unknown capability {bad:?} (known: {})",
            KNOWN_CAPABILITIES.join(", ")
        )));
    }
    let mut caps = caps.to_vec();
    caps.sort();
    caps.dedup();
    Ok(caps)
}

fn checked_pin(pin: &str) -> Result<(), RegistryError> {
    if mc_authn::pin::is_valid_pin(pin) {
        Ok(())
    } else {
        Err(invalid("pin: 4 to 8 digits"))
    }
}

fn parse_msisdn(raw: &str) -> Result<Msisdn, RegistryError> {
    Msisdn::parse_typed(raw).ok_or_else(|| invalid("msisdn: international format, 7 to 15 digits"))
}

/// Provisions a subscriber.
pub async fn create_subscriber(
    store: &DynStore,
    spec: &SubscriberSpec,
) -> Result<SubscriberRecord, RegistryError> {
    let msisdn = parse_msisdn(&spec.msisdn)?;
    let caps = if spec.capabilities.is_empty() {
        vec!["app_push".into()]
    } else {
        spec.capabilities.clone()
    };
    let capabilities = checked_capabilities(&caps)?;
    let pin_hash = match &spec.pin {
        Some(pin) => {
            checked_pin(pin)?;
            Some(
                mc_authn::pin::hash_pin_blocking(pin.clone())
                    .await
                    .map_err(|_| invalid("pin: could not be hashed"))?,
            )
        }
        None => None,
    };
    let record = SubscriberRecord {
        id: random_token(),
        msisdn: msisdn.as_str().to_owned(),
        status: SubscriberStatus::Active,
        pin_hash,
        pin_failures: 0,
        pin_locked: false,
        capabilities,
        created_at: now(),
    };
    store.insert_subscriber(&record).await?;
    Ok(record)
}

/// The non-retired subscriber holding a number.
pub async fn find_subscriber(
    store: &DynStore,
    msisdn: &str,
) -> Result<SubscriberRecord, RegistryError> {
    let msisdn = parse_msisdn(msisdn)?;
    store
        .find_subscriber_by_msisdn(msisdn.as_str())
        .await?
        .ok_or(RegistryError::NotFound)
}

/// Changes status (`active`, `suspended` — stolen phone — or `retired` — number recycled)
/// and/or capabilities.
pub async fn update_subscriber(
    store: &DynStore,
    msisdn: &str,
    status: Option<SubscriberStatus>,
    capabilities: Option<Vec<String>>,
) -> Result<SubscriberRecord, RegistryError> {
    let current = find_subscriber(store, msisdn).await?;
    let status = status.unwrap_or(current.status);
    let capabilities = match capabilities {
        Some(c) => checked_capabilities(&c)?,
        None => current.capabilities.clone(),
    };
    store
        .update_subscriber(&current.id, status, &capabilities)
        .await?;
    store
        .get_subscriber(&current.id)
        .await?
        .ok_or(RegistryError::NotFound)
}

/// Sets (`Some`: also unlocks it) or removes the subscriber's CIBA user code.
pub async fn set_subscriber_user_code(
    store: &DynStore,
    msisdn: &str,
    code: Option<&str>,
) -> Result<SubscriberRecord, RegistryError> {
    let current = find_subscriber(store, msisdn).await?;
    let hash = match code {
        Some(code) if !mc_core::backchannel::user_code_is_provisionable(code) => {
            return Err(invalid(
                "user_code: at least 4 printable characters, at most 64 bytes",
            ));
        }
        Some(code) => Some(
            mc_authn::pin::hash_pin_blocking(code.to_owned())
                .await
                .map_err(|_| invalid("user_code: could not be hashed"))?,
        ),
        None => None,
    };
    store.set_user_code(&current.id, hash.as_deref()).await?;
    Ok(current)
}

/// Sets a new PIN (also the "reset" after a lockout); `None` removes the PIN (no LoA3).
pub async fn set_subscriber_pin(
    store: &DynStore,
    msisdn: &str,
    pin: Option<&str>,
) -> Result<SubscriberRecord, RegistryError> {
    let current = find_subscriber(store, msisdn).await?;
    let hash = match pin {
        Some(pin) => {
            checked_pin(pin)?;
            Some(
                mc_authn::pin::hash_pin_blocking(pin.to_owned())
                    .await
                    .map_err(|_| invalid("pin: could not be hashed"))?,
            )
        }
        None => None,
    };
    store.set_pin(&current.id, hash.as_deref()).await?;
    store
        .get_subscriber(&current.id)
        .await?
        .ok_or(RegistryError::NotFound)
}
