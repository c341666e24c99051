//! `lethe purge` and `lethe hold`: retention and legal holds. Thin: the work
//! is in `lethe-store`.

use clap::{Args, Subcommand};
use lethe_store::{Hold, HoldRef, PurgeOptions, PurgeReport, StoreError};
use serde_json::json;

use crate::Cli;
use crate::commands::engine;
use crate::exit;
use crate::output::{key_text, plural, print_json};
use crate::table;

#[derive(Subcommand)]
pub enum HoldCommand {
    /// Put a legal hold on a row (active, deleted or archived): purge keeps
    /// it, and every row deleted together with it, until the hold is
    /// removed.
    Add {
        /// The entity (a name under [entities] in the policy).
        entity: String,
        /// The row's key: `42`, or `col=value,col=value`.
        key: String,
        /// Why (required; recorded with the hold and in the audit log).
        #[arg(long)]
        reason: String,
        /// Who places the hold (recorded in the audit log).
        #[arg(long, env = "LETHE_ACTOR")]
        actor: Option<String>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// List active holds (with --all, released ones too).
    List {
        /// Released holds too.
        #[arg(long)]
        all: bool,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Release a hold: `lethe hold remove ID`, or `lethe hold remove ENTITY
    /// KEY` for every active hold on that row.
    Remove {
        /// A hold id (from `lethe hold list`), or an entity.
        target: String,
        /// With an entity: the row's key.
        key: Option<String>,
        /// Why the hold ends (recorded in the audit log).
        #[arg(long)]
        reason: Option<String>,
        /// Who releases it (recorded in the audit log).
        #[arg(long, env = "LETHE_ACTOR")]
        actor: Option<String>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
}

impl HoldCommand {
    pub fn json(&self) -> bool {
        match self {
            HoldCommand::Add { json, .. }
            | HoldCommand::List { json, .. }
            | HoldCommand::Remove { json, .. } => *json,
        }
    }
}

/// How big and how fast the batches of a purge or a strategy migration are.
#[derive(Args)]
pub struct BatchArgs {
    /// Rows per batch; each batch is one short transaction.
    #[arg(long, default_value_t = lethe_store::purge::DEFAULT_BATCH, value_parser = clap::value_parser!(u32).range(1..=100000))]
    pub batch_size: u32,
    /// Pause between batches to stay under this rate.
    #[arg(long, value_name = "R", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_rows_per_second: Option<u32>,
}

/// A progress bar on a terminal (indicatif draws nothing otherwise).
fn progress_bar(template: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(0);
    if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// `lethe purge`.
#[derive(Args)]
pub struct PurgeArgs {
    /// Only this entity (default: every entity with a retention).
    #[arg(long)]
    pub entity: Option<String>,
    /// Count what is due, held and still referenced; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub batch: BatchArgs,
    /// Who purges (recorded in the audit log).
    #[arg(long, env = "LETHE_ACTOR")]
    pub actor: Option<String>,
    /// Machine-readable summary.
    #[arg(long)]
    pub json: bool,
}

fn hold_rows(holds: &[Hold]) -> String {
    let rows: Vec<Vec<String>> = holds
        .iter()
        .map(|h| {
            vec![
                h.id.to_string(),
                h.entity.clone(),
                key_text(&h.key),
                h.reason.clone(),
                h.actor.clone().unwrap_or_default(),
                h.created_at.clone(),
                h.released_at.clone().unwrap_or_default(),
            ]
        })
        .collect();
    table::render(
        &["ID", "ENTITY", "KEY", "REASON", "BY", "SINCE", "RELEASED"],
        &rows,
    )
}

pub async fn hold(cli: &Cli, cmd: &HoldCommand) -> Result<u8, StoreError> {
    let engine = engine(cli).await?;
    match cmd {
        HoldCommand::Add {
            entity,
            key,
            reason,
            actor,
            json,
        } => {
            let h = engine.hold(entity, key, reason, actor.as_deref()).await?;
            if *json {
                print_json(&json!(h));
            } else {
                println!(
                    "hold {} on {entity} {key}: purge keeps it and every row deleted with it",
                    h.id
                );
            }
        }
        HoldCommand::List { all, json } => {
            let holds = engine.holds(*all).await?;
            if *json {
                print_json(&json!(holds));
            } else if holds.is_empty() {
                println!("no {}holds", if *all { "" } else { "active " });
            } else {
                print!("{}", hold_rows(&holds));
            }
        }
        HoldCommand::Remove {
            target,
            key,
            reason,
            actor,
            json,
        } => {
            let which = match (target.parse::<i64>(), key) {
                (Ok(id), None) => HoldRef::Id(id),
                (_, Some(k)) => HoldRef::Row {
                    entity: target.clone(),
                    key: k.clone(),
                },
                (Err(_), None) => {
                    return Err(StoreError::Invalid(format!(
                        "\"{target}\" is not a hold id; to release the holds on a row, give ENTITY KEY"
                    )));
                }
            };
            let released = engine
                .release_hold(&which, reason.as_deref(), actor.as_deref())
                .await?;
            if *json {
                print_json(&json!(released));
            } else {
                for h in &released {
                    println!(
                        "released hold {} on {} {}",
                        h.id,
                        h.entity,
                        key_text(&h.key)
                    );
                }
            }
        }
    }
    Ok(exit::OK)
}

fn purge_table(r: &PurgeReport) -> String {
    let rows: Vec<Vec<String>> = r
        .tasks
        .iter()
        .map(|t| {
            vec![
                t.entity.clone(),
                t.source.clone(),
                t.action.clone(),
                t.retention.clone(),
                if r.dry_run { t.due } else { t.done }.to_string(),
                t.held.to_string(),
                t.referenced.to_string(),
            ]
        })
        .collect();
    table::render(
        &[
            "ENTITY",
            "ROWS IN",
            "THEN",
            "RETENTION",
            if r.dry_run { "DUE" } else { "DONE" },
            "HELD",
            "REFERENCED",
        ],
        &rows,
    )
}

pub async fn purge(cli: &Cli, a: &PurgeArgs) -> Result<u8, StoreError> {
    let engine = engine(cli).await?;
    let opts = PurgeOptions {
        entity: a.entity.clone(),
        dry_run: a.dry_run,
        batch_size: a.batch.batch_size,
        max_rows_per_second: a.batch.max_rows_per_second,
        actor: a.actor.clone(),
    };
    let bar =
        progress_bar("{spinner} purging {msg}: {pos}/{len} rows [{bar:30}] {per_sec}, {eta} left");
    let report = engine
        .purge(&opts, &mut |p| {
            bar.set_length(p.due.max(p.done));
            bar.set_position(p.done);
            bar.set_message(format!("{} ({})", p.task.entity, p.task.source));
        })
        .await;
    bar.finish_and_clear();
    let report = report?;
    if a.json {
        print_json(&json!({
            "dry_run": report.dry_run,
            "purge_id": report.purge_id,
            "done": report.done(),
            "due": report.due(),
            "held": report.held(),
            "referenced": report.referenced(),
            "batches": report.batches,
            "longest_batch_ms": report.longest_batch_ms,
            "elapsed_ms": report.elapsed_ms,
            "tasks": report.tasks,
        }));
        return Ok(exit::OK);
    }
    if report.tasks.is_empty() {
        println!("no entity has a retention: add retention = \"90d\" under [entities.NAME]");
        return Ok(exit::OK);
    }
    if report.dry_run {
        println!(
            "purge would take {} now:",
            plural(report.due() as usize, "expired row", "expired rows")
        );
    } else {
        println!(
            "purged {} in {} (longest {} ms), {:.1} s{}",
            plural(report.done() as usize, "row", "rows"),
            plural(report.batches as usize, "batch", "batches"),
            report.longest_batch_ms,
            report.elapsed_ms as f64 / 1000.0,
            report
                .purge_id
                .as_ref()
                .map(|id| format!(", recorded as {id}"))
                .unwrap_or_default()
        );
    }
    print!("{}", purge_table(&report));
    if report.held() > 0 {
        println!(
            "{} kept by legal holds (`lethe hold list`)",
            plural(report.held() as usize, "expired row is", "expired rows are")
        );
    }
    if report.referenced() > 0 {
        println!(
            "{} still referenced by other rows; they go once those have",
            plural(
                report.referenced() as usize,
                "expired row is",
                "expired rows are"
            )
        );
    }
    if report.dry_run {
        println!("nothing was changed (dry run)");
    }
    Ok(exit::OK)
}

/// `1.2 MB`.
fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < UNITS.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

pub async fn stats(cli: &Cli, entity: Option<&str>, json: bool) -> Result<u8, StoreError> {
    let engine = engine(cli).await?;
    let stats = engine.stats(entity).await?;
    if json {
        print_json(&json!(stats));
        return Ok(exit::OK);
    }
    let rows: Vec<Vec<String>> = stats
        .iter()
        .map(|s| {
            vec![
                s.entity.clone(),
                s.strategy.clone(),
                s.active.to_string(),
                s.deleted.to_string(),
                s.archived.to_string(),
                s.snapshots.to_string(),
                s.oldest_deletion.clone().unwrap_or_else(|| "-".into()),
                match &s.retention {
                    Some(r) => format!("{} ({r})", s.due_for_purge),
                    None => "-".into(),
                },
                s.held.to_string(),
            ]
        })
        .collect();
    print!(
        "{}",
        table::render(
            &[
                "ENTITY",
                "STRATEGY",
                "ACTIVE",
                "DELETED",
                "ARCHIVED",
                "SNAPSHOTS",
                "OLDEST DELETION",
                "DUE FOR PURGE",
                "HELD",
            ],
            &rows
        )
    );
    let space: Vec<Vec<String>> = stats
        .iter()
        .filter_map(|s| {
            let sp = s.space.as_ref()?;
            let share = |part: u64, whole: u64| {
                if whole == 0 {
                    "0%".to_string()
                } else {
                    format!("{:.0}%", part as f64 * 100.0 / whole as f64)
                }
            };
            Some(vec![
                s.entity.clone(),
                format!(
                    "{} of {} ({})",
                    bytes(sp.deleted_bytes),
                    bytes(sp.table_bytes),
                    share(sp.deleted_bytes, sp.table_bytes)
                ),
                format!(
                    "{} of {} ({})",
                    bytes(sp.deleted_index_bytes),
                    bytes(sp.index_bytes),
                    share(sp.deleted_index_bytes, sp.index_bytes)
                ),
                bytes(s.stored_bytes),
            ])
        })
        .collect();
    if !space.is_empty() {
        println!("\nroom taken by deleted rows:");
        print!(
            "{}",
            table::render(
                &[
                    "ENTITY",
                    "IN THE TABLE",
                    "IN ITS INDEXES (est.)",
                    "IN THE ARCHIVE"
                ],
                &space
            )
        );
    }
    Ok(exit::OK)
}

/// `lethe migrate-strategy`.
#[derive(Args)]
pub struct StrategyArgs {
    /// The entity whose deleted rows move.
    pub entity: String,
    /// The strategy to move them to: archive, soft or hard.
    #[arg(long, value_parser = crate::parse_strategy)]
    pub to: lethe_core::Strategy,
    /// Count what would move; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub batch: BatchArgs,
    /// Who moves them (recorded in the audit log).
    #[arg(long, env = "LETHE_ACTOR")]
    pub actor: Option<String>,
    /// Machine-readable summary.
    #[arg(long)]
    pub json: bool,
}

pub async fn migrate_strategy(cli: &Cli, a: &StrategyArgs) -> Result<u8, StoreError> {
    let engine = engine(cli).await?;
    let opts = lethe_store::StrategyOptions {
        entity: a.entity.clone(),
        to: a.to,
        dry_run: a.dry_run,
        batch_size: a.batch.batch_size,
        max_rows_per_second: a.batch.max_rows_per_second,
        actor: a.actor.clone(),
    };
    let bar =
        progress_bar("{spinner} moving deleted rows: {pos}/{len} [{bar:30}] {per_sec}, {eta} left");
    let report = engine
        .migrate_strategy(&opts, &mut |moved, due| {
            bar.set_length(due.max(moved));
            bar.set_position(moved);
        })
        .await;
    bar.finish_and_clear();
    let r = report?;
    if a.json {
        print_json(&json!(r));
        return Ok(exit::OK);
    }
    let rows: Vec<Vec<String>> = r
        .moves
        .iter()
        .map(|m| {
            vec![
                m.from.clone(),
                m.to.clone(),
                if r.dry_run { m.due } else { m.moved }.to_string(),
                m.referenced.to_string(),
                m.older_shape.to_string(),
                m.key_taken.to_string(),
            ]
        })
        .collect();
    let moved: u64 = r
        .moves
        .iter()
        .map(|m| if r.dry_run { m.due } else { m.moved })
        .sum();
    if r.dry_run {
        println!(
            "migrate-strategy {} --to {} would move {}:",
            r.entity,
            r.to,
            plural(moved as usize, "deleted row", "deleted rows")
        );
    } else {
        println!(
            "moved {} of {} in {} (longest {} ms){}",
            plural(moved as usize, "deleted row", "deleted rows"),
            r.entity,
            plural(r.batches as usize, "batch", "batches"),
            r.longest_batch_ms,
            r.run_id
                .as_ref()
                .map(|id| format!(", recorded as {id}"))
                .unwrap_or_default()
        );
    }
    print!(
        "{}",
        table::render(
            &[
                "FROM",
                "TO",
                if r.dry_run { "ROWS" } else { "MOVED" },
                "STILL REFERENCED",
                "OLDER SHAPE",
                "KEY TAKEN"
            ],
            &rows
        )
    );
    let left: u64 = r
        .moves
        .iter()
        .map(|m| m.referenced + m.older_shape + m.key_taken)
        .sum();
    if left > 0 {
        println!(
            "{} stay: still referenced by other rows (move those first, or run again once they are gone), stored under an older shape of the table, or with a key taken by a row in the table; `lethe restore` still finds them",
            plural(left as usize, "row", "rows")
        );
    }
    if let Some(p) = &r.policy_strategy {
        println!(
            "note: the policy still says strategy = \"{p}\" for {}: set strategy = \"{}\" so new deletes go there too",
            r.entity, r.to
        );
    }
    if r.dry_run {
        println!("nothing was changed (dry run)");
    }
    Ok(exit::OK)
}
