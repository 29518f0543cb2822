//! id_token validation: every check the GSMA SDKs make (digest §6.3), plus ±60 s of clock
//! skew, in this order — signature (RS256/PS256/ES256 with the operator's JWKS; an unknown
//! `kid` refetches it), `iss`, `aud`, `azp`, `exp`, `iat`, `nonce`, the claims
//! `mc_di_r2_v2.3`+ makes mandatory, `acr` ≥ the lowest level the SP accepted, `at_hash`,
//! `hashed_login_hint` when the SP knows the number, and `auth_time` against `max_age`.
//! Each failure is one [`IdTokenError`] variant.
//!
//! [`validate`] is the pure function (keys and time given); [`Operator::validate_id_token`]
//! adds the JWKS fetch.

use mc_core::acr::{AcrValues, Loa};
use mc_core::msisdn::Msisdn;
use mc_core::version::McVersion;
use serde_json::{Map, Value};

use crate::Operator;
use crate::error::IdTokenError;
use crate::jose::{JwkSet, Jws};

/// What a particular login's id_token must satisfy (beyond issuer, audience and time).
#[derive(Debug, Clone, Default)]
pub struct Expectations {
    /// The `nonce` sent.
    pub nonce: Option<String>,
    /// The `acr_values` sent: the achieved `acr` must be at least the lowest listed level.
    pub acr_values: Option<String>,
    /// The subscriber's number, when the SP knows it: `hashed_login_hint` must be its hash.
    pub msisdn: Option<Msisdn>,
    /// The access token issued with it: `at_hash` must match.
    pub access_token: Option<String>,
    /// The `max_age` sent: `auth_time` must be present and recent enough.
    pub max_age: Option<u64>,
    /// The version sent: from `mc_di_r2_v2.3` on, `at_hash`, `acr`, `amr` and
    /// `hashed_login_hint` are mandatory.
    pub version: Option<McVersion>,
}

/// The validated claims. `sub` is the PCR.
#[derive(Debug, Clone)]
pub struct IdToken {
    pub iss: String,
    pub sub: String,
    pub aud: Vec<String>,
    pub azp: Option<String>,
    pub exp: i64,
    pub iat: i64,
    pub auth_time: Option<i64>,
    pub nonce: Option<String>,
    pub acr: Option<String>,
    pub amr: Vec<String>,
    pub at_hash: Option<String>,
    pub hashed_login_hint: Option<String>,
    /// `mc_authz`: what the phone displayed.
    pub displayed_data: Option<String>,
    pub correlation_id: Option<String>,
    /// Every claim, as sent.
    pub claims: Map<String, Value>,
    /// The compact token itself.
    pub raw: String,
}

impl IdToken {
    /// The PCR (pseudonymous customer reference) — the id_token's `sub`.
    pub fn pcr(&self) -> &str {
        &self.sub
    }
}

/// Who must have issued the token, to whom, and when "now" is.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    /// The operator's `id_token_signing_alg_values_supported` (empty: RS256/PS256/ES256).
    pub allowed_algs: &'a [String],
    pub now: i64,
    pub skew: i64,
}

fn str_claim(c: &Map<String, Value>, k: &'static str) -> Result<Option<String>, IdTokenError> {
    match c.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(IdTokenError::MissingClaim(k)),
    }
}

fn int_claim(c: &Map<String, Value>, k: &'static str) -> Result<Option<i64>, IdTokenError> {
    match c.get(k) {
        None | Some(Value::Null) => Ok(None),
        // Some issuers send fractional seconds.
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .map(Some)
            .ok_or(IdTokenError::MissingClaim(k)),
        Some(_) => Err(IdTokenError::MissingClaim(k)),
    }
}

/// Validates `jwt` with `keys` (digest §6.3).
pub fn validate(
    jwt: &str,
    keys: &JwkSet,
    ctx: &Context<'_>,
    expect: &Expectations,
) -> Result<IdToken, IdTokenError> {
    let jws = Jws::parse(jwt)?;
    let alg = jws.verify(keys)?;
    if !ctx.allowed_algs.is_empty() && !ctx.allowed_algs.iter().any(|a| a == alg.as_str()) {
        return Err(IdTokenError::UnsupportedAlgorithm(alg.as_str().to_owned()));
    }
    check_claims(jws.claims, jwt, ctx, expect)
}

