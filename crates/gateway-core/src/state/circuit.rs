//! Provider health: a target that keeps failing is skipped for a cool-down instead of
//! being hit by every request (Portkey's `strategy.cb_config`).
//!
//! Closed → open when, within a 60-second window, failures reach `failure_threshold`, or
//! their share reaches `failure_threshold_percentage` once `minimum_requests` were made.
//! Open → after `cooldown_interval` (or the upstream's longer `Retry-After`), one probe
//! request is let through: success closes the circuit, failure opens it again.

use std::time::Duration;

use serde_json::Value;

use crate::error::GatewayError;
use crate::json_path::JsonPath;

/// The statuses that count as failures when `failure_status_codes` is not set: rate
/// limits, timeouts and the server errors (a connection failure is reported as 502).
pub const DEFAULT_FAILURE_STATUS_CODES: [u16; 7] = [408, 429, 500, 502, 503, 504, 529];

/// Failures are counted in windows of this length.
pub const CIRCUIT_WINDOW: Duration = Duration::from_secs(60);
const WINDOW_MS: i64 = 60_000;

/// The longest cool-down an upstream's `Retry-After` may ask for.
const MAX_COOLDOWN: Duration = Duration::from_secs(3600);

/// `cb_config`.
#[derive(Debug, Clone, PartialEq)]
pub struct CircuitPolicy {
    /// Failures in the window that open the circuit.
    pub failure_threshold: Option<u32>,
    /// Share of failed requests (percent) in the window that opens it, once
    /// `minimum_requests` were made.
    pub failure_threshold_percentage: Option<f64>,
    /// Requests in the window before the percentage counts (default 5).
    pub minimum_requests: u32,
    /// How long an open circuit skips its target.
    pub cooldown: Duration,
    /// Statuses that count as failures.
    pub failure_status_codes: Vec<u16>,
}

impl CircuitPolicy {
    /// Read `cb_config` at `at`, reporting every bad field.
    pub fn parse(value: &Value, at: &JsonPath, errors: &mut Vec<GatewayError>) -> Option<Self> {
        let Value::Object(map) = value else {
            errors.push(GatewayError::config(at.as_str(), "`cb_config` must be an object"));
            return None;
        };
        let before = errors.len();
        let mut policy = Self {
            failure_threshold: None,
            failure_threshold_percentage: None,
            minimum_requests: 5,
            cooldown: Duration::from_secs(30),
            failure_status_codes: DEFAULT_FAILURE_STATUS_CODES.to_vec(),
        };
        let mut bad = |field: &str, why: &str| errors.push(GatewayError::config(at.key(field).as_str(), why));
        for (field, value) in map {
            match field.as_str() {
                "failure_threshold" => match value.as_u64().and_then(|n| u32::try_from(n).ok()).filter(|n| *n >= 1) {
                    Some(n) => policy.failure_threshold = Some(n),
                    None => bad(field, "`failure_threshold` is a whole number of failures, at least 1"),
                },
                "failure_threshold_percentage" => match value.as_f64().filter(|p| *p > 0.0 && *p <= 100.0) {
                    Some(p) => policy.failure_threshold_percentage = Some(p),
                    None => bad(field, "`failure_threshold_percentage` is a percentage above 0, at most 100"),
                },
                "minimum_requests" => match value.as_u64().and_then(|n| u32::try_from(n).ok()).filter(|n| *n >= 1) {
                    Some(n) => policy.minimum_requests = n,
                    None => bad(field, "`minimum_requests` is a whole number, at least 1"),
                },
                "cooldown_interval" => match value.as_u64().filter(|ms| (1000..=86_400_000).contains(ms)) {
                    Some(ms) => policy.cooldown = Duration::from_millis(ms),
                    None => bad(field, "`cooldown_interval` is milliseconds, from 1000 to 86400000"),
                },
                "failure_status_codes" => {
                    match value.as_array().and_then(|codes| {
                        codes.iter().map(|c| c.as_u64().and_then(|c| u16::try_from(c).ok())).collect::<Option<Vec<_>>>()
                    }) {
                        Some(codes) if codes.iter().all(|c| (100..=599).contains(c)) => {
                            policy.failure_status_codes = codes;
                        }
                        _ => bad(field, "`failure_status_codes` is a list of HTTP statuses"),
                    }
                }
                _ => bad(
                    field,
                    "unknown field (expected failure_threshold, failure_threshold_percentage, minimum_requests, \
                     cooldown_interval, failure_status_codes)",
                ),
            }
        }
        if policy.failure_threshold.is_none() && policy.failure_threshold_percentage.is_none() {
            errors.push(GatewayError::config(
                at.as_str(),
                "`cb_config` needs `failure_threshold` or `failure_threshold_percentage`",
            ));
        }
        (errors.len() == before).then_some(policy)
    }

    /// Whether an attempt with this status counts as a failure.
    pub fn counts(&self, status: u16) -> bool {
        self.failure_status_codes.contains(&status)
    }

    /// The cool-down after a failure, longer when the upstream asked for it.
    pub fn cooldown_after(&self, retry_after: Option<Duration>) -> Duration {
        retry_after.map_or(self.cooldown, |asked| asked.min(MAX_COOLDOWN).max(self.cooldown))
    }

    /// Whether a window with these counts opens the circuit.
    pub fn trips(&self, requests: u32, failures: u32) -> bool {
        self.failure_threshold.is_some_and(|n| failures >= n)
            || self.failure_threshold_percentage.is_some_and(|p| {
                requests >= self.minimum_requests && f64::from(failures) * 100.0 >= p * f64::from(requests)
            })
    }
}

