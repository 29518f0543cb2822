//! Token endpoint request rules: client authentication as presented, and the
//! `authorization_code` grant's parameters (RFC 6749 §2.3, §4.1.3; digest §5.1).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::error::McError;
use crate::params::RawParams;
use crate::scope::Scope;

/// How the client presented its credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
}

/// Credentials as presented, not yet verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresentedCredentials {
    pub client_id: String,
    pub secret: String,
    pub method: AuthMethod,
}

/// Proof that a client's secret was verified; grant handlers require it.
#[derive(Debug, Clone)]
pub struct ClientAuthenticated {
    client_id: String,
}

impl ClientAuthenticated {
    /// Minted only by the gateway's client authentication (secret or `private_key_jwt`
    /// assertion, see `mc_gateway::client_auth`) after it verified the credentials.
    pub fn mint_after_verification(client_id: String) -> Self {
        ClientAuthenticated { client_id }
    }

    /// The authenticated client.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }
}

/// Reads `Authorization: Basic` and the body's `client_id`/`client_secret`. The Java SDK
/// sends both; that is accepted when they agree (digest §5.1) and refused when they differ.
pub fn presented_credentials(
    authorization: Option<&str>,
    body: &RawParams,
) -> Result<PresentedCredentials, McError> {
    let basic = authorization.map(parse_basic).transpose()?;
    let post = match (body.get("client_id"), body.get("client_secret")) {
        (Some(id), Some(secret)) => Some((id.to_owned(), secret.to_owned())),
        _ => None,
    };
    match (basic, post) {
        (Some(b), Some(p)) if b == p => Ok(PresentedCredentials {
            client_id: b.0,
            secret: b.1,
            method: AuthMethod::ClientSecretBasic,
        }),
        (Some(_), Some(_)) => Err(McError::InvalidClient),
        (Some((client_id, secret)), None) => {
            if body.get("client_id").is_some_and(|id| id != client_id) {
                return Err(McError::InvalidClient);
            }
            Ok(PresentedCredentials {
                client_id,
                secret,
                method: AuthMethod::ClientSecretBasic,
            })
        }
        (None, Some((client_id, secret))) => Ok(PresentedCredentials {
            client_id,
            secret,
            method: AuthMethod::ClientSecretPost,
        }),
        (None, None) => Err(McError::InvalidClient),
    }
}

/// RFC 6749 §2.3.1: Basic credentials are form-urlencoded before base64.
fn parse_basic(header: &str) -> Result<(String, String), McError> {
    let (scheme, value) = header.split_once(' ').ok_or(McError::InvalidClient)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(McError::InvalidClient);
    }
    let decoded = STANDARD
        .decode(value.trim())
        .map_err(|_| McError::InvalidClient)?;
    let decoded = String::from_utf8(decoded).map_err(|_| McError::InvalidClient)?;
    let (id, secret) = decoded.split_once(':').ok_or(McError::InvalidClient)?;
    let unescape = |s: &str| {
        RawParams::from_urlencoded(format!("v={s}").as_bytes())
            .ok()
            .and_then(|p| p.get("v").map(str::to_owned))
            .unwrap_or_default()
    };
    let (id, secret) = (unescape(id), unescape(secret));
    if id.is_empty() {
        return Err(McError::InvalidClient);
    }
    Ok((id, secret))
}

/// The `authorization_code` grant's parameters (RFC 6749 §4.1.3).
#[derive(Debug, Clone)]
pub struct CodeGrant {
    pub code: String,
    pub redirect_uri: String,
    pub code_verifier: Option<String>,
}

