//! Server-initiated logins (digest §9): the SP's back end starts a login by phone number
//! with a signed request object, then either polls the token endpoint (the CIBA-style
//! polling variant, docs/decisions.md) or receives the tokens at its notification URI.
//!
//! * [`Operator::si_start`] signs the request object (`response_type=mc_si_async_code`,
//!   `iss` = client, `aud` = the operator's issuer, a fresh `nonce`, and — for the
//!   notification variant — a random `client_notification_token`) and POSTs the four outer
//!   parameters to `si_authorization_endpoint`.
//! * [`Operator::si_poll`] / [`Operator::si_wait`] poll.
//! * [`SiNotifications`] is the notification handler to mount in any web framework: give it
//!   the `Authorization` header and the body; it checks the bearer against the request's
//!   `client_notification_token` (constant time), takes the pending request out (once) and
//!   hands back the result; [`Operator::si_complete`] then validates the id_token.
//!
//! ```no_run
//! use std::sync::Arc;
//! use mc_client::{ClientCredentials, MobileConnect};
//! use mc_client::authorize::LoginHint;
//! use mc_client::jose::{Algorithm, SigningKey};
//! use mc_client::si::{SiNotifications, SiRequest};
//! use mc_core::msisdn::Msisdn;
//!
//! # async fn run(authorization: Option<&str>, body: &[u8]) -> Result<(), mc_client::Error> {
//! let mc = MobileConnect::new(Default::default());
//! let key = SigningKey::generate_rsa("sp-key-1", Algorithm::RS256)?; // register key.public_jwks()
//! let operator = mc
//!     .operator_from_issuer("http://127.0.0.1:8080", ClientCredentials::secret_basic("id", "secret"))
//!     .await?;
//! let hint = LoginHint::Msisdn(Msisdn::parse("447700900301").expect("a number"));
//! let notifications = SiNotifications::default();
//! let pending = operator
//!     .si_start(SiRequest::authn(hint).notify("https://shop.example/mc/notify"), &key)
//!     .await?;
//! notifications.insert(pending);
//! // In the SP's POST /mc/notify handler:
//! match notifications.handle(authorization, body) {
//!     Ok((pending, notification)) => {
//!         let login = operator.si_complete(&pending, notification).await?;
//!         println!("logged in: {}", login.id_token.pcr());
//!         // answer 204
//!     }
//!     Err(e) => println!("answer HTTP {}", e.http_status()),
//! }
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use mc_core::msisdn::Msisdn;
use mc_core::version::McVersion;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::authorize::{Login, LoginHint};
use crate::error::{Error, NotificationError, transport};
use crate::id_token::Expectations;
use crate::jose::{SigningKey, random_token};
use crate::operator::protocol_error;
use crate::token::{TokenOutcome, TokenResponse};
use crate::{Operator, Secret};

/// The CIBA grant type used to poll (OpenID CIBA Core §10.1).
pub const CIBA_GRANT: &str = "urn:openid:params:grant-type:ciba";

/// A server-initiated request.
#[derive(Debug, Clone)]
pub struct SiRequest {
    pub login_hint: LoginHint,
    /// Must contain `openid` and a product (`openid mc_authn` by default).
    pub scope: String,
    pub acr_values: String,
    /// Notification variant: where the operator POSTs the result. `None`: polling.
    pub notification_uri: Option<String>,
    pub context: Option<String>,
    pub binding_message: Option<String>,
    pub client_name: Option<String>,
    pub correlation_id: Option<String>,
    pub claims: Option<Value>,
    pub version: McVersion,
    /// Lifetime of the request object (`exp - iat`).
    pub request_lifetime_secs: i64,
}

