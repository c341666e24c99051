//! What the linter knows of the policy: which table names are managed
//! entities, which of them are soft, and their marker and unique columns.

use std::collections::HashMap;

use lethe_core::Policy;

/// One managed table as the linter sees it. Names are lower-cased: SQL folds
/// unquoted identifiers, and a query may spell a table either way.
#[derive(Debug, Clone)]
pub struct Target {
    pub entity: String,
    /// The table as the policy names it (`products`, `shop.products`).
    pub table: String,
    /// The schema when the policy qualifies the table.
    pub schema: Option<String>,
    pub soft: bool,
    pub deleted_at: String,
    pub deletion_id: String,
    /// Column sets unique among active rows only.
    pub unique: Vec<Vec<String>>,
    /// The view `lethe migrate` installs, reading active rows only.
    pub active_view: String,
}

impl Target {
    pub fn is_marker(&self, column: &str) -> bool {
        column == self.deleted_at || column == self.deletion_id
    }
}

/// The managed tables, found by their unqualified name.
#[derive(Debug, Clone, Default)]
pub struct Targets {
    by_name: HashMap<String, Vec<Target>>,
}

impl Targets {
    pub fn from_policy(policy: &Policy) -> Targets {
        let mut by_name: HashMap<String, Vec<Target>> = HashMap::new();
        for e in policy.entities.values() {
            let table = e.table.to_lowercase();
            let (schema, base) = match table.rsplit_once('.') {
                Some((s, b)) => (Some(s.to_string()), b.to_string()),
                None => (None, table.clone()),
            };
            let t = Target {
                entity: e.name.clone(),
                table: e.table.clone(),
                schema,
                soft: e.is_soft(),
                deleted_at: e.deleted_at.to_lowercase(),
                deletion_id: e.deletion_id.to_lowercase(),
                unique: e
                    .unique
                    .iter()
                    .map(|u| u.iter().map(|c| c.to_lowercase()).collect())
                    .collect(),
                active_view: format!("{base}_active"),
            };
            by_name.entry(base).or_default().push(t);
        }
        Targets { by_name }
    }

    /// The entity a table reference names: `parts` is the reference's
    /// identifiers, lower-cased, schema first. An unqualified reference
    /// matches a table of any schema (the search path decides at run time);
    /// a qualified one must name the policy's schema, or `public`/`main`
    /// when the policy does not qualify the table.
    pub fn resolve(&self, parts: &[String]) -> Option<&Target> {
        let (base, qualifier) = match parts {
            [] => return None,
            [.., schema, base] => (base, Some(schema.as_str())),
            [base] => (base, None),
        };
        self.by_name.get(base)?.iter().find(|t| match qualifier {
            None => true,
            Some(q) => match &t.schema {
                Some(s) => s == q,
                None => q == "public" || q == "main",
            },
        })
    }
}
