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

/// Completes the document the router collected.
pub fn finish(mut doc: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    // Every operation can answer an error not listed with it (a 401,
    // a 503 when the database is down): all have the same body.
    for item in doc.paths.paths.values_mut() {
        for op in [
            &mut item.get,
            &mut item.post,
            &mut item.delete,
            &mut item.put,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        {
            op.responses.responses.entry("default".into()).or_insert_with(|| {
                    utoipa::openapi::ResponseBuilder::new()
                        .description("An error: `{\"error\": {\"code\", \"message\", \"details\", \"hint\"}}`")
                        .content(
                            "application/json",
                            utoipa::openapi::ContentBuilder::new()
                                .schema(Some(utoipa::openapi::Ref::from_schema_name("ErrorBody")))
                                .build(),
                        )
                        .into()
                });
        }
    }
    doc
}

/// The whole document, as `/openapi.json` serves it.
pub fn openapi() -> utoipa::openapi::OpenApi {
    finish(crate::routes::router().into_openapi())
}
