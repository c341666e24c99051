//! Health, readiness, metrics and the caller's own identity.

use axum::Json;
use axum::extract::State;
use axum::response::Response;
use serde::Serialize;

use crate::auth::Ctx;
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: String,
    pub version: String,
}

/// Liveness: the process answers. No token needed.
#[utoipa::path(get, path = "/health", tag = "operations",
    responses((status = 200, description = "The process is up", body = Health)))]
pub async fn health() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    })
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Ready {
    /// `ready`.
    pub status: String,
    /// `postgres` or `sqlite`.
    pub database: String,
}

/// Readiness: the database answers and is migrated for Lethe. No token
/// needed.
#[utoipa::path(get, path = "/ready", tag = "operations",
    responses(
        (status = 200, description = "Ready to take requests", body = Ready),
        (status = 503, description = "The database is down or not migrated", body = ErrorBody),
    ))]
pub async fn ready(State(state): State<AppState>) -> Result<Json<Ready>, ApiError> {
    state.engine.audit_head().await?;
    Ok(Json(Ready {
        status: "ready".into(),
        database: state.engine.dialect().name().into(),
    }))
}

/// Prometheus metrics (text format): requests per route and status, their
/// durations, changes made through the API, and the delivery backlog per
/// sink and state. No token needed; no personal data.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
pub async fn metrics(state: State<AppState>) -> Response {
    crate::metrics::render(state).await
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct WhoAmI {
    /// The token's name: the actor the audit log records.
    pub name: String,
    pub role: lethe_store::Role,
}

/// The token the request carries: its name and role.
#[utoipa::path(get, path = "/v1/whoami", tag = "operations", security(("token" = [])),
    responses(
        (status = 200, description = "The caller", body = WhoAmI),
        (status = 401, description = "No token, or an unknown or revoked one", body = ErrorBody),
    ))]
pub async fn whoami(ctx: Ctx) -> Json<WhoAmI> {
    Json(WhoAmI {
        name: ctx.caller.name,
        role: ctx.caller.role,
    })
}
