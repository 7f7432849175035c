//! # gateway-http
//!
//! Everything in Gatewise that touches the world: the hyper [`transport`], the
//! [`protocol`] layer (the only translation between the outside and the engine), the
//! OpenAI-compatible [`server`], the in-process [`client`] the bindings wrap, the
//! [`egress`] (SSRF) policy, and the `gatewise` CLI.
#![deny(missing_docs)]

pub mod cli;
pub mod client;
pub mod credentials;
pub mod egress;
pub mod error;
mod h1;
mod pool;
pub mod protocol;
pub mod redis_state;
pub mod registry;
pub mod server;
pub mod telemetry;
pub mod transport;
pub mod upgrade;

pub use error::HttpError;
pub use transport::{HyperTransport, TransportOptions};

use std::sync::Arc;

/// An engine over the hyper transport with the given options: the usual way to embed
/// Gatewise in a Rust program.
pub fn engine(options: TransportOptions) -> Result<gateway_core::Engine, HttpError> {
    Ok(gateway_core::Engine::new(Arc::new(HyperTransport::new(options)?)))
}