impl SiRequest {
    /// An `mc_authn` request at LoA2, polling variant.
    pub fn authn(login_hint: LoginHint) -> SiRequest {
        SiRequest {
            login_hint,
            scope: "openid mc_authn".into(),
            acr_values: "2".into(),
            notification_uri: None,
            context: None,
            binding_message: None,
            client_name: None,
            correlation_id: None,
            claims: None,
            version: McVersion::SiR2V1_0,
            request_lifetime_secs: 300,
        }
    }

    /// An `mc_authz` request showing `context`.
    pub fn authz(login_hint: LoginHint, context: &str) -> SiRequest {
        SiRequest {
            scope: "openid mc_authz".into(),
            context: Some(context.to_owned()),
            ..Self::authn(login_hint)
        }
    }

    /// The notification variant, at `uri` (registered with the operator).
    pub fn notify(mut self, uri: &str) -> Self {
        self.notification_uri = Some(uri.to_owned());
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

    pub fn client_name(mut self, n: &str) -> Self {
        self.client_name = Some(n.to_owned());
        self
    }

    pub fn correlation_id(mut self, c: &str) -> Self {
        self.correlation_id = Some(c.to_owned());
        self
    }
}

/// A started server-initiated request: keep it until the result arrives. Contains the
/// notification bearer: keep it server-side.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SiPending {
    pub issuer: String,
    pub client_id: String,
    pub auth_req_id: String,
    /// When the operator gives up (seconds since the epoch).
    pub expires_at: i64,
    pub correlation_id: String,
    pub nonce: String,
    pub acr_values: String,
    pub scope: String,
    /// The bearer the operator must present at the notification URI.
    pub notification_token: Option<Secret>,
    /// The number logged in, when sent as `MSISDN:` (checked against `hashed_login_hint`).
    pub msisdn: Option<String>,
    /// A header-enrichment URL some operators return (digest §9.3).
    pub hhe_uri: Option<String>,
}

impl SiPending {
    fn expectations(&self) -> Expectations {
        Expectations {
            nonce: Some(self.nonce.clone()),
            acr_values: Some(self.acr_values.clone()),
            msisdn: self.msisdn.as_deref().and_then(Msisdn::parse),
            access_token: None,
            max_age: None,
            version: None,
        }
    }
}

/// One poll's answer.
#[derive(Debug)]
pub enum SiPoll {
    /// `authorization_pending`: ask again after the interval.
    Pending,
    /// `slow_down`: ask less often.
    SlowDown,
    /// The user approved; the id_token is validated.
    Complete(Box<Login>),
}

/// What a notification carried.
#[derive(Debug, Clone)]
pub enum SiResult {
    Tokens(Box<TokenResponse>),
    /// `authorization_error`, `access_denied`, … (digest §9.4).
    Error {
        error: String,
        description: String,
    },
}

/// A verified notification.
#[derive(Debug, Clone)]
pub struct SiNotification {
    pub auth_req_id: String,
    pub correlation_id: Option<String>,
    pub result: SiResult,
}

