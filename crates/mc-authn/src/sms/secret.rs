//! The secrets an SMS carries: a numeric one-time code and a one-time link token. Both are
//! stored only as SHA-256 hashes; the code's hash is bound to its session, so equal codes
//! of two logins hash apart.
//!
//! A short code hashed with SHA-256 could be recovered from a stolen database by trying
//! every code; that is accepted because a code lives for the login's few minutes, takes a
//! handful of tries before it locks, and is worthless once its login ended. The link token
//! has 256 random bits.

use mc_core::hash::sha256_hex;

use crate::util::random;

/// A uniformly random code of `digits` decimal digits (4 to 9), or `None` when the
/// system RNG fails.
pub fn new_code(digits: u32) -> Option<String> {
    let digits = digits.clamp(4, 9);
    let modulus = 10u32.pow(digits);
    // Rejection sampling: values in the top partial range would bias low codes.
    let zone = u32::MAX - u32::MAX % modulus;
    loop {
        let v = u32::from_be_bytes(random::<4>()?);
        if v < zone {
            return Some(format!("{:0width$}", v % modulus, width = digits as usize));
        }
    }
}

/// The stored form of a code for one session.
pub fn code_hash(session_id: &str, code: &str) -> String {
    sha256_hex(&format!("sms-otp\0{session_id}\0{code}"))
}

/// A fresh link token (64 hex characters) or `None` when the system RNG fails.
pub fn new_link_token() -> Option<String> {
    Some(hex::encode(random::<32>()?))
}

/// The stored form of a link token.
pub fn link_hash(token: &str) -> String {
    sha256_hex(&format!("sms-link\0{token}"))
}

/// Whether `token` has the shape of a link token (a cheap filter before any lookup).
pub fn is_link_token(token: &str) -> bool {
    token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn codes_have_the_asked_digits() {
        for d in [4, 6, 8] {
            let c = new_code(d).unwrap();
            assert_eq!(c.len(), d as usize);
            assert!(c.bytes().all(|b| b.is_ascii_digit()));
        }
    }

    #[test]
    fn hashes_are_bound_and_distinct() {
        assert_ne!(code_hash("s1", "123456"), code_hash("s2", "123456"));
        assert_eq!(code_hash("s1", "123456"), code_hash("s1", "123456"));
        let t = new_link_token().unwrap();
        assert!(is_link_token(&t));
        assert_ne!(link_hash(&t), t);
        assert!(!is_link_token("../etc"));
    }
}
