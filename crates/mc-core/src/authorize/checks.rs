//! One function per rule of the authorization request. Each returns the typed value it
//! parsed or the [`McError`] of its row in the Mobile Connect error table (digest §4.6).
//! Tests for the accepting case and each rejection are at the bottom.

use crate::acr::AcrValues;
use crate::client::{ClientPolicy, ClientStatus};
use crate::error::McError;
use crate::limits::{
    MAX_CLAIMS_BYTES, MAX_ECHO_VALUE_BYTES, MAX_JWT_BYTES, MAX_SCOPE_BYTES, MAX_URI_BYTES,
};
use crate::login_hint::LoginHint;
use crate::params::RawParams;
use crate::scope::Scope;
use crate::version::McVersion;

use super::{Display, HintInput, ProfileOptions, Prompt, TransactionText};

/// The parameters whose duplication makes the client or its redirect URI ambiguous: those
/// errors cannot be redirected.
const CLIENT_PARAMETERS: [&str; 2] = ["client_id", "redirect_uri"];

/// `client_id` is present once (row "client_id missing"). Not redirectable.
pub fn check_client_id(p: &RawParams) -> Result<&str, McError> {
    if CLIENT_PARAMETERS.iter().any(|k| p.is_duplicated(k)) {
        return Err(McError::DuplicateClientParameter);
    }
    let id = p.get("client_id").ok_or(McError::MissingClientId)?;
    if id.len() > 256 {
        return Err(McError::UnknownClient);
    }
    Ok(id)
}

/// `redirect_uri` is present and exactly registered (digest §4.6: an invalid one is never
/// redirected to). Not redirectable.
pub fn check_redirect_uri(
    p: &RawParams,
    client: &ClientPolicy,
) -> Result<super::VerifiedRedirectUri, McError> {
    let uri = p.get("redirect_uri").ok_or(McError::MissingRedirectUri)?;
    if uri.len() > MAX_URI_BYTES {
        return Err(McError::UnregisteredRedirectUri);
    }
    super::VerifiedRedirectUri::verify(client, uri)
}

/// `state` is mandatory in Mobile Connect (OAM: "Required for Mobile Connect"), printable and
/// bounded (row "state invalid"). Checked first after the redirect URI so later errors echo it.
pub fn check_state(p: &RawParams) -> Result<String, McError> {
    echo_value(p.get("state")).ok_or(McError::InvalidState)
}

/// `correlation_id` is optional, printable and bounded; it is echoed everywhere.
pub fn check_correlation_id(p: &RawParams) -> Result<Option<String>, McError> {
    match p.get("correlation_id") {
        None => Ok(None),
        v => echo_value(v).map(Some).ok_or(McError::InvalidCorrelationId),
    }
}

fn echo_value(v: Option<&str>) -> Option<String> {
    let v = v?;
    (v.len() <= MAX_ECHO_VALUE_BYTES && !v.chars().any(char::is_control)).then(|| v.to_owned())
}

/// A disabled service provider may not start logins (row "client blocked / not allowed").
pub fn check_client_allowed(client: &ClientPolicy) -> Result<(), McError> {
    match client.status {
        ClientStatus::Active => Ok(()),
        ClientStatus::Disabled => Err(McError::ClientNotAllowed),
    }
}

/// The client registered the `authorization_code` grant (row "client not authorised for code").
pub fn check_client_may_request_code(client: &ClientPolicy) -> Result<(), McError> {
    if client.may_use_grant("authorization_code") {
        Ok(())
    } else {
        Err(McError::ClientNotAuthorizedForCode)
    }
}

/// No parameter appears twice (row "duplicate parameters").
pub fn reject_duplicate_parameters(p: &RawParams) -> Result<(), McError> {
    if p.duplicated().is_empty() {
        Ok(())
    } else {
        Err(McError::DuplicateParameters)
    }
}

/// `request` and `request_uri` are not offered on the front channel (metadata says
/// `request_parameter_supported: false`), so they are refused rather than ignored: ignoring
/// a signed request would drop what the SP meant to protect.
pub fn reject_request_objects(p: &RawParams) -> Result<(), McError> {
    if p.contains("request") {
        return Err(McError::RequestNotSupported);
    }
    if p.contains("request_uri") {
        return Err(McError::RequestUriNotSupported);
    }
    Ok(())
}

