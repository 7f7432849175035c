//! The protocol layer: the only translation between the outside world and the engine.
//!
//! ```text
//! x-portkey-* headers ─┐
//! client options ──────┼─> Options (options.rs, declared once) ─> Resolver ─> RequestOptions
//! per-call options ────┘        one overlay: client < with_options < call < headers
//! HTTP parts ──────────────> GatewayRequest (request.rs)
//! engine Response ─────────> status, route headers, SSE frames, OpenAI error JSON (respond.rs)
//! GatewayError ────────────> binding error class and fields (errors.rs)
//! ```
//!
//! The server, the client facade and both bindings use only this module, so a header,
//! a Python keyword and a Node option cannot drift apart.

mod auth;
mod configs;
mod endpoints;
mod errors;
mod hops;
mod multipart;
mod options;
mod prompts;
mod request;
mod resolve;
mod respond;
mod route;

pub use auth::{apply_key, authenticate, check_scope};
pub use configs::{ConfigNames, ConfigStore, RegistryView};
pub use endpoints::{BodyKind, RESOURCES, Resource, resource};
pub use errors::{ErrorClass, error_fields};
pub use hops::{MAX_HOPS, VIA, next_hop};
pub use multipart::{FilePart, multipart_body};
pub use options::{
    BaseUrl, ConfigRef, Fields, Flag, HeaderNames, Metadata, Millis, OPTIONS, OptionSpec, OptionValue, Options,
    PROVIDER_FIELD_HEADERS, Text,
};
pub use prompts::{PromptCall, PromptOutcome, prompt_request, rendered_json, rendered_reply};
pub use request::{gateway_request, read_body};
pub use resolve::{Resolved, Resolver, address_model, api_key_env_vars};
pub use respond::{
    HttpReply, HttpReplyBody, TRACE_ID, anthropic_frames, dialect_of, error, not_relayed, render, route_headers,
    sse_frames,
};
pub use route::{route_json, route_json_text};
