//! Erasure requests (GDPR Art. 17) on the database: create a request with
//! its steps, run the table step (every table and the archive store in one
//! transaction, with the cold-storage data key shredded, the deletion
//! record, audit entry, outbox records and ledger entry), follow the sinks'
//! deliveries, record manual confirmations, and scan for residue.
//!
//! What lies outside the database (exported files, caches, search indexes)
//! is checked by `lethe-cold` and `lethe-relay`; `lethe-erasure` runs a
//! request from start to end.
//!
//! A request never stores the subject's key: it names the subject by the
//! keyed hash of its key (`subject`) and by its cold-storage subject id
//! (`data_key`). A step that runs again after a failure finds the subject
//! by that hash.

use std::collections::{BTreeMap, BTreeSet};

use lethe_core::erasure::Erase;
use lethe_core::{ErasurePlan, KeyValue, SinkKind, plan_erasure};
use lethe_sql::erasure::{
    ErasureSql, SubjectBy, render_erasure, stored_entities, subject_hash, unsupported_rules,
};
use lethe_sql::{cold, erasures as q, queries};
use serde::Serialize;
use serde_json::{Value, json};

use crate::audit;
use crate::db::{Bindings, Tx, col};
use crate::engine::{Engine, now_text, with_retries};
use crate::error::{Result, StoreError};
use crate::hmac::pads_hex;

/// A request to erase one data subject.
#[derive(Debug, Clone, Default)]
pub struct EraseRequest {
    /// The subject entity (`[erasure] subject`).
    pub entity: String,
    /// The subject's key as a user writes it.
    pub key: String,
    /// The caller's id for the request (a ticket number); one is made when
    /// missing. A second request with the same id returns the first.
    pub request_id: Option<String>,
    pub actor: Option<String>,
    /// Why (e.g. "GDPR Art. 17 request of 2026-11-30"). Must not hold PII.
    pub reason: Option<String>,
}

/// Rows of one entity in one place (`active`, `deleted` in its table,
/// `stored` in the archive store).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlaceCount {
    pub entity: String,
    pub place: String,
    pub rows: u64,
}

/// What erasure does to one entity, and to how many rows.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EntityErasure {
    pub entity: String,
    pub table: String,
    pub action: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub legal_basis: Option<String>,
    pub active: u64,
    pub deleted: u64,
    pub stored: u64,
}

/// One row a dry run found.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PreviewRow {
    pub entity: String,
    pub place: String,
    pub key: Value,
}

/// What an erasure would do. Changes nothing.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErasurePreview {
    pub entity: String,
    pub key: Value,
    pub entities: Vec<EntityErasure>,
    /// Every row the erasure would touch, by entity and place.
    pub rows: Vec<PreviewRow>,
    /// Sinks that would receive `lethe.erased` for the touched rows.
    pub sinks: Vec<String>,
    /// Whether exported files hold PII sealed with the subject's data key
    /// (it would be destroyed).
    pub data_key: bool,
}

/// One step of a request.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErasureStepRecord {
    pub seq: i64,
    pub name: String,
    /// `table`, `archive`, `cold`, `sink`, `third_party` or `verify`.
    pub kind: String,
    /// `pending`, `done`, `waiting`, `confirmed` or `failed`.
    pub state: String,
    pub detail: Value,
    pub updated_at: String,
}

/// What a completed table step wrote to its request: the request's
/// deletion record, PII hashes and summary, and its steps now `done`.
struct TablesDone {
    deletion_id: String,
    hashes: Vec<String>,
    summary: Value,
    /// Step name -> detail.
    steps: serde_json::Map<String, Value>,
    now: String,
}

impl TablesDone {
    /// `rec` (as it was before the step) as the step left it stored: what
    /// `q::set_steps` and `q::record_tables` write.
    fn applied_to(self, mut rec: ErasureRecord) -> ErasureRecord {
        for step in &mut rec.steps {
            if let Some(detail) = self.steps.get(&step.name) {
                step.state = "done".into();
                step.detail = detail.clone();
                step.updated_at = self.now.clone();
            }
        }
        rec.deletion_id = Some(self.deletion_id);
        rec.pii_hashes = self.hashes;
        rec.summary = self.summary;
        rec.state = "in_progress".into();
        rec.updated_at = self.now;
        rec
    }
}

/// An erasure request as stored, with its steps.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErasureRecord {
    pub id: String,
    pub request_id: String,
    pub entity: String,
    /// Keyed hash of the subject's key.
    pub subject: String,
    pub actor: Option<String>,
    pub reason: Option<String>,
    /// `pending`, `in_progress`, `completed` or `failed`.
    pub state: String,
    pub created_at: String,
    pub updated_at: String,
    pub completed_at: Option<String>,
    pub error: Option<String>,
    /// The deletion record of the table step.
    pub deletion_id: Option<String>,
    pub summary: Value,
    pub verification: Option<Value>,
    pub certificate: Option<Value>,
    pub certificate_hash: Option<String>,
    pub steps: Vec<ErasureStepRecord>,
    #[serde(skip)]
    pub data_key: String,
    #[serde(skip)]
    pub pii_hashes: Vec<String>,
}

impl ErasureRecord {
    /// A new request, as stored: pending since now, its summary `{}`, no
    /// steps yet ([`Engine::pending_steps`]).
    fn pending(
        id: String,
        request_id: String,
        entity: &str,
        subject: String,
        data_key: String,
        actor: Option<String>,
        reason: Option<String>,
    ) -> ErasureRecord {
        let now = now_text().1;
        ErasureRecord {
            id,
            request_id,
            entity: entity.to_string(),
            subject,
            // Empty text is stored as NULL.
            actor: actor.filter(|s| !s.is_empty()),
            reason: reason.filter(|s| !s.is_empty()),
            state: "pending".into(),
            created_at: now.clone(),
            updated_at: now,
            completed_at: None,
            error: None,
            deletion_id: None,
            summary: json!({}),
            verification: None,
            certificate: None,
            certificate_hash: None,
            steps: Vec::new(),
            data_key,
            pii_hashes: Vec::new(),
        }
    }

