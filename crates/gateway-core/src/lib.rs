//! # gateway-core
//!
//! The Gatewise engine: Portkey-compatible gateway configs, conditional routing,
//! provider transforms and the retry/fallback orchestration — with no I/O of its own.
//!
//! ```text
//! OpenAI-shaped request + RequestOptions { config, metadata, ... }
//!   -> config::Config        (validated and compiled once)
//!   -> router                (single / fallback / loadbalance / conditional)
//!   -> providers::Provider   (pure: build the upstream request, parse the answer)
//!   -> engine::Transport     (the only I/O, supplied by gateway-http or a test fake)
//!   -> engine::Response      (body or stream + RouteInfo)
//! ```
#![deny(missing_docs)]

pub mod body_shape;
pub mod cache;
pub mod config;
pub mod engine;
pub mod error;
pub mod hex_id;
pub mod hooks;
pub mod interpolate;
mod json;
pub mod json_path;
pub mod pricing;
pub mod prompts;
pub mod providers;
pub mod query;
pub mod registry;
pub mod request;
pub mod rng;
pub mod router;
pub mod settings;
pub mod sse;
pub mod state;
pub mod usage;

pub use config::Config;
pub use engine::{Answer, Engine, RequestOptions, Response, ResponseBody, RouteInfo, Transport};
pub use error::{ConfigErrors, ErrorCode, FieldError, GatewayError};
pub use request::{Dialect, Endpoint, GatewayRequest, RequestBody};
