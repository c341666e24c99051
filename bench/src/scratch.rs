//! Throwaway databases: every workload runs on a fresh one, so no run sees
//! another's rows, indexes or dead tuples.

use std::path::{Path, PathBuf};

use sqlx::{AssertSqlSafe, Connection, PgConnection};

use crate::Result;
use crate::sql::Dialect;

pub enum Scratch {
    /// A SQLite file (created on first connect) and its WAL companions.
    Sqlite { url: String, file: PathBuf },
    /// A PostgreSQL database created through the server at `admin_url`.
    Postgres {
        url: String,
        admin_url: String,
        name: String,
    },
}

impl Scratch {
    pub async fn create(
        dialect: Dialect,
        dir: &Path,
        workload: &str,
        admin_url: &str,
    ) -> Result<Scratch> {
        match dialect {
            Dialect::Sqlite => {
                let file = dir.join(format!("{workload}.db"));
                let scratch = Scratch::Sqlite {
                    url: format!("sqlite:{}", file.display()),
                    file,
                };
                scratch.remove_files();
                Ok(scratch)
            }
            Dialect::Postgres => {
                let name = format!("lethe_bench_{}", std::process::id());
                let mut admin = PgConnection::connect(admin_url).await?;
                // Left over when an earlier run with this pid was killed.
                drop_database(&mut admin, &name).await?;
                sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut admin)
                    .await?;
                admin.close().await?;
                Ok(Scratch::Postgres {
                    url: with_database(admin_url, &name)?,
                    admin_url: admin_url.to_string(),
                    name,
                })
            }
        }
    }

    pub fn url(&self) -> &str {
        match self {
            Scratch::Sqlite { url, .. } | Scratch::Postgres { url, .. } => url,
        }
    }

    /// Removes the database. Callers close their pools first; on PostgreSQL
    /// `WITH (FORCE)` ends any session left behind anyway.
    pub async fn remove(self) -> Result<()> {
        match &self {
            Scratch::Sqlite { .. } => self.remove_files(),
            Scratch::Postgres {
                admin_url, name, ..
            } => {
                let mut admin = PgConnection::connect(admin_url).await?;
                drop_database(&mut admin, name).await?;
                admin.close().await?;
            }
        }
        Ok(())
    }

    fn remove_files(&self) {
        if let Scratch::Sqlite { file, .. } = self {
            for suffix in ["", "-wal", "-shm"] {
                let mut p = file.clone().into_os_string();
                p.push(suffix);
                // Missing files are the normal case.
                let _ = std::fs::remove_file(p);
            }
        }
    }
}

async fn drop_database(admin: &mut PgConnection, name: &str) -> Result<()> {
    sqlx::raw_sql(AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(admin)
    .await?;
    Ok(())
}

/// `url` with its database name replaced by `name`, query string kept.
fn with_database(url: &str, name: &str) -> Result<String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("not a PostgreSQL URL: {url}"))?;
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    let authority = path.split('/').next().unwrap_or(path);
    Ok(match query {
        Some(q) => format!("{scheme}://{authority}/{name}?{q}"),
        None => format!("{scheme}://{authority}/{name}"),
    })
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn replaces_the_database_name() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1/postgres", "x").unwrap(),
            "postgres://postgres@127.0.0.1/x"
        );
        assert_eq!(
            with_database("postgresql://u:p@h:5433?sslmode=disable", "x").unwrap(),
            "postgresql://u:p@h:5433/x?sslmode=disable"
        );
    }
}