/// `response_type=code` only (digest §4.1; row "response_type missing/invalid").
pub fn check_response_type(p: &RawParams) -> Result<(), McError> {
    match p.get("response_type") {
        Some("code") => Ok(()),
        _ => Err(McError::InvalidResponseType),
    }
}

/// `response_mode` absent or `query`: the code travels in the query string.
pub fn check_response_mode(p: &RawParams) -> Result<(), McError> {
    match p.get("response_mode") {
        None | Some("query") => Ok(()),
        Some(_) => Err(McError::UnsupportedResponseMode),
    }
}

/// `scope` contains `openid`, only known values, only values registered for the client
/// (rows "scope missing" and "scope invalid / not allowed"; the code for the second row is
/// decided in docs/decisions.md).
pub fn check_scope(p: &RawParams, client: &ClientPolicy) -> Result<Scope, McError> {
    let raw = p.get("scope").ok_or(McError::MissingScope)?;
    if raw.len() > MAX_SCOPE_BYTES {
        return Err(McError::InvalidScope);
    }
    let scope = Scope::parse(raw).map_err(|_| McError::InvalidScope)?;
    if !scope.contains("openid") {
        return Err(McError::MissingScope);
    }
    if scope.contains("mc_authn") && scope.contains("mc_authz") {
        // One product per request: authz already authenticates.
        return Err(McError::InvalidScope);
    }
    if scope.contains("mc_atp") {
        // ATP is a client-credentials product, never a front-channel login.
        return Err(McError::InvalidScope);
    }
    if !scope.is_subset_of(&client.allowed_scopes) {
        return Err(McError::InvalidScope);
    }
    Ok(scope)
}

/// `version` is one of digest §1.1 (the Java typo included). It is mandatory when a Mobile
/// Connect product scope is requested; a plain `openid` request is `mc_v1.1` (row "version
/// missing/invalid"). Server-initiated versions are refused on the front channel.
pub fn check_version(p: &RawParams, scope: &Scope) -> Result<McVersion, McError> {
    match p.get("version") {
        None if !scope.has_mc_product() => Ok(McVersion::V1_1),
        None => Err(McError::InvalidVersion),
        Some(raw) => match McVersion::parse(raw) {
            Some(v) if !v.is_server_initiated() => Ok(v),
            _ => Err(McError::InvalidVersion),
        },
    }
}

/// `nonce` is mandatory in Mobile Connect, printable and bounded (row "nonce missing").
pub fn check_nonce(p: &RawParams) -> Result<String, McError> {
    echo_value(p.get("nonce")).ok_or(McError::InvalidNonce)
}

/// `acr_values` holds a supported level (row "acr_values missing/invalid"). It is mandatory
/// for Mobile Connect products; plain OIDC (`mc_v1.1`) defaults to LoA2.
pub fn check_acr_values(p: &RawParams, version: McVersion) -> Result<AcrValues, McError> {
    match p.get("acr_values") {
        None if version == McVersion::V1_1 => {
            AcrValues::parse("2").ok_or(McError::InvalidAcrValues)
        }
        None => Err(McError::InvalidAcrValues),
        Some(raw) => AcrValues::parse(raw).ok_or(McError::InvalidAcrValues),
    }
}

/// `login_hint` (`MSISDN:`, `ENCR_MSISDN:`, `PCR:`) or `login_hint_token`, not both
/// (row "bad login_hint / login_hint_token"). Neither is allowed when the operator lets the
/// gateway ask for the number (row "neither hint" otherwise).
pub fn check_login_hint(
    p: &RawParams,
    opts: &ProfileOptions,
) -> Result<Option<HintInput>, McError> {
    match (p.get("login_hint"), p.get("login_hint_token")) {
        (Some(_), Some(_)) => Err(McError::InvalidLoginHint),
        (Some(hint), None) => LoginHint::parse(hint)
            .map(|h| Some(HintInput::LoginHint(h)))
            .ok_or(McError::InvalidLoginHint),
        (None, Some(token)) => {
            let shaped = token.len() <= MAX_JWT_BYTES && token.split('.').count() >= 3;
            if shaped {
                Ok(Some(HintInput::LoginHintToken(token.to_owned())))
            } else {
                Err(McError::InvalidLoginHint)
            }
        }
        (None, None) if opts.allow_no_hint => Ok(None),
        (None, None) => Err(McError::MissingLoginHint),
    }
}

