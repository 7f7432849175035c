//! Per-request options: what the outside world (headers, binding arguments) tells the
//! engine about one request beyond its body. The protocol layer in gateway-http fills
//! them; the engine reads them.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::config::Config;
use crate::providers::ProviderTarget;

/// Per-request options: everything `x-portkey-*` headers or binding arguments carry.
#[derive(Debug, Clone, Default)]
pub struct RequestOptions {
    /// The config; `None` means "use `provider`".
    pub config: Option<Arc<Config>>,
    /// The request's own provider (`x-portkey-provider` + `Authorization`): used alone when
    /// there is no config, else as the outermost ancestor for leaves without one.
    pub provider: Option<Arc<ProviderTarget>>,
    /// `x-portkey-metadata`.
    pub metadata: Arc<Value>,
    /// The name of the gateway key the request brought (for the request log).
    pub key: Option<Arc<str>>,
    /// The registry prompt the request was rendered from (route info and the log).
    pub prompt: Option<Arc<crate::prompts::PromptRef>>,
    /// The request's own rate limits and budgets: its gateway key's, and those its
    /// metadata selects (`limits_by_metadata`). A provider entry's come with the entry.
    pub limits: Arc<[crate::state::LimitScope]>,
    /// The request's W3C trace context (`traceparent`, or a trace the server starts).
    pub trace_context: Option<super::TraceContext>,
    /// `x-portkey-trace-id`.
    pub trace_id: Option<String>,
    /// `x-portkey-custom-host`: overrides every target's `custom_host`.
    pub custom_host: Option<String>,
    /// `x-portkey-request-timeout`: overrides every target's `request_timeout`.
    pub request_timeout: Option<Duration>,
    /// `x-portkey-forward-headers`: overrides every target's `forward_headers`.
    pub forward_headers: Option<Vec<String>>,
    /// `x-portkey-cache-force-refresh`.
    pub cache_force_refresh: bool,
    /// `x-portkey-cache-namespace`.
    pub cache_namespace: Option<String>,
    /// The gateways this request has passed through, this one last: sent upstream as
    /// [`super::VIA_HEADER`] so a gateway that is called again by its own request can tell
    /// (set by the server; `None` sends nothing).
    pub via: Option<http::HeaderValue>,
}
