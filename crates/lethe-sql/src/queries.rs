//! Statements on Lethe's own tables (deletions, audit, outbox) and the
//! introspection queries, per dialect. Every statement returns text columns so
//! results decode the same way on every database.

use crate::dialect::Dialect;

fn p(d: Dialect, n: usize) -> String {
    match d {
        Dialect::Postgres => format!("${n}"),
        Dialect::Sqlite => format!("${n}"),
    }
}

/// How a transaction that changes data starts. SQLite takes the write lock at
/// once, so two writers never deadlock upgrading a read lock.
pub fn begin_write(d: Dialect) -> &'static str {
    match d {
        Dialect::Postgres => "BEGIN",
        Dialect::Sqlite => "BEGIN IMMEDIATE",
    }
}

/// Whether Lethe's migrations table exists: one row, `1` or `0`.
pub fn internal_table_exists(d: Dialect) -> &'static str {
    match d {
        Dialect::Postgres => {
            "SELECT CASE WHEN to_regclass('lethe.migrations') IS NULL THEN '0' ELSE '1' END"
        }
        Dialect::Sqlite => {
            "SELECT CASE WHEN EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'lethe_migrations') THEN '1' ELSE '0' END"
        }
    }
}

/// The internal versions recorded (run only when the table exists: SQLite
/// resolves table names when it prepares a statement): `(id)`.
pub fn internal_versions(d: Dialect) -> String {
    format!(
        "SELECT id FROM {} WHERE id LIKE 'lethe:internal:%'",
        d.own("migrations")
    )
}

/// One of Lethe's settings by name (`$1`): `(value)`.
pub fn setting(d: Dialect) -> String {
    format!(
        "SELECT value FROM {} WHERE name = {}",
        d.own("settings"),
        p(d, 1)
    )
}

/// Locks the audit head until commit and returns `(seq, hash)`.
pub fn lock_audit_head(d: Dialect) -> String {
    match d {
        Dialect::Postgres => {
            "SELECT seq::text, hash FROM lethe.audit_head WHERE id = 1 FOR UPDATE".into()
        }
        // BEGIN IMMEDIATE already holds the database write lock.
        Dialect::Sqlite => {
            "SELECT CAST(seq AS TEXT), hash FROM lethe_audit_head WHERE id = 1".into()
        }
    }
}

/// Appends an audit entry and moves the head, in one round trip, together
/// with `companion` (the statement that records what the entry is about: a
/// deletion record, or its restore mark). The companion's params come first;
/// the entry's are seq, at, action, deletion id (or NULL), entry, prev hash,
/// hash, numbered from `offset + 1`.
pub fn audit_append(d: Dialect, companion: &str, offset: usize) -> String {
    let n = |i: usize| p(d, offset + i);
    let insert = format!(
        "INSERT INTO {} (seq, at, action, deletion_id, entry, prev_hash, hash) VALUES ({}, {}, {}, {}, {}, {}, {})",
        d.own("audit"),
        d.cast(&n(1), "bigint"),
        d.cast(&n(2), d.timestamp_type()),
        n(3),
        d.cast(&n(4), d.uuid_type()),
        n(5),
        n(6),
        n(7)
    );
    let head = format!(
        "UPDATE {} SET seq = {}, hash = {} WHERE id = 1",
        d.own("audit_head"),
        d.cast(&n(1), "bigint"),
        n(7)
    );
    d.batch(&[companion.to_string(), insert], head)
}

/// The audit head: `(seq, hash)`.
pub fn audit_head(d: Dialect) -> String {
    format!(
        "SELECT {}, hash FROM {} WHERE id = 1",
        d.text("seq"),
        d.own("audit_head")
    )
}

/// The audit log in order, from seq `$1` on: `(seq, entry, prev_hash, hash,
/// action, deletion_id, at)`.
pub fn audit_entries(d: Dialect) -> String {
    format!(
        "SELECT {}, a.entry, a.prev_hash, a.hash, a.action, COALESCE({}, ''), {} FROM {} a WHERE a.seq >= {} ORDER BY a.seq LIMIT {}",
        d.text("a.seq"),
        d.text("a.deletion_id"),
        d.timestamp_text("a.at"),
        d.own("audit"),
        d.cast(&p(d, 1), "bigint"),
        d.cast(&p(d, 2), "bigint")
    )
}

