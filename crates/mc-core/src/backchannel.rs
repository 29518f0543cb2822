//! Back-channel ("server-initiated") authentication requests: OpenID CIBA Core 1.0 and the
//! Mobile Connect Server-Initiated flow (digest §9). Both end in one [`BackchannelRequest`];
//! the gateway runs it through the same authenticator router and state machine.
//!
//! Each check is one function returning the typed value or the error of its row (CIBA Core
//! §13, digest §9.2). Signature verification of request objects happens in the gateway
//! (it needs the client's keys); the checks here read verified claims.

use serde_json::{Map, Value};

use crate::acr::AcrValues;
use crate::error::McError;
use crate::limits::{MAX_ECHO_VALUE_BYTES, MAX_JWT_BYTES, MAX_SCOPE_BYTES};
use crate::login_hint::LoginHint;
use crate::params::RawParams;
use crate::scope::Scope;
use crate::version::McVersion;

/// Who the request is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackchannelHint {
    LoginHint(LoginHint),
    LoginHintToken(String),
    /// A previously issued id_token (CIBA `id_token_hint`), verified by the gateway.
    IdTokenHint(String),
}

/// A validated back-channel request, whichever protocol it came by.
#[derive(Debug, Clone)]
pub struct BackchannelRequest {
    pub scope: Scope,
    pub hint: BackchannelHint,
    pub acr: AcrValues,
    pub binding_message: Option<String>,
    /// Mobile Connect `context` (authz), shown on the phone.
    pub context: Option<String>,
    pub user_code: Option<String>,
    /// Seconds the client asks the request to live (CIBA `requested_expiry`).
    pub requested_expiry: Option<u32>,
    /// Bearer token we present when calling the client back.
    pub client_notification_token: Option<String>,
    /// SI: where to send the tokens; `None` means the polling variant.
    pub notification_uri: Option<String>,
    /// SI: nonce for the id_token (CIBA has none; a random one is used).
    pub nonce: Option<String>,
    pub claims: Option<Value>,
    pub correlation_id: Option<String>,
    pub version: Option<McVersion>,
}

/// Operator limits for back-channel requests.
#[derive(Debug, Clone)]
pub struct BackchannelOptions {
    pub max_binding_message_bytes: usize,
    pub max_context_bytes: usize,
    /// Upper bound of `requested_expiry` (and the default when absent).
    pub max_expiry_secs: u32,
}

impl Default for BackchannelOptions {
    fn default() -> Self {
        BackchannelOptions {
            max_binding_message_bytes: 128,
            max_context_bytes: 256,
            max_expiry_secs: 300,
        }
    }
}

/// What the registration says about the client, as the checks need it.
#[derive(Debug, Clone)]
pub struct BackchannelClient<'a> {
    pub client_id: &'a str,
    pub allowed_scopes: &'a Scope,
    pub short_name: &'a str,
    /// Ping or push: a `client_notification_token` is required (CIBA §7.1).
    pub notifies: bool,
    pub user_code_required: bool,
    pub notification_uris: &'a [String],
}

/// A bounded, printable text value.
fn text(v: Option<&str>, max: usize) -> Result<Option<String>, ()> {
    match v {
        None => Ok(None),
        Some(s) if s.len() <= max && !s.chars().any(char::is_control) => Ok(Some(s.to_owned())),
        Some(_) => Err(()),
    }
}

/// `scope` includes `openid`, only known values, only registered values (CIBA §7.1).
pub fn check_backchannel_scope(raw: Option<&str>, allowed: &Scope) -> Result<Scope, McError> {
    let raw = raw.ok_or(McError::MissingScope)?;
    if raw.len() > MAX_SCOPE_BYTES {
        return Err(McError::InvalidScope);
    }
    let scope = Scope::parse(raw).map_err(|_| McError::InvalidScope)?;
    if !scope.contains("openid") {
        return Err(McError::MissingScope);
    }
    if !scope.is_subset_of(allowed) || (scope.contains("mc_authn") && scope.contains("mc_authz")) {
        return Err(McError::InvalidScope);
    }
    Ok(scope)
}

