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

use gateway_core::engine::RouteInfo;
use serde_json::Value;

/// Route info as JSON, the one shape both bindings expose (`r.route`).
pub fn route_json(route: &RouteInfo) -> Value {
    // A stream's usage and cost are known once it has ended.
    let route = route.settled();
    serde_json::json!({
        "provider": route.provider,
        "model": route.model,
        "option_index": route.option_index,
        "retry_count": route.retry_count,
        "cache_status": route.cache_status.as_str(),
        "trace_id": route.trace_id,
        "dropped_params": route.dropped_params,
        "usage": route.usage,
        "cost": route.cost,
        "ttft_ms": route.ttft.map(|t| t.as_secs_f64() * 1000.0),
        "skipped": route.skipped.iter().map(|s| serde_json::json!({
            "option_index": s.option_index,
            "provider": s.provider,
        })).collect::<Vec<_>>(),
        "limit": route.limit,
        "prompt": route.prompt.as_ref().map(|p| serde_json::json!({"id": p.id, "version": p.version})),
        "hook_results": route.hooks.as_ref().map(gateway_core::hooks::HookReport::to_json),
        "attempts": route.attempts.iter().map(|a| serde_json::json!({
            "option_index": a.option_index,
            "provider": a.provider,
            "status": a.status,
            "error": a.error.map(|c| c.as_str()),
            "duration_ms": a.duration.as_secs_f64() * 1000.0,
        })).collect::<Vec<_>>(),
    })
}
