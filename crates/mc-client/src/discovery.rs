//! The Discovery client (digest §2): which operator serves a subscriber, and that
//! operator's endpoints and the SP's credentials at it.
//!
//! * `MSISDN` lookups are POSTed (form body, no `+`), everything else is a GET; both carry
//!   HTTP Basic with the SP's *discovery* credentials, `Redirect_URL` and a fresh
//!   `correlation_id` whose echo is checked.
//! * 200 → [`DiscoveryOutcome::Operator`]; 202 `operatorSelection` or a 302 →
//!   [`DiscoveryOutcome::OperatorSelection`] (send the browser there; it comes back to your
//!   `Redirect_URL` with `mcc_mnc` and `subscriber_id`, see [`crate::redirect`] and
//!   [`DiscoveryClient::after_selection`]).
//! * Answers are cached per MSISDN and per MCC/MNC until `ttl` (epoch milliseconds — the
//!   Java SDK's "duration" reading is a bug), clamped to [now + 5 min, now + 180 days]. When
//!   Discovery cannot be reached (or answers 5xx/429) an expired entry is served, marked
//!   [`DiscoveredOperator::stale`]; with nothing cached the error is
//!   [`DiscoveryError::Unavailable`].
//!
//! ```no_run
//! use mc_client::MobileConnect;
//! use mc_client::discovery::{DiscoveryConfig, DiscoveryOutcome, DiscoveryRequest};
//! use mc_core::msisdn::Msisdn;
//!
//! # async fn run() -> Result<(), mc_client::Error> {
//! let mc = MobileConnect::new(Default::default());
//! let discovery = mc.discovery(DiscoveryConfig::new(
//!     "http://127.0.0.1:8080/v2/discovery",
//!     "discovery-client-id",
//!     "discovery-secret",
//!     "https://shop.example/callback",
//! ));
//! let msisdn = Msisdn::parse("447700900301").expect("a number");
//! match discovery.discover(&DiscoveryRequest::msisdn(msisdn)).await? {
//!     DiscoveryOutcome::Operator(found) => {
//!         let operator = mc.operator_from_discovery(&found).await?;
//!         println!("{operator:?}");
//!     }
//!     DiscoveryOutcome::OperatorSelection { url } => println!("redirect the browser to {url}"),
//! }
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use mc_core::msisdn::Msisdn;
use serde_json::Value;

use crate::error::{DiscoveryError, Error};
use crate::jose::random_token;
use crate::redirect::Redirect;
use crate::{Ctx, SDK_VERSION, Secret};

/// Shortest cache lifetime of a discovery answer (digest §2.8, `MIN_TTL_MS`).
pub const MIN_TTL_SECS: i64 = 300;
/// Longest cache lifetime of a discovery answer (digest §2.8, `MAX_TTL_MS`).
pub const MAX_TTL_SECS: i64 = 180 * 24 * 3600;

/// The absolute expiry (seconds) of an answer with `ttl` (epoch milliseconds), clamped to
/// [`now + MIN_TTL_SECS`, `now + MAX_TTL_SECS`]. A missing `ttl` gets the minimum.
///
/// ```
/// use mc_client::discovery::{clamp_ttl, MAX_TTL_SECS, MIN_TTL_SECS};
/// let now = 1_700_000_000;
/// assert_eq!(clamp_ttl(Some((now + 3600) * 1000), now), now + 3600);
/// assert_eq!(clamp_ttl(Some(1_466_082_848_000), now), now + MIN_TTL_SECS);
/// assert_eq!(clamp_ttl(Some(i64::MAX), now), now + MAX_TTL_SECS);
/// assert_eq!(clamp_ttl(None, now), now + MIN_TTL_SECS);
/// ```
pub fn clamp_ttl(ttl_ms: Option<i64>, now: i64) -> i64 {
    let expiry = ttl_ms.map_or(i64::MIN, |ms| ms.div_euclid(1000));
    expiry.clamp(now + MIN_TTL_SECS, now + MAX_TTL_SECS)
}