impl Operator {
    /// Starts a server-initiated login (digest §9.2), signing the request object with
    /// `key` (whose public half the operator has registered for this client).
    pub async fn si_start(&self, req: SiRequest, key: &SigningKey) -> Result<SiPending, Error> {
        let endpoint = self.endpoints.si_authorization.clone().ok_or_else(|| {
            Error::Unsupported("server-initiated (no si_authorization_endpoint)".into())
        })?;
        let client_id = self.credentials.client_id.clone();
        let now = self.now();
        let nonce = random_token(24);
        let correlation_id = req
            .correlation_id
            .clone()
            .unwrap_or_else(|| random_token(16));
        let (hint_param, hint_value) = req.login_hint.to_param();
        let mut claims = json!({
            "response_type": "mc_si_async_code",
            "client_id": client_id,
            "iss": client_id,
            "aud": self.metadata.issuer,
            "scope": req.scope,
            "version": req.version.as_str(),
            "nonce": nonce,
            hint_param: hint_value,
            "acr_values": req.acr_values,
            "correlation_id": correlation_id,
            "iat": now,
            "exp": now + req.request_lifetime_secs,
            "jti": random_token(16),
        });
        let notification_token = req.notification_uri.as_ref().map(|uri| {
            let token = random_token(32);
            claims["notification_uri"] = json!(uri);
            claims["client_notification_token"] = json!(token);
            Secret::new(token)
        });
        let authz = req.scope.split(' ').any(|s| s == "mc_authz");
        if authz {
            let name = req
                .client_name
                .clone()
                .or_else(|| self.credentials.client_name.clone())
                .or_else(|| self.discovered.as_ref().and_then(|d| d.client_name.clone()))
                .ok_or_else(|| Error::InvalidRequest("mc_authz needs client_name".into()))?;
            if req.context.is_none() {
                return Err(Error::InvalidRequest("mc_authz needs a context".into()));
            }
            claims["client_name"] = json!(name);
        }
        for (k, v) in [
            ("context", &req.context),
            ("binding_message", &req.binding_message),
        ] {
            if let Some(v) = v {
                claims[k] = json!(v);
            }
        }
        if let Some(c) = &req.claims {
            claims["claims"] = c.clone();
        }
        let request = key.sign(&claims)?;
        let resp = self
            .ctx
            .http
            .post(&endpoint)
            .header("accept", "application/json")
            .form(&[
                ("client_id", client_id.as_str()),
                ("response_type", "mc_si_async_code"),
                ("scope", req.scope.as_str()),
                ("request", request.as_str()),
            ])
            .send()
            .await
            .map_err(|e| transport("si-authorize", e))?;
        if !resp.status().is_success() {
            return Err(protocol_error("si-authorize", resp).await);
        }
        let body: Map<String, Value> = resp.json().await.map_err(|e| Error::InvalidResponse {
            endpoint: "si-authorize",
            detail: e.without_url().to_string(),
        })?;
        let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_owned);
        let auth_req_id = text("auth_req_id")
            .filter(|s| !s.is_empty())
            .ok_or_else(|| Error::InvalidResponse {
                endpoint: "si-authorize",
                detail: "no auth_req_id".into(),
            })?;
        if let Some(received) = text("correlation_id")
            && received != correlation_id
        {
            return Err(Error::CorrelationIdMismatch {
                sent: correlation_id,
                received,
            });
        }
        let expires_in = body
            .get("expires_in")
            .and_then(Value::as_i64)
            .unwrap_or(120);
        Ok(SiPending {
            issuer: self.metadata.issuer.clone(),
            client_id,
            auth_req_id,
            expires_at: now + expires_in,
            correlation_id,
            nonce,
            acr_values: req.acr_values,
            scope: req.scope,
            notification_token,
            msisdn: match &req.login_hint {
                LoginHint::Msisdn(m) => Some(m.as_str().to_owned()),
                _ => None,
            },
            hhe_uri: text("hhe_uri"),
        })
    }

    /// One poll of the token endpoint (the polling variant).
    pub async fn si_poll(&self, pending: &SiPending) -> Result<SiPoll, Error> {
        let outcome = self
            .token_call(vec![
                ("grant_type", CIBA_GRANT.into()),
                ("auth_req_id", pending.auth_req_id.clone()),
            ])
            .await?;
        match outcome {
            TokenOutcome::Tokens(tokens) => {
                let id_token = self
                    .validate_tokens(&tokens, &pending.expectations())
                    .await?;
                Ok(SiPoll::Complete(Box::new(Login { tokens, id_token })))
            }
            TokenOutcome::Refused {
                status,
                error,
                description,
            } => match error.as_str() {
                "authorization_pending" => Ok(SiPoll::Pending),
                "slow_down" => Ok(SiPoll::SlowDown),
                "expired_token" => Err(Error::Expired),
                "access_denied" | "authorization_error" => {
                    Err(Error::Denied { error, description })
                }
                _ => Err(Error::Protocol {
                    endpoint: "token",
                    status,
                    error,
                    description,
                }),
            },
        }
    }

    /// Polls every `interval` (longer after `slow_down`) until the login completes, is
    /// denied, or the request expires.
    pub async fn si_wait(&self, pending: &SiPending, interval: Duration) -> Result<Login, Error> {
        let mut interval = interval.max(Duration::from_millis(200));
        loop {
            match self.si_poll(pending).await? {
                SiPoll::Complete(login) => return Ok(*login),
                SiPoll::SlowDown => interval += Duration::from_secs(5),
                SiPoll::Pending => {}
            }
            if self.now() > pending.expires_at {
                return Err(Error::Expired);
            }
            // The protocol's own pacing between polls, not a stand-in for synchronisation.
            tokio::time::sleep(interval).await;
        }
    }

    /// Turns a verified notification into a login: validates the id_token (nonce, acr,
    /// `hashed_login_hint`, signature…) or reports the denial.
    pub async fn si_complete(
        &self,
        pending: &SiPending,
        notification: SiNotification,
    ) -> Result<Login, Error> {
        if notification.auth_req_id != pending.auth_req_id {
            return Err(Error::InvalidRequest(
                "the notification is for another request".into(),
            ));
        }
        if let Some(received) = notification.correlation_id
            && received != pending.correlation_id
        {
            return Err(Error::CorrelationIdMismatch {
                sent: pending.correlation_id.clone(),
                received,
            });
        }
        match notification.result {
            SiResult::Tokens(tokens) => {
                let id_token = self
                    .validate_tokens(&tokens, &pending.expectations())
                    .await?;
                Ok(Login {
                    tokens: *tokens,
                    id_token,
                })
            }
            SiResult::Error { error, description } => Err(Error::Denied { error, description }),
        }
    }
}

