//! The embedded search index (tantivy): one index directory per `index` name
//! under the sink's `path`. Documents have three fields: `id` (exact, the
//! document id from the entity's `search.id` template), `doc` (a JSON object
//! of the entity's search fields, stored and indexed by path: `doc.name:dune`)
//! and `text` (every field value, the default field of a query), so entities
//! with different fields need no schema change.
//!
//! An index directory takes one writer at a time: run one relay process per
//! tantivy sink (other sinks take several); within a process every sink on
//! the same path shares one writer. Work runs on tokio's blocking pool
//! because tantivy's commit syncs files.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};
use tantivy::collector::{Count, TopDocs};
use tantivy::query::{QueryParser, TermQuery};
use tantivy::schema::{Field, IndexRecordOption, STORED, STRING, Schema, TEXT, Value as _};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};

use crate::sink::{SearchOp, SinkError, SinkResult};

struct Open {
    index: Index,
    writer: IndexWriter,
    reader: IndexReader,
    id: Field,
    doc: Field,
    text: Field,
}

pub struct TantivySink {
    path: PathBuf,
    open: Shared,
}

fn err(e: impl std::fmt::Display) -> SinkError {
    SinkError::Unavailable(format!("tantivy: {e}"))
}

fn schema() -> (Schema, Field, Field, Field) {
    let mut b = Schema::builder();
    let id = b.add_text_field("id", STRING | STORED);
    let doc = b.add_json_field("doc", TEXT | STORED);
    let text = b.add_text_field("text", TEXT);
    (b.build(), id, doc, text)
}

fn open(dir: &Path) -> SinkResult<Open> {
    std::fs::create_dir_all(dir).map_err(|e| err(format!("{}: {e}", dir.display())))?;
    let (schema, id, doc, text) = schema();
    let mmap = tantivy::directory::MmapDirectory::open(dir).map_err(err)?;
    let index = Index::open_or_create(mmap, schema).map_err(|e| {
        SinkError::Config(format!(
            "{}: not a Lethe search index ({e}); move it away and run `lethe reconcile --fix` to rebuild it",
            dir.display()
        ))
    })?;
    let writer = index.writer_with_num_threads(1, 32_000_000).map_err(|e| {
        err(format!(
            "{}: {e} (is another relay writing this index?)",
            dir.display()
        ))
    })?;
    let reader = index
        .reader_builder()
        .reload_policy(ReloadPolicy::Manual)
        .try_into()
        .map_err(err)?;
    Ok(Open {
        index,
        writer,
        reader,
        id,
        doc,
        text,
    })
}

/// Index names become directory names: keep them to safe characters.
fn dir_name(index: &str) -> SinkResult<&str> {
    if !index.is_empty()
        && index
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
        && !index.starts_with('.')
    {
        Ok(index)
    } else {
        Err(SinkError::Config(format!(
            "index name \"{index}\" must use only letters, digits, '_', '-' and '.'"
        )))
    }
}

/// Open indexes per sink path, shared by every `TantivySink` of the process:
/// an index directory takes one writer at a time, and relay workers (and the
/// demo's searches) each build their own sink.
type Shared = Arc<Mutex<HashMap<String, Open>>>;
static OPEN: std::sync::OnceLock<Mutex<HashMap<PathBuf, Shared>>> = std::sync::OnceLock::new();

impl TantivySink {
    pub fn new(path: &str) -> Self {
        let path = PathBuf::from(path);
        let open = OPEN
            .get_or_init(Default::default)
            .lock()
            .map(|mut m| m.entry(path.clone()).or_default().clone())
            .unwrap_or_default();
        TantivySink { path, open }
    }

    /// Runs `f` on the open index `index` (opened on first use) on the
    /// blocking pool.
    async fn with<T: Send + 'static>(
        &self,
        index: &str,
        f: impl FnOnce(&mut Open) -> SinkResult<T> + Send + 'static,
    ) -> SinkResult<T> {
        let dir = self.path.join(dir_name(index)?);
        let key = index.to_string();
        let open = self.open.clone();
        tokio::task::spawn_blocking(move || {
            let mut map = open.lock().map_err(|_| err("index lock poisoned"))?;
            if !map.contains_key(&key) {
                map.insert(key.clone(), self::open(&dir)?);
            }
            let o = map.get_mut(&key).expect("just inserted");
            let r = f(o);
            if r.is_err() {
                // Start from a fresh writer next time.
                map.remove(&key);
            }
            r
        })
        .await
        .map_err(err)?
    }

    /// Applies the operations in order and commits once.
    pub async fn apply(&mut self, index: &str, ops: &[SearchOp]) -> SinkResult<()> {
        let ops = ops.to_vec();
        self.with(index, move |o| {
            for op in &ops {
                o.writer.delete_term(Term::from_field_text(o.id, op.id()));
                if let SearchOp::Upsert { id, doc } = op {
                    let mut d = TantivyDocument::default();
                    d.add_text(o.id, id);
                    for v in doc.values() {
                        match v {
                            Value::String(s) => d.add_text(o.text, s),
                            Value::Null => {}
                            other => d.add_text(o.text, other.to_string()),
                        }
                    }
                    d.add_object(
                        o.doc,
                        doc.iter()
                            .map(|(k, v)| (k.clone(), tantivy::schema::OwnedValue::from(v.clone())))
                            .collect(),
                    );
                    o.writer.add_document(d).map_err(err)?;
                }
            }
            o.writer.commit().map_err(err)?;
            o.reader.reload().map_err(err)?;
            Ok(())
        })
        .await
    }

    /// Which of `ids` are in the index.
    pub async fn contains(&mut self, index: &str, ids: &[String]) -> SinkResult<Vec<bool>> {
        let ids = ids.to_vec();
        self.with(index, move |o| {
            let searcher = o.reader.searcher();
            ids.iter()
                .map(|id| {
                    let q =
                        TermQuery::new(Term::from_field_text(o.id, id), IndexRecordOption::Basic);
                    searcher.search(&q, &Count).map(|n| n > 0).map_err(err)
                })
                .collect()
        })
        .await
    }

    /// Full-text search over the documents' fields: the ids of the best
    /// matches (for `lethe search` style checks and the demo).
    pub async fn search(
        &mut self,
        index: &str,
        query: &str,
        limit: usize,
    ) -> SinkResult<Vec<(String, Map<String, Value>)>> {
        let query = query.to_string();
        self.with(index, move |o| {
            let parser = QueryParser::for_index(&o.index, vec![o.text]);
            let q = parser
                .parse_query(&query)
                .map_err(|e| SinkError::Config(format!("bad query \"{query}\": {e}")))?;
            let searcher = o.reader.searcher();
            let top = searcher
                .search(&q, &TopDocs::with_limit(limit.max(1)).order_by_score())
                .map_err(err)?;
            let mut out = Vec::new();
            for (_, addr) in top {
                let d: TantivyDocument = searcher.doc(addr).map_err(err)?;
                let id = d
                    .get_first(o.id)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_string();
                let fields = match d
                    .get_first(o.doc)
                    .map(|v| serde_json::to_value(tantivy::schema::OwnedValue::from(v)))
                {
                    Some(Ok(Value::Object(m))) => m,
                    _ => Map::new(),
                };
                out.push((id, fields));
            }
            Ok(out)
        })
        .await
    }
}
