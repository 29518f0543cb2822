//! Managing Discovery's data: operators, applications (an SP's discovery registration),
//! per-operator credentials, single numbers and IP ranges. Shared by the admin REST API
//! and the `mobileconnect discovery` CLI; every input is validated here.

use std::collections::BTreeMap;

use mc_store::{
    DiscoveryAppRecord, DiscoveryStore, IpRangeRecord, NumberEntry, NumberKind,
    OperatorCredentialRecord, OperatorRecord, StoreError,
};
use serde::{Deserialize, Serialize};

use crate::api::credential_label;
use crate::crypto::{OperatorKey, Secrets, random_token, sha256_hex};
use crate::ip::Cidr;
use crate::numbers::parse_digits;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{0}")]
    Invalid(String),
    #[error("not found")]
    NotFound,
    #[error("already exists: {0}")]
    Conflict(&'static str),
    #[error("store: {0}")]
    Store(StoreError),
}

impl From<StoreError> for RegistryError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => RegistryError::NotFound,
            StoreError::Conflict(what) => RegistryError::Conflict(what),
            other => RegistryError::Store(other),
        }
    }
}

type Result<T> = std::result::Result<T, RegistryError>;

fn invalid(s: impl Into<String>) -> RegistryError {
    RegistryError::Invalid(s.into())
}

/// The link relations an operator may name (digest §2.5).
pub const RELS: &[&str] = &[
    "authorization",
    "token",
    "userinfo",
    "premiuminfo",
    "jwks",
    "tokenrevoke",
    "tokenrefresh",
    "openid-configuration",
    "issuer",
    "scope",
];

/// An operator as the admin gives it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorSpec {
    pub id: String,
    pub mcc: String,
    pub mnc: String,
    pub name: String,
    pub country: String,
    pub currency: String,
    /// rel → href; `authorization`, `token` and `issuer` are required.
    pub links: BTreeMap<String, String>,
    /// The RSA public key (JWK, or a JWKS holding an `enc` key) `subscriber_id`s are
    /// encrypted to.
    #[serde(default)]
    pub encryption_jwk: Option<serde_json::Value>,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

fn check_operator(spec: &OperatorSpec) -> Result<()> {
    let id_ok = (1..=64).contains(&spec.id.len())
        && spec
            .id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if !id_ok {
        return Err(invalid("id: 1 to 64 characters of a-z, 0-9, '_' and '-'"));
    }
    let digits =
        |s: &str, lens: &[usize]| lens.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(&spec.mcc, &[3]) {
        return Err(invalid("mcc: 3 digits"));
    }
    if !digits(&spec.mnc, &[2, 3]) {
        return Err(invalid("mnc: 2 or 3 digits"));
    }
    for (field, v) in [("name", &spec.name), ("country", &spec.country)] {
        if v.trim().is_empty() || v.len() > 128 {
            return Err(invalid(format!("{field}: 1 to 128 characters")));
        }
    }
    if !(spec.currency.len() == 3 && spec.currency.bytes().all(|b| b.is_ascii_uppercase())) {
        return Err(invalid("currency: an ISO 4217 code such as GBP"));
    }
    for (rel, href) in &spec.links {
        if !RELS.contains(&rel.as_str()) {
            return Err(invalid(format!(
                "links: unknown rel {rel:?} (known: {})",
                RELS.join(", ")
            )));
        }
        if rel == "scope" {
            continue;
        }
        let ok = url::Url::parse(href).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
        if !ok {
            return Err(invalid(format!("links.{rel}: an http(s) URL")));
        }
    }
    for rel in ["authorization", "token", "issuer"] {
        if !spec.links.contains_key(rel) {
            return Err(invalid(format!("links.{rel} is required")));
        }
    }
    Ok(())
}

