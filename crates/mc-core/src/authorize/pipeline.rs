//! The order of the authorization checks, on one screen.
//!
//! | # | check                                  | front-channel `/authorize` | SI (`/si-authorize`) | CIBA |
//! |---|----------------------------------------|:--:|:--:|:--:|
//! | 1 | `check_client_id`                      | page  | ✓ | ✓ |
//! | 2 | `check_redirect_uri`                   | page  |   |   |
//! | 3 | `check_state`, `check_correlation_id`  | ✓ | ✓ (claims) |   |
//! | 4 | `check_client_allowed`                 | ✓ | ✓ | ✓ |
//! | 5 | `check_client_may_request_code`        | ✓ |   |   |
//! | 6 | `reject_duplicate_parameters`          | ✓ | ✓ | ✓ |
//! | 7 | `reject_request_objects`               | ✓ |   |   |
//! | 8 | `check_response_type`, `check_response_mode` | ✓ | ✓ |   |
//! | 9 | `check_scope`                          | ✓ | ✓ | ✓ |
//! |10 | `check_version`                        | ✓ | ✓ |   |
//! |11 | `check_nonce`                          | ✓ | ✓ |   |
//! |12 | `check_acr_values`                     | ✓ | ✓ | ✓ |
//! |13 | `check_login_hint`                     | ✓ | ✓ | ✓ |
//! |14 | `check_max_age`, `check_prompt`, `check_display`, `check_claims` | ✓ | claims | claims |
//! |15 | `check_transaction_text`               | ✓ | ✓ | ✓ |
//! |16 | `check_code_challenge`                 | ✓ |   |   |
//! |17 | `check_ignored_parameters`             | ✓ |   |   |
//!
//! Rows 1–2 run before the client is trusted, so their errors are shown on a page (the
//! gateway looks the client up between them). Everything after row 2 is redirected with
//! `state` (once valid) and `correlation_id` (once valid) echoed.

use crate::client::ClientPolicy;
use crate::error::McError;
use crate::params::RawParams;
use crate::pkce::check_code_challenge;

use super::checks::*;
use super::redirect::Echo;
use super::{AuthorizeRequest, ProfileOptions, VerifiedRedirectUri};

/// A refusal after the redirect URI was verified: the gateway redirects it.
#[derive(Debug, Clone)]
pub struct Redirectable {
    pub redirect_uri: VerifiedRedirectUri,
    pub error: McError,
    pub state: Option<String>,
    pub correlation_id: Option<String>,
}

impl Redirectable {
    /// The `Location` of the error redirect.
    pub fn location(&self) -> String {
        self.redirect_uri.with_error(
            &self.error,
            &Echo {
                state: self.state.as_deref(),
                correlation_id: self.correlation_id.as_deref(),
            },
        )
    }
}

/// Rows 3–17 for the front-channel authorization endpoint, given the client the gateway
/// found for row 1 and the redirect URI verified by row 2.
pub fn front_channel(
    p: &RawParams,
    client: &ClientPolicy,
    redirect_uri: VerifiedRedirectUri,
    opts: &ProfileOptions,
) -> Result<AuthorizeRequest, Box<Redirectable>> {
    // Echo values first, each independently, so every later error can carry what was valid.
    let state = check_state(p);
    let correlation_id = check_correlation_id(p);
    let fail = |error: McError| {
        Box::new(Redirectable {
            redirect_uri: redirect_uri.clone(),
            error,
            state: state.clone().ok(),
            correlation_id: correlation_id.clone().ok().flatten(),
        })
    };
    let correlation_id = correlation_id.clone().map_err(fail)?;
    let state = state.clone().map_err(fail)?;
    check_client_allowed(client).map_err(fail)?;
    check_client_may_request_code(client).map_err(fail)?;
    reject_duplicate_parameters(p).map_err(fail)?;
    reject_request_objects(p).map_err(fail)?;
    check_response_type(p).map_err(fail)?;
    check_response_mode(p).map_err(fail)?;
    let scope = check_scope(p, client).map_err(fail)?;
    let version = check_version(p, &scope).map_err(fail)?;
    let nonce = check_nonce(p).map_err(fail)?;
    let acr = check_acr_values(p, version).map_err(fail)?;
    let hint = check_login_hint(p, opts).map_err(fail)?;
    let max_age = check_max_age(p).map_err(fail)?;
    let prompt = check_prompt(p).map_err(fail)?;
    let display = check_display(p).map_err(fail)?;
    let claims = check_claims(p).map_err(fail)?;
    let text = check_transaction_text(p, &scope, client, opts).map_err(fail)?;
    let code_challenge =
        check_code_challenge(p.get("code_challenge"), p.get("code_challenge_method"))
            .map_err(fail)?;
    check_ignored_parameters(p).map_err(fail)?;
    if prompt.none {
        // Every Mobile Connect login reaches the phone: there is no silent re-authentication.
        return Err(fail(McError::LoginRequired));
    }
    Ok(AuthorizeRequest {
        client_id: client.client_id.clone(),
        redirect_uri: redirect_uri.clone(),
        state,
        nonce,
        scope,
        version,
        acr,
        hint,
        max_age,
        prompt,
        display,
        claims,
        text,
        correlation_id,
        code_challenge,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::ClientStatus;
    use crate::scope::Scope;

    fn client() -> ClientPolicy {
        ClientPolicy {
            client_id: "shop".into(),
            redirect_uris: vec!["https://shop.example/cb".into()],
            allowed_scopes: Scope::from_values(["openid", "mc_authn"]),
            short_name: "Shop".into(),
            sector: "shop.example".into(),
            status: ClientStatus::Active,
            grant_types: vec!["authorization_code".into()],
            authenticator_chains: Default::default(),
        }
    }

    fn run(q: &str) -> Result<AuthorizeRequest, Box<Redirectable>> {
        let p = RawParams::from_urlencoded(q.as_bytes()).unwrap();
        let c = client();
        let r = VerifiedRedirectUri::verify(&c, "https://shop.example/cb").unwrap();
        front_channel(&p, &c, r, &ProfileOptions::default())
    }

    const OK: &str = "response_type=code&scope=openid+mc_authn&version=mc_di_r2_v2.3&state=s&nonce=n&acr_values=2&login_hint=MSISDN%3A447700900301&correlation_id=c";

    #[test]
    fn a_complete_request_passes() {
        let r = run(OK).unwrap();
        assert_eq!(r.state, "s");
        assert_eq!(r.correlation_id.as_deref(), Some("c"));
    }

    #[test]
    fn later_errors_echo_state_and_correlation_id() {
        let e = run(&OK.replace("acr_values=2", "acr_values=9")).unwrap_err();
        assert_eq!(e.error, McError::InvalidAcrValues);
        assert!(
            e.location().ends_with("&state=s&correlation_id=c"),
            "{}",
            e.location()
        );
    }

    #[test]
    fn invalid_state_is_not_echoed() {
        let e = run(&OK.replace("state=s", "state=%01")).unwrap_err();
        assert_eq!(e.error, McError::InvalidState);
        assert!(!e.location().contains("state="));
    }

    #[test]
    fn prompt_none_is_login_required() {
        assert_eq!(
            run(&format!("{OK}&prompt=none")).unwrap_err().error,
            McError::LoginRequired
        );
    }
}
