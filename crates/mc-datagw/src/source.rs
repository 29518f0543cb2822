//! Attribute sources and their merge: the Data Gateway asks every source that may hold a
//! needed attribute (concurrently), and for each attribute takes the value of the first
//! source in the configured precedence that has one. A source that fails or is slow only
//! costs its own attributes: the answer has fewer claims and a log line says why.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use async_trait::async_trait;
use mc_core::msisdn::Msisdn;

use crate::attributes::Attributes;
use crate::config::{DatagwConfig, LOCAL};

/// Whom the attributes are about.
#[derive(Debug, Clone)]
pub struct Subject {
    /// The store's id (opaque; what logs and caches use).
    pub subscriber_id: String,
    pub msisdn: Msisdn,
}

/// Why a source gave no answer. The text is for logs: it never holds an MSISDN.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    #[error("timed out")]
    Timeout,
    #[error("unreachable: {0}")]
    Unreachable(String),
    #[error("circuit open")]
    CircuitOpen,
    #[error("bad answer: {0}")]
    BadAnswer(String),
}

/// Somewhere subscriber attributes come from.
#[async_trait]
pub trait AttributeSource: Send + Sync {
    /// The name used in `precedence` and logs.
    fn name(&self) -> &str;
    /// The attributes it can provide (`None`: any).
    fn provides(&self) -> Option<&[String]> {
        None
    }
    /// Everything the source knows about the subject (an empty set when nothing).
    async fn fetch(&self, subject: &Subject) -> Result<Attributes, SourceError>;
}

/// A source that did not answer, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable {
    pub source: String,
    pub reason: SourceError,
}

/// The merged attributes and the sources that were missing from them.
#[derive(Debug, Clone, Default)]
pub struct Gathered {
    pub attributes: Attributes,
    pub unavailable: Vec<Unavailable>,
}

/// The sources in precedence order.
pub struct DataGateway {
    sources: Vec<Arc<dyn AttributeSource>>,
    /// Indexes into `sources`, first wins.
    order: Vec<usize>,
    per_attribute: BTreeMap<String, Vec<usize>>,
}

impl DataGateway {
    /// `sources` must carry the names `config` refers to (`local` and the HTTP sources);
    /// a name without a source is skipped.
    pub fn new(sources: Vec<Arc<dyn AttributeSource>>, config: &DatagwConfig) -> Self {
        let index = |names: &[String]| -> Vec<usize> {
            let mut out: Vec<usize> = names
                .iter()
                .filter_map(|n| sources.iter().position(|s| s.name() == n))
                .collect();
            for i in 0..sources.len() {
                if !out.contains(&i) {
                    out.push(i);
                }
            }
            out
        };
        let mut default: Vec<String> = config.precedence.clone();
        if default.is_empty() {
            default.push(LOCAL.to_owned());
        }
        let order = index(&default);
        let per_attribute = config
            .attribute_precedence
            .iter()
            .map(|(a, names)| (a.clone(), index(names)))
            .collect();
        DataGateway {
            sources,
            order,
            per_attribute,
        }
    }

    pub fn source_names(&self) -> Vec<&str> {
        self.sources.iter().map(|s| s.name()).collect()
    }

    /// Gathers the `needed` attributes of `subject` from every source that may hold one.
    pub async fn gather(&self, subject: &Subject, needed: &BTreeSet<&str>) -> Gathered {
        if needed.is_empty() {
            return Gathered::default();
        }
        let mut tasks = tokio::task::JoinSet::new();
        for (i, source) in self.sources.iter().enumerate() {
            let useful = source
                .provides()
                .is_none_or(|p| p.iter().any(|a| needed.contains(a.as_str())));
            if !useful {
                continue;
            }
            let (source, subject) = (source.clone(), subject.clone());
            tasks.spawn(async move { (i, source.fetch(&subject).await) });
        }
        let mut answers: BTreeMap<usize, Attributes> = BTreeMap::new();
        let mut unavailable = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((i, Ok(a))) => {
                    answers.insert(i, a);
                }
                Ok((i, Err(reason))) => {
                    let source = self.sources[i].name().to_owned();
                    tracing::warn!(
                        source = %source,
                        subscriber = %subject.subscriber_id,
                        reason = %reason,
                        "attribute source unavailable: answering without its attributes"
                    );
                    unavailable.push(Unavailable { source, reason });
                }
                Err(e) => {
                    tracing::error!(error = %e, "attribute source task failed");
                }
            }
        }
        unavailable.sort_by(|a, b| a.source.cmp(&b.source));
        let mut merged = Attributes::default();
        for name in needed {
            let order = self.per_attribute.get(*name).unwrap_or(&self.order);
            if let Some(v) = order
                .iter()
                .find_map(|i| answers.get(i).and_then(|a| a.get(name)))
            {
                merged.insert_if_absent(name, v.clone());
            }
        }
        Gathered {
            attributes: merged,
            unavailable,
        }
    }
}

/// A fixed set of attributes (tests, and a source that is configured inline).
pub struct StaticSource {
    pub name: String,
    pub attributes: Attributes,
}

#[async_trait]
impl AttributeSource for StaticSource {
    fn name(&self) -> &str {
        &self.name
    }

    async fn fetch(&self, _subject: &Subject) -> Result<Attributes, SourceError> {
        Ok(self.attributes.clone())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    struct Down;

    #[async_trait]
    impl AttributeSource for Down {
        fn name(&self) -> &str {
            "down"
        }
        async fn fetch(&self, _s: &Subject) -> Result<Attributes, SourceError> {
            Err(SourceError::Timeout)
        }
    }

    fn fixed(name: &str, doc: serde_json::Value) -> Arc<dyn AttributeSource> {
        Arc::new(StaticSource {
            name: name.into(),
            attributes: Attributes::from_json(&doc).unwrap(),
        })
    }

    fn subject() -> Subject {
        Subject {
            subscriber_id: "s1".into(),
            msisdn: Msisdn::parse("447700900301").unwrap(),
        }
    }

    #[tokio::test]
    async fn merged_per_attribute_by_precedence() {
        let config: DatagwConfig = serde_json::from_value(json!({
            "precedence": ["local", "crm"],
            "attribute_precedence": {"email": ["crm", "local"]},
        }))
        .unwrap();
        let gw = DataGateway::new(
            vec![
                fixed(
                    "crm",
                    json!({"email": "crm@example.com", "given_name": "Crm", "city": "Leeds"}),
                ),
                fixed(
                    "local",
                    json!({"email": "local@example.com", "given_name": "Local"}),
                ),
                Arc::new(Down),
            ],
            &config,
        );
        let needed: BTreeSet<&str> = ["email", "given_name", "city", "country"].into();
        let g = gw.gather(&subject(), &needed).await;
        assert_eq!(g.attributes.text("email"), Some("crm@example.com"));
        assert_eq!(g.attributes.text("given_name"), Some("Local"));
        assert_eq!(g.attributes.text("city"), Some("Leeds"), "only crm has it");
        assert!(!g.attributes.contains("country"));
        assert_eq!(
            g.unavailable,
            vec![Unavailable {
                source: "down".into(),
                reason: SourceError::Timeout
            }]
        );
        assert!(
            gw.gather(&subject(), &BTreeSet::new())
                .await
                .attributes
                .is_empty()
        );
    }
}
