//! Which data subject each exported row belongs to: the row's own key for
//! the subject entity, its `subject_columns`, or the subject reached
//! through the relation graph (parents looked up a page at a time, in their
//! tables or in the archive store). A row that reaches no subject is its
//! own: its personal values get a key of their own.

use std::collections::HashMap;

use lethe_core::graph::{SubjectPath, subject_path};
use lethe_core::{Entity, Relation};
use lethe_sql::cold;
use lethe_store::Engine;
use serde_json::{Map, Value};

use crate::error::Result;

/// Values of `cols` in `row`; `None` when one is missing or NULL.
fn values(row: &Map<String, Value>, cols: &[String]) -> Option<Vec<Value>> {
    cols.iter()
        .map(|c| row.get(c).filter(|v| !v.is_null()).cloned())
        .collect()
}

/// The subject id of each row (`rows`: the full rows, `keys`: their key
/// values, both in the same order).
pub async fn subjects(
    engine: &Engine,
    e: &Entity,
    rows: &[Map<String, Value>],
    keys: &[Vec<Value>],
) -> Result<Vec<String>> {
    let policy = engine.policy();
    let own = |i: usize| engine.subject_id(&format!("row:{}", e.name), &keys[i]);
    let subject = policy.subject.clone().unwrap_or_default();
    let resolved: Vec<Option<Vec<Value>>> = match subject_path(policy, &e.name) {
        None => vec![None; rows.len()],
        Some(SubjectPath::Own) => keys.iter().map(|k| Some(k.clone())).collect(),
        Some(SubjectPath::Columns(cols)) => rows.iter().map(|r| values(r, &cols)).collect(),
        Some(SubjectPath::Relations(path)) => follow(engine, rows, &path).await?,
    };
    Ok(resolved
        .into_iter()
        .enumerate()
        .map(|(i, s)| match s {
            Some(k) => engine.subject_id(&subject, &k),
            None => own(i),
        })
        .collect())
}

/// Walks `path` from `rows` to the subject's key values.
async fn follow(
    engine: &Engine,
    rows: &[Map<String, Value>],
    path: &[Relation],
) -> Result<Vec<Option<Vec<Value>>>> {
    // Each row's current position: the key values of the parent it points
    // at through the next relation.
    let mut at: Vec<Option<Vec<Value>>> =
        rows.iter().map(|r| values(r, &path[0].columns)).collect();
    for (hop, next) in path.iter().skip(1).enumerate() {
        // `path[hop]`'s parent is the entity whose rows hold `next.columns`.
        let parent = &engine.policy().entities[&path[hop].parent];
        let mut wanted: Vec<Vec<Value>> = at.iter().flatten().cloned().collect();
        wanted.sort_by_key(|k| Value::from(k.clone()).to_string());
        wanted.dedup();
        let found = parents(engine, parent, &wanted).await?;
        at = at
            .into_iter()
            .map(|k| {
                let row = found.get(&Value::from(k?).to_string())?;
                values(row, &next.columns)
            })
            .collect();
    }
    Ok(at)
}

/// Rows of `e` by key values, from the table (any state) or else the
/// archive store: key values (as JSON text) -> row.
async fn parents(
    engine: &Engine,
    e: &Entity,
    keys: &[Vec<Value>],
) -> Result<HashMap<String, Map<String, Value>>> {
    let mut out = HashMap::new();
    if keys.is_empty() {
        return Ok(out);
    }
    let d = engine.dialect();
    let list = Value::from(keys.iter().cloned().map(Value::from).collect::<Vec<_>>()).to_string();
    for r in engine
        .db()
        .rows(
            &cold::rows_by_key(d, engine.schema(), e),
            &[Some(list.clone())],
        )
        .await?
    {
        let key: Value = serde_json::from_str(&r.first().cloned().flatten().unwrap_or_default())
            .unwrap_or(Value::Null);
        if let Ok(Value::Object(row)) =
            serde_json::from_str(&r.get(1).cloned().flatten().unwrap_or_default())
        {
            out.insert(key.to_string(), row);
        }
    }
    if out.len() < keys.len() {
        for r in engine
            .db()
            .rows(&cold::stored_by_key(d, e), &[Some(list)])
            .await?
        {
            let key: Map<String, Value> =
                serde_json::from_str(&r.first().cloned().flatten().unwrap_or_default())
                    .unwrap_or_default();
            let Some(vals) = values(&key, &e.key) else {
                continue;
            };
            if let Ok(Value::Object(row)) =
                serde_json::from_str(&r.get(1).cloned().flatten().unwrap_or_default())
            {
                out.entry(Value::from(vals).to_string()).or_insert(row);
            }
        }
    }
    Ok(out)
}
