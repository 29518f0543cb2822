//! The gateway side of the Data Gateway (`mc-datagw`): the local attribute source over the
//! store, the sources built from configuration, attribute provisioning (admin API and
//! CLI), and the Access Gateway's answers — `/userinfo`, `/premiuminfo` and ATP — computed
//! from a verified access token. The routes in `routes::userinfo`, `routes::premiuminfo`
//! and `routes::atp` only extract and reply.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use async_trait::async_trait;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mc_core::McError;
use mc_core::login_hint::LoginHint;
use mc_core::msisdn::Msisdn;
use mc_core::scope::Scope;
use mc_datagw::atp::{AtpFacts, MAX_AGE_HOURS, SimChange, UserIdType};
use mc_datagw::attributes::{AttributeError, Attributes, Group, VOCABULARY};
use mc_datagw::claims::{ClaimsRequest, Shape, attributes_needed, value_of};
use mc_datagw::clock::Clock;
use mc_datagw::config::{DatagwConfig, LOCAL};
use mc_datagw::http::HttpSource;
use mc_datagw::kyc::{KYC_ATTRIBUTES, KycError, check_request};
use mc_datagw::release::{Consent, ReleaseInput, consent_decides, releasable};
use mc_datagw::source::{AttributeSource, DataGateway, SourceError, Subject};
use mc_store::{
    AccessTokenRecord, AttributesRecord, ClientRecord, DynStore, SubscriberRecord, SubscriberStatus,
};
use serde_json::{Value, json};

use crate::error::{ApiError, store_failure};
use crate::registry::{RegistryError, find_subscriber};
use crate::state::{AppState, now, random_token, sha256_hex};

// ---------------------------------------------------------------------------------------
// sources

/// Attributes provisioned in the gateway's store.
pub struct LocalSource {
    store: DynStore,
}

impl LocalSource {
    pub fn new(store: DynStore) -> Self {
        LocalSource { store }
    }
}

#[async_trait]
impl AttributeSource for LocalSource {
    fn name(&self) -> &str {
        LOCAL
    }

    async fn fetch(&self, subject: &Subject) -> Result<Attributes, SourceError> {
        match self.store.get_attributes(&subject.subscriber_id).await {
            Ok(Some(r)) => Ok(Attributes::from_json_lenient(&Value::Object(r.attributes)).0),
            Ok(None) => Ok(Attributes::default()),
            Err(e) => {
                tracing::error!(error = %e, "store failure reading attributes");
                Err(SourceError::Unreachable("store failure".into()))
            }
        }
    }
}

/// The local source and one HTTP source per configured back-end, in precedence order.
/// A back-end whose HTTP client cannot be built is logged and left out.
pub fn build(config: &DatagwConfig, store: DynStore, clock: Arc<dyn Clock>) -> DataGateway {
    let mut sources: Vec<Arc<dyn AttributeSource>> = vec![Arc::new(LocalSource::new(store))];
    for c in &config.http_sources {
        match HttpSource::new(c.clone(), clock.clone()) {
            Ok(s) => sources.push(Arc::new(s)),
            Err(e) => tracing::error!(error = %e, "attribute source left out"),
        }
    }
    DataGateway::new(sources, config)
}

/// The Data Gateway's part of the provider metadata: every claim a scope can release in
/// `claims_supported`, the KYC hash algorithm, and the identity products' versions.
pub fn publish(metadata: &mut Value) {
    if let Some(list) = metadata
        .get_mut("claims_supported")
        .and_then(Value::as_array_mut)
    {
        for c in mc_datagw::claims::supported_claims() {
            if !list.iter().any(|v| v == c) {
                list.push(json!(c));
            }
        }
    }
    if let Some(list) = metadata
        .get_mut("mobile_connect_version_supported")
        .and_then(Value::as_array_mut)
    {
        for (scope, version) in [
            ("openid mc_identity_signup", "mc_di_r2_v2.3"),
            ("openid mc_identity_nationalid", "mc_di_r2_v2.3"),
            ("openid mc_kyc_plain", "mc_di_r2_v2.3"),
            ("openid mc_kyc_hashed", "mc_di_r2_v2.3"),
            ("openid mc_phonenumber", "mc_di_v3.0"),
            ("openid mc_signup", "mc_di_v3.0"),
            ("openid mc_nationalid", "mc_di_v3.0"),
        ] {
            let entry = json!({ scope: version });
            if !list.contains(&entry) {
                list.push(entry);
            }
        }
    }
    metadata["userinfo_signing_alg_values_supported"] = json!(["RS256"]);
}

// ---------------------------------------------------------------------------------------
// provisioning

