//! What replicas share: rate-limit and budget counters and provider circuit state, behind
//! one trait ([`SharedState`]), with an in-memory implementation ([`InMemoryState`]) for
//! one process. gateway-http adds the Redis one; the response cache has its own trait
//! ([`crate::cache::Cache`]) and the same two backends.
//!
//! The arithmetic is here, pure: which window a counter is in, what a request is charged,
//! when a circuit opens. A backend only stores numbers and applies the check atomically,
//! so the in-memory and Redis backends cannot disagree about what a limit means.

mod circuit;
mod limits;
mod memory;

use std::time::{Duration, SystemTime};

pub use circuit::{CIRCUIT_WINDOW, CircuitPolicy, CircuitState, CircuitView, DEFAULT_FAILURE_STATUS_CODES};
pub(crate) use limits::civil_from_days;
pub use limits::{
    Charge, Estimate, LimitKind, LimitScope, UsageLimits, Window, day_window, metadata_scopes, micro_usd,
    minute_window, month_window,
};
pub use memory::InMemoryState;

/// A counter change after the answer: the real amount minus what was reserved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adjustment {
    /// The counter's key (its window included).
    pub key: String,
    /// What to add (negative gives back an over-estimate).
    pub delta: i64,
}

/// Why a shared-state call could not be answered (Redis down, say): the caller decides
/// what that means (limits follow the server's `--redis-down` rule; a circuit is closed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("shared state unavailable: {0}")]
pub struct StateUnavailable(pub String);

/// Shared counters and circuit state. Implementations: [`InMemoryState`] (one process)
/// and gateway-http's Redis backend (every replica).
///
/// Calls on the request's path ([`SharedState::reserve`], [`SharedState::circuit`]) are
/// async and cost a Redis backend at most one round trip; the ones after the answer
/// ([`SharedState::settle`], [`SharedState::report`]) return at once and may be applied
/// later, in batches.
#[async_trait::async_trait]
pub trait SharedState: Send + Sync + std::fmt::Debug {
    /// Check every charge against its limit and, only when none refuses, add each one's
    /// amount to its counter; atomically, as one step. `Ok(Some(i))`: charge `i` refused
    /// and nothing was added.
    async fn reserve(&self, charges: &[Charge]) -> Result<Option<usize>, StateUnavailable>;

    /// Apply the real figures once an answer has ended.
    fn settle(&self, adjustments: Vec<Adjustment>);

    /// Whether `target` may be called at `now`. When its cool-down has passed, one caller
    /// (across every replica) gets [`CircuitView::Probe`] and the others keep skipping it
    /// until the probe's outcome is reported.
    async fn circuit(&self, target: &str, policy: &CircuitPolicy, now: SystemTime) -> CircuitView;

    /// Report an attempt's outcome for `target`: `failed` when its status counts as a
    /// failure under `policy`, with the upstream's `Retry-After`, if any.
    fn report(
        &self,
        target: &str,
        policy: &CircuitPolicy,
        failed: bool,
        retry_after: Option<Duration>,
        now: SystemTime,
    );
}

/// Milliseconds since the Unix epoch (0 before it).
pub fn epoch_ms(time: SystemTime) -> i64 {
    time.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
