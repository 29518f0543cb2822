//! The Access Gateway's traffic throttling: per-SP quotas on the SP-facing endpoints
//! (`/authorize`, `/token`, `/userinfo`, `/premiuminfo`, `/atp`, `/bc-authorize`,
//! `/si-authorize`, `/introspect`, `/revoke`).
//!
//! * **Per second** — a token bucket per client *in this process* (capacity one second's
//!   worth, refilled continuously). With N gateway nodes behind a balancer an SP can reach
//!   up to N times its rate; the limit protects each node, not the fleet.
//! * **Per day** — one counter per client per UTC day *in the store*
//!   ([`mc_store::QuotaStore`]), taken with one atomic statement, so it holds exactly across
//!   every node sharing the database. It resets at 00:00 UTC.
//!
//! Limits come from the client's registration (`metadata.quota_per_second`,
//! `metadata.quota_per_day`; `0` is unlimited), else from [`ThrottleConfig`] defaults
//! (unset: unlimited; the sandbox sets 100 calls a day). A client's limits are cached for
//! [`LIMITS_TTL`], so a registry change applies within that time.
//!
//! The client a call is charged to is the one it *names* (Basic credentials, `client_id`,
//! a client assertion's `iss`, or the client of a bearer token) — before the handler has
//! verified anything. So that a stranger cannot burn an SP's quota by naming it, a call that
//! ends in `401` (failed client authentication), or an `/authorize` call answered with an
//! error page (the client or redirect URI did not check out), is given back. Refused calls
//! (429) are not counted. A store failure while counting lets the call through (logged):
//! throttling never takes the gateway down with it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use mc_core::McError;
use mc_core::params::RawParams;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::datagw::TokenLookup;
use crate::routes::{bearer, is_form};
use crate::state::{AppState, now, sha256_hex};

/// How long a client's limits are remembered before the registry is read again.
pub const LIMITS_TTL: Duration = Duration::from_secs(5);
/// Longest body read to find the client (the gateway's body limit is 64 KiB).
const MAX_BODY: usize = 64 * 1024;
/// Daily counters older than this many days are purged (once a day per node).
const KEEP_DAYS: i64 = 7;

/// Default quotas for clients whose registration sets none.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThrottleConfig {
    /// Calls per second per client (per node); 0: unlimited.
    pub default_per_second: u32,
    /// Calls per UTC day per client (across nodes); 0: unlimited.
    pub default_per_day: u64,
}

/// The quotas that apply to one client; 0 is unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub per_second: u32,
    pub per_day: u64,
}

impl Limits {
    fn unlimited(&self) -> bool {
        self.per_second == 0 && self.per_day == 0
    }
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Per-process throttling state, one per [`AppState`].
#[derive(Default)]
pub struct Throttle {
    buckets: Mutex<HashMap<String, Bucket>>,
    limits: Mutex<HashMap<String, (Instant, Option<Limits>)>>,
    purged_day: AtomicI64,
}

/// Which quota refused a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exceeded {
    PerSecond,
    PerDay,
}

impl Throttle {
    /// Takes one call from `client_id`'s bucket at `at`; the wait until one is available
    /// when the bucket is empty.
    pub fn take_second(
        &self,
        client_id: &str,
        per_second: u32,
        at: Instant,
    ) -> Result<(), Duration> {
        let rate = f64::from(per_second);
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() > 100_000 {
            // Clients idle for over a second are full again; forgetting them changes nothing.
            buckets.retain(|_, b| at.duration_since(b.at) < Duration::from_secs(1));
        }
        let b = buckets
            .entry(client_id.to_owned())
            .or_insert(Bucket { tokens: rate, at });
        let elapsed = at.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * rate).min(rate);
        b.at = at;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / rate))
        }
    }

    /// Gives a call back to the bucket (a call that was not the client's after all).
    fn give_back_second(&self, client_id: &str, per_second: u32) {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(b) = buckets.get_mut(client_id) {
            b.tokens = (b.tokens + 1.0).min(f64::from(per_second));
        }
    }
}

/// Seconds until the next UTC midnight (at least 1).
pub fn secs_to_midnight(t: i64) -> i64 {
    (86_400 - t.rem_euclid(86_400)).max(1)
}

/// The endpoints that are throttled, by path below the issuer's base path.
fn throttled(path: &str) -> bool {
    matches!(
        path,
        "/authorize"
            | "/token"
            | "/userinfo"
            | "/premiuminfo"
            | "/atp"
            | "/bc-authorize"
            | "/si-authorize"
            | "/introspect"
            | "/revoke"
    )
}

