//! Legal holds: `lethe hold add | list | remove`. A hold keeps the held row
//! and every row deleted together with it (its deletion) from retention's
//! purge; rows still referencing them keep their parents too. Adding and
//! releasing a hold is audited.

use serde::Serialize;
use serde_json::{Value, json};

use crate::audit;
use crate::db::col;
use crate::engine::{Engine, now_text};
use crate::error::{Result, StoreError};

/// One legal hold.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Hold {
    pub id: i64,
    pub entity: String,
    pub key: Value,
    pub reason: String,
    pub actor: Option<String>,
    pub created_at: String,
    pub released_at: Option<String>,
    pub released_by: Option<String>,
    pub release_reason: Option<String>,
}

impl Hold {
    fn from_row(r: &[Option<String>]) -> Hold {
        Hold {
            id: col(r, 0).parse().unwrap_or(0),
            entity: col(r, 1),
            key: serde_json::from_str(&col(r, 2)).unwrap_or(Value::Null),
            reason: col(r, 3),
            actor: r.get(4).cloned().flatten(),
            created_at: col(r, 5),
            released_at: r.get(6).cloned().flatten(),
            released_by: r.get(7).cloned().flatten(),
            release_reason: r.get(8).cloned().flatten(),
        }
    }
}

/// Which hold `lethe hold remove` releases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HoldRef {
    Id(i64),
    /// Every active hold on this row.
    Row {
        entity: String,
        key: String,
    },
}

impl Engine {
    /// Puts a legal hold on `entity`'s row `key` (active, deleted or
    /// archived): purge will not remove it or anything deleted with it
    /// until the hold is released.
    pub async fn hold(
        &self,
        entity: &str,
        key: &str,
        reason: &str,
        actor: Option<&str>,
    ) -> Result<Hold> {
        self.require_internal()?;
        if reason.trim().is_empty() {
            return Err(StoreError::Invalid(
                "a legal hold needs a reason (--reason)".into(),
            ));
        }
        let kv = self.key(entity, key)?;
        let e = &self.policy.entities[entity];
        let d = self.dialect();
        let stmt = lethe_sql::holds::add(d, &self.schema, e);
        let (_, now) = now_text();
        let b = crate::db::Bindings {
            now: now.clone(),
            key: kv.values.clone(),
            values: vec![reason.to_string(), actor.unwrap_or_default().to_string()],
            ..Default::default()
        };
        let mut tx = self.db.begin_write().await?;
        if let Some(lock) = lethe_sql::purge::lock_holds(d) {
            tx.rows(&lock, &[]).await?;
        }
        let rows = tx.rows_stmt(&stmt, &b).await?;
        let Some(r) = rows.first() else {
            tx.rollback().await?;
            return Err(StoreError::NotFound {
                entity: entity.to_string(),
                key: key.to_string(),
            });
        };
        let hold = Hold::from_row(r);
        audit::append_alone(
            &mut tx,
            d,
            &now,
            "hold",
            json!({
                "hold": hold.id,
                "entity": entity,
                "key": self.key_json(entity, &kv, true),
                "reason": reason,
                "actor": actor,
            }),
        )
        .await?;
        tx.commit().await?;
        Ok(hold)
    }

    /// Active holds (and released ones with `all`), oldest first.
    pub async fn holds(&self, all: bool) -> Result<Vec<Hold>> {
        self.require_internal()?;
        let rows = self
            .db
            .rows(
                &lethe_sql::holds::list(self.dialect()),
                &[Some(if all { "1" } else { "0" }.to_string())],
            )
            .await?;
        Ok(rows.iter().map(|r| Hold::from_row(r)).collect())
    }

    /// Releases a hold (by id, or every active hold on a row). Returns the
    /// holds released; an unknown or already released one is an error.
    pub async fn release_hold(
        &self,
        which: &HoldRef,
        reason: Option<&str>,
        actor: Option<&str>,
    ) -> Result<Vec<Hold>> {
        self.require_internal()?;
        let d = self.dialect();
        let (_, now) = now_text();
        let mut tx = self.db.begin_write().await?;
        if let Some(lock) = lethe_sql::purge::lock_holds(d) {
            tx.rows(&lock, &[]).await?;
        }
        let ids: Vec<i64> = match which {
            HoldRef::Id(id) => vec![*id],
            HoldRef::Row { entity, key } => {
                let kv = self.key(entity, key)?;
                let stmt = lethe_sql::holds::find(d, &self.schema, &self.policy.entities[entity]);
                let b = crate::db::Bindings {
                    key: kv.values,
                    ..Default::default()
                };
                tx.rows_stmt(&stmt, &b)
                    .await?
                    .iter()
                    .map(|r| col(r, 0).parse().unwrap_or(0))
                    .collect()
            }
        };
        let mut released = Vec::new();
        for id in &ids {
            let rows = tx
                .rows(
                    &lethe_sql::holds::release(d),
                    &[
                        Some(id.to_string()),
                        Some(now.clone()),
                        actor.map(str::to_string),
                        reason.map(str::to_string),
                    ],
                )
                .await?;
            if let Some(r) = rows.first() {
                released.push(Hold::from_row(r));
            }
        }
        if released.is_empty() {
            tx.rollback().await?;
            return Err(StoreError::HoldNotFound(match which {
                HoldRef::Id(id) => format!("no active hold {id}"),
                HoldRef::Row { entity, key } => format!("{entity} {key} has no active hold"),
            }));
        }
        audit::append_alone(
            &mut tx,
            d,
            &now,
            "release_hold",
            json!({
                "holds": released.iter().map(|h| h.id).collect::<Vec<_>>(),
                "reason": reason,
                "actor": actor,
            }),
        )
        .await?;
        tx.commit().await?;
        Ok(released)
    }
}