/// What a circuit says about calling its target now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitView {
    /// Call it.
    Closed,
    /// Skip it until the cool-down ends (ms since the epoch).
    Open {
        /// When the cool-down ends.
        until_ms: i64,
    },
    /// The cool-down has ended: this request is the probe.
    Probe,
}

/// One target's circuit: the in-memory backend keeps these; the Redis backend keeps the
/// same fields in a hash and applies the same steps in Lua.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CircuitState {
    /// When the counting window started (ms since the epoch).
    pub window_start: i64,
    /// Requests in the window.
    pub requests: u32,
    /// Failures in the window.
    pub failures: u32,
    /// When the cool-down ends (0: closed).
    pub open_until: i64,
    /// Until when a probe is out (0: none).
    pub probe_until: i64,
}

impl CircuitState {
    /// Whether the target may be called at `now`, claiming the probe when the cool-down
    /// has ended and nobody holds it. A probe that never reports frees its claim after
    /// one more cool-down.
    pub fn admit(&mut self, policy: &CircuitPolicy, now: i64) -> CircuitView {
        if self.open_until == 0 {
            return CircuitView::Closed;
        }
        if now < self.open_until || now < self.probe_until {
            return CircuitView::Open { until_ms: self.open_until.max(self.probe_until) };
        }
        self.probe_until = now + duration_ms(policy.cooldown);
        CircuitView::Probe
    }

    /// Count an outcome at `now`.
    pub fn report(&mut self, policy: &CircuitPolicy, failed: bool, retry_after: Option<Duration>, now: i64) {
        if self.open_until != 0 {
            if now < self.open_until {
                // An answer to a request sent before the circuit opened.
                return;
            }
            // The probe's answer decides.
            *self = if failed {
                Self { open_until: now + duration_ms(policy.cooldown_after(retry_after)), ..Self::default() }
            } else {
                Self::default()
            };
            return;
        }
        if now - self.window_start >= WINDOW_MS {
            *self = Self { window_start: now, ..Self::default() };
        }
        self.requests += 1;
        self.failures += u32::from(failed);
        if failed && policy.trips(self.requests, self.failures) {
            *self = Self { open_until: now + duration_ms(policy.cooldown_after(retry_after)), ..Self::default() };
        }
    }

    /// Whether this state says nothing a fresh one would not (safe to forget at `now`).
    pub fn is_idle(&self, now: i64) -> bool {
        self.open_until == 0 && now - self.window_start >= WINDOW_MS
    }
}

fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 2)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn policy(config: Value) -> CircuitPolicy {
        CircuitPolicy::parse(&config, &JsonPath::root(), &mut Vec::new()).unwrap()
    }

    #[test]
    fn failures_open_the_circuit_and_one_probe_closes_or_reopens_it() {
        let p = policy(json!({"failure_threshold": 2, "cooldown_interval": 1000}));
        let mut s = CircuitState::default();
        s.report(&p, true, None, 0);
        assert_eq!(s.admit(&p, 1), CircuitView::Closed);
        s.report(&p, true, None, 2);
        assert_eq!(s.admit(&p, 3), CircuitView::Open { until_ms: 1002 });
        // A late answer to a request sent before it opened changes nothing.
        s.report(&p, false, None, 500);
        assert_eq!(s.admit(&p, 1002), CircuitView::Probe);
        assert!(matches!(s.admit(&p, 1003), CircuitView::Open { .. }), "one probe at a time");
        s.report(&p, true, Some(Duration::from_secs(5)), 1100);
        assert_eq!(s.admit(&p, 1200), CircuitView::Open { until_ms: 6100 }, "Retry-After lengthens the cool-down");
        assert_eq!(s.admit(&p, 6100), CircuitView::Probe);
        s.report(&p, false, None, 6150);
        assert_eq!(s.admit(&p, 6151), CircuitView::Closed);
    }

    #[test]
    fn a_percentage_waits_for_the_minimum_requests_and_windows_reset() {
        let p = policy(json!({"failure_threshold_percentage": 50, "minimum_requests": 4}));
        let mut s = CircuitState::default();
        for (i, failed) in [true, true, false].into_iter().enumerate() {
            s.report(&p, failed, None, i as i64);
        }
        assert_eq!(s.admit(&p, 10), CircuitView::Closed, "3 requests are under the minimum of 4");
        s.report(&p, false, None, 70_000);
        assert_eq!((s.requests, s.failures), (1, 0), "a new window");
        for i in 0..3 {
            s.report(&p, i > 0, None, 70_001 + i);
        }
        assert!(matches!(s.admit(&p, 70_010), CircuitView::Open { .. }));
    }

    #[test]
    fn cb_config_is_checked_field_by_field() {
        let mut errors = Vec::new();
        let bad = json!({"failure_threshold": 0, "cooldown_interval": 5, "failure_status_codes": [700], "x": 1});
        assert!(CircuitPolicy::parse(&bad, &JsonPath::root().key("cb_config"), &mut errors).is_none());
        let paths: Vec<_> = errors.iter().filter_map(|e| e.param.clone()).collect();
        for want in [
            "cb_config.failure_threshold",
            "cb_config.cooldown_interval",
            "cb_config.failure_status_codes",
            "cb_config.x",
            "cb_config",
        ] {
            assert!(paths.iter().any(|p| p == want), "{want} in {paths:?}");
        }
        assert!(policy(json!({"failure_threshold": 1})).counts(502));
        assert!(!policy(json!({"failure_threshold": 1, "failure_status_codes": [500]})).counts(502));
    }
}
