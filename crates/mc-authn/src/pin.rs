//! Subscriber PINs: policy, hashing (Argon2id) and verification, off the async workers.

use argon2::{Argon2, PasswordHasher, PasswordVerifier};

/// A PIN is 4 to 8 digits.
pub fn is_valid_pin(pin: &str) -> bool {
    (4..=8).contains(&pin.len()) && pin.bytes().all(|b| b.is_ascii_digit())
}

/// Argon2id PHC string of a PIN. PINs are low-entropy, so a slow, salted hash is the only
/// acceptable storage (DESIGN.md security defaults).
pub fn hash_pin(pin: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    aws_lc_rs::rand::fill(&mut salt).map_err(|_| "no randomness".to_owned())?;
    Argon2::default()
        .hash_password_with_salt(pin.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Checks a PIN against its PHC string. A malformed stored hash verifies nothing.
pub fn verify_pin(pin: &str, phc: &str) -> bool {
    Argon2::default()
        .verify_password(pin.as_bytes(), phc)
        .is_ok()
}

/// [`hash_pin`] on the blocking pool: Argon2 takes tens of milliseconds of CPU.
pub async fn hash_pin_blocking(pin: String) -> Result<String, String> {
    tokio::task::spawn_blocking(move || hash_pin(&pin))
        .await
        .map_err(|e| e.to_string())?
}

/// [`verify_pin`] on the blocking pool.
pub async fn verify_pin_blocking(pin: String, phc: String) -> bool {
    tokio::task::spawn_blocking(move || verify_pin(&pin, &phc))
        .await
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy() {
        assert!(is_valid_pin("1234") && is_valid_pin("12345678"));
        assert!(!is_valid_pin("123") && !is_valid_pin("123456789") && !is_valid_pin("12a4"));
    }

    #[test]
    fn hash_and_verify() {
        let h = hash_pin("1234").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_pin("1234", &h));
        assert!(!verify_pin("4321", &h));
        assert!(!verify_pin("1234", "not-a-hash"));
        assert_ne!(hash_pin("1234").unwrap(), h, "salted");
    }
}
