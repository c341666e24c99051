//! The data the workloads run on: a chain of tables where each row of a level
//! belongs to one row of the level above, the policy Lethe gets for it, and
//! the hand-written SQL it is measured against.

use crate::Result;
use crate::sql::{Dialect, Pool, Stmt};

/// One level of a chain. Ids are 1..=rows; row `g` belongs to parent
/// `(g - 1) / per_parent + 1`, so parent 1 owns the first `per_parent` rows.
pub struct Level {
    pub table: &'static str,
    pub rows: u64,
    /// The column referencing the level above and how many rows each parent
    /// has; `None` for the top level.
    pub parent: Option<(&'static str, u64)>,
}

/// Tables top-down; every level but the first references the one before it.
pub struct Chain {
    pub levels: Vec<Level>,
}

impl Chain {
    /// One root; `children` children; `per_child` grandchildren each.
    pub fn tree(children: u64, per_child: u64) -> Chain {
        Chain {
            levels: vec![
                Level {
                    table: "roots",
                    rows: 1,
                    parent: None,
                },
                Level {
                    table: "children",
                    rows: children,
                    parent: Some(("root_id", children)),
                },
                Level {
                    table: "grandchildren",
                    rows: children * per_child,
                    parent: Some(("child_id", per_child)),
                },
            ],
        }
    }

    /// `parents` rows with `per_parent` kids each.
    pub fn parents_and_kids(parents: u64, per_parent: u64) -> Chain {
        Chain {
            levels: vec![
                Level {
                    table: "parents",
                    rows: parents,
                    parent: None,
                },
                Level {
                    table: "kids",
                    rows: parents * per_parent,
                    parent: Some(("parent_id", per_parent)),
                },
            ],
        }
    }

    /// One table of `rows` rows, no relations.
    pub fn single(table: &'static str, rows: u64) -> Chain {
        Chain {
            levels: vec![Level {
                table,
                rows,
                parent: None,
            }],
        }
    }

    pub fn tables(&self) -> Vec<&'static str> {
        self.levels.iter().map(|l| l.table).collect()
    }

    pub fn total_rows(&self) -> u64 {
        self.levels.iter().map(|l| l.rows).sum()
    }

    /// Creates and fills the tables set-based. The tables have no marker
    /// columns: `lethe migrate` adds them, as it would on an existing app.
    /// Foreign-key columns get an index, as any application would give them;
    /// Lethe and the baseline both use it.
    pub async fn load(&self, pool: &Pool) -> Result<()> {
        let d = pool.dialect();
        let key = d.key_type();
        for (i, l) in self.levels.iter().enumerate() {
            let t = l.table;
            match (l.parent, i.checked_sub(1)) {
                (Some((fk, per)), Some(up)) => {
                    let up = self.levels[up].table;
                    pool.exec(&format!(
                        "CREATE TABLE {t} (id {key} PRIMARY KEY, {fk} {key} NOT NULL REFERENCES {up}(id), name TEXT)"
                    ))
                    .await?;
                    pool.exec(&format!("CREATE INDEX {t}_{fk} ON {t} ({fk})"))
                        .await?;
                    pool.exec(&format!(
                        "INSERT INTO {t} (id, {fk}, name) SELECT g, (g - 1) / {per} + 1, '{t} ' || g FROM {}",
                        d.series(l.rows)
                    ))
                    .await?;
                }
                _ => {
                    pool.exec(&format!(
                        "CREATE TABLE {t} (id {key} PRIMARY KEY, name TEXT)"
                    ))
                    .await?;
                    pool.exec(&format!(
                        "INSERT INTO {t} (id, name) SELECT g, '{t} ' || g FROM {}",
                        d.series(l.rows)
                    ))
                    .await?;
                }
            }
        }
        Ok(())
    }

    /// The policy: every table a soft entity keyed by `id`, every level
    /// cascading from the one above.
    pub fn policy_toml(&self, url: &str) -> String {
        self.policy_toml_with(url, |_| String::new(), "")
    }

    /// [`Chain::policy_toml`] with `entity(table)` appended to each
    /// `[entities.TABLE]` (delivery keys such as `cache_keys`) and `tail` at
    /// the end (`[sinks.NAME]` sections).
    pub fn policy_toml_with(
        &self,
        url: &str,
        entity: impl Fn(&str) -> String,
        tail: &str,
    ) -> String {
        let mut s = format!("[database]\nurl = \"{url}\"\n");
        for l in &self.levels {
            s.push_str(&format!("\n[entities.{}]\nkey = [\"id\"]\n", l.table));
            s.push_str(&entity(l.table));
        }
        for (i, l) in self.levels.iter().enumerate().skip(1) {
            if let Some((fk, _)) = l.parent {
                s.push_str(&format!(
                    "\n[[relations]]\nchild = \"{}\"\ncolumns = [\"{fk}\"]\nparent = \"{}\"\non_delete = \"cascade\"\n",
                    l.table,
                    self.levels[i - 1].table
                ));
            }
        }
        s.push_str(tail);
        s
    }

