//! The local HTTP JSON API: what every command but `init` and `demo` talks to.
//!
//! Loopback only; every request carries `Authorization: Bearer <token>` from the data dir's
//! `api.token` (0600). Routes are listed in [`routes`] and documented in the README.

pub mod client;
pub mod http;
pub mod routes;
pub mod server;
pub mod views;

/// An API failure: an HTTP status and a message for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
}

impl ApiError {
    pub fn bad(message: impl Into<String>) -> Self {
        Self {
            status: 400,
            message: message.into(),
        }
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self {
            status: 404,
            message: message.into(),
        }
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self {
            status: 409,
            message: message.into(),
        }
    }
    pub fn internal(message: impl std::fmt::Display) -> Self {
        Self {
            status: 500,
            message: message.to_string(),
        }
    }
    pub fn timeout(message: impl Into<String>) -> Self {
        Self {
            status: 504,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (HTTP {})", self.message, self.status)
    }
}

impl std::error::Error for ApiError {}

pub type ApiResult = Result<serde_json::Value, ApiError>;
