//! Scopes and the Mobile Connect products they name (digest §4.2).

use std::collections::BTreeSet;
use std::fmt;

/// Scope values this gateway understands. Anything else is `invalid_scope`.
pub const KNOWN_SCOPES: &[&str] = &[
    "openid",
    "mc_authn",
    "mc_authz",
    "mc_identity_phonenumber",
    "mc_identity_signup",
    "mc_identity_signupplus",
    "mc_identity_nationalid",
    "mc_phonenumber",
    "mc_signup",
    "mc_nationalid",
    "mc_kyc_plain",
    "mc_kyc_hashed",
    "mc_atp",
    "profile",
    "email",
    "address",
    "phone",
    "offline_access",
];

/// Scopes that release the subscriber's phone number from userinfo/premiuminfo.
pub const PHONE_NUMBER_SCOPES: &[&str] = &[
    "phone",
    "mc_identity_phonenumber",
    "mc_phonenumber",
    "mc_identity_signup",
    "mc_identity_signupplus",
    "mc_signup",
    "mc_identity_nationalid",
    "mc_nationalid",
];

/// A validated, de-duplicated, ordered set of scope values.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Scope(BTreeSet<String>);

impl Scope {
    /// Splits on spaces; refuses empty values and unknown names. Duplicates collapse.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let mut set = BTreeSet::new();
        for v in raw.split(' ').filter(|v| !v.is_empty()) {
            if !KNOWN_SCOPES.contains(&v) {
                return Err(v.to_owned());
            }
            set.insert(v.to_owned());
        }
        Ok(Scope(set))
    }

    /// Builds a scope from known-good values (registration data, tests).
    pub fn from_values<'a>(values: impl IntoIterator<Item = &'a str>) -> Self {
        Scope(values.into_iter().map(str::to_owned).collect())
    }

    pub fn contains(&self, v: &str) -> bool {
        self.0.contains(v)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    /// True when every value of `self` is in `allowed`.
    pub fn is_subset_of(&self, allowed: &Scope) -> bool {
        self.0.is_subset(&allowed.0)
    }

    /// The authorization ("authz") product: a transaction the user approves with text shown
    /// on the phone.
    pub fn is_authz(&self) -> bool {
        self.contains("mc_authz")
    }

    /// Any Mobile Connect product scope (not plain OIDC), which makes `version` mandatory.
    pub fn has_mc_product(&self) -> bool {
        self.iter().any(|s| s.starts_with("mc_"))
    }

    /// Whether the granted scope releases the phone number.
    pub fn releases_phone_number(&self) -> bool {
        self.iter().any(|s| PHONE_NUMBER_SCOPES.contains(&s))
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for v in &self.0 {
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(v)?;
            first = false;
        }
        Ok(())
    }
}

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scope({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_deduplicates() {
        let s = Scope::parse("openid  mc_authn openid").unwrap();
        assert_eq!(s.to_string(), "mc_authn openid");
        assert!(s.has_mc_product());
        assert!(!s.releases_phone_number());
    }

    #[test]
    fn unknown_value_is_reported() {
        assert_eq!(Scope::parse("openid mc_bogus"), Err("mc_bogus".to_owned()));
    }

    #[test]
    fn phone_scopes_release_the_number() {
        assert!(
            Scope::parse("openid mc_identity_phonenumber")
                .unwrap()
                .releases_phone_number()
        );
        assert!(
            Scope::parse("openid phone")
                .unwrap()
                .releases_phone_number()
        );
    }
}