/// Records a deletion. Params: id, kind, at, actor, reason, context, root
/// entity, root key, summary.
pub fn insert_deletion(d: Dialect) -> String {
    let json = |n| d.cast(&p(d, n), d.json_type());
    format!(
        "INSERT INTO {} (id, kind, at, actor, reason, context, root_entity, root_key, summary) VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {})",
        d.own("deletions"),
        d.cast(&p(d, 1), d.uuid_type()),
        p(d, 2),
        d.cast(&p(d, 3), d.timestamp_type()),
        p(d, 4),
        p(d, 5),
        json(6),
        p(d, 7),
        json(8),
        json(9)
    )
}

/// Records a run of several transactions under one id (a purge): the first
/// inserts the record, the next ones update its summary. Params as
/// [`insert_deletion`].
pub fn upsert_deletion(d: Dialect) -> String {
    format!(
        "{} ON CONFLICT (id) DO UPDATE SET summary = excluded.summary",
        insert_deletion(d)
    )
}

const DELETION_COLUMNS: &str = "id, kind, at, actor, reason, context, root_entity, root_key, summary, restored_at, restored_by, restored_reason, purged_at";

fn deletion_select(d: Dialect) -> String {
    let cols: Vec<String> = DELETION_COLUMNS
        .split(", ")
        .map(|c| match c {
            "at" | "restored_at" | "purged_at" => d.timestamp_text(&format!("x.{c}")),
            _ => d.text(&format!("x.{c}")),
        })
        .collect();
    format!("SELECT {} FROM {} x", cols.join(", "), d.own("deletions"))
}

/// One deletion by id, locked for update when `lock` (restore).
pub fn deletion_by_id(d: Dialect, lock: bool) -> String {
    let lock = if lock && d == Dialect::Postgres {
        " FOR UPDATE"
    } else {
        ""
    };
    format!(
        "{} WHERE x.id = {}{lock}",
        deletion_select(d),
        d.cast(&p(d, 1), d.uuid_type())
    )
}

/// Deletions, newest first; `$1` filters by root entity when not NULL, `$2` is
/// the limit.
pub fn list_deletions(d: Dialect) -> String {
    format!(
        "{} WHERE ({} IS NULL OR x.root_entity = {}) ORDER BY x.at DESC, x.id DESC LIMIT {}",
        deletion_select(d),
        p(d, 1),
        p(d, 1),
        d.cast(&p(d, 2), "bigint")
    )
}

/// Marks a deletion restored. Params: id, at, actor, reason.
pub fn mark_restored(d: Dialect) -> String {
    format!(
        "UPDATE {} SET restored_at = {}, restored_by = {}, restored_reason = {} WHERE id = {} AND restored_at IS NULL",
        d.own("deletions"),
        d.cast(&p(d, 2), d.timestamp_type()),
        p(d, 3),
        p(d, 4),
        d.cast(&p(d, 1), d.uuid_type())
    )
}

/// Outbox records of a deletion: `(id, event, entity, part, keys, row_count,
/// key_columns, columns)`.
pub fn outbox_for(d: Dialect) -> String {
    format!(
        "SELECT {}, o.event, o.entity, {}, {}, {}, o.key_columns, o.columns FROM {} o WHERE o.deletion_id = {} ORDER BY o.id",
        d.text("o.id"),
        d.text("o.part"),
        d.text("o.keys"),
        d.text("o.row_count"),
        d.own("outbox"),
        d.cast(&p(d, 1), d.uuid_type())
    )
}

/// After a table rebuild with foreign keys off: rows that violate a foreign
/// key (must be none before commit).
pub fn foreign_key_check(d: Dialect) -> Option<&'static str> {
    match d {
        Dialect::Postgres => None,
        Dialect::Sqlite => {
            Some("SELECT \"table\", CAST(rowid AS TEXT), parent FROM pragma_foreign_key_check")
        }
    }
}

/// Introspection, returning text rows. See `lethe-store`'s introspection for
/// how the rows are assembled.
pub mod introspect {
    use super::Dialect;