/// `code` and `redirect_uri` are required; no duplicates.
pub fn check_code_grant(p: &RawParams) -> Result<CodeGrant, McError> {
    if !p.duplicated().is_empty() {
        return Err(McError::InvalidTokenRequest("duplicate parameters"));
    }
    let code = p.get("code").ok_or(McError::InvalidTokenRequest(
        "MANDATORY parameter code is missing",
    ))?;
    let redirect_uri = p.get("redirect_uri").ok_or(McError::InvalidTokenRequest(
        "MANDATORY parameter redirect_uri is missing",
    ))?;
    if code.len() > 256 {
        return Err(McError::InvalidGrant(
            "Authorization code doesn't exist or is invalid for the client",
        ));
    }
    Ok(CodeGrant {
        code: code.to_owned(),
        redirect_uri: redirect_uri.to_owned(),
        code_verifier: p.get("code_verifier").map(str::to_owned),
    })
}

/// Scopes a client may hold on its own behalf (`client_credentials`): those whose answers
/// name no signed-in subscriber. ATP (digest §8.4) asks about a number given in a header.
pub const CLIENT_CREDENTIALS_SCOPES: &[&str] = &["mc_atp"];

/// The `client_credentials` grant's scope (RFC 6749 §4.4.2): the requested values, each
/// registered for the client and usable without a subscriber; `openid` is tolerated and
/// dropped (no subscriber, so no id_token, digest §8.4's `scope=openid mc_atp`). Without a
/// `scope`, every such value the client is registered for. Nothing left is `invalid_scope`.
pub fn check_client_credentials_grant(p: &RawParams, allowed: &Scope) -> Result<Scope, McError> {
    if !p.duplicated().is_empty() {
        return Err(McError::InvalidTokenRequest("duplicate parameters"));
    }
    let requested = match p.get("scope") {
        Some(raw) => Scope::parse(raw).map_err(|_| McError::InvalidScope)?,
        None => Scope::from_values(
            allowed
                .iter()
                .filter(|v| CLIENT_CREDENTIALS_SCOPES.contains(v)),
        ),
    };
    let granted = Scope::from_values(requested.iter().filter(|v| *v != "openid"));
    if granted.is_empty()
        || !granted.is_subset_of(allowed)
        || granted
            .iter()
            .any(|v| !CLIENT_CREDENTIALS_SCOPES.contains(&v))
    {
        return Err(McError::InvalidScope);
    }
    Ok(granted)
}

/// The `refresh_token` grant's parameters (RFC 6749 §6).
#[derive(Debug, Clone)]
pub struct RefreshGrant {
    pub refresh_token: String,
    /// A narrower scope for the new access token; `None` keeps the original.
    pub scope: Option<Scope>,
}

/// `refresh_token` is required; `scope`, when given, must be known (the narrowing against
/// the original grant is checked once the token is found).
pub fn check_refresh_grant(p: &RawParams) -> Result<RefreshGrant, McError> {
    if !p.duplicated().is_empty() {
        return Err(McError::InvalidTokenRequest("duplicate parameters"));
    }
    let refresh_token = p.get("refresh_token").ok_or(McError::InvalidTokenRequest(
        "MANDATORY parameter refresh_token is missing",
    ))?;
    if refresh_token.is_empty() || refresh_token.len() > 256 {
        return Err(McError::InvalidGrant("Refresh token is invalid"));
    }
    let scope = p
        .get("scope")
        .map(|raw| Scope::parse(raw).map_err(|_| McError::InvalidScope))
        .transpose()?;
    Ok(RefreshGrant {
        refresh_token: refresh_token.to_owned(),
        scope,
    })
}

