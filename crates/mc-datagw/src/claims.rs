//! Claims: which claims each scope (product) grants, the `claims` request parameter, and
//! the two shapes the answer takes — `/userinfo` (OIDC Core §5.1: `+` E.164 phone number,
//! a nested `address` object) and `/premiuminfo` (the Mobile Connect identity products'
//! flat attribute names, digest §8.2). The sets are written down in `docs/decisions.md`.

use std::collections::{BTreeMap, BTreeSet};

use mc_core::msisdn::Msisdn;
use mc_core::scope::Scope;
use serde_json::{Map, Value, json};

use crate::attributes::Attributes;

/// Which endpoint answers, and so which shape the claims take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `/userinfo`: OIDC names and shapes.
    UserInfo,
    /// `/premiuminfo`: Mobile Connect flat attribute names.
    PremiumInfo,
}

impl Shape {
    /// The member of the `claims` request parameter addressed to this endpoint.
    pub fn member(self) -> &'static str {
        match self {
            Shape::UserInfo => "userinfo",
            Shape::PremiumInfo => "premiuminfo",
        }
    }
}

const PROFILE: &[&str] = &[
    "name",
    "given_name",
    "family_name",
    "middle_name",
    "nickname",
    "gender",
    "birthdate",
    "locale",
    "zoneinfo",
];
const EMAIL: &[&str] = &["email", "email_verified"];
const ADDRESS: &[&str] = &["address"];
const PHONE: &[&str] = &["phone_number", "phone_number_verified"];
const PHONE_NUMBER: &[&str] = &["phone_number", "phone_number_verified"];
const SIGNUP: &[&str] = &[
    "given_name",
    "family_name",
    "middle_name",
    "title",
    "email",
    "phone_number",
    "phone_number_verified",
    "phone_number_alternate",
    "street_address",
    "city",
    "state",
    "postal_code",
    "country",
    "birthdate",
];
const SIGNUP_PLUS: &[&str] = &[
    "given_name",
    "family_name",
    "middle_name",
    "title",
    "email",
    "phone_number",
    "phone_number_verified",
    "phone_number_alternate",
    "street_address",
    "city",
    "state",
    "postal_code",
    "country",
    "birthdate",
    "name",
    "gender",
    "houseno_or_housename",
    "email_verified",
];
const NATIONAL_ID: &[&str] = &[
    "given_name",
    "family_name",
    "middle_name",
    "title",
    "email",
    "phone_number",
    "phone_number_verified",
    "phone_number_alternate",
    "street_address",
    "city",
    "state",
    "postal_code",
    "country",
    "birthdate",
    "national_identifier",
    "national_identifier_authority",
];

/// The claims a scope value grants (besides `sub`). Products without released claims
/// (`mc_authn`, `mc_authz`, the KYC match, ATP) grant none: a KYC match answers
/// `<claim>_match` values ([`crate::kyc`]), ATP its own document ([`crate::atp`]).
pub fn claims_of_scope(scope: &str) -> &'static [&'static str] {
    match scope {
        "profile" => PROFILE,
        "email" => EMAIL,
        "address" => ADDRESS,
        "phone" => PHONE,
        "mc_identity_phonenumber" | "mc_phonenumber" => PHONE_NUMBER,
        "mc_identity_signup" | "mc_signup" => SIGNUP,
        "mc_identity_signupplus" => SIGNUP_PLUS,
        "mc_identity_nationalid" | "mc_nationalid" => NATIONAL_ID,
        _ => &[],
    }
}

/// Every scope value that grants claims, for documentation and metadata.
pub const CLAIM_SCOPES: &[&str] = &[
    "profile",
    "email",
    "address",
    "phone",
    "mc_identity_phonenumber",
    "mc_phonenumber",
    "mc_identity_signup",
    "mc_signup",
    "mc_identity_signupplus",
    "mc_identity_nationalid",
    "mc_nationalid",
];

/// Every claim a scope can grant, sorted (`claims_supported`).
pub fn supported_claims() -> Vec<&'static str> {
    let set: BTreeSet<&'static str> = CLAIM_SCOPES
        .iter()
        .flat_map(|s| claims_of_scope(s).iter().copied())
        .collect();
    set.into_iter().collect()
}

/// The canonical claim named `name`, if any scope can grant it.
pub fn known_claim(name: &str) -> Option<&'static str> {
    CLAIM_SCOPES
        .iter()
        .flat_map(|s| claims_of_scope(s).iter().copied())
        .find(|c| *c == name)
}

/// One entry of a `claims` member (OIDC Core §5.5.1).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClaimRequest {
    pub essential: bool,
    pub value: Option<Value>,
    pub values: Option<Vec<Value>>,
}

impl ClaimRequest {
    /// Whether `actual` is acceptable: with `value`/`values` it must be one of them (a
    /// phone number compared without its `+`), otherwise anything is.
    pub fn accepts(&self, actual: &Value) -> bool {
        let norm = |v: &Value| match v {
            Value::String(s) => Value::String(s.trim_start_matches('+').to_owned()),
            other => other.clone(),
        };
        let actual = norm(actual);
        if let Some(v) = &self.value
            && norm(v) != actual
        {
            return false;
        }
        if let Some(vs) = &self.values
            && !vs.iter().any(|v| norm(v) == actual)
        {
            return false;
        }
        true
    }
}

