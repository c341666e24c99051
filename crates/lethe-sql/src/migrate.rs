//! Plans `lethe migrate`: the DDL that brings a database in line with the
//! policy, as steps computed from what introspection found, so a second run
//! finds nothing to do.

use std::collections::BTreeSet;

use lethe_core::{Entity, Policy, Schema, TableInfo};

use crate::dialect::Dialect;

/// Version tag of Lethe's first own tables.
pub const INTERNAL_VERSION: &str = "lethe:internal:v1";
/// v2: the delivery queue (outbox `columns` and `dispatched`, deliveries,
/// delivery queues).
pub const INTERNAL_V2: &str = "lethe:internal:v2";
/// v3: retention and archive (the archive store, which takes over the
/// hard-delete snapshots; fingerprints; holds; purge marks on deletions;
/// scheduled job runs; cold-storage exports and per-subject data keys).
pub const INTERNAL_V3: &str = "lethe:internal:v3";
/// v4: erasure (requests, their steps, the ledger).
pub const INTERNAL_V4: &str = "lethe:internal:v4";
/// v5: API tokens for `lethe serve`.
pub const INTERNAL_V5: &str = "lethe:internal:v5";
/// Every version of Lethe's own tables, in the order they are applied. A new
/// change to them is a new version here, never an edit of an applied one.
pub const INTERNAL_VERSIONS: &[&str] = &[
    INTERNAL_VERSION,
    INTERNAL_V2,
    INTERNAL_V3,
    INTERNAL_V4,
    INTERNAL_V5,
];
/// The hash an empty audit chain starts from.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One migration step: a unit that is applied and recorded together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationStep {
    /// Stable id recorded in Lethe's migrations table, e.g. `users:view:active`.
    pub id: String,
    pub description: String,
    pub statements: Vec<String>,
    /// Set when the step cannot be done automatically; says why and what to do.
    pub blocked: Option<String>,
    /// The step rebuilds a table (SQLite) and must run with foreign key
    /// enforcement off, checked before commit.
    pub foreign_keys_off: bool,
}

/// Shortens a generated object name to the 63-byte limit, keeping it unique.
pub fn object_name(name: &str) -> String {
    if name.len() <= 63 {
        return name.to_string();
    }
    // FNV-1a: stable across builds and platforms.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{}_{:08x}", &name[..54], h as u32)
}

fn base_name(table: &str) -> &str {
    table.rsplit('.').next().unwrap_or(table)
}

/// `schema.x` for an object named `x` next to `table`.
fn sibling(d: Dialect, table: &str, name: &str) -> String {
    match table.split_once('.') {
        Some((s, _)) => format!("{}.{}", d.ident(s), d.ident(name)),
        None => d.ident(name),
    }
}

pub fn active_view_name(e: &Entity) -> String {
    object_name(&format!("{}_active", base_name(&e.table)))
}

pub fn guard_trigger_name(e: &Entity) -> String {
    object_name(&format!("lethe_guard_{}", base_name(&e.table)))
}

fn unique_index_name(e: &Entity, cols: &[String]) -> String {
    object_name(&format!(
        "lethe_{}_uq_{}",
        base_name(&e.table),
        cols.join("_")
    ))
}

/// The guard's message: says what happened and what to do instead.
pub fn guard_message(e: &Entity) -> String {
    format!(
        "lethe: raw DELETE on {} is refused: it is a table managed by Lethe ({} delete). Use `lethe delete {} <key>` (or the Lethe library/API) so the delete cascades, is audited and can be restored; `lethe purge` removes deleted rows for good",
        e.table, e.strategy, e.name
    )
}