/// Exactly one of `login_hint`, `login_hint_token`, `id_token_hint` (CIBA §7.1).
pub fn check_backchannel_hint(
    login_hint: Option<&str>,
    login_hint_token: Option<&str>,
    id_token_hint: Option<&str>,
) -> Result<BackchannelHint, McError> {
    let jwt = |t: &str| t.len() <= MAX_JWT_BYTES && t.split('.').count() >= 3;
    match (login_hint, login_hint_token, id_token_hint) {
        (Some(h), None, None) => LoginHint::parse(h)
            .map(BackchannelHint::LoginHint)
            .ok_or(McError::InvalidLoginHint),
        (None, Some(t), None) if jwt(t) => Ok(BackchannelHint::LoginHintToken(t.to_owned())),
        (None, None, Some(t)) if jwt(t) => Ok(BackchannelHint::IdTokenHint(t.to_owned())),
        (None, None, None) => Err(McError::MissingLoginHint),
        _ => Err(McError::InvalidLoginHint),
    }
}

/// `acr_values` optional for CIBA (default LoA2), a supported level when given.
pub fn check_backchannel_acr(raw: Option<&str>) -> Result<AcrValues, McError> {
    AcrValues::parse(raw.unwrap_or("2")).ok_or(McError::InvalidAcrValues)
}

/// `binding_message`: bounded in bytes, printable (CIBA §7.1: `invalid_binding_message`).
pub fn check_ciba_binding_message(
    raw: Option<&str>,
    opts: &BackchannelOptions,
) -> Result<Option<String>, McError> {
    text(raw, opts.max_binding_message_bytes).map_err(|_| McError::CibaInvalidBindingMessage)
}

/// `user_code` (CIBA §7.1): required when the client registered
/// `backchannel_user_code_parameter`; bounded and printable. The gateway then compares it
/// with the subscriber's own code (`mc_gateway::backchannel`).
pub fn check_user_code(raw: Option<&str>, required: bool) -> Result<Option<String>, McError> {
    match (raw, required) {
        (None, true) => Err(McError::MissingUserCode),
        (Some(c), _) if !user_code_is_well_formed(c) => Err(McError::InvalidUserCode),
        (c, _) => Ok(c.map(str::to_owned)),
    }
}

/// What a `user_code` may be: at most 64 bytes, no control characters (the format is the
/// OP's choice, CIBA Core §7.1).
pub fn user_code_is_well_formed(code: &str) -> bool {
    code.len() <= 64 && !code.chars().any(char::is_control)
}

/// What a subscriber's own code may be when provisioned: well formed and at least 4
/// characters (a secret, hashed like a PIN).
pub fn user_code_is_provisionable(code: &str) -> bool {
    user_code_is_well_formed(code) && code.chars().count() >= 4
}

/// `requested_expiry`: a positive integer number of seconds, capped by the operator
/// (CIBA §7.1; a string form is allowed for form bodies).
pub fn check_requested_expiry(
    raw: Option<&Value>,
    opts: &BackchannelOptions,
) -> Result<Option<u32>, McError> {
    let n = match raw {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.parse::<u64>().ok(),
        Some(_) => None,
    };
    match n {
        Some(n) if n > 0 => Ok(Some(n.min(u64::from(opts.max_expiry_secs)) as u32)),
        _ => Err(McError::BackchannelInvalid(
            "requested_expiry must be a positive integer".into(),
        )),
    }
}

/// `client_notification_token`: required for ping and push, at most 1024 bytes, printable
/// (CIBA §7.1 recommends 128 bits of entropy; we require at least 16 characters).
pub fn check_client_notification_token(
    raw: Option<&str>,
    required: bool,
) -> Result<Option<String>, McError> {
    match raw {
        None if required => Err(McError::BackchannelInvalid(
            "client_notification_token is required".into(),
        )),
        None => Ok(None),
        Some(t) if (16..=1024).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_graphic()) => {
            Ok(Some(t.to_owned()))
        }
        Some(_) => Err(McError::BackchannelInvalid(
            "client_notification_token is invalid".into(),
        )),
    }
}

