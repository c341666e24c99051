//! The hash-chained audit log: entries newest first, chain verification and
//! the head to keep elsewhere.

use axum::Json;
use axum::extract::State;
use lethe_store::{AuditEntry, Role, VerifyReport};
use serde::{Deserialize, Serialize};

use crate::auth::Ctx;
use crate::error::{ApiError, ErrorBody};
use crate::extract::Query;
use crate::state::AppState;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Only entries before this seq (the `next_before` of the previous page).
    pub before: Option<i64>,
    /// Only this action (`delete`, `restore`, `purge`, `erase`, `hold`, ...).
    pub action: Option<String>,
    /// Entries per page, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    /// Pass as `before` for the next page; none on the last page.
    pub next_before: Option<i64>,
}

/// Audit entries, newest first. Entries hold keys, counts, actor, reason and
/// context (the API request id), never personal data.
#[utoipa::path(get, path = "/v1/audit", tag = "audit", security(("token" = [])),
    params(AuditParams),
    responses(
        (status = 200, description = "One page of the log", body = AuditPage),
        (status = 400, description = "Bad limit", body = ErrorBody),
    ))]
pub async fn list(
    ctx: Ctx,
    State(state): State<AppState>,
    Query(p): Query<AuditParams>,
) -> Result<Json<AuditPage>, ApiError> {
    ctx.require(Role::Viewer)?;
    let limit = super::limit(p.limit)?;
    let entries = state
        .engine
        .audit_list(
            p.before,
            p.action.as_deref().filter(|a| !a.is_empty()),
            limit,
        )
        .await?;
    let next_before = (entries.len() == limit as usize)
        .then(|| entries.last().map(|e| e.seq))
        .flatten();
    Ok(Json(AuditPage {
        entries,
        next_before,
    }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VerifyParams {
    /// A head hash kept elsewhere: the chain must still contain it.
    pub expect_head: Option<String>,
}

/// Checks every entry's hash and link (`ok: false` names the first broken
/// entry). The whole chain is read, a page at a time.
#[utoipa::path(get, path = "/v1/audit/verify", tag = "audit", security(("token" = [])),
    params(VerifyParams),
    responses((status = 200, description = "The chain's state", body = VerifyReport)))]
pub async fn verify(
    ctx: Ctx,
    State(state): State<AppState>,
    Query(p): Query<VerifyParams>,
) -> Result<Json<VerifyReport>, ApiError> {
    ctx.require(Role::Viewer)?;
    Ok(Json(
        state
            .engine
            .audit_verify(p.expect_head.as_deref().filter(|h| !h.is_empty()))
            .await?,
    ))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AuditHead {
    pub seq: i64,
    /// Keep it outside the database; `expect_head` checks it later.
    pub hash: String,
}

/// The latest entry's seq and hash.
#[utoipa::path(get, path = "/v1/audit/head", tag = "audit", security(("token" = [])),
    responses((status = 200, description = "The head", body = AuditHead)))]
pub async fn head(ctx: Ctx, State(state): State<AppState>) -> Result<Json<AuditHead>, ApiError> {
    ctx.require(Role::Viewer)?;
    let (seq, hash) = state.engine.audit_head().await?;
    Ok(Json(AuditHead { seq, hash }))
}
