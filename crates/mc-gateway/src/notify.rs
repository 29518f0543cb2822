//! The back-channel worker: ends timed-out requests and delivers the notifications of
//! server-initiated logins — CIBA ping and push (OpenID CIBA Core 1.0 §10.2, §10.3, §12) and
//! the Mobile Connect SI notification (digest §9.4).
//!
//! The work itself lives in the store: answering or expiring a request enqueues an outbox
//! item in the same transaction, and [`spawn_workers`] leases due items and delivers them,
//! so a notification survives restarts and any number of gateway nodes share the work (the
//! lease gives each item to one worker at a time).
//!
//! Delivery is at least once. The body is built on the first attempt and stored sealed
//! before it is sent, so every retry sends exactly the same bytes: the same `auth_req_id`
//! and, for push, the same tokens — a receiver that sees a body twice can treat it as one.
//! Tokens and the client's notification token are never logged.

use std::sync::Arc;
use std::time::Duration;

use mc_authn::answer::denial;
use mc_authn::hub::Event;
use mc_core::McError;
use mc_store::{
    AuthSession, BackchannelKind, BackchannelRecord, ClientStatus, DeliveryMode, OutboxItem,
    STALE_SESSION_ERROR, SessionStatus,
};
use serde_json::{Map, Value};
use tokio::sync::Semaphore;

use crate::state::{AppState, now};
use crate::tokens::{TokenResponse, issue_tokens};

/// How long a leased item belongs to one worker: longer than one delivery can take (the
/// POST times out after [`POST_TIMEOUT`]).
pub const LEASE_SECS: i64 = 30;
/// Items leased per round.
pub const LEASE_BATCH: u32 = 32;
/// Deliveries in flight per node.
pub const MAX_IN_FLIGHT: usize = 16;
/// Requests expired per store call.
const EXPIRE_BATCH: u32 = 100;
/// Store calls per round when many requests expire at once.
const EXPIRE_ROUNDS: usize = 10;
/// One notification POST, connection included.
pub const POST_TIMEOUT: Duration = Duration::from_secs(5);
/// Upper bound of the wait between two attempts.
pub const MAX_BACKOFF_SECS: i64 = 60;
/// After a wake-up by a queued notification, wait this long so a burst of answers is one round.
const WAKE_COALESCE: Duration = Duration::from_millis(10);

/// Starts the background worker. Every `backchannel.worker_tick_millis` it expires pending
/// back-channel requests whose time is up (the store enqueues their notifications) and
/// leases due outbox items, delivering up to [`MAX_IN_FLIGHT`] at once. An answer that
/// queued a notification (`Event::NotificationQueued` on the hub) wakes it at once, so a
/// push reaches the client without waiting for the tick; front-channel answers queue
/// nothing and leave it asleep.
///
/// The worker holds the state weakly: it stops when every other holder is gone (the server
/// stopped), or when the returned handle is aborted.
///
/// Also starts the key worker (`keys::spawn_key_worker`: rotation on schedule, reload from
/// the store) and the retention purge (`retention::spawn_retention_worker`), which stop
/// the same way.
pub fn spawn_workers(state: AppState) -> tokio::task::JoinHandle<()> {
    crate::keys::spawn_key_worker(state.clone());
    crate::retention::spawn_retention_worker(state.clone());
    let weak = Arc::downgrade(&state.0);
    let tick = Duration::from_millis(u64::from(state.config.backchannel.worker_tick_millis));
    // Watched before the first round, so no answer between the round and the wait is lost;
    // a watch wakes for its event only (not for every challenge and answer of every login).
    let queued = state.hub.watch(Event::NotificationQueued);
    drop(state);
    tokio::spawn(async move {
        let http = match http_client() {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "notification worker not started: HTTP client");
                return;
            }
        };
        let permits = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
        let mut expire = true;
        loop {
            let Some(inner) = weak.upgrade() else { break };
            let s = AppState(inner);
            round(&s, &http, &permits, expire).await;
            drop(s);
            // Woken by a queued notification (one wake-up however many were queued since the
            // round began: the next round serves them all): it is due now; expiry waits for
            // the tick.
            expire = !queued.wait(tick).await;
            if !expire {
                tokio::time::sleep(WAKE_COALESCE).await;
            }
        }
        tracing::debug!("notification worker stopped");
    })
}

