//! PKCE (RFC 7636) with S256 only.

use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::McError;

/// A `code_challenge` checked for shape (RFC 7636 §4.2: 43 base64url characters for S256).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeChallenge(String);

impl CodeChallenge {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn from_stored(s: String) -> Self {
        CodeChallenge(s)
    }
}

/// Proof that a `code_verifier` matched the challenge bound to a code; token issuance for a
/// PKCE-bound code requires it.
#[derive(Debug)]
pub struct PkceVerified(());

/// `code_challenge` + `code_challenge_method`: only `S256` (RFC 9700 §2.1.1 forbids relying
/// on `plain`); a method without a challenge is an error too.
pub fn check_code_challenge(
    challenge: Option<&str>,
    method: Option<&str>,
) -> Result<Option<CodeChallenge>, McError> {
    match (challenge, method) {
        (None, None) => Ok(None),
        (Some(c), Some("S256")) if is_s256_shaped(c) => Ok(Some(CodeChallenge(c.to_owned()))),
        // OAuth says a missing method means `plain`, which we refuse.
        _ => Err(McError::InvalidCodeChallenge),
    }
}

fn is_s256_shaped(c: &str) -> bool {
    c.len() == 43
        && c.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// RFC 7636 §4.6: BASE64URL(SHA256(verifier)) == challenge. Verifier shape per §4.1.
pub fn verify_code_verifier(
    challenge: &CodeChallenge,
    verifier: Option<&str>,
) -> Result<PkceVerified, McError> {
    let verifier = verifier.ok_or(McError::InvalidGrant("code_verifier is missing"))?;
    let shaped = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    if !shaped {
        return Err(McError::InvalidGrant("code_verifier is invalid"));
    }
    let computed = URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, verifier.as_bytes()));
    if aws_lc_rs::constant_time::verify_slices_are_equal(
        computed.as_bytes(),
        challenge.0.as_bytes(),
    )
    .is_ok()
    {
        Ok(PkceVerified(()))
    } else {
        Err(McError::InvalidGrant(
            "code_verifier does not match the code_challenge",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7636 Appendix B.
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn rfc_7636_example_verifies() {
        let c = check_code_challenge(Some(CHALLENGE), Some("S256"))
            .unwrap()
            .unwrap();
        assert!(verify_code_verifier(&c, Some(VERIFIER)).is_ok());
    }

    #[test]
    fn wrong_or_missing_verifier_fails() {
        let c = CodeChallenge(CHALLENGE.to_owned());
        assert!(verify_code_verifier(&c, None).is_err());
        assert!(verify_code_verifier(&c, Some(&"a".repeat(43))).is_err());
        assert!(verify_code_verifier(&c, Some("short")).is_err());
    }

    #[test]
    fn plain_and_half_parameters_are_refused() {
        assert_eq!(check_code_challenge(None, None), Ok(None));
        assert!(check_code_challenge(Some(CHALLENGE), None).is_err());
        assert!(check_code_challenge(Some(CHALLENGE), Some("plain")).is_err());
        assert!(check_code_challenge(None, Some("S256")).is_err());
        assert!(check_code_challenge(Some("short"), Some("S256")).is_err());
    }
}
