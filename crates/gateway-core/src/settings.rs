//! The per-leaf settings a config sets and its children inherit (see SPEC.md
//! "Inheritance"): what the engine needs to call one target, apart from the provider.

use std::time::Duration;

use serde_json::{Map, Value};

/// Settings that flow down the tree (see SPEC.md "Inheritance").
#[derive(Debug, Clone, Default)]
pub struct TargetSettings {
    /// Merged down the tree; child keys win; the result wins over the request body.
    pub override_params: Map<String, Value>,
    /// Retry policy (replaced, not merged, by a child's).
    pub retry: RetryPolicy,
    /// Response cache policy.
    pub cache: Option<CachePolicy>,
    /// Per-attempt timeout.
    pub request_timeout: Option<Duration>,
    /// Replaces the provider's base URL.
    pub custom_host: Option<String>,
    /// Caller headers copied to the upstream (lower-case).
    pub forward_headers: Vec<String>,
    /// Map finish reasons to OpenAI's values and drop provider extras.
    pub strict_open_ai_compliance: bool,
    /// When a failing target is skipped for a cool-down (`strategy.cb_config`).
    pub circuit: Option<std::sync::Arc<crate::state::CircuitPolicy>>,
    /// Guardrail hooks (each phase replaced, not merged, by a child's).
    pub hooks: crate::hooks::Hooks,
}

/// How a leaf retries.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RetryPolicy {
    /// Retries after the first try (0..=5).
    pub attempts: u8,
    /// Statuses that trigger a retry.
    pub on_status_codes: Vec<u16>,
    /// Honour `retry-after-ms` / `x-ms-retry-after-ms` / `retry-after` on 429 and 503.
    pub use_retry_after_header: bool,
}

/// The statuses retried when `retry.on_status_codes` is absent.
pub const DEFAULT_RETRY_STATUS_CODES: [u16; 5] = [429, 500, 502, 503, 504];

/// The largest `retry.attempts` accepted.
pub const MAX_RETRY_ATTEMPTS: u8 = 5;

/// Response cache settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CachePolicy {
    /// Entry lifetime.
    pub max_age: Duration,
}

/// Default cache lifetime: 24 h.
pub const DEFAULT_CACHE_MAX_AGE: Duration = Duration::from_secs(86_400);