/// A CIBA authentication request (form parameters, or the claims of a verified signed
/// request turned into strings).
pub fn check_ciba_request(
    p: &RawParams,
    client: &BackchannelClient<'_>,
    opts: &BackchannelOptions,
) -> Result<BackchannelRequest, McError> {
    if !p.duplicated().is_empty() {
        return Err(McError::DuplicateParameters);
    }
    let scope = check_backchannel_scope(p.get("scope"), client.allowed_scopes)?;
    let hint = check_backchannel_hint(
        p.get("login_hint"),
        p.get("login_hint_token"),
        p.get("id_token_hint"),
    )?;
    let acr = check_backchannel_acr(p.get("acr_values"))?;
    let binding_message = check_ciba_binding_message(p.get("binding_message"), opts)?;
    let user_code = check_user_code(p.get("user_code"), client.user_code_required)?;
    let requested_expiry = check_requested_expiry(
        p.get("requested_expiry")
            .map(|s| Value::String(s.to_owned()))
            .as_ref(),
        opts,
    )?;
    let client_notification_token =
        check_client_notification_token(p.get("client_notification_token"), client.notifies)?;
    let correlation_id = text(p.get("correlation_id"), MAX_ECHO_VALUE_BYTES)
        .map_err(|_| McError::InvalidCorrelationId)?;
    let context =
        text(p.get("context"), opts.max_context_bytes).map_err(|_| McError::InvalidContext)?;
    let claims = match p.get("claims") {
        Some(c) => Some(
            serde_json::from_str::<Value>(c)
                .ok()
                .filter(Value::is_object)
                .ok_or(McError::InvalidClaims)?,
        ),
        None => None,
    };
    Ok(BackchannelRequest {
        scope,
        hint,
        acr,
        binding_message,
        context,
        user_code,
        requested_expiry,
        client_notification_token,
        notification_uri: None,
        nonce: None,
        claims,
        correlation_id,
        version: None,
    })
}

/// The only outer parameters of a Mobile Connect SI request (digest §9.2: Beeline refuses
/// others with this very text).
pub const SI_OUTER_PARAMETERS: [&str; 4] = ["client_id", "response_type", "scope", "request"];

/// Outer SI parameters: exactly `client_id`, `response_type=mc_si_async_code`, `scope`,
/// `request`; names are case-sensitive (digest §9.2).
pub fn check_si_outer(p: &RawParams) -> Result<(), McError> {
    if p.iter().any(|(k, _)| !SI_OUTER_PARAMETERS.contains(&k)) {
        return Err(McError::BackchannelInvalid(
            "Allowed params are: client_id, response_type, scope, request".into(),
        ));
    }
    if !p.duplicated().is_empty() {
        return Err(McError::DuplicateParameters);
    }
    for name in SI_OUTER_PARAMETERS {
        if p.get(name).is_none() {
            return Err(McError::BackchannelInvalid(format!(
                "Mandatory parameter {name} is missing"
            )));
        }
    }
    if p.get("response_type") != Some("mc_si_async_code") {
        return Err(McError::BackchannelInvalid(
            "Mandatory parameter response_type is invalid".into(),
        ));
    }
    Ok(())
}

fn claim_str<'a>(c: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, McError> {
    match c.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.as_str())),
        Some(_) => Err(McError::BackchannelInvalid(format!(
            "REQUIRED parameter {name} is invalid"
        ))),
    }
}

fn required<'a>(c: &'a Map<String, Value>, name: &str) -> Result<&'a str, McError> {
    claim_str(c, name)?
        .ok_or_else(|| McError::BackchannelInvalid(format!("REQUIRED parameter {name} is missing")))
}