/// Lethe's own tables.
fn internal_statements(d: Dialect) -> Vec<String> {
    let t = |n: &str| d.own(n);
    let (uuid, ts, json, big) = (d.uuid_type(), d.timestamp_type(), d.json_type(), "BIGINT");
    let mut s = Vec::new();
    if d == Dialect::Postgres {
        s.push("CREATE SCHEMA IF NOT EXISTS lethe".to_string());
    }
    s.push(format!(
        "CREATE TABLE {} (id TEXT PRIMARY KEY, applied_at {ts} NOT NULL, statements TEXT NOT NULL)",
        t("migrations")
    ));
    s.push(format!(
        "CREATE TABLE {} (id {uuid} PRIMARY KEY, kind TEXT NOT NULL, at {ts} NOT NULL, actor TEXT, reason TEXT, context {json}, \
         root_entity TEXT NOT NULL, root_key {json} NOT NULL, summary {json} NOT NULL, restored_at {ts}, restored_by TEXT, restored_reason TEXT)",
        t("deletions")
    ));
    s.push(format!(
        "CREATE INDEX {} ON {} (root_entity, at)",
        if d == Dialect::Postgres {
            "deletions_entity_at"
        } else {
            "lethe_deletions_entity_at"
        },
        t("deletions")
    ));
    s.push(format!(
        "CREATE TABLE {} (seq {big} PRIMARY KEY, at {ts} NOT NULL, action TEXT NOT NULL, deletion_id {uuid}, entry TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL)",
        t("audit")
    ));
    s.push(format!(
        "CREATE TABLE {} (id INTEGER PRIMARY KEY CHECK (id = 1), seq {big} NOT NULL, hash TEXT NOT NULL)",
        t("audit_head")
    ));
    s.push(format!(
        "INSERT INTO {} (id, seq, hash) VALUES (1, 0, '{GENESIS_HASH}')",
        t("audit_head")
    ));
    let outbox_id = match d {
        Dialect::Postgres => "id BIGSERIAL PRIMARY KEY",
        Dialect::Sqlite => "id INTEGER PRIMARY KEY AUTOINCREMENT",
    };
    s.push(format!(
        "CREATE TABLE {} ({outbox_id}, deletion_id {uuid} NOT NULL, event TEXT NOT NULL, entity TEXT NOT NULL, part INTEGER NOT NULL, keys {} NOT NULL, key_columns TEXT NOT NULL, row_count {big} NOT NULL, created_at {ts} NOT NULL)",
        t("outbox"),
        d.json_doc_type()
    ));
    s.push(format!(
        "CREATE TABLE {} (deletion_id {uuid} NOT NULL, entity TEXT NOT NULL, key {json} NOT NULL, row {json} NOT NULL)",
        t("snapshots")
    ));
    s.push(format!(
        "CREATE TABLE {} (deletion_id {uuid} NOT NULL, entity TEXT NOT NULL, key {json} NOT NULL, prev {json} NOT NULL)",
        t("nullified")
    ));
    // A random per-database key for keyed hashes of personal values (the
    // audit log never holds them in the clear).
    s.push(format!(
        "CREATE TABLE {} (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
        t("settings")
    ));
    s.push(format!(
        "INSERT INTO {} (name, value) VALUES ('hash_key', {})",
        t("settings"),
        d.random_hex_256()
    ));
    let idx = |n: &str| {
        if d == Dialect::Postgres {
            n.to_string()
        } else {
            format!("lethe_{n}")
        }
    };
    s.push(format!(
        "CREATE INDEX {} ON {} (deletion_id)",
        idx("outbox_deletion"),
        t("outbox")
    ));
    s.push(format!(
        "CREATE INDEX {} ON {} (deletion_id, entity)",
        idx("snapshots_deletion"),
        t("snapshots")
    ));
    s.push(format!(
        "CREATE INDEX {} ON {} (entity, key)",
        idx("snapshots_entity_key"),
        t("snapshots")
    ));
    s.push(format!(
        "CREATE INDEX {} ON {} (deletion_id, entity)",
        idx("nullified_deletion"),
        t("nullified")
    ));
    match d {
        Dialect::Postgres => {
            s.push(
                "CREATE OR REPLACE FUNCTION lethe.refuse_audit_change() RETURNS trigger LANGUAGE plpgsql AS $$ \
                 BEGIN RAISE EXCEPTION 'lethe.audit is append-only: % refused', TG_OP USING ERRCODE = 'P0001'; END $$"
                    .to_string(),
            );
            s.push(
                "CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON lethe.audit FOR EACH ROW EXECUTE FUNCTION lethe.refuse_audit_change()"
                    .to_string(),
            );
            s.push(
                "CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON lethe.audit FOR EACH STATEMENT EXECUTE FUNCTION lethe.refuse_audit_change()"
                    .to_string(),
            );
            // The guard: Lethe's own purge path sets `lethe.bypass` for its
            // transaction (SET LOCAL); nothing else passes.
            s.push(
                "CREATE OR REPLACE FUNCTION lethe.guard_delete() RETURNS trigger LANGUAGE plpgsql AS $$ \
                 BEGIN IF coalesce(current_setting('lethe.bypass', true), '') <> 'on' THEN \
                 RAISE EXCEPTION '%', TG_ARGV[0] USING ERRCODE = 'P0001', HINT = 'soft-deleted rows are removed for good by Lethe''s purge, which passes this guard'; \
                 END IF; RETURN NULL; END $$"
                    .to_string(),
            );
        }
        Dialect::Sqlite => {
            s.push("CREATE TABLE lethe_bypass (token TEXT NOT NULL)".to_string());
            s.push(
                "CREATE TRIGGER lethe_audit_no_update BEFORE UPDATE ON lethe_audit BEGIN SELECT RAISE(ABORT, 'lethe_audit is append-only: UPDATE refused'); END"
                    .to_string(),
            );
            s.push(
                "CREATE TRIGGER lethe_audit_no_delete BEFORE DELETE ON lethe_audit BEGIN SELECT RAISE(ABORT, 'lethe_audit is append-only: DELETE refused'); END"
                    .to_string(),
            );
        }
    }
    s
}

