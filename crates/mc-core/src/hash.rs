//! The one stored-hash form of the project: lowercase hex SHA-256. Codes, tokens, client
//! secrets and enrolment codes are stored this way, and `hashed_login_hint` and the KYC
//! `_hashed` claims are sent this way.

use aws_lc_rs::digest;

/// Lowercase hex of SHA-256 over `s`'s bytes.
pub fn sha256_hex(s: &str) -> String {
    hex::encode(digest::digest(&digest::SHA256, s.as_bytes()))
}

/// Whether `h` has the stored-hash form ([`sha256_hex`]'s output): 64 lowercase hex digits.
/// A configured hash in any other form could never match.
pub fn is_sha256_hex(h: &str) -> bool {
    h.len() == 64
        && h.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stored_form_is_64_lowercase_hex_digits() {
        assert!(is_sha256_hex(&sha256_hex("abc")));
        assert!(!is_sha256_hex(&sha256_hex("abc").to_uppercase()));
        assert!(!is_sha256_hex(&sha256_hex("abc")[1..]));
        assert!(!is_sha256_hex("secret"));
    }

    #[test]
    fn is_the_lowercase_hex_of_sha256() {
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
