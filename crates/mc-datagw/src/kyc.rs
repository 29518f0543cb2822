//! KYC match (`mc_kyc_plain`, `mc_kyc_hashed`; digest §8.3): the service provider sends
//! the values it holds in the `claims` parameter (`{"premiuminfo": {"name": {"value": …}}}`)
//! and learns, per claim, whether the operator's record agrees — never the record itself.
//!
//! * Claim names: `name, given_name, family_name, address, houseno_or_housename,
//!   postal_code, town, country, birthdate`; the hashed product uses the same names with
//!   `_hashed` (`name_hashed`, …) and a value of lowercase hex SHA-256 over the
//!   *normalised* text.
//! * Normalisation: Unicode lowercase, then only letters and digits are kept (spaces,
//!   punctuation and dashes go): `"Henry Dorsett-Case"` → `"henrydorsettcase"`.
//! * Required combinations: a name part (`name`, or `given_name` and `family_name`) and an
//!   address part (`address`, or `houseno_or_housename`, `postal_code`, `town` and
//!   `country`). Anything less is refused with [`KycError`].
//! * Answer: `"<requested name>_match": "true" | "false"` for every requested claim; a value
//!   the operator does not hold cannot be confirmed and answers `"false"`.

use serde_json::{Map, Value, json};

use crate::attributes::Attributes;
use crate::claims::{ClaimsRequest, full_name};

/// The claims a KYC match compares.
pub const KYC_CLAIMS: &[&str] = &[
    "name",
    "given_name",
    "family_name",
    "address",
    "houseno_or_housename",
    "postal_code",
    "town",
    "country",
    "birthdate",
];

/// A KYC request the gateway cannot answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KycError {
    /// The required combination of claims is not there.
    #[error(
        "KYC match needs name (or given_name and family_name) and address (or houseno_or_housename, postal_code, town and country)"
    )]
    Incomplete,
    /// A claim's value is missing, not a string, or (hashed) not 64 hex digits.
    #[error("KYC claim {0} needs a value")]
    BadValue(String),
}

/// One claim to compare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KycClaim {
    /// The base claim (`name`), without `_hashed`.
    pub claim: &'static str,
    /// Whether the value is a SHA-256 (hex, lowercase).
    pub hashed: bool,
    /// Normalised text, or the hash.
    pub value: String,
}

impl KycClaim {
    /// The answer's key: the requested name plus `_match`.
    pub fn answer_key(&self) -> String {
        if self.hashed {
            format!("{}_hashed_match", self.claim)
        } else {
            format!("{}_match", self.claim)
        }
    }
}

/// A validated KYC request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KycRequest(pub Vec<KycClaim>);

/// Lowercase, letters and digits only.
pub fn normalise(s: &str) -> String {
    s.chars()
        .flat_map(char::to_lowercase)
        .filter(|c| c.is_alphanumeric())
        .collect()
}

/// Lowercase hex SHA-256 of the normalised text: what an SP sends for `<claim>_hashed`.
pub fn hashed(s: &str) -> String {
    mc_core::hash::sha256_hex(&normalise(s))
}

/// Picks the KYC claims out of a `claims` member and checks the required combinations.
/// `plain` / `hashed` say which products the token grants; claims of the other product
/// are ignored. `Ok(None)`: the member asks for no KYC claim at all.
pub fn check_request(
    req: &ClaimsRequest,
    plain: bool,
    hashed_allowed: bool,
) -> Result<Option<KycRequest>, KycError> {
    let mut out = Vec::new();
    for (name, entry) in req.iter() {
        let (base, is_hashed) = match name.strip_suffix("_hashed") {
            Some(b) => (b, true),
            None => (name, false),
        };
        let Some(claim) = KYC_CLAIMS.iter().copied().find(|c| *c == base) else {
            continue;
        };
        if (is_hashed && !hashed_allowed) || (!is_hashed && !plain) {
            continue;
        }
        let raw = entry
            .value
            .as_ref()
            .and_then(Value::as_str)
            .ok_or_else(|| KycError::BadValue(name.to_owned()))?;
        let value = if is_hashed {
            let h = raw.trim().to_ascii_lowercase();
            if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(KycError::BadValue(name.to_owned()));
            }
            h
        } else {
            normalise(raw)
        };
        out.push(KycClaim {
            claim,
            hashed: is_hashed,
            value,
        });
    }
    if out.is_empty() {
        return Ok(None);
    }
    let has = |c: &str| out.iter().any(|k| k.claim == c);
    let name_part = has("name") || (has("given_name") && has("family_name"));
    let address_part = has("address")
        || (has("houseno_or_housename") && has("postal_code") && has("town") && has("country"));
    if !(name_part && address_part) {
        return Err(KycError::Incomplete);
    }
    Ok(Some(KycRequest(out)))
}

/// The operator's candidate texts for a claim (several when the spelling of a composite
/// is not fixed: a name with or without the middle name, an address in two orders).
fn candidates(claim: &str, a: &Attributes) -> Vec<String> {
    let t = |n: &str| a.text(n).unwrap_or_default().to_owned();
    let join = |parts: &[&str]| parts.iter().map(|p| t(p)).collect::<Vec<_>>().join(" ");
    match claim {
        "name" => {
            let mut v: Vec<String> = full_name(a).into_iter().collect();
            if a.contains("given_name") && a.contains("family_name") {
                v.push(join(&["given_name", "family_name"]));
            }
            v
        }
        "town" => a.text("city").map(str::to_owned).into_iter().collect(),
        "address" => {
            if !a.contains("street_address") && !a.contains("houseno_or_housename") {
                return vec![];
            }
            vec![
                join(&[
                    "houseno_or_housename",
                    "street_address",
                    "city",
                    "postal_code",
                    "country",
                ]),
                join(&[
                    "houseno_or_housename",
                    "street_address",
                    "postal_code",
                    "city",
                    "country",
                ]),
                join(&["houseno_or_housename", "postal_code", "city", "country"]),
            ]
        }
        other => a.text(other).map(str::to_owned).into_iter().collect(),
    }
}

