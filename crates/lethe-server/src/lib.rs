//! `lethe serve`: Lethe as a service any application can call. An HTTP API
//! (axum) for everything the CLI does, its OpenAPI document generated from
//! the handlers and record types, a web console, Prometheus metrics, and
//! the background workers (the outbox relay, the scheduled jobs) in the same
//! process.
//!
//! Thin, like the CLI: every handler calls `lethe-store`, `lethe-relay`,
//! `lethe-cold` or `lethe-erasure`, so the one-transaction and audit
//! invariants hold there.
//!
//! ```no_run
//! # async fn run(engine: lethe_store::Engine) -> std::io::Result<()> {
//! let opts = lethe_server::ServeOptions::default();
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! lethe_server::serve(engine, lethe_erasure::Places::default(), opts, listener, std::future::pending()).await?;
//! # Ok(()) }
//! ```

mod auth;
mod console;
mod error;
mod extract;
mod metrics;
mod openapi;
mod routes;
mod state;
mod workers;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method};
use tower_http::cors::CorsLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

pub use error::{ApiError, ErrorBody};
pub use openapi::openapi;
pub use state::AppState;

/// How `lethe serve` runs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Largest request body accepted, in bytes (413 beyond it).
    pub max_body: usize,
    /// Origins allowed to call the API from a browser (CORS). Empty: CORS
    /// is off, and only the console served by this process can call it.
    pub cors_origins: Vec<String>,
    /// Run the outbox relay in this process.
    pub relay: bool,
    /// Run the policy's scheduled jobs in this process.
    pub jobs: bool,
    /// The policy's directory: relative paths of jobs' export locations.
    pub base_dir: PathBuf,
    /// How long authenticated tokens are remembered (a revoked token stops
    /// working within this time on every instance).
    pub token_cache: Duration,
    /// Idle pause of the relay between looks for new work.
    pub relay_poll: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            max_body: 1 << 20,
            cors_origins: Vec::new(),
            relay: true,
            jobs: true,
            base_dir: PathBuf::from("."),
            token_cache: Duration::from_secs(5),
            relay_poll: Duration::from_millis(200),
        }
    }
}

/// The whole application: the API under `/v1`, `/openapi.json`, health,
/// readiness, metrics and the console, with request ids, the body limit and
/// CORS when asked for.
pub fn app(state: AppState) -> Result<Router, ApiError> {
    let opts = state.options.clone();
    metrics::handle();
    let (api, doc) = routes::router().split_for_parts();
    let doc = Arc::new(openapi::finish(doc));
    let request_id = HeaderName::from_static("x-request-id");
    let mut router = api
        .merge(console::router())
        .route(
            "/openapi.json",
            axum::routing::get(move || {
                let doc = doc.clone();
                async move { axum::Json(doc.as_ref().clone()) }
            }),
        )
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(axum::middleware::from_fn(metrics::track))
        .layer(DefaultBodyLimit::max(opts.max_body))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state);
    if !opts.cors_origins.is_empty() {
        let origins = opts
            .cors_origins
            .iter()
            .map(|o| {
                HeaderValue::from_str(o)
                    .map_err(|_| ApiError::invalid(format!("\"{o}\" is not a CORS origin")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        router = router.layer(
            CorsLayer::new()
                .allow_origin(origins)
                .allow_methods([Method::GET, Method::POST, Method::DELETE])
                .allow_headers([
                    axum::http::header::AUTHORIZATION,
                    axum::http::header::CONTENT_TYPE,
                ]),
        );
    }
    Ok(router)
}

/// Serves the API on `listener` until `shutdown` completes, with the relay
/// and the scheduled jobs running alongside (as `opts` says). On shutdown,
/// requests in flight finish, the relay finishes the batch in hand and the
/// jobs the run in hand; nothing claimed is left half done.
pub async fn serve(
    engine: lethe_store::Engine,
    places: lethe_erasure::Places,
    opts: ServeOptions,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let state = AppState::new(engine, places, opts.clone());
    let router = app(state.clone()).map_err(|e| std::io::Error::other(e.to_string()))?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let workers = workers::start(&state, stop_rx.clone());
    let mut http_stop = stop_rx.clone();
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    // Responses go out in more than one write (headers, body): without
    // TCP_NODELAY the second can wait for the client's delayed ACK.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let served = axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            let _ = http_stop.wait_for(|s| *s).await;
        })
        .await;
    for w in workers {
        if let Err(e) = w.await {
            tracing::error!(error = %e, "a background worker panicked");
        }
    }
    served
}
