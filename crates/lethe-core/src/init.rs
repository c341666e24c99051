//! `lethe init`: a starting policy written from an introspected schema.

use std::fmt::Write;

use crate::schema::{Schema, TableInfo};

/// Column names taken to be an existing deletion-time marker, in preference order.
const DELETED_AT_NAMES: &[&str] = &[
    "deleted_at",
    "deleted_on",
    "deletedat",
    "removed_at",
    "discarded_at",
];
/// Column names that usually hold personal data: suggested, commented out.
const PII_HINTS: &[(&str, &str)] = &[
    ("email", "hash"),
    ("phone", "null"),
    ("name", "redact"),
    ("first_name", "redact"),
    ("last_name", "redact"),
    ("full_name", "redact"),
    ("address", "redact"),
    ("ip_address", "null"),
];

/// Renders a commented `lethe.toml` for every table in `schema` (tables whose
/// names start with `lethe_` are Lethe's own and skipped). `url` goes into
/// `[database]`.
pub fn policy_from_schema(schema: &Schema, url: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Lethe policy, written by `lethe init` from the live schema."
    );
    let _ = writeln!(
        s,
        "# Review every entity: the strategy, the unique keys and the relations."
    );
    let _ = writeln!(
        s,
        "# Reference: docs/policy.md. Validate with `lethe check`.\n"
    );
    let _ = writeln!(s, "[database]");
    let _ = writeln!(
        s,
        "url = {}   # LETHE_DATABASE_URL and --database override it",
        quote(url)
    );
    let _ = writeln!(
        s,
        "# row_security = true          # PostgreSQL: hide soft-deleted rows from application roles\n"
    );
    let _ = writeln!(s, "[defaults]");
    let _ = writeln!(s, "strategy = \"soft\"          # soft | archive | hard");
    let _ = writeln!(
        s,
        "deleted_at = \"deleted_at\"  # adopted if the column exists, added by `lethe migrate` otherwise"
    );
    let _ = writeln!(s, "deletion_id = \"deletion_id\"\n");

    let managed: Vec<&TableInfo> = schema
        .tables
        .values()
        .filter(|t| !t.name.starts_with("lethe_"))
        .collect();
    let key_of = |t: &TableInfo| -> Option<Vec<String>> {
        if !t.primary_key.is_empty() {
            return Some(t.primary_key.clone());
        }
        t.uniques
            .iter()
            .find(|u| !u.partial)
            .map(|u| u.columns.clone())
    };
    // Entity names: the table name without its schema, made unique.
    let mut entity_names: std::collections::BTreeMap<&str, String> = Default::default();
    let mut taken = std::collections::BTreeSet::new();
    // Tables of the current schema (named without a prefix) claim their plain
    // names first; others get a suffix only when a name is taken.
    let mut by_claim: Vec<&&TableInfo> = managed.iter().collect();
    by_claim.sort_by_key(|t| t.name.contains('.'));
    for t in by_claim {
        let base = t.name.rsplit('.').next().unwrap_or(&t.name);
        let mut name = base.to_string();
        let mut n = 2;
        while !taken.insert(name.clone()) {
            name = format!("{base}_{n}");
            n += 1;
        }
        entity_names.insert(t.name.as_str(), name);
    }
    for t in &managed {
        let _ = writeln!(s, "[entities.{}]", bare_key(&entity_names[t.name.as_str()]));
        if entity_names[t.name.as_str()] != t.name {
            let _ = writeln!(s, "table = {}", quote(&t.name));
        }
        match key_of(t) {
            Some(k) => {
                let _ = writeln!(s, "key = {}", list(&k));
            }
            None => {
                let _ = writeln!(
                    s,
                    "# no primary key or unique constraint found: name the key columns"
                );
                let _ = writeln!(s, "key = []");
            }
        }
        if let Some(c) = DELETED_AT_NAMES
            .iter()
            .find_map(|n| t.columns.iter().find(|c| c.name.eq_ignore_ascii_case(n)))
        {
            if c.name != "deleted_at" {
                let _ = writeln!(
                    s,
                    "deleted_at = {}   # existing column adopted",
                    quote(&c.name)
                );
            } else {
                let _ = writeln!(
                    s,
                    "# existing column \"deleted_at\" is adopted as the deletion marker"
                );
            }
        }
        let pk = key_of(t).unwrap_or_default();
        let uniques: Vec<String> = t
            .uniques
            .iter()
            .filter(|u| !u.partial && u.columns != pk)
            .map(|u| list(&u.columns))
            .collect();
        if !uniques.is_empty() {
            let _ = writeln!(
                s,
                "unique = [{}]   # unique among active rows only",
                uniques.join(", ")
            );
        }
        let pii: Vec<String> = PII_HINTS
            .iter()
            .filter(|(n, _)| t.has_column(n))
            .map(|(n, r)| format!("{} = \"{r}\"", bare_key(n)))
            .collect();
        if !pii.is_empty() {
            let _ = writeln!(
                s,
                "# pii = {{ {} }}   # review: used by erasure",
                pii.join(", ")
            );
        }
        let _ = writeln!(s);
    }
    for t in &managed {
        for fk in &t.foreign_keys {
            let Some(parent) = schema.table(&fk.ref_table) else {
                continue;
            };
            if parent.name.starts_with("lethe_") {
                continue;
            }
            let (on_delete, note) = match fk.on_delete.as_str() {
                "cascade" => ("cascade", String::new()),
                "set null" => ("set_null", String::new()),
                "set default" => ("keep", "   # was ON DELETE SET DEFAULT: review".to_string()),
                other => (
                    "restrict",
                    format!("   # ON DELETE {}", other.to_uppercase()),
                ),
            };
            let Some(parent_entity) = entity_names.get(parent.name.as_str()) else {
                continue;
            };
            let parent_key = key_of(parent).unwrap_or_default();
            // Lethe pairs the columns with the parent's key by position: list
            // them in the key's order.
            let Some(columns) = fk.columns_in_order_of(&parent_key) else {
                let _ = writeln!(
                    s,
                    "# skipped: {}.({}) references {}({}), which is not its key ({}); Lethe relations reference the parent's key\n",
                    t.name,
                    fk.columns.join(", "),
                    parent.name,
                    fk.ref_columns.join(", "),
                    parent_key.join(", ")
                );
                continue;
            };
            let _ = writeln!(s, "[[relations]]");
            let _ = writeln!(s, "child = {}", quote(&entity_names[t.name.as_str()]));
            let _ = writeln!(s, "columns = {}", list(&columns));
            let _ = writeln!(s, "parent = {}", quote(parent_entity));
            let _ = writeln!(s, "on_delete = \"{on_delete}\"{note}\n");
        }
    }
    s
}

fn quote(s: &str) -> String {
    let escaped = s.replace('\\', "\\\\").replace('"', "\\\"");
    format!("\"{escaped}\"")
}

fn bare_key(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        s.to_string()
    } else {
        quote(s)
    }
}

fn list(cols: &[String]) -> String {
    format!(
        "[{}]",
        cols.iter().map(|c| quote(c)).collect::<Vec<_>>().join(", ")
    )
}
