//! The SQL dialects. Every difference between databases is a method here; no
//! other crate branches on the database kind.

use lethe_core::Entity;

/// A database dialect Lethe renders SQL for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    Postgres,
    Sqlite,
}

/// A value bound to a rendered statement. Every user value is bound, never
/// spliced; the statement casts text to the column's type where needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Param {
    /// The deletion id (UUID as text).
    DeletionId,
    /// The time of the operation (RFC 3339 text).
    Now,
    /// The i-th root key value (text).
    Key(usize),
    /// The i-th extra value of an operation (a restore's `--set` values).
    Value(usize),
}

/// A statement with its bound values in placeholder order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stmt {
    pub sql: String,
    pub params: Vec<Param>,
}

/// Collects the params of one statement and hands out placeholders; a param
/// used twice gets one placeholder.
#[derive(Debug, Clone)]
pub struct Binder {
    dialect: Dialect,
    params: Vec<Param>,
}

impl Binder {
    pub fn new(dialect: Dialect) -> Self {
        Binder {
            dialect,
            params: Vec::new(),
        }
    }

    /// The placeholder for `p` (`$n` on both databases).
    pub fn bind(&mut self, p: Param) -> String {
        let n = match self.params.iter().position(|q| *q == p) {
            Some(i) => i + 1,
            None => {
                self.params.push(p);
                self.params.len()
            }
        };
        match self.dialect {
            Dialect::Postgres => format!("${n}"),
            // `$N` is a named parameter in SQLite: a statement that uses only $3
            // has one slot, so batches of statements bind cleanly.
            Dialect::Sqlite => format!("${n}"),
        }
    }

    pub fn finish(self, sql: String) -> Stmt {
        Stmt {
            sql,
            params: self.params,
        }
    }

    /// The text of `stmt` with its placeholders renumbered into this
    /// binder's, so that statements rendered apart can be joined into one
    /// (as the CTEs of one statement). Placeholders inside quoted literals
    /// and identifiers are left alone.
    pub fn absorb(&mut self, stmt: &Stmt) -> String {
        let mut out = String::with_capacity(stmt.sql.len());
        let mut quote: Option<char> = None;
        let mut chars = stmt.sql.chars().peekable();
        while let Some(c) = chars.next() {
            match (quote, c) {
                (None, '\'' | '"') => quote = Some(c),
                (Some(q), _) if c == q => quote = None,
                (None, '$') if chars.peek().is_some_and(|n| n.is_ascii_digit()) => {
                    let mut n = String::new();
                    while let Some(dgt) = chars.peek().copied().filter(|d| d.is_ascii_digit()) {
                        n.push(dgt);
                        chars.next();
                    }
                    let i: usize = n.parse().unwrap_or(0);
                    match stmt.params.get(i.wrapping_sub(1)) {
                        Some(p) => out.push_str(&self.bind(p.clone())),
                        // Not one of the statement's placeholders (a bug in
                        // the caller): as written.
                        None => {
                            debug_assert!(false, "${n} is not a placeholder of {}", stmt.sql);
                            out.push('$');
                            out.push_str(&n);
                        }
                    }
                    continue;
                }
                _ => {}
            }
            out.push(c);
        }
        out
    }
}

