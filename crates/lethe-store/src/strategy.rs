//! `lethe migrate-strategy ENTITY --to archive|soft|hard`: moves an
//! entity's existing deleted rows to where the new strategy keeps them,
//! online, in batches of short transactions.
//!
//! - to `archive`: rows marked deleted in the table, and hard snapshots,
//!   become archived rows in the archive store;
//! - to `hard`: marked rows and archived rows become snapshots;
//! - to `soft`: stored rows go back into the table, marked deleted (the
//!   table needs Lethe's marker columns: `lethe migrate` with the entity
//!   set to soft adds them).
//!
//! Only deleted rows move, and every batch checks again that a row is
//! deleted in the statement that moves it: an application reading through
//! `<table>_active` (or under row-level security) sees no change at any
//! moment, and no active row is touched. Deleted rows still referenced by
//! other rows (a foreign key would break) stay until those go. Each batch
//! is audited and announced (`archived` when a row leaves its table,
//! `unarchived` when it comes back, deleted still), under one run record
//! of kind `migrate`.

use std::time::{Duration, Instant};

use lethe_core::{Entity, Strategy};
use lethe_sql::purge::{self, MarkedTo, Source, StoredTo, Take};
use serde::Serialize;
use serde_json::json;

use crate::db::{Bindings, col};
use crate::engine::{Engine, now_text, transient};
use crate::error::{Result, StoreError};
use crate::purge::RunRecord;

/// How `lethe migrate-strategy` runs.
#[derive(Debug, Clone)]
pub struct StrategyOptions {
    pub entity: String,
    pub to: Strategy,
    /// Count what would move; change nothing.
    pub dry_run: bool,
    pub batch_size: u32,
    pub max_rows_per_second: Option<u32>,
    pub actor: Option<String>,
}

/// One movement: rows from one place to another.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct StrategyMove {
    /// `table` (marked rows), `snapshots` or `archive`.
    pub from: String,
    pub to: String,
    /// Rows that can move (when it started).
    pub due: u64,
    pub moved: u64,
    /// Rows that stay: still referenced by other rows (from the table), or
    /// stored under an older shape of the table, or whose key is taken in
    /// the table (back to the table); counted at the end.
    pub referenced: u64,
    pub older_shape: u64,
    pub key_taken: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct StrategyReport {
    pub entity: String,
    pub to: String,
    pub dry_run: bool,
    /// The run's record (a deletion of kind `migrate`); `None` when
    /// nothing moved.
    pub run_id: Option<String>,
    pub moves: Vec<StrategyMove>,
    pub batches: u64,
    pub longest_batch_ms: u64,
    pub elapsed_ms: u64,
    /// The strategy the policy states for the entity, when it is not
    /// `to`: new deletes still follow the policy.
    pub policy_strategy: Option<String>,
}

#[derive(Clone, Copy)]
enum Step {
    Marked(MarkedTo),
    Stored(&'static str, StoredTo),
    Unstore,
}

fn steps(e: &Entity, to: Strategy) -> Vec<(Step, &'static str, &'static str)> {
    match to {
        Strategy::Archive => {
            let mut v = Vec::new();
            if e.has_markers() {
                v.push((Step::Marked(MarkedTo::Store("archive")), "table", "archive"));
            }
            v.push((
                Step::Stored("snapshot", StoredTo::Kind("archive")),
                "snapshots",
                "archive",
            ));
            v
        }
        Strategy::Hard => {
            let mut v = Vec::new();
            if e.has_markers() {
                v.push((
                    Step::Marked(MarkedTo::Store("snapshot")),
                    "table",
                    "snapshots",
                ));
            }
            v.push((
                Step::Stored("archive", StoredTo::Kind("snapshot")),
                "archive",
                "snapshots",
            ));
            v
        }
        Strategy::Soft => vec![(Step::Unstore, "snapshots, archive", "table")],
    }
}

impl Engine {
    async fn step_counts(&self, e: &Entity, step: Step) -> Result<(u64, u64, u64, u64)> {
        Ok(match step {
            Step::Marked(_) => {
                let (due, _, refd) = self.source_counts(e, Source::Marked, Take::All, "").await?;
                (due, refd, 0, 0)
            }
            Step::Stored(kind, _) => {
                let (due, _, _) = self
                    .source_counts(e, Source::Stored(kind), Take::All, "")
                    .await?;
                (due, 0, 0, 0)
            }
            Step::Unstore => {
                let rows = self
                    .db
                    .rows(
                        &lethe_sql::strategy::unstore_counts(self.dialect(), &self.schema, e),
                        &[],
                    )
                    .await?;
                let n = |i| {
                    rows.first()
                        .map(|r| col(r, i).parse().unwrap_or(0))
                        .unwrap_or(0)
                };
                (n(0), 0, n(1), n(2))
            }
        })
    }

