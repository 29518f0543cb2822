//! Redirect safety by type: only a [`VerifiedRedirectUri`] can build a redirect, and it
//! always echoes `state` and `correlation_id`.

use url::Url;

use crate::client::ClientPolicy;
use crate::error::McError;

/// A redirect URI that exactly matches one registered for the client (RFC 9700 §4.1.3).
/// Its constructor is [`VerifiedRedirectUri::verify`]; nothing else makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedRedirectUri(String);

/// Values echoed on every redirect.
#[derive(Debug, Clone, Default)]
pub struct Echo<'a> {
    pub state: Option<&'a str>,
    pub correlation_id: Option<&'a str>,
}

impl VerifiedRedirectUri {
    /// Exact string comparison against the registration: no prefix, no normalisation.
    pub fn verify(client: &ClientPolicy, candidate: &str) -> Result<Self, McError> {
        if client.redirect_uris.iter().any(|u| u == candidate) {
            Ok(VerifiedRedirectUri(candidate.to_owned()))
        } else {
            Err(McError::UnregisteredRedirectUri)
        }
    }

    /// Re-creates one from a stored session (it was verified when the session was created).
    pub fn from_stored(uri: String) -> Self {
        VerifiedRedirectUri(uri)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `redirect_uri?code=…&state=…&correlation_id=…`
    pub fn with_code(&self, code: &str, echo: &Echo<'_>) -> String {
        self.build(&[("code", code)], echo)
    }

    /// `redirect_uri?error=…&error_description=…&state=…&correlation_id=…`
    pub fn with_error(&self, error: &McError, echo: &Echo<'_>) -> String {
        let description = error.description();
        self.build(
            &[
                ("error", error.code().as_str()),
                ("error_description", &description),
            ],
            echo,
        )
    }

    fn build(&self, pairs: &[(&str, &str)], echo: &Echo<'_>) -> String {
        // The URI parsed at registration; if it somehow no longer parses, fall back to plain
        // concatenation rather than failing the user.
        let Ok(mut url) = Url::parse(&self.0) else {
            return self.0.clone();
        };
        {
            let mut q = url.query_pairs_mut();
            for (k, v) in pairs {
                q.append_pair(k, v);
            }
            if let Some(s) = echo.state {
                q.append_pair("state", s);
            }
            if let Some(c) = echo.correlation_id {
                q.append_pair("correlation_id", c);
            }
        }
        url.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::ClientStatus;
    use crate::scope::Scope;

    fn client() -> ClientPolicy {
        ClientPolicy {
            client_id: "c".into(),
            redirect_uris: vec!["https://sp.example/cb?x=1".into()],
            allowed_scopes: Scope::from_values(["openid"]),
            short_name: "SP".into(),
            sector: "sp.example".into(),
            status: ClientStatus::Active,
            grant_types: vec!["authorization_code".into()],
            authenticator_chains: Default::default(),
        }
    }

    #[test]
    fn exact_match_only() {
        assert!(VerifiedRedirectUri::verify(&client(), "https://sp.example/cb?x=1").is_ok());
        for bad in [
            "https://sp.example/cb",
            "https://sp.example/cb?x=1&y=2",
            "https://SP.example/cb?x=1",
            "https://sp.example/cb?x=1/",
        ] {
            assert_eq!(
                VerifiedRedirectUri::verify(&client(), bad),
                Err(McError::UnregisteredRedirectUri)
            );
        }
    }

    #[test]
    fn error_redirect_echoes_state_and_correlation_id() {
        let r = VerifiedRedirectUri::verify(&client(), "https://sp.example/cb?x=1").unwrap();
        let loc = r.with_error(
            &McError::UserBusy,
            &Echo {
                state: Some("s 1"),
                correlation_id: Some("c1"),
            },
        );
        assert_eq!(
            loc,
            "https://sp.example/cb?x=1&error=access_denied&error_description=The+user+is+busy+with+another+transaction&state=s+1&correlation_id=c1"
        );
    }
}
