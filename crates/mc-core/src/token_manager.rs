//! Token Manager request rules: introspection (RFC 7662 §2.1) and revocation (RFC 7009
//! §2.1) requests, and the shape of an introspection answer (RFC 7662 §2.2).

use serde::Serialize;

use crate::error::McError;
use crate::params::RawParams;

/// Which kind of token the client says it sent (`token_type_hint`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenTypeHint {
    AccessToken,
    RefreshToken,
}

impl TokenTypeHint {
    /// The registered hint values (RFC 7009 §4.1.2); anything else is unsupported.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "access_token" => Some(TokenTypeHint::AccessToken),
            "refresh_token" => Some(TokenTypeHint::RefreshToken),
            _ => None,
        }
    }
}

/// An introspection or revocation request: the token and the hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenQuery {
    pub token: String,
    /// Where to look first; the other kind is searched too (RFC 7009 §2.1).
    pub hint: Option<TokenTypeHint>,
}

impl TokenQuery {
    /// True when refresh tokens are to be searched first.
    pub fn refresh_first(&self) -> bool {
        self.hint == Some(TokenTypeHint::RefreshToken)
    }
}

/// Longest token looked up (ours are 43 characters); longer ones cannot be ours.
pub const MAX_TOKEN_BYTES: usize = 512;

/// `token` required, once. An unknown `token_type_hint` is `unsupported_token_type`
/// (RFC 7009 §2.2.1; the GSMA SDKs expect it for revocation, and introspection answers
/// the same so a client learns of its mistake).
pub fn check_token_query(p: &RawParams) -> Result<TokenQuery, McError> {
    if p.is_duplicated("token") || p.is_duplicated("token_type_hint") {
        return Err(McError::InvalidTokenRequest("duplicate parameters"));
    }
    let token = p
        .get("token")
        .filter(|t| !t.is_empty())
        .ok_or(McError::InvalidTokenRequest(
            "MANDATORY parameter token is missing",
        ))?;
    let hint = match p.get("token_type_hint") {
        None | Some("") => None,
        Some(h) => Some(TokenTypeHint::parse(h).ok_or(McError::UnsupportedTokenType)?),
    };
    Ok(TokenQuery {
        token: token.to_owned(),
        hint,
    })
}

/// An introspection answer. Inactive answers carry `active: false` and nothing else
/// (RFC 7662 §2.2: nothing about why).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Introspection {
    pub active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// `Bearer` for access tokens, `refresh_token` for refresh tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// The PCR, for tokens about a subscriber.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amr: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
}

impl Introspection {
    /// `{"active": false}`.
    pub fn inactive() -> Self {
        Introspection::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(q: &str) -> RawParams {
        RawParams::from_urlencoded(q.as_bytes()).unwrap()
    }

    #[test]
    fn token_query_rules() {
        assert_eq!(
            check_token_query(&body("token=t")),
            Ok(TokenQuery {
                token: "t".into(),
                hint: None
            })
        );
        let q = check_token_query(&body("token=t&token_type_hint=refresh_token")).unwrap();
        assert!(q.refresh_first());
        assert!(
            !check_token_query(&body("token=t&token_type_hint=access_token"))
                .unwrap()
                .refresh_first()
        );
        assert_eq!(
            check_token_query(&body("token=t&token_type_hint=id_token")),
            Err(McError::UnsupportedTokenType)
        );
        assert!(check_token_query(&body("")).is_err());
        assert!(check_token_query(&body("token=")).is_err());
        assert!(check_token_query(&body("token=a&token=b")).is_err());
    }

    #[test]
    fn inactive_is_only_active_false() {
        assert_eq!(
            serde_json::to_value(Introspection::inactive()).unwrap(),
            serde_json::json!({"active": false})
        );
    }
}
