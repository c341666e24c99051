//! One sink of any kind, built from its policy entry, with the delivery of a
//! run of outbox messages to it.

use std::sync::Arc;

use lethe_core::{Entity, Policy, Sink, SinkKind};
use lethe_store::QueuedMessage;

use crate::message;
use crate::sink::{SinkError, SinkResult};
use crate::sinks;

/// A connected-on-demand sink.
pub enum AnySink {
    Redis(sinks::redis::RedisSink),
    Memcached(sinks::memcached::MemcachedSink),
    Nats(sinks::nats::NatsSink),
    RabbitMq(sinks::rabbitmq::RabbitMqSink),
    Webhook(sinks::webhook::WebhookSink),
    File(sinks::file::FileSink),
    #[cfg(feature = "tantivy")]
    Tantivy(sinks::tantivy::TantivySink),
    Elasticsearch(sinks::elasticsearch::ElasticsearchSink),
    Meilisearch(sinks::meilisearch::MeilisearchSink),
}

impl AnySink {
    /// Builds the sink (nothing connects until the first delivery).
    pub fn new(s: &Sink) -> SinkResult<AnySink> {
        Ok(match &s.kind {
            SinkKind::Redis { url } => AnySink::Redis(sinks::redis::RedisSink::new(url)),
            SinkKind::Memcached { address } => {
                AnySink::Memcached(sinks::memcached::MemcachedSink::new(address))
            }
            SinkKind::Nats {
                url,
                subject,
                stream,
            } => AnySink::Nats(sinks::nats::NatsSink::new(
                url,
                subject.clone(),
                stream.clone(),
            )),
            SinkKind::RabbitMq {
                url,
                exchange,
                routing_key,
            } => AnySink::RabbitMq(sinks::rabbitmq::RabbitMqSink::new(
                url,
                exchange,
                routing_key.clone(),
            )),
            SinkKind::Webhook {
                url,
                secret_env,
                timeout,
            } => AnySink::Webhook(sinks::webhook::WebhookSink::new(url, secret_env, *timeout)),
            SinkKind::File { path } => AnySink::File(sinks::file::FileSink::new(path)),
            #[cfg(feature = "tantivy")]
            SinkKind::Tantivy { path } => AnySink::Tantivy(sinks::tantivy::TantivySink::new(path)),
            #[cfg(not(feature = "tantivy"))]
            SinkKind::Tantivy { .. } => {
                return Err(SinkError::Config(format!(
                    "sink \"{}\": this build of Lethe has no tantivy support (built without the `tantivy` feature)",
                    s.name
                )));
            }
            SinkKind::Elasticsearch {
                url,
                api_key_env,
                opensearch,
            } => AnySink::Elasticsearch(sinks::elasticsearch::ElasticsearchSink::new(
                url,
                api_key_env.as_deref(),
                *opensearch,
            )),
            SinkKind::Meilisearch { url, api_key_env } => AnySink::Meilisearch(
                sinks::meilisearch::MeilisearchSink::new(url, api_key_env.as_deref()),
            ),
        })
    }

    /// Cache sinks: invalidate `keys`.
    pub async fn invalidate(&mut self, keys: &[String]) -> SinkResult<()> {
        match self {
            AnySink::Redis(s) => s.invalidate(keys).await,
            AnySink::Memcached(s) => s.invalidate(keys).await,
            _ => Err(SinkError::Config("not a cache sink".into())),
        }
    }

    /// Cache sinks: which keys exist.
    pub async fn existing(&mut self, keys: &[String]) -> SinkResult<Vec<bool>> {
        match self {
            AnySink::Redis(s) => s.existing(keys).await,
            AnySink::Memcached(s) => s.existing(keys).await,
            _ => Err(SinkError::Config("not a cache sink".into())),
        }
    }

    /// Search sinks: apply `ops` to `index`, in order.
    pub async fn apply(&mut self, index: &str, ops: &[crate::SearchOp]) -> SinkResult<()> {
        if ops.is_empty() {
            return Ok(());
        }
        match self {
            #[cfg(feature = "tantivy")]
            AnySink::Tantivy(s) => s.apply(index, ops).await,
            AnySink::Elasticsearch(s) => s.apply(index, ops).await,
            AnySink::Meilisearch(s) => s.apply(index, ops).await,
            _ => Err(SinkError::Config("not a search sink".into())),
        }
    }

    /// Search sinks: which documents exist.
    pub async fn contains(&mut self, index: &str, ids: &[String]) -> SinkResult<Vec<bool>> {
        match self {
            #[cfg(feature = "tantivy")]
            AnySink::Tantivy(s) => s.contains(index, ids).await,
            AnySink::Elasticsearch(s) => s.contains(index, ids).await,
            AnySink::Meilisearch(s) => s.contains(index, ids).await,
            _ => Err(SinkError::Config("not a search sink".into())),
        }
    }

    /// Event sinks: publish in order.
    pub async fn publish(&mut self, events: &[crate::Event]) -> SinkResult<()> {
        if events.is_empty() {
            return Ok(());
        }
        match self {
            AnySink::Nats(s) => s.publish(events).await,
            AnySink::RabbitMq(s) => s.publish(events).await,
            AnySink::Webhook(s) => s.publish(events).await,
            AnySink::File(s) => s.publish(events).await,
            _ => Err(SinkError::Config("not an event sink".into())),
        }
    }

    /// Delivers a run of messages of one entity to this sink (`name` in
    /// `policy`), as one transport batch, keeping their order.
    pub async fn deliver(
        &mut self,
        policy: &Arc<Policy>,
        name: &str,
        entity: &Entity,
        msgs: &[QueuedMessage],
    ) -> SinkResult<()> {
        let sink = policy.sinks.get(name).ok_or_else(|| {
            SinkError::Config(format!("sink \"{name}\" is no longer in the policy"))
        })?;
        match sink.role() {
            lethe_core::SinkRole::Cache => {
                let keys: Vec<String> = msgs
                    .iter()
                    .flat_map(|m| message::cache_keys(entity, m))
                    .collect();
                self.invalidate(&keys).await
            }
            lethe_core::SinkRole::Search => {
                for t in entity.delivery.search.iter().filter(|t| t.sink == name) {
                    let ops: Vec<crate::SearchOp> = msgs
                        .iter()
                        .flat_map(|m| message::search_ops(t, m))
                        .collect();
                    self.apply(&t.index, &ops).await?;
                }
                Ok(())
            }
            lethe_core::SinkRole::Events => {
                let events: Vec<crate::Event> = msgs
                    .iter()
                    .flat_map(|m| message::events(&policy.relay.source, &entity.name, m))
                    .collect();
                self.publish(&events).await
            }
        }
    }
}
