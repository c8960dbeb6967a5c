//! Why the intent engine or a kind's rules refused a request. It knows nothing of HTTP:
//! `api::error` maps each [`IntentErrorKind`] to a status, in one place.

use contiv_model::ValidationError;

use crate::ipam::IpamError;
use crate::store::StoreError;

/// What kind of refusal an [`IntentError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntentErrorKind {
    /// The object or request fails validation.
    Invalid,
    /// The object, or one it refers to, does not exist.
    NotFound,
    /// The request contradicts the state: a dependent exists, a subnet overlaps, an id
    /// is taken, an address is exhausted.
    Conflict,
    /// The kind cannot be written through the API (endpoints are netplugin's).
    ReadOnly,
    /// The engine cannot serve the request right now (store down, no global object yet).
    Unavailable,
    /// A bug or unreadable stored state.
    Internal,
}

/// A refusal, with what was wrong and the offending field or object when there is one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct IntentError {
    pub kind: IntentErrorKind,
    pub message: String,
    /// The JSON name of the offending field.
    pub field: Option<String>,
    /// The `plural/key` of the object concerned.
    pub object: Option<String>,
}

impl IntentError {
    pub fn new(kind: IntentErrorKind, message: impl Into<String>) -> IntentError {
        IntentError {
            kind,
            message: message.into(),
            field: None,
            object: None,
        }
    }
    pub fn validation(message: impl Into<String>) -> IntentError {
        IntentError::new(IntentErrorKind::Invalid, message)
    }
    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> IntentError {
        IntentError::validation(message).with_field(field)
    }
    /// `object` (`plural/key`) does not exist.
    pub fn not_found(object: impl Into<String>) -> IntentError {
        let object = object.into();
        IntentError::new(
            IntentErrorKind::NotFound,
            format!("{object} does not exist"),
        )
        .with_object(object)
    }
    pub fn conflict(message: impl Into<String>) -> IntentError {
        IntentError::new(IntentErrorKind::Conflict, message)
    }
    pub fn read_only(message: impl Into<String>) -> IntentError {
        IntentError::new(IntentErrorKind::ReadOnly, message)
    }
    pub fn unavailable(message: impl Into<String>) -> IntentError {
        IntentError::new(IntentErrorKind::Unavailable, message)
    }
    pub fn internal(message: impl Into<String>) -> IntentError {
        IntentError::new(IntentErrorKind::Internal, message)
    }
    pub fn with_field(mut self, field: impl Into<String>) -> IntentError {
        self.field = Some(field.into());
        self
    }
    pub fn with_object(mut self, object: impl Into<String>) -> IntentError {
        self.object = Some(object.into());
        self
    }
}

impl From<StoreError> for IntentError {
    fn from(e: StoreError) -> IntentError {
        match e {
            StoreError::Unavailable(m) => {
                IntentError::unavailable(format!("state store unavailable: {m}"))
            }
            other => IntentError::internal(format!("state store: {other}")),
        }
    }
}

impl From<ValidationError> for IntentError {
    fn from(e: ValidationError) -> IntentError {
        IntentError::invalid_field(e.field, e.message)
    }
}

impl From<IpamError> for IntentError {
    /// Unreadable pool state is ours; exhaustion and overlaps are conflicts; the rest is
    /// bad input.
    fn from(e: IpamError) -> IntentError {
        match e {
            IpamError::CorruptState { .. } | IpamError::UnsupportedStateVersion { .. } => {
                IntentError::internal(e.to_string())
            }
            IpamError::Exhausted { .. }
            | IpamError::AlreadyAllocated { .. }
            | IpamError::EpgPoolOverlap { .. }
            | IpamError::EpgPoolAllocated { .. }
            | IpamError::EpgPoolInUse { .. } => IntentError::conflict(e.to_string()),
            _ => IntentError::validation(e.to_string()),
        }
    }
}