/// v2: what the relay needs. Outbox rows carry the columns sinks read
/// (`columns`) and whether they have been turned into deliveries
/// (`dispatched`: the relay finds undispatched rows whenever their
/// transaction commits, never by position, so a late commit is not skipped).
fn internal_v2_statements(d: Dialect) -> Vec<String> {
    let t = |n: &str| d.own(n);
    let idx = |n: &str| match d {
        Dialect::Postgres => n.to_string(),
        Dialect::Sqlite => format!("lethe_{n}"),
    };
    let (uuid, ts) = (d.uuid_type(), d.timestamp_type());
    let id = match d {
        Dialect::Postgres => "id BIGSERIAL PRIMARY KEY",
        Dialect::Sqlite => "id INTEGER PRIMARY KEY AUTOINCREMENT",
    };
    vec![
        format!(
            "ALTER TABLE {} ADD COLUMN columns TEXT NOT NULL DEFAULT '[]'",
            t("outbox")
        ),
        format!(
            "ALTER TABLE {} ADD COLUMN dispatched BOOLEAN NOT NULL DEFAULT FALSE",
            t("outbox")
        ),
        // Records written before the relay existed are history, not work:
        // only deletions from now on are delivered (reconcile repairs
        // older drift).
        format!("UPDATE {} SET dispatched = TRUE", t("outbox")),
        format!(
            "CREATE INDEX {} ON {} (id) WHERE NOT dispatched",
            idx("outbox_undispatched"),
            t("outbox")
        ),
        format!(
            "CREATE TABLE {} ({id}, outbox_id BIGINT NOT NULL, sink TEXT NOT NULL, entity TEXT NOT NULL, deletion_id {uuid} NOT NULL, event TEXT NOT NULL, \
             state TEXT NOT NULL CHECK (state IN ('pending', 'retrying', 'delivered', 'dead')), attempts INTEGER NOT NULL DEFAULT 0, next_at {ts} NOT NULL, \
             last_error TEXT, created_at {ts} NOT NULL, delivered_at {ts}, UNIQUE (outbox_id, sink))",
            t("deliveries")
        ),
        format!(
            "CREATE INDEX {} ON {} (sink, entity, outbox_id) WHERE state IN ('pending', 'retrying')",
            idx("deliveries_queue"),
            t("deliveries")
        ),
        format!(
            "CREATE INDEX {} ON {} (state, sink)",
            idx("deliveries_state"),
            t("deliveries")
        ),
        // One row per (sink, entity): a relay leases a whole queue, so the
        // messages of one entity reach one sink in order.
        format!(
            "CREATE TABLE {} (sink TEXT NOT NULL, entity TEXT NOT NULL, owner TEXT, lease_until {ts}, PRIMARY KEY (sink, entity))",
            t("delivery_queues")
        ),
    ]
}