    fn from_row(r: &[Option<String>]) -> ErasureRecord {
        let opt = |i: usize| Some(col(r, i)).filter(|s| !s.is_empty());
        let json =
            |i: usize| -> Option<Value> { opt(i).and_then(|s| serde_json::from_str(&s).ok()) };
        ErasureRecord {
            id: col(r, 0),
            request_id: col(r, 1),
            entity: col(r, 2),
            subject: col(r, 3),
            data_key: col(r, 4),
            actor: opt(5),
            reason: opt(6),
            state: col(r, 7),
            created_at: col(r, 8),
            updated_at: col(r, 9),
            completed_at: opt(10),
            error: opt(11),
            deletion_id: opt(12),
            pii_hashes: opt(13)
                .and_then(|s| serde_json::from_str(&s).ok())
                .unwrap_or_default(),
            summary: json(14).unwrap_or(Value::Null),
            verification: json(15),
            certificate: json(16),
            certificate_hash: opt(17),
            steps: Vec::new(),
        }
    }

    pub fn step(&self, name: &str) -> Option<&ErasureStepRecord> {
        self.steps.iter().find(|s| s.name == name)
    }

    /// Steps not yet done or confirmed (the verification step aside).
    pub fn open_steps(&self) -> Vec<&ErasureStepRecord> {
        self.steps
            .iter()
            .filter(|s| s.kind != "verify" && !matches!(s.state.as_str(), "done" | "confirmed"))
            .collect()
    }
}

/// What the database scan of [`Engine::erasure_scan`] found.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Residue {
    /// Where: `table users`, `archive store`, `outbox`, a file path, a sink.
    pub place: String,
    pub entity: Option<String>,
    /// What was found: `subject rows`, `original values`, `data key`, ...
    pub what: String,
    pub rows: u64,
}

/// The database half of a verification.
#[derive(Debug, Clone, Serialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DbScan {
    pub residue: Vec<Residue>,
    /// Rows of kept entities still there, on purpose, with their basis.
    pub kept: Vec<EntityErasure>,
    /// Places scanned (tables, Lethe's own tables).
    pub scanned: Vec<String>,
}

/// One ledger entry: what to erase again after a restore from backup.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LedgerEntry {
    pub seq: i64,
    pub erasure_id: String,
    pub entity: String,
    /// Keyed hash of the subject's key.
    pub subject: String,
    /// The cold-storage subject id (its data key is destroyed again).
    pub data_key: String,
    pub actions: Value,
    pub erased_at: String,
    /// The keyed hash of a fixed text under the hash key of the database
    /// the entry comes from: `subject` can only be found again where the
    /// hash key is the same (a restore of that database), and reapply
    /// refuses entries whose check differs.
    #[serde(default)]
    pub key_check: String,
}

/// What [`LedgerEntry::key_check`] hashes.
const KEY_CHECK_TEXT: &str = "lethe erasure ledger key check";

/// Names of the fixed steps.
pub const STEP_ARCHIVE: &str = "archive store";
pub const STEP_COLD: &str = "cold storage keys";
pub const STEP_VERIFY: &str = "verification";

type Row = Vec<Option<String>>;

/// What the table step found before it changed anything: the rows of
/// [`ErasureSql::held`] (by statements only), [`ErasureSql::blocked`],
/// [`ErasureSql::counts`] and (from [`ErasureSql::step`] only)
/// [`ErasureSql::pii_hashes`].
struct Found {
    held: Vec<Row>,
    blocked: Vec<Row>,
    counts: Vec<Row>,
    hashes: Vec<String>,
}

impl Found {
    /// Sorts the `(what, a, b, c, d)` rows of [`ErasureSql::step`].
    fn from_step(rows: Vec<Row>) -> Found {
        let mut f = Found {
            held: Vec::new(),
            blocked: Vec::new(),
            counts: Vec::new(),
            hashes: Vec::new(),
        };
        for r in rows {
            let rest = r[1.min(r.len())..].to_vec();
            match col(&r, 0).as_str() {
                "blocked" => f.blocked.push(rest),
                "count" => f.counts.push(rest),
                "hash" => f.hashes.push(col(&r, 1)),
                _ => {}
            }
        }
        f
    }
}

fn table_step(entity: &str) -> String {
    format!("table:{entity}")
}

fn sink_step(sink: &str) -> String {
    format!("sink:{sink}")
}

impl Engine {
    /// The erasure plan of the policy, checked against the schema, starting
    /// from `entity`.
    fn erasure_plan(&self, entity: &str) -> Result<ErasurePlan> {
        let policy = self.policy();
        let plan = plan_erasure(policy)?;
        if plan.subject != entity {
            if policy.entity(entity).is_none() {
                return Err(lethe_core::plan::unknown_entity(policy, entity).into());
            }
            return Err(StoreError::Invalid(format!(
                "erasure starts from the subject entity \"{}\" ([erasure] subject), not \"{entity}\": give the key of the person whose data goes",
                plan.subject
            )));
        }
        for s in &plan.steps {
            let e = &policy.entities[&s.entity];
            if self.schema().table(&e.table).is_none() {
                return Err(lethe_core::CoreError::missing_table(&e.table, &e.name).into());
            }
        }
        if let Some((at, why)) = unsupported_rules(policy, self.schema(), &plan).first() {
            return Err(StoreError::Invalid(format!("cannot anonymize {at}: {why}")));
        }
        Ok(plan)
    }

    /// The SQL of `plan`, finding the subject `by` its key or its hash.
    /// `stored`: as [`render_erasure`]'s (`None` outside the table step).
    fn erasure_sql(
        &self,
        plan: &ErasurePlan,
        by: SubjectBy,
        stored: Option<&BTreeSet<String>>,
    ) -> ErasureSql {
        render_erasure(
            self.dialect(),
            self.policy(),
            self.schema(),
            plan,
            by,
            stored,
        )
    }

    /// Values for erasure statements: the subject's key (when known), the
    /// HMAC pads, the hashes to look for and the subject's hash.
    fn erasure_bindings(
        &self,
        key: Option<&KeyValue>,
        hashes: &[String],
        subject: &str,
    ) -> Bindings {
        let (ipad, opad) = pads_hex(&self.hash_key);
        Bindings {
            deletion_id: uuid::Uuid::now_v7().to_string(),
            now: now_text().1,
            key: key.map(|k| k.values.clone()).unwrap_or_default(),
            values: vec![
                ipad,
                opad,
                serde_json::to_string(hashes).unwrap_or_default(),
                subject.to_string(),
            ],
        }
    }

    async fn scope(&self, tx: &mut Tx, sql: &ErasureSql, b: &Bindings) -> Result<()> {
        tx.exec_batch(&sql.scope, b).await
    }

    async fn cleanup(&self, tx: &mut Tx, sql: &ErasureSql) -> Result<()> {
        tx.exec_batch(&sql.cleanup, &Bindings::default()).await
    }