impl Dialect {
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Postgres => "postgres",
            Dialect::Sqlite => "sqlite",
        }
    }

    /// Picks the dialect from a connection URL.
    pub fn from_url(url: &str) -> Option<Dialect> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Dialect::Postgres)
        } else if url.starts_with("sqlite:") {
            Some(Dialect::Sqlite)
        } else {
            None
        }
    }

    /// Quotes an identifier (already validated by `lethe_core::ident`).
    pub fn ident(self, name: &str) -> String {
        format!("\"{}\"", name.replace('"', "\"\""))
    }

    /// Quotes a possibly schema-qualified table name.
    pub fn table(self, name: &str) -> String {
        match name.split_once('.') {
            Some((s, t)) => format!("{}.{}", self.ident(s), self.ident(t)),
            None => self.ident(name),
        }
    }

    /// One of Lethe's own tables: schema `lethe` on PostgreSQL, prefix `lethe_`
    /// on SQLite.
    pub fn own(self, name: &str) -> String {
        match self {
            Dialect::Postgres => format!("lethe.{name}"),
            Dialect::Sqlite => format!("lethe_{name}"),
        }
    }

    /// A SQL string literal (only for Lethe's own constants: entity names, which
    /// are validated identifiers).
    pub fn lit(self, s: &str) -> String {
        format!("'{}'", s.replace('\'', "''"))
    }

    /// Casts a bound text value to `sql_type` where the database needs it.
    pub fn cast(self, expr: &str, sql_type: &str) -> String {
        match self {
            Dialect::Postgres if !sql_type.is_empty() => format!("CAST({expr} AS {sql_type})"),
            _ => expr.to_string(),
        }
    }

    /// Like [`Dialect::cast`], but SQLite converts too where its JSON and
    /// comparisons care: a number bound as text becomes a number (so it
    /// matches the number in a stored key).
    pub fn cast_value(self, expr: &str, sql_type: &str) -> String {
        match self {
            Dialect::Postgres => self.cast(expr, sql_type),
            Dialect::Sqlite => match lethe_core::ColumnKind::from_type(sql_type) {
                lethe_core::ColumnKind::Integer => format!("CAST({expr} AS INTEGER)"),
                lethe_core::ColumnKind::Float => format!("CAST({expr} AS REAL)"),
                _ => expr.to_string(),
            },
        }
    }

    /// A field of a JSON object with its JSON type kept (numbers stay
    /// numbers), for building JSON from stored rows.
    pub fn json_value(self, json_expr: &str, field: &str) -> String {
        match self {
            Dialect::Postgres => format!("({json_expr} -> {})", self.lit(field)),
            Dialect::Sqlite => format!(
                "json_extract({json_expr}, {})",
                self.lit(&format!("$.\"{field}\""))
            ),
        }
    }

    /// Whether `max()` takes values of `column_type`: any value on SQLite;
    /// on PostgreSQL numbers and text (there is no `max(uuid)`, for one).
    pub fn has_max(self, column_type: &str) -> bool {
        match self {
            Dialect::Sqlite => true,
            Dialect::Postgres => {
                !column_type.is_empty()
                    && matches!(
                        lethe_core::ColumnKind::from_type(column_type),
                        lethe_core::ColumnKind::Integer
                            | lethe_core::ColumnKind::Float
                            | lethe_core::ColumnKind::Text
                    )
            }
        }
    }

    /// The text of `expr` when it is a deletion id Lethe wrote (a UUID),
    /// typed as one; NULL for anything else an adopted text marker may
    /// hold. `column_type` is the marker column's type: a `uuid` column
    /// needs no check (the regular expression costs more than the rest of a
    /// purge batch's bookkeeping).
    pub fn as_deletion_id(self, expr: &str, column_type: &str) -> String {
        match self {
            Dialect::Postgres if column_type == "uuid" => expr.to_string(),
            Dialect::Postgres => format!(
                "CASE WHEN CAST({expr} AS TEXT) ~* '^[0-9a-f]{{8}}-[0-9a-f]{{4}}-[0-9a-f]{{4}}-[0-9a-f]{{4}}-[0-9a-f]{{12}}$' THEN CAST(CAST({expr} AS TEXT) AS uuid) END"
            ),
            Dialect::Sqlite => format!("CAST({expr} AS TEXT)"),
        }
    }

    /// The type of the `deletion_id` marker and of Lethe's deletion ids.
    pub fn uuid_type(self) -> &'static str {
        match self {
            Dialect::Postgres => "uuid",
            Dialect::Sqlite => "TEXT",
        }
    }

    /// The type of the `deleted_at` marker and of Lethe's timestamps.
    pub fn timestamp_type(self) -> &'static str {
        match self {
            Dialect::Postgres => "timestamptz",
            Dialect::Sqlite => "TEXT",
        }
    }

    pub fn json_type(self) -> &'static str {
        match self {
            Dialect::Postgres => "jsonb",
            Dialect::Sqlite => "TEXT",
        }
    }

    /// A bound deletion id, typed.
    pub fn deletion_id(self, b: &mut Binder) -> String {
        let p = b.bind(Param::DeletionId);
        self.cast(&p, self.uuid_type())
    }

    /// The bound operation time, typed.
    pub fn now(self, b: &mut Binder) -> String {
        let p = b.bind(Param::Now);
        self.cast(&p, self.timestamp_type())
    }

    /// `expr` as text, so results decode the same way on every database.
    pub fn text(self, expr: &str) -> String {
        match self {
            Dialect::Postgres => format!("({expr})::text"),
            Dialect::Sqlite => format!("CAST({expr} AS TEXT)"),
        }
    }

    /// A JSON object from `(name, expr)` pairs.
    pub fn json_object(self, pairs: &[(String, String)]) -> String {
        let f = match self {
            Dialect::Postgres => "jsonb_build_object",
            Dialect::Sqlite => "json_object",
        };
        let args: Vec<String> = pairs
            .iter()
            .map(|(k, v)| format!("{}, {v}", self.lit(k)))
            .collect();
        format!("{f}({})", args.join(", "))
    }

    /// A JSON object of `cols` read from `alias`.
    pub fn json_of_columns(self, alias: &str, cols: &[String]) -> String {
        let pairs: Vec<(String, String)> = cols
            .iter()
            .map(|c| (c.clone(), format!("{alias}.{}", self.ident(c))))
            .collect();
        self.json_object(&pairs)
    }

    /// A whole row of `alias` as a JSON object for a snapshot. SQLite's JSON
    /// cannot hold BLOBs, so a BLOB value is stored as `{"$blob": "<hex>"}`
    /// (see [`Dialect::snapshot_field`]).
    pub fn snapshot_row(self, alias: &str, cols: &[String]) -> String {
        let pairs: Vec<(String, String)> = cols
            .iter()
            .map(|c| {
                let v = format!("{alias}.{}", self.ident(c));
                let e = match self {
                    Dialect::Postgres => v,
                    Dialect::Sqlite => format!(
                        "CASE WHEN typeof({v}) = 'blob' THEN json_object('$blob', hex({v})) ELSE {v} END"
                    ),
                };
                (c.clone(), e)
            })
            .collect();
        self.json_object(&pairs)
    }

    /// A whole row of `alias` as JSON, for Lethe's archive store and export
    /// files: PostgreSQL's `to_jsonb` of the row; on SQLite every column of
    /// `cols` ([`Dialect::snapshot_row`]).
    pub fn row_json(self, alias: &str, cols: &[String]) -> String {
        match self {
            Dialect::Postgres => format!("to_jsonb({alias})"),
            Dialect::Sqlite => self.snapshot_row(alias, cols),
        }
    }

    /// `alias.k1 = <k1 of json_expr> AND ...`: the row of `e` (alias `alias`)
    /// whose key a JSON object holds, each value converted to the column's
    /// type.
    pub fn key_matches_json(
        self,
        schema: &lethe_core::Schema,
        e: &Entity,
        alias: &str,
        json_expr: &str,
    ) -> String {
        e.key
            .iter()
            .map(|k| {
                format!(
                    "{alias}.{} = {}",
                    self.ident(k),
                    self.cast_value(
                        &self.json_text(json_expr, k),
                        schema.column_type(&e.table, k)
                    )
                )
            })
            .collect::<Vec<_>>()
            .join(" AND ")
    }

    /// Reads column `col` back out of a snapshot made by
    /// [`Dialect::snapshot_row`] (PostgreSQL: from the populated record).
    pub fn snapshot_field(self, json_expr: &str, row_alias: &str, col: &str) -> String {
        match self {
            Dialect::Postgres => self.json_field(json_expr, row_alias, col),
            Dialect::Sqlite => {
                let path = self.lit(&format!("$.\"{col}\""));
                let blob = self.lit(&format!("$.\"{col}\".\"$blob\""));
                format!(
                    "CASE WHEN json_type({json_expr}, {path}) = 'object' THEN unhex(json_extract({json_expr}, {blob})) ELSE json_extract({json_expr}, {path}) END"
                )
            }
        }
    }

    /// `obj` without its null-valued keys.
    pub fn json_strip_nulls(self, obj: &str) -> String {
        match self {
            Dialect::Postgres => format!("jsonb_strip_nulls({obj})"),
            // A merge patch drops the keys whose value is null.
            Dialect::Sqlite => format!("json_patch('{{}}', {obj})"),
        }
    }

    /// Two JSON objects merged, for [`Dialect::json_record_join`] (SQLite reads
    /// fields from each object directly, so the first one is enough there).
    pub fn json_merge(self, a: &str, b: &str) -> String {
        match self {
            Dialect::Postgres => format!("({a} || {b})"),
            Dialect::Sqlite => a.to_string(),
        }
    }

    /// Lets a restore re-insert rows with their original identity values.
    pub fn insert_overriding(self) -> &'static str {
        match self {
            Dialect::Postgres => " OVERRIDING SYSTEM VALUE",
            Dialect::Sqlite => "",
        }
    }

    /// A timestamp column as ISO 8601 UTC text, the same on every database.
    pub fn timestamp_text(self, expr: &str) -> String {
        match self {
            Dialect::Postgres => {
                format!("to_char({expr} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')")
            }
            Dialect::Sqlite => format!("CAST({expr} AS TEXT)"),
        }
    }

    /// A JSON array of the values of `exprs`.
    pub fn json_array(self, exprs: &[String]) -> String {
        match self {
            Dialect::Postgres => format!("json_build_array({})", exprs.join(", ")),
            Dialect::Sqlite => format!("json_array({})", exprs.join(", ")),
        }
    }

    /// Aggregates values (scalars, or JSON made by [`Dialect::json_array`])
    /// into a JSON array. `reparse`: the JSON went through a subquery, which
    /// makes SQLite forget it is JSON.
    pub fn json_agg_values(self, expr: &str, reparse: bool) -> String {
        match self {
            Dialect::Postgres => format!("json_agg({expr})"),
            Dialect::Sqlite if reparse => format!("json_group_array(json({expr}))"),
            Dialect::Sqlite => format!("json_group_array({expr})"),
        }
    }

    /// The type of large JSON documents Lethe only appends and reads whole
    /// (outbox keys): PostgreSQL's `json` skips `jsonb`'s parse on insert.
    pub fn json_doc_type(self) -> &'static str {
        match self {
            Dialect::Postgres => "json",
            Dialect::Sqlite => "TEXT",
        }
    }

    /// Reads column `col` of `table` out of a JSON object `json_expr`, typed as
    /// the table's column. `row_alias` is the alias of a record populated from
    /// the same JSON on PostgreSQL (see [`Dialect::json_record_join`]).
    pub fn json_field(self, json_expr: &str, row_alias: &str, col: &str) -> String {
        match self {
            Dialect::Postgres => format!("{row_alias}.{}", self.ident(col)),
            Dialect::Sqlite => format!(
                "json_extract({json_expr}, {})",
                self.lit(&format!("$.\"{col}\""))
            ),
        }
    }

    /// A FROM-clause item that turns `json_expr` into a typed record of `table`,
    /// aliased `row_alias` (PostgreSQL); nothing on SQLite, where
    /// [`Dialect::json_field`] extracts fields directly.
    pub fn json_record_join(self, json_expr: &str, table: &str, row_alias: &str) -> String {
        match self {
            Dialect::Postgres => format!(
                " CROSS JOIN LATERAL jsonb_populate_record(NULL::{}, {json_expr}) AS {row_alias}",
                self.table(table)
            ),
            Dialect::Sqlite => String::new(),
        }
    }

    /// Whether a JSON object has `key`.
    pub fn json_has(self, json_expr: &str, key: &str) -> String {
        match self {
            Dialect::Postgres => format!("({json_expr} ? {})", self.lit(key)),
            Dialect::Sqlite => format!(
                "(json_type({json_expr}, {}) IS NOT NULL)",
                self.lit(&format!("$.\"{key}\""))
            ),
        }
    }

    /// Several data-changing statements sent as one: data-modifying CTEs
    /// ahead of `last` on PostgreSQL (whose protocol takes one statement with
    /// parameters), a `;`-separated batch on SQLite.
    pub fn batch(self, first: &[String], last: String) -> String {
        match self {
            Dialect::Postgres => {
                let ctes: Vec<String> = first
                    .iter()
                    .enumerate()
                    .map(|(i, s)| format!("b{i} AS ({s})"))
                    .collect();
                format!("WITH {} {last}", ctes.join(", "))
            }
            Dialect::Sqlite => {
                let mut all = first.to_vec();
                all.push(last);
                all.join(";\n")
            }
        }
    }

    /// 256 random bits as hex, generated by the database.
    pub fn random_hex_256(self) -> &'static str {
        match self {
            Dialect::Postgres => {
                "replace(gen_random_uuid()::text || gen_random_uuid()::text || gen_random_uuid()::text, '-', '')"
            }
            Dialect::Sqlite => "lower(hex(randomblob(32)))",
        }
    }

    /// A row lock that keeps rows (alias `alias`) from being updated or
    /// deleted until commit; `None` where a write transaction already holds
    /// the whole database (SQLite).
    pub fn share_lock(self, alias: &str) -> Option<String> {
        match self {
            Dialect::Postgres => Some(format!(" FOR SHARE OF {alias}")),
            Dialect::Sqlite => None,
        }
    }

    /// Whether a delete (and an erasure's table step) runs as one statement
    /// of data-modifying CTEs (PostgreSQL) or as staged statements over
    /// temporary key tables.
    pub fn single_statement_delete(self) -> bool {
        matches!(self, Dialect::Postgres)
    }

    /// Whether a write transaction keeps every other writer out until it
    /// ends (SQLite's `BEGIN IMMEDIATE`), so that what it read stays true
    /// while it writes; on PostgreSQL other transactions commit meanwhile.
    pub fn serialized_writes(self) -> bool {
        matches!(self, Dialect::Sqlite)
    }

    /// Whether a UNIQUE clause written inside CREATE TABLE can only be removed
    /// by rebuilding the table (SQLite), rather than dropped in place.
    pub fn unique_clause_needs_rebuild(self) -> bool {
        matches!(self, Dialect::Sqlite)
    }

    /// `WHERE`-clause condition: the row (alias `a`) is active (not marked
    /// deleted, where the table has Lethe's markers).
    pub fn active(self, e: &Entity, alias: &str) -> String {
        if e.has_markers() {
            format!("{alias}.{} IS NULL", self.ident(&e.deleted_at))
        } else {
            "TRUE".to_string()
        }
    }

    /// `lhs IN (subquery)`, `lhs` one expression or several (a row value).
    /// PostgreSQL compares one expression with `= ANY(ARRAY(subquery))`:
    /// the subquery runs once, before the scan, and the planner reaches
    /// the table through an index on `lhs` (also inside an `OR`, which
    /// `IN` would turn into a filter over every row), without planning a
    /// join for it.
    pub fn any_of(self, lhs: &[String], subquery: &str) -> String {
        match (self, lhs) {
            (Dialect::Postgres, [one]) => format!("{one} = ANY(ARRAY({subquery}))"),
            (_, [one]) => format!("{one} IN ({subquery})"),
            _ => format!("({}) IN ({subquery})", lhs.join(", ")),
        }
    }

    /// `(a.c1, a.c2)` — a row value of columns.
    pub fn tuple(self, alias: &str, cols: &[String]) -> String {
        let parts: Vec<String> = cols
            .iter()
            .map(|c| format!("{alias}.{}", self.ident(c)))
            .collect();
        format!("({})", parts.join(", "))
    }

    /// `a.c1, a.c2` — a select list of columns.
    pub fn list(self, alias: &str, cols: &[String]) -> String {
        let parts: Vec<String> = cols
            .iter()
            .map(|c| format!("{alias}.{}", self.ident(c)))
            .collect();
        parts.join(", ")
    }

    /// A stored time as RFC 3339 text in UTC (`2026-01-31T12:00:00.000000Z`),
    /// the form events carry. SQLite stores Lethe's times in that form already.
    pub fn rfc3339(self, expr: &str) -> String {
        match self {
            Dialect::Postgres => {
                format!("to_char({expr} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')")
            }
            Dialect::Sqlite => format!("CAST({expr} AS TEXT)"),
        }
    }

    /// ` FOR UPDATE SKIP LOCKED` where the database has it: concurrent
    /// claimers pass over rows another one is claiming. SQLite has one writer
    /// at a time and needs nothing.
    pub fn skip_locked(self) -> &'static str {
        match self {
            Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
            Dialect::Sqlite => "",
        }
    }

    /// The strings of a JSON array (bound as text) as a one-column row source.
    pub fn json_text_elements(self, expr: &str) -> String {
        match self {
            Dialect::Postgres => format!("SELECT json_array_elements_text(CAST({expr} AS json))"),
            Dialect::Sqlite => format!("SELECT value FROM json_each({expr})"),
        }
    }

    /// The UTC date (`YYYY-MM-DD`) of a time column.
    pub fn day_of(self, expr: &str) -> String {
        match self {
            Dialect::Postgres => {
                format!("to_char(CAST({expr} AS timestamptz) AT TIME ZONE 'UTC', 'YYYY-MM-DD')")
            }
            Dialect::Sqlite => format!("substr(CAST({expr} AS TEXT), 1, 10)"),
        }
    }

    /// The integers of a JSON array (bound as text) as a one-column row source.
    pub fn json_int_elements(self, expr: &str) -> String {
        match self {
            Dialect::Postgres => {
                format!("SELECT json_array_elements_text(CAST({expr} AS json))::bigint")
            }
            Dialect::Sqlite => format!("SELECT value FROM json_each({expr})"),
        }
    }

    /// Lets Lethe's own transaction pass the delete guard (deletes of hard and
    /// archive rows, purges): until commit on PostgreSQL (SET LOCAL), until
    /// [`Dialect::disable_bypass`] on SQLite (a row only this uncommitted
    /// transaction sees).
    pub fn enable_bypass(self) -> &'static str {
        match self {
            Dialect::Postgres => "SET LOCAL lethe.bypass = 'on'",
            Dialect::Sqlite => "INSERT INTO lethe_bypass (token) VALUES ('lethe')",
        }
    }

    /// Undoes [`Dialect::enable_bypass`] before commit (SQLite; PostgreSQL's
    /// SET LOCAL ends with the transaction).
    pub fn disable_bypass(self) -> Option<&'static str> {
        match self {
            Dialect::Postgres => None,
            Dialect::Sqlite => Some("DELETE FROM lethe_bypass"),
        }
    }

    /// [`Dialect::enable_bypass`] as an expression, to ride along in a
    /// statement that runs anyway (PostgreSQL only; SQLite runs the
    /// statement form inside its batch).
    pub fn bypass_expr(self) -> &'static str {
        match self {
            Dialect::Postgres => "set_config('lethe.bypass', 'on', true)",
            Dialect::Sqlite => "NULL",
        }
    }

    /// The live column list of `table` from the catalog, as
    /// `lethe_core::archive::descriptor` writes it (`name type,...`).
    pub fn live_columns(self, table: &str) -> String {
        match self {
            Dialect::Postgres => format!(
                "(SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, NULL), ',' ORDER BY a.attnum) FROM pg_attribute a \
                 WHERE a.attrelid = to_regclass({}) AND a.attnum > 0 AND NOT a.attisdropped)",
                self.lit(&self.table(table))
            ),
            Dialect::Sqlite => {
                let (schema, name) = match table.split_once('.') {
                    Some((s, t)) => (s, t),
                    None => ("main", table),
                };
                format!(
                    "(SELECT group_concat(x.name || ' ' || x.type, ',') FROM (SELECT name, type FROM pragma_table_xinfo({}, {}) ORDER BY cid) x)",
                    self.lit(name),
                    self.lit(schema)
                )
            }
        }
    }

    /// A field of a JSON object as text (NULL when absent or null).
    pub fn json_text(self, json_expr: &str, field: &str) -> String {
        match self {
            Dialect::Postgres => format!("({json_expr} ->> {})", self.lit(field)),
            Dialect::Sqlite => format!(
                "CAST(json_extract({json_expr}, {}) AS TEXT)",
                self.lit(&format!("$.\"{field}\""))
            ),
        }
    }

    /// A condition true when text `expr` cannot become a value of
    /// `sql_type`. PostgreSQL tries the conversion (`lethe.castable`, which
    /// catches the error); SQLite converts almost anything, so only text
    /// that is not a number is refused for a numeric type.
    pub fn uncastable(self, expr: &str, sql_type: &str) -> String {
        match self {
            Dialect::Postgres => format!("NOT lethe.castable({expr}, {})", self.lit(sql_type)),
            Dialect::Sqlite => match lethe_core::ColumnKind::from_type(sql_type) {
                lethe_core::ColumnKind::Integer | lethe_core::ColumnKind::Float => format!(
                    "NOT (ltrim(trim({expr}), '+-') <> '' AND ltrim(trim({expr}), '+-') NOT GLOB '*[^0-9.eE+-]*')"
                ),
                _ => "FALSE".to_string(),
            },
        }
    }

    /// HMAC-SHA256 of text `expr`, as 64 hex digits, keyed by the pads bound
    /// as `Value(0)` (key XOR ipad) and `Value(1)` (key XOR opad), hex.
    /// PostgreSQL builds it from its built-in `sha256()` (no extension
    /// needed); SQLite calls `lethe_hmac`, which the store registers on
    /// every connection it opens.
    pub fn hmac(self, b: &mut Binder, expr: &str) -> String {
        let ipad = b.bind(Param::Value(0));
        let opad = b.bind(Param::Value(1));
        match self {
            Dialect::Postgres => format!(
                "encode(sha256(decode({opad}, 'hex') || sha256(decode({ipad}, 'hex') || convert_to({expr}, 'UTF8'))), 'hex')"
            ),
            Dialect::Sqlite => format!("lethe_hmac({ipad}, {opad}, {expr})"),
        }
    }

    /// Whether text `expr` has the shape of a [`Dialect::hmac`] result (64
    /// lowercase hex digits): the `hash` PII rule leaves such a value as it
    /// is, so erasing a subject twice does not hash its hashes.
    pub fn is_hmac_shaped(self, expr: &str) -> String {
        match self {
            Dialect::Postgres => format!("({expr} ~ '^[0-9a-f]{{64}}$')"),
            Dialect::Sqlite => {
                format!("(length({expr}) = 64 AND {expr} NOT GLOB '*[^0-9a-f]*')")
            }
        }
    }

    /// `expr` without leading and trailing characters from `chars`.
    pub fn trim_chars(self, expr: &str, chars: &str) -> String {
        match self {
            Dialect::Postgres => format!("btrim({expr}, {})", self.lit(chars)),
            Dialect::Sqlite => format!("trim({expr}, {})", self.lit(chars)),
        }
    }

    /// JSON object `expr` with fields `(name, value expression)` replaced.
    pub fn json_set_fields(self, expr: &str, pairs: &[(String, String)]) -> String {
        match self {
            Dialect::Postgres => format!("({expr} || {})", self.json_object(pairs)),
            Dialect::Sqlite => {
                let args: Vec<String> = pairs
                    .iter()
                    .map(|(k, v)| format!("{}, {v}", self.lit(&format!("$.\"{k}\""))))
                    .collect();
                format!("json_set({expr}, {})", args.join(", "))
            }
        }
    }

    /// A FROM item (alias `j`, column `v`): every string inside the JSON
    /// document `expr`, at any depth. (Numbers are left out: a number is
    /// far more often someone's key than someone's personal value.)
    pub fn json_string_atoms(self, expr: &str) -> String {
        match self {
            Dialect::Postgres => format!(
                "(SELECT q #>> '{{}}' AS v FROM jsonb_path_query(CAST({expr} AS jsonb), 'strict $.**') q WHERE jsonb_typeof(q) = 'string') j"
            ),
            Dialect::Sqlite => {
                format!("(SELECT value AS v FROM json_tree({expr}) WHERE type = 'text') j")
            }
        }
    }

    /// A temporary table that holds keys for one entity during a staged delete.
    pub fn temp_keys(self, entity: &str) -> String {
        format!("temp.{}", self.ident(&format!("lethe_k_{entity}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absorb_renumbers_placeholders_outside_quotes() {
        let mut b = Binder::new(Dialect::Postgres);
        let first = b.bind(Param::Now);
        assert_eq!(first, "$1");
        let stmt = Stmt {
            sql: "SELECT $2, '$1 stays', \"$2\", $1 FROM t WHERE x ~ '^a$'".into(),
            params: vec![Param::Key(0), Param::Now],
        };
        assert_eq!(
            b.absorb(&stmt),
            "SELECT $1, '$1 stays', \"$2\", $2 FROM t WHERE x ~ '^a$'"
        );
        assert_eq!(
            b.finish(String::new()).params,
            vec![Param::Now, Param::Key(0)]
        );
    }
}
