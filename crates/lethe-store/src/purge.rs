//! `lethe purge`: removes (or archives) deleted rows whose retention ran
//! out, in bounded batches of short transactions.
//!
//! Each batch is one transaction: it passes the delete guard, takes the
//! next expired rows after the previous batch's last key, removes or moves
//! them, writes their outbox records (`purged`, `archived`), marks their
//! deletions purged (they can no longer be restored), and appends an audit
//! entry, all before it commits. A purge killed at any point has committed
//! whole batches only; run again, it starts over and finds what is left.
//! Rows of held deletions, and rows other rows still reference, are never
//! taken; the report counts them.

use std::time::{Duration, Instant};

use lethe_core::{AfterRetention, Entity, Strategy};
use lethe_sql::purge::{self, Source};
use lethe_sql::{Stmt, queries};
use serde::Serialize;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::audit;
use crate::db::{Bindings, Tx, col};
use crate::engine::{Engine, now_text, transient};
use crate::error::{Result, StoreError};

/// Rows per batch when not given.
pub const DEFAULT_BATCH: u32 = 1000;

/// How `lethe purge` runs.
#[derive(Debug, Clone)]
pub struct PurgeOptions {
    /// Only this entity (every entity with a retention when `None`).
    pub entity: Option<String>,
    /// Count what is due and change nothing.
    pub dry_run: bool,
    /// Rows per batch (each batch is one short transaction).
    pub batch_size: u32,
    /// Pause between batches so the purge removes at most this many rows
    /// per second.
    pub max_rows_per_second: Option<u32>,
    /// Recorded in the audit entries.
    pub actor: Option<String>,
}

impl Default for PurgeOptions {
    fn default() -> Self {
        PurgeOptions {
            entity: None,
            dry_run: false,
            batch_size: DEFAULT_BATCH,
            max_rows_per_second: None,
            actor: None,
        }
    }
}

/// What a purge did (or would do) to one source of one entity's rows.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PurgeTask {
    pub entity: String,
    /// `table` (rows marked deleted), `snapshots` (hard deletes' copies)
    /// or `archive` (archived rows).
    pub source: String,
    /// `purge` (removed for good) or `archive` (moved to the archive).
    pub action: String,
    /// The entity's retention, as written (`90d`).
    pub retention: String,
    /// Rows deleted before this time are expired.
    pub cutoff: String,
    /// Expired rows the purge could take when it started.
    pub due: u64,
    /// Rows it removed or moved.
    pub done: u64,
    /// Expired rows kept by a legal hold (at the end).
    pub held: u64,
    /// Expired rows kept because other rows still reference them (at the
    /// end).
    pub referenced: u64,
}

/// The result of [`Engine::purge`].
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PurgeReport {
    pub dry_run: bool,
    /// The purge's own record (a deletion of kind `purge`); `None` when
    /// nothing was removed.
    pub purge_id: Option<String>,
    pub tasks: Vec<PurgeTask>,
    pub batches: u64,
    /// The longest batch transaction, in milliseconds.
    pub longest_batch_ms: u64,
    pub elapsed_ms: u64,
}

impl PurgeReport {
    pub fn done(&self) -> u64 {
        self.tasks.iter().map(|t| t.done).sum()
    }
    pub fn due(&self) -> u64 {
        self.tasks.iter().map(|t| t.due).sum()
    }
    pub fn held(&self) -> u64 {
        self.tasks.iter().map(|t| t.held).sum()
    }
    pub fn referenced(&self) -> u64 {
        self.tasks.iter().map(|t| t.referenced).sum()
    }
}

/// Progress after each batch.
#[derive(Debug, Clone)]
pub struct PurgeProgress<'a> {
    pub task: &'a PurgeTask,
    /// Rows done so far, all tasks.
    pub done: u64,
    /// Rows due when the purge started, all tasks.
    pub due: u64,
}

struct Work<'a> {
    e: &'a Entity,
    source: Source,
    then: AfterRetention,
    cutoff: String,
    report: PurgeTask,
}

/// Where an entity's expired rows can be.
pub(crate) fn retention_sources(e: &Entity) -> Vec<Source> {
    sources(e).into_iter().map(|(s, _)| s).collect()
}

