//! The one place that decides which claims may leave the gateway (seed 000: nothing is
//! shared without consent).
//!
//! A claim is releasable when
//! * a scope of the access token grants it and the subscriber consented to that scope, or
//! * the `claims` parameter asked for it individually, a scope the client is *registered*
//!   for could grant it, and the subscriber consented to `claim:<name>` (or to such a
//!   scope).
//!
//! Consent items are scope names and `claim:<name>` (the consent store's vocabulary). A
//! gateway without consent records passes [`Consent::NotTracked`]: scopes and registration
//! alone decide, as before consent existed.

use std::collections::{BTreeMap, BTreeSet};

use mc_core::scope::Scope;

use crate::claims::{ClaimsRequest, claims_of_scope, known_claim};

/// What the subscriber agreed to release to this client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Consent {
    /// No consent records are kept (scopes decide alone).
    NotTracked,
    /// The consent items given and not revoked (`mc_identity_signup`, `claim:email`, …).
    Given(BTreeSet<String>),
}

impl Consent {
    /// No consent at all (a consent store without a record for the pair).
    pub fn none() -> Consent {
        Consent::Given(BTreeSet::new())
    }

    pub fn covers(&self, item: &str) -> bool {
        match self {
            Consent::NotTracked => true,
            Consent::Given(items) => items.contains(item),
        }
    }
}

/// Why a claim may be released (kept for the audit log line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Basis {
    /// Granted by this scope of the token.
    Scope(&'static str),
    /// Asked for through the `claims` parameter.
    ClaimsParameter,
}

/// The decision's inputs.
#[derive(Debug, Clone, Copy)]
pub struct ReleaseInput<'a> {
    /// The access token's scope.
    pub granted: &'a Scope,
    /// The scopes the client is registered for.
    pub registered: &'a Scope,
    /// The `claims` parameter member addressed to this endpoint.
    pub requested: &'a ClaimsRequest,
    pub consent: &'a Consent,
}

/// Decides which canonical claims may be released, each with its basis.
pub fn releasable(i: ReleaseInput<'_>) -> BTreeMap<&'static str, Basis> {
    let mut out = BTreeMap::new();
    for scope in i.granted.iter() {
        let claims = claims_of_scope(scope);
        if claims.is_empty() || !i.consent.covers(scope) {
            continue;
        }
        let scope: &'static str = claims_scope_name(scope);
        for c in claims {
            out.entry(*c).or_insert(Basis::Scope(scope));
        }
    }
    for name in i.requested.names() {
        let Some(claim) = known_claim(name) else {
            continue;
        };
        if out.contains_key(claim) {
            continue;
        }
        let coverable: Vec<&str> = i
            .registered
            .iter()
            .filter(|r| claims_of_scope(r).contains(&claim))
            .collect();
        if coverable.is_empty() {
            continue;
        }
        let consented = i.consent.covers(&format!("claim:{claim}"))
            || coverable.iter().any(|r| i.consent.covers(r));
        if consented {
            out.insert(claim, Basis::ClaimsParameter);
        }
    }
    out
}

/// Whether consent can change what [`releasable`] decides: only a claim-granting scope of
/// the token or a claim the `claims` parameter names asks for more than `sub`. When neither
/// does, a caller need not read the subscriber's consent at all.
pub fn consent_decides(granted: &Scope, requested: &ClaimsRequest) -> bool {
    granted.iter().any(|s| !claims_of_scope(s).is_empty()) || requested.names().next().is_some()
}

/// The static name of a claim-granting scope (so a [`Basis`] can outlive the token).
fn claims_scope_name(scope: &str) -> &'static str {
    crate::claims::CLAIM_SCOPES
        .iter()
        .copied()
        .find(|s| *s == scope)
        .unwrap_or("scope")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(s: &str) -> Scope {
        Scope::from_values(s.split(' '))
    }

    #[test]
    fn scopes_grant_their_claims() {
        let r = releasable(ReleaseInput {
            granted: &scope("openid mc_identity_phonenumber"),
            registered: &scope("openid mc_identity_phonenumber email"),
            requested: &ClaimsRequest::default(),
            consent: &Consent::NotTracked,
        });
        assert_eq!(
            r.keys().copied().collect::<Vec<_>>(),
            ["phone_number", "phone_number_verified"]
        );
    }

    #[test]
    fn the_claims_parameter_adds_only_what_registration_allows() {
        let requested = ClaimsRequest::from_param(
            Some(r#"{"userinfo":{"email":null,"national_identifier":null,"bogus":null}}"#),
            "userinfo",
        );
        let r = releasable(ReleaseInput {
            granted: &scope("openid mc_authn"),
            registered: &scope("openid mc_authn email"),
            requested: &requested,
            consent: &Consent::NotTracked,
        });
        assert_eq!(r.get("email"), Some(&Basis::ClaimsParameter));
        assert!(
            !r.contains_key("national_identifier"),
            "not registered for it"
        );
        assert_eq!(r.len(), 1);
    }

    #[test]
    fn consent_decides_only_what_a_scope_or_the_claims_parameter_asks_for() {
        let nothing = ClaimsRequest::default();
        assert!(!consent_decides(&scope("openid mc_authn"), &nothing));
        assert!(!consent_decides(
            &scope("openid mc_authn offline_access"),
            &nothing
        ));
        assert!(consent_decides(&scope("openid mc_authn email"), &nothing));
        assert!(consent_decides(&scope("openid mc_phonenumber"), &nothing));
        let one_claim =
            ClaimsRequest::from_param(Some(r#"{"userinfo":{"email":null}}"#), "userinfo");
        assert!(consent_decides(&scope("openid mc_authn"), &one_claim));
        // Whatever the consent, nothing but `sub` is released when it does not decide.
        let all = Consent::Given(["email".to_owned(), "claim:email".to_owned()].into());
        let input = ReleaseInput {
            granted: &scope("openid mc_authn"),
            registered: &scope("openid mc_authn email"),
            requested: &nothing,
            consent: &all,
        };
        assert!(releasable(input).is_empty());
    }

    #[test]
    fn consent_limits_the_release() {
        let requested =
            ClaimsRequest::from_param(Some(r#"{"userinfo":{"email":null}}"#), "userinfo");
        let input = |consent| {
            releasable(ReleaseInput {
                granted: &scope("openid mc_identity_signup phone"),
                registered: &scope("openid mc_identity_signup phone email"),
                requested: &requested,
                consent,
            })
        };
        let none = Consent::none();
        assert!(input(&none).is_empty());
        let only_phone = Consent::Given(["phone".to_owned()].into());
        let r = input(&only_phone);
        assert!(r.contains_key("phone_number") && !r.contains_key("given_name"));
        assert!(!r.contains_key("email"));
        let with_claim = Consent::Given(["phone".to_owned(), "claim:email".to_owned()].into());
        assert!(input(&with_claim).contains_key("email"));
    }
}
