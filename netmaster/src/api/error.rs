//! The one mapping from failures to HTTP: every error the API returns says what kind of
//! failure it was (the status and `error` field) and what was wrong (`message`, and the
//! offending `field` or `object` when there is one). Bad input is always a 4xx; a 5xx
//! means the store or this netmaster failed, never the request.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::intent::{IntentError, IntentErrorKind};
use crate::store::StoreError;

/// What kind of failure an [`ApiError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// The request body or URL is malformed or fails validation (400).
    Validation,
    /// The object, or one it refers to, does not exist (404).
    NotFound,
    /// The request contradicts the state: a dependent exists, a subnet overlaps,
    /// an id is taken (409).
    Conflict,
    /// A request without valid credentials (401).
    Unauthorized,
    /// A valid credential that does not allow this request (a host's credential used
    /// for another host, or for anything but what netplugin does) (403).
    Forbidden,
    /// The method is not allowed on this URL (405).
    MethodNotAllowed,
    /// The body is larger than the limit (413).
    TooLarge,
    /// The body is not JSON (415).
    UnsupportedMediaType,
    /// This netmaster cannot serve writes right now (no leader known, store down) (503).
    Unavailable,
    /// A bug or an unexpected store failure (500).
    Internal,
}

impl ErrorKind {
    /// Every kind, for the OpenAPI document (the match below keeps this list whole: a new
    /// kind does not compile until it is added here).
    pub const ALL: [ErrorKind; 10] = [
        ErrorKind::Validation,
        ErrorKind::NotFound,
        ErrorKind::Conflict,
        ErrorKind::Unauthorized,
        ErrorKind::Forbidden,
        ErrorKind::MethodNotAllowed,
        ErrorKind::TooLarge,
        ErrorKind::UnsupportedMediaType,
        ErrorKind::Unavailable,
        ErrorKind::Internal,
    ];

    /// Its `error` string.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Validation => "validation",
            ErrorKind::NotFound => "not-found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::MethodNotAllowed => "method-not-allowed",
            ErrorKind::TooLarge => "too-large",
            ErrorKind::UnsupportedMediaType => "unsupported-media-type",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Internal => "internal",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            ErrorKind::Validation => StatusCode::BAD_REQUEST,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorKind::Forbidden => StatusCode::FORBIDDEN,
            ErrorKind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// An API failure, rendered as `{"error": kind, "message": ..., "field": ..., "object": ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub error: ErrorKind,
    pub message: String,
    /// The JSON name of the offending field, for validation errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The `plural/key` of the object concerned (not found, conflicts).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
}

impl ApiError {
    pub fn new(error: ErrorKind, message: impl Into<String>) -> ApiError {
        ApiError {
            error,
            message: message.into(),
            field: None,
            object: None,
        }
    }
    pub fn validation(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::Validation, message)
    }
    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError::validation(message).with_field(field)
    }
    pub fn not_found(object: impl Into<String>) -> ApiError {
        let object = object.into();
        ApiError::new(ErrorKind::NotFound, format!("{object} does not exist")).with_object(object)
    }
    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::Conflict, message)
    }
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::Unavailable, message)
    }
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::Internal, message)
    }
    pub fn with_field(mut self, field: impl Into<String>) -> ApiError {
        self.field = Some(field.into());
        self
    }
    pub fn with_object(mut self, object: impl Into<String>) -> ApiError {
        self.object = Some(object.into());
        self
    }
    pub fn status(&self) -> StatusCode {
        self.error.status()
    }
}

impl From<IntentError> for ApiError {
    /// The mapping of the engine's refusals to HTTP.
    fn from(e: IntentError) -> ApiError {
        let error = match e.kind {
            IntentErrorKind::Invalid => ErrorKind::Validation,
            IntentErrorKind::NotFound => ErrorKind::NotFound,
            IntentErrorKind::Conflict => ErrorKind::Conflict,
            IntentErrorKind::ReadOnly => ErrorKind::MethodNotAllowed,
            IntentErrorKind::Unavailable => ErrorKind::Unavailable,
            IntentErrorKind::Internal => ErrorKind::Internal,
        };
        ApiError {
            error,
            message: e.message,
            field: e.field,
            object: e.object,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        IntentError::from(e).into()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status(), Json(self)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_serialized_kinds() {
        for k in ErrorKind::ALL {
            assert_eq!(serde_json::to_value(k).unwrap(), k.name());
        }
    }
}
