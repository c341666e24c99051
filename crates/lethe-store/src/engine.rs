//! [`Engine`]: the library entry point. Connects to a database with a policy
//! and plans, deletes and restores.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use lethe_core::{
    ColumnKind, DeletePlan, Finding, KeyValue, Policy, Schema, Strategy, plan_delete,
};
use lethe_sql::{
    DeleteProgram, Dialect, Mode, RestoreEntity, queries, render_delete, render_restore,
};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::audit;
use crate::db::{Bindings, ConnectOptions, Db, Tx, col};
use crate::error::{ParentDeleted, Result, StoreError, UniqueConflict};
use crate::introspect;
use crate::records::*;
use crate::reshape;

/// How many times a transaction is retried after a deadlock or serialization
/// failure before the error reaches the caller.
const MAX_ATTEMPTS: u32 = 5;

/// A plan and its rendered SQL, cached per root entity and mode.
type CachedProgram = Arc<(DeletePlan, DeleteProgram)>;

/// What a delete program reported.
struct ProgramReport {
    affected: Vec<EntityCount>,
    nullified: Vec<NullifiedCount>,
    blocked: Vec<Blocker>,
    /// Entities whose table's live columns differ from the schema Lethe read.
    stale: Vec<String>,
}

/// How a restore treats rows stored before their table changed.
#[derive(Debug, Clone, Default)]
pub struct RestoreOptions {
    pub actor: Option<String>,
    pub reason: Option<String>,
    /// Values for NOT NULL columns added since the rows were stored.
    pub set: Vec<crate::reshape::SetValue>,
    /// Restore even though columns dropped since held values (they are lost).
    pub drop_missing: bool,
    /// Free-form context recorded in the audit entry (request id, ...). Must
    /// not hold PII.
    pub context: Value,
}

/// A request to delete one root row and its cascade.
#[derive(Debug, Clone, Default)]
pub struct DeleteRequest {
    pub entity: String,
    /// The key as a user writes it: `42` or `order_id=1,product_id=2`.
    pub key: String,
    pub actor: Option<String>,
    pub reason: Option<String>,
    /// Free-form context recorded in the audit entry (request id, ...). Must
    /// not hold PII.
    pub context: Value,
}

impl DeleteRequest {
    pub fn new(entity: impl Into<String>, key: impl Into<String>) -> Self {
        DeleteRequest {
            entity: entity.into(),
            key: key.into(),
            context: Value::Null,
            ..Default::default()
        }
    }

    pub fn actor(mut self, actor: impl Into<String>) -> Self {
        self.actor = Some(actor.into());
        self
    }

    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }
}

/// Lethe on one database with one policy.
///
/// ```no_run
/// # async fn run() -> Result<(), lethe_store::StoreError> {
/// use lethe_store::{DeleteRequest, Engine};
///
/// let policy = lethe_core::parse_policy(
///     r#"
///     [entities.users]
///     key = ["id"]
///     "#,
///     "lethe.toml",
/// )?;
/// let mut engine = Engine::connect(policy, "sqlite://shop.db").await?;
/// engine.migrate(false).await?;
/// let done = engine.delete(&DeleteRequest::new("users", "42").actor("support")).await?;
/// println!("deleted {} rows as {}", done.affected.iter().map(|c| c.rows).sum::<u64>(), done.deletion_id);
/// engine.restore(&done.deletion_id, Some("support")).await?;
/// # Ok(()) }
/// ```
pub struct Engine {
    pub(crate) db: Db,
    pub(crate) policy: Arc<Policy>,
    pub(crate) schema: Schema,
    /// Lethe's own tables are installed at the current version.
    internal_installed: bool,
    /// The versions of Lethe's own tables found in the database.
    internal_versions: Vec<String>,
    /// Key for hashes of personal values in the audit log (from Lethe's
    /// settings table).
    pub(crate) hash_key: String,
    programs: Mutex<HashMap<(String, bool), CachedProgram>>,
}

pub(crate) fn now_text() -> (OffsetDateTime, String) {
    let now = OffsetDateTime::now_utc();
    (now, crate::time_text(now))
}

/// Parses JSON text from the database (keys), keeping the text if it is not JSON.
fn json_value(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::from(text))
}

pub(crate) fn transient(e: &StoreError) -> bool {
    matches!(e, StoreError::Transient(_))
}

