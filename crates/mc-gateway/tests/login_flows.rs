//! Complete logins driven by a standard OpenID Connect relying party (the `openidconnect`
//! crate): discovery from the issuer, an authorization URL with the Mobile Connect parameters
//! and PKCE S256, the gateway's redirects followed while the phone answers through the
//! app-push device API, the code exchanged and the id_token verified (signature via JWKS,
//! `iss`, `aud`, `nonce`, `at_hash`), then the Mobile Connect claims checked.

// A test crate: helpers outside `#[test]` functions (this file's and the shared harness's)
// panic on purpose, which `allow-unwrap-in-tests` in clippy.toml does not cover.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use common::*;
use mc_authn::answer::{Answer, AnswerContext, AnswerOutcome, answer_read_challenge};
use mc_authn::push::AppPush;
use mc_core::msisdn::Msisdn;
use mc_gateway::registry;
use mc_store::SubscriberStatus;
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreErrorResponseType,
    CoreGenderClaim, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm,
    CoreProviderMetadata, CoreRevocableToken, CoreRevocationErrorResponse,
    CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AccessTokenHash, AdditionalClaims, AuthorizationCode, Client, ClientId, ClientSecret,
    CsrfToken, EmptyAdditionalClaims, EndpointMaybeSet, EndpointNotSet, EndpointSet,
    ExtraTokenFields, IdTokenClaims, IdTokenFields, IssuerUrl, JsonWebKey, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
    StandardErrorResponse, StandardTokenResponse, SubjectIdentifier, TokenResponse, UserInfoClaims,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

// ---------------------------------------------------------------------------------------------
// The relying party: openidconnect's client typed with the Mobile Connect claims.

const MSISDN: &str = "447700900301";
const OTHER_MSISDN: &str = "447700900302";
const MC_VERSION: &str = "mc_di_r2_v2.3";

/// The Mobile Connect claims of the id_token beyond the OIDC standard ones (`acr`, `amr`,
/// `auth_time`, `at_hash` are read through openidconnect's own accessors).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct McClaims {
    hashed_login_hint: String,
    #[serde(default)]
    displayed_data: Option<String>,
    #[serde(default)]
    correlation_id: Option<String>,
}
impl AdditionalClaims for McClaims {}

/// The token response's Mobile Connect field.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct McTokenFields {
    #[serde(default)]
    correlation_id: Option<String>,
}
impl ExtraTokenFields for McTokenFields {}

type McTokenResponse = StandardTokenResponse<
    IdTokenFields<
        McClaims,
        McTokenFields,
        CoreGenderClaim,
        CoreJweContentEncryptionAlgorithm,
        CoreJwsSigningAlgorithm,
    >,
    CoreTokenType,
>;
type McIdTokenClaims = IdTokenClaims<McClaims, CoreGenderClaim>;
type McClient = Client<
    McClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    McTokenResponse,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// A service provider's OIDC client, configured from the gateway's discovery document.
struct Rp {
    client: McClient,
    http: reqwest::Client,
    sp: Sp,
    metadata: CoreProviderMetadata,
}

/// One authorization request as the SP remembers it.
struct AuthReq {
    url: String,
    state: CsrfToken,
    nonce: Nonce,
    verifier: String,
}

/// A verified token response.
struct Tokens {
    response: McTokenResponse,
    claims: McIdTokenClaims,
    access_token: String,
}

impl Tokens {
    fn sub(&self) -> String {
        self.claims.subject().as_str().to_owned()
    }
    fn acr(&self) -> String {
        self.claims
            .auth_context_ref()
            .map(|a| a.as_str().to_owned())
            .expect("acr in the id_token")
    }
    fn amr(&self) -> Vec<String> {
        self.claims
            .auth_method_refs()
            .expect("amr in the id_token")
            .iter()
            .map(|a| a.as_str().to_owned())
            .collect()
    }
    fn mc(&self) -> &McClaims {
        self.claims.additional_claims()
    }
}

impl Rp {
    async fn discover(g: &Gateway, sp: &Sp) -> Rp {
        // Following redirects from the OP is an SSRF risk; openidconnect says never.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let metadata =
            CoreProviderMetadata::discover_async(IssuerUrl::new(g.base.clone()).unwrap(), &http)
                .await
                .expect("discovery from the issuer");
        let client = McClient::from_provider_metadata(
            metadata.clone(),
            ClientId::new(sp.client_id.clone()),
            Some(ClientSecret::new(sp.secret.clone())),
        )
        .set_redirect_uri(RedirectUrl::new(sp.redirect_uri.clone()).unwrap());
        Rp {
            client,
            http,
            sp: sp.clone(),
            metadata,
        }
    }

