//! One operator's Identity Gateway as the SP sees it: provider metadata (digest §3),
//! endpoints (discovery links overridden by metadata, as the Java SDK's `OperatorUrls`),
//! the SP's credentials there, and the operator's JWKS (cached; an unknown `kid` refetches).

use std::sync::{Arc, Mutex};

use mc_core::version::McVersion;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::discovery::DiscoveredOperator;
use crate::error::{Error, IdTokenError, transport};
use crate::jose::{JwkSet, SigningKey};
use crate::{Ctx, MobileConnect, Secret};

/// `/.well-known/openid-configuration` (digest §3); members not named here are in `extra`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProviderMetadata {
    pub issuer: String,
    pub authorization_endpoint: Option<String>,
    pub token_endpoint: Option<String>,
    pub userinfo_endpoint: Option<String>,
    pub premiuminfo_endpoint: Option<String>,
    pub jwks_uri: Option<String>,
    pub si_authorization_endpoint: Option<String>,
    pub backchannel_authentication_endpoint: Option<String>,
    pub revocation_endpoint: Option<String>,
    #[serde(default)]
    pub scopes_supported: Vec<String>,
    #[serde(default)]
    pub acr_values_supported: Vec<String>,
    #[serde(default)]
    pub id_token_signing_alg_values_supported: Vec<String>,
    #[serde(default)]
    pub code_challenge_methods_supported: Vec<String>,
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Vec<String>,
    /// Supported Mobile Connect versions (absent: only `mc_v1.1`, digest §1.2).
    pub mc_version: Option<Vec<String>>,
    pub login_hint_methods_supported: Option<Vec<String>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ProviderMetadata {
    /// The operator's device-initiated and server-initiated versions.
    pub fn versions(&self) -> Vec<McVersion> {
        crate::version::supported_versions(self.mc_version.as_deref())
    }

    /// Whether `login_hint` method `method` (`MSISDN`, `ENCR_MSISDN`, `PCR`) may be sent.
    /// Without the list, every method is assumed (the PHP SDK falls back to versions).
    pub fn supports_login_hint(&self, method: &str) -> bool {
        let alias = match method {
            "ENCR_MSISDN" => "ENCRYPTED_MSISDN",
            "ENCRYPTED_MSISDN" => "ENCR_MSISDN",
            other => other,
        };
        self.login_hint_methods_supported.as_ref().is_none_or(|l| {
            l.iter()
                .any(|m| m.eq_ignore_ascii_case(method) || m.eq_ignore_ascii_case(alias))
        })
    }
}

/// The endpoints used, after metadata overrode discovery links.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Endpoints {
    pub authorization: String,
    pub token: String,
    pub userinfo: Option<String>,
    pub premiuminfo: Option<String>,
    pub jwks: Option<String>,
    pub si_authorization: Option<String>,
    pub revocation: Option<String>,
}

/// How the SP authenticates at the token endpoint (digest §5.1).
#[derive(Debug, Clone)]
pub enum TokenAuth {
    /// HTTP Basic with the form-encoded client_id and secret (RFC 6749 §2.3.1) — what
    /// every GSMA SDK does.
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
    /// A signed client assertion (RFC 7523, OIDC Core §9).
    PrivateKeyJwt(Arc<SigningKey>),
}

/// The SP's credentials at one operator.
#[derive(Debug, Clone)]
pub struct ClientCredentials {
    pub client_id: String,
    pub client_secret: Option<Secret>,
    pub auth: TokenAuth,
    /// The registered application short name (`client_name` of `mc_authz`).
    pub client_name: Option<String>,
}

impl ClientCredentials {
    /// client_secret_basic.
    pub fn secret_basic(client_id: &str, secret: &str) -> ClientCredentials {
        ClientCredentials {
            client_id: client_id.to_owned(),
            client_secret: Some(Secret::new(secret)),
            auth: TokenAuth::ClientSecretBasic,
            client_name: None,
        }
    }

    /// client_secret_post.
    pub fn secret_post(client_id: &str, secret: &str) -> ClientCredentials {
        ClientCredentials {
            auth: TokenAuth::ClientSecretPost,
            ..Self::secret_basic(client_id, secret)
        }
    }

    /// private_key_jwt.
    pub fn private_key_jwt(client_id: &str, key: Arc<SigningKey>) -> ClientCredentials {
        ClientCredentials {
            client_id: client_id.to_owned(),
            client_secret: None,
            auth: TokenAuth::PrivateKeyJwt(key),
            client_name: None,
        }
    }

    /// Sets the application short name sent with `mc_authz`.
    pub fn with_client_name(mut self, name: &str) -> ClientCredentials {
        self.client_name = Some(name.to_owned());
        self
    }
}

struct JwksCache {
    keys: Option<JwkSet>,
    fetched_at: i64,
}

