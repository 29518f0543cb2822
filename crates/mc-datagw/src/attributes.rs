//! The attribute vocabulary: every subscriber attribute the Data Gateway knows, with the
//! rule its value must follow. Operators provision these names (admin API, CLI) and HTTP
//! back-ends answer with them; claims are derived from them ([`crate::claims`]).
//!
//! Names follow the Mobile Connect flat attribute names of the premiuminfo fixtures (digest
//! §8.2: `street_address`, `city`, `state`, …) and OIDC Core §5.1 where they agree; the
//! provisioning facts of account-takeover protection (digest §8.4) sit in the same
//! document.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// What a value must look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Printable text of at most this many bytes.
    Text(usize),
    /// `YYYY-MM-DD`.
    Date,
    /// Text with one `@`, at most 254 bytes.
    Email,
    Bool,
    /// Unix seconds; given as a number or an RFC 3339 string, stored as seconds.
    Timestamp,
    /// One of the listed words.
    OneOf(&'static [&'static str]),
}

/// Which part of the gateway uses an attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// Released as an identity claim (with consent) or compared by a KYC match.
    Identity,
    /// Provisioning facts: answered by ATP, never released as a claim.
    Provisioning,
}

/// One attribute of the vocabulary.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    pub name: &'static str,
    pub kind: Kind,
    pub group: Group,
}

const fn identity(name: &'static str, kind: Kind) -> Spec {
    Spec {
        name,
        kind,
        group: Group::Identity,
    }
}

const fn provisioning(name: &'static str, kind: Kind) -> Spec {
    Spec {
        name,
        kind,
        group: Group::Provisioning,
    }
}

/// Account states (CAMARA MC ATP `accountState`).
pub const ACCOUNT_STATES: &[&str] = &["active", "inactive"];

/// Every attribute, in documentation order.
pub const VOCABULARY: &[Spec] = &[
    identity("name", Kind::Text(256)),
    identity("given_name", Kind::Text(128)),
    identity("family_name", Kind::Text(128)),
    identity("middle_name", Kind::Text(128)),
    identity("nickname", Kind::Text(128)),
    identity("title", Kind::Text(32)),
    identity("gender", Kind::Text(32)),
    identity("birthdate", Kind::Date),
    identity("locale", Kind::Text(35)),
    identity("zoneinfo", Kind::Text(64)),
    identity("email", Kind::Email),
    identity("email_verified", Kind::Bool),
    identity("phone_number_alternate", Kind::Text(32)),
    identity("houseno_or_housename", Kind::Text(128)),
    identity("street_address", Kind::Text(256)),
    identity("city", Kind::Text(128)),
    identity("state", Kind::Text(128)),
    identity("postal_code", Kind::Text(32)),
    identity("country", Kind::Text(64)),
    identity("national_identifier", Kind::Text(64)),
    identity("national_identifier_authority", Kind::Text(128)),
    provisioning("sim_changed_at", Kind::Timestamp),
    provisioning("device_changed_at", Kind::Timestamp),
    provisioning("lost_stolen", Kind::Bool),
    provisioning("account_state", Kind::OneOf(ACCOUNT_STATES)),
    provisioning("call_divert_active", Kind::Bool),
    provisioning(
        "billing_segment",
        Kind::OneOf(&["prepaid", "postpaid", "business"]),
    ),
];

/// The spec of an attribute name.
pub fn spec(name: &str) -> Option<&'static Spec> {
    VOCABULARY.iter().find(|s| s.name == name)
}

/// Why an attribute document was refused; the text names the attribute.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttributeError {
    #[error("attributes: must be a JSON object")]
    NotAnObject,
    #[error("attributes.{0}: unknown attribute")]
    Unknown(String),
    #[error("attributes.{name}: {why}")]
    Invalid { name: String, why: &'static str },
}

/// A validated set of attributes (name → value, values normalised: timestamps as seconds).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributes(BTreeMap<String, Value>);

impl Attributes {
    /// Strict validation (provisioning): an unknown name or a bad value is an error.
    pub fn from_json(v: &Value) -> Result<Self, AttributeError> {
        let obj = v.as_object().ok_or(AttributeError::NotAnObject)?;
        let mut out = BTreeMap::new();
        for (name, value) in obj {
            let spec = spec(name).ok_or_else(|| AttributeError::Unknown(name.clone()))?;
            let value = normalise(spec.kind, value).map_err(|why| AttributeError::Invalid {
                name: name.clone(),
                why,
            })?;
            out.insert(name.clone(), value);
        }
        Ok(Attributes(out))
    }

