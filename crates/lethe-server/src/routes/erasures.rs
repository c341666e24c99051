//! GDPR erasure requests: preview, create (and run as far as they go),
//! list, show with per-step progress, resume, verify, confirm a step by
//! hand, the certificate. The subject's key is in the request body only: it
//! is never logged, and the request stores it only as a keyed hash.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use lethe_store::Role;
use lethe_store::erasure::{EraseRequest, ErasurePreview, ErasureRecord};
use serde::Deserialize;
use serde_json::Value;

use crate::auth::Ctx;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Body, Path, Query};
use crate::state::AppState;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubjectBody {
    /// The subject entity (`[erasure] subject` in the policy).
    pub entity: String,
    /// The subject's key: `42`, or `col=value,col=value`.
    pub key: String,
}

/// What erasing a subject would touch: every row by entity and place, the
/// sinks, whether a data key exists. Changes nothing.
#[utoipa::path(post, path = "/v1/erasures/preview", tag = "erasures", security(("token" = [])),
    request_body = SubjectBody,
    responses(
        (status = 200, description = "What the erasure would do", body = ErasurePreview),
        (status = 400, description = "Not the subject entity, malformed key", body = ErrorBody),
        (status = 403, description = "The token's role is below admin", body = ErrorBody),
        (status = 404, description = "No such subject", body = ErrorBody),
    ))]
pub async fn preview(
    ctx: Ctx,
    State(state): State<AppState>,
    Body(b): Body<SubjectBody>,
) -> Result<Json<ErasurePreview>, ApiError> {
    ctx.require(Role::Admin)?;
    Ok(Json(state.engine.erasure_preview(&b.entity, &b.key).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EraseBody {
    /// The subject entity (`[erasure] subject` in the policy).
    pub entity: String,
    /// The subject's key: `42`, or `col=value,col=value`.
    pub key: String,
    /// Your id for the request (a ticket number); the same id again returns
    /// (and continues) the first request.
    pub request_id: Option<String>,
    /// Why (e.g. "GDPR Art. 17 request of 2026-11-30"); no personal data.
    pub reason: Option<String>,
}

/// Creates an erasure request, runs its table step (rows deleted or
/// anonymized, data key shredded, `erased` outbox records, audit, ledger:
/// one transaction) and takes it as far as it goes now. Sinks then get
/// `lethe.erased` through the relay; `resume` advances it again.
#[utoipa::path(post, path = "/v1/erasures", tag = "erasures", security(("token" = [])),
    request_body = EraseBody,
    responses(
        (status = 200, description = "The request and its steps", body = ErasureRecord),
        (status = 400, description = "Not the subject entity, malformed key", body = ErrorBody),
        (status = 403, description = "The token's role is below admin", body = ErrorBody),
        (status = 404, description = "No such subject", body = ErrorBody),
        (status = 409, description = "Refused (a legal hold names itself)", body = ErrorBody),
    ))]
pub async fn create(
    ctx: Ctx,
    State(state): State<AppState>,
    Body(b): Body<EraseBody>,
) -> Result<Json<ErasureRecord>, ApiError> {
    ctx.require(Role::Admin)?;
    let req = EraseRequest {
        entity: b.entity,
        key: b.key,
        request_id: b.request_id.filter(|s| !s.is_empty()),
        actor: ctx.actor(),
        reason: b.reason,
    };
    let rec = lethe_erasure::erase(&state.engine, &req, &state.places).await?;
    crate::metrics::changed("erased", &req.entity);
    Ok(Json(rec))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only this state: `pending`, `in_progress`, `completed`, `failed`.
    pub state: Option<String>,
    /// At most this many, newest first (1 to 500, default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

/// Erasure requests, newest first, with their steps.
#[utoipa::path(get, path = "/v1/erasures", tag = "erasures", security(("token" = [])),
    params(ListParams),
    responses(
        (status = 200, description = "Requests", body = [ErasureRecord]),
        (status = 400, description = "Unknown state, bad limit", body = ErrorBody),
    ))]
pub async fn list(
    ctx: Ctx,
    State(state): State<AppState>,
    Query(p): Query<ListParams>,
) -> Result<Json<Vec<ErasureRecord>>, ApiError> {
    ctx.require(Role::Viewer)?;
    let limit = super::limit(p.limit)?;
    let st = p.state.as_deref().filter(|s| !s.is_empty());
    if let Some(s) = st
        && !matches!(s, "pending" | "in_progress" | "completed" | "failed")
    {
        return Err(ApiError::invalid(format!(
            "\"{s}\" is not a state (pending, in_progress, completed, failed)"
        )));
    }
    Ok(Json(state.engine.erasures(st, limit).await?))
}