/// Compares every claim of the request with the subscriber's attributes.
pub fn answer(req: &KycRequest, a: &Attributes) -> Map<String, Value> {
    let mut out = Map::new();
    for k in &req.0 {
        let matched = candidates(k.claim, a).iter().any(|c| {
            let mine = normalise(c);
            !mine.is_empty()
                && if k.hashed {
                    hashed(c) == k.value
                } else {
                    mine == k.value
                }
        });
        out.insert(
            k.answer_key(),
            json!(if matched { "true" } else { "false" }),
        );
    }
    out
}

/// The attributes a KYC match reads.
pub const KYC_ATTRIBUTES: &[&str] = &[
    "name",
    "given_name",
    "middle_name",
    "family_name",
    "houseno_or_housename",
    "street_address",
    "city",
    "postal_code",
    "country",
    "birthdate",
];

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn subscriber() -> Attributes {
        Attributes::from_json(&json!({
            "given_name": "Henry", "middle_name": "Dorsett", "family_name": "Case",
            "houseno_or_housename": "1198", "postal_code": "40701", "city": "Chiba City",
            "country": "Japan", "street_address": "Ninsei Street", "birthdate": "1990-11-04",
        }))
        .unwrap()
    }

    fn request(doc: Value) -> ClaimsRequest {
        ClaimsRequest::from_member(Some(&doc))
    }

    #[test]
    fn the_php_sdk_sample_matches() {
        let r = check_request(
            &request(json!({
                "name": {"value": "henrydorsettcase"},
                "address": {"value": "119840701chibacityjapan"},
            })),
            true,
            false,
        )
        .unwrap()
        .unwrap();
        let a = answer(&r, &subscriber());
        assert_eq!(a["name_match"], "true");
        assert_eq!(a["address_match"], "true");
    }

    #[test]
    fn mismatch_and_unknown_answer_false() {
        let r = check_request(
            &request(json!({
                "given_name": {"value": "Henry"}, "family_name": {"value": "Cage"},
                "houseno_or_housename": {"value": "1198"}, "postal_code": {"value": "40701"},
                "town": {"value": "Chiba-City"}, "country": {"value": "JAPAN"},
                "birthdate": {"value": "1990-11-05"},
            })),
            true,
            false,
        )
        .unwrap()
        .unwrap();
        let a = answer(&r, &subscriber());
        assert_eq!(a["given_name_match"], "true");
        assert_eq!(a["family_name_match"], "false");
        assert_eq!(a["town_match"], "true", "normalised: case and dashes");
        assert_eq!(a["country_match"], "true");
        assert_eq!(a["birthdate_match"], "false");
        let empty = answer(&r, &Attributes::default());
        assert!(empty.values().all(|v| v == "false"));
    }

    #[test]
    fn hashed_values_compare_hashes_of_normalised_text() {
        assert_eq!(hashed("Henry Dorsett-Case"), hashed("henrydorsettcase"));
        let r = check_request(
            &request(json!({
                "name_hashed": {"value": hashed("HENRY  dorsett case")},
                "address_hashed": {"value": hashed("1198 Ninsei Street, Chiba City 40701, Japan").to_uppercase()},
            })),
            false,
            true,
        )
        .unwrap()
        .unwrap();
        let a = answer(&r, &subscriber());
        assert_eq!(a["name_hashed_match"], "true");
        assert_eq!(a["address_hashed_match"], "true");
        let wrong = check_request(
            &request(json!({
                "name_hashed": {"value": hashed("Molly")},
                "address_hashed": {"value": hashed("nowhere")},
            })),
            false,
            true,
        )
        .unwrap()
        .unwrap();
        assert!(answer(&wrong, &subscriber()).values().all(|v| v == "false"));
    }

    #[test]
    fn required_combinations() {
        for doc in [
            json!({"name": {"value": "x"}}),
            json!({"given_name": {"value": "x"}, "address": {"value": "y"}}),
            json!({"name": {"value": "x"}, "postal_code": {"value": "1"}, "town": {"value": "t"}, "country": {"value": "c"}}),
            json!({"birthdate": {"value": "1990-01-01"}}),
        ] {
            assert_eq!(
                check_request(&request(doc.clone()), true, true),
                Err(KycError::Incomplete),
                "{doc}"
            );
        }
        assert_eq!(
            check_request(
                &request(json!({"name": null, "address": {"value": "y"}})),
                true,
                true
            ),
            Err(KycError::BadValue("name".into()))
        );
        assert_eq!(
            check_request(
                &request(json!({"name_hashed": {"value": "abc"}, "address": {"value": "y"}})),
                true,
                true
            ),
            Err(KycError::BadValue("name_hashed".into()))
        );
        // Plain claims under a hashed-only grant are not KYC claims of this token.
        assert_eq!(
            check_request(&request(json!({"name": {"value": "x"}})), false, true),
            Ok(None)
        );
        assert_eq!(
            check_request(&request(json!({"email": null})), true, true),
            Ok(None)
        );
    }
}