    /// Lenient reading (a back-end's answer, a stored document): what is valid is kept,
    /// the names of what is not are returned (for a log line; never the values).
    pub fn from_json_lenient(v: &Value) -> (Self, Vec<String>) {
        let mut out = BTreeMap::new();
        let mut dropped = Vec::new();
        if let Some(obj) = v.as_object() {
            for (name, value) in obj {
                match spec(name).map(|s| normalise(s.kind, value)) {
                    Some(Ok(v)) => {
                        out.insert(name.clone(), v);
                    }
                    // `null` is "not known" in a back-end's answer, not a mistake.
                    _ if value.is_null() => {}
                    _ => dropped.push(name.chars().take(64).collect()),
                }
            }
        }
        (Attributes(out), dropped)
    }

    /// Applies a JSON merge patch (RFC 7396): `null` removes an attribute, anything else
    /// is validated strictly and replaces it.
    pub fn patched(&self, patch: &Value) -> Result<Self, AttributeError> {
        let obj = patch.as_object().ok_or(AttributeError::NotAnObject)?;
        let mut out = self.0.clone();
        for (name, value) in obj {
            let spec = spec(name).ok_or_else(|| AttributeError::Unknown(name.clone()))?;
            if value.is_null() {
                out.remove(name);
            } else {
                let v = normalise(spec.kind, value).map_err(|why| AttributeError::Invalid {
                    name: name.clone(),
                    why,
                })?;
                out.insert(name.clone(), v);
            }
        }
        Ok(Attributes(out))
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name)
    }

    /// A text attribute (also dates and words).
    pub fn text(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(Value::as_str)
    }

    pub fn flag(&self, name: &str) -> Option<bool> {
        self.0.get(name).and_then(Value::as_bool)
    }

    pub fn timestamp(&self, name: &str) -> Option<i64> {
        self.0.get(name).and_then(Value::as_i64)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// Sets `name` unless it is there already (merging sources by precedence).
    pub fn insert_if_absent(&mut self, name: &str, value: Value) {
        self.0.entry(name.to_owned()).or_insert(value);
    }

    /// The document as stored.
    pub fn to_map(&self) -> Map<String, Value> {
        self.0.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

/// Checks one value against its kind; returns the stored form.
fn normalise(kind: Kind, v: &Value) -> Result<Value, &'static str> {
    match kind {
        Kind::Text(max) => {
            let s = v.as_str().ok_or("must be a string")?;
            check_text(s, max)?;
            Ok(Value::String(s.trim().to_owned()))
        }
        Kind::Email => {
            let s = v.as_str().ok_or("must be a string")?.trim();
            check_text(s, 254)?;
            let ok = s.split('@').count() == 2
                && s.split('@').all(|p| !p.is_empty())
                && !s.contains(char::is_whitespace);
            if !ok {
                return Err("must be an e-mail address");
            }
            Ok(Value::String(s.to_owned()))
        }
        Kind::Date => {
            let s = v.as_str().ok_or("must be a date YYYY-MM-DD")?;
            parse_date(s).ok_or("must be a date YYYY-MM-DD")?;
            Ok(Value::String(s.to_owned()))
        }
        Kind::Bool => v.as_bool().map(Value::Bool).ok_or("must be true or false"),
        Kind::Timestamp => {
            let secs = match v {
                Value::Number(n) => n.as_i64().filter(|s| *s >= 0),
                Value::String(s) => {
                    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                        .ok()
                        .map(|t| t.unix_timestamp())
                        .filter(|s| *s >= 0)
                }
                _ => None,
            };
            secs.map(Value::from)
                .ok_or("must be Unix seconds or an RFC 3339 time")
        }
        Kind::OneOf(words) => {
            let s = v.as_str().ok_or("must be a string")?;
            if words.contains(&s) {
                Ok(Value::String(s.to_owned()))
            } else {
                Err("not one of the allowed values")
            }
        }
    }
}

fn check_text(s: &str, max: usize) -> Result<(), &'static str> {
    if s.trim().is_empty() {
        return Err("must not be empty");
    }
    if s.len() > max {
        return Err("too long");
    }
    if s.chars().any(char::is_control) {
        return Err("must not contain control characters");
    }
    Ok(())
}