/// An operator's Identity Gateway, ready for logins. Cheap to clone.
#[derive(Clone)]
pub struct Operator {
    pub(crate) ctx: Arc<Ctx>,
    pub(crate) metadata: Arc<ProviderMetadata>,
    pub(crate) endpoints: Arc<Endpoints>,
    pub(crate) credentials: ClientCredentials,
    pub(crate) discovered: Option<Arc<DiscoveredOperator>>,
    jwks: Arc<Mutex<JwksCache>>,
}

impl std::fmt::Debug for Operator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Operator")
            .field("issuer", &self.metadata.issuer)
            .field("client_id", &self.credentials.client_id)
            .finish_non_exhaustive()
    }
}

fn well_known(issuer: &str) -> String {
    format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    )
}

impl MobileConnect {
    /// An operator known only by its issuer URL (OpenID Connect Discovery 1.0): the
    /// metadata's `issuer` must be that URL (a trailing `/` aside).
    pub async fn operator_from_issuer(
        &self,
        issuer: &str,
        credentials: ClientCredentials,
    ) -> Result<Operator, Error> {
        let metadata = self.metadata(&well_known(issuer)).await?;
        if metadata.issuer != issuer && metadata.issuer != issuer.trim_end_matches('/') {
            return Err(Error::Metadata(format!(
                "issuer {:?} in the metadata is not {issuer:?}",
                metadata.issuer
            )));
        }
        let endpoints = endpoints(&metadata, None)?;
        Ok(Operator::new(
            self.ctx.clone(),
            metadata,
            endpoints,
            credentials,
            None,
        ))
    }

    /// The operator a discovery answer names: its metadata from the `openid-configuration`
    /// link (or `issuer` + `/.well-known/openid-configuration`), the SP's credentials from
    /// the answer (client_secret_basic), `client_name` from the answer.
    pub async fn operator_from_discovery(
        &self,
        found: &DiscoveredOperator,
    ) -> Result<Operator, Error> {
        let url = match (found.link("openid-configuration"), found.link("issuer")) {
            (Some(u), _) => u.to_owned(),
            (None, Some(iss)) => well_known(iss),
            (None, None) => {
                return Err(Error::Metadata(
                    "the discovery answer links neither openid-configuration nor issuer".into(),
                ));
            }
        };
        let metadata = self.metadata(&url).await?;
        if let Some(iss) = found.link("issuer")
            && iss != metadata.issuer
        {
            return Err(Error::Metadata(format!(
                "discovery names issuer {iss:?}, the metadata {:?}",
                metadata.issuer
            )));
        }
        let endpoints = endpoints(&metadata, Some(found))?;
        let credentials = ClientCredentials {
            client_id: found.client_id.clone(),
            client_secret: found.client_secret.clone(),
            auth: TokenAuth::ClientSecretBasic,
            client_name: found.client_name.clone(),
        };
        Ok(Operator::new(
            self.ctx.clone(),
            metadata,
            endpoints,
            credentials,
            Some(Arc::new(found.clone())),
        ))
    }

    /// Provider metadata at `url`, cached for `metadata_ttl_secs`; a failed refresh serves
    /// the expired copy.
    pub async fn metadata(&self, url: &str) -> Result<ProviderMetadata, Error> {
        let now = self.ctx.now();
        let cached = self
            .ctx
            .metadata
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(url)
            .cloned();
        if let Some((m, at)) = &cached
            && now - at < self.ctx.options.metadata_ttl_secs
        {
            return Ok(m.clone());
        }
        match fetch_json::<ProviderMetadata>(&self.ctx, "provider metadata", url).await {
            Ok(m) => {
                self.ctx
                    .metadata
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(url.to_owned(), (m.clone(), now));
                Ok(m)
            }
            Err(e @ Error::Transport { .. }) => cached.map(|(m, _)| m).ok_or(e),
            Err(Error::InvalidResponse { detail, .. }) => Err(Error::Metadata(detail)),
            Err(e) => Err(e),
        }
    }
}

/// Discovery links, overridden by metadata members when present.
fn endpoints(m: &ProviderMetadata, found: Option<&DiscoveredOperator>) -> Result<Endpoints, Error> {
    let link = |rel: &str| found.and_then(|f| f.link(rel)).map(str::to_owned);
    let pick = |meta: &Option<String>, rel: &str| meta.clone().or_else(|| link(rel));
    Ok(Endpoints {
        authorization: pick(&m.authorization_endpoint, "authorization")
            .ok_or_else(|| Error::Metadata("no authorization_endpoint".into()))?,
        token: pick(&m.token_endpoint, "token")
            .ok_or_else(|| Error::Metadata("no token_endpoint".into()))?,
        userinfo: pick(&m.userinfo_endpoint, "userinfo"),
        premiuminfo: pick(&m.premiuminfo_endpoint, "premiuminfo"),
        jwks: pick(&m.jwks_uri, "jwks"),
        si_authorization: m.si_authorization_endpoint.clone(),
        revocation: pick(&m.revocation_endpoint, "tokenrevoke"),
    })
}