/// `max_age` in seconds; the Java SDK spells it `max-age` (digest §4.1). Both spellings with
/// different values are a contradiction.
pub fn check_max_age(p: &RawParams) -> Result<Option<u64>, McError> {
    let parse = |v: &str| {
        v.parse::<u64>()
            .ok()
            .filter(|n| *n <= 10 * 365 * 86_400)
            .ok_or(McError::InvalidMaxAge)
    };
    match (
        p.get("max_age").map(parse).transpose()?,
        p.get("max-age").map(parse).transpose()?,
    ) {
        (Some(a), Some(b)) if a != b => Err(McError::InvalidMaxAge),
        (a, b) => Ok(a.or(b)),
    }
}

/// `prompt` values (row "invalid prompt"): `none` stands alone; `consent`, `select_account`
/// and the PHP SDK's `mobile` are accepted and have no further effect.
pub fn check_prompt(p: &RawParams) -> Result<Prompt, McError> {
    let mut prompt = Prompt::default();
    let Some(raw) = p.get("prompt") else {
        return Ok(prompt);
    };
    let values: Vec<&str> = raw.split(' ').filter(|v| !v.is_empty()).collect();
    for v in &values {
        match *v {
            "none" => prompt.none = true,
            "login" => prompt.login = true,
            "no_seam" => prompt.no_seam = true,
            "consent" | "select_account" | "mobile" => {}
            _ => return Err(McError::InvalidPrompt),
        }
    }
    if prompt.none && values.len() > 1 {
        return Err(McError::InvalidPrompt);
    }
    Ok(prompt)
}

/// `display` is `page`, `popup`, `touch` or `wap` (row "invalid display").
pub fn check_display(p: &RawParams) -> Result<Display, McError> {
    match p.get("display") {
        None | Some("page") => Ok(Display::Page),
        Some("popup") => Ok(Display::Popup),
        Some("touch") => Ok(Display::Touch),
        Some("wap") => Ok(Display::Wap),
        Some(_) => Err(McError::InvalidDisplay),
    }
}

/// `claims` is a JSON object whose members are `userinfo`, `id_token` or `premiuminfo`, each
/// an object of claim requests (OIDC Core §5.5; digest §8.3) (row "invalid claims").
pub fn check_claims(p: &RawParams) -> Result<Option<serde_json::Value>, McError> {
    let Some(raw) = p.get("claims") else {
        return Ok(None);
    };
    if raw.len() > MAX_CLAIMS_BYTES {
        return Err(McError::InvalidClaims);
    }
    let value: serde_json::Value = serde_json::from_str(raw).map_err(|_| McError::InvalidClaims)?;
    let obj = value.as_object().ok_or(McError::InvalidClaims)?;
    for (member, requests) in obj {
        if !matches!(member.as_str(), "userinfo" | "id_token" | "premiuminfo") {
            return Err(McError::InvalidClaims);
        }
        let requests = requests.as_object().ok_or(McError::InvalidClaims)?;
        if !requests.values().all(|r| r.is_null() || r.is_object()) {
            return Err(McError::InvalidClaims);
        }
    }
    Ok(Some(value))
}

/// The transaction text. For `mc_authz`, `client_name` must equal the registered short name
/// and `context` is required (digest §4.1); `binding_message` is optional everywhere. Lengths
/// are counted in UTF-8 bytes, the unit phones and SIMs limit.
pub fn check_transaction_text(
    p: &RawParams,
    scope: &Scope,
    client: &ClientPolicy,
    opts: &ProfileOptions,
) -> Result<TransactionText, McError> {
    let binding_message = match p.get("binding_message") {
        Some(b) if b.len() > opts.max_binding_message_bytes || b.chars().any(char::is_control) => {
            return Err(McError::InvalidBindingMessage);
        }
        b => b.map(str::to_owned),
    };
    let context = match p.get("context") {
        Some(c) if c.len() > opts.max_context_bytes || c.chars().any(char::is_control) => {
            return Err(McError::InvalidContext);
        }
        c => c.map(str::to_owned),
    };
    if scope.is_authz() {
        if p.get("client_name") != Some(client.short_name.as_str()) {
            return Err(McError::InvalidClientName);
        }
        if context.is_none() {
            return Err(McError::InvalidContext);
        }
    }
    Ok(TransactionText {
        client_name: client.short_name.clone(),
        context,
        binding_message,
    })
}