    /// Per entity, its action and its rows in scope.
    async fn erasure_counts(
        &self,
        tx: &mut Tx,
        plan: &ErasurePlan,
        sql: &ErasureSql,
        b: &Bindings,
    ) -> Result<Vec<EntityErasure>> {
        let rows = tx.rows_stmt(&sql.counts, b).await?;
        Ok(self.erasure_entities(plan, &rows))
    }

    /// [`Engine::erasure_counts`] from the rows of [`ErasureSql::counts`].
    fn erasure_entities(&self, plan: &ErasurePlan, rows: &[Row]) -> Vec<EntityErasure> {
        let mut counts: BTreeMap<String, [u64; 3]> = BTreeMap::new();
        for r in rows {
            let n = |i: usize| col(r, i).parse::<u64>().unwrap_or(0);
            let (rows, deleted) = (n(1), n(2));
            counts.insert(col(r, 0), [rows - deleted.min(rows), deleted, n(3)]);
        }
        let get = |e: &str, p: &str| {
            let i = match p {
                "active" => 0,
                "deleted" => 1,
                _ => 2,
            };
            counts.get(e).map_or(0, |c| c[i])
        };
        plan.steps
            .iter()
            .rev()
            .map(|s| EntityErasure {
                entity: s.entity.clone(),
                table: self.policy().entities[&s.entity].table.clone(),
                action: s.action.as_str().to_string(),
                legal_basis: match &s.action {
                    Erase::Keep { legal_basis } => Some(legal_basis.clone()),
                    _ => None,
                },
                active: get(&s.entity, "active"),
                deleted: get(&s.entity, "deleted"),
                stored: get(&s.entity, "stored"),
            })
            .collect()
    }