/// The SP's Discovery settings.
#[derive(Debug, Clone)]
pub struct DiscoveryConfig {
    /// The Discovery URL, e.g. `https://discovery.example/v2/discovery`.
    pub endpoint: String,
    /// The SP's *discovery* credentials (not an operator's).
    pub client_id: String,
    pub client_secret: Secret,
    /// The SP's registered redirect URL (`Redirect_URL`, mandatory).
    pub redirect_url: String,
    /// Most answers kept in the cache.
    pub max_cache_entries: usize,
}

impl DiscoveryConfig {
    pub fn new(
        endpoint: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
        redirect_url: impl Into<String>,
    ) -> DiscoveryConfig {
        DiscoveryConfig {
            endpoint: endpoint.into(),
            client_id: client_id.into(),
            client_secret: Secret::new(client_secret),
            redirect_url: redirect_url.into(),
            max_cache_entries: 10_000,
        }
    }
}

/// What to look up.
#[derive(Debug, Clone, Default)]
pub struct DiscoveryRequest {
    pub msisdn: Option<Msisdn>,
    /// MCC and MNC read from the device's SIM (`Identified-MCC`/`-MNC`).
    pub identified: Option<(String, String)>,
    /// MCC and MNC the user picked on the operator-selection page (`Selected-MCC`/`-MNC`).
    pub selected: Option<(String, String)>,
    /// The end user's IP (`X-Source-IP`), for mobile-data IP ranges.
    pub source_ip: Option<String>,
    /// A `correlation_id` to send; a random one otherwise.
    pub correlation_id: Option<String>,
    /// `subscriber_id` from the selection redirect, attached when the answer has none.
    pub subscriber_id: Option<String>,
    /// Skip a fresh cache entry and ask Discovery.
    pub force_refresh: bool,
}

impl DiscoveryRequest {
    /// "No hint": Discovery answers with operator selection (or identifies by IP).
    pub fn none() -> DiscoveryRequest {
        DiscoveryRequest::default()
    }

    pub fn msisdn(msisdn: Msisdn) -> DiscoveryRequest {
        DiscoveryRequest {
            msisdn: Some(msisdn),
            ..Default::default()
        }
    }

    pub fn identified(mcc: &str, mnc: &str) -> DiscoveryRequest {
        DiscoveryRequest {
            identified: Some((mcc.to_owned(), mnc.to_owned())),
            ..Default::default()
        }
    }

    pub fn selected(mcc: &str, mnc: &str) -> DiscoveryRequest {
        DiscoveryRequest {
            selected: Some((mcc.to_owned(), mnc.to_owned())),
            ..Default::default()
        }
    }

    pub fn source_ip(mut self, ip: impl Into<String>) -> Self {
        self.source_ip = Some(ip.into());
        self
    }

    /// The cache key: the MSISDN, else identified MCC/MNC (preferred, as in the Java SDK),
    /// else selected MCC/MNC. Requests without one are not cached.
    fn cache_key(&self) -> Option<String> {
        if let Some(m) = &self.msisdn {
            return Some(format!("msisdn:{}", m.as_str()));
        }
        self.identified
            .as_ref()
            .or(self.selected.as_ref())
            .map(|(mcc, mnc)| format!("mcc_mnc:{mcc}_{mnc}"))
    }
}

/// One `link` of `response.apis.operatorid.link` (digest §2.5).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Link {
    pub rel: String,
    pub href: String,
}

