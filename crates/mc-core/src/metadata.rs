//! Provider metadata (`/.well-known/openid-configuration`, digest §3), derived from what the
//! operator switched on, so a disabled feature is neither served nor advertised.

use serde_json::{Value, json};

use crate::scope::KNOWN_SCOPES;
use crate::version::McVersion;

/// What the metadata is derived from.
#[derive(Debug, Clone)]
pub struct MetadataInput<'a> {
    /// The issuer, byte-for-byte what goes into `iss`.
    pub issuer: &'a str,
    /// Public base URL the endpoints hang off (usually the issuer).
    pub base_url: &'a str,
    /// `amr` values of the authenticators that are switched on.
    pub amr_values: &'a [&'a str],
    /// Whether any authenticator reaches LoA3.
    pub loa3_available: bool,
    /// CIBA delivery modes switched on (empty: no CIBA endpoint).
    pub ciba_modes: &'a [&'a str],
    /// Whether the Mobile Connect SI endpoint is on.
    pub si: bool,
}

/// Device-initiated versions published in `mc_version`.
const DI_VERSIONS: [McVersion; 5] = [
    McVersion::V1_1,
    McVersion::V1_2,
    McVersion::V2_0,
    McVersion::DiR2V2_3,
    McVersion::DiV3_0,
];

/// The metadata document.
pub fn provider_metadata(m: &MetadataInput<'_>) -> Value {
    let base = m.base_url.trim_end_matches('/');
    let acr: Vec<&str> = if m.loa3_available {
        vec!["2", "3"]
    } else {
        vec!["2"]
    };
    let versions: Vec<&str> = DI_VERSIONS.iter().map(|v| v.as_str()).collect();
    let front_channel_scopes: Vec<&str> = KNOWN_SCOPES
        .iter()
        .copied()
        .filter(|s| *s != "mc_atp")
        .collect();
    let backchannel = !m.ciba_modes.is_empty() || m.si;
    let mut grants = vec![
        crate::grants::AUTHORIZATION_CODE,
        crate::grants::REFRESH_TOKEN,
        crate::grants::CLIENT_CREDENTIALS,
    ];
    let mut response_types = vec!["code"];
    let mut versions = versions;
    if backchannel {
        grants.push(crate::grants::CIBA);
    }
    if m.si {
        response_types.push("mc_si_async_code");
        versions.push(McVersion::SiR2V1_0.as_str());
    }
    let mut doc = json!({
        "issuer": m.issuer,
        "authorization_endpoint": format!("{base}/authorize"),
        "token_endpoint": format!("{base}/token"),
        "userinfo_endpoint": format!("{base}/userinfo"),
        "premiuminfo_endpoint": format!("{base}/premiuminfo"),
        "introspection_endpoint": format!("{base}/introspect"),
        "revocation_endpoint": format!("{base}/revoke"),
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
        "introspection_endpoint_auth_signing_alg_values_supported": crate::grants::CLIENT_JWS_ALGS,
        "revocation_endpoint_auth_signing_alg_values_supported": crate::grants::CLIENT_JWS_ALGS,
        "jwks_uri": format!("{base}/jwks"),
        "response_types_supported": response_types,
        "response_modes_supported": ["query"],
        "grant_types_supported": grants,
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": crate::grants::CLIENT_JWS_ALGS,
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": front_channel_scopes,
        "claims_supported": ["sub", "iss", "aud", "azp", "exp", "iat", "auth_time", "nonce", "acr", "amr",
                             "at_hash", "hashed_login_hint", "displayed_data", "correlation_id", "phone_number",
                             "phone_number_verified"],
        "acr_values_supported": acr,
        "display_values_supported": ["page", "popup", "touch", "wap"],
        "prompt_values_supported": ["none", "login", "consent", "select_account", "no_seam"],
        "claims_parameter_supported": true,
        "mc_claims_parameter_supported": true,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "login_hint_methods_supported": ["MSISDN", "ENCR_MSISDN", "ENCRYPTED_MSISDN", "PCR"],
        "mc_amr_values_supported": m.amr_values,
        "mc_hash_algs_supported": ["SHA-256"],
        "mc_version": versions,
        "mobile_connect_version_supported": [
            {"openid": "mc_v1.1"},
            {"openid mc_authn": "mc_di_r2_v2.3"},
            {"openid mc_authz": "mc_di_r2_v2.3"},
            {"openid mc_identity_phonenumber": "mc_di_r2_v2.3"}
        ],
        "ui_locales_supported": ["en-GB"],
    });
    if !m.ciba_modes.is_empty() {
        doc["backchannel_authentication_endpoint"] = json!(format!("{base}/bc-authorize"));
        doc["backchannel_token_delivery_modes_supported"] = json!(m.ciba_modes);
        doc["backchannel_authentication_request_signing_alg_values_supported"] =
            json!(crate::grants::CLIENT_JWS_ALGS);
        doc["backchannel_user_code_parameter_supported"] = json!(true);
    }
    if m.si {
        doc["si_authorization_endpoint"] = json!(format!("{base}/si-authorize"));
        doc["request_object_signing_alg_values_supported"] = json!(crate::grants::CLIENT_JWS_ALGS);
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carries_every_mobile_connect_key() {
        let m = provider_metadata(&MetadataInput {
            issuer: "http://127.0.0.1:8080",
            base_url: "http://127.0.0.1:8080/",
            amr_values: &["SIM_OK", "SIM_PIN"],
            loa3_available: true,
            ciba_modes: &["poll", "ping", "push"],
            si: true,
        });
        for key in [
            "mc_version",
            "mobile_connect_version_supported",
            "login_hint_methods_supported",
            "acr_values_supported",
            "scopes_supported",
            "subject_types_supported",
            "mc_amr_values_supported",
            "claims_parameter_supported",
        ] {
            assert!(m.get(key).is_some(), "{key}");
        }
        assert_eq!(m["token_endpoint"], "http://127.0.0.1:8080/token");
        assert_eq!(
            m["premiuminfo_endpoint"],
            "http://127.0.0.1:8080/premiuminfo"
        );
        let hints = m["login_hint_methods_supported"].as_array().unwrap();
        assert!(
            hints.contains(&json!("ENCR_MSISDN")) && hints.contains(&json!("ENCRYPTED_MSISDN"))
        );
        assert!(
            m["subject_types_supported"]
                .as_array()
                .unwrap()
                .contains(&json!("pairwise"))
        );
    }

    #[test]
    fn loa3_is_advertised_only_when_available() {
        let m = provider_metadata(&MetadataInput {
            issuer: "i",
            base_url: "b",
            amr_values: &[],
            loa3_available: false,
            ciba_modes: &[],
            si: false,
        });
        assert_eq!(m["acr_values_supported"], json!(["2"]));
        assert!(m.get("backchannel_authentication_endpoint").is_none());
        assert!(m.get("si_authorization_endpoint").is_none());
        assert_eq!(
            m["grant_types_supported"],
            json!(["authorization_code", "refresh_token", "client_credentials"])
        );
    }
}