    /// `(table, column, type, not_null, has_default, generated)`.
    pub fn columns(d: Dialect) -> &'static str {
        match d {
            Dialect::Postgres => {
                "SELECT CASE WHEN n.nspname = current_schema() THEN c.relname ELSE n.nspname || '.' || c.relname END, \
                 a.attname::text, format_type(a.atttypid, NULL), a.attnotnull::text, a.atthasdef::text, (a.attgenerated <> '')::text \
                 FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped \
                 AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'lethe') AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%' \
                 ORDER BY 1, a.attnum"
            }
            Dialect::Sqlite => {
                "SELECT m.name, p.name, p.type, CAST(p.\"notnull\" <> 0 AS TEXT), CAST(p.dflt_value IS NOT NULL AS TEXT), CAST(p.hidden IN (2, 3) AS TEXT) \
                 FROM sqlite_master m JOIN pragma_table_xinfo(m.name) p \
                 WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' ORDER BY m.name, p.cid"
            }
        }
    }

    /// `(table, name, kind, columns (comma-separated), partial, ref_table,
    /// ref_columns, on_delete)`; kind is `p` primary key, `u` unique constraint,
    /// `i` unique index, `inline` (SQLite UNIQUE in CREATE TABLE), `f` foreign
    /// key, `x` any other index.
    pub fn constraints(d: Dialect) -> &'static str {
        match d {
            Dialect::Postgres => {
                "WITH t AS (SELECT c.oid, CASE WHEN n.nspname = current_schema() THEN c.relname ELSE n.nspname || '.' || c.relname END AS name \
                   FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') \
                   AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'lethe') AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%') \
                 SELECT t.name, con.conname::text, con.contype::text, \
                   (SELECT string_agg(a.attname, ',' ORDER BY k.o) FROM unnest(con.conkey) WITH ORDINALITY k(n, o) JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n), \
                   'false', COALESCE(rt.name, ''), \
                   COALESCE((SELECT string_agg(a.attname, ',' ORDER BY k.o) FROM unnest(con.confkey) WITH ORDINALITY k(n, o) JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n), ''), \
                   CASE con.confdeltype WHEN 'c' THEN 'cascade' WHEN 'r' THEN 'restrict' WHEN 'n' THEN 'set null' WHEN 'd' THEN 'set default' ELSE 'no action' END \
                 FROM pg_constraint con JOIN t ON t.oid = con.conrelid LEFT JOIN t rt ON rt.oid = con.confrelid \
                 WHERE con.contype IN ('p', 'u', 'f') \
                 UNION ALL \
                 SELECT t.name, i.relname::text, CASE WHEN ix.indisunique THEN 'i' ELSE 'x' END, \
                   COALESCE((SELECT string_agg(a.attname, ',' ORDER BY k.o) FROM unnest(ix.indkey::int2[]) WITH ORDINALITY k(n, o) JOIN pg_attribute a ON a.attrelid = ix.indrelid AND a.attnum = k.n), ''), \
                   (ix.indpred IS NOT NULL OR ix.indexprs IS NOT NULL)::text, '', '', '' \
                 FROM pg_index ix JOIN t ON t.oid = ix.indrelid JOIN pg_class i ON i.oid = ix.indexrelid \
                 WHERE NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = ix.indexrelid AND c.contype IN ('p', 'u')) \
                 UNION ALL \
                 SELECT t.name, con.conname::text, 'x', '', 'false', '', '', '' \
                 FROM pg_constraint con JOIN t ON t.oid = con.conrelid WHERE con.contype IN ('p', 'u')"
            }
            Dialect::Sqlite => {
                "SELECT m.name, il.name, CASE WHEN il.origin = 'pk' THEN 'x' WHEN il.origin = 'u' THEN 'inline' WHEN il.\"unique\" THEN 'i' ELSE 'x' END, \
                   (SELECT group_concat(name, ',') FROM (SELECT ii.name FROM pragma_index_info(il.name) ii ORDER BY ii.seqno)), \
                   CAST(il.partial <> 0 AS TEXT), '', '', '' \
                 FROM sqlite_master m JOIN pragma_index_list(m.name) il WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' \
                 UNION ALL \
                 SELECT m.name, 'pk', 'p', (SELECT group_concat(name, ',') FROM (SELECT p.name FROM pragma_table_info(m.name) p WHERE p.pk > 0 ORDER BY p.pk)), 'false', '', '', '' \
                 FROM sqlite_master m WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' \
                   AND EXISTS (SELECT 1 FROM pragma_table_info(m.name) p WHERE p.pk > 0) \
                 UNION ALL \
                 SELECT m.name, 'fk' || fk.id, 'f', group_concat(fk.\"from\", ','), 'false', fk.\"table\", COALESCE(group_concat(fk.\"to\", ','), ''), lower(fk.on_delete) \
                 FROM sqlite_master m JOIN pragma_foreign_key_list(m.name) fk WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' \
                 GROUP BY m.name, fk.id"
            }
        }
    }

    /// `(table, trigger)`.
    pub fn triggers(d: Dialect) -> &'static str {
        match d {
            Dialect::Postgres => {
                "SELECT CASE WHEN n.nspname = current_schema() THEN c.relname ELSE n.nspname || '.' || c.relname END, tg.tgname::text \
                 FROM pg_trigger tg JOIN pg_class c ON c.oid = tg.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE NOT tg.tgisinternal"
            }
            Dialect::Sqlite => "SELECT tbl_name, name FROM sqlite_master WHERE type = 'trigger'",
        }
    }

    /// `(table, type, sql)` of stored definitions (SQLite; none on PostgreSQL).
    pub fn definitions(d: Dialect) -> &'static str {
        match d {
            Dialect::Postgres => "SELECT '', '', '' WHERE false",
            Dialect::Sqlite => {
                "SELECT tbl_name, type, sql FROM sqlite_master WHERE sql IS NOT NULL AND type IN ('table', 'index', 'trigger') ORDER BY rowid"
            }
        }
    }

    /// `(schema)`: the schema whose tables are named without a prefix.
    pub fn current_schema(d: Dialect) -> &'static str {
        match d {
            Dialect::Postgres => "SELECT current_schema()::text",
            Dialect::Sqlite => "SELECT 'main'",
        }
    }

    /// `(view)`, named like tables (schema-qualified outside the current schema).
    pub fn views(d: Dialect) -> &'static str {
        match d {
            Dialect::Postgres => {
                "SELECT CASE WHEN n.nspname = current_schema() THEN c.relname ELSE n.nspname || '.' || c.relname END \
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE c.relkind IN ('v', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'lethe')"
            }
            Dialect::Sqlite => "SELECT name FROM sqlite_master WHERE type = 'view'",
        }
    }

    /// `(table, row_security, policy or '')`.
    pub fn row_security(d: Dialect) -> &'static str {
        match d {
            Dialect::Postgres => {
                "SELECT CASE WHEN n.nspname = current_schema() THEN c.relname ELSE n.nspname || '.' || c.relname END, c.relrowsecurity::text, COALESCE(p.polname::text, '') \
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace LEFT JOIN pg_policy p ON p.polrelid = c.oid \
                 WHERE c.relkind IN ('r', 'p') AND (c.relrowsecurity OR p.polname IS NOT NULL)"
            }
            Dialect::Sqlite => "SELECT '', 'false', '' WHERE 0",
        }
    }
}

/// The marker state of one row of `e` by key: zero rows (missing) or one row
/// `(deleted_at, deletion_id)` as text (empty for hard entities).
pub fn row_status(
    d: Dialect,
    e: &lethe_core::Entity,
    schema: &lethe_core::Schema,
) -> crate::dialect::Stmt {
    let mut b = crate::dialect::Binder::new(d);
    let conds: Vec<String> = e
        .key
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let p = b.bind(crate::dialect::Param::Key(i));
            format!(
                "t.{} = {}",
                d.ident(c),
                d.cast(&p, schema.column_type(&e.table, c))
            )
        })
        .collect();
    let cols = if e.has_markers() {
        format!(
            "{}, {}",
            d.text(&format!("t.{}", d.ident(&e.deleted_at))),
            d.text(&format!("t.{}", d.ident(&e.deletion_id)))
        )
    } else {
        "'', ''".to_string()
    };
    b.finish(format!(
        "SELECT {cols} FROM {} t WHERE {} LIMIT 1",
        d.table(&e.table),
        conds.join(" AND ")
    ))
}