/// A successful discovery answer (digest §2.4).
#[derive(Debug, Clone)]
pub struct DiscoveredOperator {
    /// The SP's client_id at this operator.
    pub client_id: String,
    /// The SP's client_secret at this operator.
    pub client_secret: Option<Secret>,
    pub serving_operator: Option<String>,
    pub country: Option<String>,
    pub currency: Option<String>,
    /// `response.client_name`, else the `applicationShortName` link (the Java SDK's rule):
    /// the name `mc_authz` requests must carry.
    pub client_name: Option<String>,
    pub links: Vec<Link>,
    /// The MSISDN encrypted for the operator: `login_hint=ENCR_MSISDN:<subscriber_id>`.
    pub subscriber_id: Option<String>,
    /// A `login_hint_token` for the operator (preferred from `mc_di_v3.0`).
    pub subscriber_id_token: Option<String>,
    /// The number looked up, when the SP gave it (enables the `hashed_login_hint` check).
    pub msisdn: Option<Msisdn>,
    /// MCC/MNC of the lookup, when known.
    pub mcc_mnc: Option<(String, String)>,
    /// When this answer stops being fresh (seconds since the epoch; clamped `ttl`).
    pub expires_at: i64,
    /// Served from an expired cache entry because Discovery was unreachable.
    pub stale: bool,
    /// Served from the cache without asking Discovery.
    pub from_cache: bool,
    /// The `correlation_id` of the call that produced it.
    pub correlation_id: Option<String>,
}

impl DiscoveredOperator {
    /// The `href` of link `rel`.
    pub fn link(&self, rel: &str) -> Option<&str> {
        self.links
            .iter()
            .find(|l| l.rel == rel)
            .map(|l| l.href.as_str())
    }
}

/// The answer to a lookup.
#[derive(Debug, Clone)]
pub enum DiscoveryOutcome {
    /// The serving operator.
    Operator(Box<DiscoveredOperator>),
    /// Send the browser to `url` (Discovery's operator-selection page).
    OperatorSelection { url: String },
}

struct Entry {
    operator: DiscoveredOperator,
}

/// Failures of one Discovery call, split by whether a stale answer may stand in.
enum CallError {
    Unavailable(String),
    Definitive(Error),
}

/// A Discovery client with its cache. Share one per SP (it is `Send + Sync`).
pub struct DiscoveryClient {
    ctx: Arc<Ctx>,
    config: DiscoveryConfig,
    cache: Mutex<HashMap<String, Entry>>,
}