/// Steps for the versions of Lethe's own tables not yet in `installed`.
fn internal_steps(d: Dialect, installed: &[String]) -> Vec<MigrationStep> {
    let mut steps = Vec::new();
    let has = |v: &str| installed.iter().any(|i| i == v);
    if !has(INTERNAL_VERSION) {
        steps.push(MigrationStep {
            id: INTERNAL_VERSION.to_string(),
            description: match d {
                Dialect::Postgres => "create Lethe's own tables in schema \"lethe\" (deletions, audit, outbox, snapshots) and the guard function".into(),
                Dialect::Sqlite => "create Lethe's own tables (lethe_deletions, lethe_audit, lethe_outbox, lethe_snapshots, ...)".into(),
            },
            statements: internal_statements(d),
            blocked: None,
            foreign_keys_off: false,
        });
    }
    if !has(INTERNAL_V2) {
        steps.push(MigrationStep {
            id: INTERNAL_V2.to_string(),
            description: "add the delivery queue (outbox columns, deliveries, delivery queues)"
                .into(),
            statements: internal_v2_statements(d),
            blocked: None,
            foreign_keys_off: false,
        });
    }
    if !has(INTERNAL_V3) {
        steps.push(MigrationStep {
            id: INTERNAL_V3.to_string(),
            description: "add retention and archive: the archive store (hard-delete snapshots move into it), fingerprints, legal holds, purge marks, job runs, exports and subject keys".into(),
            statements: internal_v3_statements(d),
            blocked: None,
            foreign_keys_off: false,
        });
    }
    if !has(INTERNAL_V4) {
        steps.push(MigrationStep {
            id: INTERNAL_V4.to_string(),
            description: "add erasure: erasure requests, their steps, and the erasure ledger"
                .into(),
            statements: internal_v4_statements(d),
            blocked: None,
            foreign_keys_off: false,
        });
    }
    if !has(INTERNAL_V5) {
        steps.push(MigrationStep {
            id: INTERNAL_V5.to_string(),
            description: "add API tokens for `lethe serve` (names, roles, hashes of the secrets)"
                .into(),
            statements: internal_v5_statements(d),
            blocked: None,
            foreign_keys_off: false,
        });
    }
    steps
}

/// v5. An API token is stored as the SHA-256 of its secret (256 random
/// bits, so a fast hash is enough); the name is what the audit log records
/// as the actor.
fn internal_v5_statements(d: Dialect) -> Vec<String> {
    let ts = d.timestamp_type();
    vec![format!(
        "CREATE TABLE {} (name TEXT PRIMARY KEY, role TEXT NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')), \
         hash TEXT NOT NULL UNIQUE, created_at {ts} NOT NULL, created_by TEXT, revoked_at {ts})",
        d.own("api_tokens")
    )]
}

/// v4. An erasure request names its subject only by keyed hash (`subject`:
/// HMAC of the subject's key; `data_key`: the cold-storage subject id);
/// `pii_hashes` are keyed hashes of the values it removed, for
/// verification. The ledger outlives restores from backup: each entry is
/// what `lethe erasures reapply` runs again.
fn internal_v4_statements(d: Dialect) -> Vec<String> {
    let t = |n: &str| d.own(n);
    let (uuid, ts) = (d.uuid_type(), d.timestamp_type());
    let id = match d {
        Dialect::Postgres => "seq BIGSERIAL PRIMARY KEY",
        Dialect::Sqlite => "seq INTEGER PRIMARY KEY AUTOINCREMENT",
    };
    vec![
        format!(
            "CREATE TABLE {} (id {uuid} PRIMARY KEY, request_id TEXT NOT NULL UNIQUE, entity TEXT NOT NULL, subject TEXT NOT NULL, data_key TEXT NOT NULL, \
             actor TEXT, reason TEXT, state TEXT NOT NULL CHECK (state IN ('pending', 'in_progress', 'completed', 'failed')), \
             created_at {ts} NOT NULL, updated_at {ts} NOT NULL, completed_at {ts}, error TEXT, deletion_id {uuid}, \
             pii_hashes TEXT NOT NULL DEFAULT '[]', summary TEXT NOT NULL DEFAULT '{{}}', verification TEXT, certificate TEXT, certificate_hash TEXT)",
            t("erasures")
        ),
        format!(
            "CREATE TABLE {} (erasure_id {uuid} NOT NULL, seq INTEGER NOT NULL, name TEXT NOT NULL, kind TEXT NOT NULL, \
             state TEXT NOT NULL CHECK (state IN ('pending', 'done', 'waiting', 'confirmed', 'failed')), detail TEXT NOT NULL DEFAULT '{{}}', \
             updated_at {ts} NOT NULL, PRIMARY KEY (erasure_id, name))",
            t("erasure_steps")
        ),
        format!(
            "CREATE TABLE {} ({id}, erasure_id {uuid} NOT NULL UNIQUE, entity TEXT NOT NULL, subject TEXT NOT NULL, data_key TEXT NOT NULL, \
             actions TEXT NOT NULL, erased_at {ts} NOT NULL)",
            t("erasure_ledger")
        ),
    ]
}

