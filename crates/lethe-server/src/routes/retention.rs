//! Retention: purge, scheduled jobs and their runs, cold-storage exports,
//! legal holds.

use axum::Json;
use axum::extract::State;
use lethe_store::{ExportRecord, Hold, HoldRef, JobRun, PurgeOptions, PurgeReport, Role};
use serde::{Deserialize, Serialize};

use super::body::OptBody;
use crate::auth::Ctx;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Body, Path, Query};
use crate::state::AppState;

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PurgeBody {
    /// Only this entity (every entity with a retention when left out).
    pub entity: Option<String>,
    /// Count what is due and change nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Rows per batch, each batch one short transaction (default 1000).
    pub batch_size: Option<u32>,
    /// At most this many rows per second.
    pub max_rows_per_second: Option<u32>,
}

/// Removes (or archives) deleted rows whose retention ran out, in batches
/// of short transactions, each audited with its outbox events. Rows of held
/// deletions and rows still referenced stay, and are counted. The request
/// lasts as long as the purge; for large purges prefer a scheduled job.
#[utoipa::path(post, path = "/v1/purge", tag = "retention", security(("token" = [])),
    request_body(content = PurgeBody, description = "Optional"),
    responses(
        (status = 200, description = "What was purged (or is due, with dry_run)", body = PurgeReport),
        (status = 400, description = "Unknown entity, bad batch size", body = ErrorBody),
        (status = 403, description = "The token's role is below admin", body = ErrorBody),
    ))]
pub async fn purge(
    ctx: Ctx,
    State(state): State<AppState>,
    OptBody(b): OptBody<PurgeBody>,
) -> Result<Json<PurgeReport>, ApiError> {
    ctx.require(Role::Admin)?;
    let opts = PurgeOptions {
        entity: b.entity,
        dry_run: b.dry_run,
        batch_size: b.batch_size.unwrap_or(lethe_store::purge::DEFAULT_BATCH),
        max_rows_per_second: b.max_rows_per_second.filter(|n| *n > 0),
        actor: ctx.actor(),
    };
    Ok(Json(state.engine.purge(&opts, &mut |_| {}).await?))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct JobInfo {
    pub name: String,
    /// `purge` or `export`.
    pub run: String,
    pub entity: Option<String>,
    /// Cron schedule, UTC.
    pub schedule: String,
    /// When it runs next.
    pub next: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Jobs {
    pub jobs: Vec<JobInfo>,
    /// The latest runs, newest first.
    pub runs: Vec<JobRun>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LimitParam {
    /// At most this many (1 to 500, default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

/// The scheduled jobs (purge, export), when each runs next, and the
/// latest runs with their summaries and errors.
#[utoipa::path(get, path = "/v1/jobs", tag = "retention", security(("token" = [])),
    params(LimitParam),
    responses((status = 200, description = "Jobs and runs", body = Jobs)))]
pub async fn jobs(
    ctx: Ctx,
    State(state): State<AppState>,
    Query(p): Query<LimitParam>,
) -> Result<Json<Jobs>, ApiError> {
    ctx.require(Role::Viewer)?;
    let limit = super::limit(p.limit)?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let jobs = state
        .engine
        .policy()
        .jobs
        .values()
        .map(|j| JobInfo {
            name: j.name.clone(),
            run: j.kind.as_str().into(),
            entity: j.entity.clone(),
            schedule: j.schedule.text.clone(),
            next: j
                .schedule
                .next_after(now)
                .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
                .map(lethe_store::time_text),
        })
        .collect();
    Ok(Json(Jobs {
        jobs,
        runs: state.engine.job_runs(limit).await?,
    }))
}

/// Files exported to cold storage, newest first.
#[utoipa::path(get, path = "/v1/exports", tag = "retention", security(("token" = [])),
    params(LimitParam),
    responses((status = 200, description = "Exported files", body = [ExportRecord])))]
pub async fn exports(
    ctx: Ctx,
    State(state): State<AppState>,
    Query(p): Query<LimitParam>,
) -> Result<Json<Vec<ExportRecord>>, ApiError> {
    ctx.require(Role::Viewer)?;
    let limit = super::limit(p.limit)?;
    Ok(Json(state.engine.exports(Some(limit)).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HoldsParam {
    /// Released holds too.
    #[serde(default)]
    pub all: bool,
}

/// Legal holds, oldest first: active ones (and released ones with `all`).
#[utoipa::path(get, path = "/v1/holds", tag = "retention", security(("token" = [])),
    params(HoldsParam),
    responses((status = 200, description = "Holds", body = [Hold])))]
pub async fn holds(
    ctx: Ctx,
    State(state): State<AppState>,
    Query(p): Query<HoldsParam>,
) -> Result<Json<Vec<Hold>>, ApiError> {
    ctx.require(Role::Viewer)?;
    Ok(Json(state.engine.holds(p.all).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HoldBody {
    pub entity: String,
    /// `42`, or `col=value,col=value`.
    pub key: String,
    /// The legal matter (no personal data).
    pub reason: String,
}

/// Puts a legal hold on a row: purge keeps it and every row deleted with
/// it; erasure refuses it. Audited.
#[utoipa::path(post, path = "/v1/holds", tag = "retention", security(("token" = [])),
    request_body = HoldBody,
    responses(
        (status = 200, description = "The hold", body = Hold),
        (status = 400, description = "Unknown entity, malformed key, no reason", body = ErrorBody),
        (status = 403, description = "The token's role is below admin", body = ErrorBody),
        (status = 404, description = "No such row", body = ErrorBody),
    ))]
pub async fn hold(
    ctx: Ctx,
    State(state): State<AppState>,
    Body(b): Body<HoldBody>,
) -> Result<Json<Hold>, ApiError> {
    ctx.require(Role::Admin)?;
    let actor = ctx.actor();
    Ok(Json(
        state
            .engine
            .hold(&b.entity, &b.key, &b.reason, actor.as_deref())
            .await?,
    ))
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseBody {
    /// Why the hold ends (no personal data).
    pub reason: Option<String>,
}

/// Releases a legal hold. Audited.
#[utoipa::path(post, path = "/v1/holds/{id}/release", tag = "retention", security(("token" = [])),
    params(("id" = i64, Path, description = "Hold id")),
    request_body(content = ReleaseBody, description = "Optional"),
    responses(
        (status = 200, description = "The released hold", body = [Hold]),
        (status = 403, description = "The token's role is below admin", body = ErrorBody),
        (status = 404, description = "No active hold by that id", body = ErrorBody),
    ))]
pub async fn release(
    ctx: Ctx,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    OptBody(b): OptBody<ReleaseBody>,
) -> Result<Json<Vec<Hold>>, ApiError> {
    ctx.require(Role::Admin)?;
    let actor = ctx.actor();
    Ok(Json(
        state
            .engine
            .release_hold(&HoldRef::Id(id), b.reason.as_deref(), actor.as_deref())
            .await?,
    ))
}
