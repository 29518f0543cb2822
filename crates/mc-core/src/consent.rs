//! Which parts of a request need the subscriber's consent (seed 000: nothing is shared
//! without consent; digest §15 item 15: the MSISDN only through a consented identity scope).
//!
//! A request's *consent items* are its attribute scopes (identity products, KYC match and
//! the OIDC attribute scopes) plus, for claims asked individually through the `claims`
//! parameter, `claim:<name>`. Authentication itself (`openid`, `mc_authn`), authorization
//! (`mc_authz`: the approval of the displayed transaction is the consent), `offline_access`
//! and the server-to-server `mc_atp` need none. See `docs/decisions.md` "Consent".

use serde_json::Value;

/// Scopes that release subscriber attributes (or answer questions about them, KYC match).
pub const ATTRIBUTE_SCOPES: &[&str] = &[
    "profile",
    "email",
    "address",
    "phone",
    "mc_identity_phonenumber",
    "mc_identity_signup",
    "mc_identity_signupplus",
    "mc_identity_nationalid",
    "mc_phonenumber",
    "mc_signup",
    "mc_nationalid",
    "mc_kyc_plain",
    "mc_kyc_hashed",
];

/// Attribute scopes whose release is the purpose of the request (the Mobile Connect
/// identity and KYC products): refusing them refuses the login (`access_denied`). The OIDC
/// attribute scopes are optional: refusing them grants the login without the attributes.
pub const PRODUCT_SCOPES: &[&str] = &[
    "mc_identity_phonenumber",
    "mc_identity_signup",
    "mc_identity_signupplus",
    "mc_identity_nationalid",
    "mc_phonenumber",
    "mc_signup",
    "mc_nationalid",
    "mc_kyc_plain",
    "mc_kyc_hashed",
];

/// Claims that describe the authentication, not the subscriber: asking for them through
/// `claims` needs no consent.
pub const PROTOCOL_CLAIMS: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "acr",
    "amr",
    "azp",
    "at_hash",
    "c_hash",
    "jti",
    "hashed_login_hint",
    "displayed_data",
    "correlation_id",
    "auth_req_id",
];

/// The prefix of a consent item for one claim asked through `claims`.
pub const CLAIM_PREFIX: &str = "claim:";

/// Whether `scope` releases attributes.
pub fn is_attribute_scope(scope: &str) -> bool {
    ATTRIBUTE_SCOPES.contains(&scope)
}

/// The consent item for a claim asked through `claims`.
pub fn claim_item(name: &str) -> String {
    format!("{CLAIM_PREFIX}{name}")
}

/// The OIDC attribute scope whose claim set holds `claim` (OIDC Core §5.4), if any.
pub fn oidc_scope_of_claim(claim: &str) -> Option<&'static str> {
    Some(match claim {
        "name" | "family_name" | "given_name" | "middle_name" | "nickname"
        | "preferred_username" | "profile" | "picture" | "website" | "gender" | "birthdate"
        | "zoneinfo" | "locale" | "updated_at" => "profile",
        "email" | "email_verified" => "email",
        "address" => "address",
        "phone_number" | "phone_number_verified" => "phone",
        _ => return None,
    })
}

/// The consent items of a request: its attribute scopes, and `claim:<name>` for every
/// attribute claim of the `claims` parameter (any member: `userinfo`, `id_token`,
/// `premiuminfo`) not already covered by a requested OIDC scope. Sorted, no duplicates.
/// A `claims` value that is not JSON adds nothing (it was validated at the authorize step).
pub fn requested_items(scope: &str, claims: Option<&str>) -> Vec<String> {
    let scopes: Vec<&str> = scope.split(' ').filter(|s| !s.is_empty()).collect();
    let mut items: Vec<String> = scopes
        .iter()
        .filter(|s| is_attribute_scope(s))
        .map(|s| (*s).to_owned())
        .collect();
    if let Some(Value::Object(members)) = claims.and_then(|c| serde_json::from_str(c).ok()) {
        for requested in members.values() {
            let Value::Object(names) = requested else {
                continue;
            };
            for name in names.keys() {
                let covered = oidc_scope_of_claim(name).is_some_and(|s| scopes.contains(&s));
                if !covered && !PROTOCOL_CLAIMS.contains(&name.as_str()) {
                    items.push(claim_item(name));
                }
            }
        }
    }
    items.sort();
    items.dedup();
    items
}