fn http_client() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        // A redirect is a failed delivery: the token must go to the registered endpoint only.
        .redirect(reqwest::redirect::Policy::none())
        .timeout(POST_TIMEOUT)
        .connect_timeout(POST_TIMEOUT)
        .build()
}

/// One round: expire, lease, and start the deliveries.
async fn round(s: &AppState, http: &reqwest::Client, permits: &Arc<Semaphore>, expire: bool) {
    let t = now();
    if expire {
        for _ in 0..EXPIRE_ROUNDS {
            match s.store.expire_backchannel(t, EXPIRE_BATCH).await {
                // The store expires each request once, on one node: counted exactly once.
                Ok(ids) if ids.len() >= EXPIRE_BATCH as usize => {
                    crate::telemetry::count_login_timeouts(ids.len() as u64);
                    continue;
                }
                Ok(ids) => {
                    crate::telemetry::count_login_timeouts(ids.len() as u64);
                    break;
                }
                Err(e) => {
                    tracing::error!(error = %e, "expiring back-channel requests failed");
                    break;
                }
            }
        }
    }
    // Lease only what can start now: a leased item waits for no one.
    let free = u32::try_from(permits.available_permits()).unwrap_or(u32::MAX);
    if free == 0 {
        return;
    }
    let items = match s
        .store
        .lease_outbox(t, LEASE_SECS, free.min(LEASE_BATCH))
        .await
    {
        Ok(items) => items,
        Err(e) => {
            tracing::error!(error = %e, "leasing notifications failed");
            return;
        }
    };
    for item in items {
        // Only this loop takes permits, and it leased no more than were free.
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            break;
        };
        let (s, http) = (s.clone(), http.clone());
        tokio::spawn(async move {
            deliver(&s, &http, item).await;
            drop(permit);
        });
    }
}