    /// An authorization URL with `openid` + `scopes`, PKCE S256 and the extra parameters.
    fn authorize(&self, scopes: &[&str], params: &[(&str, &str)]) -> AuthReq {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut req = self
            .client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge);
        for s in scopes {
            req = req.add_scope(Scope::new((*s).to_owned()));
        }
        for (k, v) in params {
            req = req.add_extra_param((*k).to_owned(), (*v).to_owned());
        }
        let (url, state, nonce) = req.url();
        AuthReq {
            url: url.to_string(),
            state,
            nonce,
            verifier: verifier.secret().clone(),
        }
    }

    /// Checks `state`, exchanges the code (PKCE) and verifies the id_token.
    async fn redeem(&self, req: &AuthReq, back: &str) -> Tokens {
        let code = code_of(req, back);
        let response = self
            .client
            .exchange_code(AuthorizationCode::new(code))
            .expect("token endpoint in the metadata")
            .set_pkce_verifier(PkceCodeVerifier::new(req.verifier.clone()))
            .request_async(&self.http)
            .await
            .expect("token exchange");
        self.verify(response, &req.nonce)
    }

    /// openidconnect's id_token verification (signature via JWKS, iss, aud, exp, nonce) and
    /// `at_hash` against the access token.
    fn verify(&self, response: McTokenResponse, nonce: &Nonce) -> Tokens {
        let id_token = response.id_token().expect("an id_token").clone();
        let verifier = self.client.id_token_verifier();
        let claims = id_token
            .claims(&verifier, nonce)
            .expect("the id_token verifies")
            .clone();
        let expected = claims.access_token_hash().expect("at_hash in the id_token");
        let actual = AccessTokenHash::from_token(
            response.access_token(),
            id_token.signing_alg().unwrap(),
            id_token.signing_key(&verifier).unwrap(),
        )
        .unwrap();
        assert_eq!(&actual, expected, "at_hash matches the access token");
        Tokens {
            access_token: response.access_token().secret().clone(),
            claims,
            response,
        }
    }

    /// /userinfo through openidconnect, checking `sub`.
    async fn userinfo(
        &self,
        access_token: &str,
        sub: &str,
    ) -> UserInfoClaims<EmptyAdditionalClaims, CoreGenderClaim> {
        self.client
            .user_info(
                openidconnect::AccessToken::new(access_token.to_owned()),
                Some(SubjectIdentifier::new(sub.to_owned())),
            )
            .expect("userinfo endpoint in the metadata")
            .request_async(&self.http)
            .await
            .expect("userinfo")
    }

    /// A raw token request (to see statuses openidconnect does not expose).
    async fn raw_token(
        &self,
        code: &str,
        verifier: &str,
        basic: Option<(&str, &str)>,
        body_creds: Option<(&str, &str)>,
    ) -> (u16, Value) {
        let mut form = vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code.to_owned()),
            ("redirect_uri", self.sp.redirect_uri.clone()),
            ("code_verifier", verifier.to_owned()),
        ];
        if let Some((id, secret)) = body_creds {
            form.push(("client_id", id.to_owned()));
            form.push(("client_secret", secret.to_owned()));
        }
        let mut req = self
            .http
            .post(self.metadata.token_endpoint().unwrap().as_str())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(&form).unwrap());
        if let Some((id, secret)) = basic {
            req = req.basic_auth(id, Some(secret));
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// GET /userinfo with a bearer token, raw.
    async fn raw_userinfo(&self, access_token: &str) -> (u16, Value) {
        let resp = self
            .http
            .get(self.metadata.userinfo_endpoint().unwrap().as_str())
            .bearer_auth(access_token)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }
}

// ---------------------------------------------------------------------------------------------
// Driving the front channel.

/// The `code` of a successful redirect, after checking `state`.
fn code_of(req: &AuthReq, back: &str) -> String {
    let q = query_of(back);
    assert_eq!(
        q.get("state"),
        Some(req.state.secret()),
        "state echoed: {back}"
    );
    q.get("code")
        .unwrap_or_else(|| panic!("no code in {back}"))
        .clone()
}

/// The phone taps OK on the next challenge (LoA2), in its own task.
fn approve(g: &Gateway, msisdn: &str) -> JoinHandle<DeviceChallenge> {
    let phone = g.phone(msisdn);
    tokio::spawn(async move { phone.approve_next().await })
}

/// Follows the gateway's redirects from `url` while the phone task answers; fails fast if
/// the phone task panics.
async fn drive<T>(g: &Gateway, url: &str, sp: &Sp, phone: JoinHandle<T>) -> (String, T) {
    let follow = follow_to_redirect_uri(g, url, &sp.redirect_uri);
    tokio::pin!(follow);
    let mut phone = phone;
    tokio::select! {
        back = &mut follow => (back, phone.await.expect("phone task")),
        answered = &mut phone => {
            let t = answered.expect("phone task");
            (follow.await, t)
        }
    }
}

/// A complete login at LoA2 of `msisdn`, returning the verified tokens.
async fn login(
    g: &Gateway,
    rp: &Rp,
    scopes: &[&str],
    params: &[(&str, &str)],
    msisdn: &str,
) -> Tokens {
    let req = rp.authorize(scopes, params);
    let (back, _) = drive(g, &req.url, &rp.sp, approve(g, msisdn)).await;
    rp.redeem(&req, &back).await
}

/// A request that is refused without involving the phone: the error redirect's parameters.
async fn refused(
    g: &Gateway,
    rp: &Rp,
    scopes: &[&str],
    params: &[(&str, &str)],
) -> HashMap<String, String> {
    let req = rp.authorize(scopes, params);
    let back = follow_to_redirect_uri(g, &req.url, &rp.sp.redirect_uri).await;
    let q = query_of(&back);
    assert!(!q.contains_key("code"), "unexpected code: {back}");
    assert_eq!(q.get("state"), Some(req.state.secret()), "{back}");
    q
}

fn error_of(q: &HashMap<String, String>) -> (&str, &str) {
    (
        q.get("error").map(String::as_str).unwrap_or("<none>"),
        q.get("error_description")
            .map(String::as_str)
            .unwrap_or("<none>"),
    )
}

fn hint(msisdn: &str) -> String {
    format!("MSISDN:{msisdn}")
}

