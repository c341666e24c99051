//! Outbox records -> what each kind of sink needs: cache keys to invalidate,
//! search operations, CloudEvents. Pure functions of the record and the
//! policy, so a redelivery or a replay produces exactly the same work (and
//! the same event ids).

use std::collections::HashMap;

use lethe_core::{Entity, SearchTarget, Template};
use lethe_store::QueuedMessage;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::sink::{Event, SearchOp};

/// A column value as template text; `None` for NULL (a key built from a
/// missing value names nothing).
pub(crate) fn text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

pub fn render(t: &Template, values: &Map<String, Value>) -> Option<String> {
    t.render(|f| values.get(f).and_then(text))
}

/// A message's rows as slices of values (key columns, then captured
/// columns), read in place: no per-row map, no copy.
struct Rows<'a> {
    names: HashMap<&'a str, usize>,
    rows: &'a [Value],
    width: usize,
}

impl<'a> Rows<'a> {
    fn new(msg: &'a QueuedMessage) -> Self {
        let names = msg
            .key_columns
            .iter()
            .chain(msg.columns.iter())
            .enumerate()
            .map(|(i, n)| (n.as_str(), i))
            .collect::<HashMap<_, _>>();
        Rows {
            width: names.len(),
            names,
            rows: msg.keys.as_array().map(Vec::as_slice).unwrap_or_default(),
        }
    }

    fn iter(&self) -> impl Iterator<Item = &'a [Value]> + '_ {
        let width = self.width;
        self.rows.iter().map(move |r| match r {
            Value::Array(a) if width > 1 => a.as_slice(),
            other => std::slice::from_ref(other),
        })
    }

    fn get<'v>(&self, row: &'v [Value], column: &str) -> Option<&'v Value> {
        self.names.get(column).and_then(|&i| row.get(i))
    }

    fn render(&self, t: &Template, row: &[Value]) -> Option<String> {
        t.render(|f| self.get(row, f).and_then(text))
    }
}

/// The cache keys of every row of `msg`, for every template of the entity.
/// Deletes, restores and updates all invalidate: Lethe never writes row
/// values into a cache.
pub fn cache_keys(e: &Entity, msg: &QueuedMessage) -> Vec<String> {
    let rows = Rows::new(msg);
    let mut out = Vec::with_capacity(rows.rows.len() * e.delivery.cache_keys.len());
    for row in rows.iter() {
        for t in &e.delivery.cache_keys {
            if let Some(k) = rows.render(t, row) {
                out.push(k);
            }
        }
    }
    out
}

/// The document of one row for `target`: its search fields.
pub fn document(target: &SearchTarget, values: &Map<String, Value>) -> Map<String, Value> {
    target
        .fields
        .iter()
        .map(|f| (f.clone(), values.get(f).cloned().unwrap_or(Value::Null)))
        .collect()
}

/// Search operations for `target`: a deleted row's document is removed, a
/// restored row's is indexed again from the values captured when it was
/// deleted. Updates (set_null children) do not change documents.
pub fn search_ops(target: &SearchTarget, msg: &QueuedMessage) -> Vec<SearchOp> {
    let rows = Rows::new(msg);
    rows.iter()
        .filter_map(|row| {
            let id = rows.render(&target.id, row)?;
            match msg.event.as_str() {
                // An erased row's document goes, as a deleted one's does
                // (and an anonymized row's: it held the original values).
                "deleted" | "erased" => Some(SearchOp::Delete { id }),
                "restored" => Some(SearchOp::Upsert {
                    id,
                    doc: target
                        .fields
                        .iter()
                        .map(|f| (f.clone(), rows.get(row, f).cloned().unwrap_or(Value::Null)))
                        .collect(),
                }),
                _ => None,
            }
        })
        .collect()
}

/// `entity/k1[/k2...]`: the CloudEvents subject of a row.
pub fn subject(entity: &str, key: &Map<String, Value>) -> String {
    let parts: Vec<String> = key
        .values()
        .map(|v| text(v).unwrap_or_else(|| "null".into()))
        .collect();
    format!("{entity}/{}", parts.join("/"))
}

/// The stable id of a row's event: the same for every redelivery and replay
/// of the outbox record, different for every record and row.
pub fn event_id(msg: &QueuedMessage, key: &Map<String, Value>) -> String {
    let mut h = Sha256::new();
    h.update(msg.deletion_id.as_bytes());
    h.update(b"/");
    h.update(msg.outbox_id.to_string().as_bytes());
    h.update(b"/");
    h.update(Value::Object(key.clone()).to_string().as_bytes());
    let d = hex::encode(h.finalize());
    // UUID-shaped, which many consumers expect of an id.
    format!(
        "{}-{}-{}-{}-{}",
        &d[0..8],
        &d[8..12],
        &d[12..16],
        &d[16..20],
        &d[20..32]
    )
}