    /// Moves `opts.entity`'s deleted rows to where `opts.to` keeps them;
    /// `progress(moved, due)` after each batch.
    pub async fn migrate_strategy(
        &self,
        opts: &StrategyOptions,
        progress: &mut (dyn FnMut(u64, u64) + Send),
    ) -> Result<StrategyReport> {
        self.require_internal()?;
        let e = self
            .policy
            .entity(&opts.entity)
            .ok_or_else(|| lethe_core::plan::unknown_entity(&self.policy, &opts.entity))?;
        if self.schema.table(&e.table).is_none() {
            return Err(lethe_core::CoreError::missing_table(&e.table, &e.name).into());
        }
        if opts.batch_size == 0 {
            return Err(StoreError::Invalid(
                "--batch-size must be at least 1".into(),
            ));
        }
        if opts.to == Strategy::Soft && !e.has_markers() {
            return Err(StoreError::NotMigrated(format!(
                "{} has no marker columns ({}, {}) to mark the rows that come back: set strategy = \"soft\" for {} in the policy and run `lethe migrate` (it adds them), then run this again",
                e.table, e.deleted_at, e.deletion_id, e.name
            )));
        }
        let started = Instant::now();
        let mut moves = Vec::new();
        let plan = steps(e, opts.to);
        for (step, from, to) in &plan {
            let (due, referenced, older_shape, key_taken) = self.step_counts(e, *step).await?;
            moves.push(StrategyMove {
                from: from.to_string(),
                to: to.to_string(),
                due,
                moved: 0,
                referenced,
                older_shape,
                key_taken,
            });
        }
        let mut report = StrategyReport {
            entity: e.name.clone(),
            to: opts.to.as_str().into(),
            dry_run: opts.dry_run,
            run_id: None,
            moves,
            batches: 0,
            longest_batch_ms: 0,
            elapsed_ms: 0,
            policy_strategy: Some(e.strategy.as_str().to_string())
                .filter(|_| e.strategy != opts.to),
        };
        if opts.dry_run {
            report.elapsed_ms = started.elapsed().as_millis() as u64;
            return Ok(report);
        }
        let run_id = uuid::Uuid::now_v7().to_string();
        let due: u64 = report.moves.iter().map(|m| m.due).sum();
        let mut moved = 0u64;
        let mut longest = Duration::ZERO;
        let rate_start = Instant::now();
        for (i, (step, _, _)) in plan.iter().enumerate() {
            loop {
                let before = report.moves[i].moved;
                let mut after: Option<Vec<String>> = None;
                loop {
                    let t0 = Instant::now();
                    let mut attempt: u32 = 0;
                    let outcome = loop {
                        attempt += 1;
                        match self
                            .strategy_batch(e, *step, &run_id, opts, &report, i, after.as_deref())
                            .await
                        {
                            Err(err) if transient(&err) && attempt < 5 => {
                                tokio::time::sleep(Duration::from_millis(
                                    20 * u64::from(attempt * attempt),
                                ))
                                .await
                            }
                            other => break other?,
                        }
                    };
                    longest = longest.max(t0.elapsed());
                    let Some((n, last)) = outcome else { break };
                    if n > 0 {
                        report.batches += 1;
                        report.moves[i].moved += n;
                        moved += n;
                        report.run_id = Some(run_id.clone());
                        progress(moved, due);
                    }
                    after = Some(last);
                    if let Some(rate) = opts.max_rows_per_second.filter(|r| *r > 0) {
                        let should = Duration::from_secs_f64(moved as f64 / f64::from(rate));
                        if let Some(wait) = should.checked_sub(rate_start.elapsed()) {
                            tokio::time::sleep(wait).await;
                        }
                    }
                }
                let (left, referenced, older_shape, key_taken) = self.step_counts(e, *step).await?;
                let m = &mut report.moves[i];
                (m.referenced, m.older_shape, m.key_taken) = (referenced, older_shape, key_taken);
                // A self-referencing table frees a parent once its children
                // moved: go over it again while that helps.
                let self_referencing = self
                    .policy
                    .children_of(&e.name)
                    .any(|r| r.is_self_reference());
                if !(self_referencing && left > 0 && m.moved > before) {
                    break;
                }
            }
        }
        report.longest_batch_ms = longest.as_millis() as u64;
        report.elapsed_ms = started.elapsed().as_millis() as u64;
        Ok(report)
    }

    #[allow(clippy::too_many_arguments)]
    async fn strategy_batch(
        &self,
        e: &Entity,
        step: Step,
        run_id: &str,
        opts: &StrategyOptions,
        report: &StrategyReport,
        i: usize,
        after: Option<&[String]>,
    ) -> Result<Option<(u64, Vec<String>)>> {
        let d = self.dialect();
        let pick = purge::Pick {
            take: Take::All,
            after: after.is_some(),
            limit: opts.batch_size,
        };
        let stmt = match step {
            Step::Marked(to) => purge::marked_batch(d, &self.policy, &self.schema, e, pick, to),
            Step::Stored(kind, to) => {
                purge::stored_batch(d, &self.policy, &self.schema, e, kind, pick, to)
            }
            Step::Unstore => lethe_sql::strategy::unstore_batch(
                d,
                &self.schema,
                e,
                after.is_some(),
                opts.batch_size,
            ),
        };
        let (_, now) = now_text();
        let b = Bindings {
            deletion_id: run_id.to_string(),
            now: now.clone(),
            key: after.map(<[String]>::to_vec).unwrap_or_default(),
            values: vec![String::new()],
        };
        let mut batch = self.open_batch(e, &stmt, &b).await?;
        let Some(last) = batch.last.take() else {
            batch.tx.rollback().await?;
            return Ok(None);
        };
        if batch.done == 0 {
            batch.tx.rollback().await?;
            return Ok(Some((0, last)));
        }
        let entities = report
            .moves
            .iter()
            .enumerate()
            .map(|(j, m)| (m, m.moved + if j == i { batch.done } else { 0 }))
            .filter(|(_, rows)| *rows > 0)
            .map(|(m, rows)| {
                json!({"entity": e.name, "strategy": report.to, "source": m.from, "rows": rows})
            })
            .collect();
        let run = RunRecord {
            id: run_id,
            kind: "migrate",
            action: "migrate_strategy",
            root: &e.name,
            actor: opts.actor.as_deref(),
            reason: "strategy migration",
            now: &now,
        };
        let m = &report.moves[i];
        self.record_run_batch(
            &mut batch.tx,
            &run,
            entities,
            json!({"entity": e.name, "from": m.from, "to": m.to, "rows": batch.done}),
        )
        .await?;
        batch.tx.commit().await?;
        Ok(Some((batch.done, last)))
    }
}
