//! Deliveries to sinks: the backlog per sink and state, the messages with
//! their attempts and last error, and replay.

use axum::Json;
use axum::extract::State;
use lethe_store::{DeliveryRow, DeliverySummary, Role, StoreError};
use serde::{Deserialize, Serialize};

use crate::auth::Ctx;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Path, Query};
use crate::state::AppState;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryParams {
    /// Only this state: `pending`, `retrying`, `delivered` or `dead`.
    pub state: Option<String>,
    /// Only this sink.
    pub sink: Option<String>,
    /// At most this many messages, newest first (1 to 500, default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Deliveries {
    /// Deliveries and rows per sink and state.
    pub summary: Vec<DeliverySummary>,
    /// Outbox records not yet turned into deliveries.
    pub undispatched: u64,
    /// The sinks the policy declares.
    pub sinks: Vec<String>,
    pub deliveries: Vec<DeliveryRow>,
}

fn check_sink(state: &AppState, sink: Option<&str>) -> Result<(), ApiError> {
    match sink {
        Some(s) if !state.engine.policy().sinks.contains_key(s) => {
            Err(StoreError::Invalid(format!("no sink \"{s}\" in the policy")).into())
        }
        _ => Ok(()),
    }
}

/// The backlog per sink and state, then the newest messages.
#[utoipa::path(get, path = "/v1/deliveries", tag = "deliveries", security(("token" = [])),
    params(DeliveryParams),
    responses(
        (status = 200, description = "Deliveries", body = Deliveries),
        (status = 400, description = "Unknown state or sink, bad limit", body = ErrorBody),
    ))]
pub async fn list(
    ctx: Ctx,
    State(state): State<AppState>,
    Query(p): Query<DeliveryParams>,
) -> Result<Json<Deliveries>, ApiError> {
    ctx.require(Role::Viewer)?;
    let limit = super::limit(p.limit)?;
    let (st, sink) = (
        p.state.as_deref().filter(|s| !s.is_empty()),
        p.sink.as_deref().filter(|s| !s.is_empty()),
    );
    check_sink(&state, sink)?;
    let queue = state.engine.queue()?;
    Ok(Json(Deliveries {
        summary: queue.summary().await?,
        undispatched: queue.undispatched().await?,
        sinks: state.engine.policy().sinks.keys().cloned().collect(),
        deliveries: queue.list(st, sink, limit).await?,
    }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Replayed {
    /// Deliveries queued again.
    pub replayed: u64,
}

/// Queues one delivery again (any state); the relay sends it with the same
/// event id.
#[utoipa::path(post, path = "/v1/deliveries/{id}/replay", tag = "deliveries", security(("token" = [])),
    params(("id" = i64, Path, description = "Delivery id")),
    responses(
        (status = 200, description = "Queued again", body = Replayed),
        (status = 403, description = "The token's role is below operator", body = ErrorBody),
        (status = 404, description = "No such delivery", body = ErrorBody),
    ))]
pub async fn replay(
    ctx: Ctx,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<Replayed>, ApiError> {
    ctx.require(Role::Operator)?;
    if !state.engine.queue()?.replay(id).await? {
        return Err(StoreError::DeliveryNotFound(id).into());
    }
    Ok(Json(Replayed { replayed: 1 }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SinkParam {
    /// Only this sink's dead deliveries.
    pub sink: Option<String>,
}

/// Queues every dead delivery again (of one sink, or all).
#[utoipa::path(post, path = "/v1/deliveries/replay-dead", tag = "deliveries", security(("token" = [])),
    params(SinkParam),
    responses(
        (status = 200, description = "Queued again", body = Replayed),
        (status = 400, description = "Unknown sink", body = ErrorBody),
        (status = 403, description = "The token's role is below operator", body = ErrorBody),
    ))]
pub async fn replay_dead(
    ctx: Ctx,
    State(state): State<AppState>,
    Query(p): Query<SinkParam>,
) -> Result<Json<Replayed>, ApiError> {
    ctx.require(Role::Operator)?;
    let sink = p.sink.as_deref().filter(|s| !s.is_empty());
    check_sink(&state, sink)?;
    let n = state.engine.queue()?.replay_dead(sink).await?;
    Ok(Json(Replayed { replayed: n }))
}
