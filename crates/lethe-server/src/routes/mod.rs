//! Every endpoint, registered with its OpenAPI description
//! (`utoipa_axum::routes!`), so the document cannot drift from the router.
//! One module per area, like the CLI's commands.

mod audit;
mod body;
mod deletions;
mod deliveries;
mod entities;
mod erasures;
mod ops;
mod retention;

use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::openapi::ApiDoc;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(ops::health))
        .routes(routes!(ops::ready))
        .routes(routes!(ops::metrics))
        .routes(routes!(ops::whoami))
        .routes(routes!(entities::entities))
        .routes(routes!(entities::tombstone, deletions::delete_path))
        .routes(routes!(deletions::plan))
        .routes(routes!(entities::trash))
        .routes(routes!(entities::stats))
        .routes(routes!(deletions::list, deletions::delete))
        .routes(routes!(deletions::show))
        .routes(routes!(deletions::restore_preview))
        .routes(routes!(deletions::restore))
        .routes(routes!(audit::list))
        .routes(routes!(audit::verify))
        .routes(routes!(audit::head))
        .routes(routes!(deliveries::list))
        .routes(routes!(deliveries::replay))
        .routes(routes!(deliveries::replay_dead))
        .routes(routes!(retention::purge))
        .routes(routes!(retention::jobs))
        .routes(routes!(retention::exports))
        .routes(routes!(retention::holds, retention::hold))
        .routes(routes!(retention::release))
        .routes(routes!(erasures::list, erasures::create))
        .routes(routes!(erasures::preview))
        .routes(routes!(erasures::show))
        .routes(routes!(erasures::resume))
        .routes(routes!(erasures::verify))
        .routes(routes!(erasures::confirm))
        .routes(routes!(erasures::certificate))
}

/// A list's `limit`: 1 to [`lethe_store::MAX_PAGE`], 50 when not given.
fn limit(given: Option<u32>) -> Result<u32, crate::error::ApiError> {
    let n = given.unwrap_or(50);
    if (1..=lethe_store::MAX_PAGE).contains(&n) {
        Ok(n)
    } else {
        Err(crate::error::ApiError::invalid(format!(
            "limit must be between 1 and {}, not {n}",
            lethe_store::MAX_PAGE
        )))
    }
}