impl From<AttributeError> for RegistryError {
    fn from(e: AttributeError) -> Self {
        RegistryError::Invalid(e.to_string())
    }
}

/// Validates an attribute document strictly (before anything is written).
pub fn check_attributes(doc: &Value) -> Result<(), RegistryError> {
    Attributes::from_json(doc)?;
    Ok(())
}

/// The attribute document of the subscriber holding `msisdn` (`{}` when none).
pub async fn subscriber_attributes(store: &DynStore, msisdn: &str) -> Result<Value, RegistryError> {
    let sub = find_subscriber(store, msisdn).await?;
    let doc = store.get_attributes(&sub.id).await?;
    Ok(Value::Object(doc.map(|d| d.attributes).unwrap_or_default()))
}

/// Replaces (`merge = false`) or merge-patches (`merge = true`, RFC 7396: `null` removes)
/// the attributes of the subscriber holding `msisdn`; validated strictly against the
/// vocabulary. Returns the stored document.
pub async fn set_subscriber_attributes(
    store: &DynStore,
    msisdn: &str,
    doc: &Value,
    merge: bool,
) -> Result<Value, RegistryError> {
    let sub = find_subscriber(store, msisdn).await?;
    let attributes = if merge {
        let current = store
            .get_attributes(&sub.id)
            .await?
            .map(|d| Attributes::from_json_lenient(&Value::Object(d.attributes)).0)
            .unwrap_or_default();
        current.patched(doc)?
    } else {
        Attributes::from_json(doc)?
    };
    store
        .put_attributes(&AttributesRecord {
            subscriber_id: sub.id.clone(),
            attributes: attributes.to_map(),
            updated_at: now(),
        })
        .await?;
    Ok(Value::Object(attributes.to_map()))
}

