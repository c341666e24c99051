//! API tokens for `lethe serve`: `lethe token create | list | revoke`. A
//! token's secret is shown once and stored only as its SHA-256; the token's
//! name is the actor the audit log records for what it does. Creating and
//! revoking a token is audited.

use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::audit;
use crate::db::col;
use crate::engine::{Engine, now_text};
use crate::error::{Result, StoreError};
use lethe_sql::tokens;

/// What a token may do. Each role can do what the roles before it can.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Role {
    /// Read everything: deletions, trash, audit, deliveries, stats.
    Viewer,
    /// Also delete, restore and replay deliveries.
    Operator,
    /// Also purge, erase, confirm erasure steps and manage legal holds.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Role> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            "admin" => Ok(Role::Admin),
            _ => Err(StoreError::Invalid(format!(
                "\"{s}\" is not a role (expected viewer, operator or admin)"
            ))),
        }
    }
}

/// A token as listed (never its secret).
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenInfo {
    pub name: String,
    pub role: Role,
    pub created_at: String,
    pub created_by: Option<String>,
    pub revoked_at: Option<String>,
}

/// The token an API request authenticated with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub name: String,
    pub role: Role,
}

/// Secrets start with this, so a leaked one is easy to recognise (secret
/// scanners, logs).
pub const SECRET_PREFIX: &str = "lethe_";

/// The stored form of a secret.
pub fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'));
    if ok {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "\"{name}\" is not a token name (1 to 64 letters, digits, '-', '_', '.' or '@'; it becomes the actor in the audit log, so name the application or person)"
        )))
    }
}

impl Engine {
    /// Creates a token and returns its secret: the only time it is shown.
    pub async fn token_create(
        &self,
        name: &str,
        role: Role,
        actor: Option<&str>,
    ) -> Result<String> {
        self.require_internal()?;
        check_name(name)?;
        let d = self.dialect();
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)
            .map_err(|e| StoreError::Invalid(format!("no randomness for a token: {e}")))?;
        let secret = format!("{SECRET_PREFIX}{}", hex::encode(bytes));
        let (_, now) = now_text();
        let mut tx = self.db.begin_write().await?;
        if !tx
            .rows(&tokens::exists(d), &[Some(name.to_string())])
            .await?
            .is_empty()
        {
            tx.rollback().await?;
            return Err(StoreError::Invalid(format!(
                "a token named \"{name}\" exists already (names stay taken after a revoke, so the audit log's actor always means one token)"
            )));
        }
        tx.exec(
            &tokens::insert(d),
            &[
                Some(name.to_string()),
                Some(role.as_str().to_string()),
                Some(secret_hash(&secret)),
                Some(now.clone()),
                actor.map(str::to_string),
            ],
        )
        .await?;
        audit::append_alone(
            &mut tx,
            d,
            &now,
            "token_create",
            json!({"token": name, "role": role.as_str(), "actor": actor}),
        )
        .await?;
        tx.commit().await?;
        Ok(secret)
    }

    /// Every token, revoked ones too.
    pub async fn tokens(&self) -> Result<Vec<TokenInfo>> {
        self.require_internal()?;
        let rows = self.db.rows(&tokens::list(self.dialect()), &[]).await?;
        Ok(rows
            .iter()
            .map(|r| TokenInfo {
                name: col(r, 0),
                role: col(r, 1).parse().unwrap_or(Role::Viewer),
                created_at: col(r, 2),
                created_by: Some(col(r, 3)).filter(|s| !s.is_empty()),
                revoked_at: Some(col(r, 4)).filter(|s| !s.is_empty()),
            })
            .collect())
    }

    /// Revokes the active token `name`.
    pub async fn token_revoke(&self, name: &str, actor: Option<&str>) -> Result<()> {
        self.require_internal()?;
        let d = self.dialect();
        let (_, now) = now_text();
        let mut tx = self.db.begin_write().await?;
        let n = tx
            .exec(
                &tokens::revoke(d),
                &[Some(name.to_string()), Some(now.clone())],
            )
            .await?;
        if n == 0 {
            tx.rollback().await?;
            return Err(StoreError::NotFound {
                entity: "active token".into(),
                key: name.to_string(),
            });
        }
        audit::append_alone(
            &mut tx,
            d,
            &now,
            "token_revoke",
            json!({"token": name, "actor": actor}),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The active token whose secret this is, if any.
    pub async fn authenticate(&self, secret: &str) -> Result<Option<Caller>> {
        if !secret.starts_with(SECRET_PREFIX) {
            return Ok(None);
        }
        let rows = self
            .db
            .rows(
                &tokens::by_hash(self.dialect()),
                &[Some(secret_hash(secret))],
            )
            .await?;
        Ok(rows.first().map(|r| Caller {
            name: col(r, 0),
            role: col(r, 1).parse().unwrap_or(Role::Viewer),
        }))
    }
}