fn bearer(authorization: Option<&str>) -> Option<&str> {
    let (scheme, token) = authorization?.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Reads and authenticates one notification for `pending`.
pub fn parse_notification(
    authorization: Option<&str>,
    body: &[u8],
    pending: &SiPending,
) -> Result<SiNotification, NotificationError> {
    let token = bearer(authorization).ok_or(NotificationError::MissingBearer)?;
    let expected = pending
        .notification_token
        .as_ref()
        .ok_or(NotificationError::WrongBearer)?;
    if aws_lc_rs::constant_time::verify_slices_are_equal(
        token.as_bytes(),
        expected.expose().as_bytes(),
    )
    .is_err()
    {
        return Err(NotificationError::WrongBearer);
    }
    let (id, body) = read_body(body)?;
    if id != pending.auth_req_id {
        return Err(NotificationError::UnknownRequest(id));
    }
    notification(id, body)
}

fn read_body(body: &[u8]) -> Result<(String, Map<String, Value>), NotificationError> {
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(body) else {
        return Err(NotificationError::Malformed("not a JSON object"));
    };
    let id = body
        .get("auth_req_id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or(NotificationError::Malformed("no auth_req_id"))?
        .to_owned();
    Ok((id, body))
}

fn notification(
    auth_req_id: String,
    body: Map<String, Value>,
) -> Result<SiNotification, NotificationError> {
    let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_owned);
    let correlation_id = text("correlation_id");
    let result = match text("error") {
        Some(error) => SiResult::Error {
            description: text("error_description").unwrap_or_default(),
            error,
        },
        None => {
            SiResult::Tokens(Box::new(TokenResponse::from_json(body).map_err(|_| {
                NotificationError::Malformed("neither tokens nor an error")
            })?))
        }
    };
    Ok(SiNotification {
        auth_req_id,
        correlation_id,
        result,
    })
}

/// The SP's notification endpoint logic: pending requests by `auth_req_id`, each taken
/// out by the first notification that authenticates for it. Mount [`SiNotifications::handle`]
/// in any web framework; answer 204 on `Ok`, [`NotificationError::http_status`] otherwise.
#[derive(Debug, Default)]
pub struct SiNotifications {
    pending: Mutex<HashMap<String, SiPending>>,
}

impl SiNotifications {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, SiPending>> {
        // Single inserts/removals: a poisoned map is still consistent.
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Remembers a started request (notification variant).
    pub fn insert(&self, pending: SiPending) {
        self.lock().insert(pending.auth_req_id.clone(), pending);
    }

    /// Forgets a request (e.g. expired).
    pub fn remove(&self, auth_req_id: &str) -> Option<SiPending> {
        self.lock().remove(auth_req_id)
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Authenticates and reads a notification; on success the pending request is taken
    /// out (a replay then gets [`NotificationError::UnknownRequest`]).
    pub fn handle(
        &self,
        authorization: Option<&str>,
        body: &[u8],
    ) -> Result<(SiPending, SiNotification), NotificationError> {
        if bearer(authorization).is_none() {
            return Err(NotificationError::MissingBearer);
        }
        let (id, _) = read_body(body)?;
        let mut map = self.lock();
        let pending = map
            .get(&id)
            .ok_or_else(|| NotificationError::UnknownRequest(id.clone()))?;
        let n = parse_notification(authorization, body, pending)?;
        let pending = map
            .remove(&id)
            .ok_or(NotificationError::UnknownRequest(id))?;
        Ok((pending, n))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn pending() -> SiPending {
        SiPending {
            issuer: "i".into(),
            client_id: "c".into(),
            auth_req_id: "req-1".into(),
            expires_at: 0,
            correlation_id: "corr".into(),
            nonce: "n".into(),
            acr_values: "2".into(),
            scope: "openid mc_authn".into(),
            notification_token: Some(Secret::new("tok-123")),
            msisdn: None,
            hhe_uri: None,
        }
    }

    #[test]
    fn the_bearer_must_be_the_requests_token() {
        let body =
            br#"{"auth_req_id":"req-1","access_token":"a","token_type":"Bearer","id_token":"x"}"#;
        let n = SiNotifications::default();
        n.insert(pending());
        assert_eq!(
            n.handle(None, body).unwrap_err(),
            NotificationError::MissingBearer
        );
        assert_eq!(
            n.handle(Some("Bearer tok-124"), body).unwrap_err(),
            NotificationError::WrongBearer
        );
        assert_eq!(
            n.handle(Some("Bearer tok-124"), body)
                .unwrap_err()
                .http_status(),
            401
        );
        let (p, got) = n.handle(Some("bearer tok-123"), body).unwrap();
        assert_eq!(p.auth_req_id, "req-1");
        assert!(matches!(got.result, SiResult::Tokens(_)));
        // Taken once.
        assert_eq!(
            n.handle(Some("Bearer tok-123"), body).unwrap_err(),
            NotificationError::UnknownRequest("req-1".into())
        );
    }

    #[test]
    fn errors_and_malformed_bodies() {
        let p = pending();
        let denied = br#"{"auth_req_id":"req-1","error":"authorization_error","error_description":"Subscriber denied the request"}"#;
        match parse_notification(Some("Bearer tok-123"), denied, &p)
            .unwrap()
            .result
        {
            SiResult::Error { error, .. } => assert_eq!(error, "authorization_error"),
            other => panic!("{other:?}"),
        }
        for bad in [&b"[]"[..], b"{}", br#"{"auth_req_id":"req-1"}"#] {
            let e = parse_notification(Some("Bearer tok-123"), bad, &p).unwrap_err();
            assert!(matches!(e, NotificationError::Malformed(_)), "{e:?}");
            assert_eq!(e.http_status(), 400);
        }
        assert_eq!(
            parse_notification(
                Some("Bearer tok-123"),
                br#"{"auth_req_id":"other","error":"x"}"#,
                &p
            )
            .unwrap_err(),
            NotificationError::UnknownRequest("other".into())
        );
    }
}