/// The sources of an entity's expired rows, and what retention does with
/// each.
fn sources(e: &Entity) -> Vec<(Source, AfterRetention)> {
    let Some(r) = &e.retention else {
        return Vec::new();
    };
    let mut v = Vec::new();
    if e.has_markers() {
        v.push((Source::Marked, r.then));
    }
    match e.strategy {
        Strategy::Hard => v.push((Source::Stored("snapshot"), r.then)),
        Strategy::Archive => v.push((Source::Stored("archive"), AfterRetention::Purge)),
        Strategy::Soft => {}
    }
    v
}

fn source_name(s: Source) -> &'static str {
    match s {
        Source::Marked => "table",
        Source::Stored("snapshot") => "snapshots",
        Source::Stored(_) => "archive",
    }
}

impl Engine {
    /// The expired rows of every entity with a retention (or of
    /// `opts.entity`), counted: `(due, held, referenced)` per source.
    async fn purge_work(&self, opts: &PurgeOptions) -> Result<Vec<Work<'_>>> {
        if let Some(name) = &opts.entity {
            let e = self
                .policy
                .entity(name)
                .ok_or_else(|| lethe_core::plan::unknown_entity(&self.policy, name))?;
            if e.retention.is_none() {
                return Err(StoreError::Invalid(format!(
                    "entity {name} has no retention: add retention = \"90d\" (and then = \"purge\" or \"archive\") under [entities.{name}]"
                )));
            }
        }
        let now = OffsetDateTime::now_utc();
        let mut work = Vec::new();
        for name in lethe_core::graph::removal_order(&self.policy) {
            if opts.entity.as_ref().is_some_and(|o| *o != name) {
                continue;
            }
            let e = &self.policy.entities[&name];
            if self.schema.table(&e.table).is_none() {
                return Err(lethe_core::CoreError::missing_table(&e.table, &e.name).into());
            }
            let Some(r) = &e.retention else { continue };
            let cutoff = crate::time_text(now - r.after);
            for (source, then) in sources(e) {
                let (due, held, referenced) = self.purge_counts(e, source, &cutoff).await?;
                work.push(Work {
                    e,
                    source,
                    then,
                    cutoff: cutoff.clone(),
                    report: PurgeTask {
                        entity: e.name.clone(),
                        source: source_name(source).into(),
                        action: then.as_str().into(),
                        retention: r.text.clone(),
                        cutoff: cutoff.clone(),
                        due,
                        done: 0,
                        held,
                        referenced,
                    },
                });
            }
        }
        Ok(work)
    }

    pub(crate) async fn purge_counts(
        &self,
        e: &Entity,
        source: Source,
        cutoff: &str,
    ) -> Result<(u64, u64, u64)> {
        self.source_counts(e, source, purge::Take::Expired, cutoff)
            .await
    }

    /// `(due, held, referenced)` of `e`'s rows in `source`.
    pub(crate) async fn source_counts(
        &self,
        e: &Entity,
        source: Source,
        take: purge::Take,
        cutoff: &str,
    ) -> Result<(u64, u64, u64)> {
        let stmt = purge::counts(self.dialect(), &self.policy, &self.schema, e, source, take);
        let b = Bindings {
            values: vec![cutoff.to_string()],
            ..Default::default()
        };
        let mut tx = self.db.begin_read().await?;
        let rows = tx.rows_stmt(&stmt, &b).await?;
        tx.rollback().await?;
        let (mut due, mut held, mut referenced) = (0, 0, 0);
        for r in &rows {
            let n: u64 = col(r, 2).parse().unwrap_or(0);
            match (col(r, 0).as_str(), col(r, 1).as_str()) {
                ("1", _) => held += n,
                (_, "1") => referenced += n,
                _ => due += n,
            }
        }
        Ok((due, held, referenced))
    }

    /// Purges (or archives) every deleted row whose retention ran out, in
    /// batches; `progress` is called after each batch.
    pub async fn purge(
        &self,
        opts: &PurgeOptions,
        progress: &mut (dyn FnMut(&PurgeProgress<'_>) + Send),
    ) -> Result<PurgeReport> {
        self.require_internal()?;
        if opts.batch_size == 0 {
            return Err(StoreError::Invalid(
                "--batch-size must be at least 1".into(),
            ));
        }
        let started = Instant::now();
        let mut work = self.purge_work(opts).await?;
        let mut report = PurgeReport {
            dry_run: opts.dry_run,
            purge_id: None,
            tasks: Vec::new(),
            batches: 0,
            longest_batch_ms: 0,
            elapsed_ms: 0,
        };
        if opts.dry_run {
            report.tasks = work.into_iter().map(|w| w.report).collect();
            report.elapsed_ms = started.elapsed().as_millis() as u64;
            return Ok(report);
        }
        let run_id = uuid::Uuid::now_v7().to_string();
        let due: u64 = work.iter().map(|w| w.report.due).sum();
        let mut done_all = 0u64;
        let mut longest = Duration::ZERO;
        let rate_start = Instant::now();
        for i in 0..work.len() {
            // A self-referencing table frees a parent only once its
            // children are gone: go over it again while that helps.
            loop {
                let before = work[i].report.done;
                let mut after: Option<Vec<String>> = None;
                loop {
                    let t0 = Instant::now();
                    let outcome = self
                        .purge_batch_retrying(&work, i, &run_id, opts, after.as_deref())
                        .await?;
                    let took = t0.elapsed();
                    longest = longest.max(took);
                    let Some((n, last)) = outcome else { break };
                    if n > 0 {
                        report.batches += 1;
                        work[i].report.done += n;
                        done_all += n;
                        report.purge_id = Some(run_id.clone());
                        progress(&PurgeProgress {
                            task: &work[i].report,
                            done: done_all,
                            due,
                        });
                    }
                    after = Some(last);
                    if let Some(rate) = opts.max_rows_per_second.filter(|r| *r > 0) {
                        let should = Duration::from_secs_f64(done_all as f64 / f64::from(rate));
                        if let Some(wait) = should.checked_sub(rate_start.elapsed()) {
                            tokio::time::sleep(wait).await;
                        }
                    }
                }
                let (left, held, referenced) = self
                    .purge_counts(work[i].e, work[i].source, &work[i].cutoff)
                    .await?;
                work[i].report.held = held;
                work[i].report.referenced = referenced;
                let self_referencing = self
                    .policy
                    .children_of(&work[i].e.name)
                    .any(|r| r.is_self_reference());
                if !(self_referencing && left > 0 && work[i].report.done > before) {
                    break;
                }
            }
        }
        report.tasks = work.into_iter().map(|w| w.report).collect();
        report.longest_batch_ms = longest.as_millis() as u64;
        report.elapsed_ms = started.elapsed().as_millis() as u64;
        Ok(report)
    }

    async fn purge_batch_retrying(
        &self,
        work: &[Work<'_>],
        i: usize,
        run_id: &str,
        opts: &PurgeOptions,
        after: Option<&[String]>,
    ) -> Result<Option<(u64, Vec<String>)>> {
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            match self.purge_batch(work, i, run_id, opts, after).await {
                Err(e) if transient(&e) && attempt < 5 => {
                    tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt * attempt)))
                        .await;
                }
                other => return other,
            }
        }
    }

    /// One batch of task `i`: `None` when nothing is left after `after`,
    /// else the rows done and the last key taken.
    async fn purge_batch(
        &self,
        work: &[Work<'_>],
        i: usize,
        run_id: &str,
        opts: &PurgeOptions,
        after: Option<&[String]>,
    ) -> Result<Option<(u64, Vec<String>)>> {
        let d = self.dialect();
        let w = &work[i];
        let pick = purge::Pick {
            take: purge::Take::Expired,
            after: after.is_some(),
            limit: opts.batch_size,
        };
        let stmt = match w.source {
            Source::Marked => {
                purge::marked_batch(d, &self.policy, &self.schema, w.e, pick, w.then.into())
            }
            Source::Stored(kind) => purge::stored_batch(
                d,
                &self.policy,
                &self.schema,
                w.e,
                kind,
                pick,
                w.then.into(),
            ),
        };
        let (_, now) = now_text();
        let b = Bindings {
            deletion_id: run_id.to_string(),
            now: now.clone(),
            key: after.map(<[String]>::to_vec).unwrap_or_default(),
            values: vec![w.cutoff.clone()],
        };
        let mut batch = self.open_batch(w.e, &stmt, &b).await?;
        let Some(last) = batch.last.take() else {
            batch.tx.rollback().await?;
            return Ok(None);
        };
        if batch.done == 0 {
            // Every row taken was restored or changed meanwhile: nothing
            // to record, go on after them.
            batch.tx.rollback().await?;
            return Ok(Some((0, last)));
        }
        // Totals so far, this batch included.
        let entities: Vec<Value> = work
            .iter()
            .enumerate()
            .map(|(j, x)| (x, x.report.done + if j == i { batch.done } else { 0 }))
            .filter(|(_, rows)| *rows > 0)
            .map(|(x, rows)| {
                json!({
                    "entity": x.e.name,
                    "strategy": x.then.as_str(),
                    "source": source_name(x.source),
                    "rows": rows,
                })
            })
            .collect();
        let run = RunRecord {
            id: run_id,
            kind: "purge",
            action: if w.then == AfterRetention::Purge {
                "purge"
            } else {
                "archive"
            },
            root: opts.entity.as_deref().unwrap_or("*"),
            actor: opts.actor.as_deref(),
            reason: "retention",
            now: &now,
        };
        self.record_run_batch(
            &mut batch.tx,
            &run,
            entities,
            json!({
                "entity": w.e.name,
                "source": source_name(w.source),
                "retention": w.report.retention,
                "cutoff": w.cutoff,
                "rows": batch.done,
            }),
        )
        .await?;
        batch.tx.commit().await?;
        Ok(Some((batch.done, last)))
    }

    /// Runs one batch statement of `e` in a new write transaction that
    /// passes the delete guard (and, on PostgreSQL, waits for hold changes
    /// in flight). The caller records and commits, or rolls back.
    pub(crate) async fn open_batch(&self, e: &Entity, stmt: &Stmt, b: &Bindings) -> Result<Batch> {
        let mut tx = self.db.begin_write().await?;
        if let Some(sql) = purge::begin_batch(self.dialect()) {
            tx.rows(&sql, &[]).await?;
        }
        let mut done = 0u64;
        let mut last = None;
        let mut stale = false;
        for r in tx.rows_stmt(stmt, b).await? {
            match col(&r, 0).as_str() {
                "done" => done += col(&r, 2).parse::<u64>().unwrap_or(0),
                "last" => last = Some(col(&r, 2)),
                "stale" if col(&r, 2) != "0" => stale = true,
                _ => {}
            }
        }
        if stale {
            tx.rollback().await?;
            return Err(StoreError::SchemaChanged {
                entity: e.name.clone(),
                table: e.table.clone(),
            });
        }
        let last = last.map(|l| {
            serde_json::from_str::<Vec<Value>>(&l)
                .unwrap_or_default()
                .iter()
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect()
        });
        Ok(Batch { tx, done, last })
    }

    /// A run's record (a deletion of kind `purge` or `migrate`, inserted by
    /// its first batch, its summary brought up to date by each) and the
    /// batch's audit entry, in the batch's transaction.
    pub(crate) async fn record_run_batch(
        &self,
        tx: &mut Tx,
        run: &RunRecord<'_>,
        entities: Vec<Value>,
        audit_fields: Value,
    ) -> Result<()> {
        let d = self.dialect();
        let record_params = vec![
            Some(run.id.to_string()),
            Some(run.kind.into()),
            Some(run.now.to_string()),
            run.actor.map(str::to_string),
            Some(run.reason.into()),
            Some("{}".into()),
            Some(run.root.to_string()),
            Some("{}".into()),
            Some(json!({"entities": entities, "nullified": []}).to_string()),
        ];
        let mut fields = audit_fields;
        fields["actor"] = json!(run.actor);
        audit::append(
            tx,
            d,
            run.now,
            run.action,
            Some(run.id),
            fields,
            (&queries::upsert_deletion(d), record_params),
        )
        .await?;
        Ok(())
    }
}

/// A batch statement run, not yet committed.
pub(crate) struct Batch {
    pub tx: Tx,
    pub done: u64,
    /// The last key taken, as text values; `None` when the batch was empty.
    pub last: Option<Vec<String>>,
}

/// The run a batch belongs to, as recorded.
pub(crate) struct RunRecord<'a> {
    pub id: &'a str,
    /// `purge` or `migrate`.
    pub kind: &'a str,
    /// The audit action of its batches.
    pub action: &'a str,
    /// The entity it works on, or `*`.
    pub root: &'a str,
    pub actor: Option<&'a str>,
    pub reason: &'a str,
    pub now: &'a str,
}