/// v3. The archive store holds every row that left its table: `snapshot`
/// rows (hard deletes, kept for their entity's retention) and `archive`
/// rows (archive deletes, and rows moved there after their retention).
/// Each carries the deletion id, when it was deleted, and the fingerprint
/// of its table's columns at that time.
fn internal_v3_statements(d: Dialect) -> Vec<String> {
    let t = |n: &str| d.own(n);
    let idx = |n: &str| match d {
        Dialect::Postgres => n.to_string(),
        Dialect::Sqlite => format!("lethe_{n}"),
    };
    let (uuid, ts, json) = (d.uuid_type(), d.timestamp_type(), d.json_type());
    let id = match d {
        Dialect::Postgres => "id BIGSERIAL PRIMARY KEY",
        Dialect::Sqlite => "id INTEGER PRIMARY KEY AUTOINCREMENT",
    };
    let mut s = vec![
        format!(
            "CREATE TABLE {} ({id}, kind TEXT NOT NULL CHECK (kind IN ('snapshot', 'archive')), deletion_id {uuid} NOT NULL, entity TEXT NOT NULL, \
             key {json} NOT NULL, row {json} NOT NULL, fingerprint TEXT, deleted_at {ts} NOT NULL, archived_at {ts} NOT NULL)",
            t("archive")
        ),
        // Snapshots written before v3 keep their rows and get their
        // deletion's time; their shape is the table's current one.
        format!(
            "INSERT INTO {} (kind, deletion_id, entity, key, row, deleted_at, archived_at) \
             SELECT 'snapshot', s.deletion_id, s.entity, s.key, s.row, x.at, x.at FROM {} s JOIN {} x ON x.id = s.deletion_id",
            t("archive"),
            t("snapshots"),
            t("deletions")
        ),
        format!("DROP TABLE {}", t("snapshots")),
        format!(
            "CREATE INDEX {} ON {} (deletion_id, entity)",
            idx("archive_deletion"),
            t("archive")
        ),
        format!(
            "CREATE INDEX {} ON {} (entity, key)",
            idx("archive_entity_key"),
            t("archive")
        ),
        // Retention, stats and export read one entity's rows of one kind by
        // time, in id order.
        format!(
            "CREATE INDEX {} ON {} (entity, kind, deleted_at, id)",
            idx("archive_retention"),
            t("archive")
        ),
        format!(
            "CREATE TABLE {} (fingerprint TEXT PRIMARY KEY, entity TEXT NOT NULL, table_name TEXT NOT NULL, columns TEXT NOT NULL, created_at {ts} NOT NULL)",
            t("fingerprints")
        ),
        format!("ALTER TABLE {} ADD COLUMN purged_at {ts}", t("deletions")),
        format!(
            "CREATE TABLE {} ({id}, entity TEXT NOT NULL, key {json} NOT NULL, reason TEXT NOT NULL, actor TEXT, created_at {ts} NOT NULL, \
             released_at {ts}, released_by TEXT, release_reason TEXT)",
            t("holds")
        ),
        format!(
            "CREATE INDEX {} ON {} (entity) WHERE released_at IS NULL",
            idx("holds_active"),
            t("holds")
        ),
        // The gate purge batches share and hold changes take alone (see
        // `purge::begin_batch`).
        format!(
            "INSERT INTO {} (name, value) VALUES ('holds', 'gate')",
            t("settings")
        ),
        // One row per run of a scheduled job: the first worker to insert a
        // (job, time) runs it; the others see the row and skip.
        format!(
            "CREATE TABLE {} (job TEXT NOT NULL, scheduled_for {ts} NOT NULL, owner TEXT NOT NULL, state TEXT NOT NULL CHECK (state IN ('running', 'done', 'failed', 'skipped')), \
             started_at {ts} NOT NULL, finished_at {ts}, summary TEXT, error TEXT, PRIMARY KEY (job, scheduled_for))",
            t("job_runs")
        ),
        // SQLite has no advisory locks: a leased row per job keeps two
        // workers from running it at once.
        format!(
            "CREATE TABLE {} (job TEXT PRIMARY KEY, owner TEXT, lease_until {ts})",
            t("job_locks")
        ),
        format!(
            "CREATE TABLE {} ({id}, entity TEXT NOT NULL, day TEXT NOT NULL, location TEXT NOT NULL, path TEXT NOT NULL, row_count BIGINT NOT NULL, \
             bytes BIGINT NOT NULL, sha256 TEXT NOT NULL, manifest TEXT NOT NULL, exported_at {ts} NOT NULL, UNIQUE (location, entity, day))",
            t("exports")
        ),
        // Per-subject data keys for exported personal data, wrapped by the
        // key-encryption key; destroying a row shreds every exported copy.
        format!(
            "CREATE TABLE {} (subject TEXT PRIMARY KEY, wrapped_key TEXT NOT NULL, created_at {ts} NOT NULL, shredded_at {ts})",
            t("subject_keys")
        ),
    ];
    if d == Dialect::Postgres {
        // Whether text converts to a type, without aborting the
        // transaction: restore names the column and value that would not.
        s.push(
            "CREATE OR REPLACE FUNCTION lethe.castable(v text, t text) RETURNS boolean LANGUAGE plpgsql AS $$ \
             BEGIN EXECUTE format('SELECT CAST(%L AS %s)', v, t); RETURN true; EXCEPTION WHEN others THEN RETURN false; END $$"
                .to_string(),
        );
    }
    s
}

