//! `login_hint` forms (digest §4.3): `MSISDN:`, `ENCR_MSISDN:` and `PCR:`.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

use crate::limits::MAX_LOGIN_HINT_BYTES;
use crate::msisdn::Msisdn;

/// A parsed login hint. Decryption of `ENCR_MSISDN` and resolution of `PCR` need keys and
/// the store, so they happen in the gateway; this type only carries what was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginHint {
    Msisdn(Msisdn),
    /// The possible ciphertexts: the value can be hex, base64 or base64url and a hex string
    /// is also valid base64, so every decoding is kept and the decryptor tries each one
    /// whose length matches its key.
    EncryptedMsisdn(Vec<Vec<u8>>),
    Pcr(String),
}

impl LoginHint {
    /// Parses a hint. Prefixes match case-insensitively (the SDKs compare with
    /// `equalsIgnoreCase`); an URL-encoded colon (`MSISDN%3A…`, seen in a Beeline request
    /// object) is accepted.
    pub fn parse(raw: &str) -> Option<Self> {
        if raw.len() > MAX_LOGIN_HINT_BYTES {
            return None;
        }
        let (prefix, value) = split_prefix(raw)?;
        match prefix.to_ascii_uppercase().as_str() {
            "MSISDN" => Msisdn::parse(value).map(LoginHint::Msisdn),
            "ENCR_MSISDN" | "ENCRYPTED_MSISDN" => {
                let candidates = ciphertext_candidates(value);
                (!candidates.is_empty()).then_some(LoginHint::EncryptedMsisdn(candidates))
            }
            "PCR" => {
                let ok = (1..=128).contains(&value.len())
                    && value
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
                ok.then(|| LoginHint::Pcr(value.to_owned()))
            }
            _ => None,
        }
    }
}

fn split_prefix(raw: &str) -> Option<(&str, &str)> {
    if let Some(pos) = raw.find(':') {
        return Some((&raw[..pos], &raw[pos + 1..]));
    }
    let upper = raw.to_ascii_uppercase();
    let pos = upper.find("%3A")?;
    Some((&raw[..pos], &raw[pos + 3..]))
}

fn ciphertext_candidates(value: &str) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    let mut push = |bytes: Vec<u8>| {
        if bytes.len() >= 64 && !out.contains(&bytes) {
            out.push(bytes);
        }
    };
    if let Some(bytes) = decode_hex(value) {
        push(bytes);
    }
    for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
        if let Ok(bytes) = engine.decode(value) {
            push(bytes);
        }
    }
    out
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msisdn_with_and_without_plus_and_any_case() {
        let want = LoginHint::Msisdn(Msisdn::parse("447700900301").unwrap());
        for raw in [
            "MSISDN:447700900301",
            "MSISDN:+447700900301",
            "msisdn:447700900301",
            "MSISDN%3A447700900301",
        ] {
            assert_eq!(LoginHint::parse(raw), Some(want.clone()), "{raw}");
        }
    }

    #[test]
    fn encrypted_msisdn_in_hex_base64_and_base64url() {
        let bytes: Vec<u8> = (0..=255u8).collect();
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let b64 = STANDARD.encode(&bytes);
        let b64url = URL_SAFE_NO_PAD.encode(&bytes);
        for raw in [
            format!("ENCR_MSISDN:{hex}"),
            format!("ENCR_MSISDN:{b64}"),
            format!("ENCR_MSISDN:{b64url}"),
        ] {
            match LoginHint::parse(&raw) {
                Some(LoginHint::EncryptedMsisdn(c)) => assert!(c.contains(&bytes), "{raw}"),
                other => panic!("{raw}: {other:?}"),
            }
        }
    }

    #[test]
    fn pcr_and_rejections() {
        assert_eq!(
            LoginHint::parse("PCR:ab-12_CD"),
            Some(LoginHint::Pcr("ab-12_CD".into()))
        );
        for bad in [
            "",
            "447700900301",
            "MSISDN:",
            "MSISDN:abc",
            "EMAIL:a@b",
            "PCR:",
            "PCR:a b",
            "ENCR_MSISDN:zz",
        ] {
            assert_eq!(LoginHint::parse(bad), None, "{bad}");
        }
        assert_eq!(
            LoginHint::parse(&format!("MSISDN:{}", "1".repeat(10_000))),
            None
        );
    }
}
