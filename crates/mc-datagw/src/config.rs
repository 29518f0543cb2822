//! The Data Gateway's configuration (`[gateway.datagw]` in the configuration file).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The name of the local source (attributes provisioned in the gateway's store).
pub const LOCAL: &str = "local";

/// Sources, their precedence, and the ATP defaults.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatagwConfig {
    /// Source names in precedence order: for every attribute the first source that has a
    /// value wins. `local` is the store; the others are `http_sources` names. Empty (the
    /// default): `local`, then the HTTP sources in the order they are listed. Sources not
    /// named come after the named ones.
    pub precedence: Vec<String>,
    /// Per-attribute precedence, e.g. `{ email = ["crm", "local"] }`.
    pub attribute_precedence: BTreeMap<String, Vec<String>>,
    /// Operator back-ends asked over HTTP.
    pub http_sources: Vec<HttpSourceConfig>,
    pub atp: AtpConfig,
}

/// One HTTP back-end: `POST url` with `{"subscriber_id", "msisdn"}`, answered by a JSON
/// object of attributes (the vocabulary of `mc_datagw::attributes`); `404` means it knows
/// nothing about the subscriber.
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSourceConfig {
    /// Unique, not `local`; used in `precedence` and in logs.
    pub name: String,
    pub url: String,
    /// Per request, connection included.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Consecutive failures that open the circuit.
    #[serde(default = "default_failure_threshold")]
    pub failure_threshold: u32,
    /// How long an open circuit stays open before one trial request.
    #[serde(default = "default_open_secs")]
    pub open_secs: u64,
    /// How long an answer is reused (0: no cache).
    #[serde(default = "default_cache_ttl_secs")]
    pub cache_ttl_secs: u64,
    #[serde(default = "default_cache_max_entries")]
    pub cache_max_entries: usize,
    /// Sent as `Authorization: Bearer …` when set. Never logged.
    #[serde(default)]
    pub bearer_token: Option<String>,
    /// The attributes this back-end can provide; empty: any. A request needing none of
    /// them does not call it.
    #[serde(default)]
    pub provides: Vec<String>,
}

impl std::fmt::Debug for HttpSourceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSourceConfig")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("timeout_ms", &self.timeout_ms)
            .field("failure_threshold", &self.failure_threshold)
            .field("open_secs", &self.open_secs)
            .field("cache_ttl_secs", &self.cache_ttl_secs)
            .field("cache_max_entries", &self.cache_max_entries)
            .field(
                "bearer_token",
                &self.bearer_token.as_ref().map(|_| "<redacted>"),
            )
            .field("provides", &self.provides)
            .finish()
    }
}

fn default_timeout_ms() -> u64 {
    1000
}
fn default_failure_threshold() -> u32 {
    5
}
fn default_open_secs() -> u64 {
    30
}
fn default_cache_ttl_secs() -> u64 {
    60
}
fn default_cache_max_entries() -> usize {
    10_000
}

/// Account-takeover protection defaults.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AtpConfig {
    /// `simChange` is `"true"` when the SIM changed within this many hours (a request's
    /// `maxAge` overrides it). CAMARA's default: 240.
    pub sim_change_window_hours: u32,
    /// `boolean` (within the window) or `date` (the date of the last change).
    pub sim_change_format: String,
}

impl Default for AtpConfig {
    fn default() -> Self {
        AtpConfig {
            sim_change_window_hours: 240,
            sim_change_format: "boolean".into(),
        }
    }
}

impl DatagwConfig {
    /// Checks serde cannot express; the error names the field (relative to `datagw`).
    pub fn validate(&self) -> Result<(), String> {
        let mut names = vec![LOCAL.to_owned()];
        for (i, s) in self.http_sources.iter().enumerate() {
            let at = format!("datagw.http_sources[{i}]");
            if s.name.is_empty()
                || s.name.len() > 64
                || !s
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
            {
                return Err(format!("{at}.name: 1 to 64 characters of [A-Za-z0-9-_]"));
            }
            if names.contains(&s.name) {
                return Err(format!(
                    "{at}.name: {:?} is used twice (or is \"local\")",
                    s.name
                ));
            }
            names.push(s.name.clone());
            let url = reqwest::Url::parse(&s.url).map_err(|e| format!("{at}.url: {e}"))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(format!("{at}.url: must be http(s)"));
            }
            if !(1..=30_000).contains(&s.timeout_ms) {
                return Err(format!("{at}.timeout_ms: must be 1..=30000"));
            }
            if s.failure_threshold == 0 {
                return Err(format!("{at}.failure_threshold: must be at least 1"));
            }
            if s.open_secs == 0 || s.open_secs > 3600 {
                return Err(format!("{at}.open_secs: must be 1..=3600"));
            }
            if s.cache_ttl_secs > 86_400 || s.cache_max_entries == 0 {
                return Err(format!(
                    "{at}: cache_ttl_secs must be at most 86400 and cache_max_entries positive"
                ));
            }
            if let Some(bad) = s
                .provides
                .iter()
                .find(|a| crate::attributes::spec(a).is_none())
            {
                return Err(format!("{at}.provides: unknown attribute {bad:?}"));
            }
        }
        let known = |what: &str, list: &[String]| -> Result<(), String> {
            match list.iter().find(|n| !names.contains(n)) {
                Some(bad) => Err(format!(
                    "{what}: unknown source {bad:?} (known: {})",
                    names.join(", ")
                )),
                None => Ok(()),
            }
        };
        known("datagw.precedence", &self.precedence)?;
        for (attr, list) in &self.attribute_precedence {
            if crate::attributes::spec(attr).is_none() {
                return Err(format!(
                    "datagw.attribute_precedence: unknown attribute {attr:?}"
                ));
            }
            known(&format!("datagw.attribute_precedence.{attr}"), list)?;
        }
        if !crate::atp::MAX_AGE_HOURS.contains(&self.atp.sim_change_window_hours) {
            return Err("datagw.atp.sim_change_window_hours: must be 1..=2400".into());
        }
        if !matches!(self.atp.sim_change_format.as_str(), "boolean" | "date") {
            return Err("datagw.atp.sim_change_format: boolean or date".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn http(name: &str) -> HttpSourceConfig {
        serde_json::from_value(serde_json::json!({"name": name, "url": "http://127.0.0.1:9/x"}))
            .unwrap()
    }

    #[test]
    fn validation_names_the_field() {
        assert!(DatagwConfig::default().validate().is_ok());
        let mut c = DatagwConfig {
            http_sources: vec![http("crm")],
            precedence: vec!["crm".into(), "local".into()],
            ..Default::default()
        };
        assert!(c.validate().is_ok());
        c.precedence.push("ldap".into());
        assert!(
            c.validate()
                .unwrap_err()
                .starts_with("datagw.precedence: unknown source \"ldap\"")
        );
        c.precedence.pop();
        c.http_sources.push(http("crm"));
        assert!(c.validate().unwrap_err().contains("used twice"));
        c.http_sources.pop();
        c.attribute_precedence.insert("shoe".into(), vec![]);
        assert!(
            c.validate()
                .unwrap_err()
                .contains("unknown attribute \"shoe\"")
        );
        c.attribute_precedence.clear();
        c.atp.sim_change_format = "emoji".into();
        assert!(c.validate().is_err());
    }

    #[test]
    fn the_bearer_token_is_not_in_debug_output() {
        let mut s = http("crm");
        s.bearer_token = Some("s3cr3t".into());
        assert!(!format!("{s:?}").contains("s3cr3t"));
    }
}
