//! Version selection (digest §1.2), after the GSMA Java SDK's
//! `VersionDetection.getCurrentVersion`.

use mc_core::version::McVersion;

use crate::error::Error;

/// Scopes that the `mc_di_v3.0` profile knows (Java `VersionDetection`).
fn is_v3_scope(s: &str) -> bool {
    matches!(
        s,
        "mc_authn" | "mc_authz" | "mc_phonenumber" | "mc_nationalid" | "mc_signup"
    ) || s.starts_with("mc_kyc_")
        || is_indian_scope(s)
}

/// Scopes introduced by Mobile Connect 1.2/2.0 (products and identity scopes).
fn is_v2_scope(s: &str) -> bool {
    matches!(s, "mc_authn" | "mc_authz") || s.starts_with("mc_identity_")
}

fn is_indian_scope(s: &str) -> bool {
    s.starts_with("mc_india_") || s.starts_with("mc_mnv_") || s.starts_with("mc_attr_vm_")
}

/// The versions an operator supports: its metadata `mc_version` list, or only `mc_v1.1`
/// when the list (or the metadata) is absent. Unknown strings are ignored.
pub fn supported_versions(mc_version: Option<&[String]>) -> Vec<McVersion> {
    match mc_version {
        Some(list) => list.iter().filter_map(|v| McVersion::parse(v)).collect(),
        None => vec![McVersion::V1_1],
    }
}

/// The `version` to send for a device-initiated request.
///
/// An explicitly configured device-initiated version is sent as is (the Java SDK only
/// warns when the operator does not list it). Otherwise, by scope: `mc_di_v3.0` when
/// supported and a v3 scope is asked; else `mc_di_r2_v2.3` when supported and a 2.0 or KYC
/// scope is asked; else `mc_v2.0` when supported and a 2.0 scope is asked; else `mc_v1.1` for
/// plain `openid` (or Indian products); else `mc_v1.2` when it is all the operator has.
///
/// ```
/// use mc_client::version::select_version;
/// use mc_core::version::McVersion;
/// let supported = [McVersion::V1_1, McVersion::V2_0, McVersion::DiR2V2_3];
/// assert_eq!(select_version(None, "openid mc_authn", &supported).unwrap(), McVersion::DiR2V2_3);
/// assert_eq!(select_version(None, "openid", &supported).unwrap(), McVersion::V1_1);
/// ```
pub fn select_version(
    configured: Option<McVersion>,
    scope: &str,
    supported: &[McVersion],
) -> Result<McVersion, Error> {
    if let Some(v) = configured.filter(|v| !v.is_server_initiated()) {
        return Ok(v);
    }
    let values: Vec<&str> = scope.split(' ').filter(|s| !s.is_empty()).collect();
    let has = |v: McVersion| supported.contains(&v);
    let any = |f: fn(&str) -> bool| values.iter().any(|s| f(s));
    if has(McVersion::DiV3_0) && any(is_v3_scope) {
        return Ok(McVersion::DiV3_0);
    }
    if has(McVersion::DiR2V2_3) && (any(is_v2_scope) || any(|s| s.starts_with("mc_kyc_"))) {
        return Ok(McVersion::DiR2V2_3);
    }
    if has(McVersion::V2_0) && any(is_v2_scope) {
        return Ok(McVersion::V2_0);
    }
    let only_openid = values.iter().all(|s| *s == "openid" || is_indian_scope(s));
    if only_openid && values.contains(&"openid") {
        return Ok(McVersion::V1_1);
    }
    if supported == [McVersion::V1_2] {
        return Ok(McVersion::V1_2);
    }
    Err(Error::NoVersion {
        scope: scope.to_owned(),
        supported: supported.iter().map(|v| v.as_str().to_owned()).collect(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const ALL_DI: [McVersion; 5] = [
        McVersion::V1_1,
        McVersion::V1_2,
        McVersion::V2_0,
        McVersion::DiR2V2_3,
        McVersion::DiV3_0,
    ];

    #[test]
    fn by_scope_the_newest_fitting_version_wins() {
        let pick = |scope, sup: &[McVersion]| select_version(None, scope, sup).ok();
        assert_eq!(pick("openid mc_authn", &ALL_DI), Some(McVersion::DiV3_0));
        assert_eq!(
            pick("openid mc_identity_phonenumber", &ALL_DI),
            Some(McVersion::DiR2V2_3)
        );
        let no_v3 = &ALL_DI[..4];
        assert_eq!(pick("openid mc_authz", no_v3), Some(McVersion::DiR2V2_3));
        assert_eq!(
            pick("openid mc_kyc_plain", no_v3),
            Some(McVersion::DiR2V2_3)
        );
        assert_eq!(
            pick("openid mc_authn", &[McVersion::V1_1, McVersion::V2_0]),
            Some(McVersion::V2_0)
        );
        assert_eq!(pick("openid", &ALL_DI), Some(McVersion::V1_1));
        assert_eq!(
            pick("openid mc_authn", &[McVersion::V1_2]),
            Some(McVersion::V1_2)
        );
    }

    #[test]
    fn an_operator_without_mc_version_is_v1_1_only() {
        let sup = supported_versions(None);
        assert_eq!(sup, vec![McVersion::V1_1]);
        assert_eq!(
            select_version(None, "openid", &sup).unwrap(),
            McVersion::V1_1
        );
        assert!(matches!(
            select_version(None, "openid mc_authn", &sup),
            Err(Error::NoVersion { .. })
        ));
    }

    #[test]
    fn a_configured_version_is_sent_as_is_but_never_an_si_one() {
        assert_eq!(
            select_version(Some(McVersion::V2_0), "openid mc_authn", &[McVersion::V1_1]).unwrap(),
            McVersion::V2_0
        );
        assert_eq!(
            select_version(Some(McVersion::SiR2V1_0), "openid", &ALL_DI).unwrap(),
            McVersion::V1_1
        );
    }

    #[test]
    fn metadata_lists_are_parsed_leniently() {
        let list = vec!["mc_v1.1".to_owned(), "mc_v2_0".into(), "bogus".into()];
        assert_eq!(
            supported_versions(Some(&list)),
            vec![McVersion::V1_1, McVersion::V2_0]
        );
    }
}
