//! An operator back-end asked over HTTP, behind a timeout, a circuit breaker and a TTL
//! cache (see [`crate::config::HttpSourceConfig`] for the wire contract).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;

use crate::attributes::Attributes;
use crate::breaker::{BreakerState, CircuitBreaker};
use crate::cache::TtlCache;
use crate::clock::Clock;
use crate::config::HttpSourceConfig;
use crate::source::{AttributeSource, SourceError, Subject};

/// Largest answer read from a back-end.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

pub struct HttpSource {
    config: HttpSourceConfig,
    client: reqwest::Client,
    breaker: CircuitBreaker,
    cache: TtlCache<Attributes>,
}

impl HttpSource {
    pub fn new(config: HttpSourceConfig, clock: Arc<dyn Clock>) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(config.timeout_ms))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("datagw source {}: {e}", config.name))?;
        Ok(HttpSource {
            breaker: CircuitBreaker::new(
                config.failure_threshold,
                Duration::from_secs(config.open_secs),
                clock.clone(),
            ),
            cache: TtlCache::new(
                Duration::from_secs(config.cache_ttl_secs),
                config.cache_max_entries,
                clock,
            ),
            client,
            config,
        })
    }

    pub fn breaker_state(&self) -> BreakerState {
        self.breaker.state()
    }

    async fn call(&self, subject: &Subject) -> Result<Attributes, SourceError> {
        let mut req = self.client.post(&self.config.url).json(&json!({
            "subscriber_id": subject.subscriber_id,
            "msisdn": subject.msisdn.as_str(),
        }));
        if let Some(t) = &self.config.bearer_token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.map_err(|e| {
            if e.is_timeout() {
                SourceError::Timeout
            } else {
                SourceError::Unreachable(without_url(&e))
            }
        })?;
        let status = resp.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(Attributes::default());
        }
        if !status.is_success() {
            return Err(SourceError::BadAnswer(format!("HTTP {}", status.as_u16())));
        }
        let body = resp.bytes().await.map_err(|e| {
            if e.is_timeout() {
                SourceError::Timeout
            } else {
                SourceError::Unreachable(without_url(&e))
            }
        })?;
        if body.len() > MAX_ANSWER_BYTES {
            return Err(SourceError::BadAnswer("answer too large".into()));
        }
        let doc: serde_json::Value =
            serde_json::from_slice(&body).map_err(|_| SourceError::BadAnswer("not JSON".into()))?;
        if !doc.is_object() {
            return Err(SourceError::BadAnswer("not a JSON object".into()));
        }
        let (attributes, dropped) = Attributes::from_json_lenient(&doc);
        if !dropped.is_empty() {
            tracing::warn!(source = %self.config.name, dropped = ?dropped, "attribute source sent unknown or invalid attributes; ignored");
        }
        Ok(attributes)
    }
}

/// The kind of a transport failure, for logs (reqwest's own text carries the URL).
fn without_url(e: &reqwest::Error) -> String {
    if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "body could not be read"
    } else if e.is_request() {
        "request failed"
    } else {
        "transport error"
    }
    .to_owned()
}

#[async_trait]
impl AttributeSource for HttpSource {
    fn name(&self) -> &str {
        &self.config.name
    }

    fn provides(&self) -> Option<&[String]> {
        (!self.config.provides.is_empty()).then_some(self.config.provides.as_slice())
    }

    async fn fetch(&self, subject: &Subject) -> Result<Attributes, SourceError> {
        if let Some(hit) = self.cache.get(&subject.subscriber_id) {
            return Ok(hit);
        }
        if !self.breaker.allow() {
            return Err(SourceError::CircuitOpen);
        }
        match self.call(subject).await {
            Ok(a) => {
                self.breaker.record_success();
                self.cache.put(&subject.subscriber_id, a.clone());
                Ok(a)
            }
            Err(e) => {
                self.breaker.record_failure();
                Err(e)
            }
        }
    }
}
