//! What one request may cost the gateway, whatever its config says: a nested fallback
//! tree with retries must not turn one request into hundreds of upstream calls, and an
//! upstream that never answers (or answers a gigabyte) must not hold a worker or its
//! memory. The operator sets these (`gatewise serve` flags, [`crate::Engine::with_limits`]);
//! a request cannot raise them.

use std::time::{Duration, Instant};

use crate::error::{ErrorCode, GatewayError};

/// Per-request limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Upstream attempts per request, every retry and fallback together.
    pub max_attempts: usize,
    /// From the request's start until its answer starts (the whole body of a non-streamed
    /// answer, the first chunk of a stream), backoff sleeps included. A stream that has
    /// started is bounded by the transport's idle timeout instead, not by this.
    pub deadline: Duration,
    /// How long an attempt waits for the upstream's answer when neither the request nor
    /// its target sets `request_timeout`.
    pub attempt_timeout: Duration,
    /// Largest non-streamed upstream answer kept, in bytes.
    pub max_response_bytes: usize,
}

/// Largest upstream error body read; a longer one is reported without its text.
pub(crate) const MAX_ERROR_BODY_BYTES: usize = 1024 * 1024;

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_attempts: 32,
            deadline: Duration::from_secs(300),
            attempt_timeout: Duration::from_secs(120),
            max_response_bytes: 64 * 1024 * 1024,
        }
    }
}

/// One request's use of its limits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Budget {
    pub(crate) limits: Limits,
    /// When the deadline passes.
    pub(crate) deadline: Instant,
}

/// Why an attempt may not start, or how long it may wait.
pub(crate) enum Allowance {
    /// Wait at most `limit` for the answer.
    Wait(Wait),
    /// No attempt may start.
    Refused(GatewayError),
}

/// How long an attempt may wait for its answer, and what set that.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Wait {
    pub(crate) limit: Duration,
    pub(crate) set_by: WaitSetBy,
}

/// What bounds an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WaitSetBy {
    /// `request_timeout` (the header or the target's).
    RequestTimeout,
    /// The gateway's default attempt timeout.
    Default,
    /// The request's overall deadline, which comes first.
    Deadline,
}

impl Budget {
    pub(crate) fn new(limits: Limits, now: Instant) -> Self {
        // A deadline past what the clock can count means "none".
        let deadline = now.checked_add(limits.deadline).unwrap_or(now + Duration::from_secs(100 * 365 * 86_400));
        Self { limits, deadline }
    }

    /// Time left before the deadline.
    pub(crate) fn remaining(&self, now: Instant) -> Duration {
        self.deadline.saturating_duration_since(now)
    }

    /// Whether attempt number `made + 1` may start, and how long it may wait.
    pub(crate) fn allow(&self, made: usize, own_timeout: Option<Duration>, now: Instant) -> Allowance {
        if made >= self.limits.max_attempts {
            return Allowance::Refused(GatewayError::new(
                ErrorCode::AttemptLimitReached,
                format!(
                    "this request made {made} upstream attempts, the most one request may make \
                     (retries and fallbacks together); the last one failed as reported in the route"
                ),
            ));
        }
        let left = self.remaining(now);
        if left.is_zero() {
            return Allowance::Refused(self.deadline_error());
        }
        let (own, set_by) = match own_timeout {
            Some(own) => (own, WaitSetBy::RequestTimeout),
            None => (self.limits.attempt_timeout, WaitSetBy::Default),
        };
        Allowance::Wait(if left < own {
            Wait { limit: left, set_by: WaitSetBy::Deadline }
        } else {
            Wait { limit: own, set_by }
        })
    }

    pub(crate) fn deadline_error(&self) -> GatewayError {
        GatewayError::new(
            ErrorCode::DeadlineExceeded,
            format!(
                "the request's deadline of {} s passed before an answer started (retries, fallbacks and waits included)",
                self.limits.deadline.as_secs()
            ),
        )
    }
}