impl std::fmt::Debug for DiscoveryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiscoveryClient")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl DiscoveryClient {
    pub(crate) fn new(ctx: Arc<Ctx>, config: DiscoveryConfig) -> DiscoveryClient {
        DiscoveryClient {
            ctx,
            config,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Looks a subscriber or network up: from the cache while fresh, else from Discovery,
    /// else (Discovery down) from an expired entry.
    pub async fn discover(&self, req: &DiscoveryRequest) -> Result<DiscoveryOutcome, Error> {
        let now = self.ctx.now();
        let key = req.cache_key();
        if let (Some(key), false) = (&key, req.force_refresh)
            && let Some(mut hit) = self.cached(key)
            && hit.expires_at > now
        {
            hit.from_cache = true;
            attach_subscriber(&mut hit, req);
            return Ok(DiscoveryOutcome::Operator(Box::new(hit)));
        }
        match self.call(req).await {
            Ok(DiscoveryOutcome::Operator(mut found)) => {
                found.msisdn = req.msisdn.clone();
                found.mcc_mnc = req.identified.clone().or(req.selected.clone());
                if let Some(key) = key {
                    let mut stored = (*found).clone();
                    if !key.starts_with("msisdn:") {
                        // An MCC/MNC entry serves every subscriber of the network: never
                        // hand one user's encrypted number to the next (the Java SDK does).
                        stored.subscriber_id = None;
                        stored.subscriber_id_token = None;
                    }
                    self.store(key, stored);
                }
                attach_subscriber(&mut found, req);
                Ok(DiscoveryOutcome::Operator(found))
            }
            Ok(selection) => Ok(selection),
            Err(CallError::Definitive(e)) => Err(e),
            Err(CallError::Unavailable(why)) => match key.and_then(|k| self.cached(&k)) {
                Some(mut stale) => {
                    stale.stale = true;
                    stale.from_cache = true;
                    attach_subscriber(&mut stale, req);
                    Ok(DiscoveryOutcome::Operator(Box::new(stale)))
                }
                None => Err(DiscoveryError::Unavailable(why).into()),
            },
        }
    }

    /// The second lookup after the operator-selection page redirected back with
    /// `mcc_mnc` (and `subscriber_id`): digest §2.6.
    pub async fn after_selection(&self, redirect: &Redirect) -> Result<DiscoveryOutcome, Error> {
        match redirect {
            Redirect::OperatorSelected {
                mcc,
                mnc,
                subscriber_id,
                subscriber_id_token,
            } => {
                let mut req = DiscoveryRequest::selected(mcc, mnc);
                req.subscriber_id = subscriber_id.clone();
                let mut out = self.discover(&req).await?;
                if let DiscoveryOutcome::Operator(op) = &mut out
                    && op.subscriber_id_token.is_none()
                {
                    op.subscriber_id_token = subscriber_id_token.clone();
                }
                Ok(out)
            }
            Redirect::Error {
                error, description, ..
            } => Err(DiscoveryError::Selection(if description.is_empty() {
                error.clone()
            } else {
                format!("{error}: {description}")
            })
            .into()),
            Redirect::Code { .. } => Err(Error::InvalidRequest(
                "an authorization-code redirect is not an operator selection".into(),
            )),
        }
    }

    /// Drops every cached answer.
    pub fn clear_cache(&self) {
        self.lock().clear();
    }

    /// Drops the cached answer for this request's key.
    pub fn forget(&self, req: &DiscoveryRequest) {
        if let Some(k) = req.cache_key() {
            self.lock().remove(&k);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        // A panic while holding the lock cannot leave the map inconsistent (single inserts
        // and removals), so a poisoned lock is still usable.
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn cached(&self, key: &str) -> Option<DiscoveredOperator> {
        self.lock().get(key).map(|e| e.operator.clone())
    }

    fn store(&self, key: String, operator: DiscoveredOperator) {
        let now = self.ctx.now();
        let mut cache = self.lock();
        if cache.len() >= self.config.max_cache_entries && !cache.contains_key(&key) {
            cache.retain(|_, e| e.operator.expires_at > now);
            while cache.len() >= self.config.max_cache_entries.max(1) {
                let Some(soonest) = cache
                    .iter()
                    .min_by_key(|(_, e)| e.operator.expires_at)
                    .map(|(k, _)| k.clone())
                else {
                    break;
                };
                cache.remove(&soonest);
            }
        }
        cache.insert(key, Entry { operator });
    }

    async fn call(&self, req: &DiscoveryRequest) -> Result<DiscoveryOutcome, CallError> {
        let correlation_id = req
            .correlation_id
            .clone()
            .unwrap_or_else(|| random_token(16));
        let mut params: Vec<(&str, String)> = vec![
            ("Redirect_URL", self.config.redirect_url.clone()),
            ("correlation_id", correlation_id.clone()),
        ];
        if let Some((mcc, mnc)) = &req.identified {
            params.push(("Identified-MCC", mcc.clone()));
            params.push(("Identified-MNC", mnc.clone()));
        }
        if let Some((mcc, mnc)) = &req.selected {
            params.push(("Selected-MCC", mcc.clone()));
            params.push(("Selected-MNC", mnc.clone()));
        }
        let http = &self.ctx.http;
        let builder = match &req.msisdn {
            // MSISDN is POST-only (digest §2.3), digits without '+'.
            Some(m) => {
                params.push(("MSISDN", m.as_str().to_owned()));
                http.post(&self.config.endpoint).form(&params)
            }
            None => http.get(&self.config.endpoint).query(&params),
        };
        let mut builder = builder
            .basic_auth(
                &self.config.client_id,
                Some(self.config.client_secret.expose()),
            )
            .header("accept", "application/json")
            .header("SDK-Version", SDK_VERSION);
        if let Some(ip) = &req.source_ip {
            builder = builder.header("X-Source-IP", ip);
        }
        let resp = builder
            .send()
            .await
            .map_err(|e| CallError::Unavailable(e.without_url().to_string()))?;
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if (300..400).contains(&status) {
            let url = location.ok_or_else(|| {
                definitive(DiscoveryError::InvalidResponse(format!(
                    "HTTP {status} without Location"
                )))
            })?;
            return Ok(DiscoveryOutcome::OperatorSelection {
                url: resolve(&self.config.endpoint, &url),
            });
        }
        if status >= 500 || status == 429 {
            return Err(CallError::Unavailable(format!("HTTP {status}")));
        }
        let body: Value = resp.json().await.map_err(|_| {
            definitive(DiscoveryError::InvalidResponse(format!(
                "HTTP {status} with a body that is not JSON"
            )))
        })?;
        check_correlation(&correlation_id, &body).map_err(definitive)?;
        if let Some(error) = body.get("error").and_then(Value::as_str) {
            let description = body
                .get("description")
                .or_else(|| body.get("error_description"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let e = match (status, error) {
                (401, _) | (_, "invalid_client") => DiscoveryError::Unauthorized(description),
                (404, _) | (_, "Not_Found_Entity") => DiscoveryError::NotFound(description),
                _ => DiscoveryError::Rejected {
                    status,
                    error: error.to_owned(),
                    description,
                },
            };
            return Err(definitive(e));
        }
        match status {
            200 => parse_success(&body, self.ctx.now(), correlation_id)
                .map(|op| DiscoveryOutcome::Operator(Box::new(op)))
                .map_err(definitive),
            202 => {
                let url = body
                    .get("links")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .find(|l| l.get("rel").and_then(Value::as_str) == Some("operatorSelection"))
                    .and_then(|l| l.get("href").and_then(Value::as_str))
                    .ok_or_else(|| {
                        definitive(DiscoveryError::InvalidResponse(
                            "202 without an operatorSelection link".into(),
                        ))
                    })?;
                Ok(DiscoveryOutcome::OperatorSelection {
                    url: resolve(&self.config.endpoint, url),
                })
            }
            401 => Err(definitive(DiscoveryError::Unauthorized(String::new()))),
            404 => Err(definitive(DiscoveryError::NotFound(String::new()))),
            _ => Err(definitive(DiscoveryError::Rejected {
                status,
                error: String::new(),
                description: String::new(),
            })),
        }
    }
}

fn definitive(e: DiscoveryError) -> CallError {
    CallError::Definitive(e.into())
}

fn attach_subscriber(op: &mut DiscoveredOperator, req: &DiscoveryRequest) {
    if op.subscriber_id.is_none() {
        op.subscriber_id = req.subscriber_id.clone();
    }
}

fn resolve(base: &str, href: &str) -> String {
    url::Url::parse(base)
        .and_then(|b| b.join(href))
        .map(String::from)
        .unwrap_or_else(|_| href.to_owned())
}

fn check_correlation(sent: &str, body: &Value) -> Result<(), DiscoveryError> {
    match body.get("correlation_id").and_then(Value::as_str) {
        Some(received) if received != sent => Err(DiscoveryError::CorrelationIdMismatch {
            sent: sent.to_owned(),
            received: received.to_owned(),
        }),
        _ => Ok(()),
    }
}

/// Reads a 200 body (digest §2.4).
fn parse_success(
    body: &Value,
    now: i64,
    correlation_id: String,
) -> Result<DiscoveredOperator, DiscoveryError> {
    let bad = |what: &str| DiscoveryError::InvalidResponse(what.to_owned());
    let response = body
        .get("response")
        .filter(|r| r.is_object())
        .ok_or_else(|| bad("no response object"))?;
    let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    let client_id = text(response, "client_id").ok_or_else(|| bad("no response.client_id"))?;
    let links: Vec<Link> = response
        .pointer("/apis/operatorid/link")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("no response.apis.operatorid.link"))?
        .iter()
        .filter_map(|l| serde_json::from_value(l.clone()).ok())
        .collect();
    for rel in ["authorization", "token"] {
        if !links.iter().any(|l| l.rel == rel) {
            return Err(bad(&format!("no {rel} link")));
        }
    }
    // `ttl` is a number of epoch milliseconds; some servers send it as a string.
    let ttl = match body.get("ttl") {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    };
    let client_name = text(response, "client_name").or_else(|| {
        links
            .iter()
            .find(|l| l.rel == "applicationShortName")
            .map(|l| l.href.clone())
    });
    Ok(DiscoveredOperator {
        client_id,
        client_secret: text(response, "client_secret").map(Secret::new),
        serving_operator: text(response, "serving_operator"),
        country: text(response, "country"),
        currency: text(response, "currency"),
        client_name,
        subscriber_id: text(body, "subscriber_id").or_else(|| text(response, "subscriber_id")),
        subscriber_id_token: text(body, "subscriber_id_token"),
        links,
        msisdn: None,
        mcc_mnc: None,
        expires_at: clamp_ttl(ttl, now),
        stale: false,
        from_cache: false,
        correlation_id: Some(correlation_id),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn the_java_fixture_parses() {
        let body = json!({
          "ttl": 1466082848000i64,
          "response": {
            "client_id": "x-ZWRhNjU3OWI3MGIwYTRh", "client_secret": "x-NjQzZTBhZWM0YmQ4ZDQ5",
            "serving_operator": "demo_unitedkingdom", "country": "UnitedKingdom", "currency": "GBP",
            "apis": {"operatorid": {"link": [
              {"rel": "authorization", "href": "https://op/auth"},
              {"rel": "token", "href": "https://op/token"},
              {"rel": "applicationShortName", "href": "test1"},
              {"rel": "openid-configuration", "href": "https://op/.well-known/openid-configuration"}
            ]}}
          },
          "subscriber_id": "6c483ef529a8"
        });
        let op = parse_success(&body, 1_700_000_000, "c".into()).unwrap();
        assert_eq!(op.client_id, "x-ZWRhNjU3OWI3MGIwYTRh");
        assert_eq!(op.client_name.as_deref(), Some("test1"));
        assert_eq!(op.subscriber_id.as_deref(), Some("6c483ef529a8"));
        assert_eq!(op.link("token"), Some("https://op/token"));
        // A ttl in the past still caches for the minimum.
        assert_eq!(op.expires_at, 1_700_000_000 + MIN_TTL_SECS);
    }

    #[test]
    fn bodies_without_the_required_parts_are_refused() {
        for body in [
            json!({}),
            json!({"response": {"apis": {"operatorid": {"link": []}}}}),
            json!({"response": {"client_id": "c", "apis": {"operatorid": {"link": [
                {"rel": "authorization", "href": "a"}]}}}}),
        ] {
            assert!(parse_success(&body, 0, "c".into()).is_err(), "{body}");
        }
    }

    #[test]
    fn cache_keys_prefer_msisdn_then_identified() {
        let m = Msisdn::parse("447700900301").unwrap();
        let mut r = DiscoveryRequest::msisdn(m);
        r.identified = Some(("234".into(), "15".into()));
        assert_eq!(r.cache_key().as_deref(), Some("msisdn:447700900301"));
        let mut r = DiscoveryRequest::selected("901", "01");
        assert_eq!(r.cache_key().as_deref(), Some("mcc_mnc:901_01"));
        r.identified = Some(("234".into(), "15".into()));
        assert_eq!(r.cache_key().as_deref(), Some("mcc_mnc:234_15"));
        assert_eq!(DiscoveryRequest::none().cache_key(), None);
    }
}