/// One CloudEvents 1.0 event (structured JSON) per row of `msg`.
pub fn events(source: &str, entity: &str, msg: &QueuedMessage) -> Vec<Event> {
    let rows = Rows::new(msg);
    let event_type = format!("lethe.{}", msg.event);
    rows.iter()
        .map(|row| {
            let key: Map<String, Value> = msg
                .key_columns
                .iter()
                .cloned()
                .zip(row.iter().cloned())
                .collect();
            let id = event_id(msg, &key);
            let ce = json!({
                "specversion": "1.0",
                "id": id,
                "source": source,
                "type": event_type,
                "subject": subject(entity, &key),
                "time": msg.created_at,
                "datacontenttype": "application/json",
                "data": {
                    "entity": entity,
                    "key": key,
                    "deletion_id": msg.deletion_id,
                    "actor": msg.actor,
                    "reason": msg.reason,
                },
            });
            Event {
                id,
                entity: entity.to_string(),
                event: msg.event.clone(),
                json: ce.to_string(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(event: &str, keys: Value, cols: &[&str]) -> QueuedMessage {
        QueuedMessage {
            delivery_id: 1,
            outbox_id: 7,
            attempts: 0,
            due: true,
            event: event.into(),
            deletion_id: "0190aaaa-0000-7000-8000-000000000001".into(),
            keys,
            key_columns: vec!["id".into()],
            columns: cols.iter().map(|c| c.to_string()).collect(),
            created_at: "2026-11-23T10:00:00.000000Z".into(),
            actor: Some("ops".into()),
            reason: None,
            rows: 2,
        }
    }

    fn products() -> lethe_core::Policy {
        lethe_core::parse_policy(
            r#"
[sinks.cache]
kind = "redis"
url = "redis://127.0.0.1/"
[sinks.search]
kind = "tantivy"
path = "idx"
[entities.products]
key = ["id"]
cache_keys = ["product:{id}", "product:sku:{sku}"]
search = { sink = "search", index = "products", fields = ["name"] }
"#,
            "t.toml",
        )
        .unwrap()
    }

    #[test]
    fn cache_keys_use_captured_columns_and_skip_nulls() {
        let p = products();
        let e = p.entity("products").unwrap();
        assert_eq!(e.captured_columns(), vec!["sku", "name"]);
        let m = msg(
            "deleted",
            json!([[1, "A-1", "Dune"], [2, null, "Emma"]]),
            &["sku", "name"],
        );
        assert_eq!(
            cache_keys(e, &m),
            vec!["product:1", "product:sku:A-1", "product:2"]
        );
    }

    #[test]
    fn search_ops_follow_the_event() {
        let p = products();
        let t = &p.entity("products").unwrap().delivery.search[0];
        let rows = json!([[1, "A-1", "Dune"]]);
        assert_eq!(
            search_ops(t, &msg("deleted", rows.clone(), &["sku", "name"])),
            vec![SearchOp::Delete { id: "1".into() }]
        );
        let up = search_ops(t, &msg("restored", rows.clone(), &["sku", "name"]));
        assert_eq!(
            up,
            vec![SearchOp::Upsert {
                id: "1".into(),
                doc: json!({"name": "Dune"}).as_object().unwrap().clone()
            }]
        );
        assert!(search_ops(t, &msg("updated", rows, &["sku", "name"])).is_empty());
    }

    #[test]
    fn events_are_cloudevents_with_stable_distinct_ids() {
        let m = msg("deleted", json!([5, 6]), &[]);
        let a = events("shop", "products", &m);
        let b = events("shop", "products", &m);
        assert_eq!(a, b, "same record, same events");
        assert_ne!(a[0].id, a[1].id);
        let v: Value = serde_json::from_str(&a[0].json).unwrap();
        assert_eq!(v["specversion"], "1.0");
        assert_eq!(v["type"], "lethe.deleted");
        assert_eq!(v["subject"], "products/5");
        assert_eq!(v["data"]["key"], json!({"id": 5}));
        assert_eq!(v["data"]["actor"], "ops");
        let mut other = m.clone();
        other.outbox_id = 8;
        assert_ne!(events("shop", "products", &other)[0].id, a[0].id);
    }
}