/// The claim checks, after the signature.
fn check_claims(
    c: Map<String, Value>,
    jwt: &str,
    ctx: &Context<'_>,
    expect: &Expectations,
) -> Result<IdToken, IdTokenError> {
    // iss: byte for byte (digest §11.3).
    let iss = str_claim(&c, "iss")?.ok_or(IdTokenError::MissingClaim("iss"))?;
    if iss != ctx.issuer {
        return Err(IdTokenError::InvalidIssuer {
            expected: ctx.issuer.to_owned(),
            found: iss,
        });
    }
    let sub = str_claim(&c, "sub")?
        .filter(|s| !s.is_empty())
        .ok_or(IdTokenError::MissingClaim("sub"))?;
    // aud: a string or an array that contains the client_id.
    let aud: Vec<String> = match c.get("aud") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<_>>()
            .ok_or(IdTokenError::MissingClaim("aud"))?,
        _ => return Err(IdTokenError::MissingClaim("aud")),
    };
    if !aud.iter().any(|a| a == ctx.client_id) {
        return Err(IdTokenError::InvalidAudience);
    }
    // azp: when present, the client_id (PHP/.NET); OIDC Core wants it with several audiences.
    let azp = str_claim(&c, "azp")?;
    match &azp {
        Some(a) if a != ctx.client_id => return Err(IdTokenError::InvalidAuthorizedParty),
        None if aud.len() > 1 => return Err(IdTokenError::InvalidAuthorizedParty),
        _ => {}
    }
    let exp = int_claim(&c, "exp")?.ok_or(IdTokenError::MissingClaim("exp"))?;
    if exp + ctx.skew < ctx.now {
        return Err(IdTokenError::Expired { exp, now: ctx.now });
    }
    let iat = int_claim(&c, "iat")?.ok_or(IdTokenError::MissingClaim("iat"))?;
    if iat - ctx.skew > ctx.now {
        return Err(IdTokenError::IssuedInFuture { iat, now: ctx.now });
    }
    let nonce = str_claim(&c, "nonce")?;
    if let Some(want) = &expect.nonce
        && nonce.as_deref() != Some(want.as_str())
    {
        return Err(IdTokenError::InvalidNonce);
    }
    let acr = str_claim(&c, "acr")?;
    let amr: Vec<String> = match c.get("amr") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<_>>()
            .ok_or(IdTokenError::MissingClaim("amr"))?,
        Some(_) => return Err(IdTokenError::MissingClaim("amr")),
    };
    let at_hash = str_claim(&c, "at_hash")?;
    let hashed_login_hint = str_claim(&c, "hashed_login_hint")?;
    if expect
        .version
        .is_some_and(McVersion::requires_full_id_token)
    {
        // digest §6.3.1 (and the Java SDK's bug of checking acr twice, fixed).
        if at_hash.is_none() {
            return Err(IdTokenError::MissingClaim("at_hash"));
        }
        if acr.is_none() {
            return Err(IdTokenError::MissingClaim("acr"));
        }
        if !c.contains_key("amr") {
            return Err(IdTokenError::MissingClaim("amr"));
        }
        if hashed_login_hint.is_none() {
            return Err(IdTokenError::MissingClaim("hashed_login_hint"));
        }
    }
    if let Some(requested) = expect.acr_values.as_deref().and_then(AcrValues::parse) {
        let required = requested.fallback.unwrap_or(requested.target);
        let got = acr.as_deref().and_then(Loa::parse);
        if got.is_none_or(|g| g < required) {
            return Err(IdTokenError::AcrTooLow {
                required,
                got: acr.clone().unwrap_or_default(),
            });
        }
    }
    if let (Some(token), Some(h)) = (&expect.access_token, &at_hash)
        && mc_core::id_token::at_hash(token) != *h
    {
        return Err(IdTokenError::InvalidAtHash);
    }
    if let Some(m) = &expect.msisdn {
        match &hashed_login_hint {
            Some(h) if h.eq_ignore_ascii_case(&mc_core::id_token::hashed_login_hint(m)) => {}
            Some(_) => return Err(IdTokenError::InvalidHashedLoginHint),
            // Only v2.3+ makes it mandatory (checked above); older tokens may lack it.
            None => {}
        }
    }
    let auth_time = int_claim(&c, "auth_time")?;
    if let Some(max_age) = expect.max_age {
        let t = auth_time.ok_or(IdTokenError::MissingClaim("auth_time"))?;
        let max_age = i64::try_from(max_age).unwrap_or(i64::MAX);
        if t.saturating_add(max_age).saturating_add(ctx.skew) < ctx.now {
            return Err(IdTokenError::MaxAgePassed);
        }
    }
    Ok(IdToken {
        iss,
        sub,
        aud,
        azp,
        exp,
        iat,
        auth_time,
        nonce,
        acr,
        amr,
        at_hash,
        hashed_login_hint,
        displayed_data: str_claim(&c, "displayed_data")?,
        correlation_id: str_claim(&c, "correlation_id")?,
        claims: c,
        raw: jwt.to_owned(),
    })
}