/// Removes every attribute of the subscriber holding `msisdn`.
pub async fn clear_subscriber_attributes(
    store: &DynStore,
    msisdn: &str,
) -> Result<(), RegistryError> {
    let sub = find_subscriber(store, msisdn).await?;
    store.delete_attributes(&sub.id).await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// errors

/// How an Access Gateway request fails (token errors are the profile's `McError`s).
#[derive(Debug)]
pub enum DgError {
    Mc(McError),
    /// The token is valid but does not grant this resource (RFC 6750 §3.1).
    InsufficientScope(&'static str),
    Kyc(KycError),
    /// A mandatory header or parameter is missing or invalid.
    BadRequest(&'static str),
}

impl From<McError> for DgError {
    fn from(e: McError) -> Self {
        DgError::Mc(e)
    }
}

impl IntoResponse for DgError {
    fn into_response(self) -> Response {
        let (status, error, description, scope) = match self {
            DgError::Mc(e) => return ApiError::from(e).into_response(),
            DgError::InsufficientScope(scope) => (
                StatusCode::FORBIDDEN,
                "insufficient_scope",
                format!("The access token does not grant {scope}"),
                Some(scope),
            ),
            DgError::Kyc(e) => (
                StatusCode::BAD_REQUEST,
                "invalid_request",
                e.to_string(),
                None,
            ),
            DgError::BadRequest(why) => (
                StatusCode::BAD_REQUEST,
                "invalid_request",
                why.to_owned(),
                None,
            ),
        };
        let mut resp = (
            status,
            axum::Json(json!({"error": error, "error_description": description})),
        )
            .into_response();
        let h = resp.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(scope) = scope
            && let Ok(v) = HeaderValue::from_str(&format!(
                "Bearer error=\"insufficient_scope\", scope=\"{scope}\""
            ))
        {
            h.insert(header::WWW_AUTHENTICATE, v);
        }
        resp
    }
}

// ---------------------------------------------------------------------------------------
// the token

/// An access-token lookup made earlier in the same request: the throttle reads the token to
/// name the client the call is charged to (`crate::throttle`) and hands what it read to the
/// handler as a request extension, so that the handler does not read the same row again.
#[derive(Debug, Clone)]
pub struct TokenLookup {
    token_hash: String,
    /// What `find_access_token` answered: a token unrevoked and unexpired at the lookup.
    found: Option<AccessTokenRecord>,
}

impl TokenLookup {
    pub(crate) fn new(token_hash: String, found: Option<AccessTokenRecord>) -> Self {
        TokenLookup { token_hash, found }
    }

    /// The lookup's answer for the token hashing to `token_hash`, judged at `t` as the store
    /// judges it (`expires_at > now`); `None` when the lookup was of another token. A token
    /// that was not live at the lookup is not live at `t` either: revocation is final, and a
    /// token is stored before anyone holds it.
    fn answer_at(self, token_hash: &str, t: i64) -> Option<Option<AccessTokenRecord>> {
        (self.token_hash == token_hash).then(|| self.found.filter(|r| r.expires_at > t))
    }
}

/// The live access token `token` names; `looked_up`: the lookup made earlier in this
/// request, if any (read again when it is absent or of another token).
pub async fn access_token(
    s: &AppState,
    token: Option<String>,
    looked_up: Option<TokenLookup>,
) -> Result<AccessTokenRecord, McError> {
    let token = token
        .filter(|t| !t.is_empty())
        .ok_or(McError::MissingAccessToken)?;
    if token.len() > 256 {
        return Err(McError::InvalidAccessToken);
    }
    let token_hash = sha256_hex(&token);
    let t = now();
    let found = match looked_up.and_then(|l| l.answer_at(&token_hash, t)) {
        Some(found) => found,
        None => s
            .store
            .find_access_token(&token_hash, t)
            .await
            .map_err(store_failure)?,
    };
    found.ok_or(McError::InvalidAccessToken)
}

/// The consent `client_id` holds for `subscriber_id` (the consent store's items: scope
/// names and `claim:<name>`): the one input of the release decision that comes from the
/// consent records. No record: nothing was consented.
pub async fn consent_of(
    s: &AppState,
    subscriber_id: &str,
    client_id: &str,
) -> Result<Consent, McError> {
    let record = s
        .store
        .consent_for(subscriber_id, client_id)
        .await
        .map_err(store_failure)?;
    Ok(match record {
        Some(r) => Consent::Given(r.scopes.into_iter().collect()),
        None => Consent::none(),
    })
}

// ---------------------------------------------------------------------------------------
// userinfo and premiuminfo

/// The answer of `/userinfo` or `/premiuminfo`: JSON, or a signed JWT when the client
/// registered `userinfo_signed_response_alg`.
pub enum InfoAnswer {
    Json(Value),
    Jwt(String),
}

impl IntoResponse for InfoAnswer {
    fn into_response(self) -> Response {
        let mut resp = match self {
            InfoAnswer::Json(v) => axum::Json(v).into_response(),
            InfoAnswer::Jwt(jwt) => (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/jwt"),
                )],
                jwt,
            )
                .into_response(),
        };
        resp.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        resp
    }
}

/// Releases what the token, the client's registration, the `claims` parameter and the
/// subscriber's consent allow, in `shape`.
pub async fn info(
    s: &AppState,
    token: Option<String>,
    looked_up: Option<TokenLookup>,
    shape: Shape,
) -> Result<InfoAnswer, DgError> {
    let record = access_token(s, token, looked_up).await?;
    let (Some(sub), Some(subscriber_id)) = (record.sub.clone(), record.subscriber_id.clone())
    else {
        // A client-credentials token names no subscriber.
        return Err(DgError::InsufficientScope("openid"));
    };
    let client = s
        .store
        .get_client(&record.client_id)
        .await
        .map_err(store_failure)?
        .ok_or(McError::InvalidAccessToken)?;
    let requested = ClaimsRequest::from_param(record.claims.as_deref(), shape.member());
    let granted = Scope::parse(&record.scope).unwrap_or_default();
    let registered = Scope::from_values(client.allowed_scopes.iter().map(String::as_str));
    // Authentication-only tokens (no attribute or KYC scope, no `claims`) release `sub`
    // whatever the consent: no read for it.
    let kyc_scope = granted.contains("mc_kyc_plain") || granted.contains("mc_kyc_hashed");
    let consent = if kyc_scope || consent_decides(&granted, &requested) {
        consent_of(s, &subscriber_id, &client.client_id).await?
    } else {
        Consent::none()
    };
    let release = releasable(ReleaseInput {
        granted: &granted,
        registered: &registered,
        requested: &requested,
        consent: &consent,
    });

    // KYC match: checked before anything is read, so a bad request costs nothing.
    let plain = granted.contains("mc_kyc_plain") && consent.covers("mc_kyc_plain");
    let hashed = granted.contains("mc_kyc_hashed") && consent.covers("mc_kyc_hashed");
    let kyc = if plain || hashed {
        check_request(&requested, plain, hashed).map_err(DgError::Kyc)?
    } else {
        None
    };

    let claim_names: BTreeSet<&'static str> = release.keys().copied().collect();
    let mut needed = attributes_needed(&claim_names);
    if kyc.is_some() {
        needed.extend(KYC_ATTRIBUTES.iter().copied());
    }
    // The subscriber's number only when a claim is released (an authentication-only token
    // answers `sub` alone, which the token carries): one read fewer per login. Subscribers
    // are never deleted (tokens reference them), so skipping it skips no check.
    let msisdn = if claim_names.is_empty() && kyc.is_none() {
        None
    } else {
        let subscriber = s
            .store
            .get_subscriber(&subscriber_id)
            .await
            .map_err(store_failure)?
            .ok_or(McError::InvalidAccessToken)?;
        Msisdn::parse(&subscriber.msisdn)
    };
    let gathered = match &msisdn {
        Some(m) if !needed.is_empty() => {
            s.datagw
                .gather(
                    &Subject {
                        subscriber_id: subscriber_id.clone(),
                        msisdn: m.clone(),
                    },
                    &needed,
                )
                .await
        }
        _ => Default::default(),
    };

    let mut released: BTreeMap<&'static str, Value> = BTreeMap::new();
    for claim in &claim_names {
        let Some(value) = value_of(claim, msisdn.as_ref(), &gathered.attributes) else {
            continue;
        };
        if requested.get(claim).is_some_and(|r| !r.accepts(&value)) {
            continue;
        }
        released.insert(claim, value);
    }
    let mut body = mc_datagw::claims::render(shape, &sub, &released);
    if let (Some(k), Some(obj)) = (&kyc, body.as_object_mut()) {
        obj.extend(mc_datagw::kyc::answer(k, &gathered.attributes));
    }
    tracing::info!(
        client = %client.client_id,
        released = ?released.keys().collect::<Vec<_>>(),
        kyc = kyc.is_some(),
        degraded = gathered.unavailable.len(),
        "identity claims released"
    );
    sign_if_registered(s, &client, body).await
}

/// OIDC Core §5.3.2: a client that registered `userinfo_signed_response_alg` gets a JWS
/// with `iss` and `aud` added, signed with the gateway's current key (RS256).
async fn sign_if_registered(
    s: &AppState,
    client: &ClientRecord,
    mut body: Value,
) -> Result<InfoAnswer, DgError> {
    if client.metadata.userinfo_signed_response_alg.is_none() {
        return Ok(InfoAnswer::Json(body));
    }
    let t = now();
    if let Some(obj) = body.as_object_mut() {
        obj.insert("iss".into(), json!(s.config.issuer));
        obj.insert("aud".into(), json!(client.client_id));
        obj.insert("iat".into(), json!(t));
        obj.insert(
            "exp".into(),
            json!(t + i64::from(s.config.tokens.id_token_secs)),
        );
    }
    let jwt = s.keys.sign_jwt(&body).map_err(|e| {
        tracing::error!(error = %e, "userinfo signing failed");
        McError::ServerError
    })?;
    Ok(InfoAnswer::Jwt(jwt))
}

// ---------------------------------------------------------------------------------------
// account-takeover protection

/// What an ATP request carries besides the token.
#[derive(Debug, Default)]
pub struct AtpRequest {
    pub user_id_type: Option<String>,
    pub user_id: Option<String>,
    /// `maxAge` (hours, CAMARA) or `max_age`.
    pub max_age: Option<String>,
    pub correlation_id: Option<String>,
}

/// The ATP answer for a token granting `mc_atp` (client credentials).
pub async fn atp(
    s: &AppState,
    token: Option<String>,
    looked_up: Option<TokenLookup>,
    req: AtpRequest,
) -> Result<Value, DgError> {
    let record = access_token(s, token, looked_up).await?;
    let scope = Scope::parse(&record.scope).unwrap_or_default();
    if !scope.contains("mc_atp") {
        return Err(DgError::InsufficientScope("mc_atp"));
    }
    let kind = req.user_id_type.as_deref().ok_or(DgError::BadRequest(
        "Mandatory header User-ID-Type is missing",
    ))?;
    let kind = UserIdType::parse(kind).ok_or(DgError::BadRequest(
        "User-ID-Type must be msisdn, encr_msisdn or pcr",
    ))?;
    let user_id = req
        .user_id
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty() && u.len() <= 1024)
        .ok_or(DgError::BadRequest("Mandatory header User-ID is missing"))?;
    let sim_change = match req.max_age.as_deref() {
        Some(h) => {
            let hours: u32 = h
                .trim()
                .parse()
                .ok()
                .filter(|h| MAX_AGE_HOURS.contains(h))
                .ok_or(DgError::BadRequest("maxAge must be 1 to 2400 hours"))?;
            SimChange::Within { hours }
        }
        None if s.config.datagw.atp.sim_change_format == "date" => SimChange::Date,
        None => SimChange::Within {
            hours: s.config.datagw.atp.sim_change_window_hours,
        },
    };
    let subscriber = atp_subscriber(s, &record.client_id, kind, user_id)
        .await?
        .ok_or(McError::UnknownUserId)?;
    let provisioning: BTreeSet<&str> = VOCABULARY
        .iter()
        .filter(|a| a.group == Group::Provisioning)
        .map(|a| a.name)
        .collect();
    let gathered = match Msisdn::parse(&subscriber.msisdn) {
        Some(m) => {
            s.datagw
                .gather(
                    &Subject {
                        subscriber_id: subscriber.id.clone(),
                        msisdn: m,
                    },
                    &provisioning,
                )
                .await
        }
        None => Default::default(),
    };
    let facts = AtpFacts::from_attributes(
        &gathered.attributes,
        subscriber.status == SubscriberStatus::Active,
        subscriber.status == SubscriberStatus::Suspended,
        subscriber.created_at,
    );
    let mut answer = mc_datagw::atp::answer(&facts, sim_change, now());
    let correlation_id = req
        .correlation_id
        .filter(|c| !c.is_empty() && c.len() <= 256 && !c.chars().any(char::is_control))
        .unwrap_or_else(random_token);
    answer.insert("correlation_id".into(), json!(correlation_id));
    tracing::info!(client = %record.client_id, subscriber = %subscriber.id, "ATP answered");
    Ok(Value::Object(answer))
}