fn jwk_text(spec: &OperatorSpec) -> Result<Option<String>> {
    match &spec.encryption_jwk {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(v) => {
            let text = v.to_string();
            OperatorKey::from_jwk(&text).map_err(|e| invalid(format!("encryption_jwk: {e}")))?;
            Ok(Some(text))
        }
    }
}

fn now() -> i64 {
    (crate::api::now_ms() / 1000) as i64
}

fn record_of(spec: &OperatorSpec, created_at: i64) -> Result<OperatorRecord> {
    check_operator(spec)?;
    Ok(OperatorRecord {
        id: spec.id.clone(),
        mcc: spec.mcc.clone(),
        mnc: spec.mnc.clone(),
        name: spec.name.trim().to_owned(),
        country: spec.country.trim().to_owned(),
        currency: spec.currency.clone(),
        links: spec.links.clone(),
        encryption_jwk: jwk_text(spec)?,
        enabled: spec.enabled,
        created_at,
        updated_at: now(),
    })
}

pub async fn create_operator(
    store: &dyn DiscoveryStore,
    spec: &OperatorSpec,
) -> Result<OperatorRecord> {
    let r = record_of(spec, now())?;
    store.insert_operator(&r).await?;
    Ok(r)
}

/// Replaces an operator (`id` from the path wins; the spec's own is checked all the same,
/// so a spec valid here is valid for [`create_operator`]).
pub async fn update_operator(
    store: &dyn DiscoveryStore,
    id: &str,
    spec: &OperatorSpec,
) -> Result<OperatorRecord> {
    check_operator(spec)?;
    let old = store
        .get_operator(id)
        .await?
        .ok_or(RegistryError::NotFound)?;
    let mut spec = spec.clone();
    spec.id = id.to_owned();
    let r = record_of(&spec, old.created_at)?;
    store.update_operator(&r).await?;
    Ok(r)
}

/// The admin's view of an operator.
pub fn operator_view(o: &OperatorRecord) -> serde_json::Value {
    serde_json::json!({
        "id": o.id,
        "mcc": o.mcc,
        "mnc": o.mnc,
        "name": o.name,
        "country": o.country,
        "currency": o.currency,
        "links": o.links,
        "encryption_jwk": o.encryption_jwk.as_deref().and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok()),
        "enabled": o.enabled,
        "created_at": o.created_at,
        "updated_at": o.updated_at,
    })
}

/// An application as the admin gives it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AppSpec {
    /// Generated when absent.
    #[serde(default)]
    pub client_id: Option<String>,
    pub name: String,
    pub short_name: String,
    pub redirect_uris: Vec<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn check_app(spec: &AppSpec) -> Result<()> {
    if let Some(id) = &spec.client_id {
        let ok = (1..=128).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !ok {
            return Err(invalid("client_id: 1 to 128 of A-Z a-z 0-9 - _ ."));
        }
    }
    if spec.name.trim().is_empty() || spec.name.len() > 128 {
        return Err(invalid("name: 1 to 128 characters"));
    }
    if spec.short_name.trim().is_empty() || spec.short_name.len() > 64 {
        return Err(invalid("short_name: 1 to 64 characters"));
    }
    if spec.redirect_uris.is_empty() || spec.redirect_uris.len() > 20 {
        return Err(invalid("redirect_uris: 1 to 20 URLs"));
    }
    for u in &spec.redirect_uris {
        let ok = url::Url::parse(u)
            .is_ok_and(|p| matches!(p.scheme(), "http" | "https") && p.fragment().is_none());
        if !ok || u.len() > 2048 {
            return Err(invalid(format!(
                "redirect_uris: {u:?} is not an http(s) URL without a fragment"
            )));
        }
    }
    Ok(())
}

