//! Plan, delete, list, show and restore deletions: `lethe delete`,
//! `lethe deletions`, `lethe show`, `lethe restore` over HTTP. The token's
//! name is the actor; the request id goes into the audit entry's context.

use axum::Json;
use axum::extract::State;
use lethe_store::{
    DeleteRequest, DeletionOutcome, DeletionRecord, OutboxRecord, PlanReport, RestoreOptions,
    RestoreOutcome, RestorePreview, Role, SetValue,
};
use serde::{Deserialize, Serialize};

use super::body::OptBody;
use crate::auth::Ctx;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Body, Path, Query};
use crate::metrics::changed;
use crate::state::AppState;

/// What a delete would do: rows per entity, rows whose references would be
/// set to NULL, and any restrict relation that blocks it. Changes nothing.
#[utoipa::path(get, path = "/v1/entities/{entity}/{key}/plan", tag = "deletions", security(("token" = [])),
    params(
        ("entity" = String, Path, description = "Entity name from the policy"),
        ("key" = String, Path, description = "`42`, or `col=value,col=value`"),
    ),
    responses(
        (status = 200, description = "The plan (`blocked_by` lists blocking relations)", body = PlanReport),
        (status = 400, description = "Unknown entity or malformed key", body = ErrorBody),
        (status = 404, description = "No such row", body = ErrorBody),
        (status = 409, description = "Already deleted", body = ErrorBody),
    ))]
pub async fn plan(
    ctx: Ctx,
    State(state): State<AppState>,
    Path((entity, key)): Path<(String, String)>,
) -> Result<Json<PlanReport>, ApiError> {
    ctx.require(Role::Viewer)?;
    Ok(Json(state.engine.plan(&entity, &key).await?))
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteBody {
    /// Entity name from the policy.
    pub entity: String,
    /// `42`, or `col=value,col=value` for a composite key.
    pub key: String,
    /// Why (recorded in the audit log; no personal data).
    pub reason: Option<String>,
}

async fn run_delete(
    ctx: &Ctx,
    state: &AppState,
    entity: String,
    key: String,
    reason: Option<String>,
) -> Result<Json<DeletionOutcome>, ApiError> {
    ctx.require(Role::Operator)?;
    let req = DeleteRequest {
        entity,
        key,
        actor: ctx.actor(),
        reason,
        context: ctx.context(),
    };
    let done = state.engine.delete(&req).await?;
    changed("deleted", &done.entity);
    Ok(Json(done))
}

/// Deletes a row and its cascade in one transaction, with its audit entry
/// and outbox records. A restrict relation with active children answers
/// 409 `blocked`, naming the relation and the count.
#[utoipa::path(post, path = "/v1/deletions", tag = "deletions", security(("token" = [])),
    request_body = DeleteBody,
    responses(
        (status = 200, description = "Deleted", body = DeletionOutcome),
        (status = 400, description = "Unknown entity, malformed key or body", body = ErrorBody),
        (status = 403, description = "The token's role is below operator", body = ErrorBody),
        (status = 404, description = "No such row", body = ErrorBody),
        (status = 409, description = "Blocked by a restrict relation, already deleted, or refused", body = ErrorBody),
    ))]
pub async fn delete(
    ctx: Ctx,
    State(state): State<AppState>,
    Body(b): Body<DeleteBody>,
) -> Result<Json<DeletionOutcome>, ApiError> {
    run_delete(&ctx, &state, b.entity, b.key, b.reason).await
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReasonParam {
    /// Why (recorded in the audit log; no personal data).
    pub reason: Option<String>,
}

/// The same delete as `POST /v1/deletions`, in REST form.
#[utoipa::path(delete, path = "/v1/entities/{entity}/{key}", tag = "deletions", security(("token" = [])),
    params(
        ("entity" = String, Path, description = "Entity name from the policy"),
        ("key" = String, Path, description = "`42`, or `col=value,col=value`"),
        ReasonParam,
    ),
    responses(
        (status = 200, description = "Deleted", body = DeletionOutcome),
        (status = 400, description = "Unknown entity or malformed key", body = ErrorBody),
        (status = 403, description = "The token's role is below operator", body = ErrorBody),
        (status = 404, description = "No such row", body = ErrorBody),
        (status = 409, description = "Blocked by a restrict relation, already deleted, or refused", body = ErrorBody),
    ))]
pub async fn delete_path(
    ctx: Ctx,
    State(state): State<AppState>,
    Path((entity, key)): Path<(String, String)>,
    Query(q): Query<ReasonParam>,
) -> Result<Json<DeletionOutcome>, ApiError> {
    run_delete(&ctx, &state, entity, key, q.reason).await
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only deletions whose root is this entity.
    pub entity: Option<String>,
    /// At most this many, newest first (1 to 500, default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

/// Deletions, newest first (deletes, purges, erasures, strategy moves).
#[utoipa::path(get, path = "/v1/deletions", tag = "deletions", security(("token" = [])),
    params(ListParams),
    responses(
        (status = 200, description = "Deletions", body = [DeletionRecord]),
        (status = 400, description = "Unknown entity or bad limit", body = ErrorBody),
    ))]