/// Plans the migration of `schema` to what `policy` needs. `installed` holds
/// the ids of Lethe's internal versions already applied.
pub fn plan_migration(
    d: Dialect,
    policy: &Policy,
    schema: &Schema,
    installed: &[String],
) -> Vec<MigrationStep> {
    let mut steps = internal_steps(d, installed);
    for e in policy.entities.values() {
        let Some(t) = schema.table(&e.table) else {
            continue; // `lethe check` reports unknown tables; nothing to migrate.
        };
        if e.is_soft() {
            entity_steps(d, policy, e, t, schema, &mut steps);
        } else {
            // Archive and hard tables get no markers, but a raw DELETE
            // would still skip the snapshot, audit and outbox.
            guard_step(d, e, t, &mut steps);
        }
    }
    steps
}

fn entity_steps(
    d: Dialect,
    policy: &Policy,
    e: &Entity,
    t: &TableInfo,
    schema: &Schema,
    steps: &mut Vec<MigrationStep>,
) {
    let table = d.table(&e.table);
    let step = |steps: &mut Vec<MigrationStep>,
                id: String,
                description: String,
                statements: Vec<String>| {
        steps.push(MigrationStep {
            id,
            description,
            statements,
            blocked: None,
            foreign_keys_off: false,
        })
    };
    // SQLite: a UNIQUE clause inside CREATE TABLE can only go with a rebuild,
    // done first so the later steps see the rebuilt table.
    let mut rebuilt: Vec<BTreeSet<&String>> = Vec::new();
    if d.unique_clause_needs_rebuild() {
        let inline: Vec<&Vec<String>> = e
            .unique
            .iter()
            .filter(|cols| {
                let want: BTreeSet<&String> = cols.iter().collect();
                !t.indexes.contains(&unique_index_name(e, cols))
                    && t.uniques.iter().any(|u| {
                        u.inline && !u.partial && u.columns.iter().collect::<BTreeSet<_>>() == want
                    })
            })
            .collect();
        let new_sql = t.create_sql.as_ref().and_then(|create| {
            let mut sql = create.clone();
            for cols in &inline {
                sql = crate::sqlite_rebuild::drop_unique(&sql, cols)?;
            }
            crate::sqlite_rebuild::rename_create(&sql, &format!("lethe_rebuild_{}", e.table))
        });
        if let (false, Some(new_sql)) = (inline.is_empty(), new_sql) {
            let columns: Vec<String> = t
                .columns
                .iter()
                .filter(|c| !c.generated)
                .map(|c| c.name.clone())
                .collect();
            steps.push(MigrationStep {
                id: format!("{}:rebuild", e.table),
                description: format!(
                    "rebuild {} without its inline UNIQUE on ({}) — SQLite cannot drop such a clause in place; data, indexes and triggers are kept",
                    e.table,
                    inline.iter().map(|c| c.join(", ")).collect::<Vec<_>>().join("), (")
                ),
                statements: crate::sqlite_rebuild::rebuild_statements(&e.table, &new_sql, &columns, &t.dependent_sql),
                blocked: None,
                foreign_keys_off: true,
            });
            rebuilt = inline.iter().map(|c| c.iter().collect()).collect();
        }
    }
    let mut added_columns = false;
    if !t.has_column(&e.deleted_at) {
        added_columns = true;
        step(
            steps,
            format!("{}:column:{}", e.table, e.deleted_at),
            format!(
                "add marker column {}.{} (NULL = active)",
                e.table, e.deleted_at
            ),
            vec![format!(
                "ALTER TABLE {table} ADD COLUMN {} {}",
                d.ident(&e.deleted_at),
                d.timestamp_type()
            )],
        );
    }
    if !t.has_column(&e.deletion_id) {
        added_columns = true;
        step(
            steps,
            format!("{}:column:{}", e.table, e.deletion_id),
            format!(
                "add marker column {}.{} (which deletion removed the row)",
                e.table, e.deletion_id
            ),
            vec![format!(
                "ALTER TABLE {table} ADD COLUMN {} {}",
                d.ident(&e.deletion_id),
                d.uuid_type()
            )],
        );
    }
    let idx = object_name(&format!("lethe_{}_deletion_id", base_name(&e.table)));
    if !t.indexes.contains(&idx) {
        step(
            steps,
            format!("{}:index:deletion_id", e.table),
            format!("index {}.{} for restore", e.table, e.deletion_id),
            vec![format!(
                "CREATE INDEX {} ON {table} ({}) WHERE {} IS NOT NULL",
                d.ident(&idx),
                d.ident(&e.deletion_id),
                d.ident(&e.deletion_id)
            )],
        );
    }
    let idx = object_name(&format!("lethe_{}_active_key", base_name(&e.table)));
    if !t.indexes.contains(&idx) && e.key.iter().all(|c| t.has_column(c)) {
        step(
            steps,
            format!("{}:index:active_key", e.table),
            format!(
                "partial index on {}({}) for active rows",
                e.table,
                e.key.join(", ")
            ),
            vec![format!(
                "CREATE INDEX {} ON {table} ({}) WHERE {} IS NULL",
                d.ident(&idx),
                e.key
                    .iter()
                    .map(|c| d.ident(c))
                    .collect::<Vec<_>>()
                    .join(", "),
                d.ident(&e.deleted_at)
            )],
        );
    }
    for cols in &e.unique {
        let name = unique_index_name(e, cols);
        if t.indexes.contains(&name) || !cols.iter().all(|c| t.has_column(c)) {
            continue;
        }
        let want: BTreeSet<&String> = cols.iter().collect();
        let mut statements = Vec::new();
        let mut replaced = Vec::new();
        let mut blocked = None;
        // A foreign key needs a plain unique constraint or index on the
        // columns it references: a partial index cannot take its place.
        if let Some((child, fk)) = schema.tables.values().find_map(|ct| {
            ct.foreign_keys
                .iter()
                .find(|f| {
                    schema.table(&f.ref_table).map(|p| p.name.as_str()) == Some(t.name.as_str())
                        && f.ref_columns.iter().collect::<BTreeSet<_>>() == want
                })
                .map(|f| (ct, f))
        }) {
            blocked = Some(format!(
                "the foreign key {}.({}) references {}({}) through its unique constraint, and a partial unique index (unique among active rows only) cannot back a foreign key. Reference the key instead, or leave ({}) out of `unique` in the policy",
                child.name,
                fk.columns.join(", "),
                e.table,
                cols.join(", "),
                cols.join(", ")
            ));
        }
        for u in t
            .uniques
            .iter()
            .filter(|u| !u.partial && u.columns.iter().collect::<BTreeSet<_>>() == want)
        {
            if u.inline && rebuilt.contains(&want) {
                // Removed by the rebuild step above.
                continue;
            } else if u.inline {
                blocked = Some(format!(
                    "{}({}) has a UNIQUE clause inside its CREATE TABLE; SQLite can only drop it by rebuilding the table. \
                     Rebuild \"{}\" without that clause (keep a plain column) and run `lethe migrate` again",
                    e.table,
                    cols.join(", "),
                    e.table
                ));
            } else if u.is_constraint {
                statements.push(format!(
                    "ALTER TABLE {table} DROP CONSTRAINT {}",
                    d.ident(&u.name)
                ));
            } else {
                statements.push(format!("DROP INDEX {}", sibling(d, &e.table, &u.name)));
            }
            replaced.push(u.name.clone());
        }
        statements.push(format!(
            "CREATE UNIQUE INDEX {} ON {table} ({}) WHERE {} IS NULL",
            d.ident(&name),
            cols.iter()
                .map(|c| d.ident(c))
                .collect::<Vec<_>>()
                .join(", "),
            d.ident(&e.deleted_at)
        ));
        let description = if replaced.is_empty() {
            format!(
                "unique ({}) among active rows of {}",
                cols.join(", "),
                e.table
            )
        } else {
            format!(
                "replace plain unique {} on {}({}) with a partial unique index among active rows",
                replaced.join(", "),
                e.table,
                cols.join(", ")
            )
        };
        steps.push(MigrationStep {
            id: format!("{}:unique:{}", e.table, cols.join(",")),
            description,
            statements,
            blocked,
            foreign_keys_off: false,
        });
    }
    let view = active_view_name(e);
    // Views are named like tables: schema-qualified next to a qualified table.
    let view_key = match e.table.split_once('.') {
        Some((sch, _)) => format!("{sch}.{view}"),
        None => view.clone(),
    };
    let view_exists = schema.has_view(&view_key);
    if !view_exists || added_columns {
        let mut statements = Vec::new();
        if view_exists {
            statements.push(format!("DROP VIEW {}", sibling(d, &e.table, &view)));
        }
        statements.push(format!(
            "CREATE VIEW {} AS SELECT * FROM {table} WHERE {} IS NULL",
            sibling(d, &e.table, &view),
            d.ident(&e.deleted_at)
        ));
        step(
            steps,
            format!("{}:view:active", e.table),
            format!("view {view}: the active rows of {}", e.table),
            statements,
        );
    }
    guard_step(d, e, t, steps);
    if d == Dialect::Postgres && policy.database.row_security {
        let pol = "lethe_hide_deleted";
        if !t.policies.contains(pol) {
            let mut statements = Vec::new();
            if !t.row_security {
                statements.push(format!("ALTER TABLE {table} ENABLE ROW LEVEL SECURITY"));
                // FORCE: applications often connect as the table owner, which
                // would otherwise bypass the policy. Lethe's own sessions set
                // lethe.include_deleted; superusers and BYPASSRLS roles bypass.
                statements.push(format!("ALTER TABLE {table} FORCE ROW LEVEL SECURITY"));
            }
            statements.push(format!(
                "CREATE POLICY {pol} ON {table} FOR SELECT USING ({} IS NULL OR current_setting('lethe.include_deleted', true) = 'on')",
                d.ident(&e.deleted_at)
            ));
            statements.push(format!(
                "CREATE POLICY lethe_allow_insert ON {table} FOR INSERT WITH CHECK (true)"
            ));
            statements.push(format!(
                "CREATE POLICY lethe_allow_update ON {table} FOR UPDATE USING (true)"
            ));
            statements.push(format!(
                "CREATE POLICY lethe_allow_delete ON {table} FOR DELETE USING (true)"
            ));
            step(
                steps,
                format!("{}:row_security", e.table),
                format!(
                    "row-level security on {}: application roles see only active rows unless they SET lethe.include_deleted = 'on'",
                    e.table
                ),
                statements,
            );
        }
    }
}