/// One request with its steps (table, archive store, cold-storage keys,
/// each sink, verification).
#[utoipa::path(get, path = "/v1/erasures/{id}", tag = "erasures", security(("token" = [])),
    params(("id" = String, Path, description = "Erasure id or your request id")),
    responses(
        (status = 200, description = "The request", body = ErasureRecord),
        (status = 404, description = "No such request", body = ErrorBody),
    ))]
pub async fn show(
    ctx: Ctx,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ErasureRecord>, ApiError> {
    ctx.require(Role::Viewer)?;
    Ok(Json(state.engine.erasure(&id).await?))
}

/// Takes a request as far as it goes now: its table step if it has not
/// run, the sinks' state, then verification and completion. Harmless to
/// repeat.
#[utoipa::path(post, path = "/v1/erasures/{id}/resume", tag = "erasures", security(("token" = [])),
    params(("id" = String, Path, description = "Erasure id or your request id")),
    responses(
        (status = 200, description = "The request", body = ErasureRecord),
        (status = 403, description = "The token's role is below admin", body = ErrorBody),
        (status = 404, description = "No such request", body = ErrorBody),
        (status = 409, description = "Refused (a legal hold names itself)", body = ErrorBody),
    ))]
pub async fn resume(
    ctx: Ctx,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ErasureRecord>, ApiError> {
    ctx.require(Role::Admin)?;
    let rec = state.engine.erasure(&id).await?;
    Ok(Json(
        lethe_erasure::advance(&state.engine, &rec.id, &state.places).await?,
    ))
}

/// Scans the database, exported files and sinks for what is left of the
/// subject, and records the result on the request. `clean: false` lists
/// the residue with its location.
#[utoipa::path(post, path = "/v1/erasures/{id}/verify", tag = "erasures", security(("token" = [])),
    params(("id" = String, Path, description = "Erasure id or your request id")),
    responses(
        (status = 200, description = "The verification", body = Object),
        (status = 403, description = "The token's role is below admin", body = ErrorBody),
        (status = 404, description = "No such request", body = ErrorBody),
    ))]
pub async fn verify(
    ctx: Ctx,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    ctx.require(Role::Admin)?;
    let rec = state.engine.erasure(&id).await?;
    let v = lethe_erasure::verify(&state.engine, &rec.id, &state.places).await?;
    Ok(Json(serde_json::to_value(v).unwrap_or(Value::Null)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmBody {
    /// The step (`sink:crm`, or the sink's name).
    pub step: String,
    /// Who confirmed, how and when (no personal data).
    pub reason: String,
}

/// Records that a step was confirmed by hand (a third party that answered
/// by e-mail): it counts as done and that sink's retries stop. Audited.
#[utoipa::path(post, path = "/v1/erasures/{id}/confirm", tag = "erasures", security(("token" = [])),
    params(("id" = String, Path, description = "Erasure id or your request id")),
    request_body = ConfirmBody,
    responses(
        (status = 200, description = "The request", body = ErasureRecord),
        (status = 400, description = "No such step, no reason", body = ErrorBody),
        (status = 403, description = "The token's role is below admin", body = ErrorBody),
        (status = 404, description = "No such request", body = ErrorBody),
    ))]
pub async fn confirm(
    ctx: Ctx,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Body(b): Body<ConfirmBody>,
) -> Result<Json<ErasureRecord>, ApiError> {
    ctx.require(Role::Admin)?;
    let actor = ctx.actor();
    let rec = state
        .engine
        .erasure_confirm(&id, &b.step, &b.reason, actor.as_deref())
        .await?;
    Ok(Json(
        lethe_erasure::advance(&state.engine, &rec.id, &state.places).await?,
    ))
}

/// The certificate of a completed request: times, steps, counts per store,
/// the verification; its SHA-256 is in the audit chain.
#[utoipa::path(get, path = "/v1/erasures/{id}/certificate", tag = "erasures", security(("token" = [])),
    params(("id" = String, Path, description = "Erasure id or your request id")),
    responses(
        (status = 200, description = "The certificate", body = Object),
        (status = 404, description = "No such request", body = ErrorBody),
        (status = 409, description = "Not completed yet", body = ErrorBody),
    ))]
pub async fn certificate(
    ctx: Ctx,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    ctx.require(Role::Viewer)?;
    let rec = state.engine.erasure(&id).await?;
    match rec.certificate {
        Some(c) => Ok(Json(c)),
        None => Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_completed",
            format!(
                "erasure {} is {}: a certificate is issued when it completes",
                rec.id, rec.state
            ),
        )),
    }
}