/// The scope of a refreshed access token: the original, or a subset of it (RFC 6749 §6:
/// "MUST NOT include any scope not originally granted").
pub fn refreshed_scope(original: &Scope, requested: Option<&Scope>) -> Result<Scope, McError> {
    match requested {
        None => Ok(original.clone()),
        Some(r) if !r.is_empty() && r.is_subset_of(original) => Ok(r.clone()),
        Some(_) => Err(McError::InvalidScope),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(q: &str) -> RawParams {
        RawParams::from_urlencoded(q.as_bytes()).unwrap()
    }

    fn basic(id: &str, secret: &str) -> String {
        format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
    }

    #[test]
    fn basic_post_and_agreeing_duplicate() {
        let b = presented_credentials(Some(&basic("shop", "s3")), &body("")).unwrap();
        assert_eq!(
            (b.client_id.as_str(), b.method),
            ("shop", AuthMethod::ClientSecretBasic)
        );
        let p = presented_credentials(None, &body("client_id=shop&client_secret=s3")).unwrap();
        assert_eq!(p.method, AuthMethod::ClientSecretPost);
        assert!(
            presented_credentials(
                Some(&basic("shop", "s3")),
                &body("client_id=shop&client_secret=s3")
            )
            .is_ok()
        );
    }

    #[test]
    fn disagreeing_missing_and_malformed_credentials() {
        assert_eq!(
            presented_credentials(
                Some(&basic("shop", "s3")),
                &body("client_id=shop&client_secret=x")
            ),
            Err(McError::InvalidClient)
        );
        assert_eq!(
            presented_credentials(Some(&basic("shop", "s3")), &body("client_id=other")),
            Err(McError::InvalidClient)
        );
        assert_eq!(
            presented_credentials(None, &body("client_id=shop")),
            Err(McError::InvalidClient)
        );
        assert_eq!(
            presented_credentials(Some("Basic !!!"), &body("")),
            Err(McError::InvalidClient)
        );
        assert_eq!(
            presented_credentials(Some("Bearer x"), &body("")),
            Err(McError::InvalidClient)
        );
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        let b = presented_credentials(Some(&basic("a%3Ab", "p%2Bq")), &body("")).unwrap();
        assert_eq!((b.client_id.as_str(), b.secret.as_str()), ("a:b", "p+q"));
    }

    #[test]
    fn code_grant_requires_code_and_redirect_uri() {
        assert!(check_code_grant(&body("code=c&redirect_uri=r")).is_ok());
        assert!(check_code_grant(&body("redirect_uri=r")).is_err());
        assert!(check_code_grant(&body("code=c")).is_err());
        assert!(check_code_grant(&body("code=c&code=d&redirect_uri=r")).is_err());
    }

    #[test]
    fn client_credentials_scope_is_client_level_and_registered() {
        let allowed = Scope::from_values(["openid", "mc_authn", "mc_atp"]);
        let ok =
            |q: &str| check_client_credentials_grant(&body(q), &allowed).map(|s| s.to_string());
        assert_eq!(ok("scope=mc_atp"), Ok("mc_atp".into()));
        assert_eq!(ok("scope=openid%20mc_atp"), Ok("mc_atp".into()));
        assert_eq!(ok(""), Ok("mc_atp".into()));
        assert_eq!(ok("scope=mc_authn"), Err(McError::InvalidScope));
        assert_eq!(ok("scope=openid"), Err(McError::InvalidScope));
        assert_eq!(ok("scope=mc_bogus"), Err(McError::InvalidScope));
        let no_atp = Scope::from_values(["openid", "mc_authn"]);
        assert_eq!(
            check_client_credentials_grant(&body("scope=mc_atp"), &no_atp),
            Err(McError::InvalidScope)
        );
        assert_eq!(
            check_client_credentials_grant(&body(""), &no_atp),
            Err(McError::InvalidScope)
        );
        assert!(
            check_client_credentials_grant(&body("scope=mc_atp&scope=mc_atp"), &allowed).is_err()
        );
    }

    #[test]
    fn refresh_grant_and_scope_narrowing() {
        assert!(check_refresh_grant(&body("")).is_err());
        assert!(check_refresh_grant(&body("refresh_token=")).is_err());
        let g = check_refresh_grant(&body("refresh_token=r&scope=openid")).unwrap();
        let original = Scope::from_values(["openid", "mc_authn", "offline_access"]);
        assert_eq!(
            refreshed_scope(&original, g.scope.as_ref())
                .unwrap()
                .to_string(),
            "openid"
        );
        assert_eq!(refreshed_scope(&original, None).unwrap(), original);
        let wider = Scope::from_values(["openid", "phone"]);
        assert_eq!(
            refreshed_scope(&original, Some(&wider)),
            Err(McError::InvalidScope)
        );
    }
}
