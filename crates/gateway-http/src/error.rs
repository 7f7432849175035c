//! Errors of the HTTP layer itself (startup, files), as opposed to routed requests, whose
//! errors are `gateway_core::GatewayError`s rendered in the OpenAI shape.

/// One error enum for the crate.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// Building the HTTP client failed.
    #[error("transport: {0}")]
    Transport(String),
    /// Binding or serving failed.
    #[error("server: {0}")]
    Io(#[from] std::io::Error),
    /// A config file could not be read or is invalid.
    #[error("{path}: {message}")]
    Config {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
}