/// The trigger that refuses a raw DELETE (and on PostgreSQL TRUNCATE) on a
/// managed table; Lethe's own deletes and purges pass it.
fn guard_step(d: Dialect, e: &Entity, t: &TableInfo, steps: &mut Vec<MigrationStep>) {
    let table = d.table(&e.table);
    let trig = guard_trigger_name(e);
    if !t.triggers.contains(&trig) {
        let msg = guard_message(e);
        let statements = match d {
            Dialect::Postgres => vec![
                format!(
                    "CREATE TRIGGER {} BEFORE DELETE ON {table} FOR EACH STATEMENT EXECUTE FUNCTION lethe.guard_delete({})",
                    d.ident(&trig),
                    d.lit(&msg)
                ),
                format!(
                    "CREATE TRIGGER {} BEFORE TRUNCATE ON {table} FOR EACH STATEMENT EXECUTE FUNCTION lethe.guard_delete({})",
                    d.ident(&object_name(&format!("{trig}_truncate"))),
                    d.lit(&msg.replace("raw DELETE", "TRUNCATE"))
                ),
            ],
            Dialect::Sqlite => vec![format!(
                "CREATE TRIGGER {} BEFORE DELETE ON {table} WHEN NOT EXISTS (SELECT 1 FROM lethe_bypass) BEGIN SELECT RAISE(ABORT, {}); END",
                d.ident(&trig),
                d.lit(&msg)
            )],
        };
        steps.push(MigrationStep {
            id: format!("{}:guard", e.table),
            description: format!("guard: refuse raw DELETE on {}", e.table),
            statements,
            blocked: None,
            foreign_keys_off: false,
        });
    }
}

/// Records an applied step (idempotent: re-applying a step updates the record).
pub fn record_step_sql(d: Dialect) -> String {
    let (p1, p2, p3) = match d {
        Dialect::Postgres => ("$1", "CAST($2 AS timestamptz)", "$3"),
        Dialect::Sqlite => ("$1", "$2", "$3"),
    };
    format!(
        "INSERT INTO {} (id, applied_at, statements) VALUES ({p1}, {p2}, {p3}) ON CONFLICT (id) DO UPDATE SET applied_at = excluded.applied_at, statements = excluded.statements",
        d.own("migrations")
    )
}
