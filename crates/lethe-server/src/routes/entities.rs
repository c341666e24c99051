//! The managed entities: what the policy says of each, a row's tombstone,
//! the trash a page at a time, and rows per entity.

use axum::Json;
use axum::extract::State;
use lethe_store::{EntityStats, Role, Tombstone, TrashPage, TrashQuery};
use serde::{Deserialize, Serialize};

use crate::auth::Ctx;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Path, Query};
use crate::state::AppState;

#[derive(Serialize, utoipa::ToSchema)]
pub struct EntityInfo {
    pub name: String,
    pub table: String,
    /// The key's columns.
    pub key: Vec<String>,
    /// `soft`, `archive` or `hard`.
    pub strategy: String,
    /// How long deleted rows stay restorable (`90d`), if the policy says.
    pub retention: Option<String>,
    /// Relations to parents: `child.columns -> parent (on_delete)`.
    pub parents: Vec<String>,
}

/// The entities the policy manages.
#[utoipa::path(get, path = "/v1/entities", tag = "entities", security(("token" = [])),
    responses(
        (status = 200, description = "Every managed entity", body = [EntityInfo]),
        (status = 401, description = "No valid token", body = ErrorBody),
    ))]
pub async fn entities(ctx: Ctx, State(state): State<AppState>) -> Json<Vec<EntityInfo>> {
    let _ = ctx;
    let policy = state.engine.policy();
    Json(
        policy
            .entities
            .values()
            .map(|e| EntityInfo {
                name: e.name.clone(),
                table: e.table.clone(),
                key: e.key.clone(),
                strategy: e.strategy.as_str().into(),
                retention: e.retention.as_ref().map(|r| r.text.clone()),
                parents: policy
                    .relations
                    .iter()
                    .filter(|r| r.child == e.name)
                    .map(|r| {
                        format!(
                            "{}.{} -> {} ({})",
                            r.child,
                            r.columns.join(","),
                            r.parent,
                            r.on_delete.as_str()
                        )
                    })
                    .collect(),
            })
            .collect(),
    )
}

/// Where one row is now: `active`, `deleted` (by which deletion, when,
/// restorable until when), `purged` (gone for good) or `unknown`. An
/// application answers 410 Gone for `deleted` and `purged`, 404 for
/// `unknown`. The key is `42`, or `col=value,col=value` for a composite key.
#[utoipa::path(get, path = "/v1/entities/{entity}/{key}", tag = "entities", security(("token" = [])),
    params(
        ("entity" = String, Path, description = "Entity name from the policy"),
        ("key" = String, Path, description = "`42`, or `col=value,col=value`"),
    ),
    responses(
        (status = 200, description = "The row's status", body = Tombstone),
        (status = 400, description = "Unknown entity or malformed key", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
    ))]
pub async fn tombstone(
    ctx: Ctx,
    State(state): State<AppState>,
    Path((entity, key)): Path<(String, String)>,
) -> Result<Json<Tombstone>, ApiError> {
    ctx.require(Role::Viewer)?;
    Ok(Json(state.engine.tombstone(&entity, &key).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TrashParams {
    /// Only rows of this deletion.
    pub deletion_id: Option<String>,
    /// Only rows whose values contain this text (case-insensitive).
    pub q: Option<String>,
    /// The `next` of the previous page.
    pub cursor: Option<String>,
    /// Rows per page, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

/// An entity's deleted rows, newest deletion first: rows marked in their
/// table and rows in the archive store (hard-delete snapshots, archived
/// rows), of deletions not restored. Keyset pages: pass `next` as `cursor`.
#[utoipa::path(get, path = "/v1/trash/{entity}", tag = "entities", security(("token" = [])),
    params(("entity" = String, Path, description = "Entity name from the policy"), TrashParams),
    responses(
        (status = 200, description = "One page of the trash", body = TrashPage),
        (status = 400, description = "Unknown entity, bad deletion id, cursor or limit", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
    ))]
pub async fn trash(
    ctx: Ctx,
    State(state): State<AppState>,
    Path(entity): Path<String>,
    Query(p): Query<TrashParams>,
) -> Result<Json<TrashPage>, ApiError> {
    ctx.require(Role::Viewer)?;
    let q = TrashQuery {
        deletion_id: p.deletion_id.filter(|s| !s.is_empty()),
        search: p.q,
        cursor: p.cursor.filter(|s| !s.is_empty()),
        limit: p.limit.unwrap_or(50),
    };
    Ok(Json(state.engine.trash(&entity, &q).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatsParams {
    /// Only this entity.
    pub entity: Option<String>,
}

/// Rows per entity: active, deleted in the table, archived, snapshots, the
/// oldest deletion, rows due for purge and held (what `lethe stats` prints).
#[utoipa::path(get, path = "/v1/stats", tag = "entities", security(("token" = [])),
    params(StatsParams),
    responses(
        (status = 200, description = "Rows per entity", body = [EntityStats]),
        (status = 400, description = "Unknown entity", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
    ))]
pub async fn stats(
    ctx: Ctx,
    State(state): State<AppState>,
    Query(p): Query<StatsParams>,
) -> Result<Json<Vec<EntityStats>>, ApiError> {
    ctx.require(Role::Viewer)?;
    Ok(Json(state.engine.stats(p.entity.as_deref()).await?))
}
