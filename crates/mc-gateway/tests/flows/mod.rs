//! Request builders shared by the error-path suites (`authorize_errors`, `bad_input`,
//! `token_endpoint`, `metadata_admin`): an editable authorization query, a login that ends
//! in a code, and the token call. Each suite includes it next to `mod common;`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::Value;

use crate::common::*;

/// An authorization request's parameters, in order, editable by name.
#[derive(Clone, Debug)]
pub struct Q(pub Vec<(String, String)>);

impl Q {
    /// A complete, valid `mc_authn` request of `sp` for `msisdn`, with `state=st-1`,
    /// `nonce=n-1` and `correlation_id=corr-1`.
    pub fn valid(sp: &Sp, msisdn: &str) -> Q {
        Q([
            ("client_id", sp.client_id.as_str()),
            ("redirect_uri", sp.redirect_uri.as_str()),
            ("response_type", "code"),
            ("scope", "openid mc_authn"),
            ("acr_values", "2"),
            ("version", "mc_di_r2_v2.3"),
            ("state", "st-1"),
            ("nonce", "n-1"),
            ("login_hint", &format!("MSISDN:{msisdn}")),
            ("correlation_id", "corr-1"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect())
    }

    /// Replaces the first `k` (or appends it).
    pub fn set(&mut self, k: &str, v: &str) -> &mut Self {
        match self.0.iter_mut().find(|(key, _)| key == k) {
            Some(pair) => pair.1 = v.to_owned(),
            None => self.0.push((k.to_owned(), v.to_owned())),
        }
        self
    }

    /// Removes every `k`.
    pub fn del(&mut self, k: &str) -> &mut Self {
        self.0.retain(|(key, _)| key != k);
        self
    }

    /// Appends `k=v` (a second copy if `k` is there already).
    pub fn add(&mut self, k: &str, v: &str) -> &mut Self {
        self.0.push((k.to_owned(), v.to_owned()));
        self
    }

    pub fn get(&self, k: &str) -> String {
        self.0
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }

    /// `application/x-www-form-urlencoded`.
    pub fn encode(&self) -> String {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.0 {
            s.append_pair(k, v);
        }
        s.finish()
    }

    pub fn url(&self, g: &Gateway) -> String {
        format!("{}/authorize?{}", g.base, self.encode())
    }
}

/// Runs a login of `q` (whose hint must name `msisdn`) with the phone tapping OK; returns
/// the final redirect to the SP.
pub async fn login(g: &Gateway, q: &Q, msisdn: &str, redirect_uri: &str) -> String {
    let phone = g.phone(msisdn);
    let answer = tokio::spawn(async move { phone.approve_next().await });
    let back = follow_to_redirect_uri(g, &q.url(g), redirect_uri).await;
    answer.await.unwrap();
    back
}

/// A fresh authorization code for `sp` and `msisdn` (LoA2, `q` edited by `edit`).
pub async fn code_for(g: &Gateway, sp: &Sp, msisdn: &str, edit: impl FnOnce(&mut Q)) -> String {
    let mut q = Q::valid(sp, msisdn);
    edit(&mut q);
    let back = login(g, &q, msisdn, &sp.redirect_uri).await;
    let query = query_of(&back);
    query
        .get("code")
        .unwrap_or_else(|| panic!("no code in {back}"))
        .clone()
}

/// `Authorization: Basic` per RFC 6749 §2.3.1 (form-encoded before base64).
pub fn basic(id: &str, secret: &str) -> String {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", enc(id), enc(secret)))
    )
}

/// `POST /token` with a form body and optional Basic credentials.
pub async fn post_token(
    g: &Gateway,
    credentials: Option<(&str, &str)>,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let body = serde_urlencoded::to_string(form).unwrap();
    let mut req = g
        .http()
        .post(format!("{}/token", g.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body);
    if let Some((id, secret)) = credentials {
        req = req.header("authorization", basic(id, secret));
    }
    req.send().await.unwrap()
}

/// Exchanges `code` with `sp`'s credentials; panics unless 200. Returns the JSON body.
pub async fn redeem(g: &Gateway, sp: &Sp, code: &str) -> Value {
    let resp = post_token(
        g,
        Some((&sp.client_id, &sp.secret)),
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &sp.redirect_uri),
        ],
    )
    .await;
    let status = resp.status();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    body
}

/// The claims of a compact JWS (not verified: the token suites check signatures elsewhere).
pub fn jwt_claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("a compact JWS");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// The header of a compact JWS.
pub fn jwt_header(jwt: &str) -> Value {
    let header = jwt.split('.').next().expect("a compact JWS");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap()
}

/// A redirect's query as `(error, error_description)`.
pub fn error_of(location: &str) -> (String, String) {
    let q = query_of(location);
    (
        q.get("error").cloned().unwrap_or_default(),
        q.get("error_description").cloned().unwrap_or_default(),
    )
}

/// `GET /userinfo` with `token`: status and body.
pub async fn userinfo(g: &Gateway, token: &str) -> (u16, Value) {
    let resp = g
        .http()
        .get(format!("{}/userinfo", g.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}
