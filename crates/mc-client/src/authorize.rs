//! Device-initiated authorization requests (digest §4): authentication (`mc_authn`),
//! authorization (`mc_authz` with `client_name`, `context`, `binding_message`) and the
//! identity products, with `state`, `nonce` and PKCE (S256) generated here and kept in a
//! serialisable [`PendingLogin`] for the way back.

use mc_core::acr::AcrValues;
use mc_core::msisdn::Msisdn;
use mc_core::version::McVersion;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::Error;
use crate::id_token::{Expectations, IdToken};
use crate::jose::{b64url, random_token};
use crate::redirect::{Redirect, parse_redirect};
use crate::token::TokenResponse;
use crate::{Operator, Secret};

/// The `login_hint` forms (digest §4.3) and the `login_hint_token`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginHint {
    /// `MSISDN:<digits>` (sent without `+`).
    Msisdn(Msisdn),
    /// `ENCR_MSISDN:<value>`: Discovery's `subscriber_id` (or the SP's own encryption).
    EncryptedMsisdn(String),
    /// `PCR:<pcr>`: the PCR this SP received before for the user.
    Pcr(String),
    /// `login_hint_token=<jwt>` (Discovery's `subscriber_id_token`).
    Token(String),
}

impl LoginHint {
    /// The hint a discovery answer allows: `ENCR_MSISDN:<subscriber_id>`, or the
    /// `login_hint_token` when only that is present.
    pub fn from_discovery(found: &crate::discovery::DiscoveredOperator) -> Option<LoginHint> {
        found
            .subscriber_id
            .clone()
            .map(LoginHint::EncryptedMsisdn)
            .or_else(|| found.subscriber_id_token.clone().map(LoginHint::Token))
    }

    /// The metadata name of the method (`login_hint_methods_supported`).
    fn method(&self) -> Option<&'static str> {
        match self {
            LoginHint::Msisdn(_) => Some("MSISDN"),
            LoginHint::EncryptedMsisdn(_) => Some("ENCR_MSISDN"),
            LoginHint::Pcr(_) => Some("PCR"),
            LoginHint::Token(_) => None,
        }
    }

    /// `(parameter, value)` on the wire.
    pub fn to_param(&self) -> (&'static str, String) {
        match self {
            LoginHint::Msisdn(m) => ("login_hint", format!("MSISDN:{}", m.as_str())),
            LoginHint::EncryptedMsisdn(v) => ("login_hint", format!("ENCR_MSISDN:{v}")),
            LoginHint::Pcr(p) => ("login_hint", format!("PCR:{p}")),
            LoginHint::Token(t) => ("login_hint_token", t.clone()),
        }
    }
}

/// What to ask the operator for. Build with [`AuthorizationRequest::authn`],
/// [`AuthorizationRequest::authz`] or [`AuthorizationRequest::identity`], then adjust.
#[derive(Debug, Clone)]
pub struct AuthorizationRequest {
    pub redirect_uri: String,
    /// Space-separated; `openid` is added when missing.
    pub scope: String,
    /// `"2"` (default), `"3"`, or a list like `"3 2"` (first is the target, a lower one a
    /// fallback the SP accepts; docs/decisions.md).
    pub acr_values: String,
    pub login_hint: Option<LoginHint>,
    /// `None`: selected from scope and the operator's `mc_version` (digest §1.2).
    pub version: Option<McVersion>,
    /// `mc_authz`: the transaction text shown on the phone (mandatory there).
    pub context: Option<String>,
    pub binding_message: Option<String>,
    /// `mc_authz`: the registered short name; defaults to the credentials' or discovery's.
    pub client_name: Option<String>,
    /// Sent as `max_age` (never the Java SDK's `max-age`); `auth_time` is then checked.
    pub max_age: Option<u64>,
    pub prompt: Option<String>,
    pub display: Option<String>,
    pub ui_locales: Option<String>,
    /// The OIDC `claims` parameter (sent once).
    pub claims: Option<Value>,
    /// Echoed by the operator and checked on the way back; random when `None`.
    pub correlation_id: Option<String>,
    /// PKCE S256 (default on).
    pub pkce: bool,
    /// Any further parameters.
    pub extra: Vec<(String, String)>,
}

