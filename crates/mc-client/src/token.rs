//! The token endpoint (digest §5): code exchange, refresh, and the CIBA-style poll of
//! server-initiated requests, with client_secret_basic, client_secret_post or
//! private_key_jwt.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::authorize::PendingLogin;
use crate::error::{Error, IdTokenError, transport};
use crate::id_token::{Expectations, IdToken};
use crate::jose::random_token;
use crate::operator::protocol_error;
use crate::{Operator, TokenAuth};

/// A token response (digest §5.2). `expires_in` is accepted as a number or a string
/// (Deutsche Telekom sends `"500"`).
#[derive(Clone, Serialize, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: Option<i64>,
    pub id_token: Option<String>,
    pub refresh_token: Option<String>,
    pub scope: Option<String>,
    pub correlation_id: Option<String>,
    /// Every other member.
    pub extra: Map<String, Value>,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .field("correlation_id", &self.correlation_id)
            .finish_non_exhaustive()
    }
}

impl TokenResponse {
    /// Reads a token response body (also the token part of an SI notification).
    pub fn from_json(mut body: Map<String, Value>) -> Result<TokenResponse, String> {
        let mut take = |k: &str| body.remove(k);
        let text = |v: Option<Value>| match v {
            Some(Value::String(s)) if !s.is_empty() => Some(s),
            _ => None,
        };
        let access_token = text(take("access_token")).ok_or("no access_token")?;
        let token_type = text(take("token_type")).unwrap_or_else(|| "Bearer".into());
        let expires_in = match take("expires_in") {
            Some(Value::Number(n)) => n.as_i64(),
            Some(Value::String(s)) => s.parse().ok(),
            _ => None,
        };
        if expires_in.is_some_and(|e| e <= 0) {
            return Err("the access token is already expired".into());
        }
        Ok(TokenResponse {
            access_token,
            token_type,
            expires_in,
            id_token: text(take("id_token")),
            refresh_token: text(take("refresh_token")),
            scope: text(take("scope")),
            correlation_id: text(take("correlation_id")),
            extra: body,
        })
    }
}

/// What a token-endpoint call came back with.
pub(crate) enum TokenOutcome {
    Tokens(TokenResponse),
    /// An OAuth error body (400/401).
    Refused {
        status: u16,
        error: String,
        description: String,
    },
}

impl Operator {
    /// `grant_type=authorization_code` for a pending login.
    pub async fn exchange_code(
        &self,
        pending: &PendingLogin,
        code: &str,
    ) -> Result<TokenResponse, Error> {
        let mut form = vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code.to_owned()),
            ("redirect_uri", pending.redirect_uri.clone()),
            ("correlation_id", pending.correlation_id.clone()),
        ];
        if let Some(v) = &pending.code_verifier {
            form.push(("code_verifier", v.expose().to_owned()));
        }
        let tokens = self.token_call(form).await?.into_result()?;
        if let Some(received) = &tokens.correlation_id
            && *received != pending.correlation_id
        {
            return Err(Error::CorrelationIdMismatch {
                sent: pending.correlation_id.clone(),
                received: received.clone(),
            });
        }
        Ok(tokens)
    }

    /// `grant_type=refresh_token`.
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenResponse, Error> {
        self.token_call(vec![
            ("grant_type", "refresh_token".into()),
            ("refresh_token", refresh_token.into()),
        ])
        .await?
        .into_result()
    }

    /// Validates the id_token of a token response (digest §6.3) against `expect`, with
    /// `at_hash` checked against the response's access token.
    pub async fn validate_tokens(
        &self,
        tokens: &TokenResponse,
        expect: &Expectations,
    ) -> Result<IdToken, Error> {
        let jwt = tokens.id_token.as_deref().ok_or(IdTokenError::Missing)?;
        let mut expect = expect.clone();
        expect.access_token = Some(tokens.access_token.clone());
        Ok(self.validate_id_token(jwt, &expect).await?)
    }

    /// POSTs `form` to the token endpoint with the client's authentication.
    pub(crate) async fn token_call(
        &self,
        mut form: Vec<(&'static str, String)>,
    ) -> Result<TokenOutcome, Error> {
        let c = &self.credentials;
        let secret = || {
            c.client_secret
                .as_ref()
                .map(|s| s.expose().to_owned())
                .ok_or_else(|| {
                    Error::InvalidRequest("client_secret authentication without a secret".into())
                })
        };
        let mut req = self.ctx.http.post(&self.endpoints.token);
        match &c.auth {
            TokenAuth::ClientSecretBasic => {
                // RFC 6749 §2.3.1: form-encode both before base64.
                let enc = |s: &str| {
                    url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>()
                };
                req = req.basic_auth(enc(&c.client_id), Some(enc(&secret()?)));
            }
            TokenAuth::ClientSecretPost => {
                form.push(("client_id", c.client_id.clone()));
                form.push(("client_secret", secret()?));
            }
            TokenAuth::PrivateKeyJwt(key) => {
                let now = self.now();
                let assertion = key.sign(&json!({
                    "iss": c.client_id, "sub": c.client_id,
                    "aud": self.endpoints.token,
                    "iat": now, "exp": now + 60, "jti": random_token(16),
                }))?;
                form.push(("client_id", c.client_id.clone()));
                form.push((
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into(),
                ));
                form.push(("client_assertion", assertion));
            }
        }
        let resp = req
            .header("accept", "application/json")
            .form(&form)
            .send()
            .await
            .map_err(|e| transport("token", e))?;
        let status = resp.status().as_u16();
        if resp.status().is_success() {
            // The Java fixtures answer 202; any 2xx with a token body is accepted.
            let body: Map<String, Value> =
                resp.json().await.map_err(|e| Error::InvalidResponse {
                    endpoint: "token",
                    detail: e.without_url().to_string(),
                })?;
            return TokenResponse::from_json(body)
                .map(TokenOutcome::Tokens)
                .map_err(|detail| Error::InvalidResponse {
                    endpoint: "token",
                    detail,
                });
        }
        match protocol_error("token", resp).await {
            Error::Protocol {
                error, description, ..
            } if status < 500 => Ok(TokenOutcome::Refused {
                status,
                error,
                description,
            }),
            other => Err(other),
        }
    }
}

impl TokenOutcome {
    pub(crate) fn into_result(self) -> Result<TokenResponse, Error> {
        match self {
            TokenOutcome::Tokens(t) => Ok(t),
            TokenOutcome::Refused {
                status,
                error,
                description,
            } => Err(Error::Protocol {
                endpoint: "token",
                status,
                error,
                description,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn string_expires_in_is_tolerated_and_extras_kept() {
        let t = TokenResponse::from_json(obj(json!({
            "access_token": "a", "token_type": "Bearer", "expires_in": "500", "x": 1
        })))
        .unwrap();
        assert_eq!(t.expires_in, Some(500));
        assert_eq!(t.extra["x"], 1);
    }

    #[test]
    fn missing_or_expired_access_tokens_are_refused() {
        assert!(TokenResponse::from_json(obj(json!({"token_type": "Bearer"}))).is_err());
        assert!(
            TokenResponse::from_json(obj(json!({"access_token": "a", "expires_in": 0}))).is_err()
        );
    }
}
