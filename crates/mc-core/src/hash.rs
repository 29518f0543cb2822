//! The one stored-hash form of the project: lowercase hex SHA-256. Codes, tokens, client
//! secrets and enrolment codes are stored this way, and `hashed_login_hint` and the KYC
//! `_hashed` claims are sent this way.

use aws_lc_rs::digest;

/// Lowercase hex of SHA-256 over `s`'s bytes.
pub fn sha256_hex(s: &str) -> String {
    hex::encode(digest::digest(&digest::SHA256, s.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_the_lowercase_hex_of_sha256() {
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
