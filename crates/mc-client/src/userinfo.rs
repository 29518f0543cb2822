//! `userinfo` and `premiuminfo` (digest §8): GET with the access token as Bearer; the
//! answer is JSON or a signed JWT (verified with the operator's keys, `iss`/`aud` checked
//! when present). `sub` must equal the id_token's (OIDC Core §5.3.2) when one is given.

use serde_json::{Map, Value};

use crate::Operator;
use crate::error::{Error, transport};
use crate::id_token::IdToken;
use crate::jose::Jws;
use crate::operator::protocol_error;

impl Operator {
    /// The userinfo endpoint's claims.
    pub async fn userinfo(
        &self,
        access_token: &str,
        id_token: Option<&IdToken>,
    ) -> Result<Map<String, Value>, Error> {
        let url = self
            .endpoints
            .userinfo
            .clone()
            .ok_or_else(|| Error::Unsupported("userinfo".into()))?;
        self.info("userinfo", &url, access_token, id_token).await
    }

    /// The premiuminfo endpoint's claims (identity products, KYC).
    pub async fn premiuminfo(
        &self,
        access_token: &str,
        id_token: Option<&IdToken>,
    ) -> Result<Map<String, Value>, Error> {
        let url = self
            .endpoints
            .premiuminfo
            .clone()
            .ok_or_else(|| Error::Unsupported("premiuminfo".into()))?;
        self.info("premiuminfo", &url, access_token, id_token).await
    }

    /// Identity data the way the GSMA demo fetches it: premiuminfo from `mc_v2.0` on when
    /// the operator has one, else userinfo.
    pub async fn identity(
        &self,
        access_token: &str,
        id_token: Option<&IdToken>,
    ) -> Result<Map<String, Value>, Error> {
        if self.endpoints.premiuminfo.is_some() {
            self.premiuminfo(access_token, id_token).await
        } else {
            self.userinfo(access_token, id_token).await
        }
    }

    async fn info(
        &self,
        endpoint: &'static str,
        url: &str,
        access_token: &str,
        id_token: Option<&IdToken>,
    ) -> Result<Map<String, Value>, Error> {
        let resp = self
            .ctx
            .http
            .get(url)
            .bearer_auth(access_token)
            .header("accept", "application/json, application/jwt")
            .send()
            .await
            .map_err(|e| transport(endpoint, e))?;
        if !resp.status().is_success() {
            return Err(protocol_error(endpoint, resp).await);
        }
        let is_jwt = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.starts_with("application/jwt"));
        let text = resp.text().await.map_err(|e| transport(endpoint, e))?;
        let invalid = |detail: String| Error::InvalidResponse { endpoint, detail };
        let claims = if is_jwt || looks_like_jws(&text) {
            let jws = Jws::parse(text.trim()).map_err(|e| invalid(e.to_string()))?;
            let keys = self.jwks(jws.kid()).await?;
            jws.verify(&keys)?;
            if let Some(iss) = jws.claims.get("iss").and_then(Value::as_str)
                && iss != self.metadata.issuer
            {
                return Err(invalid(format!("signed answer from issuer {iss:?}")));
            }
            let aud_ok = match jws.claims.get("aud") {
                None => true,
                Some(Value::String(a)) => *a == self.credentials.client_id,
                Some(Value::Array(a)) => a
                    .iter()
                    .any(|v| v.as_str() == Some(&self.credentials.client_id)),
                Some(_) => false,
            };
            if !aud_ok {
                return Err(invalid("signed answer for another audience".into()));
            }
            jws.claims
        } else {
            match serde_json::from_str::<Value>(&text) {
                Ok(Value::Object(m)) => m,
                _ => return Err(invalid("neither a JSON object nor a JWT".into())),
            }
        };
        // A body containing "error" is an error (the Java SDK's rule).
        if let Some(error) = claims.get("error").and_then(Value::as_str) {
            return Err(Error::Protocol {
                endpoint,
                status: 200,
                error: error.to_owned(),
                description: claims
                    .get("error_description")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
            });
        }
        if let Some(t) = id_token
            && claims.get("sub").and_then(Value::as_str) != Some(t.sub.as_str())
        {
            return Err(invalid("sub differs from the id_token's".into()));
        }
        Ok(claims)
    }
}

fn looks_like_jws(body: &str) -> bool {
    let b = body.trim();
    b.split('.').count() == 3 && !b.starts_with('{')
}