/// How one attempt ended.
enum Attempt {
    /// The client accepted it (2xx).
    Delivered,
    /// Nothing to deliver, or it can never be delivered: the item is dropped.
    Dropped(&'static str),
    /// Try again later, until `deadline`.
    Failed { why: String, deadline: i64 },
}

/// One delivery attempt of a leased item, and its bookkeeping.
async fn deliver(s: &AppState, http: &reqwest::Client, item: OutboxItem) {
    let outcome = attempt(s, http, &item).await;
    let t = now();
    let done = match outcome {
        Attempt::Delivered => {
            tracing::debug!(
                outbox = item.id,
                attempts = item.attempts + 1,
                "notification delivered"
            );
            s.store.complete_outbox(item.id).await
        }
        Attempt::Dropped(why) => {
            tracing::warn!(outbox = item.id, why, "notification dropped");
            s.store.complete_outbox(item.id).await
        }
        Attempt::Failed { why, deadline } if t >= deadline => {
            tracing::warn!(
                outbox = item.id,
                attempts = item.attempts + 1,
                last_error = %why,
                "notification undeliverable; giving up"
            );
            s.store.complete_outbox(item.id).await
        }
        Attempt::Failed { why, deadline } => {
            let next = (t + backoff_secs(s, item.attempts)).min(deadline);
            tracing::info!(
                outbox = item.id,
                attempts = item.attempts + 1,
                error = %why,
                retry_in = next - t,
                "notification failed; will retry"
            );
            s.store.retry_outbox(item.id, next).await
        }
    };
    if let Err(e) = done {
        // The lease runs out and the item is tried again.
        tracing::error!(outbox = item.id, error = %e, "recording a notification attempt failed");
    }
}

/// `notify_retry_base_secs * 2^attempts`, at most [`MAX_BACKOFF_SECS`].
fn backoff_secs(s: &AppState, attempts: u32) -> i64 {
    let base = i64::from(s.config.backchannel.notify_retry_base_secs.max(1));
    1i64.checked_shl(attempts.min(32))
        .and_then(|f| base.checked_mul(f))
        .map_or(MAX_BACKOFF_SECS, |d| d.min(MAX_BACKOFF_SECS))
}

async fn attempt(s: &AppState, http: &reqwest::Client, item: &OutboxItem) -> Attempt {
    let give_up = i64::from(s.config.backchannel.notify_give_up_secs);
    let mut deadline = item.created_at.saturating_add(give_up);
    let failed = |why: String, deadline: i64| Attempt::Failed { why, deadline };
    let (session, bc) = match s.store.get_backchannel(&item.session_id).await {
        Ok(Some(found)) => found,
        Ok(None) => return Attempt::Dropped("back-channel request not found"),
        Err(e) => return failed(format!("store: {e}"), deadline),
    };
    // SI: "retried with backoff until the request expires" — whichever is later.
    deadline = deadline.max(session.expires_at);
    if !bc.mode.notifies() {
        return Attempt::Dropped("the client polls");
    }
    let Some(endpoint) = bc.notification_endpoint.as_deref() else {
        return Attempt::Dropped("no notification endpoint");
    };
    let label = format!("outbox:{}", item.id);
    let stored = item
        .payload
        .as_deref()
        .and_then(|sealed| match s.keys.open(&label, sealed) {
            Ok(body) => Some(body),
            Err(e) => {
                // Rebuilt below as if it had never been stored (KEK replaced?).
                tracing::error!(outbox = item.id, error = %e, "stored notification unreadable");
                None
            }
        });
    let body = match stored {
        Some(body) => body,
        None => {
            let body = match build_body(s, &session, &bc).await {
                Ok(Some(body)) => body,
                Ok(None) => {
                    return Attempt::Dropped(
                        "request not resolved (its answer or expiry notifies)",
                    );
                }
                Err(Build::Drop(why)) => return Attempt::Dropped(why),
                Err(Build::Retry(why)) => return failed(why, deadline),
            };
            // Stored before the first POST: a retry sends these bytes, never new tokens.
            let sealed = match s.keys.seal(&label, &body) {
                Ok(sealed) => sealed,
                Err(e) => return failed(format!("sealing: {e}"), deadline),
            };
            if let Err(e) = s.store.set_outbox_payload(item.id, &sealed).await {
                return failed(format!("store: {e}"), deadline);
            }
            body
        }
    };
    let mut req = http
        .post(endpoint)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body);
    if let Some(token) = &bc.notification_token {
        // Marked sensitive by reqwest: never printed.
        req = req.bearer_auth(token);
    }
    let req = match req.build() {
        Ok(req) => req,
        Err(_) => return Attempt::Dropped("notification endpoint or token unusable"),
    };
    match http.execute(req).await {
        Ok(resp) if resp.status().is_success() => Attempt::Delivered,
        Ok(resp) => failed(format!("HTTP {}", resp.status().as_u16()), deadline),
        Err(e) => failed(e.without_url().to_string(), deadline),
    }
}

enum Build {
    /// Can never be built (client gone or disabled, inconsistent state).
    Drop(&'static str),
    /// A transient failure (store, signing).
    Retry(String),
}

/// What the request came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    Approved,
    /// Denied; the stored denial kind.
    Denied(String),
    /// Expired: denied with [`STALE_SESSION_ERROR`], or pending past its expiry.
    Expired,
}