/// Lowercase hex SHA-256, computed here independently of the gateway.
fn sha256_hex(s: &str) -> String {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, s.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The usual LoA2 authentication parameters for `login_hint`.
fn authn_params(login_hint: &str) -> Vec<(&str, &str)> {
    vec![
        ("version", MC_VERSION),
        ("acr_values", "2"),
        ("login_hint", login_hint),
    ]
}

/// A plain HTTP client without redirects (for one hop at a time).
fn one_hop() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// 1. LoA2 authentication, end to end.

#[tokio::test]
async fn loa2_authn_login_yields_a_verified_mobile_connect_id_token() {
    let g = Gateway::start().await;
    let sp = g.shop().await;
    g.subscriber(MSISDN, None).await;
    let rp = Rp::discover(&g, &sp).await;
    let h = hint(MSISDN);
    let req = rp.authorize(
        &["mc_authn"],
        &[
            ("version", MC_VERSION),
            ("acr_values", "2"),
            ("login_hint", &h),
            ("correlation_id", "corr-0001"),
        ],
    );
    let before = unix_now();
    let (back, challenge) = drive(&g, &req.url, &sp, approve(&g, MSISDN)).await;
    assert_eq!(challenge.loa, "2");
    assert_eq!(
        query_of(&back).get("correlation_id").map(String::as_str),
        Some("corr-0001"),
        "correlation_id echoed in the redirect: {back}"
    );
    let t = rp.redeem(&req, &back).await;

    assert_eq!(t.acr(), "2");
    assert_eq!(t.amr(), vec!["PUSH_OK"]);
    let auth_time = t.claims.auth_time().expect("auth_time").timestamp();
    assert!(
        (before - 5..=unix_now() + 5).contains(&auth_time),
        "auth_time {auth_time} is the time of the phone's answer"
    );
    assert_eq!(t.mc().hashed_login_hint, sha256_hex("MSISDN:447700900301"));
    assert_eq!(t.mc().correlation_id.as_deref(), Some("corr-0001"));
    assert_eq!(
        t.response
            .extra_fields()
            .extra_fields()
            .correlation_id
            .as_deref(),
        Some("corr-0001"),
        "correlation_id echoed in the token response"
    );
    assert!(
        t.mc().displayed_data.is_none(),
        "no displayed_data for mc_authn"
    );
    let sub = t.sub();
    assert!(
        !sub.contains("7700900301"),
        "sub must not reveal the MSISDN: {sub}"
    );

    let info = rp.userinfo(&t.access_token, &sub).await;
    assert_eq!(info.subject().as_str(), sub);
    let (status, raw) = rp.raw_userinfo(&t.access_token).await;
    assert_eq!(status, 200);
    assert_eq!(raw["sub"], json!(sub));
    assert!(
        raw.get("phone_number").is_none(),
        "mc_authn releases no phone number: {raw}"
    );
}

// ---------------------------------------------------------------------------------------------
// 2. LoA3 with a PIN; a missing or wrong PIN keeps the challenge open.

#[tokio::test]
async fn loa3_needs_the_right_pin_and_wrong_pins_keep_the_challenge_open() {
    let g = Gateway::start().await;
    let sp = g.shop().await;
    g.subscriber(MSISDN, Some("1234")).await;
    let rp = Rp::discover(&g, &sp).await;
    let h = hint(MSISDN);
    let req = rp.authorize(
        &["mc_authn"],
        &[
            ("version", MC_VERSION),
            ("acr_values", "3"),
            ("login_hint", &h),
        ],
    );
    let phone = g.phone(MSISDN);
    let task = tokio::spawn(async move {
        let c = phone.next_challenge().await;
        assert_eq!(c.loa, "3", "the phone is asked for a PIN");
        let no_pin = phone.answer(&c.id, Answer::Approve { pin: None }).await;
        assert_eq!(no_pin, AnswerOutcome::WrongPin { remaining: 2 });
        assert_eq!(phone.pending().await.len(), 1, "still open after no PIN");
        let wrong = phone
            .answer(
                &c.id,
                Answer::Approve {
                    pin: Some("9999".into()),
                },
            )
            .await;
        assert_eq!(wrong, AnswerOutcome::WrongPin { remaining: 1 });
        assert_eq!(
            phone.pending().await.len(),
            1,
            "still open after a wrong PIN"
        );
        let right = phone
            .answer(
                &c.id,
                Answer::Approve {
                    pin: Some("1234".into()),
                },
            )
            .await;
        assert_eq!(right, AnswerOutcome::Approved);
    });
    let (back, ()) = drive(&g, &req.url, &sp, task).await;
    let t = rp.redeem(&req, &back).await;
    assert_eq!(t.acr(), "3");
    assert_eq!(t.amr(), vec!["PUSH_PIN"]);
}

// ---------------------------------------------------------------------------------------------
// 3. Lockout after three wrong PINs, fallback to LoA2, reset by a new PIN.

#[tokio::test]
async fn three_wrong_pins_lock_loa3_until_a_new_pin_is_set() {
    let g = Gateway::start().await;
    let sp = g.shop().await;
    g.subscriber(MSISDN, Some("1234")).await;
    let rp = Rp::discover(&g, &sp).await;
    let h = hint(MSISDN);
    let loa3 = [
        ("version", MC_VERSION),
        ("acr_values", "3"),
        ("login_hint", &h),
    ];

    let req = rp.authorize(&["mc_authn"], &loa3);
    let phone = g.phone(MSISDN);
    let task = tokio::spawn(async move {
        let c = phone.next_challenge().await;
        let mut outcomes = vec![];
        for _ in 0..3 {
            let pin = Some("0000".to_owned());
            outcomes.push(phone.answer(&c.id, Answer::Approve { pin }).await);
        }
        outcomes
    });
    let (back, outcomes) = drive(&g, &req.url, &sp, task).await;
    assert_eq!(
        outcomes,
        vec![
            AnswerOutcome::WrongPin { remaining: 2 },
            AnswerOutcome::WrongPin { remaining: 1 },
            AnswerOutcome::Locked
        ]
    );
    let q = query_of(&back);
    assert_eq!(
        error_of(&q),
        ("access_denied", "The user has run out of PIN attempts"),
        "{back}"
    );
    assert!(!q.contains_key("code"));

    // LoA3 alone is now refused up front.
    let q = refused(&g, &rp, &["mc_authn"], &loa3).await;
    assert_eq!(
        error_of(&q),
        ("access_denied", "The user has run out of PIN attempts")
    );

    // "3 2" falls back to LoA2.
    let req = rp.authorize(
        &["mc_authn"],
        &[
            ("version", MC_VERSION),
            ("acr_values", "3 2"),
            ("login_hint", &h),
        ],
    );
    let (back, c) = drive(&g, &req.url, &sp, approve(&g, MSISDN)).await;
    assert_eq!(c.loa, "2");
    let t = rp.redeem(&req, &back).await;
    assert_eq!(t.acr(), "2");
    assert_eq!(t.amr(), vec!["PUSH_OK"]);

    // A new PIN unlocks LoA3, with a fresh failure count.
    registry::set_subscriber_pin(g.store(), MSISDN, Some("2468"))
        .await
        .unwrap();
    let req = rp.authorize(&["mc_authn"], &loa3);
    let phone = g.phone(MSISDN);
    let task = tokio::spawn(async move {
        let c = phone.next_challenge().await;
        assert_eq!(c.loa, "3");
        let old = phone
            .answer(
                &c.id,
                Answer::Approve {
                    pin: Some("1234".into()),
                },
            )
            .await;
        let new = phone
            .answer(
                &c.id,
                Answer::Approve {
                    pin: Some("2468".into()),
                },
            )
            .await;
        (old, new)
    });
    let (back, (old, new)) = drive(&g, &req.url, &sp, task).await;
    assert_eq!(
        old,
        AnswerOutcome::WrongPin { remaining: 2 },
        "old PIN gone, count reset"
    );
    assert_eq!(new, AnswerOutcome::Approved);
    let t = rp.redeem(&req, &back).await;
    assert_eq!(t.acr(), "3");
    assert_eq!(t.amr(), vec!["PUSH_PIN"]);
}

// ---------------------------------------------------------------------------------------------
// 4. acr_values for a subscriber without a PIN.

#[tokio::test]
async fn without_a_pin_acr_3_2_falls_back_and_acr_3_is_refused() {
    let g = Gateway::start().await;
    let sp = g.shop().await;
    g.subscriber(MSISDN, None).await;
    let rp = Rp::discover(&g, &sp).await;
    let h = hint(MSISDN);

    let t = login(
        &g,
        &rp,
        &["mc_authn"],
        &[
            ("version", MC_VERSION),
            ("acr_values", "3 2"),
            ("login_hint", &h),
        ],
        MSISDN,
    )
    .await;
    assert_eq!(t.acr(), "2");
    assert_eq!(t.amr(), vec!["PUSH_OK"]);

    let q = refused(
        &g,
        &rp,
        &["mc_authn"],
        &[
            ("version", MC_VERSION),
            ("acr_values", "3"),
            ("login_hint", &h),
        ],
    )
    .await;
    assert_eq!(
        error_of(&q),
        (
            "access_denied",
            "The requested level of assurance cannot be provided for this user"
        )
    );
    assert!(g.phone(MSISDN).pending().await.is_empty());
}

// ---------------------------------------------------------------------------------------------
// 5. mc_authz: the phone shows exactly the transaction; displayed_data says so.

#[tokio::test]
async fn authz_shows_the_transaction_on_the_phone_and_in_displayed_data() {
    let g = Gateway::start().await;
    let sp = g.shop().await;
    g.subscriber(MSISDN, None).await;
    let rp = Rp::discover(&g, &sp).await;
    let h = hint(MSISDN);
    let context = "Pay €10 to OnlineShopper";
    let req = rp.authorize(
        &["mc_authz"],
        &[
            ("version", MC_VERSION),
            ("acr_values", "2"),
            ("login_hint", &h),
            ("client_name", &sp.short_name),
            ("context", context),
            ("binding_message", "ABC-123"),
        ],
    );
    let (back, c) = drive(&g, &req.url, &sp, approve(&g, MSISDN)).await;
    assert_eq!(c.client_name, "OnlineShopper");
    assert_eq!(c.context.as_deref(), Some(context));
    assert_eq!(c.binding_message.as_deref(), Some("ABC-123"));
    let t = rp.redeem(&req, &back).await;
    let shown = t.mc().displayed_data.clone().expect("displayed_data");
    for part in ["OnlineShopper", context, "ABC-123"] {
        assert!(shown.contains(part), "{part:?} missing from {shown:?}");
    }
    assert_eq!(shown, "OnlineShopper | Pay €10 to OnlineShopper | ABC-123");

    let q = refused(
        &g,
        &rp,
        &["mc_authz"],
        &[
            ("version", MC_VERSION),
            ("acr_values", "2"),
            ("login_hint", &h),
            ("client_name", "SomeoneElse"),
            ("context", context),
            ("binding_message", "ABC-123"),
        ],
    )
    .await;
    assert_eq!(error_of(&q).0, "invalid_request");
    assert!(g.phone(MSISDN).pending().await.is_empty());
}

// ---------------------------------------------------------------------------------------------
// 6. PCRs: stable per SP, different between SPs, usable as a hint only at their SP.

#[tokio::test]
async fn pcr_is_stable_per_sp_differs_between_sps_and_works_as_a_hint_only_at_its_sp() {
    let g = Gateway::start().await;
    let shop = g.shop().await;
    let bank = g.sp("SecureBank", &["openid", "mc_authn"]).await;
    g.subscriber(MSISDN, None).await;
    g.subscriber(OTHER_MSISDN, None).await;
    let shop_rp = Rp::discover(&g, &shop).await;
    let bank_rp = Rp::discover(&g, &bank).await;
    let h = hint(MSISDN);

    let first = login(&g, &shop_rp, &["mc_authn"], &authn_params(&h), MSISDN).await;
    let second = login(&g, &shop_rp, &["mc_authn"], &authn_params(&h), MSISDN).await;
    assert_eq!(
        first.sub(),
        second.sub(),
        "same subscriber, same SP, same sub"
    );
    let other = login(
        &g,
        &shop_rp,
        &["mc_authn"],
        &authn_params(&hint(OTHER_MSISDN)),
        OTHER_MSISDN,
    )
    .await;
    assert_ne!(other.sub(), first.sub(), "another subscriber, another sub");
    let at_bank = login(&g, &bank_rp, &["mc_authn"], &authn_params(&h), MSISDN).await;
    assert_ne!(at_bank.sub(), first.sub(), "another SP, another sub");

    let pcr_hint = format!("PCR:{}", first.sub());
    let by_pcr = login(
        &g,
        &shop_rp,
        &["mc_authn"],
        &authn_params(&pcr_hint),
        MSISDN,
    )
    .await;
    assert_eq!(by_pcr.sub(), first.sub());
    assert_eq!(
        by_pcr.mc().hashed_login_hint,
        sha256_hex("MSISDN:447700900301")
    );

    let q = refused(&g, &bank_rp, &["mc_authn"], &authn_params(&pcr_hint)).await;
    assert_eq!(
        error_of(&q),
        ("access_denied", "Unknown Mobile Connect User")
    );
}

// ---------------------------------------------------------------------------------------------
// 7. A recycled number is a new subscriber with a new PCR.

#[tokio::test]
async fn a_recycled_number_gets_a_new_sub() {
    let g = Gateway::start().await;
    let sp = g.shop().await;
    g.subscriber(MSISDN, None).await;
    let rp = Rp::discover(&g, &sp).await;
    let h = hint(MSISDN);
    let before = login(&g, &rp, &["mc_authn"], &authn_params(&h), MSISDN).await;

    registry::update_subscriber(g.store(), MSISDN, Some(SubscriberStatus::Retired), None)
        .await
        .unwrap();
    let q = refused(&g, &rp, &["mc_authn"], &authn_params(&h)).await;
    assert_eq!(
        error_of(&q),
        ("access_denied", "Unknown Mobile Connect User"),
        "a retired subscriber cannot log in"
    );
    g.subscriber(MSISDN, None).await;
    let after = login(&g, &rp, &["mc_authn"], &authn_params(&h), MSISDN).await;
    assert_ne!(
        before.sub(),
        after.sub(),
        "the new holder of the number is someone else"
    );
    assert_eq!(after.mc().hashed_login_hint, before.mc().hashed_login_hint);
}

// ---------------------------------------------------------------------------------------------
// 8. ENCR_MSISDN in hex, base64 and base64url.

#[tokio::test]
async fn encrypted_msisdn_hints_in_every_encoding_log_in_the_right_subscriber() {
    let g = Gateway::start().await;
    let sp = g.shop().await;
    g.subscriber(MSISDN, None).await;
    g.subscriber(OTHER_MSISDN, None).await;
    let rp = Rp::discover(&g, &sp).await;

    let hex = g
        .state
        .keys
        .encrypt_msisdn(&Msisdn::parse(OTHER_MSISDN).unwrap())
        .unwrap();
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    let b64 = STANDARD.encode(&bytes);
    let b64url = URL_SAFE_NO_PAD.encode(&bytes);
    assert!(b64.contains('=') || b64.contains('+') || b64.contains('/'));

    let mut subs = vec![];
    for encoded in [&hex, &b64, &b64url] {
        let h = format!("ENCR_MSISDN:{encoded}");
        let t = login(&g, &rp, &["mc_authn"], &authn_params(&h), OTHER_MSISDN).await;
        assert_eq!(
            t.mc().hashed_login_hint,
            sha256_hex("MSISDN:447700900302"),
            "hint {h}"
        );
        subs.push(t.sub());
    }
    assert!(subs.windows(2).all(|w| w[0] == w[1]), "{subs:?}");
    assert!(g.phone(MSISDN).pending().await.is_empty());

    // Right length, but decrypts to nothing; and not a ciphertext at all.
    let zeros = format!("ENCR_MSISDN:{}", "00".repeat(bytes.len()));
    for garbage in [zeros.as_str(), "ENCR_MSISDN:not-a-ciphertext"] {
        let q = refused(&g, &rp, &["mc_authn"], &authn_params(garbage)).await;
        assert_eq!(
            error_of(&q),
            (
                "invalid_request",
                "Invalid value for login_hint or login_hint_token"
            ),
            "{garbage}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 9. login_hint_token signed by the operator.

#[tokio::test]
async fn login_hint_token_logs_in_and_wrong_aud_or_old_iat_is_refused() {
    let g = Gateway::start().await;
    let sp = g.shop().await;
    g.subscriber(MSISDN, None).await;
    let rp = Rp::discover(&g, &sp).await;
    let token = |claims: Value| g.state.keys.sign_jwt(&claims).unwrap();
    let params = |jwt: &str| {
        [
            ("version", MC_VERSION),
            ("acr_values", "2"),
            ("login_hint_token", jwt),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
    };

    let good = token(json!({"aud": g.base, "iat": unix_now(), "MSISDN": MSISDN}));
    let p = params(&good);
    let refs: Vec<(&str, &str)> = p.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let t = login(&g, &rp, &["mc_authn"], &refs, MSISDN).await;
    assert_eq!(t.mc().hashed_login_hint, sha256_hex("MSISDN:447700900301"));

    for (what, claims) in [
        (
            "wrong aud",
            json!({"aud": "https://other-operator.example", "iat": unix_now(), "MSISDN": MSISDN}),
        ),
        (
            "old iat",
            json!({"aud": g.base, "iat": unix_now() - 3600, "MSISDN": MSISDN}),
        ),
    ] {
        let p = params(&token(claims));
        let refs: Vec<(&str, &str)> = p.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let q = refused(&g, &rp, &["mc_authn"], &refs).await;
        assert_eq!(
            error_of(&q),
            (
                "invalid_request",
                "Invalid value for login_hint or login_hint_token"
            ),
            "{what}"
        );
    }
    assert!(g.phone(MSISDN).pending().await.is_empty());
}

// ---------------------------------------------------------------------------------------------
// 10. No login_hint: the gateway asks for the number.

#[tokio::test]
async fn without_a_hint_the_number_page_asks_for_the_number() {
    let g = Gateway::start().await;
    let sp = g.shop().await;
    g.subscriber(MSISDN, None).await;
    let rp = Rp::discover(&g, &sp).await;
    let req = rp.authorize(
        &["mc_authn"],
        &[("version", MC_VERSION), ("acr_values", "2")],
    );
    let http = one_hop();

    let resp = http.get(&req.url).send().await.unwrap();
    assert_eq!(resp.status(), 302);
    let number_url = location(&g.base, &resp).unwrap();
    assert!(
        number_url.starts_with(&format!("{}/authorize/number/", g.base)),
        "{number_url}"
    );

    let page = http.get(&number_url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("<form") && html.contains("name=\"msisdn\""),
        "{html}"
    );

    let post = |typed: &str| {
        http.post(&number_url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string([("msisdn", typed)]).unwrap())
            .send()
    };
    let again = post("07700 90030x").await.unwrap();
    assert_eq!(again.status(), 200, "an invalid number re-shows the form");
    let html = again.text().await.unwrap();
    assert!(html.contains("name=\"msisdn\""), "{html}");
    assert!(html.contains("international format, e.g."), "{html}");
    assert!(g.phone(MSISDN).pending().await.is_empty());

    let phone = approve(&g, MSISDN);
    let sent = post("+44 7700 900301").await.unwrap();
    assert_eq!(sent.status(), 302);
    let wait_url = location(&g.base, &sent).unwrap();
    assert!(
        wait_url.starts_with(&format!("{}/authorize/wait/", g.base)),
        "{wait_url}"
    );
    let (back, c) = drive(&g, &wait_url, &sp, phone).await;
    assert_eq!(c.loa, "2");
    let t = rp.redeem(&req, &back).await;
    assert_eq!(t.mc().hashed_login_hint, sha256_hex("MSISDN:447700900301"));
    assert_eq!(t.acr(), "2");
}

// ---------------------------------------------------------------------------------------------
// 11. Headless: an auto-following HTTP client; browsers get the waiting page.

#[tokio::test]
async fn a_headless_redirect_following_client_lands_on_the_redirect_uri() {
    let g = Gateway::start().await;
    let sp = g.shop().await;
    g.subscriber(MSISDN, None).await;
    g.subscriber(OTHER_MSISDN, None).await;
    let rp = Rp::discover(&g, &sp).await;
    let h = hint(MSISDN);
    let req = rp.authorize(&["mc_authn"], &authn_params(&h));

    let phone = g.phone(MSISDN);
    let task = tokio::spawn(async move {
        let c = phone.next_challenge().await;
        // Answer later than one hold of the waiting URL (1 s in tests), so the client is
        // sent round at least once; the outcome does not depend on this delay.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        phone.answer(&c.id, Answer::Approve { pin: None }).await
    });
    // Default redirect policy (follows up to 10), no cookie store, default Accept.
    let headless = reqwest::Client::new();
    let resp = headless.get(&req.url).send().await.unwrap();
    assert_eq!(task.await.unwrap(), AnswerOutcome::Approved);
    let landed = resp.url().to_string();
    assert!(landed.starts_with(&sp.redirect_uri), "{landed}");
    let t = rp.redeem(&req, &landed).await;
    assert_eq!(t.acr(), "2");

    // A browser asking for HTML while the login is pending gets the waiting page.
    let other = hint(OTHER_MSISDN);
    let req = rp.authorize(&["mc_authn"], &authn_params(&other));
    let resp = one_hop().get(&req.url).send().await.unwrap();
    let wait_url = location(&g.base, &resp).unwrap();
    assert!(wait_url.contains("/authorize/wait/"), "{wait_url}");
    let page = one_hop()
        .get(&wait_url)
        .header("accept", "text/html,application/xhtml+xml")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = page.text().await.unwrap();
    assert!(html.contains("OnlineShopper"), "{html}");
    assert_eq!(
        g.phone(OTHER_MSISDN).pending().await.len(),
        1,
        "still pending"
    );
}

/// A headless client is held at `/authorize` itself (digest §4.7): a phone that answers
/// within the hold puts the code, or the error, in `/authorize`'s own answer; the hold
/// ending first sends it to the waiting URL.
#[tokio::test]
async fn a_headless_authorize_is_held_and_answered_with_the_code_or_the_error() {
    // A hold far longer than a phone task's answer, so the outcome cannot race it.
    let g = Gateway::start_with(|c| c.login.headless_hold_secs = 30).await;
    let sp = g.shop().await;
    g.subscriber(MSISDN, None).await;
    let rp = Rp::discover(&g, &sp).await;
    let headless = one_hop();
    let h = hint(MSISDN);

    let req = rp.authorize(&["mc_authn"], &authn_params(&h));
    let phone = approve(&g, MSISDN);
    let resp = headless.get(&req.url).send().await.unwrap();
    assert_eq!(resp.status(), 302);
    let back = location(&g.base, &resp).unwrap();
    assert!(back.starts_with(&sp.redirect_uri), "{back}");
    assert_eq!(phone.await.unwrap().loa, "2");
    let t = rp.redeem(&req, &back).await;
    assert_eq!(t.acr(), "2");
    // The code the hold handed out (reserved with the session) is good once, like any.
    let (status, body) = rp
        .raw_token(
            &code_of(&req, &back),
            &req.verifier,
            Some((&sp.client_id, &sp.secret)),
            None,
        )
        .await;
    assert_eq!(body["error"], "invalid_grant", "{status} {body}");
    assert_eq!(
        rp.raw_userinfo(&t.access_token).await.0,
        401,
        "replay revokes"
    );

    let req = rp.authorize(&["mc_authn"], &authn_params(&h));
    let phone = g.phone(MSISDN);
    let deny = tokio::spawn(async move {
        let c = phone.next_challenge().await;
        phone.answer(&c.id, Answer::Deny).await
    });
    let resp = headless.get(&req.url).send().await.unwrap();
    let back = location(&g.base, &resp).unwrap();
    assert_eq!(deny.await.unwrap(), AnswerOutcome::Denied);
    let q = query_of(&back);
    assert!(back.starts_with(&sp.redirect_uri), "{back}");
    assert_eq!(q.get("state"), Some(req.state.secret()));
    assert_eq!(
        error_of(&q),
        ("access_denied", "The user denied the request")
    );

    // A browser is never held: it gets the waiting URL at once, and the page there.
    let req = rp.authorize(&["mc_authn"], &authn_params(&h));
    let resp = headless
        .get(&req.url)
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    let wait_url = location(&g.base, &resp).unwrap();
    assert!(wait_url.contains("/authorize/wait/"), "{wait_url}");
    assert_eq!(g.phone(MSISDN).pending().await.len(), 1, "still pending");
}

/// The headless wait answers from the session its hold read: a phone that answered before
/// the client came back gets it the code (or the error) in that one response, once.
#[tokio::test]
async fn a_headless_wait_after_the_phone_answered_redirects_at_once_and_only_once() {
    let g = Gateway::start().await;
    let sp = g.shop().await;
    g.subscriber(MSISDN, None).await;
    g.subscriber(OTHER_MSISDN, None).await;
    let rp = Rp::discover(&g, &sp).await;
    let headless = one_hop();

    // Approved before the wait request.
    let h = hint(MSISDN);
    let req = rp.authorize(&["mc_authn"], &authn_params(&h));
    let resp = headless.get(&req.url).send().await.unwrap();
    let wait_url = location(&g.base, &resp).unwrap();
    assert!(wait_url.contains("/authorize/wait/"), "{wait_url}");
    approve(&g, MSISDN).await.unwrap();
    let resp = headless.get(&wait_url).send().await.unwrap();
    assert_eq!(resp.status(), 302);
    let back = location(&g.base, &resp).unwrap();
    assert!(back.starts_with(&sp.redirect_uri), "{back}");
    let t = rp.redeem(&req, &back).await;
    assert_eq!(t.acr(), "2");
    // The code was delivered: the same URL answers with an error page, not a second code.
    let again = headless.get(&wait_url).send().await.unwrap();
    assert!(again.status().is_client_error(), "{}", again.status());
    assert!(again.headers().get("location").is_none());
    let status = headless
        .get(format!("{wait_url}/status"))
        .send()
        .await
        .unwrap();
    let v: Value = status.json().await.unwrap();
    assert_eq!(v, json!({"done": true, "sms_otp": false}));

    // Denied before the wait request: the error redirect, with state.
    let h = hint(OTHER_MSISDN);
    let req = rp.authorize(&["mc_authn"], &authn_params(&h));
    let resp = headless.get(&req.url).send().await.unwrap();
    let wait_url = location(&g.base, &resp).unwrap();
    let phone = g.phone(OTHER_MSISDN);
    let c = phone.next_challenge().await;
    assert_eq!(
        phone.answer(&c.id, Answer::Deny).await,
        AnswerOutcome::Denied
    );
    let resp = headless.get(&wait_url).send().await.unwrap();
    let back = location(&g.base, &resp).unwrap();
    assert!(back.starts_with(&sp.redirect_uri), "{back}");
    let q = query_of(&back);
    assert_eq!(q.get("state"), Some(req.state.secret()));
    assert_eq!(
        error_of(&q),
        ("access_denied", "The user denied the request")
    );

    // Still pending when the hold ends: sent round to the same URL.
    let req = rp.authorize(&["mc_authn"], &authn_params(&h));
    let resp = headless.get(&req.url).send().await.unwrap();
    let wait_url = location(&g.base, &resp).unwrap();
    let resp = headless.get(&wait_url).send().await.unwrap();
    assert_eq!(location(&g.base, &resp).as_deref(), Some(wait_url.as_str()));
}

/// Channels answer from the session they read a moment before (`answer_read_challenge`):
/// that read only screens; the store's take-once resolution decides, so a read taken before
/// another answer cannot overturn it.
#[tokio::test]
async fn an_answer_from_a_read_older_than_the_first_answer_is_not_pending() {
    let g = Gateway::start().await;
    let sp = g.shop().await;
    g.subscriber(MSISDN, None).await;
    let rp = Rp::discover(&g, &sp).await;
    let h = hint(MSISDN);
    let req = rp.authorize(&["mc_authn"], &authn_params(&h));
    let resp = one_hop().get(&req.url).send().await.unwrap();
    let wait_url = location(&g.base, &resp).unwrap();
    let phone = g.phone(MSISDN);
    let c = phone.next_challenge().await;
    let earlier = g.store().get_session(&c.id).await.unwrap();
    let subscriber_id = earlier.as_ref().unwrap().subscriber_id.clone().unwrap();
    assert_eq!(
        phone.answer(&c.id, Answer::Deny).await,
        AnswerOutcome::Denied
    );

    let ctx = AnswerContext {
        store: &**g.store(),
        hub: &g.state.hub,
        policy: g.state.pin_policy,
    };
    let consent = vec!["phone".to_owned()];
    let late = answer_read_challenge(
        &ctx,
        &AppPush,
        earlier,
        &subscriber_id,
        Answer::Approve { pin: None },
        Some(&consent),
        unix_now(),
    )
    .await
    .unwrap();
    assert_eq!(late, AnswerOutcome::NotPending);
    let back = follow_to_redirect_uri(&g, &wait_url, &sp.redirect_uri).await;
    let q = query_of(&back);
    assert_eq!(
        error_of(&q),
        ("access_denied", "The user denied the request"),
        "the first answer stands: {back}"
    );
}

// ---------------------------------------------------------------------------------------------
// 12. A replayed code is refused and revokes the tokens it produced.

#[tokio::test]
async fn a_replayed_code_is_refused_and_revokes_the_first_access_token() {
    let g = Gateway::start().await;
    let sp = g.shop().await;
    g.subscriber(MSISDN, None).await;
    let rp = Rp::discover(&g, &sp).await;
    let h = hint(MSISDN);
    let req = rp.authorize(&["mc_authn"], &authn_params(&h));
    let (back, _) = drive(&g, &req.url, &sp, approve(&g, MSISDN)).await;
    let t = rp.redeem(&req, &back).await;
    assert_eq!(rp.raw_userinfo(&t.access_token).await.0, 200);

    let code = code_of(&req, &back);
    let (status, body) = rp
        .raw_token(
            &code,
            &req.verifier,
            Some((&sp.client_id, &sp.secret)),
            None,
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_grant", "{body}");

    let (status, body) = rp.raw_userinfo(&t.access_token).await;
    assert_eq!(status, 401, "the first access token is revoked: {body}");
}

// ---------------------------------------------------------------------------------------------
// 13. One live transaction per MSISDN.

#[tokio::test]
async fn a_second_login_while_one_is_pending_is_busy_until_the_first_ends() {
    let g = Gateway::start().await;
    let sp = g.shop().await;
    g.subscriber(MSISDN, None).await;
    let rp = Rp::discover(&g, &sp).await;
    let h = hint(MSISDN);

    let first = rp.authorize(&["mc_authn"], &authn_params(&h));
    let resp = one_hop().get(&first.url).send().await.unwrap();
    assert_eq!(resp.status(), 302);
    let wait_url = location(&g.base, &resp).unwrap();
    assert!(wait_url.contains("/authorize/wait/"), "{wait_url}");

    let q = refused(&g, &rp, &["mc_authn"], &authn_params(&h)).await;
    assert_eq!(
        error_of(&q),
        ("access_denied", "The user is busy with another transaction")
    );

    let phone = g.phone(MSISDN);
    let task = tokio::spawn(async move {
        let c = phone.next_challenge().await;
        assert_eq!(
            phone.pending().await.len(),
            1,
            "only the first login reached the phone"
        );
        phone.answer(&c.id, Answer::Deny).await
    });
    let (back, outcome) = drive(&g, &wait_url, &sp, task).await;
    assert_eq!(outcome, AnswerOutcome::Denied);
    let q = query_of(&back);
    assert_eq!(q.get("state"), Some(first.state.secret()));
    assert_eq!(
        error_of(&q),
        ("access_denied", "The user denied the request"),
        "{back}"
    );
    assert!(!q.contains_key("code"));

    let t = login(&g, &rp, &["mc_authn"], &authn_params(&h), MSISDN).await;
    assert_eq!(t.acr(), "2");
}

// ---------------------------------------------------------------------------------------------
// 14. userinfo releases the number for a phone-number scope.

#[tokio::test]
async fn userinfo_releases_the_phone_number_for_mc_identity_phonenumber() {
    let g = Gateway::start().await;
    let sp = g.shop().await;
    g.subscriber(MSISDN, None).await;
    let rp = Rp::discover(&g, &sp).await;
    let h = hint(MSISDN);
    let t = login(
        &g,
        &rp,
        &["mc_authn", "mc_identity_phonenumber"],
        &authn_params(&h),
        MSISDN,
    )
    .await;
    let sub = t.sub();
    let info = rp.userinfo(&t.access_token, &sub).await;
    assert_eq!(
        info.phone_number().map(|p| p.as_str()),
        Some("+447700900301")
    );

    let resp = rp
        .http
        .post(rp.metadata.userinfo_endpoint().unwrap().as_str())
        .bearer_auth(&t.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["sub"], json!(sub));
    assert_eq!(body["phone_number"], "+447700900301");
}

// ---------------------------------------------------------------------------------------------
// 15. Java SDK quirks.

#[tokio::test]
async fn java_sdk_quirks_max_age_spelling_old_version_and_doubled_credentials() {
    let g = Gateway::start().await;
    let sp = g.shop().await;
    g.subscriber(MSISDN, None).await;
    let rp = Rp::discover(&g, &sp).await;
    let h = hint(MSISDN);
    let java = [
        ("version", "mc_v2_0"),
        ("acr_values", "2"),
        ("login_hint", h.as_str()),
        ("max-age", "3600"),
    ];

    // Basic auth and the same credentials in the body.
    let req = rp.authorize(&["mc_authn"], &java);
    let (back, _) = drive(&g, &req.url, &sp, approve(&g, MSISDN)).await;
    let response = rp
        .client
        .exchange_code(AuthorizationCode::new(code_of(&req, &back)))
        .unwrap()
        .set_pkce_verifier(PkceCodeVerifier::new(req.verifier.clone()))
        .add_extra_param("client_id", sp.client_id.clone())
        .add_extra_param("client_secret", sp.secret.clone())
        .request_async(&rp.http)
        .await
        .expect("agreeing Basic and body credentials are accepted");
    let t = rp.verify(response, &req.nonce);
    assert_eq!(t.acr(), "2");
    assert!(t.claims.auth_time().is_some());

    // Disagreeing credentials: 401 invalid_client, even with a valid code.
    let req = rp.authorize(&["mc_authn"], &java);
    let (back, _) = drive(&g, &req.url, &sp, approve(&g, MSISDN)).await;
    let code = code_of(&req, &back);
    let (status, body) = rp
        .raw_token(
            &code,
            &req.verifier,
            Some((&sp.client_id, &sp.secret)),
            Some((&sp.client_id, "not-the-secret")),
        )
        .await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "invalid_client", "{body}");
}

// ---------------------------------------------------------------------------------------------
// 16. Suspended and unknown numbers are indistinguishable.

#[tokio::test]
async fn a_suspended_subscriber_and_an_unknown_number_get_the_same_answer() {
    let g = Gateway::start().await;
    let sp = g.shop().await;
    g.subscriber(MSISDN, None).await;
    let rp = Rp::discover(&g, &sp).await;
    registry::update_subscriber(g.store(), MSISDN, Some(SubscriberStatus::Suspended), None)
        .await
        .unwrap();

    let mut suspended = refused(&g, &rp, &["mc_authn"], &authn_params(&hint(MSISDN))).await;
    let mut unknown = refused(&g, &rp, &["mc_authn"], &authn_params(&hint("447700900399"))).await;
    assert_eq!(
        error_of(&suspended),
        ("access_denied", "Unknown Mobile Connect User")
    );
    // `state` differs by construction (checked in `refused`); everything else must not.
    suspended.remove("state");
    unknown.remove("state");
    assert_eq!(suspended, unknown);
    assert!(g.phone(MSISDN).pending().await.is_empty());
}

// ---------------------------------------------------------------------------------------------
// 17. Restart over the same folder: same signing key, same PCRs.

#[tokio::test]
async fn after_a_restart_the_signing_kid_and_pcrs_are_the_same() {
    let dir = temp_dir("restart");
    let g = Gateway::start_in(dir.clone(), |_| {}).await;
    let sp = g.shop().await;
    g.subscriber(MSISDN, None).await;
    let rp = Rp::discover(&g, &sp).await;
    let h = hint(MSISDN);
    let before = login(&g, &rp, &["mc_authn"], &authn_params(&h), MSISDN).await;
    let kids_before = signing_kids(&rp);
    drop(rp);
    drop(g);

    let g = Gateway::start_in(dir.clone(), |_| {}).await;
    let rp = Rp::discover(&g, &sp).await;
    assert_eq!(
        rp.metadata.issuer().as_str(),
        g.base,
        "new port, new issuer"
    );
    let kids_after = signing_kids(&rp);
    assert_eq!(kids_before.len(), 1, "{kids_before:?}");
    assert_eq!(kids_before, kids_after);
    let after = login(&g, &rp, &["mc_authn"], &authn_params(&h), MSISDN).await;
    assert_eq!(before.sub(), after.sub());
    // A token signed before the restart still verifies against the new JWKS (its issuer
    // was the old port's).
    let verifier = rp.client.id_token_verifier().require_issuer_match(false);
    before
        .response
        .id_token()
        .unwrap()
        .claims(&verifier, |_: Option<&Nonce>| Ok(()))
        .expect("a pre-restart id_token verifies against the post-restart JWKS");
}

/// The `kid`s of the signing keys in the discovered JWKS.
fn signing_kids(rp: &Rp) -> Vec<String> {
    rp.metadata
        .jwks()
        .keys()
        .iter()
        .filter(|k| {
            k.key_use()
                .is_some_and(|u| matches!(u, openidconnect::core::CoreJsonWebKeyUse::Signature))
        })
        .filter_map(|k| k.key_id().map(|id| id.as_str().to_owned()))
        .collect()
}
