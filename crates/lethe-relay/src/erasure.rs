//! Verification of an erasure in the caches and search indexes: every
//! cache key and search document of the rows the erasure touched (read
//! from its `erased` outbox records) must be gone from every sink that
//! mirrors the entity.

use lethe_core::SinkRole;
use lethe_store::erasure::Residue;
use lethe_store::{Engine, QueuedMessage};

use crate::any_sink::AnySink;
use crate::message;
use crate::relay::RelayError;

/// What the sinks still hold of erasure deletion `deletion_id`, and the
/// sinks checked (`sink name (n keys/documents)`).
pub async fn sink_residue(
    engine: &Engine,
    deletion_id: &str,
) -> Result<(Vec<Residue>, Vec<String>), RelayError> {
    let policy = engine.policy();
    let records = engine.outbox(deletion_id).await?;
    let mut residue = Vec::new();
    let mut checked = Vec::new();
    for sink in policy.sinks.values() {
        if sink.role() == SinkRole::Events {
            continue;
        }
        let named = |error| RelayError::Sink {
            sink: sink.name.clone(),
            error,
        };
        let mut conn: Option<AnySink> = None;
        let mut total = 0u64;
        // Only what erasure removed must be gone: rows it updated (a
        // reference cleared) stay in caches and indexes under their key.
        for r in records
            .iter()
            .filter(|r| r.event == lethe_sql::erasure::EVENT)
        {
            let Some(e) = policy.entity(&r.entity) else {
                continue;
            };
            let msg = QueuedMessage {
                delivery_id: 0,
                outbox_id: r.id,
                attempts: 0,
                due: true,
                event: r.event.clone(),
                deletion_id: deletion_id.to_string(),
                keys: r.keys.clone(),
                key_columns: r.key_columns.clone(),
                columns: r.columns.clone(),
                created_at: String::new(),
                actor: None,
                reason: None,
                rows: r.rows,
            };
            match sink.role() {
                SinkRole::Cache if e.delivery.cache.contains(&sink.name) => {
                    let keys = message::cache_keys(e, &msg);
                    if keys.is_empty() {
                        continue;
                    }
                    let c = match &mut conn {
                        Some(c) => c,
                        None => conn.insert(AnySink::new(sink).map_err(named)?),
                    };
                    total += keys.len() as u64;
                    let found = c.existing(&keys).await.map_err(named)?;
                    let n = found.iter().filter(|p| **p).count() as u64;
                    if n > 0 {
                        residue.push(Residue {
                            place: format!("cache {}", sink.name),
                            entity: Some(e.name.clone()),
                            what: "cache keys".into(),
                            rows: n,
                        });
                    }
                }
                SinkRole::Search => {
                    for t in e.delivery.search.iter().filter(|t| t.sink == sink.name) {
                        let ids: Vec<String> = message::search_ops(t, &msg)
                            .into_iter()
                            .filter_map(|op| match op {
                                crate::SearchOp::Delete { id } => Some(id),
                                _ => None,
                            })
                            .collect();
                        if ids.is_empty() {
                            continue;
                        }
                        let c = match &mut conn {
                            Some(c) => c,
                            None => conn.insert(AnySink::new(sink).map_err(named)?),
                        };
                        total += ids.len() as u64;
                        let found = c.contains(&t.index, &ids).await.map_err(named)?;
                        let n = found.iter().filter(|p| **p).count() as u64;
                        if n > 0 {
                            residue.push(Residue {
                                place: format!("search {} index {}", sink.name, t.index),
                                entity: Some(e.name.clone()),
                                what: "search documents".into(),
                                rows: n,
                            });
                        }
                    }
                }
                _ => {}
            }
        }
        if total > 0 {
            checked.push(format!("{} ({total})", sink.name));
        }
    }
    Ok((residue, checked))
}
