//! `lethe`: the command-line tool. Thin: parses arguments, calls `lethe-store`,
//! prints.

mod cold;
mod commands;
mod delivery;
mod demo;
mod erasure;
mod exit;
mod lint;
mod output;
mod retention;
mod serve;
mod table;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "lethe",
    version,
    about = "Safe, undoable, audited deletion for PostgreSQL and SQLite",
    long_about = "Lethe deletes rows the way a careful person would: it plans the cascade from the \
relations in lethe.toml, marks or removes every affected row in one transaction, records who did \
it and why in a hash-chained audit log, writes an outbox record for every cache, index and service \
that must hear of it, and can restore exactly that deletion later.\n\n\
Start with `lethe demo`, or `lethe init --database URL` on your own database.",
    after_long_help = exit::HELP,
    after_help = "Run `lethe help <command>` for details; `lethe --help` lists the exit codes."
)]
struct Cli {
    /// Policy file.
    #[arg(long, global = true, default_value = "lethe.toml", value_name = "PATH")]
    policy: PathBuf,
    /// Database URL (sqlite:PATH or postgres://...); overrides [database] url.
    #[arg(
        long,
        global = true,
        env = "LETHE_DATABASE_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    database: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write a starting lethe.toml by introspecting a database's tables, keys,
    /// foreign keys and unique constraints.
    Init {
        /// Where to write the policy.
        #[arg(long, default_value = "lethe.toml")]
        out: PathBuf,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Validate the policy against the live schema (unknown tables and columns,
    /// key mismatches, set_null on NOT NULL columns, ...). Exit 6 on errors.
    Check {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Install Lethe's tables and the database guards: marker columns, active
    /// views, partial unique and active-row indexes, delete guards, and on
    /// PostgreSQL optional row-level security. Idempotent.
    Migrate {
        /// Print the DDL and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Delete a row and its cascade. KEY is `42` or `col=value,col=value`.
    Delete {
        /// The entity (a name under [entities] in the policy).
        entity: String,
        /// The root row's key: `42`, or `col=value,col=value` for a composite key.
        key: String,
        /// Who deletes (recorded in the audit log).
        #[arg(long, env = "LETHE_ACTOR")]
        actor: Option<String>,
        /// Why (recorded in the audit log; do not put personal data here).
        #[arg(long)]
        reason: Option<String>,
        /// Show the plan (rows per entity, blocking relations) and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Undo exactly one deletion: its rows come back, rows deleted earlier by
    /// other deletions stay deleted. Rows that left their table (hard and
    /// archive deletes, rows archived after their retention) are inserted
    /// again; when the table changed since, a column added since takes its
    /// default or a --set value, and a column dropped since is refused
    /// (listing the values) unless --drop-missing.
    Restore {
        /// The deletion to undo (from `lethe delete`, `lethe deletions`).
        deletion_id: String,
        /// Who restores (recorded in the audit log).
        #[arg(long, env = "LETHE_ACTOR")]
        actor: Option<String>,
        /// Why (recorded in the audit log; do not put personal data here).
        #[arg(long)]
        reason: Option<String>,
        /// A value for a NOT NULL column added to a table since its rows
        /// were stored: COLUMN=VALUE, or ENTITY.COLUMN=VALUE. Repeatable.
        #[arg(long = "set", value_name = "COLUMN=VALUE", value_parser = parse_set)]
        set: Vec<lethe_store::SetValue>,
        /// Restore even though columns dropped since the rows were stored
        /// hold values: those values are lost.
        #[arg(long)]
        drop_missing: bool,
        /// Show what would come back and any conflict; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// List deletions, newest first.
    Deletions {
        /// Only deletions whose root is this entity.
        #[arg(long)]
        entity: Option<String>,
        /// At most this many (newest first).
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
        limit: u32,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Show one deletion with its rows per entity and its outbox records.
    Show {
        /// The deletion to show.
        deletion_id: String,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// The hash-chained audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Deliver outbox records to the policy's sinks: cache invalidations,
    /// search index changes, CloudEvents to brokers, webhooks and files. At
    /// least once, in order per entity and sink, with retries (exponential
    /// backoff with jitter) until a sink's max_attempts, then `dead`. Several
    /// relays may run against one PostgreSQL; on SQLite run one. Stops on
    /// Ctrl-C or SIGTERM after the batch in hand.
    Relay {
        /// Deliver what is due now, then exit (exit 1 if an attempt failed).
        #[arg(long)]
        once: bool,
        /// Concurrent workers; each works one (sink, entity) queue at a time.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
        workers: u32,
        /// Outbox records per transport batch (a batch also stops at 20,000
        /// rows).
        #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=10000))]
        batch: u32,
        /// How long a claimed queue stays this relay's without renewal; after
        /// a crash, another relay takes it over once this runs out.
        #[arg(long, default_value = "30s", value_parser = parse_lease)]
        lease: Duration,
        /// Pause between looks for new work when idle.
        #[arg(long, default_value = "50ms", value_parser = parse_duration)]
        poll: Duration,
        /// Machine-readable summary.
        #[arg(long)]
        json: bool,
    },
    /// List deliveries: counts per sink and state, then the newest messages
    /// with their attempts and last error.
    Deliveries {
        /// Only this state: pending, retrying, delivered or dead.
        #[arg(long, value_name = "S")]
        state: Option<String>,
        /// Only this sink.
        #[arg(long, value_name = "N")]
        sink: Option<String>,
        /// At most this many messages (newest first).
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
        limit: u32,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Re-queue a delivery by id (any state), or every dead one; the relay
    /// sends them again with the same event ids.
    Replay {
        /// The delivery to send again (from `lethe deliveries`).
        #[arg(required_unless_present = "dead", conflicts_with = "dead")]
        id: Option<i64>,
        /// Re-queue every dead delivery.
        #[arg(long)]
        dead: bool,
        /// With --dead: only this sink's.
        #[arg(long, value_name = "N", requires = "dead")]
        sink: Option<String>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Compare the database with each cache and search sink: deleted rows
    /// whose cache keys still exist, deleted rows still in a search index,
    /// active rows missing from one. Exit 1 when drift is left unrepaired.
    Reconcile {
        /// Only this sink.
        #[arg(long, value_name = "N")]
        sink: Option<String>,
        /// Repair: invalidate the keys, remove and (re)index the documents.
        #[arg(long)]
        fix: bool,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Remove (or archive) deleted rows whose retention ran out, in bounded
    /// batches of short transactions. Rows of held deletions, and rows other
    /// rows still reference, stay and are counted. Killed at any point, run
    /// it again: it finishes the job. Every batch is audited and sends
    /// `lethe.purged` (or `lethe.archived`) events through the outbox.
    Purge(retention::PurgeArgs),
    /// Rows per entity: active, deleted in the table, archived, snapshots,
    /// the oldest deletion, rows due for purge and held; on PostgreSQL, the
    /// room deleted rows take in the table and its indexes.
    Stats {
        /// Only this entity.
        #[arg(long)]
        entity: Option<String>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Move an entity's existing deleted rows to where another strategy
    /// keeps them, online, in batches: --to archive (out of the table into
    /// the archive store), --to hard (snapshots), --to soft (back into the
    /// table, still marked deleted; run `lethe migrate` with the entity set
    /// to soft first). Readers of `<table>_active` never see a deleted row
    /// meanwhile, and active rows are never touched. Change the entity's
    /// strategy in the policy too, so new deletes follow.
    MigrateStrategy(retention::StrategyArgs),
    /// Cold storage: export deleted and archived rows to files (a directory
    /// or S3-compatible object storage), import them back.
    Archive {
        #[command(subcommand)]
        command: cold::ArchiveCommand,
    },
    /// Run the policy's scheduled jobs ([jobs.NAME]: purge or export on a
    /// cron schedule, UTC) until Ctrl-C or SIGTERM. Several workers may run
    /// against one database: each scheduled run happens once, and a job
    /// never runs twice at a time (PostgreSQL advisory lock; SQLite a leased
    /// row). Exit 1 when a run it did failed.
    Worker {
        /// Run each job for its latest scheduled time (unless a worker
        /// already has), then exit: for cron or a CI step.
        #[arg(long)]
        once: bool,
        /// Machine-readable summary.
        #[arg(long)]
        json: bool,
    },
    /// The scheduled jobs, when each runs next, and their latest runs.
    Jobs {
        /// At most this many runs (newest first).
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
        limit: u32,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Legal holds: rows purge must keep.
    Hold {
        #[command(subcommand)]
        command: retention::HoldCommand,
    },
    /// Erase a data subject (GDPR Art. 17): every row of theirs in every
    /// table, deleted rows and the archive store included, is deleted or
    /// anonymized as the policy's `erase` says (or kept, with its legal
    /// basis); their data key is destroyed, so exported files no longer
    /// yield their personal data; caches, search indexes, brokers and
    /// webhooks get `lethe.erased`. The request is tracked (`lethe
    /// erasures`), verified, and completes with a certificate. Exit 1 when
    /// it failed (the reason is printed; fix it and `lethe erasures
    /// resume`).
    Erase(erasure::EraseArgs),
    /// Erasure requests: list, show, resume, verify, confirm a step by
    /// hand, print a certificate, the ledger, reapply the ledger after a
    /// restore from backup.
    Erasures {
        #[command(subcommand)]
        command: erasure::ErasuresCommand,
    },
    /// Serve the HTTP API, the web console, /openapi.json and /metrics,
    /// with the outbox relay and the scheduled jobs in the same process.
    /// Several instances may run against one PostgreSQL. Calls need a
    /// token (`lethe token create`). Stops on Ctrl-C or SIGTERM after the
    /// requests, deliveries and jobs in hand.
    Serve(serve::ServeArgs),
    /// API tokens for `lethe serve`: create (the secret is shown once),
    /// list, revoke. Roles: viewer, operator, admin.
    Token {
        #[command(subcommand)]
        command: serve::TokenCommand,
    },
    /// Find the queries that read soft-deleted rows or bypass Lethe: in
    /// .sql files and the SQL string literals of Rust, Python, Ruby,
    /// JavaScript/TypeScript, Go and Java code, or in the statements
    /// PostgreSQL has run (--pg-stat-statements). Exit 0 clean, 1 findings,
    /// 2 usage error.
    Lint(lint::LintArgs),
    /// Walk through Lethe on an embedded SQLite shop (no server needed).
    Demo {
        /// Directory for the demo database and policy (default: a new
        /// temporary directory).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// After the tour, serve the console on the demo database (prints
        /// the address and an admin token) until Ctrl-C.
        #[arg(long)]
        serve: bool,
        /// Address for --serve.
        #[arg(
            long,
            default_value = "127.0.0.1:8080",
            value_name = "ADDR",
            requires = "serve"
        )]
        listen: std::net::SocketAddr,
    },
}

impl Command {
    /// Whether the caller asked for machine output (errors then come as JSON
    /// on stdout too).
    fn json(&self) -> bool {
        match self {
            Command::Check { json }
            | Command::Migrate { json, .. }
            | Command::Delete { json, .. }
            | Command::Restore { json, .. }
            | Command::Deletions { json, .. }
            | Command::Show { json, .. }
            | Command::Relay { json, .. }
            | Command::Deliveries { json, .. }
            | Command::Replay { json, .. }
            | Command::Reconcile { json, .. }
            | Command::Stats { json, .. }
            | Command::Worker { json, .. }
            | Command::Jobs { json, .. } => *json,
            Command::Purge(a) => a.json,
            Command::MigrateStrategy(a) => a.json,
            Command::Hold { command } => command.json(),
            Command::Erase(a) => a.json,
            Command::Erasures { command } => command.json(),
            Command::Token { command } => command.json(),
            Command::Archive { command } => command.json(),
            Command::Audit { command } => match command {
                AuditCommand::Verify { json, .. } | AuditCommand::Head { json } => *json,
            },
            Command::Init { .. } | Command::Demo { .. } | Command::Serve(_) | Command::Lint(_) => {
                false
            }
        }
    }
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check every entry's hash and link. Exit 6 and name the first broken
    /// entry when the log was edited, or cut off before --expect-head.
    Verify {
        /// A head hash kept elsewhere (`lethe audit head`): fail if the log no
        /// longer contains it.
        #[arg(long, value_name = "HASH")]
        expect_head: Option<String>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Print the latest entry's hash; keep it outside the database.
    Head {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
}

pub(crate) fn parse_strategy(s: &str) -> Result<lethe_core::Strategy, String> {
    match s {
        "soft" => Ok(lethe_core::Strategy::Soft),
        "archive" => Ok(lethe_core::Strategy::Archive),
        "hard" => Ok(lethe_core::Strategy::Hard),
        other => Err(format!(
            "\"{other}\" is not a strategy (soft, archive or hard)"
        )),
    }
}

fn parse_set(s: &str) -> Result<lethe_store::SetValue, String> {
    s.parse()
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    lethe_core::duration::parse_duration(s)
}

fn parse_lease(s: &str) -> Result<Duration, String> {
    match parse_duration(s)? {
        d if d < Duration::from_secs(1) => {
            Err("a lease shorter than 1s would expire while a batch is delivered".into())
        }
        d => Ok(d),
    }
}

fn main() -> ExitCode {
    // Output piped into `head` should end quietly, not panic on a closed pipe.
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE at start-up, before
    // any thread exists, is what every Unix command-line tool does.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("LETHE_LOG"))
        .with_writer(std::io::stderr)
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(exit::FAILURE);
        }
    };
    let code = rt.block_on(commands::run(cli));
    ExitCode::from(code)
}