/// A calendar date `YYYY-MM-DD`.
pub fn parse_date(s: &str) -> Option<time::Date> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let year: i32 = s.get(0..4)?.parse().ok()?;
    let month: u8 = s.get(5..7)?.parse().ok()?;
    let day: u8 = s.get(8..10)?.parse().ok()?;
    time::Date::from_calendar_date(year, time::Month::try_from(month).ok()?, day).ok()
}

/// The UTC date of a Unix time, `YYYY-MM-DD`.
pub fn date_of(unix: i64) -> Option<String> {
    let d = time::OffsetDateTime::from_unix_timestamp(unix).ok()?.date();
    Some(format!(
        "{:04}-{:02}-{:02}",
        d.year(),
        u8::from(d.month()),
        d.day()
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    #[test]
    fn strict_validation_names_the_attribute() {
        let ok = Attributes::from_json(&json!({
            "given_name": " Ada ",
            "birthdate": "1990-11-04",
            "email": "ada@example.com",
            "lost_stolen": false,
            "sim_changed_at": "2026-11-20T10:00:00Z",
            "account_state": "active",
        }))
        .unwrap();
        assert_eq!(ok.text("given_name"), Some("Ada"));
        assert_eq!(ok.timestamp("sim_changed_at"), Some(1_795_168_800));
        assert_eq!(ok.flag("lost_stolen"), Some(false));

        for (doc, err) in [
            (json!([]), "attributes: must be a JSON object"),
            (
                json!({"shoe_size": "9"}),
                "attributes.shoe_size: unknown attribute",
            ),
            (
                json!({"birthdate": "1990-02-30"}),
                "attributes.birthdate: must be a date YYYY-MM-DD",
            ),
            (
                json!({"email": "no-at-sign"}),
                "attributes.email: must be an e-mail address",
            ),
            (
                json!({"given_name": "a\u{7}b"}),
                "attributes.given_name: must not contain control characters",
            ),
            (
                json!({"account_state": "zombie"}),
                "attributes.account_state: not one of the allowed values",
            ),
            (
                json!({"sim_changed_at": -5}),
                "attributes.sim_changed_at: must be Unix seconds or an RFC 3339 time",
            ),
            (
                json!({"lost_stolen": "yes"}),
                "attributes.lost_stolen: must be true or false",
            ),
            (
                json!({"title": "x".repeat(33)}),
                "attributes.title: too long",
            ),
        ] {
            assert_eq!(
                Attributes::from_json(&doc).unwrap_err().to_string(),
                err,
                "{doc}"
            );
        }
    }

    #[test]
    fn lenient_reading_keeps_what_is_valid() {
        let (a, dropped) = Attributes::from_json_lenient(&json!({
            "given_name": "Ada", "birthdate": "not a date", "favourite_colour": "red", "email": null
        }));
        assert_eq!(a.text("given_name"), Some("Ada"));
        assert!(!a.contains("birthdate") && !a.contains("email"));
        assert_eq!(
            dropped,
            vec!["birthdate".to_owned(), "favourite_colour".to_owned()]
        );
    }

    #[test]
    fn merge_patch_replaces_and_removes() {
        let a = Attributes::from_json(&json!({"given_name": "Ada", "city": "London"})).unwrap();
        let b = a
            .patched(&json!({"city": null, "family_name": "Lovelace"}))
            .unwrap();
        assert_eq!(b.text("given_name"), Some("Ada"));
        assert_eq!(b.text("family_name"), Some("Lovelace"));
        assert!(!b.contains("city"));
        assert!(a.patched(&json!({"bogus": 1})).is_err());
    }

    #[test]
    fn dates() {
        assert_eq!(date_of(0).as_deref(), Some("1970-01-01"));
        assert_eq!(date_of(1_594_598_400).as_deref(), Some("2020-07-13"));
        assert!(parse_date("2024-02-29").is_some());
        assert!(parse_date("2023-02-29").is_none());
        assert!(parse_date("2023-2-28").is_none());
    }
}
