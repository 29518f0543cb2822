//! Raw request parameters: decoded once, duplicates remembered, sizes bounded.

use std::collections::HashMap;

use crate::error::McError;
use crate::limits::{MAX_PARAMETERS, MAX_REQUEST_BYTES};

/// The parameters of one request as received (query string or form body), before any
/// validation. Only this type ever holds raw strings; checks turn them into typed values.
#[derive(Debug, Default, Clone)]
pub struct RawParams {
    values: HashMap<String, String>,
    duplicated: Vec<String>,
}

impl RawParams {
    /// Decodes `application/x-www-form-urlencoded` bytes. Invalid UTF-8 or an oversized body
    /// is `MalformedRequest`. Empty values count as absent (OAuth 2.0 §3.1), but a
    /// parameter named twice is remembered even if one copy is empty.
    pub fn from_urlencoded(bytes: &[u8]) -> Result<Self, McError> {
        if bytes.len() > MAX_REQUEST_BYTES {
            return Err(McError::MalformedRequest);
        }
        // Invalid UTF-8 after percent-decoding is refused rather than replaced, so that what
        // we echo is what the client sent.
        let mut out = RawParams::default();
        for pair in bytes.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
            let mut it = pair.splitn(2, |b| *b == b'=');
            let key = decode_component(it.next().unwrap_or_default())?;
            let value = decode_component(it.next().unwrap_or_default())?;
            out.insert(key, value)?;
        }
        Ok(out)
    }

    /// Builds from already-decoded pairs (JSON bodies, tests).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self, McError> {
        let mut out = RawParams::default();
        for (k, v) in pairs {
            out.insert(k.into(), v.into())?;
        }
        Ok(out)
    }

    fn insert(&mut self, key: String, value: String) -> Result<(), McError> {
        if self.values.contains_key(&key) {
            if !self.duplicated.contains(&key) {
                self.duplicated.push(key);
            }
            return Ok(());
        }
        if self.values.len() >= MAX_PARAMETERS {
            return Err(McError::MalformedRequest);
        }
        self.values.insert(key, value);
        Ok(())
    }

    /// The value, or `None` when absent or empty.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    pub fn is_duplicated(&self, key: &str) -> bool {
        self.duplicated.iter().any(|k| k == key)
    }

    /// Names given more than once, in arrival order.
    pub fn duplicated(&self) -> &[String] {
        &self.duplicated
    }

    pub fn contains(&self, key: &str) -> bool {
        self.values.contains_key(key)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

fn decode_component(raw: &[u8]) -> Result<String, McError> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = raw.get(i + 1..i + 3).ok_or(McError::MalformedRequest)?;
                let s = std::str::from_utf8(hex).map_err(|_| McError::MalformedRequest)?;
                out.push(u8::from_str_radix(s, 16).map_err(|_| McError::MalformedRequest)?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| McError::MalformedRequest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_plus_and_percent() {
        let p =
            RawParams::from_urlencoded(b"scope=openid+mc_authn&login_hint=MSISDN%3A4477").unwrap();
        assert_eq!(p.get("scope"), Some("openid mc_authn"));
        assert_eq!(p.get("login_hint"), Some("MSISDN:4477"));
    }

    #[test]
    fn remembers_duplicates_and_treats_empty_as_absent() {
        let p = RawParams::from_urlencoded(b"state=a&state=b&nonce=").unwrap();
        assert!(p.is_duplicated("state"));
        assert_eq!(p.get("state"), Some("a"));
        assert_eq!(p.get("nonce"), None);
    }

    #[test]
    fn invalid_utf8_bad_escapes_and_oversize_are_malformed() {
        assert_eq!(
            RawParams::from_urlencoded(b"a=%FF%FE").unwrap_err(),
            McError::MalformedRequest
        );
        assert_eq!(
            RawParams::from_urlencoded(b"a=%G1").unwrap_err(),
            McError::MalformedRequest
        );
        assert_eq!(
            RawParams::from_urlencoded(b"a=%4").unwrap_err(),
            McError::MalformedRequest
        );
        let big = vec![b'a'; MAX_REQUEST_BYTES + 1];
        assert_eq!(
            RawParams::from_urlencoded(&big).unwrap_err(),
            McError::MalformedRequest
        );
    }

    #[test]
    fn too_many_parameters_is_malformed() {
        let body: String = (0..=MAX_PARAMETERS).map(|i| format!("p{i}=1&")).collect();
        assert_eq!(
            RawParams::from_urlencoded(body.as_bytes()).unwrap_err(),
            McError::MalformedRequest
        );
    }
}
