//! The one error type of every HTTP handler; clients see a short reason, logs the cause.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use super::client::CallFailure;
use crate::domain::Invalid;
use crate::stores::StoreError;
use crate::telemetry::logfmt;

/// The body limit of every endpoint that reads a body.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    /// The client did not send its request in time.
    #[error("{0}")]
    RequestTimeout(String),
    /// No or the wrong credentials (answered with `WWW-Authenticate: Bearer`).
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// Too many tries from one client; `retry_after` seconds until it may try again.
    #[error("{reason}")]
    TooManyRequests { reason: String, retry_after: u64 },
    /// A refusal decided upstream, passed on with its status (e.g. a declined card).
    #[error("{reason}")]
    Refused { status: StatusCode, reason: String },
    /// A store failed (503), or refused a write (a full cart, 400).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A call to another service failed before it answered in full: 504 when it ran out
    /// of time, else 502.
    #[error("{what} {failure}")]
    Call {
        what: String,
        #[source]
        failure: CallFailure,
    },
    /// Another service answered that it is unavailable (its reason passed on).
    #[error("{0}")]
    Unavailable(String),
    /// Another service answered with a failure (its reason passed on).
    #[error("{0}")]
    Upstream(String),
    /// Another service answered that it ran out of time (its reason passed on).
    #[error("{0}")]
    Timeout(String),
    /// Data the shop wrote itself does not read back; the cause goes to the log.
    #[error("Internal error")]
    Corrupt {
        what: &'static str,
        #[source]
        cause: serde_json::Error,
    },
    /// A bug or an unexpected state; the cause goes to the log, not to the client.
    #[error("Internal error")]
    Unexpected(String),
}

/// The JSON shape of every error: `{"message": "failure", "reason": ...}`.
#[derive(Serialize)]
pub struct Failure<'a> {
    pub message: &'static str,
    pub reason: &'a str,
}

impl ApiError {
    /// True for refusals of the request itself (4xx).
    pub fn is_client_error(&self) -> bool {
        self.status_code().is_client_error()
    }

    /// The text logged for a failure: what the client was told, then every cause under
    /// it (a 500 names what went wrong instead of "Internal error").
    pub fn log_text(&self) -> String {
        match self {
            ApiError::Unexpected(cause) => cause.clone(),
            ApiError::Corrupt { what, cause } => format!("{what}: {}", logfmt::chain(cause)),
            other => logfmt::chain(other),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Validation(_) => StatusCode::BAD_REQUEST,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Refused { status, .. } => *status,
            ApiError::Store(StoreError::CartFull) => StatusCode::BAD_REQUEST,
            ApiError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Call { failure, .. } if failure.timed_out() => StatusCode::GATEWAY_TIMEOUT,
            ApiError::Call { .. } => StatusCode::BAD_GATEWAY,
            ApiError::Corrupt { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Upstream(_) => StatusCode::BAD_GATEWAY,
            ApiError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ApiError::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        match self {
            ApiError::Unauthorized(_) => {
                response.insert_header(("www-authenticate", "Bearer"));
            }
            ApiError::TooManyRequests { retry_after, .. } => {
                response.insert_header(("retry-after", retry_after.to_string()));
            }
            _ => {}
        }
        response.json(Failure {
            message: "failure",
            reason: &self.to_string(),
        })
    }
}

impl From<Invalid> for ApiError {
    fn from(e: Invalid) -> Self {
        ApiError::Validation(e.0)
    }
}

/// The JSON 404 of every path a role does not serve.
pub async fn no_route(req: actix_web::HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound(format!(
        "No route for {} {}",
        req.method(),
        req.path()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::to_bytes;

    #[actix_web::test]
    async fn errors_render_as_json_failures() {
        let response = ApiError::Forbidden("Invalid session".into()).error_response();
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        let body = to_bytes(response.into_body()).await.unwrap();
        assert_eq!(
            body.as_ref(),
            br#"{"message":"failure","reason":"Invalid session"}"#
        );
    }

    #[test]
    fn unexpected_errors_hide_their_cause() {
        let e = ApiError::Unexpected("pool exhausted at 10.0.0.3".into());
        assert_eq!(e.to_string(), "Internal error");
        assert_eq!(e.log_text(), "pool exhausted at 10.0.0.3");
    }

    #[test]
    fn store_failures_tell_clients_what_and_logs_why() {
        let e = ApiError::from(StoreError::Unavailable {
            store: "cart-data",
            cause: crate::stores::Failure::TimedOut,
        });
        assert_eq!(e.status_code(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(e.to_string(), "cart-data is unavailable");
        assert_eq!(e.log_text(), "cart-data is unavailable: timed out");
        let full = ApiError::from(StoreError::CartFull);
        assert_eq!(full.status_code(), StatusCode::BAD_REQUEST);
    }
}