/// The claims an endpoint was asked for through the `claims` request parameter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClaimsRequest(BTreeMap<String, ClaimRequest>);

impl ClaimsRequest {
    /// Reads `member` of the stored `claims` parameter (validated at the authorization
    /// endpoint; an entry that is not an object or `null` is skipped here).
    pub fn from_param(claims: Option<&str>, member: &str) -> ClaimsRequest {
        let Some(doc) = claims.and_then(|c| serde_json::from_str::<Value>(c).ok()) else {
            return ClaimsRequest::default();
        };
        Self::from_member(doc.get(member))
    }

    /// Reads one member (`{"name": null | {"essential", "value", "values"}}`).
    pub fn from_member(member: Option<&Value>) -> ClaimsRequest {
        let mut out = BTreeMap::new();
        if let Some(obj) = member.and_then(Value::as_object) {
            for (name, entry) in obj {
                let req = match entry {
                    Value::Null => ClaimRequest::default(),
                    Value::Object(o) => ClaimRequest {
                        essential: o.get("essential").and_then(Value::as_bool) == Some(true),
                        value: o.get("value").filter(|v| !v.is_null()).cloned(),
                        values: o.get("values").and_then(Value::as_array).cloned(),
                    },
                    _ => continue,
                };
                out.insert(name.clone(), req);
            }
        }
        ClaimsRequest(out)
    }

    pub fn get(&self, name: &str) -> Option<&ClaimRequest> {
        self.0.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &ClaimRequest)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The claims a token's scope grants (a scope without claim-granting values grants none).
pub fn granted_by(scope: &Scope) -> BTreeSet<&'static str> {
    scope
        .iter()
        .flat_map(|s| claims_of_scope(s).iter().copied())
        .collect()
}