    /// The hand-written delete of top-level row `key` and everything under
    /// it: one UPDATE per level, each child level matched through its
    /// parent's foreign key, the way a developer writes it for a known
    /// schema. Params: time, deletion id, key.
    pub fn baseline_delete(&self, d: Dialect, now: &str, id: &str, key: u64) -> Vec<Stmt> {
        let set = format!(
            "SET deleted_at = {}, deletion_id = {}",
            d.param(1, "timestamptz"),
            d.param(2, "uuid")
        );
        self.levels
            .iter()
            .zip(self.under_key(&d.param(3, "bigint")))
            .map(|(l, cond)| Stmt {
                sql: format!(
                    "UPDATE {} {set} WHERE {cond} AND deleted_at IS NULL",
                    l.table
                ),
                params: vec![now.to_string(), id.to_string(), key.to_string()],
            })
            .collect()
    }

    /// Per level, the condition that selects its rows under top-level row
    /// `k` (a placeholder): the key itself, then each child level through
    /// its parent's foreign key.
    pub fn under_key(&self, k: &str) -> Vec<String> {
        let mut conds: Vec<String> = Vec::new();
        for (i, l) in self.levels.iter().enumerate() {
            let cond = match (i, l.parent) {
                (0, _) | (_, None) => format!("id = {k}"),
                (1, Some((fk, _))) => format!("{fk} = {k}"),
                (_, Some((fk, _))) => format!(
                    "{fk} IN (SELECT id FROM {} WHERE {})",
                    self.levels[i - 1].table,
                    conds[i - 1]
                ),
            };
            conds.push(cond);
        }
        conds
    }

    /// The columns of `level`'s table, as [`Chain::load`] creates them.
    pub fn columns(&self, level: usize) -> Vec<&'static str> {
        match self.levels[level].parent {
            Some((fk, _)) if level > 0 => vec!["id", fk, "name"],
            _ => vec!["id", "name"],
        }
    }

    /// The hand-written restore: unmark exactly the rows of deletion `id`.
    pub fn baseline_restore(&self, d: Dialect, id: &str) -> Vec<Stmt> {
        self.levels
            .iter()
            .map(|l| Stmt {
                sql: format!(
                    "UPDATE {} SET deleted_at = NULL, deletion_id = NULL WHERE deletion_id = {}",
                    l.table,
                    d.param(1, "uuid")
                ),
                params: vec![id.to_string()],
            })
            .collect()
    }

    /// Makes every row active again, outside Lethe (between measured passes).
    pub async fn reset(&self, pool: &Pool) -> Result<()> {
        for l in &self.levels {
            pool.exec(&format!(
                "UPDATE {} SET deleted_at = NULL, deletion_id = NULL WHERE deleted_at IS NOT NULL",
                l.table
            ))
            .await?;
        }
        Ok(())
    }
}

/// The time as Lethe writes it (microseconds, UTC), so both sides store the
/// same text on SQLite.
pub fn now_text() -> String {
    time_text(time::OffsetDateTime::now_utc())
}

/// `t` as Lethe writes times.
pub fn time_text(t: time::OffsetDateTime) -> String {
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    );
    t.to_offset(time::UtcOffset::UTC)
        .format(&fmt)
        .expect("a UTC time formats")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn baseline_matches_the_hand_written_cascade() {
        let sql: Vec<String> = Chain::tree(2, 3)
            .baseline_delete(Dialect::Sqlite, "t", "i", 1)
            .into_iter()
            .map(|s| s.sql)
            .collect();
        assert_eq!(
            sql,
            [
                "UPDATE roots SET deleted_at = ?1, deletion_id = ?2 WHERE id = ?3 AND deleted_at IS NULL",
                "UPDATE children SET deleted_at = ?1, deletion_id = ?2 WHERE root_id = ?3 AND deleted_at IS NULL",
                "UPDATE grandchildren SET deleted_at = ?1, deletion_id = ?2 WHERE child_id IN (SELECT id FROM children WHERE root_id = ?3) AND deleted_at IS NULL",
            ]
        );
    }

    #[test]
    fn policy_parses() {
        let p = lethe_core::parse_policy(&Chain::tree(2, 3).policy_toml("sqlite:x.db"), "bench")
            .unwrap();
        assert_eq!(p.entities.len(), 3);
        assert_eq!(p.relations.len(), 2);
    }
}
