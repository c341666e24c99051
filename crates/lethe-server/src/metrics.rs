//! Prometheus metrics: requests by route template (never the raw path: a
//! key can be personal data), status and method, their durations, and at
//! scrape time the delivery backlog per sink and state.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::state::AppState;

/// The process-wide recorder (metrics are global in the `metrics` crate;
/// several servers in one process, as in the tests, share it).
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        // Fails only when another recorder is installed (an embedding
        // program's); the handle then renders what this one saw: nothing.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

/// Counts and times every request, and logs it by route template and
/// request id, with no path values, query or body (they may hold PII).
pub async fn track(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let start = Instant::now();
    let res = next.run(req).await;
    let status = res.status().as_u16().to_string();
    let secs = start.elapsed().as_secs_f64();
    tracing::info!(%method, %route, %status, request_id, ms = secs * 1000.0, "request");
    metrics::counter!("lethe_http_requests_total", "method" => method, "route" => route.clone(), "status" => status).increment(1);
    metrics::histogram!("lethe_http_request_duration_seconds", "route" => route).record(secs);
    res
}

/// Counts a change made through the API (`deleted`, `restored`, ...).
pub fn changed(what: &'static str, entity: &str) {
    metrics::counter!("lethe_api_changes_total", "change" => what, "entity" => entity.to_string())
        .increment(1);
}

/// `GET /metrics`.
pub async fn render(State(state): State<AppState>) -> Response {
    let mut text = handle().render();
    // The backlog is read at scrape time: it is the database's, shared by
    // every instance, not this process's.
    if let Ok(q) = state.engine.queue()
        && let Ok(summary) = q.summary().await
    {
        text.push_str("# HELP lethe_deliveries Deliveries per sink and state.\n# TYPE lethe_deliveries gauge\n");
        for s in summary {
            text.push_str(&format!(
                "lethe_deliveries{{sink=\"{}\",state=\"{}\"}} {}\n",
                s.sink, s.state, s.deliveries
            ));
        }
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}