/// The attribute names a set of claims needs from the sources (the phone number comes
/// from the subscriber record, `address` from its parts).
pub fn attributes_needed(claims: &BTreeSet<&'static str>) -> BTreeSet<&'static str> {
    let mut out = BTreeSet::new();
    for c in claims {
        match *c {
            "phone_number" | "phone_number_verified" => {}
            "address" => out.extend(ADDRESS_PARTS),
            "name" => out.extend(["name", "given_name", "middle_name", "family_name"]),
            other => {
                out.insert(other);
            }
        }
    }
    out
}

/// The address attributes, in the order a formatted address lists them.
const ADDRESS_PARTS: [&str; 6] = [
    "houseno_or_housename",
    "street_address",
    "city",
    "state",
    "postal_code",
    "country",
];

/// The full name: the `name` attribute, else given, middle and family names joined.
pub fn full_name(a: &Attributes) -> Option<String> {
    if let Some(n) = a.text("name") {
        return Some(n.to_owned());
    }
    let parts: Vec<&str> = ["given_name", "middle_name", "family_name"]
        .iter()
        .filter_map(|n| a.text(n))
        .collect();
    (a.contains("given_name") || a.contains("family_name")).then(|| parts.join(" "))
}

/// The value of canonical claim `claim` for a subscriber, if known.
pub fn value_of(claim: &str, msisdn: Option<&Msisdn>, a: &Attributes) -> Option<Value> {
    match claim {
        "phone_number" => msisdn.map(|m| json!(m.as_str())),
        "phone_number_verified" => msisdn.map(|_| json!(true)),
        "name" => full_name(a).map(Value::String),
        "address" => {
            let parts: Map<String, Value> = ADDRESS_PARTS
                .iter()
                .filter_map(|p| a.get(p).map(|v| ((*p).to_owned(), v.clone())))
                .collect();
            (!parts.is_empty()).then_some(Value::Object(parts))
        }
        other => a.get(other).cloned(),
    }
}

/// Renders released canonical claims in an endpoint's shape. `released` maps canonical
/// names to the values of [`value_of`].
pub fn render(shape: Shape, sub: &str, released: &BTreeMap<&'static str, Value>) -> Value {
    let mut out = Map::new();
    out.insert("sub".into(), json!(sub));
    // Address parts: one nested object for userinfo, flat names for premiuminfo.
    let mut address = Map::new();
    for (name, value) in released {
        match (*name, shape) {
            ("phone_number", Shape::UserInfo) => {
                let digits = value.as_str().unwrap_or_default();
                out.insert("phone_number".into(), json!(format!("+{digits}")));
            }
            ("address", _) => {
                if let Some(parts) = value.as_object() {
                    for (k, v) in parts {
                        address.entry(k.clone()).or_insert_with(|| v.clone());
                    }
                }
            }
            (part, Shape::UserInfo) if ADDRESS_PARTS.contains(&part) => {
                address
                    .entry(part.to_owned())
                    .or_insert_with(|| value.clone());
            }
            (other, _) => {
                out.insert(other.to_owned(), value.clone());
            }
        }
    }
    if !address.is_empty() {
        match shape {
            Shape::UserInfo => {
                out.insert("address".into(), oidc_address(&address));
            }
            Shape::PremiumInfo => {
                for (k, v) in address {
                    out.entry(k).or_insert(v);
                }
            }
        }
    }
    Value::Object(out)
}

/// OIDC Core §5.1.1: `street_address` (house number and street), `locality`, `region`,
/// `postal_code`, `country`, and `formatted` (the parts on lines).
fn oidc_address(parts: &Map<String, Value>) -> Value {
    let text = |k: &str| parts.get(k).and_then(Value::as_str);
    let street = match (text("houseno_or_housename"), text("street_address")) {
        (Some(h), Some(s)) => Some(format!("{h} {s}")),
        (Some(h), None) => Some(h.to_owned()),
        (None, s) => s.map(str::to_owned),
    };
    let mut out = Map::new();
    let mut lines = Vec::new();
    if let Some(s) = &street {
        out.insert("street_address".into(), json!(s));
        lines.push(s.clone());
    }
    let mut town_line = Vec::new();
    for (mc, oidc) in [
        ("city", "locality"),
        ("state", "region"),
        ("postal_code", "postal_code"),
    ] {
        if let Some(v) = text(mc) {
            out.insert(oidc.into(), json!(v));
            town_line.push(v.to_owned());
        }
    }
    if !town_line.is_empty() {
        lines.push(town_line.join(" "));
    }
    if let Some(c) = text("country") {
        out.insert("country".into(), json!(c));
        lines.push(c.to_owned());
    }
    out.insert("formatted".into(), json!(lines.join("\n")));
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn attrs() -> Attributes {
        Attributes::from_json(&json!({
            "given_name": "David", "middle_name": "Andrew", "family_name": "Smith",
            "houseno_or_housename": "123", "street_address": "Fake Street",
            "city": "Manchester", "state": "Greater Manchester", "postal_code": "M1 1AB",
            "country": "England", "email": "test@test.com", "title": "Mr",
        }))
        .unwrap()
    }

    #[test]
    fn v3_names_grant_the_same_claims_as_v2_names() {
        assert_eq!(
            claims_of_scope("mc_phonenumber"),
            claims_of_scope("mc_identity_phonenumber")
        );
        assert_eq!(
            claims_of_scope("mc_signup"),
            claims_of_scope("mc_identity_signup")
        );
        assert_eq!(
            claims_of_scope("mc_nationalid"),
            claims_of_scope("mc_identity_nationalid")
        );
        assert!(claims_of_scope("mc_authn").is_empty());
        assert!(claims_of_scope("mc_kyc_plain").is_empty());
        // signup-plus and national id extend sign-up.
        for c in claims_of_scope("mc_identity_signup") {
            assert!(claims_of_scope("mc_identity_signupplus").contains(c), "{c}");
            assert!(claims_of_scope("mc_identity_nationalid").contains(c), "{c}");
        }
        assert!(supported_claims().contains(&"national_identifier"));
    }

    #[test]
    fn userinfo_shape_nests_the_address_and_prefixes_the_number() {
        let a = attrs();
        let m = Msisdn::parse("447700900301").unwrap();
        let mut released = BTreeMap::new();
        for c in ["phone_number", "address", "name"] {
            released.insert(known_claim(c).unwrap(), value_of(c, Some(&m), &a).unwrap());
        }
        let v = render(Shape::UserInfo, "PCR", &released);
        assert_eq!(v["phone_number"], "+447700900301");
        assert_eq!(v["name"], "David Andrew Smith");
        assert_eq!(v["address"]["street_address"], "123 Fake Street");
        assert_eq!(v["address"]["locality"], "Manchester");
        assert_eq!(
            v["address"]["formatted"],
            "123 Fake Street\nManchester Greater Manchester M1 1AB\nEngland"
        );
        let p = render(Shape::PremiumInfo, "PCR", &released);
        assert_eq!(p["phone_number"], "447700900301");
        assert_eq!(p["city"], "Manchester");
        assert!(p.get("address").is_none());
    }

    #[test]
    fn claims_parameter_entries() {
        let r = ClaimsRequest::from_param(
            Some(
                r#"{"userinfo":{"email":null,"phone_number":{"essential":true,"value":"+447700900301"},"given_name":{"values":["Ann","Bob"]},"bad":3}}"#,
            ),
            "userinfo",
        );
        assert_eq!(
            r.names().collect::<Vec<_>>(),
            ["email", "given_name", "phone_number"]
        );
        assert!(r.get("phone_number").unwrap().essential);
        assert!(
            r.get("phone_number")
                .unwrap()
                .accepts(&json!("447700900301"))
        );
        assert!(!r.get("given_name").unwrap().accepts(&json!("Carl")));
        assert!(r.get("email").unwrap().accepts(&json!("x@y")));
        assert!(ClaimsRequest::from_param(Some("{}"), "premiuminfo").is_empty());
        assert!(ClaimsRequest::from_param(None, "userinfo").is_empty());
    }
}