impl AuthorizationRequest {
    /// Authentication: `openid mc_authn`, LoA2.
    pub fn authn(redirect_uri: &str) -> AuthorizationRequest {
        AuthorizationRequest {
            redirect_uri: redirect_uri.to_owned(),
            scope: "openid mc_authn".into(),
            acr_values: "2".into(),
            login_hint: None,
            version: None,
            context: None,
            binding_message: None,
            client_name: None,
            max_age: None,
            prompt: None,
            display: None,
            ui_locales: None,
            claims: None,
            correlation_id: None,
            pkce: true,
            extra: Vec::new(),
        }
    }

    /// Authorization of a transaction: `openid mc_authz` with its `context`.
    pub fn authz(redirect_uri: &str, context: &str) -> AuthorizationRequest {
        AuthorizationRequest {
            scope: "openid mc_authz".into(),
            context: Some(context.to_owned()),
            ..Self::authn(redirect_uri)
        }
    }

    /// An identity product (`mc_identity_phonenumber`, `mc_identity_signup`, …) with
    /// authentication.
    pub fn identity(redirect_uri: &str, product_scope: &str) -> AuthorizationRequest {
        AuthorizationRequest {
            scope: format!("openid mc_authn {product_scope}"),
            ..Self::authn(redirect_uri)
        }
    }

    pub fn login_hint(mut self, hint: LoginHint) -> Self {
        self.login_hint = Some(hint);
        self
    }

    pub fn scope(mut self, scope: &str) -> Self {
        self.scope = scope.to_owned();
        self
    }

    pub fn acr_values(mut self, acr: &str) -> Self {
        self.acr_values = acr.to_owned();
        self
    }

    pub fn binding_message(mut self, m: &str) -> Self {
        self.binding_message = Some(m.to_owned());
        self
    }

    pub fn context(mut self, c: &str) -> Self {
        self.context = Some(c.to_owned());
        self
    }

    pub fn client_name(mut self, n: &str) -> Self {
        self.client_name = Some(n.to_owned());
        self
    }

    pub fn version(mut self, v: McVersion) -> Self {
        self.version = Some(v);
        self
    }

    pub fn max_age(mut self, secs: u64) -> Self {
        self.max_age = Some(secs);
        self
    }

    pub fn prompt(mut self, p: &str) -> Self {
        self.prompt = Some(p.to_owned());
        self
    }

    pub fn claims(mut self, c: Value) -> Self {
        self.claims = Some(c);
        self
    }

    pub fn correlation_id(mut self, c: &str) -> Self {
        self.correlation_id = Some(c.to_owned());
        self
    }

    pub fn without_pkce(mut self) -> Self {
        self.pkce = false;
        self
    }

    pub fn param(mut self, k: &str, v: &str) -> Self {
        self.extra.push((k.to_owned(), v.to_owned()));
        self
    }
}

/// What the SP keeps (e.g. in its session) between the redirect out and the way back.
/// Contains the PKCE verifier: store it server-side or encrypted.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingLogin {
    pub issuer: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub state: String,
    pub nonce: String,
    pub code_verifier: Option<Secret>,
    pub scope: String,
    pub acr_values: String,
    pub version: String,
    pub max_age: Option<u64>,
    pub correlation_id: String,
    /// The number the login is for, when the SP knows it (checked against
    /// `hashed_login_hint`). Digits only.
    pub msisdn: Option<String>,
    pub created_at: i64,
}