/// The middleware (a route layer over the gateway's routes).
pub async fn layer(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let path = path.strip_prefix(s.base_path.as_str()).unwrap_or(path);
    if !throttled(path) {
        return next.run(req).await;
    }
    let authorize = path == "/authorize";
    // The body is needed to find the client; it is put back for the handler.
    let (parts, body) = req.into_parts();
    let bytes = if parts.method == Method::POST {
        match axum::body::to_bytes(body, MAX_BODY).await {
            Ok(b) => b,
            Err(_) => {
                return crate::error::ApiError::from(McError::InvalidTokenRequest(
                    "Request body too large or unreadable",
                ))
                .into_response();
            }
        }
    } else {
        Bytes::new()
    };
    let named = named_client(&s, &parts.headers, parts.uri.query(), &bytes).await;
    let mut req = Request::from_parts(parts, Body::from(bytes));
    if let Some(lookup) = named.token {
        req.extensions_mut().insert(lookup);
    }
    let Some(client_id) = named.client_id else {
        return next.run(req).await;
    };
    let Some(limits) = limits_of(&s, &client_id).await else {
        return next.run(req).await;
    };
    if limits.unlimited() {
        return next.run(req).await;
    }
    if limits.per_second > 0
        && let Err(wait) = s
            .throttle
            .take_second(&client_id, limits.per_second, Instant::now())
    {
        let secs = wait.as_secs_f64().ceil().max(1.0) as i64;
        return too_many(Exceeded::PerSecond, secs, &client_id);
    }
    let t = now();
    let day = t.div_euclid(86_400);
    let mut counted_day = false;
    if limits.per_day > 0 {
        match s
            .store
            .take_daily_call(&client_id, day, limits.per_day)
            .await
        {
            Ok(Some(_)) => counted_day = true,
            Ok(None) => {
                if limits.per_second > 0 {
                    s.throttle.give_back_second(&client_id, limits.per_second);
                }
                return too_many(Exceeded::PerDay, secs_to_midnight(t), &client_id);
            }
            Err(e) => tracing::error!(error = %e, "daily quota not counted; call let through"),
        }
        purge_old_days(&s, day);
    }
    let resp = next.run(req).await;
    let status = resp.status();
    let unattributed =
        status == StatusCode::UNAUTHORIZED || (authorize && status == StatusCode::BAD_REQUEST);
    if unattributed {
        if limits.per_second > 0 {
            s.throttle.give_back_second(&client_id, limits.per_second);
        }
        if counted_day && let Err(e) = s.store.return_daily_call(&client_id, day).await {
            tracing::warn!(error = %e, "daily quota call not given back");
        }
    }
    resp
}

/// `429 Too Many Requests` with `Retry-After` (seconds) and an OAuth-style JSON error.
fn too_many(which: Exceeded, retry_after: i64, client_id: &str) -> Response {
    let quota = match which {
        Exceeded::PerSecond => "per_second",
        Exceeded::PerDay => "per_day",
    };
    tracing::info!(client = %client_id, quota, retry_after, "call refused: quota exceeded");
    let e = McError::Throttled;
    let body = json!({
        "error": e.code().as_str(),
        "error_description": match which {
            Exceeded::PerSecond => "Too many requests per second for this client, retry later",
            Exceeded::PerDay => "Daily request quota of this client exhausted, retry after midnight UTC",
        },
        "quota": quota,
        "retry_after": retry_after,
    });
    let mut resp = (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
        h.insert(header::RETRY_AFTER, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// Purges old daily counters once per day per node, in the background.
fn purge_old_days(s: &AppState, day: i64) {
    let before = s.throttle.purged_day.swap(day, Ordering::Relaxed);
    if before == day {
        return;
    }
    let store = s.store.clone();
    tokio::spawn(async move {
        match store.purge_daily_calls(day - KEEP_DAYS).await {
            Ok(n) if n > 0 => tracing::debug!(purged = n, "old daily quota counters purged"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "purging daily quota counters failed"),
        }
    });
}

/// The limits of a registered client (cached for [`LIMITS_TTL`]); `None` for an unknown
/// client (the handler refuses it) or when the registry cannot be read.
async fn limits_of(s: &AppState, client_id: &str) -> Option<Limits> {
    let at = Instant::now();
    {
        let cache = s.throttle.limits.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((since, limits)) = cache.get(client_id)
            && at.duration_since(*since) < LIMITS_TTL
        {
            return *limits;
        }
    }
    let record = match s.store.get_client(client_id).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "registry unreadable; call not throttled");
            return None;
        }
    };
    let d = &s.config.throttle;
    let limits = record.map(|c| Limits {
        per_second: c.metadata.quota_per_second.unwrap_or(d.default_per_second),
        per_day: c.metadata.quota_per_day.unwrap_or(d.default_per_day),
    });
    let mut cache = s.throttle.limits.lock().unwrap_or_else(|e| e.into_inner());
    if cache.len() > 10_000 {
        cache.retain(|_, (since, _)| at.duration_since(*since) < LIMITS_TTL);
    }
    cache.insert(client_id.to_owned(), (at, limits));
    limits
}

