//! API errors: JSON with a stable code, a message, details and a hint,
//! and the HTTP status that goes with the code. Store errors keep the codes
//! the CLI prints with `--json`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use lethe_store::StoreError;
use serde::Serialize;
use serde_json::Value;

/// The body of every error answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable and machine-readable: `blocked`, `restore_conflict`,
    /// `not_found`, `unauthorized`, ... (see docs/api.md).
    pub code: String,
    pub message: String,
    /// Structured facts, where the error has any: the blocking relation and
    /// its count, the conflicting rows of a restore, ...
    #[schema(value_type = Object)]
    pub details: Value,
    /// What to do about it, when there is something to do.
    pub hint: Option<String>,
}

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    pub details: Value,
    pub hint: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code: code.into(),
            message: message.into(),
            details: Value::Object(Default::default()),
            hint: None,
        }
    }

    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_input", message)
    }

    /// 413: the body is over `--max-body`.
    pub fn body_too_large() -> ApiError {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            "the request body is larger than the server accepts (lethe serve --max-body)",
        )
    }

    /// 415: a body that is not JSON.
    pub fn not_json() -> ApiError {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the body must be JSON (Content-Type: application/json)",
        )
    }

    pub fn hint(mut self, hint: impl Into<String>) -> ApiError {
        self.hint = Some(hint.into());
        self
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

/// The HTTP status of a store error.
fn status_of(e: &StoreError) -> StatusCode {
    use StatusCode as S;
    match e {
        StoreError::Core(_)
        | StoreError::Policy(_)
        | StoreError::BadDeletionId(_)
        | StoreError::Invalid(_)
        | StoreError::NoDatabaseUrl
        | StoreError::UnsupportedUrl(_) => S::BAD_REQUEST,
        StoreError::NotFound { .. }
        | StoreError::DeletionNotFound(_)
        | StoreError::DeliveryNotFound(_)
        | StoreError::HoldNotFound(_) => S::NOT_FOUND,
        StoreError::Purged { .. } => S::GONE,
        StoreError::Blocked { .. }
        | StoreError::AlreadyDeleted { .. }
        | StoreError::AlreadyRestored { .. }
        | StoreError::RestoreConflict { .. }
        | StoreError::ParentDeleted { .. }
        | StoreError::EntityGone(_)
        | StoreError::SchemaChanged { .. }
        | StoreError::RestoreShape { .. }
        | StoreError::MigrationBlocked { .. }
        | StoreError::Refused(_)
        | StoreError::Held(_) => S::CONFLICT,
        StoreError::NotMigrated(_) | StoreError::Connect(_) | StoreError::Transient(_) => {
            S::SERVICE_UNAVAILABLE
        }
        StoreError::Sink(_) | StoreError::Storage(_) => S::BAD_GATEWAY,
        StoreError::Database(_) => S::INTERNAL_SERVER_ERROR,
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        ApiError {
            status: status_of(&e),
            code: e.code().to_string(),
            message: e.to_string(),
            // Always an object, `{}` when the error has no details.
            details: match e.details() {
                Value::Null => Value::Object(Default::default()),
                d => d,
            },
            hint: e.hint(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            // The message may quote the database; the code and status are
            // enough to find it in the database's own log.
            tracing::error!(code = %self.code, status = %self.status.as_u16(), "request failed");
        }
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
                details: self.details,
                hint: self.hint,
            },
        };
        (self.status, Json(body)).into_response()
    }
}

pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no_route", "no such endpoint")
        .hint("GET /openapi.json lists every endpoint")
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not take that method",
    )
    .hint("GET /openapi.json lists every endpoint and its methods")
}