    /// The sinks that receive the erased rows of `plan`.
    fn erasure_sinks(&self, plan: &ErasurePlan) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for (entity, sink) in self.policy().routes() {
            let erased = plan
                .step(&entity)
                .is_some_and(|s| !matches!(s.action, Erase::Keep { .. }));
            if erased && !out.iter().any(|(s, _)| *s == sink) {
                let kind = match self.policy().sinks.get(&sink).map(|s| &s.kind) {
                    Some(SinkKind::Webhook { .. }) => "third_party",
                    _ => "sink",
                };
                out.push((sink, kind.to_string()));
            }
        }
        out
    }

    /// The subject's data-key id in cold storage (as `lethe archive export`
    /// names it).
    fn data_key_of(&self, entity: &str, key: &KeyValue) -> String {
        let typed = self.key_json(entity, key, false);
        let values: Vec<Value> = self.policy().entities[entity]
            .key
            .iter()
            .map(|k| typed.get(k).cloned().unwrap_or(Value::Null))
            .collect();
        self.subject_id(entity, &values)
    }

    /// What erasing `entity` `key` would touch: every row in every table
    /// and in the archive store, the sinks and the data key. Changes
    /// nothing (the transaction is rolled back).
    pub async fn erasure_preview(&self, entity: &str, key: &str) -> Result<ErasurePreview> {
        self.require_internal()?;
        let plan = self.erasure_plan(entity)?;
        let sql = self.erasure_sql(&plan, SubjectBy::Key, None);
        let key = self.key(entity, key)?;
        let b = self.erasure_bindings(Some(&key), &[], "");
        let mut tx = self.db.begin_write().await?;
        self.scope(&mut tx, &sql, &b).await?;
        let entities = self.erasure_counts(&mut tx, &plan, &sql, &b).await?;
        let rows = tx
            .rows_stmt(&sql.rows, &b)
            .await?
            .iter()
            .map(|r| PreviewRow {
                entity: col(r, 0),
                place: col(r, 1),
                key: serde_json::from_str(&col(r, 2)).unwrap_or(Value::Null),
            })
            .collect();
        let data_key = self.data_key_of(entity, &key);
        let keys = tx
            .rows(
                &cold::subject_keys(self.dialect()),
                &[Some(
                    serde_json::to_string(&[&data_key]).unwrap_or_default(),
                )],
            )
            .await?;
        self.cleanup(&mut tx, &sql).await?;
        tx.rollback().await?;
        Ok(ErasurePreview {
            entity: entity.to_string(),
            key: self.key_json(entity, &key, true),
            entities,
            rows,
            sinks: self
                .erasure_sinks(&plan)
                .into_iter()
                .map(|(s, _)| s)
                .collect(),
            data_key: keys.iter().any(|r| !col(r, 1).is_empty()),
        })
    }

    /// Creates an erasure request with its steps, all pending; returns the
    /// existing request when `request_id` was used before (for the same
    /// subject; another subject is refused).
    pub async fn erasure_create(&self, req: &EraseRequest) -> Result<(ErasureRecord, KeyValue)> {
        let (rec, key, stored) = self.erasure_new(req).await?;
        if !stored {
            let mut tx = self.db.begin_write().await?;
            self.insert_request(&mut tx, &rec).await?;
            tx.commit().await?;
        }
        Ok((rec, key))
    }

    /// What `lethe erase` does first: creates the request and runs its
    /// table step ([`Engine::erasure_run_tables`]) in one transaction, so a
    /// request that completes its table step costs one commit. When the
    /// step fails, the request is recorded all the same, `failed` with the
    /// reason, as if created first; a request id used before continues that
    /// request.
    pub async fn erasure_start(&self, req: &EraseRequest) -> Result<ErasureRecord> {
        let (rec, key, stored) = self.erasure_new(req).await?;
        if stored {
            return self.erasure_run_tables(&rec, Some(&key)).await;
        }
        match with_retries(|| self.run_tables_once(&rec, Some(&key), true, true)).await {
            // Inserted by this transaction: the stored request is `rec` with
            // what the step wrote, no need to read it back.
            Ok(Some(done)) => Ok(done.applied_to(rec)),
            Ok(None) => self.erasure(&rec.id).await,
            Err(e) => {
                // Another start of the same request id got there first (its
                // insert took the id while this one waited on it): continue
                // that request, as a later start would.
                if let Ok(Some(other)) = self.erasure_find(&rec.request_id).await
                    && other.id != rec.id
                    && other.subject == rec.subject
                {
                    return self.erasure_run_tables(&other, Some(&key)).await;
                }
                // Recorded for `lethe erasures show`, as a request created
                // first would be; the step's own error is what is reported.
                let _ = self.insert_failed(&rec, &e.to_string()).await;
                Err(e)
            }
        }
    }

    /// Stores new request `rec` as failed with `error`.
    async fn insert_failed(&self, rec: &ErasureRecord, error: &str) -> Result<()> {
        let mut tx = self.db.begin_write().await?;
        self.insert_request(&mut tx, rec).await?;
        tx.exec(
            &q::set_state(self.dialect()),
            &[
                Some(rec.id.clone()),
                Some("failed".into()),
                Some(now_text().1),
                Some(error.to_string()),
            ],
        )
        .await?;
        tx.commit().await
    }

    /// The request `req` asks for, as it would be stored (pending, with its
    /// steps pending) and the subject's key; or, with `true`, the stored
    /// request of the same request id.
    async fn erasure_new(&self, req: &EraseRequest) -> Result<(ErasureRecord, KeyValue, bool)> {
        self.require_internal()?;
        let plan = self.erasure_plan(&req.entity)?;
        let key = self.key(&req.entity, &req.key)?;
        let d = self.dialect();
        let subject_stmt = subject_hash(d, self.schema(), &self.policy().entities[&req.entity]);
        let b = self.erasure_bindings(Some(&key), &[], "");
        let id = uuid::Uuid::now_v7().to_string();
        let request_id = req
            .request_id
            .clone()
            .unwrap_or_else(|| format!("erasure-{id}"));
        if request_id.trim().is_empty() {
            return Err(StoreError::Invalid("--request-id must not be empty".into()));
        }
        // Two reads on two connections, at once.
        let values = b.values(&subject_stmt);
        let (hash_rows, existing) = tokio::join!(
            self.db.rows(&subject_stmt.sql, &values),
            self.erasure_find(&request_id)
        );
        let subject = hash_rows?.first().map(|r| col(r, 0)).unwrap_or_default();
        if let Some(existing) = existing? {
            if existing.subject != subject || existing.entity != req.entity {
                return Err(StoreError::Invalid(format!(
                    "request id \"{request_id}\" is already used by erasure {} of another subject",
                    existing.id
                )));
            }
            return Ok((existing, key, true));
        }
        let data_key = self.data_key_of(&req.entity, &key);
        let mut rec = ErasureRecord::pending(
            id,
            request_id,
            &req.entity,
            subject,
            data_key,
            req.actor.clone(),
            req.reason.clone(),
        );
        rec.steps = self.pending_steps(&plan, &rec.created_at);
        Ok((rec, key, false))
    }

    /// The steps of a new request for `plan`, all pending since `now`.
    fn pending_steps(&self, plan: &ErasurePlan, now: &str) -> Vec<ErasureStepRecord> {
        let mut names: Vec<(String, String)> = plan
            .steps
            .iter()
            .rev()
            .map(|s| (table_step(&s.entity), "table".to_string()))
            .collect();
        names.push((STEP_ARCHIVE.into(), "archive".into()));
        names.push((STEP_COLD.into(), "cold".into()));
        names.extend(
            self.erasure_sinks(plan)
                .into_iter()
                .map(|(s, k)| (sink_step(&s), k)),
        );
        names.push((STEP_VERIFY.into(), "verify".into()));
        names
            .into_iter()
            .zip(1..)
            .map(|((name, kind), seq)| ErasureStepRecord {
                seq,
                name,
                kind,
                state: "pending".into(),
                // As stored: `{}` until the step records something.
                detail: json!({}),
                updated_at: now.to_string(),
            })
            .collect()
    }

    /// Inserts request `rec` (pending, from [`Engine::erasure_new`]) and its
    /// steps in `tx`.
    async fn insert_request(&self, tx: &mut Tx, rec: &ErasureRecord) -> Result<()> {
        let d = self.dialect();
        tx.exec(
            &q::insert_request(d),
            &[
                Some(rec.id.clone()),
                Some(rec.request_id.clone()),
                Some(rec.entity.clone()),
                Some(rec.subject.clone()),
                Some(rec.data_key.clone()),
                rec.actor.clone(),
                rec.reason.clone(),
                Some(rec.created_at.clone()),
            ],
        )
        .await?;
        let names: Vec<(&str, &str)> = rec
            .steps
            .iter()
            .map(|s| (s.name.as_str(), s.kind.as_str()))
            .collect();
        tx.exec(
            &q::insert_steps(d),
            &[
                Some(rec.id.clone()),
                Some(json!(names).to_string()),
                Some(rec.created_at.clone()),
            ],
        )
        .await?;
        Ok(())
    }

    async fn erasure_find(&self, id: &str) -> Result<Option<ErasureRecord>> {
        let d = self.dialect();
        let rows = self
            .db
            .rows(&q::request(d), &[Some(id.to_string())])
            .await?;
        let Some(r) = rows.first() else {
            return Ok(None);
        };
        let mut rec = ErasureRecord::from_row(r);
        rec.steps = self
            .db
            .rows(&q::steps(d), &[Some(rec.id.clone())])
            .await?
            .iter()
            .map(|r| ErasureStepRecord {
                seq: col(r, 0).parse().unwrap_or(0),
                name: col(r, 1),
                kind: col(r, 2),
                state: col(r, 3),
                detail: serde_json::from_str(&col(r, 4)).unwrap_or(Value::Null),
                updated_at: col(r, 5),
            })
            .collect();
        Ok(Some(rec))
    }

    /// A request by its id or request id.
    pub async fn erasure(&self, id: &str) -> Result<ErasureRecord> {
        self.require_internal()?;
        self.erasure_find(id)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                entity: "erasure request".into(),
                key: id.to_string(),
            })
    }

    /// Requests, newest first, optionally in one state.
    pub async fn erasures(&self, state: Option<&str>, limit: u32) -> Result<Vec<ErasureRecord>> {
        self.require_internal()?;
        let rows = self
            .db
            .rows(
                &q::list_requests(self.dialect()),
                &[
                    Some(limit.to_string()),
                    Some(state.unwrap_or("").to_string()),
                ],
            )
            .await?;
        Ok(rows.iter().map(|r| ErasureRecord::from_row(r)).collect())
    }

    async fn set_step(
        &self,
        tx: &mut Tx,
        id: &str,
        name: &str,
        state: &str,
        detail: &Value,
    ) -> Result<()> {
        tx.exec(
            &q::set_step(self.dialect()),
            &[
                Some(id.to_string()),
                Some(name.to_string()),
                Some(state.to_string()),
                Some(detail.to_string()),
                Some(now_text().1),
            ],
        )
        .await?;
        Ok(())
    }

    /// Sets a request's state (`failed` with its error, `in_progress`).
    pub async fn erasure_set_state(
        &self,
        id: &str,
        state: &str,
        error: Option<&str>,
    ) -> Result<()> {
        let mut tx = self.db.begin_write().await?;
        tx.exec(
            &q::set_state(self.dialect()),
            &[
                Some(id.to_string()),
                Some(state.to_string()),
                Some(now_text().1),
                error.map(str::to_string),
            ],
        )
        .await?;
        tx.commit().await
    }

    /// Runs the table step of request `rec` (as [`Engine::erasure_create`]
    /// or [`Engine::erasure`] returned it): in one transaction, every
    /// subject row of every entity is deleted or anonymized (in its table,
    /// active or deleted, and in the archive store), the data key is
    /// destroyed, `erased` outbox records, the deletion record, the audit
    /// entry and the ledger entry are written, and the steps are marked
    /// done. With `key`, the subject is found by its key; without, by the
    /// request's hash of it (a resumed request). Does nothing when the step
    /// is done already (also when `rec` is older than that: the step's
    /// transaction checks). Returns the request as it is now.
    pub async fn erasure_run_tables(
        &self,
        rec: &ErasureRecord,
        key: Option<&KeyValue>,
    ) -> Result<ErasureRecord> {
        if rec.deletion_id.is_some() {
            return self.erasure(&rec.id).await;
        }
        match with_retries(|| self.run_tables_once(rec, key, true, false)).await {
            Err(e) => {
                // Recorded for `lethe erasures show`; nothing changed.
                let msg = e.to_string();
                let _ = self.erasure_set_state(&rec.id, "failed", Some(&msg)).await;
                Err(e)
            }
            Ok(_) => self.erasure(&rec.id).await,
        }
    }

    /// One attempt at the table step, in one transaction: with `whole`, as
    /// the one statement of [`ErasureSql::step`] where the dialect has it;
    /// with `insert`, the transaction first inserts the request `rec`
    /// (new, not stored yet).
    async fn run_tables_once(
        &self,
        rec: &ErasureRecord,
        key: Option<&KeyValue>,
        whole: bool,
        insert: bool,
    ) -> Result<Option<TablesDone>> {
        let d = self.dialect();
        let plan = self.erasure_plan(&rec.entity)?;
        let by = if key.is_some() {
            SubjectBy::Key
        } else {
            SubjectBy::Hash
        };
        let b = self.erasure_bindings(key, &[], &rec.subject);
        let now = b.now.clone();
        let deletion_id = b.deletion_id.clone();
        let mut tx = self.db.begin_write().await?;
        if insert {
            // New in this transaction: no one else can run it.
            self.insert_request(&mut tx, rec).await?;
        } else {
            // The gate: one run at a time, and none after the step is done.
            let claimed = tx
                .exec(
                    &format!(
                        "UPDATE {} SET updated_at = updated_at WHERE {} = $1 AND deletion_id IS NULL",
                        d.own("erasures"),
                        d.text("id")
                    ),
                    &[Some(rec.id.clone())],
                )
                .await?;
            if claimed == 0 {
                tx.rollback().await?;
                return Ok(None);
            }
        }
        tx.exec(d.enable_bypass(), &[]).await?;
        // The archive store is searched only for the entities it holds rows
        // of (on the first attempt; see `render_erasure`).
        let stored: Option<BTreeSet<String>> = if whole {
            Some(
                tx.rows_stmt(&stored_entities(d, &plan), &b)
                    .await?
                    .iter()
                    .map(|r| col(r, 0))
                    .collect(),
            )
        } else {
            None
        };
        let mut sql = self.erasure_sql(&plan, by, stored.as_ref());
        // Run as statements, the narrowed search is safe only where no
        // other transaction can write meanwhile.
        if sql.step.is_none() && stored.is_some() && !d.serialized_writes() {
            sql = self.erasure_sql(&plan, by, None);
        }
        let found = match &sql.step {
            // Everything in one statement; what the checks below refuse is
            // rolled back with the rest.
            Some(step) if whole => match tx.rows_stmt_or_refusal(step, &b).await? {
                // Holds, or rows archived meanwhile: the statements check
                // them one by one.
                Ok(rows) if rows.iter().any(|r| col(r, 0) == "recheck") => {
                    tx.rollback().await?;
                    return Box::pin(self.run_tables_once(rec, key, false, insert)).await;
                }
                Ok(rows) => Found::from_step(rows),
                // The database refused a change (a foreign key from rows
                // outside the erasure, a trigger): nothing changed. The
                // statements check before they change, and say which
                // relation blocks, or fail the same way.
                Err(refused) => {
                    tracing::debug!(error = %refused, "the one-statement erasure step was refused; running it as statements");
                    if tx.rollback().await.is_err() {
                        return Err(refused);
                    }
                    return Box::pin(self.run_tables_once(rec, key, false, insert)).await;
                }
            },
            _ => {
                self.scope(&mut tx, &sql, &b).await?;
                Found {
                    held: tx.rows_stmt(&sql.held, &b).await?,
                    blocked: tx.rows_stmt(&sql.blocked, &b).await?,
                    counts: tx.rows_stmt(&sql.counts, &b).await?,
                    hashes: Vec::new(),
                }
            }
        };
        // GDPR Art. 17(3)(e): data held for legal claims stays. A hold is
        // released on purpose, then the request resumed.
        let holds = found.held;
        if !holds.is_empty() {
            self.cleanup(&mut tx, &sql).await?;
            tx.rollback().await?;
            let list: Vec<String> = holds
                .iter()
                .map(|r| format!("hold {} on {} ({})", col(r, 0), col(r, 1), col(r, 2)))
                .collect();
            return Err(StoreError::Held(format!(
                "erasure refused: rows it would change are under legal hold: {}; release the holds (`lethe hold remove ID --reason ...`) when the legal matter allows, then `lethe erasures resume {}`",
                list.join("; "),
                rec.id
            )));
        }
        // Rows erasure does not take (other people's, or no one's) that
        // reference rows it deletes: the database would refuse the delete,
        // or cascade it into rows that are not the subject's.
        let blocked: Vec<(String, u64)> = found
            .blocked
            .iter()
            .map(|r| (col(r, 0), col(r, 1).parse().unwrap_or(0)))
            .filter(|(_, n)| *n > 0)
            .collect();
        if let Some((relation, count)) = blocked.first() {
            self.cleanup(&mut tx, &sql).await?;
            tx.rollback().await?;
            return Err(StoreError::Blocked {
                relation: format!(
                    "{relation} (rows outside erasure {}: other subjects' or no one's)",
                    rec.id
                ),
                count: *count,
            });
        }
        let entities = self.erasure_entities(&plan, &found.counts);
        // A key that matches nothing anywhere is most likely a typo: say
        // so rather than certify the erasure of no one. (Found by hash, a
        // restored database may rightly hold nothing of the subject.) A
        // subject whose rows are gone but whose exported values a live
        // data key still opens is not nobody: the key must go.
        let nothing = entities
            .iter()
            .all(|e| e.active + e.deleted + e.stored == 0);
        if let Some(k) = key
            && nothing
            && !tx
                .rows(
                    &cold::subject_keys(d),
                    &[Some(json!([rec.data_key]).to_string())],
                )
                .await?
                .iter()
                .any(|r| !col(r, 1).is_empty())
        {
            self.cleanup(&mut tx, &sql).await?;
            tx.rollback().await?;
            return Err(StoreError::NotFound {
                entity: rec.entity.clone(),
                key: format!(
                    "{} (no row of it, or owned by it, in any table or in the archive store)",
                    k.values.join(", ")
                ),
            });
        }
        let hashes: Vec<String> = if whole && sql.step.is_some() {
            found.hashes
        } else {
            // Read before the changes rewrite the values.
            let hashes = tx.rows_stmt(&sql.pii_hashes, &b).await?;
            tx.exec_batch(&sql.changes, &b).await?;
            hashes.iter().map(|r| col(r, 0)).collect()
        };
        tx.exec(
            &cold::shred_subject_key(d),
            &[Some(rec.data_key.clone()), Some(now.clone())],
        )
        .await?;
        self.cleanup(&mut tx, &sql).await?;
        if let Some(off) = d.disable_bypass() {
            tx.exec(off, &[]).await?;
        }
        let actions: serde_json::Map<String, Value> = entities
            .iter()
            .map(|e| {
                (
                    e.entity.clone(),
                    json!({"action": e.action, "legal_basis": e.legal_basis}),
                )
            })
            .collect();
        let counts: serde_json::Map<String, Value> = entities
            .iter()
            .map(|e| {
                (
                    e.entity.clone(),
                    json!({"action": e.action, "active": e.active, "deleted": e.deleted, "stored": e.stored}),
                )
            })
            .collect();
        let stored: u64 = entities
            .iter()
            .filter(|e| e.action != "keep")
            .map(|e| e.stored)
            .sum();
        let summary = json!({
            "entities": entities,
            "pii_values": hashes.len(),
            "data_key": rec.data_key,
        });
        // Each entity's step, the archive store and the data key: done
        // with the rows, in the same transaction (one statement).
        let mut done: serde_json::Map<String, Value> = entities
            .iter()
            .map(|e| {
                (
                    table_step(&e.entity),
                    serde_json::to_value(e).unwrap_or_default(),
                )
            })
            .collect();
        done.insert(STEP_ARCHIVE.into(), json!({"rows": stored}));
        done.insert(
            STEP_COLD.into(),
            json!({"data_key": rec.data_key, "shredded": true}),
        );
        tx.exec(
            &q::set_steps(d),
            &[
                Some(rec.id.clone()),
                Some(Value::Object(done.clone()).to_string()),
                Some("done".into()),
                Some(now.clone()),
            ],
        )
        .await?;
        tx.exec(
            &q::record_tables(d),
            &[
                Some(rec.id.clone()),
                Some(deletion_id.clone()),
                Some(serde_json::to_string(&hashes).unwrap_or_default()),
                Some(summary.to_string()),
                Some(now.clone()),
            ],
        )
        .await?;
        // A reapplied entry keeps its original id: the ledger of a restored
        // database gets the entry it lost, once.
        let ledger_id = rec
            .request_id
            .strip_prefix("reapply:")
            .unwrap_or(&rec.id)
            .to_string();
        tx.exec(
            &q::insert_ledger(d),
            &[
                Some(ledger_id),
                Some(rec.entity.clone()),
                Some(rec.subject.clone()),
                Some(rec.data_key.clone()),
                Some(Value::Object(actions.clone()).to_string()),
                Some(now.clone()),
            ],
        )
        .await?;
        let root_key = json!({"subject": rec.subject});
        let record_summary = json!({
            "entities": entities.iter().filter(|e| e.action != "keep").map(|e| json!({
                "entity": e.entity, "strategy": e.action, "rows": e.active + e.deleted + e.stored,
            })).collect::<Vec<_>>(),
            "nullified": [],
        });
        let context = json!({"erasure_id": rec.id, "request_id": rec.request_id});
        audit::append(
            &mut tx,
            d,
            &now,
            "erase",
            Some(&deletion_id),
            json!({
                "actor": rec.actor,
                "reason": rec.reason,
                "context": context,
                "entity": rec.entity,
                "key": root_key,
                "counts": counts,
                "actions": actions,
                "pii_values": hashes.len(),
            }),
            (
                &queries::insert_deletion(d),
                vec![
                    Some(deletion_id.clone()),
                    Some("erase".into()),
                    Some(now.clone()),
                    rec.actor.clone(),
                    rec.reason.clone(),
                    Some(context.to_string()),
                    Some(rec.entity.clone()),
                    Some(root_key.to_string()),
                    Some(record_summary.to_string()),
                ],
            ),
        )
        .await?;
        tx.commit().await?;
        Ok(Some(TablesDone {
            deletion_id,
            hashes,
            summary,
            steps: done,
            now,
        }))
    }

    /// Brings the sink steps of a request up to date with the deliveries
    /// of its `erased` records: every delivery delivered -> `done`; one
    /// dead -> `failed`; otherwise `waiting`. Confirmed steps stay.
    pub async fn erasure_sync_sinks(&self, id: &str) -> Result<ErasureRecord> {
        let rec = self.erasure(id).await?;
        let Some(deletion_id) = rec.deletion_id.clone() else {
            return Ok(rec);
        };
        let rows = self
            .db
            .rows(&q::delivery_states(self.dialect()), &[Some(deletion_id)])
            .await?;
        let undispatched: u64 = rows
            .iter()
            .filter(|r| col(r, 1) == "undispatched")
            .map(|r| col(r, 2).parse::<u64>().unwrap_or(0))
            .sum();
        let mut tx = self.db.begin_write().await?;
        for s in rec
            .steps
            .iter()
            .filter(|s| matches!(s.kind.as_str(), "sink" | "third_party"))
        {
            if s.state == "confirmed" {
                continue;
            }
            let sink = s.name.trim_start_matches("sink:");
            let mut by: BTreeMap<String, u64> = BTreeMap::new();
            for r in rows.iter().filter(|r| col(r, 0) == sink) {
                *by.entry(col(r, 1)).or_default() += col(r, 2).parse::<u64>().unwrap_or(0);
            }
            let open = by
                .iter()
                .filter(|(k, _)| *k != "delivered")
                .map(|(_, n)| n)
                .sum::<u64>();
            let state = if by.get("dead").copied().unwrap_or(0) > 0 {
                "failed"
            } else if open == 0 && undispatched == 0 {
                "done"
            } else {
                "waiting"
            };
            let detail = json!({"deliveries": by, "undispatched": undispatched});
            if s.state != state || s.detail != detail {
                self.set_step(&mut tx, &rec.id, &s.name, state, &detail)
                    .await?;
            }
        }
        tx.commit().await?;
        self.erasure(id).await
    }

    /// Records that an operator confirmed a step by hand (a third party
    /// that answered by e-mail): the step counts as done.
    pub async fn erasure_confirm(
        &self,
        id: &str,
        step: &str,
        reason: &str,
        actor: Option<&str>,
    ) -> Result<ErasureRecord> {
        let rec = self.erasure(id).await?;
        if reason.trim().is_empty() {
            return Err(StoreError::Invalid(
                "a manual confirmation needs --reason: who confirmed, how and when".into(),
            ));
        }
        let name = if rec.step(step).is_some() {
            step.to_string()
        } else {
            sink_step(step)
        };
        let Some(s) = rec.step(&name) else {
            return Err(StoreError::Invalid(format!(
                "erasure {} has no step \"{step}\"; its steps: {}",
                rec.id,
                rec.steps
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        };
        if !matches!(s.kind.as_str(), "sink" | "third_party") {
            return Err(StoreError::Invalid(format!(
                "only sink and third-party steps are confirmed by hand; \"{name}\" is a {} step, which Lethe runs itself",
                s.kind
            )));
        }
        let now = now_text().1;
        let detail =
            json!({"confirmed_by": actor, "reason": reason, "at": now, "before": s.detail});
        let mut tx = self.db.begin_write().await?;
        self.set_step(&mut tx, &rec.id, &name, "confirmed", &detail)
            .await?;
        // Nothing more to deliver there: the relay stops retrying.
        if let Some(deletion) = &rec.deletion_id {
            tx.exec(
                &q::stop_deliveries(self.dialect()),
                &[
                    Some(deletion.clone()),
                    Some(name.trim_start_matches("sink:").to_string()),
                    Some(format!(
                        "erasure {} step confirmed by hand: {reason}",
                        rec.id
                    )),
                ],
            )
            .await?;
        }
        audit::append_alone(
            &mut tx,
            self.dialect(),
            &now,
            "erasure_confirm",
            json!({"erasure_id": rec.id, "request_id": rec.request_id, "step": name, "actor": actor, "reason": reason}),
        )
        .await?;
        tx.commit().await?;
        self.erasure(id).await
    }

    /// Scans the database for what erasure `id` should have removed: the
    /// subject's rows of deleted entities (tables, deleted rows included,
    /// and the archive store), anonymized rows still holding an original
    /// value, any original value in any text column of any managed table
    /// and in Lethe's archive store, outbox and nullified values, and a
    /// data key not destroyed. Changes nothing.
    pub async fn erasure_scan(&self, id: &str) -> Result<DbScan> {
        let rec = self.erasure(id).await?;
        let plan = self.erasure_plan(&rec.entity)?;
        let sql = self.erasure_sql(&plan, SubjectBy::Hash, None);
        let b = self.erasure_bindings(None, &rec.pii_hashes, &rec.subject);
        let mut tx = self.db.begin_write().await?;
        self.scope(&mut tx, &sql, &b).await?;
        let mut out = DbScan::default();
        for r in tx.rows_stmt(&sql.residue, &b).await? {
            let rows: u64 = col(&r, 2).parse().unwrap_or(0);
            if rows > 0 {
                let entity = col(&r, 0);
                let table = &self.policy().entities[&entity].table;
                out.residue.push(Residue {
                    place: if col(&r, 1) == "table" {
                        format!("table {table}")
                    } else {
                        col(&r, 1)
                    },
                    entity: Some(entity),
                    what: col(&r, 3),
                    rows,
                });
            }
        }
        for s in &sql.scan {
            for r in tx.rows_stmt(s, &b).await? {
                let rows: u64 = col(&r, 1).parse().unwrap_or(0);
                out.scanned.push(col(&r, 0));
                if rows > 0 {
                    out.residue.push(Residue {
                        place: col(&r, 0),
                        entity: None,
                        what: "original values".into(),
                        rows,
                    });
                }
            }
        }
        out.kept = self
            .erasure_counts(&mut tx, &plan, &sql, &b)
            .await?
            .into_iter()
            .filter(|e| e.action == "keep" && e.active + e.deleted + e.stored > 0)
            .collect();
        let keys = tx
            .rows(
                &cold::subject_keys(self.dialect()),
                &[Some(
                    serde_json::to_string(&[&rec.data_key]).unwrap_or_default(),
                )],
            )
            .await?;
        if keys.iter().any(|r| !col(r, 1).is_empty()) {
            out.residue.push(Residue {
                place: "subject keys".into(),
                entity: None,
                what: "data key not destroyed".into(),
                rows: 1,
            });
        }
        self.cleanup(&mut tx, &sql).await?;
        tx.rollback().await?;
        Ok(out)
    }

    /// Rewrites the subject's original values in outbox records that every
    /// sink has received (`[erased]` in their place): cache keys and search
    /// documents were built from them, and now nothing needs them. Returns
    /// the records rewritten. Records still on their way are left; the
    /// verification reports them.
    pub async fn erasure_scrub_outbox(&self, id: &str) -> Result<u64> {
        let rec = self.erasure(id).await?;
        if rec.pii_hashes.is_empty() {
            return Ok(0);
        }
        let d = self.dialect();
        let mut b = self.erasure_bindings(None, &rec.pii_hashes, &rec.subject);
        b.deletion_id = rec.deletion_id.clone().unwrap_or_default();
        let confirmed: Vec<&str> = rec
            .steps
            .iter()
            .filter(|s| s.state == "confirmed")
            .map(|s| s.name.trim_start_matches("sink:"))
            .collect();
        b.values
            .push(serde_json::to_string(&confirmed).unwrap_or_default());
        let hashes: std::collections::BTreeSet<&str> =
            rec.pii_hashes.iter().map(String::as_str).collect();
        let stmt = lethe_sql::erasure::outbox_to_scrub(d);
        let mut tx = self.db.begin_write().await?;
        let found = tx.rows_stmt(&stmt, &b).await?;
        for r in &found {
            let mut keys: Value = serde_json::from_str(&col(r, 1)).unwrap_or(Value::Null);
            self.scrub_value(&mut keys, &hashes);
            tx.exec(
                &lethe_sql::erasure::rewrite_outbox(d),
                &[Some(col(r, 0)), Some(keys.to_string())],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(found.len() as u64)
    }

    /// Replaces every string or number in `v` whose keyed hash is in
    /// `hashes` with the redaction placeholder.
    fn scrub_value(&self, v: &mut Value, hashes: &std::collections::BTreeSet<&str>) {
        match v {
            Value::String(s) if hashes.contains(self.keyed_hash(s).as_str()) => {
                *v = Value::from(lethe_sql::erasure::REDACTED);
            }
            Value::Number(n) if hashes.contains(self.keyed_hash(&n.to_string()).as_str()) => {
                *v = Value::from(lethe_sql::erasure::REDACTED);
            }
            Value::Array(a) => a.iter_mut().for_each(|x| self.scrub_value(x, hashes)),
            Value::Object(m) => m.values_mut().for_each(|x| self.scrub_value(x, hashes)),
            _ => {}
        }
    }

    /// Stores a verification report on the request and sets its step.
    pub async fn erasure_record_verification(
        &self,
        id: &str,
        report: &Value,
        clean: bool,
    ) -> Result<()> {
        let rec = self.erasure(id).await?;
        let now = now_text().1;
        let mut tx = self.db.begin_write().await?;
        tx.exec(
            &q::record_verification(self.dialect()),
            &[Some(rec.id.clone()), Some(report.to_string()), Some(now)],
        )
        .await?;
        self.set_step(
            &mut tx,
            &rec.id,
            STEP_VERIFY,
            if clean { "done" } else { "failed" },
            report,
        )
        .await?;
        tx.commit().await
    }

    /// Completes request `id` with its certificate; the certificate's hash
    /// enters the audit chain in the same transaction. Refused unless every
    /// step is done or confirmed and the verification was clean.
    pub async fn erasure_complete(
        &self,
        id: &str,
        certificate: &Value,
    ) -> Result<(ErasureRecord, String)> {
        let rec = self.erasure(id).await?;
        if rec.state == "completed" {
            let hash = rec.certificate_hash.clone().unwrap_or_default();
            return Ok((rec, hash));
        }
        if let Some(s) = rec
            .steps
            .iter()
            .find(|s| !matches!(s.state.as_str(), "done" | "confirmed"))
        {
            return Err(StoreError::Invalid(format!(
                "erasure {} cannot complete: step \"{}\" is {}",
                rec.id, s.name, s.state
            )));
        }
        let text = audit::canonical(certificate);
        let hash = audit::chain_hash("lethe-erasure-certificate", &text);
        let now = now_text().1;
        let mut tx = self.db.begin_write().await?;
        tx.exec(
            &q::complete(self.dialect()),
            &[
                Some(rec.id.clone()),
                Some(text),
                Some(hash.clone()),
                Some(now.clone()),
            ],
        )
        .await?;
        audit::append_alone(
            &mut tx,
            self.dialect(),
            &now,
            "erasure_complete",
            json!({"erasure_id": rec.id, "request_id": rec.request_id, "subject": rec.subject, "certificate_sha256": hash}),
        )
        .await?;
        tx.commit().await?;
        Ok((self.erasure(id).await?, hash))
    }

    /// The erasure ledger, oldest first.
    pub async fn erasure_ledger(&self) -> Result<Vec<LedgerEntry>> {
        self.require_internal()?;
        let rows = self.db.rows(&q::ledger(self.dialect()), &[]).await?;
        Ok(rows
            .iter()
            .map(|r| LedgerEntry {
                seq: col(r, 0).parse().unwrap_or(0),
                erasure_id: col(r, 1),
                entity: col(r, 2),
                subject: col(r, 3),
                data_key: col(r, 4),
                actions: serde_json::from_str(&col(r, 5)).unwrap_or(Value::Null),
                erased_at: col(r, 6),
                key_check: self.keyed_hash(KEY_CHECK_TEXT),
            })
            .collect())
    }

    /// Refuses a ledger entry written under another hash key than this
    /// database's: its subject hash would silently match nobody here.
    pub fn erasure_ledger_check(&self, entry: &LedgerEntry) -> Result<()> {
        // An entry written before entries carried the check (empty) is
        // taken as it is: the only copy of a ledger may be an old one.
        if !entry.key_check.is_empty() && entry.key_check != self.keyed_hash(KEY_CHECK_TEXT) {
            Err(StoreError::Invalid(format!(
                "ledger entry {} (erasure {}) comes from a database with another hash key: its subject hash cannot match anyone here, and nothing was reapplied; reapply onto a restore of the database the erasure ran on (a restore keeps its hash key)",
                entry.seq, entry.erasure_id,
            )))
        } else {
            Ok(())
        }
    }

    /// Runs ledger entry `entry` again on this database (restored from a
    /// backup older than the erasure): a request `reapply:<erasure id>` is
    /// created here and its table step run, finding the subject by its
    /// hash. Returns it; running an entry twice is harmless.
    pub async fn erasure_reapply(
        &self,
        entry: &LedgerEntry,
        actor: Option<&str>,
    ) -> Result<ErasureRecord> {
        self.require_internal()?;
        self.erasure_ledger_check(entry)?;
        let plan = self.erasure_plan(&entry.entity)?;
        let request_id = format!("reapply:{}", entry.erasure_id);
        let rec = match self.erasure_find(&request_id).await? {
            Some(r) => r,
            None => {
                let mut rec = ErasureRecord::pending(
                    uuid::Uuid::now_v7().to_string(),
                    request_id,
                    &entry.entity,
                    entry.subject.clone(),
                    entry.data_key.clone(),
                    actor.map(str::to_string),
                    Some(format!(
                        "reapply ledger entry {} of {}",
                        entry.seq, entry.erased_at
                    )),
                );
                rec.steps = self.pending_steps(&plan, &rec.created_at);
                let mut tx = self.db.begin_write().await?;
                self.insert_request(&mut tx, &rec).await?;
                tx.commit().await?;
                rec
            }
        };
        self.erasure_run_tables(&rec, None).await
    }
}