/// Who a call names.
#[derive(Default)]
struct Named {
    client_id: Option<String>,
    /// The bearer token's lookup when it named the client: the handler would read the same
    /// record, so it is handed on (a request extension of this request only).
    token: Option<TokenLookup>,
}

impl Named {
    fn client(client_id: String) -> Named {
        Named {
            client_id: Some(client_id),
            token: None,
        }
    }
}

/// The client a call names: HTTP Basic credentials, a `client_id` in the query, form or
/// JSON body, a client assertion's `iss`, or the client a bearer access token was issued
/// to. Nothing here is verified; see the module documentation.
async fn named_client(
    s: &AppState,
    headers: &HeaderMap,
    query: Option<&str>,
    body: &[u8],
) -> Named {
    if let Some(id) = basic_client_id(headers) {
        return Named::client(id);
    }
    let from = |p: &RawParams| -> Option<String> {
        if let Some(id) = p.get("client_id").filter(|id| !id.is_empty()) {
            return Some(id.to_owned());
        }
        p.get("client_assertion").and_then(assertion_issuer)
    };
    if let Some(id) = query
        .and_then(|q| RawParams::from_urlencoded(q.as_bytes()).ok())
        .as_ref()
        .and_then(from)
    {
        return Named::client(id);
    }
    if !body.is_empty() {
        if is_form(headers) {
            if let Some(id) = RawParams::from_urlencoded(body)
                .ok()
                .as_ref()
                .and_then(from)
            {
                return Named::client(id);
            }
        } else if let Ok(serde_json::Value::Object(m)) = serde_json::from_slice(body)
            && let Some(id) = m.get("client_id").and_then(|v| v.as_str())
        {
            return Named::client(id.to_owned());
        }
    }
    let token = bearer(headers).or_else(|| {
        is_form(headers)
            .then(|| RawParams::from_urlencoded(body).ok())
            .flatten()
            .and_then(|p| p.get("access_token").map(str::to_owned))
    });
    let Some(token) = token.filter(|t| !t.is_empty() && t.len() <= 512) else {
        return Named::default();
    };
    let token_hash = sha256_hex(&token);
    match s.store.find_access_token(&token_hash, now()).await {
        Ok(found) => Named {
            client_id: found.as_ref().map(|t| t.client_id.clone()),
            token: Some(TokenLookup::new(token_hash, found)),
        },
        Err(e) => {
            tracing::error!(error = %e, "token lookup for throttling failed");
            Named::default()
        }
    }
}

/// The client id of `Authorization: Basic` (form-decoded, RFC 6749 §2.3.1).
fn basic_client_id(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, value) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (id, _) = decoded.split_once(':')?;
    let p = RawParams::from_urlencoded(format!("v={id}").as_bytes()).ok()?;
    p.get("v").filter(|id| !id.is_empty()).map(str::to_owned)
}

/// The `iss` of a JWT client assertion, unverified.
fn assertion_issuer(jwt: &str) -> Option<String> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    v.get("iss")?.as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_the_rate_then_refills() {
        let t = Throttle::default();
        let start = Instant::now();
        for _ in 0..3 {
            assert!(t.take_second("c", 3, start).is_ok());
        }
        let wait = t.take_second("c", 3, start).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_millis(334),
            "{wait:?}"
        );
        assert!(
            t.take_second("other", 3, start).is_ok(),
            "buckets are per client"
        );
        assert!(
            t.take_second("c", 3, start + Duration::from_millis(340))
                .is_ok()
        );
        assert!(
            t.take_second("c", 3, start + Duration::from_millis(340))
                .is_err()
        );
        t.give_back_second("c", 3);
        assert!(
            t.take_second("c", 3, start + Duration::from_millis(340))
                .is_ok()
        );
        // Idle for long: full again, never more than the rate.
        let later = start + Duration::from_secs(60);
        for _ in 0..3 {
            assert!(t.take_second("c", 3, later).is_ok());
        }
        assert!(t.take_second("c", 3, later).is_err());
    }

    #[test]
    fn midnight() {
        assert_eq!(secs_to_midnight(0), 86_400);
        assert_eq!(secs_to_midnight(86_399), 1);
        assert_eq!(secs_to_midnight(86_400 + 3600), 82_800);
    }

    #[test]
    fn names_from_basic_and_assertions() {
        let mut h = HeaderMap::new();
        let creds = base64::engine::general_purpose::STANDARD.encode("a%3Ab:secret");
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("basic {creds}")).unwrap(),
        );
        assert_eq!(basic_client_id(&h).as_deref(), Some("a:b"));
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"iss":"shop","sub":"shop"}"#);
        assert_eq!(
            assertion_issuer(&format!("e30.{payload}.sig")).as_deref(),
            Some("shop")
        );
        assert_eq!(assertion_issuer("garbage"), None);
        assert!(throttled("/token") && !throttled("/authorize/wait/x") && !throttled("/jwks"));
    }
}
