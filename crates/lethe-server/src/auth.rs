//! Who is calling: `Authorization: Bearer <token>`, looked up by the SHA-256
//! of the secret (remembered for `token_cache`), and the role the endpoint
//! needs. The token's name becomes the actor of what the request changes,
//! and the request id goes into the audit entry's context.

use std::time::Instant;

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use lethe_store::{Caller, Role};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::state::AppState;

/// An authenticated request.
pub struct Ctx {
    pub caller: Caller,
    pub request_id: String,
}

impl Ctx {
    /// Refuses (403) unless the token's role is at least `role`.
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.caller.role >= role {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!(
                    "token \"{}\" has role {}; this needs {}",
                    self.caller.name,
                    self.caller.role.as_str(),
                    role.as_str()
                ),
            )
            .hint("`lethe token create NAME --role ROLE` makes a token with another role"))
        }
    }

    /// The actor recorded in the audit log.
    pub fn actor(&self) -> Option<String> {
        Some(self.caller.name.clone())
    }

    /// The audit entry's context.
    pub fn context(&self) -> Value {
        json!({"request_id": self.request_id, "via": "api"})
    }
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
        .hint("send `Authorization: Bearer <token>`; `lethe token create NAME --role viewer|operator|admin` makes one")
}

impl FromRequestParts<AppState> for Ctx {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Ctx, ApiError> {
        let request_id = parts
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .chars()
            .take(128)
            .collect::<String>();
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(|| unauthorized("this endpoint needs a token"))?;
        let secret = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(|| unauthorized("the Authorization header must be `Bearer <token>`"))?;
        let hash = lethe_store::tokens::secret_hash(secret);
        let ttl = state.options.token_cache;
        if let Some((caller, at)) = state.tokens.lock().ok().and_then(|m| m.get(&hash).cloned())
            && at.elapsed() < ttl
        {
            return Ok(Ctx { caller, request_id });
        }
        let caller = state
            .engine
            .authenticate(secret)
            .await?
            .ok_or_else(|| unauthorized("unknown or revoked token"))?;
        if let Ok(mut m) = state.tokens.lock() {
            // Forget expired entries now and then, so the map stays small.
            if m.len() > 1000 {
                m.retain(|_, (_, at)| at.elapsed() < ttl);
            }
            m.insert(hash, (caller.clone(), Instant::now()));
        }
        Ok(Ctx { caller, request_id })
    }
}
