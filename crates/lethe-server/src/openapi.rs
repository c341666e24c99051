//! The OpenAPI 3 document: paths come from the handlers' `#[utoipa::path]`
//! (registered with the router, see `routes`), schemas from the record
//! types. Nothing here is written by hand but the title and the security
//! scheme.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Lethe API",
        description = "Safe, undoable, audited deletion over HTTP: plan, delete, restore, trash, tombstones, audit, deliveries, retention and GDPR erasure. Send `Authorization: Bearer <token>` (`lethe token create`). Errors are JSON: `{\"error\": {\"code\", \"message\", \"details\", \"hint\"}}`.",
        license(name = "Apache-2.0")
    ),
    modifiers(&Security),
    tags(
        (name = "entities", description = "Managed entities, tombstones, trash, rows per entity"),
        (name = "deletions", description = "Plan, delete, restore"),
        (name = "audit", description = "The hash-chained audit log"),
        (name = "deliveries", description = "Outbox deliveries to caches, search, brokers, webhooks"),
        (name = "retention", description = "Purge, jobs, exports, legal holds"),
        (name = "erasures", description = "GDPR Art. 17 erasure requests"),
        (name = "operations", description = "Health, readiness, metrics"),
    )
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API token from `lethe token create NAME --role viewer|operator|admin`",
                    ))
                    .build(),
            ),
        );
    }
}

/// The whole document, as `/openapi.json` serves it.
pub fn openapi() -> utoipa::openapi::OpenApi {
    crate::routes::router().into_openapi()
}
