//! What introspection found in a live database, as plain data. Filled by
//! `lethe-store`; read by `check`, `init`, the migration planner and the SQL
//! renderers (which need column lists and types).

use std::collections::{BTreeMap, BTreeSet};

/// The managed database as seen at connect time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Schema {
    pub tables: BTreeMap<String, TableInfo>,
    /// Names of views (for `<table>_active`).
    pub views: BTreeSet<String>,
    /// The schema whose tables are named without a prefix (PostgreSQL's
    /// `current_schema()`, SQLite's `main`).
    pub current_schema: Option<String>,
}

impl Schema {
    /// Whether a view exists, named like [`Schema::table`] names tables.
    pub fn has_view(&self, name: &str) -> bool {
        self.views.contains(name)
            || name.split_once('.').is_some_and(|(s, v)| {
                Some(s) == self.current_schema.as_deref() && self.views.contains(v)
            })
    }

    /// The type of `table.column` as the database spells it; empty when
    /// either is unknown (the SQL then binds the value without a cast).
    pub fn column_type(&self, table: &str, column: &str) -> &str {
        self.table(table)
            .and_then(|t| t.column(column))
            .map(|c| c.data_type.as_str())
            .unwrap_or("")
    }

    /// A table by the name the policy uses; `public.users` finds `users` when
    /// `public` is the current schema.
    pub fn table(&self, name: &str) -> Option<&TableInfo> {
        self.tables.get(name).or_else(|| {
            let (schema, table) = name.split_once('.')?;
            (Some(schema) == self.current_schema.as_deref())
                .then(|| self.tables.get(table))
                .flatten()
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableInfo {
    pub name: String,
    pub columns: Vec<ColumnInfo>,
    pub primary_key: Vec<String>,
    pub uniques: Vec<UniqueInfo>,
    pub foreign_keys: Vec<ForeignKeyInfo>,
    /// All index names on the table (Lethe's own included).
    pub indexes: BTreeSet<String>,
    /// The leading columns of every index (and key) on the table, to tell
    /// whether a cascade can find children without scanning.
    pub index_columns: Vec<Vec<String>>,
    /// All trigger names on the table.
    pub triggers: BTreeSet<String>,
    /// PostgreSQL: row-level security is enabled.
    pub row_security: bool,
    /// PostgreSQL: names of row-level security policies.
    pub policies: BTreeSet<String>,
    /// SQLite: the table's CREATE TABLE statement, for rebuilds.
    pub create_sql: Option<String>,
    /// SQLite: CREATE INDEX / CREATE TRIGGER statements of the table, replayed
    /// after a rebuild.
    pub dependent_sql: Vec<String>,
}

impl TableInfo {
    pub fn column(&self, name: &str) -> Option<&ColumnInfo> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// Whether some index starts with `cols` (in any order).
    pub fn has_index_on(&self, cols: &[String]) -> bool {
        let want: BTreeSet<&String> = cols.iter().collect();
        let starts = |idx: &Vec<String>| {
            idx.len() >= cols.len() && idx[..cols.len()].iter().collect::<BTreeSet<_>>() == want
        };
        starts(&self.primary_key)
            || self.uniques.iter().any(|u| starts(&u.columns))
            || self.index_columns.iter().any(starts)
    }

    pub fn has_column(&self, name: &str) -> bool {
        self.column(name).is_some()
    }

    /// Whether `cols` (in any order) is the primary key or a full (non-partial)
    /// unique constraint/index: a valid entity key.
    pub fn is_unique_key(&self, cols: &[String]) -> bool {
        let want: BTreeSet<&String> = cols.iter().collect();
        let pk: BTreeSet<&String> = self.primary_key.iter().collect();
        (!pk.is_empty() && pk == want)
            || self
                .uniques
                .iter()
                .any(|u| !u.partial && u.columns.iter().collect::<BTreeSet<_>>() == want)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnInfo {
    pub name: String,
    /// The type as the database spells it (`bigint`, `text`, `INTEGER`, ...),
    /// without length or precision: keys are cast to it, and a cast to
    /// `varchar(3)` or `numeric(5,1)` would truncate or round the value.
    pub data_type: String,
    pub not_null: bool,
    pub has_default: bool,
    /// Generated (computed) columns cannot be inserted by restore.
    pub generated: bool,
}

impl ColumnInfo {
    pub fn kind(&self) -> ColumnKind {
        ColumnKind::from_type(&self.data_type)
    }
}

/// A coarse classification of column types, enough to validate key input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    Integer,
    Float,
    Bool,
    Uuid,
    Text,
    Other,
}

impl ColumnKind {
    pub fn from_type(t: &str) -> ColumnKind {
        let t = t.to_ascii_lowercase();
        // SQLite's own rule (a declared type containing "INT" has integer
        // affinity), minus PostgreSQL types that merely contain the letters.
        let not_integer = t.starts_with("interval") || t.contains("point");
        if (t.contains("int") && !not_integer) || t.contains("serial") {
            ColumnKind::Integer
        } else if t.starts_with("numeric")
            || t.starts_with("decimal")
            || t.contains("real")
            || t.contains("double")
            || t.contains("float")
        {
            ColumnKind::Float
        } else if t.starts_with("bool") {
            ColumnKind::Bool
        } else if t == "uuid" {
            ColumnKind::Uuid
        } else if t.contains("char") || t.contains("text") || t.contains("clob") || t.is_empty() {
            ColumnKind::Text
        } else {
            ColumnKind::Other
        }
    }

    /// Checks that `value` can be a value of this kind; the message says why not.
    pub fn validate(self, value: &str) -> Result<(), String> {
        let ok = match self {
            ColumnKind::Integer => value.trim().parse::<i64>().is_ok(),
            ColumnKind::Float => value.trim().parse::<f64>().is_ok(),
            ColumnKind::Bool => matches!(
                value.to_ascii_lowercase().as_str(),
                "true" | "false" | "t" | "f" | "1" | "0"
            ),
            ColumnKind::Uuid => is_uuid(value),
            ColumnKind::Text | ColumnKind::Other => true,
        };
        if ok {
            Ok(())
        } else {
            let what = match self {
                ColumnKind::Integer => "an integer",
                ColumnKind::Float => "a number",
                ColumnKind::Bool => "a boolean",
                ColumnKind::Uuid => "a UUID",
                _ => "valid",
            };
            Err(format!("\"{value}\" is not {what}"))
        }
    }
}

fn is_uuid(s: &str) -> bool {
    let hex: String = s.chars().filter(|c| *c != '-').collect();
    hex.len() == 32 && hex.chars().all(|c| c.is_ascii_hexdigit())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UniqueInfo {
    pub name: String,
    pub columns: Vec<String>,
    /// A partial index (`WHERE ...`): not a plain unique constraint.
    pub partial: bool,
    /// A table constraint (PostgreSQL `ALTER TABLE ... DROP CONSTRAINT`) rather than
    /// a bare index.
    pub is_constraint: bool,
    /// SQLite: an automatic index from a UNIQUE clause inside CREATE TABLE, which
    /// only a table rebuild can remove.
    pub inline: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignKeyInfo {
    pub name: String,
    pub columns: Vec<String>,
    pub ref_table: String,
    pub ref_columns: Vec<String>,
    /// `cascade`, `restrict`, `no action`, `set null`, `set default`.
    pub on_delete: String,
}

impl ForeignKeyInfo {
    /// The child columns paired with `key`'s columns, in `key`'s order; `None`
    /// when the foreign key does not reference exactly those columns.
    pub fn columns_in_order_of(&self, key: &[String]) -> Option<Vec<String>> {
        if key.len() != self.columns.len() {
            return None;
        }
        key.iter()
            .map(|k| {
                self.ref_columns
                    .iter()
                    .position(|rc| rc == k)
                    .map(|i| self.columns[i].clone())
            })
            .collect()
    }
}