impl PendingLogin {
    /// What the id_token must satisfy for this login.
    pub fn expectations(&self) -> Expectations {
        Expectations {
            nonce: Some(self.nonce.clone()),
            acr_values: Some(self.acr_values.clone()),
            msisdn: self.msisdn.as_deref().and_then(Msisdn::parse),
            access_token: None,
            max_age: self.max_age,
            version: McVersion::parse(&self.version),
        }
    }
}

/// The URL to send the browser to, and what to keep.
#[derive(Debug, Clone)]
pub struct AuthorizationStart {
    pub url: String,
    pub pending: PendingLogin,
}

/// A finished login: the tokens and the validated id_token (`sub` is the PCR).
#[derive(Debug, Clone)]
pub struct Login {
    pub tokens: TokenResponse,
    pub id_token: IdToken,
}

impl Operator {
    /// Builds the authorization URL (digest §4.1).
    pub fn authorize(&self, req: AuthorizationRequest) -> Result<AuthorizationStart, Error> {
        let mut scope: Vec<&str> = req.scope.split(' ').filter(|s| !s.is_empty()).collect();
        if !scope.contains(&"openid") {
            scope.insert(0, "openid");
        }
        let scope = scope.join(" ");
        let version =
            crate::version::select_version(req.version, &scope, &self.metadata.versions())?;
        if AcrValues::parse(&req.acr_values).is_none() {
            return Err(Error::InvalidRequest(format!(
                "acr_values {:?} names no supported level (2, 3)",
                req.acr_values
            )));
        }
        let has = |s: &str| scope.split(' ').any(|v| v == s);
        // The Java SDK's `shouldUseAuthorize`: mc_authz, or a context without mc_authn.
        let authz = has("mc_authz") || (!has("mc_authn") && req.context.is_some());
        let state = random_token(24);
        let nonce = random_token(24);
        let correlation_id = req
            .correlation_id
            .clone()
            .unwrap_or_else(|| random_token(16));
        let mut q: Vec<(String, String)> = vec![
            ("client_id".into(), self.credentials.client_id.clone()),
            ("redirect_uri".into(), req.redirect_uri.clone()),
            ("response_type".into(), "code".into()),
            ("scope".into(), scope.clone()),
            ("acr_values".into(), req.acr_values.clone()),
            ("state".into(), state.clone()),
            ("nonce".into(), nonce.clone()),
            ("version".into(), version.as_str().into()),
            ("correlation_id".into(), correlation_id.clone()),
        ];
        if let Some(hint) = &req.login_hint {
            if let Some(method) = hint.method()
                && !self.metadata.supports_login_hint(method)
            {
                return Err(Error::Unsupported(format!("login_hint method {method}")));
            }
            let (k, v) = hint.to_param();
            q.push((k.into(), v));
        }
        if authz {
            let client_name = req
                .client_name
                .clone()
                .or_else(|| self.credentials.client_name.clone())
                .or_else(|| self.discovered.as_ref().and_then(|d| d.client_name.clone()))
                .ok_or_else(|| {
                    Error::InvalidRequest(
                        "mc_authz needs client_name (the registered short name)".into(),
                    )
                })?;
            let context = req.context.clone().ok_or_else(|| {
                Error::InvalidRequest("mc_authz needs a context to show the user".into())
            })?;
            q.push(("client_name".into(), client_name));
            q.push(("context".into(), context));
        } else if let Some(c) = &req.context {
            q.push(("context".into(), c.clone()));
        }
        if let Some(b) = &req.binding_message {
            q.push(("binding_message".into(), b.clone()));
        }
        let code_verifier = req.pkce.then(|| random_token(32));
        if let Some(v) = &code_verifier {
            let challenge = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, v.as_bytes());
            q.push(("code_challenge".into(), b64url(challenge.as_ref())));
            q.push(("code_challenge_method".into(), "S256".into()));
        }
        if let Some(m) = req.max_age {
            q.push(("max_age".into(), m.to_string()));
        }
        for (k, v) in [
            ("prompt", &req.prompt),
            ("display", &req.display),
            ("ui_locales", &req.ui_locales),
        ] {
            if let Some(v) = v {
                q.push((k.into(), v.clone()));
            }
        }
        if let Some(c) = &req.claims {
            q.push(("claims".into(), c.to_string()));
        }
        q.extend(req.extra.iter().cloned());
        let mut url = url::Url::parse(&self.endpoints.authorization).map_err(|_| {
            Error::Metadata(format!(
                "authorization endpoint {:?} is not a URL",
                self.endpoints.authorization
            ))
        })?;
        url.query_pairs_mut().extend_pairs(q.iter());
        let msisdn = match &req.login_hint {
            Some(LoginHint::Msisdn(m)) => Some(m.as_str().to_owned()),
            Some(LoginHint::EncryptedMsisdn(_) | LoginHint::Token(_)) => self
                .discovered
                .as_ref()
                .and_then(|d| d.msisdn.as_ref())
                .map(|m| m.as_str().to_owned()),
            _ => None,
        };
        Ok(AuthorizationStart {
            url: url.into(),
            pending: PendingLogin {
                issuer: self.metadata.issuer.clone(),
                client_id: self.credentials.client_id.clone(),
                redirect_uri: req.redirect_uri,
                state,
                nonce,
                code_verifier: code_verifier.map(Secret::new),
                scope,
                acr_values: req.acr_values,
                version: version.as_str().into(),
                max_age: req.max_age,
                correlation_id,
                msisdn,
                created_at: self.now(),
            },
        })
    }

    /// Finishes a login from the URL (or query) the browser brought back: checks `state`
    /// and the `correlation_id` echo, exchanges the code (with the PKCE verifier) and
    /// validates the id_token against everything the request asked for.
    pub async fn complete(&self, pending: &PendingLogin, callback: &str) -> Result<Login, Error> {
        if pending.issuer != self.metadata.issuer || pending.client_id != self.credentials.client_id
        {
            return Err(Error::InvalidRequest(
                "this pending login belongs to another operator or client".into(),
            ));
        }
        let code = match parse_redirect(callback)? {
            Redirect::Code {
                code,
                state,
                correlation_id,
            } => {
                if state.as_deref() != Some(pending.state.as_str()) {
                    return Err(Error::StateMismatch);
                }
                if let Some(received) = correlation_id
                    && received != pending.correlation_id
                {
                    return Err(Error::CorrelationIdMismatch {
                        sent: pending.correlation_id.clone(),
                        received,
                    });
                }
                code
            }
            Redirect::Error {
                error,
                description,
                state,
            } => {
                if state.is_some() && state.as_deref() != Some(pending.state.as_str()) {
                    return Err(Error::StateMismatch);
                }
                return Err(Error::Authorization { error, description });
            }
            Redirect::OperatorSelected { .. } => return Err(Error::MissingCode),
        };
        let tokens = self.exchange_code(pending, &code).await?;
        let mut expect = pending.expectations();
        expect.access_token = Some(tokens.access_token.clone());
        let id_token = self.validate_tokens(&tokens, &expect).await?;
        Ok(Login { tokens, id_token })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn hints_have_their_wire_forms() {
        let m = Msisdn::parse("+447700900301").unwrap();
        assert_eq!(
            LoginHint::Msisdn(m).to_param(),
            ("login_hint", "MSISDN:447700900301".into())
        );
        assert_eq!(
            LoginHint::EncryptedMsisdn("ab".into()).to_param(),
            ("login_hint", "ENCR_MSISDN:ab".into())
        );
        assert_eq!(
            LoginHint::Pcr("p".into()).to_param(),
            ("login_hint", "PCR:p".into())
        );
        assert_eq!(
            LoginHint::Token("t".into()).to_param(),
            ("login_hint_token", "t".into())
        );
    }
}