/// Registers an application; returns it and its discovery client secret (shown once).
pub async fn create_app(
    store: &dyn DiscoveryStore,
    spec: &AppSpec,
    secret: Option<&str>,
) -> Result<(DiscoveryAppRecord, String)> {
    check_app(spec)?;
    let rng = |_| invalid("no randomness available");
    let client_id = match &spec.client_id {
        Some(id) => id.clone(),
        None => random_token().map_err(rng)?,
    };
    let secret = match secret {
        Some(s) if s.len() >= 16 => s.to_owned(),
        Some(_) => return Err(invalid("client_secret: at least 16 characters")),
        None => random_token().map_err(rng)?,
    };
    let r = DiscoveryAppRecord {
        client_id,
        secret_hash: sha256_hex(&secret),
        name: spec.name.trim().to_owned(),
        short_name: spec.short_name.trim().to_owned(),
        redirect_uris: spec.redirect_uris.clone(),
        enabled: spec.enabled,
        created_at: now(),
    };
    store.insert_discovery_app(&r).await?;
    Ok((r, secret))
}

pub async fn update_app(
    store: &dyn DiscoveryStore,
    client_id: &str,
    spec: &AppSpec,
) -> Result<DiscoveryAppRecord> {
    check_app(spec)?;
    let mut r = store
        .get_discovery_app(client_id)
        .await?
        .ok_or(RegistryError::NotFound)?;
    r.name = spec.name.trim().to_owned();
    r.short_name = spec.short_name.trim().to_owned();
    r.redirect_uris = spec.redirect_uris.clone();
    r.enabled = spec.enabled;
    store.update_discovery_app(&r).await?;
    Ok(r)
}

/// A new discovery client secret for an application (the old one stops working).
pub async fn rotate_app_secret(store: &dyn DiscoveryStore, client_id: &str) -> Result<String> {
    let mut r = store
        .get_discovery_app(client_id)
        .await?
        .ok_or(RegistryError::NotFound)?;
    let secret = random_token().map_err(|_| invalid("no randomness available"))?;
    r.secret_hash = sha256_hex(&secret);
    store.update_discovery_app(&r).await?;
    Ok(secret)
}

/// The admin's view of an application (never the secret).
pub fn app_view(a: &DiscoveryAppRecord) -> serde_json::Value {
    serde_json::json!({
        "client_id": a.client_id,
        "name": a.name,
        "short_name": a.short_name,
        "redirect_uris": a.redirect_uris,
        "enabled": a.enabled,
        "created_at": a.created_at,
    })
}

/// What an application uses at one operator.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialSpec {
    pub client_id: String,
    pub client_secret: String,
    #[serde(default)]
    pub client_name: Option<String>,
}

/// Sets an application's credentials at an operator; the secret is sealed at rest.
pub async fn put_credential(
    store: &dyn DiscoveryStore,
    secrets: &Secrets,
    app_id: &str,
    operator_id: &str,
    spec: &CredentialSpec,
) -> Result<()> {
    if spec.client_id.is_empty() || spec.client_id.len() > 256 {
        return Err(invalid("client_id: 1 to 256 characters"));
    }
    if spec.client_secret.is_empty() || spec.client_secret.len() > 512 {
        return Err(invalid("client_secret: 1 to 512 characters"));
    }
    if spec
        .client_name
        .as_ref()
        .is_some_and(|n| n.trim().is_empty() || n.len() > 64)
    {
        return Err(invalid("client_name: 1 to 64 characters"));
    }
    let sealed = secrets
        .seal(&credential_label(app_id, operator_id), &spec.client_secret)
        .map_err(|_| invalid("cannot seal the secret"))?;
    let r = OperatorCredentialRecord {
        app_id: app_id.to_owned(),
        operator_id: operator_id.to_owned(),
        client_id: spec.client_id.clone(),
        client_secret_sealed: sealed,
        client_name: spec.client_name.clone(),
        updated_at: now(),
    };
    store.put_operator_credential(&r).await?;
    Ok(())
}

/// The admin's view of a credential (the secret is not shown).
pub fn credential_view(c: &OperatorCredentialRecord) -> serde_json::Value {
    serde_json::json!({
        "operator_id": c.operator_id,
        "client_id": c.client_id,
        "client_name": c.client_name,
        "updated_at": c.updated_at,
    })
}

