//! Errors of the API and the pages: each one a status code and one clear line.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use bawaba_store::StoreError;

/// Why a request was refused or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// No valid session cookie or API token.
    #[error("log in first, or send an API token (Authorization: Bearer ...)")]
    Unauthenticated,
    /// The identity's role does not allow this.
    #[error("{0}")]
    Forbidden(String),
    /// A cookie-authenticated write without the session's CSRF token.
    #[error("missing or wrong CSRF token: reload the page and try again")]
    Csrf,
    /// No such object.
    #[error("{0}")]
    NotFound(String),
    /// The input is wrong; nothing was changed.
    #[error("{0}")]
    Invalid(String),
    /// The request conflicts with the state (four eyes, order not a draft, duplicate).
    #[error("{0}")]
    Conflict(String),
    /// Too many attempts; retry after this many seconds.
    #[error("too many attempts: try again in {0} s")]
    RateLimited(u64),
    /// Something broke on the server.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthenticated => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) | ApiError::Csrf => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { .. } | StoreError::UnknownName { .. } => ApiError::NotFound(e.to_string()),
            StoreError::AppealClosed { .. } => ApiError::Conflict(e.to_string()),
            StoreError::Policy(_) | StoreError::Invalid { .. } => ApiError::Invalid(e.to_string()),
            StoreError::OrderNotDraft { .. } | StoreError::EmptyOrder(_) | StoreError::Duplicate { .. } => {
                ApiError::Conflict(e.to_string())
            }
            other => {
                tracing::error!(error = %other, "store failure");
                ApiError::Internal(other.to_string())
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = serde_json::json!({ "error": self.to_string(), "status": status.as_u16() });
        let mut response = (status, axum::Json(body)).into_response();
        if let ApiError::RateLimited(secs) = self {
            if let Ok(v) = secs.to_string().parse() {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        response
    }
}