/// The outcome of a request at `now`, or `None` while it is still pending.
pub fn resolved(session: &AuthSession, now: i64) -> Option<Resolved> {
    match session.status {
        SessionStatus::AwaitingNumber | SessionStatus::Pending if session.expires_at > now => None,
        SessionStatus::AwaitingNumber | SessionStatus::Pending => Some(Resolved::Expired),
        SessionStatus::Denied => match session.error.as_deref() {
            Some(STALE_SESSION_ERROR) => Some(Resolved::Expired),
            kind => Some(Resolved::Denied(kind.unwrap_or_default().to_owned())),
        },
        SessionStatus::Approved | SessionStatus::CodeIssued | SessionStatus::Consumed => {
            Some(Resolved::Approved)
        }
    }
}

/// The error a refused request is notified with. CIBA push (§12): `access_denied` or
/// `expired_token`. Mobile Connect SI (digest §9.4): `authorization_error` "Subscriber
/// denied the request" / "Subscriber consent waiting time expired"; other denials (PIN
/// locked, authenticator failure) keep their `access_denied` row.
pub fn refusal(kind: BackchannelKind, outcome: &Resolved) -> McError {
    match (kind, outcome) {
        (BackchannelKind::Ciba, Resolved::Expired) => McError::ExpiredToken,
        (BackchannelKind::Si, Resolved::Expired) => McError::SiTimeout,
        (BackchannelKind::Ciba, Resolved::Denied(k)) => denial::to_error(k),
        (BackchannelKind::Si, Resolved::Denied(k)) => match denial::to_error(k) {
            McError::UserDenied => McError::SiDenied,
            McError::AuthenticationTimeout => McError::SiTimeout,
            other => other,
        },
        // Not a refusal; never asked.
        (_, Resolved::Approved) => McError::ServerError,
    }
}

/// The JSON body of a notification. Ping: `{"auth_req_id"}` whatever the outcome (the
/// client polls for it). Push and SI: the tokens (CIBA §10.3.1) or the error (CIBA §12); SI
/// adds the request's `correlation_id`.
pub fn notification_body(
    bc: &BackchannelRecord,
    correlation_id: Option<&str>,
    result: Result<&TokenResponse, &McError>,
) -> Value {
    let mut m = Map::new();
    m.insert("auth_req_id".into(), bc.auth_req_id.clone().into());
    if bc.mode == DeliveryMode::Ping {
        return Value::Object(m);
    }
    if bc.kind == BackchannelKind::Si
        && let Some(c) = correlation_id
    {
        m.insert("correlation_id".into(), c.into());
    }
    match result {
        Ok(t) => {
            m.insert("access_token".into(), t.access_token.clone().into());
            m.insert("token_type".into(), t.token_type.into());
            m.insert("expires_in".into(), t.expires_in.into());
            m.insert("id_token".into(), t.id_token.clone().into());
        }
        Err(e) => {
            m.insert("error".into(), e.code().as_str().into());
            m.insert(
                "error_description".into(),
                e.description().into_owned().into(),
            );
        }
    }
    Value::Object(m)
}