/// Runs `once` (one transaction) again after a deadlock or serialization
/// failure, with a growing pause, up to [`MAX_ATTEMPTS`] times; then
/// reports how many attempts it took.
pub(crate) async fn with_retries<T, F, Fut>(mut once: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut attempt: u32 = 0;
    loop {
        attempt += 1;
        match once().await {
            Err(e) if transient(&e) && attempt < MAX_ATTEMPTS => {
                tokio::time::sleep(std::time::Duration::from_millis(
                    10 * u64::from(attempt * attempt),
                ))
                .await;
            }
            Err(StoreError::Transient(m)) => {
                return Err(StoreError::Database(format!(
                    "gave up after {attempt} attempts: {m}"
                )));
            }
            other => return other,
        }
    }
}

impl Engine {
    /// Connects, introspects the schema and checks nothing else: call
    /// [`Engine::check`] to validate the policy against the schema.
    pub async fn connect(policy: Policy, url: &str) -> Result<Engine> {
        Self::connect_with(policy, url, ConnectOptions::default()).await
    }

    pub async fn connect_with(policy: Policy, url: &str, opts: ConnectOptions) -> Result<Engine> {
        let db = Db::connect(url, opts).await?;
        Self::from_db(policy, db).await
    }

    pub async fn from_db(policy: Policy, db: Db) -> Result<Engine> {
        let mut engine = Engine {
            db,
            policy: Arc::new(policy),
            schema: Schema::default(),
            internal_installed: false,
            internal_versions: Vec::new(),
            hash_key: String::new(),
            programs: Mutex::new(HashMap::new()),
        };
        engine.refresh().await?;
        Ok(engine)
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn dialect(&self) -> Dialect {
        self.db.dialect()
    }

    /// The delivery queue (the relay's work, `lethe deliveries`, `lethe
    /// replay`). Needs Lethe's own tables at the current version.
    pub fn queue(&self) -> Result<crate::Queue> {
        if !self.internal_installed {
            return Err(StoreError::NotMigrated(
                "Lethe's own tables are missing, or older than this version of Lethe".into(),
            ));
        }
        Ok(crate::Queue::new(self.db.clone()))
    }

    /// Re-reads the schema (after DDL outside Lethe).
    pub async fn refresh(&mut self) -> Result<()> {
        self.schema = introspect::load_schema(&self.db).await?;
        // Marked rows of a table stay deleted whatever the strategy says now
        // (an entity moved from soft keeps its marked rows until they are
        // moved).
        let schema = &self.schema;
        Arc::make_mut(&mut self.policy).mark_tables(|t, a, b| {
            schema
                .table(t)
                .is_some_and(|t| t.has_column(a) && t.has_column(b))
        });
        self.internal_versions = introspect::internal_versions(&self.db).await?;
        self.internal_installed = lethe_sql::INTERNAL_VERSIONS
            .iter()
            .all(|v| self.internal_versions.iter().any(|i| i == v));
        if self
            .internal_versions
            .iter()
            .any(|v| v == lethe_sql::INTERNAL_VERSION)
        {
            let rows = self
                .db
                .rows(
                    &queries::setting(self.dialect()),
                    &[Some("hash_key".to_string())],
                )
                .await?;
            self.hash_key = rows.first().map(|r| col(r, 0)).unwrap_or_default();
        }
        self.programs.lock().expect("programs lock").clear();
        Ok(())
    }

    /// The policy against the live schema.
    pub fn check(&self) -> Vec<Finding> {
        let mut out = lethe_core::check_policy(&self.policy, &self.schema);
        // Erasure: the plan from the subject, and the PII rules its
        // anonymized columns cannot take (found here, not at the first
        // request).
        if self.policy.subject.is_some() {
            let error = |key: String, line: Option<usize>, message: String| Finding {
                level: lethe_core::Level::Error,
                key,
                line,
                message,
            };
            match lethe_core::plan_erasure(&self.policy) {
                Err(e) => out.push(error("erasure".into(), None, e.to_string())),
                Ok(plan) => {
                    // A missing column is reported above already.
                    for (at, why) in
                        lethe_sql::erasure::unsupported_rules(&self.policy, &self.schema, &plan)
                            .into_iter()
                            .filter(|(_, why)| !why.starts_with("no such column"))
                    {
                        let entity = at.split('.').next().unwrap_or_default();
                        let line = self.policy.entity(entity).map(|e| e.line);
                        out.push(error(
                            format!("entities.{entity}.pii"),
                            line,
                            format!("cannot anonymize {at}: {why}"),
                        ));
                    }
                }
            }
        }
        out
    }

    /// Plans (and unless `dry_run`, applies in one transaction and records) the
    /// DDL the policy needs.
    pub async fn migrate(&mut self, dry_run: bool) -> Result<MigrationReport> {
        let d = self.dialect();
        let steps =
            lethe_sql::plan_migration(d, &self.policy, &self.schema, &self.internal_versions);
        let report = MigrationReport {
            dry_run,
            steps: steps
                .iter()
                .map(|s| MigrationStepReport {
                    id: s.id.clone(),
                    description: s.description.clone(),
                    statements: s.statements.clone(),
                    blocked: s.blocked.clone(),
                })
                .collect(),
        };
        if dry_run || steps.is_empty() {
            return Ok(report);
        }
        if let Some(s) = steps.iter().find(|s| s.blocked.is_some()) {
            return Err(StoreError::MigrationBlocked {
                step: s.id.clone(),
                reason: s.blocked.clone().unwrap_or_default(),
            });
        }
        let (_, now) = now_text();
        let rebuilds = steps.iter().any(|s| s.foreign_keys_off);
        let mdb = if rebuilds {
            self.db.without_foreign_keys().await?
        } else {
            self.db.clone()
        };
        let mut tx = mdb.begin_write().await?;
        for s in &steps {
            for sql in &s.statements {
                tx.exec(sql, &[]).await.map_err(|e| match e {
                    StoreError::Database(m) | StoreError::Refused(m) => StoreError::Database(
                        format!("migration step {} failed: {m}\n  statement: {sql}", s.id),
                    ),
                    other => other,
                })?;
            }
            tx.exec(
                &lethe_sql::migrate::record_step_sql(d),
                &[
                    Some(s.id.clone()),
                    Some(now.clone()),
                    Some(s.statements.join(";\n")),
                ],
            )
            .await?;
        }
        if let Some(check) = lethe_sql::queries::foreign_key_check(d).filter(|_| rebuilds) {
            let bad = tx.rows(check, &[]).await?;
            if let Some(r) = bad.first() {
                tx.rollback().await?;
                return Err(StoreError::Database(format!(
                    "table rebuild would break a foreign key ({} row {} -> {}); nothing was changed",
                    col(r, 0),
                    col(r, 1),
                    col(r, 2)
                )));
            }
        }
        tx.commit().await?;
        if rebuilds {
            mdb.close().await;
        }
        // Cached statements survive the DDL: Lethe's statements return a
        // fixed set of text columns, never a user table's row shape.
        self.refresh().await?;
        Ok(report)
    }

    /// The policy's entity `name`, or the unknown-entity error naming the
    /// managed ones.
    pub(crate) fn entity(&self, name: &str) -> Result<&lethe_core::Entity> {
        self.policy
            .entity(name)
            .ok_or_else(|| lethe_core::plan::unknown_entity(&self.policy, name).into())
    }

    /// Parses and type-checks a key for `entity`.
    pub fn key(&self, entity: &str, input: &str) -> Result<KeyValue> {
        let e = self.entity(entity)?;
        let key = KeyValue::parse(e, input)?;
        if let Some(t) = self.schema.table(&e.table) {
            key.validate(&e.name, t)?;
        }
        Ok(key)
    }

    /// The key as JSON, numbers where the column is an integer.
    pub(crate) fn key_json(&self, entity: &str, key: &KeyValue, hash_pii: bool) -> Value {
        let e = self.policy.entity(entity);
        let t = e.and_then(|e| self.schema.table(&e.table));
        let mut m = serde_json::Map::new();
        for (c, v) in key.columns.iter().zip(&key.values) {
            let is_pii = e.map(|e| e.pii.contains_key(c)).unwrap_or(false);
            let val = if hash_pii && is_pii {
                // Keyed: without the database's key, a guessed value (an
                // e-mail address) cannot be checked against the log.
                Value::from(format!(
                    "keyed-sha256:{}",
                    audit::chain_hash(&self.hash_key, v)
                ))
            } else if t.and_then(|t| t.column(c)).map(|c| c.kind()) == Some(ColumnKind::Integer) {
                v.trim()
                    .parse::<i64>()
                    .map(Value::from)
                    .unwrap_or_else(|_| Value::from(v.clone()))
            } else {
                Value::from(v.clone())
            };
            m.insert(c.clone(), val);
        }
        Value::Object(m)
    }

    /// The name of a data subject in places that must not hold personal
    /// data (data-key ids, cold-storage files, the audit log): a hash of the
    /// subject entity and its key values, keyed by this database's secret,
    /// so the same person always gets the same name here and a guessed
    /// e-mail address cannot be checked against it elsewhere.
    pub fn subject_id(&self, entity: &str, key_values: &[Value]) -> String {
        let text = format!("subject\n{entity}\n{}", Value::from(key_values.to_vec()));
        audit::chain_hash(&self.hash_key, &text)[..32].to_string()
    }

    /// The keyed hash (HMAC-SHA256, this database's secret) of a value, as
    /// erasure records and looks for a subject's original values.
    pub fn keyed_hash(&self, value: &str) -> String {
        crate::hmac::hmac_hex(&self.hash_key, value)
    }

    /// Checks that the database is ready for a delete touching `plan`.
    fn ensure_ready(&self, plan: &DeletePlan) -> Result<()> {
        if !self.internal_installed {
            return Err(StoreError::NotMigrated(
                "Lethe's own tables are missing, or older than this version of Lethe".into(),
            ));
        }
        let mut entities: Vec<&lethe_core::Entity> = plan.nodes.iter().map(|n| &n.entity).collect();
        entities.extend(
            plan.restricts
                .iter()
                .chain(&plan.set_nulls)
                .map(|s| &s.child),
        );
        for e in entities {
            let t = self
                .schema
                .table(&e.table)
                .ok_or_else(|| lethe_core::CoreError::missing_table(&e.table, &e.name))?;
            if e.is_soft() {
                for c in [&e.deleted_at, &e.deletion_id] {
                    if !t.has_column(c) {
                        return Err(StoreError::NotMigrated(format!(
                            "{} has no marker column {c}",
                            e.table
                        )));
                    }
                }
            }
        }
        Ok(())
    }

    fn program(&self, entity: &str, mode: Mode) -> Result<CachedProgram> {
        let k = (entity.to_string(), mode == Mode::Execute);
        if let Some(p) = self.programs.lock().expect("programs lock").get(&k) {
            return Ok(p.clone());
        }
        let plan = plan_delete(&self.policy, entity)?;
        self.ensure_ready(&plan)?;
        let program = render_delete(self.dialect(), &plan, &self.schema, mode);
        let p = Arc::new((plan, program));
        self.programs
            .lock()
            .expect("programs lock")
            .insert(k, p.clone());
        Ok(p)
    }

    /// Runs a delete program; returns (affected, nullified, blockers, and
    /// the entities whose table changed since the schema was read).
    async fn run_program(
        &self,
        tx: &mut Tx,
        plan: &DeletePlan,
        program: &DeleteProgram,
        b: &Bindings,
        stop_when_blocked: bool,
    ) -> Result<ProgramReport> {
        let mut affected = Vec::new();
        let mut nullified = Vec::new();
        let mut blocked = Vec::new();
        let mut stale = Vec::new();
        for s in &program.statements {
            if !s.reports {
                tx.rows_stmt(&s.stmt, b).await?;
                continue;
            }
            for r in tx.rows_stmt(&s.stmt, b).await? {
                let n: u64 = col(&r, 2).parse().unwrap_or(0);
                // A gate's only result that counts is whether it stops.
                if s.gate && !matches!(col(&r, 0).as_str(), "blocked" | "stale") {
                    continue;
                }
                match col(&r, 0).as_str() {
                    "rows" => {
                        let name = col(&r, 1);
                        let strategy = plan
                            .nodes
                            .iter()
                            .find(|x| x.entity.name == name)
                            .map(|x| x.entity.strategy)
                            .unwrap_or(Strategy::Soft);
                        affected.push(EntityCount {
                            entity: name,
                            strategy: strategy.as_str().to_string(),
                            rows: n,
                        })
                    }
                    "nullified" if n > 0 => nullified.push(NullifiedCount {
                        entity: col(&r, 1),
                        rows: n,
                    }),
                    "blocked" if n > 0 => {
                        let i: usize = col(&r, 1).parse().unwrap_or(0);
                        blocked.push(Blocker {
                            relation: plan
                                .restricts
                                .get(i)
                                .map(|s| s.relation.describe())
                                .unwrap_or_default(),
                            rows: n,
                        })
                    }
                    "stale" if n > 0 => stale.push(col(&r, 1)),
                    _ => {}
                }
            }
            if stop_when_blocked && !(blocked.is_empty() && stale.is_empty()) {
                break;
            }
        }
        Ok(ProgramReport {
            affected,
            nullified,
            blocked,
            stale,
        })
    }

    /// Explains why the root matched nothing.
    async fn root_missing(&self, tx: &mut Tx, entity: &str, key: &KeyValue) -> Result<StoreError> {
        let e = &self.policy.entities[entity];
        let stmt = queries::row_status(self.dialect(), e, &self.schema);
        let b = Bindings {
            key: key.values.clone(),
            ..Default::default()
        };
        let rows = tx.rows_stmt(&stmt, &b).await?;
        Ok(match rows.first() {
            Some(r) if !col(r, 0).is_empty() => StoreError::AlreadyDeleted {
                entity: entity.to_string(),
                key: key.to_string(),
                by: Some(col(r, 1)).filter(|s| !s.is_empty()),
            },
            _ => StoreError::NotFound {
                entity: entity.to_string(),
                key: key.to_string(),
            },
        })
    }

    /// What deleting `entity` `key` would do. Changes nothing.
    pub async fn plan(&self, entity: &str, key: &str) -> Result<PlanReport> {
        let key = self.key(entity, key)?;
        let prog = self.program(entity, Mode::Preview)?;
        let (plan, program) = (&prog.0, &prog.1);
        let b = Bindings {
            deletion_id: uuid::Uuid::nil().to_string(),
            now: now_text().1,
            key: key.values.clone(),
            ..Default::default()
        };
        let mut tx = self.db.begin_read().await?;
        let ProgramReport {
            affected,
            nullified,
            blocked: blocked_by,
            ..
        } = self.run_program(&mut tx, plan, program, &b, false).await?;
        if affected.first().map(|c| c.rows).unwrap_or(0) == 0 {
            let err = self.root_missing(&mut tx, entity, &key).await?;
            tx.rollback().await?;
            return Err(err);
        }
        tx.rollback().await?;
        Ok(PlanReport {
            entity: entity.to_string(),
            key: self.key_json(entity, &key, false),
            // Like a real delete's outcome: only tables with rows to change.
            affected: affected.into_iter().filter(|c| c.rows > 0).collect(),
            nullified,
            blocked_by,
        })
    }

    /// Deletes one root row and its cascade in one transaction, with the
    /// deletion record, the audit entry and the outbox records. Retries
    /// deadlocks and serialization failures a bounded number of times.
    pub async fn delete(&self, req: &DeleteRequest) -> Result<DeletionOutcome> {
        let key = self.key(&req.entity, &req.key)?;
        let prog = self.program(&req.entity, Mode::Execute)?;
        with_retries(|| self.delete_once(req, &key, &prog.0, &prog.1)).await
    }

    async fn delete_once(
        &self,
        req: &DeleteRequest,
        key: &KeyValue,
        plan: &DeletePlan,
        program: &DeleteProgram,
    ) -> Result<DeletionOutcome> {
        let d = self.dialect();
        let id = uuid::Uuid::now_v7().to_string();
        let (_, now) = now_text();
        let b = Bindings {
            deletion_id: id.clone(),
            now: now.clone(),
            key: key.values.clone(),
            ..Default::default()
        };
        let mut tx = self.db.begin_write().await?;
        let ProgramReport {
            affected,
            nullified,
            blocked,
            stale,
        } = self.run_program(&mut tx, plan, program, &b, true).await?;
        if let Some(bl) = blocked.first() {
            tx.rollback().await?;
            return Err(StoreError::Blocked {
                relation: bl.relation.clone(),
                count: bl.rows,
            });
        }
        if let Some(entity) = stale.first() {
            tx.rollback().await?;
            return Err(StoreError::SchemaChanged {
                entity: entity.clone(),
                table: self.policy.entities[entity].table.clone(),
            });
        }
        if affected.first().map(|c| c.rows).unwrap_or(0) == 0 {
            let err = self.root_missing(&mut tx, &req.entity, key).await?;
            tx.rollback().await?;
            return Err(err);
        }
        // With the counts, how each entity was reached: restore skips the
        // parent check where one relation reached every row (its parents are
        // then in this same deletion).
        let entities: Vec<Value> = affected
            .iter()
            .filter(|c| c.rows > 0)
            .map(|c| {
                let only_via = plan
                    .nodes
                    .iter()
                    .skip(1)
                    .find(|n| n.entity.name == c.entity)
                    .filter(|n| n.incoming.len() == 1 && n.recursive.is_empty())
                    .map(|n| n.incoming[0].describe());
                json!({"entity": c.entity, "strategy": c.strategy, "rows": c.rows, "only_via": only_via})
            })
            .collect();
        let summary = json!({"entities": entities, "nullified": nullified});
        let key_json = self.key_json(&req.entity, key, false);
        let audit_key = self.key_json(&req.entity, key, true);
        let context = if req.context.is_null() {
            json!({})
        } else {
            req.context.clone()
        };
        let record = queries::insert_deletion(d);
        let record_params = vec![
            Some(id.clone()),
            Some("delete".into()),
            Some(now.clone()),
            req.actor.clone(),
            req.reason.clone(),
            Some(context.to_string()),
            Some(req.entity.clone()),
            Some(audit_key.to_string()),
            Some(summary.to_string()),
        ];
        let counts: serde_json::Map<String, Value> = affected
            .iter()
            .filter(|c| c.rows > 0)
            .map(|c| (c.entity.clone(), Value::from(c.rows)))
            .collect();
        let nulls: serde_json::Map<String, Value> = nullified
            .iter()
            .map(|c| (c.entity.clone(), Value::from(c.rows)))
            .collect();
        let hash = audit::append(
            &mut tx,
            d,
            &now,
            "delete",
            Some(&id),
            json!({
                "actor": req.actor,
                "reason": req.reason,
                "context": context,
                "entity": req.entity,
                "key": audit_key,
                "counts": counts,
                "nullified": nulls,
            }),
            (&record, record_params),
        )
        .await?;
        tx.commit().await?;
        Ok(DeletionOutcome {
            deletion_id: id,
            at: now,
            entity: req.entity.clone(),
            key: key_json,
            affected: affected.into_iter().filter(|c| c.rows > 0).collect(),
            nullified,
            audit_hash: hash,
        })
    }

    async fn load_deletion(&self, tx: &mut Tx, id: &str, lock: bool) -> Result<DeletionRecord> {
        if uuid::Uuid::parse_str(id).is_err() {
            return Err(StoreError::BadDeletionId(id.to_string()));
        }
        let rows = tx
            .rows(
                &queries::deletion_by_id(self.dialect(), lock),
                &[Some(id.to_string())],
            )
            .await?;
        rows.first()
            .map(|r| DeletionRecord::from_row(r))
            .ok_or_else(|| StoreError::DeletionNotFound(id.to_string()))
    }

    fn restore_program(
        &self,
        rec: &DeletionRecord,
        shape: &reshape::Shape,
    ) -> Result<lethe_sql::RestoreProgram> {
        let mut entities = Vec::new();
        for c in &rec.affected {
            let e = self
                .policy
                .entity(&c.entity)
                .ok_or_else(|| StoreError::EntityGone(c.entity.clone()))?;
            entities.push(RestoreEntity {
                entity: e,
                marked: e.has_markers(),
                stored: shape.groups.get(&c.entity).cloned().unwrap_or_default(),
                only_via: rec.only_via.get(&c.entity).cloned(),
            });
        }
        let mut nullified = Vec::new();
        for c in &rec.nullified {
            nullified.push(
                self.policy
                    .entity(&c.entity)
                    .ok_or_else(|| StoreError::EntityGone(c.entity.clone()))?,
            );
        }
        Ok(render_restore(
            self.dialect(),
            &self.policy,
            &self.schema,
            &entities,
            &nullified,
        ))
    }

    /// Refuses deletions that cannot be restored: restored already, purged
    /// (some of their rows are gone for good), or a purge itself.
    fn restorable(rec: &DeletionRecord) -> Result<()> {
        if let Some(at) = &rec.restored_at {
            return Err(StoreError::AlreadyRestored {
                id: rec.id.clone(),
                at: at.clone(),
            });
        }
        if rec.kind == "purge" {
            return Err(StoreError::Invalid(format!(
                "{} is a purge, not a deletion: purged rows are gone for good and cannot be restored",
                rec.id
            )));
        }
        if rec.kind == "erase" {
            return Err(StoreError::Invalid(format!(
                "{} is an erasure: the subject's rows are gone for good (GDPR Art. 17) and cannot be restored",
                rec.id
            )));
        }
        if rec.kind == "migrate" {
            return Err(StoreError::Invalid(format!(
                "{} is a strategy migration, not a deletion: the rows it moved keep their own deletions (restore those), or move them back with `lethe migrate-strategy`",
                rec.id
            )));
        }
        if let Some(at) = &rec.purged_at {
            return Err(StoreError::Purged {
                id: rec.id.clone(),
                at: at.clone(),
            });
        }
        Ok(())
    }

    /// Runs the restore checks; returns unique conflicts and deleted parents.
    async fn restore_checks(
        &self,
        tx: &mut Tx,
        program: &lethe_sql::RestoreProgram,
        b: &Bindings,
    ) -> Result<(Vec<UniqueConflict>, Vec<ParentDeleted>)> {
        let mut conflicts = Vec::new();
        let mut parents = Vec::new();
        for s in &program.checks {
            for r in tx.rows_stmt(s, b).await? {
                match col(&r, 0).as_str() {
                    "unique" => conflicts.push(UniqueConflict {
                        entity: col(&r, 1),
                        restored: json_value(&col(&r, 2)),
                        active: json_value(&col(&r, 3)),
                        columns: col(&r, 4),
                    }),
                    "parent" => {
                        let deletion_id = col(&r, 3);
                        let status = match (deletion_id.is_empty(), col(&r, 5).as_str()) {
                            (false, _) => "deleted",
                            (true, "soft") => "deleted_outside_lethe",
                            (true, _) => "missing",
                        };
                        parents.push(ParentDeleted {
                            relation: col(&r, 1),
                            child: json_value(&col(&r, 2)),
                            parent: json_value(&col(&r, 4)),
                            deletion_id: Some(deletion_id).filter(|d| !d.is_empty()),
                            status: status.to_string(),
                        })
                    }
                    _ => {}
                }
            }
        }
        Ok((conflicts, parents))
    }

    /// What restoring deletion `id` would do, and what would stop it
    /// (conflicts, deleted parents, columns that changed since rows were
    /// stored). `opts.set` and `opts.drop_missing` are taken into account.
    pub async fn restore_preview_with(
        &self,
        id: &str,
        opts: &RestoreOptions,
    ) -> Result<RestorePreview> {
        self.require_internal()?;
        let mut tx = self.db.begin_read().await?;
        let rec = self.load_deletion(&mut tx, id, false).await?;
        Self::restorable(&rec)?;
        let shape = reshape::analyse(
            &mut tx,
            &self.policy,
            &self.schema,
            &rec.id,
            &opts.set,
            opts.drop_missing,
        )
        .await?;
        // The other checks read stored rows in the table's types: they can
        // only run once every value converts.
        let (conflicts, deleted_parents) =
            if shape.problems.iter().any(|p| p.problem == "not_castable") {
                (Vec::new(), Vec::new())
            } else {
                let program = self.restore_program(&rec, &shape)?;
                let b = Bindings {
                    deletion_id: rec.id.clone(),
                    now: now_text().1,
                    values: shape.values.clone(),
                    ..Default::default()
                };
                self.restore_checks(&mut tx, &program, &b).await?
            };
        tx.rollback().await?;
        Ok(RestorePreview {
            deletion_id: rec.id,
            would_restore: rec.affected,
            nullified: rec.nullified,
            conflicts,
            deleted_parents,
            schema_changes: shape.changes,
            problems: shape.problems,
        })
    }

    /// [`Engine::restore_preview_with`] with no `--set` values.
    pub async fn restore_preview(&self, id: &str) -> Result<RestorePreview> {
        self.restore_preview_with(id, &RestoreOptions::default())
            .await
    }

    /// Undoes exactly deletion `id`: unmarks its soft rows, re-inserts its
    /// stored (hard, archived) rows, puts set-null columns back. Refuses,
    /// changing nothing, on a unique conflict, a deleted parent or a table
    /// that changed in a way the stored rows do not fit.
    pub async fn restore(&self, id: &str, actor: Option<&str>) -> Result<RestoreOutcome> {
        self.restore_as(id, actor, None).await
    }

    /// [`Engine::restore`], recording why in the audit entry.
    pub async fn restore_as(
        &self,
        id: &str,
        actor: Option<&str>,
        reason: Option<&str>,
    ) -> Result<RestoreOutcome> {
        self.restore_with(
            id,
            &RestoreOptions {
                actor: actor.map(str::to_string),
                reason: reason.map(str::to_string),
                ..Default::default()
            },
        )
        .await
    }

    /// [`Engine::restore`] with values for columns added since the rows were
    /// stored and the choice to drop values of columns removed since.
    pub async fn restore_with(&self, id: &str, opts: &RestoreOptions) -> Result<RestoreOutcome> {
        self.require_internal()?;
        with_retries(|| self.restore_once(id, opts)).await
    }

    async fn restore_once(&self, id: &str, opts: &RestoreOptions) -> Result<RestoreOutcome> {
        let d = self.dialect();
        let (actor, reason) = (opts.actor.as_deref(), opts.reason.as_deref());
        let mut tx = self.db.begin_write().await?;
        let rec = self.load_deletion(&mut tx, id, true).await?;
        if let Err(e) = Self::restorable(&rec) {
            tx.rollback().await?;
            return Err(e);
        }
        let shape = reshape::analyse(
            &mut tx,
            &self.policy,
            &self.schema,
            &rec.id,
            &opts.set,
            opts.drop_missing,
        )
        .await?;
        if !shape.problems.is_empty() {
            tx.rollback().await?;
            return Err(StoreError::RestoreShape {
                problems: shape.problems,
            });
        }
        let program = self.restore_program(&rec, &shape)?;
        let (_, now) = now_text();
        let b = Bindings {
            deletion_id: rec.id.clone(),
            now: now.clone(),
            values: shape.values.clone(),
            ..Default::default()
        };
        let (conflicts, parents) = self.restore_checks(&mut tx, &program, &b).await?;
        if !conflicts.is_empty() {
            tx.rollback().await?;
            return Err(StoreError::RestoreConflict { conflicts });
        }
        if !parents.is_empty() {
            tx.rollback().await?;
            return Err(StoreError::ParentDeleted { parents });
        }
        let mut put_back = Vec::new();
        for (i, s) in program.apply.iter().enumerate() {
            let n = tx.exec_stmt(s, &b).await.map_err(|e| match e {
                StoreError::Database(m) if m.contains("unique") || m.contains("UNIQUE") => {
                    StoreError::RestoreConflict {
                        conflicts: vec![UniqueConflict {
                            entity: String::new(),
                            columns: String::new(),
                            restored: Value::Null,
                            active: Value::from(m),
                        }],
                    }
                }
                other => other,
            })?;
            if let Some((entity, _)) = program.put_back.iter().find(|(_, at)| *at == i)
                && n > 0
            {
                put_back.push(NullifiedCount {
                    entity: entity.clone(),
                    rows: n,
                });
            }
        }
        let mark = queries::mark_restored(d);
        let mark_params = vec![
            Some(rec.id.clone()),
            Some(now.clone()),
            actor.map(str::to_string),
            reason.map(str::to_string),
        ];
        let counts: serde_json::Map<String, Value> = rec
            .affected
            .iter()
            .map(|c| (c.entity.clone(), Value::from(c.rows)))
            .collect();
        let mut fields = json!({
            "actor": actor,
            "reason": reason,
            "entity": rec.entity,
            "key": rec.key,
            "counts": counts,
        });
        if !opts.context.is_null() {
            fields["context"] = opts.context.clone();
        }
        let hash = audit::append(
            &mut tx,
            d,
            &now,
            "restore",
            Some(&rec.id),
            fields,
            (&mark, mark_params),
        )
        .await?;
        tx.commit().await?;
        Ok(RestoreOutcome {
            deletion_id: rec.id,
            at: now,
            restored: rec.affected,
            nullified_restored: put_back,
            audit_hash: hash,
        })
    }

    /// Deletions, newest first, optionally for one root entity.
    pub async fn deletions(&self, entity: Option<&str>, limit: u32) -> Result<Vec<DeletionRecord>> {
        self.require_internal()?;
        if let Some(e) = entity {
            self.entity(e)?;
        }
        let rows = self
            .db
            .rows(
                &queries::list_deletions(self.dialect()),
                &[entity.map(str::to_string), Some(limit.to_string())],
            )
            .await?;
        Ok(rows.iter().map(|r| DeletionRecord::from_row(r)).collect())
    }

    /// One deletion.
    pub async fn deletion(&self, id: &str) -> Result<DeletionRecord> {
        self.require_internal()?;
        let mut tx = self.db.begin_read().await?;
        let rec = self.load_deletion(&mut tx, id, false).await;
        tx.rollback().await?;
        rec
    }

    /// The outbox records written for deletion `id` (its delete and restore).
    pub async fn outbox(&self, id: &str) -> Result<Vec<OutboxRecord>> {
        self.require_internal()?;
        let rows = self
            .db
            .rows(
                &queries::outbox_for(self.dialect()),
                &[Some(id.to_string())],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| OutboxRecord {
                id: col(r, 0).parse().unwrap_or(0),
                event: col(r, 1),
                entity: col(r, 2),
                part: col(r, 3).parse().unwrap_or(0),
                keys: serde_json::from_str(&col(r, 4)).unwrap_or(Value::Null),
                key_columns: serde_json::from_str(&col(r, 6)).unwrap_or_default(),
                columns: serde_json::from_str(&col(r, 7)).unwrap_or_default(),
                rows: col(r, 5).parse().unwrap_or(0),
            })
            .collect())
    }

    pub async fn audit_verify(&self, expect_head: Option<&str>) -> Result<audit::VerifyReport> {
        self.require_internal()?;
        audit::verify(&self.db, expect_head).await
    }

    pub async fn audit_head(&self) -> Result<(i64, String)> {
        self.require_internal()?;
        audit::head(&self.db).await
    }

    pub(crate) fn require_internal(&self) -> Result<()> {
        if self.internal_installed {
            Ok(())
        } else {
            Err(StoreError::NotMigrated(
                "Lethe's own tables are missing, or older than this version of Lethe".into(),
            ))
        }
    }
}
