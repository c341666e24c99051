//! Rows that left their table (hard-delete snapshots, archived rows) carry a
//! fingerprint of the table's columns at that time. Restoring them later
//! compares that shape with the table's current one: [`drift`].

use sha2::{Digest, Sha256};

use crate::schema::{ColumnInfo, TableInfo};

/// The column list of a table at one moment: names and types in table
/// order, and an id derived from them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    /// 32 hex digits of SHA-256 over the table name and the descriptor.
    pub id: String,
    /// `(name, type)` in table order.
    pub columns: Vec<(String, String)>,
}

impl Fingerprint {
    pub fn of(table: &TableInfo) -> Fingerprint {
        let columns: Vec<(String, String)> = table
            .columns
            .iter()
            .map(|c| (c.name.clone(), c.data_type.clone()))
            .collect();
        let mut h = Sha256::new();
        h.update(table.name.as_bytes());
        h.update(b"\n");
        h.update(descriptor(&columns).as_bytes());
        let id: String = h.finalize()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Fingerprint { id, columns }
    }

    /// The columns as JSON: `[["id","bigint"],["name","text"]]`.
    pub fn columns_json(&self) -> String {
        let items: Vec<String> = self
            .columns
            .iter()
            .map(|(n, t)| format!("[{},{}]", json_string(n), json_string(t)))
            .collect();
        format!("[{}]", items.join(","))
    }
}

/// `name type,name type`: what the database's catalog is compared with to
/// tell that a table changed since Lethe read it (see
/// `lethe_sql::Dialect::live_columns`).
pub fn descriptor(columns: &[(String, String)]) -> String {
    columns
        .iter()
        .map(|(n, t)| format!("{n} {t}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// How a table changed between a fingerprint and now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Drift {
    /// Columns the table has now that the rows were stored without.
    pub added: Vec<ColumnInfo>,
    /// Columns the rows hold that the table no longer has: `(name, type)`.
    pub dropped: Vec<(String, String)>,
    /// Columns whose type changed: `(name, archived type, current type)`.
    pub retyped: Vec<(String, String, String)>,
}

impl Drift {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.dropped.is_empty() && self.retyped.is_empty()
    }
}

/// Compares the columns rows were stored with (`archived`) with `current`.
/// Generated columns are never restored, so they never drift.
pub fn drift(archived: &[(String, String)], current: &TableInfo) -> Drift {
    let mut d = Drift::default();
    for c in current.columns.iter().filter(|c| !c.generated) {
        match archived.iter().find(|(n, _)| *n == c.name) {
            None => d.added.push(c.clone()),
            Some((_, t)) if !t.eq_ignore_ascii_case(&c.data_type) => {
                d.retyped
                    .push((c.name.clone(), t.clone(), c.data_type.clone()))
            }
            Some(_) => {}
        }
    }
    for (n, t) in archived {
        if current.column(n).is_none() {
            d.dropped.push((n.clone(), t.clone()));
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, ty: &str, not_null: bool, has_default: bool) -> ColumnInfo {
        ColumnInfo {
            name: name.into(),
            data_type: ty.into(),
            not_null,
            has_default,
            generated: false,
        }
    }

    fn table(cols: Vec<ColumnInfo>) -> TableInfo {
        TableInfo {
            name: "orders".into(),
            columns: cols,
            ..Default::default()
        }
    }

    #[test]
    fn fingerprints_follow_names_types_and_the_table() {
        let a = table(vec![
            col("id", "bigint", true, false),
            col("note", "text", false, false),
        ]);
        let mut b = a.clone();
        assert_eq!(Fingerprint::of(&a), Fingerprint::of(&b));
        b.columns[1].data_type = "varchar".into();
        assert_ne!(Fingerprint::of(&a).id, Fingerprint::of(&b).id);
        let mut c = a.clone();
        c.name = "invoices".into();
        assert_ne!(Fingerprint::of(&a).id, Fingerprint::of(&c).id);
        // NOT NULL and defaults are not the rows' shape.
        let mut d = a.clone();
        d.columns[1].not_null = true;
        assert_eq!(Fingerprint::of(&a).id, Fingerprint::of(&d).id);
        assert_eq!(Fingerprint::of(&a).id.len(), 32);
    }

    #[test]
    fn columns_json_escapes_names_and_types() {
        let f = Fingerprint::of(&table(vec![
            col("id", "bigint", true, false),
            col("q\"x", "\"char\"", false, false),
        ]));
        assert_eq!(f.columns_json(), r#"[["id","bigint"],["q\"x","\"char\""]]"#);
    }

    #[test]
    fn drift_names_added_dropped_and_retyped_columns() {
        let archived = vec![
            ("id".to_string(), "bigint".to_string()),
            ("coupon".to_string(), "text".to_string()),
            ("total".to_string(), "text".to_string()),
        ];
        let now = table(vec![
            col("id", "bigint", true, false),
            col("total", "integer", true, false),
            col("channel", "text", true, true),
        ]);
        let d = drift(&archived, &now);
        assert_eq!(
            d.added.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
            ["channel"]
        );
        assert_eq!(d.dropped, [("coupon".to_string(), "text".to_string())]);
        assert_eq!(
            d.retyped,
            [(
                "total".to_string(),
                "text".to_string(),
                "integer".to_string()
            )]
        );
        assert!(
            drift(
                &archived[..1],
                &table(vec![col("id", "BIGINT", true, false)])
            )
            .is_empty()
        );
    }
}