impl Operator {
    /// Validates an id_token issued by this operator to this client. An unknown `kid`
    /// refetches the JWKS once (key rotation).
    pub async fn validate_id_token(
        &self,
        jwt: &str,
        expect: &Expectations,
    ) -> Result<IdToken, IdTokenError> {
        let kid = Jws::parse(jwt)?.kid().map(str::to_owned);
        let keys = self.jwks(kid.as_deref()).await?;
        let ctx = Context {
            issuer: &self.metadata.issuer,
            client_id: &self.credentials.client_id,
            allowed_algs: &self.metadata.id_token_signing_alg_values_supported,
            now: self.now(),
            skew: self.ctx.options.clock_skew_secs,
        };
        validate(jwt, &keys, &ctx, expect)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::jose::{Algorithm, SigningKey};
    use serde_json::json;

    const NOW: i64 = 1_700_000_000;
    const ISS: &str = "https://op.example";
    const CLIENT: &str = "client-1";
    const MSISDN: &str = "447700900301";

    fn claims() -> Value {
        let m = Msisdn::parse(MSISDN).unwrap();
        json!({
            "iss": ISS, "sub": "pcr-1", "aud": [CLIENT], "azp": CLIENT,
            "exp": NOW + 300, "iat": NOW, "auth_time": NOW - 10, "nonce": "n-1",
            "acr": "2", "amr": ["SIM_OK"], "at_hash": mc_core::id_token::at_hash("at-1"),
            "hashed_login_hint": mc_core::id_token::hashed_login_hint(&m),
        })
    }

    fn expect() -> Expectations {
        Expectations {
            nonce: Some("n-1".into()),
            acr_values: Some("2".into()),
            msisdn: Msisdn::parse(MSISDN),
            access_token: Some("at-1".into()),
            max_age: Some(3600),
            version: Some(McVersion::DiR2V2_3),
        }
    }

    fn check(
        edit: impl FnOnce(&mut Value),
        e: &Expectations,
        now: i64,
    ) -> Result<IdToken, IdTokenError> {
        let key = SigningKey::generate_rsa("k", Algorithm::RS256).unwrap();
        let keys: JwkSet = serde_json::from_value(key.public_jwks()).unwrap();
        let mut c = claims();
        edit(&mut c);
        let ctx = Context {
            issuer: ISS,
            client_id: CLIENT,
            allowed_algs: &[],
            now,
            skew: 60,
        };
        validate(&key.sign(&c).unwrap(), &keys, &ctx, e)
    }

    fn fails(edit: impl FnOnce(&mut Value)) -> IdTokenError {
        check(edit, &expect(), NOW).unwrap_err()
    }

    #[test]
    fn a_good_token_passes_and_exposes_the_pcr() {
        let t = check(|_| {}, &expect(), NOW).unwrap();
        assert_eq!(t.pcr(), "pcr-1");
        assert_eq!(t.acr.as_deref(), Some("2"));
        assert_eq!(t.amr, ["SIM_OK"]);
    }

    #[test]
    fn each_claim_check_has_its_error() {
        assert!(matches!(
            fails(|c| c["iss"] = json!("https://evil")),
            IdTokenError::InvalidIssuer { .. }
        ));
        assert_eq!(
            fails(|c| c["aud"] = json!(["other"])),
            IdTokenError::InvalidAudience
        );
        assert_eq!(
            fails(|c| c["azp"] = json!("other")),
            IdTokenError::InvalidAuthorizedParty
        );
        assert_eq!(
            fails(|c| {
                c["aud"] = json!([CLIENT, "x"]);
                c.as_object_mut().unwrap().remove("azp");
            }),
            IdTokenError::InvalidAuthorizedParty
        );
        assert_eq!(
            fails(|c| c["nonce"] = json!("n-2")),
            IdTokenError::InvalidNonce
        );
        assert_eq!(
            fails(|c| c["at_hash"] = json!("AAAAAAAAAAAAAAAAAAAAAA")),
            IdTokenError::InvalidAtHash
        );
        assert_eq!(
            fails(|c| c["hashed_login_hint"] = json!("00")),
            IdTokenError::InvalidHashedLoginHint
        );
        assert_eq!(
            fails(|c| c["auth_time"] = json!(NOW - 4000)),
            IdTokenError::MaxAgePassed
        );
        for claim in [
            "at_hash",
            "acr",
            "amr",
            "hashed_login_hint",
            "auth_time",
            "sub",
            "exp",
        ] {
            assert_eq!(
                fails(|c| {
                    c.as_object_mut().unwrap().remove(claim);
                }),
                IdTokenError::MissingClaim(claim),
                "{claim}"
            );
        }
    }

    #[test]
    fn string_aud_is_accepted() {
        check(|c| c["aud"] = json!(CLIENT), &expect(), NOW).unwrap();
    }

    #[test]
    fn clock_skew_is_sixty_seconds_each_way() {
        // exp 300 s ahead: fine until now = exp + 60.
        assert!(check(|_| {}, &expect(), NOW + 360).is_ok());
        assert!(matches!(
            check(|_| {}, &expect(), NOW + 361),
            Err(IdTokenError::Expired { .. })
        ));
        assert!(check(|_| {}, &expect(), NOW - 60).is_ok());
        assert!(matches!(
            check(|_| {}, &expect(), NOW - 61),
            Err(IdTokenError::IssuedInFuture { .. })
        ));
    }

    #[test]
    fn acr_must_reach_the_lowest_accepted_level() {
        let mut e = expect();
        e.acr_values = Some("3".into());
        assert!(matches!(
            check(|_| {}, &e, NOW),
            Err(IdTokenError::AcrTooLow {
                required: Loa::Three,
                ..
            })
        ));
        e.acr_values = Some("3 2".into());
        assert!(
            check(|_| {}, &e, NOW).is_ok(),
            "the fallback 2 was accepted"
        );
        e.acr_values = Some("3".into());
        assert!(check(|c| c["acr"] = json!("3"), &e, NOW).is_ok());
    }

    #[test]
    fn older_versions_may_omit_the_mc_claims() {
        let mut e = expect();
        e.version = Some(McVersion::V1_1);
        e.acr_values = None;
        assert!(
            check(
                |c| {
                    let o = c.as_object_mut().unwrap();
                    for k in ["at_hash", "acr", "amr", "hashed_login_hint"] {
                        o.remove(k);
                    }
                },
                &e,
                NOW
            )
            .is_ok()
        );
    }

    #[test]
    fn algorithms_outside_the_metadata_list_are_refused() {
        let key = SigningKey::generate_ec("e").unwrap();
        let keys: JwkSet = serde_json::from_value(key.public_jwks()).unwrap();
        let rs_only = ["RS256".to_owned()];
        let ctx = Context {
            issuer: ISS,
            client_id: CLIENT,
            allowed_algs: &rs_only,
            now: NOW,
            skew: 60,
        };
        assert_eq!(
            validate(&key.sign(&claims()).unwrap(), &keys, &ctx, &expect()).unwrap_err(),
            IdTokenError::UnsupportedAlgorithm("ES256".into())
        );
    }
}