/// The verified claims of an SI request object (digest §9.2, in RUGW's order): its
/// `response_type`, `client_id`, `scope` (same set as outside), `version`, `nonce`,
/// `login_hint` or `login_hint_token`, `acr_values`, `iss` = client, `aud` = our issuer,
/// `exp` in the future when present, and either both `notification_uri` (registered) and
/// `client_notification_token` (notification) or neither (polling, docs/decisions.md).
pub fn check_si_request_object(
    claims: &Map<String, Value>,
    outer_scope: &str,
    client: &BackchannelClient<'_>,
    issuer: &str,
    now: i64,
    opts: &BackchannelOptions,
) -> Result<BackchannelRequest, McError> {
    if required(claims, "response_type")? != "mc_si_async_code" {
        return Err(McError::BackchannelInvalid(
            "REQUIRED parameter response_type is invalid".into(),
        ));
    }
    if required(claims, "client_id")? != client.client_id {
        return Err(McError::BackchannelInvalid(
            "REQUIRED parameter client_id is invalid".into(),
        ));
    }
    if required(claims, "iss")? != client.client_id {
        return Err(McError::BackchannelInvalid(
            "REQUIRED parameter iss is invalid".into(),
        ));
    }
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => a == issuer,
        Some(Value::Array(a)) => a.iter().any(|v| v.as_str() == Some(issuer)),
        _ => false,
    };
    if !aud_ok {
        return Err(McError::BackchannelInvalid(
            "REQUIRED parameter aud is invalid".into(),
        ));
    }
    match claims.get("exp") {
        None | Some(Value::Null) => {}
        Some(v) if v.as_i64().is_some_and(|exp| exp > now) => {}
        Some(_) => {
            return Err(McError::BackchannelInvalid(
                "The request object has expired (exp)".into(),
            ));
        }
    }
    let inner_scope = required(claims, "scope")?;
    let scope = check_backchannel_scope(Some(inner_scope), client.allowed_scopes)?;
    if Scope::parse(outer_scope).ok().as_ref() != Some(&scope) {
        return Err(McError::BackchannelInvalid(
            "REQUIRED parameter scope is invalid (differs from the outer scope)".into(),
        ));
    }
    let version = McVersion::parse(required(claims, "version")?)
        .filter(|v| v.is_server_initiated())
        .ok_or_else(|| {
            McError::BackchannelInvalid("REQUIRED parameter version is invalid".into())
        })?;
    let nonce = text(Some(required(claims, "nonce")?), MAX_ECHO_VALUE_BYTES)
        .map_err(|_| McError::BackchannelInvalid("REQUIRED parameter nonce is invalid".into()))?;
    let hint = check_backchannel_hint(
        claim_str(claims, "login_hint")?,
        claim_str(claims, "login_hint_token")?,
        None,
    )
    .map_err(|_| {
        McError::BackchannelInvalid("REQUIRED parameter login_hint is missing or invalid".into())
    })?;
    let acr = AcrValues::parse(required(claims, "acr_values")?).ok_or_else(|| {
        McError::BackchannelInvalid("REQUIRED parameter acr_values is invalid".into())
    })?;
    let notification_uri = claim_str(claims, "notification_uri")?;
    let token = claim_str(claims, "client_notification_token")?;
    match (notification_uri, token) {
        (Some(u), Some(_)) if !client.notification_uris.iter().any(|r| r == u) => {
            return Err(McError::BackchannelUnauthorized(
                "notification_uri is not registered for this client",
            ));
        }
        (Some(_), Some(_)) | (None, None) => {}
        _ => {
            return Err(McError::BackchannelInvalid(
                "REQUIRED parameter client_notification_token or notification_uri is missing"
                    .into(),
            ));
        }
    }
    let client_notification_token =
        check_client_notification_token(token, notification_uri.is_some())?;
    let correlation_id = text(claim_str(claims, "correlation_id")?, MAX_ECHO_VALUE_BYTES)
        .map_err(|_| McError::InvalidCorrelationId)?;
    let context = text(claim_str(claims, "context")?, opts.max_context_bytes)
        .map_err(|_| McError::InvalidContext)?;
    let binding_message = text(
        claim_str(claims, "binding_message")?,
        opts.max_binding_message_bytes,
    )
    .map_err(|_| McError::InvalidBindingMessage)?;
    if scope.is_authz() {
        if claim_str(claims, "client_name")? != Some(client.short_name) {
            return Err(McError::InvalidClientName);
        }
        if context.is_none() {
            return Err(McError::InvalidContext);
        }
    }
    let claims_param = match claims.get("claims") {
        None | Some(Value::Null) => None,
        Some(v @ Value::Object(_)) => Some(v.clone()),
        Some(Value::String(s)) => Some(
            serde_json::from_str::<Value>(s)
                .ok()
                .filter(Value::is_object)
                .ok_or(McError::InvalidClaims)?,
        ),
        Some(_) => return Err(McError::InvalidClaims),
    };
    Ok(BackchannelRequest {
        scope,
        hint,
        acr,
        binding_message,
        context,
        user_code: None,
        requested_expiry: None,
        client_notification_token,
        notification_uri: notification_uri.map(str::to_owned),
        nonce,
        claims: claims_param,
        correlation_id,
        version: Some(version),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn scope() -> Scope {
        Scope::from_values(["openid", "mc_authn", "mc_authz"])
    }

    fn client<'a>(allowed: &'a Scope, uris: &'a [String], notifies: bool) -> BackchannelClient<'a> {
        BackchannelClient {
            client_id: "sp",
            allowed_scopes: allowed,
            short_name: "Shop",
            notifies,
            user_code_required: false,
            notification_uris: uris,
        }
    }

    fn params(q: &str) -> RawParams {
        RawParams::from_urlencoded(q.as_bytes()).unwrap()
    }

    #[test]
    fn ciba_request_happy_path_and_defaults() {
        let s = scope();
        let r = check_ciba_request(
            &params("scope=openid+mc_authn&login_hint=MSISDN%3A447700900301&binding_message=AB12"),
            &client(&s, &[], false),
            &BackchannelOptions::default(),
        )
        .unwrap();
        assert_eq!(r.acr.target, crate::acr::Loa::Two);
        assert_eq!(r.binding_message.as_deref(), Some("AB12"));
    }

    #[test]
    fn ciba_hint_rules() {
        assert_eq!(
            check_backchannel_hint(None, None, None),
            Err(McError::MissingLoginHint)
        );
        assert_eq!(
            check_backchannel_hint(Some("MSISDN:447700900301"), Some("a.b.c"), None),
            Err(McError::InvalidLoginHint)
        );
        assert!(matches!(
            check_backchannel_hint(None, None, Some("a.b.c")),
            Ok(BackchannelHint::IdTokenHint(_))
        ));
        assert_eq!(
            check_backchannel_hint(Some("bogus"), None, None),
            Err(McError::InvalidLoginHint)
        );
    }

    #[test]
    fn ciba_field_rules() {
        let o = BackchannelOptions::default();
        assert_eq!(
            check_ciba_binding_message(Some(&"x".repeat(200)), &o),
            Err(McError::CibaInvalidBindingMessage)
        );
        assert_eq!(check_user_code(None, true), Err(McError::MissingUserCode));
        assert!(check_requested_expiry(Some(&json!(0)), &o).is_err());
        assert_eq!(
            check_requested_expiry(Some(&json!("9999")), &o),
            Ok(Some(300))
        );
        assert!(check_client_notification_token(None, true).is_err());
        assert!(check_client_notification_token(Some("short"), true).is_err());
        assert!(check_client_notification_token(Some("0123456789abcdef"), true).is_ok());
        assert_eq!(
            check_backchannel_scope(Some("mc_authn"), &scope()),
            Err(McError::MissingScope)
        );
    }

    fn si_claims() -> Map<String, Value> {
        json!({
            "response_type": "mc_si_async_code", "client_id": "sp", "iss": "sp", "aud": "https://op",
            "scope": "openid mc_authn", "version": "mc_si_r2_v1.0", "nonce": "n-1",
            "login_hint": "MSISDN:447700900301", "acr_values": "2",
            "notification_uri": "https://sp.example/notify", "client_notification_token": "0123456789abcdef0123"
        })
        .as_object()
        .unwrap()
        .clone()
    }

    #[test]
    fn si_request_object_rules() {
        let s = scope();
        let uris = vec!["https://sp.example/notify".to_owned()];
        let c = client(&s, &uris, false);
        let o = BackchannelOptions::default();
        let ok =
            check_si_request_object(&si_claims(), "openid mc_authn", &c, "https://op", 100, &o)
                .unwrap();
        assert_eq!(
            ok.notification_uri.as_deref(),
            Some("https://sp.example/notify")
        );
        let with = |k: &str, v: Value| {
            let mut m = si_claims();
            m.insert(k.into(), v);
            check_si_request_object(&m, "openid mc_authn", &c, "https://op", 100, &o)
        };
        assert!(with("aud", json!("https://other")).is_err());
        assert!(with("exp", json!(50)).is_err());
        assert!(with("version", json!("mc_di_r2_v2.3")).is_err());
        assert!(with("client_id", json!("other")).is_err());
        assert_eq!(
            with("notification_uri", json!("https://evil.example/n"))
                .unwrap_err()
                .code(),
            crate::ErrorCode::UnauthorizedClient
        );
        assert!(
            check_si_request_object(&si_claims(), "openid mc_authz", &c, "https://op", 100, &o)
                .is_err(),
            "scope mismatch"
        );
        let mut polling = si_claims();
        polling.remove("notification_uri");
        polling.remove("client_notification_token");
        assert_eq!(
            check_si_request_object(&polling, "openid mc_authn", &c, "https://op", 100, &o)
                .unwrap()
                .notification_uri,
            None
        );
    }

    #[test]
    fn si_outer_parameters() {
        assert!(
            check_si_outer(&params(
                "client_id=a&response_type=mc_si_async_code&scope=openid&request=x.y.z"
            ))
            .is_ok()
        );
        let e = check_si_outer(&params(
            "client_id=a&response_type=mc_si_async_code&scope=openid&request=x&nonce=1",
        ))
        .unwrap_err();
        assert_eq!(
            e.description(),
            "Allowed params are: client_id, response_type, scope, request"
        );
        assert!(
            check_si_outer(&params(
                "client_id=a&response_type=code&scope=openid&request=x"
            ))
            .is_err()
        );
        assert!(
            check_si_outer(&params(
                "client_id=a&response_type=mc_si_async_code&scope=openid&Request=x"
            ))
            .is_err()
        );
    }
}
