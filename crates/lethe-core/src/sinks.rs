//! Delivery targets declared in `[sinks.NAME]` and what each entity sends them.
//!
//! A sink has one *role*: a cache (keys are invalidated), a search index
//! (documents are removed and re-indexed) or an event stream (one CloudEvent per
//! affected row). Entities name what they need: `cache_keys`, `search`,
//! `publish`.

use std::time::Duration;

use crate::template::Template;

/// What a sink does with the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SinkRole {
    Cache,
    Search,
    Events,
}

impl SinkRole {
    pub fn as_str(self) -> &'static str {
        match self {
            SinkRole::Cache => "cache",
            SinkRole::Search => "search",
            SinkRole::Events => "events",
        }
    }

    /// For messages: "a cache", "a search", "an events".
    pub fn with_article(self) -> &'static str {
        match self {
            SinkRole::Cache => "a cache",
            SinkRole::Search => "a search",
            SinkRole::Events => "an events",
        }
    }
}

/// The kind of a sink with its settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkKind {
    Redis {
        url: String,
    },
    Memcached {
        /// `host:port` (a `memcached://` or `tcp://` prefix is accepted).
        address: String,
    },
    Nats {
        url: String,
        subject: Template,
        /// When set, the relay creates this JetStream stream (capturing the
        /// subject pattern) if it does not exist.
        stream: Option<String>,
    },
    RabbitMq {
        url: String,
        exchange: String,
        routing_key: Template,
    },
    Webhook {
        url: String,
        /// Name of the environment variable holding the HMAC-SHA256 secret.
        secret_env: String,
        timeout: Duration,
    },
    File {
        path: String,
    },
    Tantivy {
        path: String,
    },
    /// Elasticsearch and OpenSearch share the `_bulk` / `_mget` API.
    Elasticsearch {
        url: String,
        api_key_env: Option<String>,
        opensearch: bool,
    },
    Meilisearch {
        url: String,
        api_key_env: Option<String>,
    },
}

impl SinkKind {
    pub fn name(&self) -> &'static str {
        match self {
            SinkKind::Redis { .. } => "redis",
            SinkKind::Memcached { .. } => "memcached",
            SinkKind::Nats { .. } => "nats",
            SinkKind::RabbitMq { .. } => "rabbitmq",
            SinkKind::Webhook { .. } => "webhook",
            SinkKind::File { .. } => "file",
            SinkKind::Tantivy { .. } => "tantivy",
            SinkKind::Elasticsearch {
                opensearch: false, ..
            } => "elasticsearch",
            SinkKind::Elasticsearch { .. } => "opensearch",
            SinkKind::Meilisearch { .. } => "meilisearch",
        }
    }

    pub fn role(&self) -> SinkRole {
        match self {
            SinkKind::Redis { .. } | SinkKind::Memcached { .. } => SinkRole::Cache,
            SinkKind::Tantivy { .. }
            | SinkKind::Elasticsearch { .. }
            | SinkKind::Meilisearch { .. } => SinkRole::Search,
            SinkKind::Nats { .. }
            | SinkKind::RabbitMq { .. }
            | SinkKind::Webhook { .. }
            | SinkKind::File { .. } => SinkRole::Events,
        }
    }
}

/// Retry settings of a sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Attempts before a message is `dead`.
    pub max_attempts: u32,
    /// Delay after the first failure; doubles per attempt (with jitter).
    pub initial: Duration,
    /// Upper bound of the delay.
    pub max: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            max_attempts: 12,
            initial: Duration::from_secs(1),
            max: Duration::from_secs(300),
        }
    }
}

/// `[sinks.NAME]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sink {
    pub name: String,
    pub kind: SinkKind,
    pub retry: Retry,
    /// 1-based line of `[sinks.NAME]`.
    pub line: usize,
}

impl Sink {
    pub fn role(&self) -> SinkRole {
        self.kind.role()
    }
}

/// An entity's search document: which sink and index, which columns, and the
/// document id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchTarget {
    pub sink: String,
    pub index: String,
    pub fields: Vec<String>,
    /// The document id, from the row's columns (default: the key, parts
    /// joined with `-`).
    pub id: Template,
}

/// What an entity sends to sinks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delivery {
    /// Cache keys to invalidate when a row is deleted, restored or updated.
    pub cache_keys: Vec<Template>,
    /// The cache sinks the keys live in (all cache sinks unless `cache` says).
    pub cache: Vec<String>,
    pub search: Vec<SearchTarget>,
    /// Event sinks that get one CloudEvent per affected row.
    pub publish: Vec<String>,
}

impl Delivery {
    /// Every sink this entity sends to, each once.
    pub fn sinks(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        let cache = if self.cache_keys.is_empty() {
            &[][..]
        } else {
            &self.cache[..]
        };
        for s in cache
            .iter()
            .chain(self.search.iter().map(|t| &t.sink))
            .chain(self.publish.iter())
        {
            if !out.contains(&s.as_str()) {
                out.push(s);
            }
        }
        out
    }

    /// Columns (beyond the key) that templates and search documents read:
    /// captured with the outbox record at delete time, so a hard-deleted row
    /// can still be invalidated and a restored one re-indexed.
    pub fn captured_columns(&self, key: &[String]) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut add = |c: &str| {
            if !key.iter().any(|k| k == c) && !out.iter().any(|o| o == c) {
                out.push(c.to_string());
            }
        };
        for t in &self.cache_keys {
            t.fields().into_iter().for_each(&mut add);
        }
        for s in &self.search {
            s.id.fields().into_iter().for_each(&mut add);
            s.fields.iter().for_each(|f| add(f));
        }
        out
    }
}

/// `[relay]`: settings of the relay as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayConfig {
    /// The CloudEvents `source` attribute.
    pub source: String,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            source: "lethe".to_string(),
        }
    }
}
