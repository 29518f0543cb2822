//! id_token claims (digest §6.1) and the hashes inside them.

use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;

use crate::msisdn::Msisdn;

/// The claims of a Mobile Connect id_token. `sub` is the PCR, never the MSISDN.
#[derive(Debug, Clone, Serialize)]
pub struct IdTokenClaims {
    pub iss: String,
    pub sub: String,
    pub aud: Vec<String>,
    pub azp: String,
    pub exp: i64,
    pub iat: i64,
    pub auth_time: i64,
    pub nonce: String,
    pub acr: String,
    pub amr: Vec<String>,
    pub at_hash: String,
    pub hashed_login_hint: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub displayed_data: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// CIBA push mode (CIBA Core §10.3.1): the request the token answers.
    #[serde(
        rename = "urn:openid:params:jwt:claim:auth_req_id",
        skip_serializing_if = "Option::is_none"
    )]
    pub auth_req_id: Option<String>,
    pub jti: String,
}

/// OIDC Core §3.1.3.6: base64url of the left half of SHA-256 of the access token's ASCII.
pub fn at_hash(access_token: &str) -> String {
    let d = digest::digest(&digest::SHA256, access_token.as_bytes());
    URL_SAFE_NO_PAD.encode(&d.as_ref()[..16])
}

/// `hashed_login_hint`: lowercase hex of SHA-256 over `"MSISDN:" + digits` (RUGW's
/// definition; decided in docs/decisions.md). Computed from the identified subscriber's
/// number whatever hint form the SP sent, so the SP can compare it with the number it knows.
pub fn hashed_login_hint(msisdn: &Msisdn) -> String {
    crate::hash::sha256_hex(&format!("MSISDN:{}", msisdn.as_str()))
}

/// The `displayed_data` claim of `mc_authz`: exactly what the phone showed.
pub fn displayed_data(
    client_name: &str,
    context: Option<&str>,
    binding_message: Option<&str>,
) -> String {
    let mut parts = vec![client_name];
    parts.extend(context);
    parts.extend(binding_message);
    parts.join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_matches_oidc_example() {
        // OIDC Core A.3: access token "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y" -> at_hash "77QmUPtjPfzWtF2AnpK9RQ".
        assert_eq!(
            at_hash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
    }

    #[test]
    fn hashed_login_hint_is_lowercase_hex_sha256() {
        let h = hashed_login_hint(&Msisdn::parse("447700900301").unwrap());
        assert_eq!(h.len(), 64);
        assert!(
            h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
        let d = digest::digest(&digest::SHA256, b"MSISDN:447700900301");
        assert_eq!(
            h,
            d.as_ref()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
    }

    #[test]
    fn displayed_data_joins_the_shown_parts() {
        assert_eq!(
            displayed_data("Shop", Some("Pay 10"), None),
            "Shop | Pay 10"
        );
    }
}