pub async fn list(
    ctx: Ctx,
    State(state): State<AppState>,
    Query(p): Query<ListParams>,
) -> Result<Json<Vec<DeletionRecord>>, ApiError> {
    ctx.require(Role::Viewer)?;
    let limit = super::limit(p.limit)?;
    Ok(Json(
        state.engine.deletions(p.entity.as_deref(), limit).await?,
    ))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DeletionDetail {
    pub deletion: DeletionRecord,
    /// `deleted`, `restored`, `purged`, `erased`, or the kind of a record
    /// that is not a deletion (`purge`, `migrate`).
    pub status: String,
    /// The outbox records of its delete and restore.
    pub outbox: Vec<OutboxRecord>,
}

/// One deletion with its rows per entity and its outbox records.
#[utoipa::path(get, path = "/v1/deletions/{id}", tag = "deletions", security(("token" = [])),
    params(("id" = String, Path, description = "Deletion id (a UUID)")),
    responses(
        (status = 200, description = "The deletion", body = DeletionDetail),
        (status = 400, description = "Not a deletion id", body = ErrorBody),
        (status = 404, description = "No such deletion", body = ErrorBody),
    ))]
pub async fn show(
    ctx: Ctx,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<DeletionDetail>, ApiError> {
    ctx.require(Role::Viewer)?;
    let d = state.engine.deletion(&id).await?;
    let outbox = state.engine.outbox(&d.id).await?;
    Ok(Json(DeletionDetail {
        status: d.status().into(),
        deletion: d,
        outbox,
    }))
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestoreBody {
    /// Why (recorded in the audit log; no personal data).
    pub reason: Option<String>,
    /// Values for NOT NULL columns added to a table since its rows were
    /// stored: `COLUMN=VALUE` or `ENTITY.COLUMN=VALUE`.
    #[serde(default)]
    pub set: Vec<String>,
    /// Restore even though columns dropped since hold values (lost).
    #[serde(default)]
    pub drop_missing: bool,
}

fn restore_options(ctx: &Ctx, b: RestoreBody) -> Result<RestoreOptions, ApiError> {
    let set = b
        .set
        .iter()
        .map(|s| s.parse::<SetValue>().map_err(ApiError::invalid))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RestoreOptions {
        actor: ctx.actor(),
        reason: b.reason,
        set,
        drop_missing: b.drop_missing,
        context: ctx.context(),
    })
}

/// What restoring a deletion would bring back, and anything that would
/// refuse it (unique conflicts with active rows, deleted parents, columns
/// changed since). Changes nothing. The body may be left out.
#[utoipa::path(post, path = "/v1/deletions/{id}/restore-preview", tag = "deletions", security(("token" = [])),
    params(("id" = String, Path, description = "Deletion id (a UUID)")),
    request_body(content = RestoreBody, description = "Optional"),
    responses(
        (status = 200, description = "What the restore would do", body = RestorePreview),
        (status = 400, description = "Not a deletion id, or a bad `set`", body = ErrorBody),
        (status = 404, description = "No such deletion", body = ErrorBody),
        (status = 409, description = "Already restored", body = ErrorBody),
        (status = 410, description = "Rows of it were purged", body = ErrorBody),
    ))]
pub async fn restore_preview(
    ctx: Ctx,
    State(state): State<AppState>,
    Path(id): Path<String>,
    OptBody(b): OptBody<RestoreBody>,
) -> Result<Json<RestorePreview>, ApiError> {
    ctx.require(Role::Viewer)?;
    let opts = restore_options(&ctx, b)?;
    Ok(Json(state.engine.restore_preview_with(&id, &opts).await?))
}

/// Undoes exactly one deletion: its rows come back; rows other deletions
/// removed stay deleted. A conflict answers 409 with the conflicting rows
/// (`restore_conflict`), the deleted parents (`parent_deleted`) or the
/// changed columns (`restore_schema_changed`). The body may be left out.
#[utoipa::path(post, path = "/v1/deletions/{id}/restore", tag = "deletions", security(("token" = [])),
    params(("id" = String, Path, description = "Deletion id (a UUID)")),
    request_body(content = RestoreBody, description = "Optional"),
    responses(
        (status = 200, description = "Restored", body = RestoreOutcome),
        (status = 400, description = "Not a deletion id, or a bad `set`", body = ErrorBody),
        (status = 403, description = "The token's role is below operator", body = ErrorBody),
        (status = 404, description = "No such deletion", body = ErrorBody),
        (status = 409, description = "Refused: conflict, deleted parent, changed table, already restored", body = ErrorBody),
        (status = 410, description = "Rows of it were purged", body = ErrorBody),
    ))]
pub async fn restore(
    ctx: Ctx,
    State(state): State<AppState>,
    Path(id): Path<String>,
    OptBody(b): OptBody<RestoreBody>,
) -> Result<Json<RestoreOutcome>, ApiError> {
    ctx.require(Role::Operator)?;
    let opts = restore_options(&ctx, b)?;
    let done = state.engine.restore_with(&id, &opts).await?;
    if let Some(root) = done.restored.first() {
        changed("restored", &root.entity);
    }
    Ok(Json(done))
}