/// A number of `kind` from text: a range prefix (1–15 digits) or a ported MSISDN.
pub fn parse_number(kind: NumberKind, raw: &str) -> Result<u64> {
    match kind {
        NumberKind::Range => {
            parse_digits(raw).ok_or_else(|| invalid("a prefix of 1 to 15 digits, no leading 0"))
        }
        NumberKind::Ported => mc_core::msisdn::Msisdn::parse(raw)
            .and_then(|m| m.as_str().parse().ok())
            .ok_or_else(|| invalid("an international MSISDN of 7 to 15 digits")),
    }
}

/// Sets one range or ported number.
pub async fn put_number(
    store: &dyn DiscoveryStore,
    kind: NumberKind,
    raw: &str,
    operator_id: &str,
) -> Result<u64> {
    let number = parse_number(kind, raw)?;
    store
        .get_operator(operator_id)
        .await?
        .ok_or_else(|| invalid("unknown operator"))?;
    store
        .upsert_numbers(
            &[NumberEntry {
                kind,
                number,
                operator_id: operator_id.to_owned(),
            }],
            0,
        )
        .await?;
    Ok(number)
}

/// Sets a mobile-data IP range; returns its canonical text.
pub async fn put_ip_range(
    store: &dyn DiscoveryStore,
    cidr: &str,
    operator_id: &str,
) -> Result<String> {
    let c = Cidr::parse(cidr).ok_or_else(|| {
        invalid("cidr: a block such as 10.64.0.0/10 or 2001:db8::/32, host bits zero")
    })?;
    store
        .get_operator(operator_id)
        .await?
        .ok_or_else(|| invalid("unknown operator"))?;
    let text = c.to_string();
    store
        .put_ip_range(&IpRangeRecord {
            cidr: text.clone(),
            operator_id: operator_id.to_owned(),
        })
        .await?;
    Ok(text)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn spec() -> OperatorSpec {
        let mut links = BTreeMap::new();
        for rel in ["authorization", "token", "issuer"] {
            links.insert(rel.to_string(), format!("https://op.example/{rel}"));
        }
        OperatorSpec {
            id: "op-a".into(),
            mcc: "234".into(),
            mnc: "15".into(),
            name: "Op A".into(),
            country: "United Kingdom".into(),
            currency: "GBP".into(),
            links,
            encryption_jwk: None,
            enabled: true,
        }
    }

    #[test]
    fn operator_checks() {
        assert!(check_operator(&spec()).is_ok());
        type Edit = Box<dyn Fn(&mut OperatorSpec)>;
        let bad: Vec<Edit> = vec![
            Box::new(|s| s.id = "Op A".into()),
            Box::new(|s| s.mcc = "23".into()),
            Box::new(|s| s.mnc = "1".into()),
            Box::new(|s| s.currency = "gbp".into()),
            Box::new(|s| s.name = " ".into()),
            Box::new(|s| {
                s.links.remove("token");
            }),
            Box::new(|s| {
                s.links.insert("nonsense".into(), "https://x".into());
            }),
            Box::new(|s| {
                s.links.insert("jwks".into(), "ftp://x".into());
            }),
        ];
        for f in bad {
            let mut s = spec();
            f(&mut s);
            assert!(check_operator(&s).is_err(), "{s:?}");
        }
        let mut s = spec();
        s.encryption_jwk = Some(serde_json::json!({"kty": "RSA", "n": "AQAB", "e": "AQAB"}));
        assert!(jwk_text(&s).is_err());
    }

    #[test]
    fn numbers_by_kind() {
        assert_eq!(parse_number(NumberKind::Range, "44").unwrap(), 44);
        assert!(parse_number(NumberKind::Ported, "44").is_err());
        assert_eq!(
            parse_number(NumberKind::Ported, "+447700900301").unwrap(),
            447_700_900_301
        );
    }
}