/// The subscriber an ATP request names: by number, encrypted number, or the client's PCR.
async fn atp_subscriber(
    s: &AppState,
    client_id: &str,
    kind: UserIdType,
    user_id: &str,
) -> Result<Option<SubscriberRecord>, DgError> {
    let by_msisdn = |m: Msisdn| async move {
        s.store
            .find_subscriber_by_msisdn(m.as_str())
            .await
            .map_err(store_failure)
    };
    Ok(match kind {
        UserIdType::Msisdn => match Msisdn::parse(user_id) {
            Some(m) => by_msisdn(m).await?,
            None => return Err(DgError::BadRequest("User-ID is not an MSISDN")),
        },
        UserIdType::EncrMsisdn => {
            let Some(LoginHint::EncryptedMsisdn(candidates)) =
                LoginHint::parse(&format!("ENCR_MSISDN:{user_id}"))
            else {
                return Err(DgError::BadRequest("User-ID is not an encrypted MSISDN"));
            };
            let keys = s.clone();
            let m = tokio::task::spawn_blocking(move || keys.keys.decrypt_msisdn(&candidates))
                .await
                .map_err(|_| McError::ServerError)?
                .ok_or(DgError::BadRequest("User-ID could not be decrypted"))?;
            by_msisdn(m).await?
        }
        UserIdType::Pcr => {
            let client = s
                .store
                .get_client(client_id)
                .await
                .map_err(store_failure)?
                .ok_or(McError::InvalidAccessToken)?;
            match s
                .store
                .subscriber_for_pcr(&client.sector, user_id)
                .await
                .map_err(store_failure)?
            {
                Some(id) => s
                    .store
                    .get_subscriber(&id)
                    .await
                    .map_err(store_failure)?
                    .filter(|sub| sub.status != SubscriberStatus::Retired),
                None => None,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(expires_at: i64) -> AccessTokenRecord {
        AccessTokenRecord {
            token_hash: sha256_hex("t"),
            session_id: Some("s".into()),
            client_id: "c".into(),
            subscriber_id: Some("sub".into()),
            sub: Some("pcr".into()),
            scope: "openid".into(),
            expires_at,
            issued_at: expires_at - 3600,
            family_id: None,
            claims: None,
        }
    }

    #[test]
    fn a_token_lookup_answers_only_for_its_token_and_by_the_stores_expiry_rule() {
        let hash = sha256_hex("t");
        let found = |expires_at| TokenLookup::new(hash.clone(), Some(record(expires_at)));
        assert_eq!(found(101).answer_at(&hash, 100), Some(Some(record(101))));
        // Expired since the lookup: `expires_at > now`, as `find_access_token` has it.
        assert_eq!(found(100).answer_at(&hash, 100), Some(None));
        // Not live at the lookup: not live now.
        assert_eq!(
            TokenLookup::new(hash.clone(), None).answer_at(&hash, 100),
            Some(None)
        );
        // Another token's lookup says nothing about this one: it is read.
        assert_eq!(found(101).answer_at(&sha256_hex("other"), 100), None);
        assert_eq!(
            TokenLookup::new(hash.clone(), None).answer_at(&sha256_hex("other"), 100),
            None
        );
    }
}
