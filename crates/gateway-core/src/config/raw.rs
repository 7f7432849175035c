//! The config as users write it (after key normalisation), before compilation.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One node of the config tree: a group (`strategy` + `targets`) or a leaf (a provider
/// and its credentials). Provider-specific fields (`resource_name`, `aws_region`, ...)
/// land in `provider_options`; the JSON Schema decides which ones exist.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct RawNode {
    /// How `targets` are used; absent on leaves.
    pub strategy: Option<RawStrategy>,
    /// Children of a group.
    pub targets: Option<Vec<RawNode>>,
    /// Name used by conditional routing.
    pub name: Option<String>,
    /// Provider slug.
    pub provider: Option<String>,
    /// Provider credential.
    pub api_key: Option<String>,
    /// Hosted-Portkey virtual key (not supported: there is no key store).
    pub virtual_key: Option<String>,
    /// Loadbalance weight (default 1).
    pub weight: Option<f64>,
    /// Merged over the request body.
    pub override_params: Option<Map<String, Value>>,
    /// Retry policy.
    pub retry: Option<RawRetry>,
    /// Per-attempt timeout, ms.
    pub request_timeout: Option<u64>,
    /// Response cache.
    pub cache: Option<RawCache>,
    /// Replaces the provider's base URL.
    pub custom_host: Option<String>,
    /// Caller headers copied to the upstream.
    pub forward_headers: Option<Vec<String>>,
    /// Map provider finish reasons to OpenAI's (default true).
    pub strict_open_ai_compliance: Option<bool>,
    /// Circuit-breaker id (accepted and unused: circuits are kept per target).
    pub id: Option<String>,
    /// Accepted for Portkey compatibility; unused (as in Portkey).
    pub on_status_codes: Option<Vec<u16>>,
    /// Guardrail hooks run on the request (see [`crate::hooks`]).
    pub before_request_hooks: Option<Value>,
    /// Guardrail hooks run on the answer.
    pub after_request_hooks: Option<Value>,
    /// Shorthand for before-request guardrails.
    pub input_guardrails: Option<Value>,
    /// Shorthand for after-request guardrails.
    pub output_guardrails: Option<Value>,
    /// Mutator shorthand (refused: not supported).
    pub input_mutators: Option<Value>,
    /// Mutator shorthand (refused: not supported).
    pub output_mutators: Option<Value>,
    /// Provider-specific fields, verbatim.
    #[serde(flatten)]
    pub provider_options: Map<String, Value>,
}

/// `strategy` of a group.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct RawStrategy {
    /// `single`, `fallback`, `loadbalance` or `conditional`.
    pub mode: String,
    /// Fallback trigger statuses.
    pub on_status_codes: Option<Vec<u16>>,
    /// Conditional routing rules.
    pub conditions: Option<Vec<RawCondition>>,
    /// Conditional default target name.
    pub default: Option<String>,
    /// Circuit-breaker settings, inherited by every target below.
    pub cb_config: Option<Value>,
}

/// One conditional rule.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct RawCondition {
    /// The query.
    pub query: Value,
    /// Target name to route to.
    pub then: String,
}

/// `retry`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct RawRetry {
    /// Retries after the first try, 0..=5.
    pub attempts: u8,
    /// Statuses that trigger a retry.
    pub on_status_codes: Option<Vec<u16>>,
    /// Honour Retry-After headers on 429/503.
    pub use_retry_after_header: Option<bool>,
}

/// `cache`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct RawCache {
    /// `simple` (or `semantic`, rejected).
    pub mode: String,
    /// Seconds.
    pub max_age: Option<u64>,
}