/// Builds the body of a first attempt; `None` while the request is pending. Approved push
/// requests are consumed here and their tokens issued.
async fn build_body(
    s: &AppState,
    session: &AuthSession,
    bc: &BackchannelRecord,
) -> Result<Option<Vec<u8>>, Build> {
    let t = now();
    let Some(outcome) = resolved(session, t) else {
        return Ok(None);
    };
    let store = |e: mc_store::StoreError| Build::Retry(format!("store: {e}"));
    let body = match (bc.mode, &outcome) {
        (DeliveryMode::Push, Resolved::Approved) => {
            let client = s
                .store
                .get_client(&session.client_id)
                .await
                .map_err(store)?
                .ok_or(Build::Drop("client not found"))?;
            if client.status != ClientStatus::Active {
                return Err(Build::Drop("client disabled"));
            }
            let taken = if session.status == SessionStatus::Approved {
                s.store
                    .consume_backchannel(&bc.auth_req_id)
                    .await
                    .map_err(store)?
            } else {
                None
            };
            let session = match taken {
                Some(taken) => taken,
                // Consumed, but no body was stored for it: an earlier attempt issued tokens
                // and then failed (crash, store error) before `set_outbox_payload`. Those
                // tokens never reached the client and cannot be recovered (only their hashes
                // are stored), so they are revoked and fresh ones issued for the body: the
                // login is delivered, never lost silently, and only one set of its tokens
                // stays valid. (A push-mode request cannot be redeemed at the token endpoint,
                // so nobody else consumes it.)
                None => {
                    let (current, _) = s
                        .store
                        .get_backchannel(&bc.auth_req_id)
                        .await
                        .map_err(store)?
                        .ok_or(Build::Drop("back-channel request not found"))?;
                    if current.status != SessionStatus::Consumed {
                        return Err(Build::Drop("request neither approved nor consumed"));
                    }
                    let revoked = s
                        .store
                        .revoke_tokens_of_session(&current.id)
                        .await
                        .map_err(store)?;
                    tracing::warn!(
                        client_id = %current.client_id,
                        revoked,
                        "notification body lost after its tokens were issued; reissuing"
                    );
                    current
                }
            };
            let tokens = issue_tokens(s, &client, &session, t, Some(&bc.auth_req_id))
                .await
                .map_err(|e| Build::Retry(format!("issuing tokens: {e}")))?;
            notification_body(bc, session.correlation_id.as_deref(), Ok(&tokens))
        }
        (DeliveryMode::Push, refused) => {
            let e = refusal(bc.kind, refused);
            notification_body(bc, session.correlation_id.as_deref(), Err(&e))
        }
        (DeliveryMode::Ping, _) => notification_body(bc, None, Err(&McError::ServerError)),
        (DeliveryMode::Poll, _) => return Err(Build::Drop("the client polls")),
    };
    serde_json::to_vec(&body)
        .map(Some)
        .map_err(|e| Build::Retry(format!("serializing: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kind: BackchannelKind, mode: DeliveryMode) -> BackchannelRecord {
        BackchannelRecord {
            auth_req_id: "req-1".into(),
            kind,
            mode,
            notification_endpoint: Some("https://sp.example/cb".into()),
            notification_token: Some("secret".into()),
            interval: 5,
            last_poll_at: None,
        }
    }

    #[test]
    fn ping_carries_the_auth_req_id_only() {
        let b = notification_body(
            &record(BackchannelKind::Ciba, DeliveryMode::Ping),
            Some("c"),
            Err(&McError::UserDenied),
        );
        assert_eq!(b, serde_json::json!({"auth_req_id": "req-1"}));
    }

    #[test]
    fn refusals_use_each_protocols_vocabulary() {
        let si = |o| {
            let e = refusal(BackchannelKind::Si, &o);
            (e.code().as_str(), e.description().into_owned())
        };
        assert_eq!(
            si(Resolved::Denied(denial::USER_DENIED.into())),
            (
                "authorization_error",
                "Subscriber denied the request".into()
            )
        );
        assert_eq!(
            si(Resolved::Expired),
            (
                "authorization_error",
                "Subscriber consent waiting time expired".into()
            )
        );
        assert_eq!(
            si(Resolved::Denied(denial::PIN_LOCKED.into())).0,
            "access_denied"
        );
        let ciba = |o| refusal(BackchannelKind::Ciba, &o).code().as_str();
        assert_eq!(ciba(Resolved::Expired), "expired_token");
        assert_eq!(
            ciba(Resolved::Denied(denial::USER_DENIED.into())),
            "access_denied"
        );
        let body = notification_body(
            &record(BackchannelKind::Si, DeliveryMode::Push),
            Some("corr"),
            Err(&McError::SiDenied),
        );
        assert_eq!(body["correlation_id"], "corr");
        let body = notification_body(
            &record(BackchannelKind::Ciba, DeliveryMode::Push),
            Some("corr"),
            Err(&McError::ExpiredToken),
        );
        assert!(body.get("correlation_id").is_none());
        assert_eq!(body["error"], "expired_token");
    }
}