impl Operator {
    fn new(
        ctx: Arc<Ctx>,
        metadata: ProviderMetadata,
        endpoints: Endpoints,
        credentials: ClientCredentials,
        discovered: Option<Arc<DiscoveredOperator>>,
    ) -> Operator {
        Operator {
            ctx,
            metadata: Arc::new(metadata),
            endpoints: Arc::new(endpoints),
            credentials,
            discovered,
            jwks: Arc::new(Mutex::new(JwksCache {
                keys: None,
                fetched_at: i64::MIN,
            })),
        }
    }

    pub fn issuer(&self) -> &str {
        &self.metadata.issuer
    }

    pub fn metadata(&self) -> &ProviderMetadata {
        &self.metadata
    }

    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    pub fn client_id(&self) -> &str {
        &self.credentials.client_id
    }

    /// The discovery answer this operator came from, if any.
    pub fn discovered(&self) -> Option<&DiscoveredOperator> {
        self.discovered.as_deref()
    }

    /// A copy that authenticates with other credentials (e.g. private_key_jwt).
    pub fn with_credentials(&self, credentials: ClientCredentials) -> Operator {
        Operator {
            credentials,
            ..self.clone()
        }
    }

    pub(crate) fn now(&self) -> i64 {
        self.ctx.now()
    }

    /// The operator's keys: cached for `jwks_ttl_secs`; with `need_kid` not in the cached
    /// set, refetched (at most every `jwks_min_refresh_secs`). A failed refetch keeps the
    /// cached keys.
    pub async fn jwks(&self, need_kid: Option<&str>) -> Result<JwkSet, IdTokenError> {
        let uri = self
            .endpoints
            .jwks
            .clone()
            .ok_or_else(|| IdTokenError::Jwks("the operator publishes no jwks_uri".into()))?;
        let now = self.now();
        let opts = &self.ctx.options;
        let (cached, age) = {
            let c = self.jwks.lock().unwrap_or_else(|p| p.into_inner());
            (c.keys.clone(), now.saturating_sub(c.fetched_at))
        };
        let unknown_kid = match (&cached, need_kid) {
            (Some(k), Some(kid)) => !k.has_kid(kid),
            _ => false,
        };
        let refetch = cached.is_none()
            || age >= opts.jwks_ttl_secs
            || (unknown_kid && age >= opts.jwks_min_refresh_secs);
        if !refetch {
            return cached.ok_or_else(|| IdTokenError::Jwks("no keys".into()));
        }
        match fetch_json::<JwkSet>(&self.ctx, "jwks", &uri).await {
            Ok(keys) => {
                let mut c = self.jwks.lock().unwrap_or_else(|p| p.into_inner());
                c.keys = Some(keys.clone());
                c.fetched_at = now;
                Ok(keys)
            }
            Err(e) => cached.ok_or_else(|| IdTokenError::Jwks(e.to_string())),
        }
    }
}

/// GET `url` as JSON (200 only).
pub(crate) async fn fetch_json<T: serde::de::DeserializeOwned>(
    ctx: &Ctx,
    endpoint: &'static str,
    url: &str,
) -> Result<T, Error> {
    let resp = ctx
        .http
        .get(url)
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|e| transport(endpoint, e))?;
    let status = resp.status().as_u16();
    if status != 200 {
        return Err(Error::InvalidResponse {
            endpoint,
            detail: format!("HTTP {status}"),
        });
    }
    resp.json::<T>().await.map_err(|e| Error::InvalidResponse {
        endpoint,
        detail: e.without_url().to_string(),
    })
}

/// Turns a non-2xx OAuth answer into [`Error::Protocol`] (JSON `error` and
/// `error_description`/`description`, or a `WWW-Authenticate` challenge).
pub(crate) async fn protocol_error(endpoint: &'static str, resp: reqwest::Response) -> Error {
    let status = resp.status().as_u16();
    let challenge = resp
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_owned);
    let (mut error, mut description) = (
        text("error"),
        text("error_description").or_else(|| text("description")),
    );
    if error.is_none()
        && let Some(c) = &challenge
    {
        error = challenge_param(c, "error");
        description = description.or_else(|| challenge_param(c, "error_description"));
    }
    Error::Protocol {
        endpoint,
        status,
        error: error.unwrap_or_else(|| format!("http_{status}")),
        description: description.unwrap_or_default(),
    }
}

/// `name="value"` from a `WWW-Authenticate: Bearer …` challenge.
fn challenge_param(challenge: &str, name: &str) -> Option<String> {
    let start = challenge.find(&format!("{name}=\""))? + name.len() + 2;
    let rest = &challenge[start..];
    Some(rest[..rest.find('"')?].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_params_are_read() {
        let c = r#"Bearer error="invalid_token", error_description="The access token expired""#;
        assert_eq!(
            challenge_param(c, "error").as_deref(),
            Some("invalid_token")
        );
        assert_eq!(
            challenge_param(c, "error_description").as_deref(),
            Some("The access token expired")
        );
        assert_eq!(challenge_param(c, "scope"), None);
    }
}