/// Optional free-text parameters that we accept and ignore must still be bounded:
/// `ui_locales`, `claims_locales`, `id_token_hint`, `dtbs`.
pub fn check_ignored_parameters(p: &RawParams) -> Result<(), McError> {
    for (name, limit) in [
        ("ui_locales", 256),
        ("claims_locales", 256),
        ("id_token_hint", MAX_JWT_BYTES),
        ("dtbs", 1024),
    ] {
        if p.get(name).is_some_and(|v| v.len() > limit) {
            return Err(McError::InvalidParameter(name));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acr::Loa;

    fn params(q: &str) -> RawParams {
        RawParams::from_urlencoded(q.as_bytes()).unwrap()
    }

    fn client() -> ClientPolicy {
        ClientPolicy {
            client_id: "shop".into(),
            redirect_uris: vec!["https://shop.example/cb".into()],
            allowed_scopes: Scope::from_values([
                "openid",
                "mc_authn",
                "mc_authz",
                "mc_identity_phonenumber",
                "phone",
            ]),
            short_name: "OnlineShopper".into(),
            sector: "shop.example".into(),
            status: ClientStatus::Active,
            grant_types: vec!["authorization_code".into()],
            authenticator_chains: Default::default(),
        }
    }

    #[test]
    fn client_id_present_once() {
        assert_eq!(check_client_id(&params("client_id=shop")), Ok("shop"));
        assert_eq!(check_client_id(&params("")), Err(McError::MissingClientId));
        assert_eq!(
            check_client_id(&params("client_id=a&client_id=b")),
            Err(McError::DuplicateClientParameter)
        );
        assert_eq!(
            check_client_id(&params("client_id=a&redirect_uri=x&redirect_uri=y")),
            Err(McError::DuplicateClientParameter)
        );
    }

    #[test]
    fn redirect_uri_exact() {
        assert!(
            check_redirect_uri(
                &params("redirect_uri=https%3A%2F%2Fshop.example%2Fcb"),
                &client()
            )
            .is_ok()
        );
        assert_eq!(
            check_redirect_uri(&params(""), &client()),
            Err(McError::MissingRedirectUri)
        );
        assert_eq!(
            check_redirect_uri(
                &params("redirect_uri=https%3A%2F%2Fevil.example%2Fcb"),
                &client()
            ),
            Err(McError::UnregisteredRedirectUri)
        );
    }

    #[test]
    fn state_and_nonce_mandatory_and_bounded() {
        assert_eq!(check_state(&params("state=abc")), Ok("abc".into()));
        assert_eq!(check_state(&params("")), Err(McError::InvalidState));
        assert_eq!(
            check_state(&params(&format!("state={}", "a".repeat(600)))),
            Err(McError::InvalidState)
        );
        assert_eq!(
            check_state(&params("state=a%0Ab")),
            Err(McError::InvalidState)
        );
        assert_eq!(check_nonce(&params("nonce=n")), Ok("n".into()));
        assert_eq!(check_nonce(&params("")), Err(McError::InvalidNonce));
    }

    #[test]
    fn correlation_id_optional_and_bounded() {
        assert_eq!(check_correlation_id(&params("")), Ok(None));
        assert_eq!(
            check_correlation_id(&params("correlation_id=c1")),
            Ok(Some("c1".into()))
        );
        assert_eq!(
            check_correlation_id(&params("correlation_id=%07")),
            Err(McError::InvalidCorrelationId)
        );
    }

    #[test]
    fn disabled_client_and_code_grant() {
        let mut c = client();
        assert!(check_client_allowed(&c).is_ok());
        assert!(check_client_may_request_code(&c).is_ok());
        c.status = ClientStatus::Disabled;
        c.grant_types.clear();
        assert_eq!(check_client_allowed(&c), Err(McError::ClientNotAllowed));
        assert_eq!(
            check_client_may_request_code(&c),
            Err(McError::ClientNotAuthorizedForCode)
        );
    }

    #[test]
    fn duplicates_and_request_objects() {
        assert!(reject_duplicate_parameters(&params("a=1&b=2")).is_ok());
        assert_eq!(
            reject_duplicate_parameters(&params("scope=a&scope=b")),
            Err(McError::DuplicateParameters)
        );
        assert_eq!(
            reject_request_objects(&params("request=x")),
            Err(McError::RequestNotSupported)
        );
        assert_eq!(
            reject_request_objects(&params("request_uri=x")),
            Err(McError::RequestUriNotSupported)
        );
    }

    #[test]
    fn response_type_and_mode() {
        assert!(check_response_type(&params("response_type=code")).is_ok());
        for bad in ["", "response_type=token", "response_type=code+id_token"] {
            assert_eq!(
                check_response_type(&params(bad)),
                Err(McError::InvalidResponseType),
                "{bad}"
            );
        }
        assert!(check_response_mode(&params("response_mode=query")).is_ok());
        assert_eq!(
            check_response_mode(&params("response_mode=fragment")),
            Err(McError::UnsupportedResponseMode)
        );
    }

    #[test]
    fn scope_rules() {
        let c = client();
        assert_eq!(
            check_scope(&params("scope=openid+mc_authn"), &c)
                .unwrap()
                .to_string(),
            "mc_authn openid"
        );
        assert_eq!(check_scope(&params(""), &c), Err(McError::MissingScope));
        assert_eq!(
            check_scope(&params("scope=mc_authn"), &c),
            Err(McError::MissingScope)
        );
        assert_eq!(
            check_scope(&params("scope=openid+mc_bogus"), &c),
            Err(McError::InvalidScope)
        );
        assert_eq!(
            check_scope(&params("scope=openid+mc_kyc_plain"), &c),
            Err(McError::InvalidScope),
            "not registered"
        );
        assert_eq!(
            check_scope(&params("scope=openid+mc_authn+mc_authz"), &c),
            Err(McError::InvalidScope)
        );
    }

    #[test]
    fn version_rules() {
        let mc = Scope::from_values(["openid", "mc_authn"]);
        let plain = Scope::from_values(["openid"]);
        assert_eq!(
            check_version(&params("version=mc_di_r2_v2.3"), &mc),
            Ok(McVersion::DiR2V2_3)
        );
        assert_eq!(
            check_version(&params("version=mc_v2_0"), &mc),
            Ok(McVersion::V2_0)
        );
        assert_eq!(check_version(&params(""), &plain), Ok(McVersion::V1_1));
        assert_eq!(
            check_version(&params(""), &mc),
            Err(McError::InvalidVersion)
        );
        assert_eq!(
            check_version(&params("version=mc_v9"), &mc),
            Err(McError::InvalidVersion)
        );
        assert_eq!(
            check_version(&params("version=mc_si_r2_v1.0"), &mc),
            Err(McError::InvalidVersion)
        );
    }

    #[test]
    fn acr_rules() {
        assert_eq!(
            check_acr_values(&params("acr_values=3+2"), McVersion::DiR2V2_3)
                .unwrap()
                .fallback,
            Some(Loa::Two)
        );
        assert_eq!(
            check_acr_values(&params(""), McVersion::V1_1)
                .unwrap()
                .target,
            Loa::Two
        );
        assert_eq!(
            check_acr_values(&params(""), McVersion::DiR2V2_3),
            Err(McError::InvalidAcrValues)
        );
        assert_eq!(
            check_acr_values(&params("acr_values=5"), McVersion::DiR2V2_3),
            Err(McError::InvalidAcrValues)
        );
    }

    #[test]
    fn login_hint_rules() {
        let o = ProfileOptions::default();
        assert!(matches!(
            check_login_hint(&params("login_hint=MSISDN%3A447700900301"), &o),
            Ok(Some(HintInput::LoginHint(_)))
        ));
        assert!(matches!(
            check_login_hint(&params("login_hint_token=a.b.c"), &o),
            Ok(Some(HintInput::LoginHintToken(_)))
        ));
        assert_eq!(check_login_hint(&params(""), &o), Ok(None));
        assert_eq!(
            check_login_hint(&params("login_hint=MSISDN%3Axyz"), &o),
            Err(McError::InvalidLoginHint)
        );
        assert_eq!(
            check_login_hint(
                &params("login_hint=MSISDN%3A447700900301&login_hint_token=a.b.c"),
                &o
            ),
            Err(McError::InvalidLoginHint)
        );
        assert_eq!(
            check_login_hint(&params("login_hint_token=notajwt"), &o),
            Err(McError::InvalidLoginHint)
        );
        let strict = ProfileOptions {
            allow_no_hint: false,
            ..o
        };
        assert_eq!(
            check_login_hint(&params(""), &strict),
            Err(McError::MissingLoginHint)
        );
    }

    #[test]
    fn max_age_both_spellings() {
        assert_eq!(check_max_age(&params("max_age=3600")), Ok(Some(3600)));
        assert_eq!(check_max_age(&params("max-age=3600")), Ok(Some(3600)));
        assert_eq!(
            check_max_age(&params("max_age=10&max-age=10")),
            Ok(Some(10))
        );
        assert_eq!(check_max_age(&params("")), Ok(None));
        assert_eq!(
            check_max_age(&params("max_age=-1")),
            Err(McError::InvalidMaxAge)
        );
        assert_eq!(
            check_max_age(&params("max_age=1&max-age=2")),
            Err(McError::InvalidMaxAge)
        );
    }

    #[test]
    fn prompt_and_display() {
        assert!(check_prompt(&params("prompt=none")).unwrap().none);
        assert!(
            check_prompt(&params("prompt=login+no_seam"))
                .unwrap()
                .no_seam
        );
        assert_eq!(
            check_prompt(&params("prompt=none+login")),
            Err(McError::InvalidPrompt)
        );
        assert_eq!(
            check_prompt(&params("prompt=bogus")),
            Err(McError::InvalidPrompt)
        );
        assert_eq!(check_display(&params("display=touch")), Ok(Display::Touch));
        assert_eq!(
            check_display(&params("display=tv")),
            Err(McError::InvalidDisplay)
        );
    }

    #[test]
    fn claims_shape() {
        assert!(
            check_claims(&params(
                "claims=%7B%22userinfo%22%3A%7B%22phone_number%22%3Anull%7D%7D"
            ))
            .unwrap()
            .is_some()
        );
        for bad in [
            "claims=x",
            "claims=%5B%5D",
            "claims=%7B%22foo%22%3A%7B%7D%7D",
            "claims=%7B%22userinfo%22%3A1%7D",
        ] {
            assert_eq!(
                check_claims(&params(bad)),
                Err(McError::InvalidClaims),
                "{bad}"
            );
        }
    }

    #[test]
    fn transaction_text_rules() {
        let c = client();
        let o = ProfileOptions::default();
        let authz = Scope::from_values(["openid", "mc_authz"]);
        let ok = check_transaction_text(
            &params("client_name=OnlineShopper&context=Pay+%E2%82%AC10&binding_message=ABC"),
            &authz,
            &c,
            &o,
        )
        .unwrap();
        assert_eq!(ok.context.as_deref(), Some("Pay €10"));
        assert_eq!(
            check_transaction_text(&params("client_name=Other&context=x"), &authz, &c, &o),
            Err(McError::InvalidClientName)
        );
        assert_eq!(
            check_transaction_text(&params("client_name=OnlineShopper"), &authz, &c, &o),
            Err(McError::InvalidContext)
        );
        // 100 euro signs are 300 bytes: over the 256-byte bound although only 100 characters.
        let long = "%E2%82%AC".repeat(100);
        assert_eq!(
            check_transaction_text(
                &params(&format!("client_name=OnlineShopper&context={long}")),
                &authz,
                &c,
                &o
            ),
            Err(McError::InvalidContext)
        );
        let authn = Scope::from_values(["openid", "mc_authn"]);
        assert!(check_transaction_text(&params(""), &authn, &c, &o).is_ok());
        assert_eq!(
            check_transaction_text(
                &params(&format!("binding_message={}", "a".repeat(200))),
                &authn,
                &c,
                &o
            ),
            Err(McError::InvalidBindingMessage)
        );
    }

    #[test]
    fn ignored_parameters_are_bounded() {
        assert!(check_ignored_parameters(&params("ui_locales=en-GB")).is_ok());
        assert_eq!(
            check_ignored_parameters(&params(&format!("dtbs={}", "a".repeat(2000)))),
            Err(McError::InvalidParameter("dtbs"))
        );
    }
}
