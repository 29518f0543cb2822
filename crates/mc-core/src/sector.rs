//! The pairwise sector a PCR belongs to (digest §7; OIDC Core §8.1).

use url::Url;

/// The sector of a client: the host of its `sector_identifier_uri` when it registered one,
/// otherwise the host shared by all its redirect URIs. `None` when the redirect URIs span
/// several hosts and no sector identifier was given (registration must then be refused,
/// as OIDC Core §8.1 requires).
pub fn derive_sector(
    sector_identifier_uri: Option<&str>,
    redirect_uris: &[String],
) -> Option<String> {
    if let Some(uri) = sector_identifier_uri {
        return host_of(uri);
    }
    let mut hosts = redirect_uris.iter().map(|u| host_of(u));
    let first = hosts.next()??;
    hosts
        .all(|h| h.as_deref() == Some(first.as_str()))
        .then_some(first)
}

fn host_of(uri: &str) -> Option<String> {
    Url::parse(uri)
        .ok()?
        .host_str()
        .map(str::to_ascii_lowercase)
}

/// A redirect URI acceptable at registration: absolute, no fragment, `https` or loopback
/// `http` (RFC 8252 §7.3; sandbox and tests run on loopback).
pub fn is_registrable_redirect_uri(uri: &str) -> bool {
    let Ok(u) = Url::parse(uri) else { return false };
    if u.fragment().is_some() || u.cannot_be_a_base() {
        return false;
    }
    match u.scheme() {
        "https" => true,
        "http" => matches!(u.host_str(), Some("localhost" | "127.0.0.1" | "[::1]")),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sector_from_identifier_or_single_host() {
        let uris = vec![
            "https://shop.example/cb".to_owned(),
            "https://shop.example/cb2".to_owned(),
        ];
        assert_eq!(derive_sector(None, &uris).as_deref(), Some("shop.example"));
        assert_eq!(
            derive_sector(Some("https://Sector.Example/ids.json"), &uris).as_deref(),
            Some("sector.example")
        );
    }

    #[test]
    fn several_hosts_without_identifier_has_no_sector() {
        let uris = vec![
            "https://a.example/cb".to_owned(),
            "https://b.example/cb".to_owned(),
        ];
        assert_eq!(derive_sector(None, &uris), None);
    }

    #[test]
    fn registrable_redirect_uris() {
        assert!(is_registrable_redirect_uri("https://shop.example/cb"));
        assert!(is_registrable_redirect_uri("http://127.0.0.1:9000/cb"));
        assert!(!is_registrable_redirect_uri("http://shop.example/cb"));
        assert!(!is_registrable_redirect_uri("https://shop.example/cb#frag"));
        assert!(!is_registrable_redirect_uri("javascript:alert(1)"));
    }
}