/// The items of `requested` not in `given` (a consent record's items).
pub fn missing_items(requested: &[String], given: &[String]) -> Vec<String> {
    requested
        .iter()
        .filter(|i| !given.contains(i))
        .cloned()
        .collect()
}

/// Whether refusing `items` refuses the login (one of them is a product scope).
pub fn refusal_denies(items: &[String]) -> bool {
    items.iter().any(|i| PRODUCT_SCOPES.contains(&i.as_str()))
}

/// The scope a login is granted: `requested` without the attribute scopes that `given`
/// does not cover. Order and spacing follow `requested`.
pub fn granted_scope(requested: &str, given: &[String]) -> String {
    requested
        .split(' ')
        .filter(|s| !s.is_empty() && (!is_attribute_scope(s) || given.iter().any(|g| g == s)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// What the subscriber is shown for an item (phone and consent page).
pub fn label(item: &str) -> String {
    if let Some(claim) = item.strip_prefix(CLAIM_PREFIX) {
        return match claim {
            "phone_number" | "phone_number_verified" => "Your phone number".to_owned(),
            "email" | "email_verified" => "Your email address".to_owned(),
            "address" => "Your postal address".to_owned(),
            "name" | "given_name" | "family_name" => "Your name".to_owned(),
            "birthdate" => "Your date of birth".to_owned(),
            other => format!("Your {}", other.replace('_', " ")),
        };
    }
    match item {
        "profile" => "Your name and basic profile",
        "email" => "Your email address",
        "address" => "Your postal address",
        "phone" | "mc_identity_phonenumber" | "mc_phonenumber" => "Your phone number",
        "mc_identity_signup" | "mc_signup" => {
            "Your name, email, postal address and phone number (sign-up)"
        }
        "mc_identity_signupplus" => {
            "Your name, email, postal address, phone number and date of birth (sign-up plus)"
        }
        "mc_identity_nationalid" | "mc_nationalid" => {
            "Your identity details, including your national ID number"
        }
        "mc_kyc_plain" | "mc_kyc_hashed" => {
            "Whether the details they hold about you match your operator's records"
        }
        other => return other.to_owned(),
    }
    .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_owned()).collect()
    }

    #[test]
    fn authentication_needs_no_consent() {
        assert!(requested_items("openid mc_authn", None).is_empty());
        assert!(requested_items("openid mc_authz offline_access", None).is_empty());
    }

    #[test]
    fn attribute_scopes_and_claims_are_items() {
        let claims = r#"{"userinfo":{"email":null,"name":{"essential":true},"sub":null},
                          "premiuminfo":{"national_identifier":null}}"#;
        assert_eq!(
            requested_items("openid email mc_identity_phonenumber", Some(claims)),
            s(&[
                "claim:name",
                "claim:national_identifier",
                "email",
                "mc_identity_phonenumber"
            ])
        );
        assert_eq!(
            requested_items("openid", Some("not json")),
            Vec::<String>::new()
        );
    }

    #[test]
    fn granted_scope_drops_unconsented_attributes() {
        assert_eq!(
            granted_scope("openid email phone mc_authn", &s(&["phone"])),
            "openid phone mc_authn"
        );
        assert_eq!(granted_scope("openid mc_authn", &[]), "openid mc_authn");
    }

    #[test]
    fn products_are_required_oidc_scopes_optional() {
        assert!(refusal_denies(&s(&["email", "mc_identity_signup"])));
        assert!(!refusal_denies(&s(&["email", "claim:name"])));
        assert_eq!(
            missing_items(&s(&["a", "b", "c"]), &s(&["b"])),
            s(&["a", "c"])
        );
    }

    #[test]
    fn labels_read_as_sentences() {
        assert_eq!(label("mc_identity_phonenumber"), "Your phone number");
        assert_eq!(label("claim:birthdate"), "Your date of birth");
        assert_eq!(label("claim:house_number"), "Your house number");
    }
}
