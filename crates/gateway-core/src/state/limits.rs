//! Rate limits and budgets: the `limits` shape of the registry, the windows counters live
//! in, and what one request is charged.
//!
//! - Per-minute limits use a sliding window: the current minute's count plus the previous
//!   minute's, weighted by the part of it still inside the last 60 seconds and rounded up (the common
//!   approximation of a rolling window; it never lets through twice the limit at a minute
//!   boundary, as a fixed window would).
//! - Budgets use fixed calendar windows in UTC: the day, the month.
//!
//! Amounts are integers: requests, tokens, and US dollars in millionths (micro-dollars),
//! so a Redis backend adds them with `INCRBY`, exactly.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::error::GatewayError;
use crate::json_path::JsonPath;

/// One kind of limit: a field of `limits`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitKind {
    /// Requests in any 60 seconds.
    RequestsPerMinute,
    /// Input and output tokens in any 60 seconds.
    TokensPerMinute,
    /// US dollars per UTC day.
    UsdPerDay,
    /// US dollars per UTC calendar month.
    UsdPerMonth,
}

impl LimitKind {
    /// Every kind, as the fields of `limits` are listed.
    pub const ALL: [LimitKind; 4] =
        [Self::RequestsPerMinute, Self::TokensPerMinute, Self::UsdPerDay, Self::UsdPerMonth];

    /// The field name in `limits` (and in errors and logs).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RequestsPerMinute => "requests_per_minute",
            Self::TokensPerMinute => "tokens_per_minute",
            Self::UsdPerDay => "usd_per_day",
            Self::UsdPerMonth => "usd_per_month",
        }
    }

    /// Whether going over it is a spent budget (`budget_exceeded`) rather than a rate
    /// (`rate_limited`).
    pub fn is_budget(self) -> bool {
        matches!(self, Self::UsdPerDay | Self::UsdPerMonth)
    }

    /// The window a counter of this kind is in at `now_ms`.
    pub fn window(self, now_ms: i64) -> Window {
        match self {
            Self::RequestsPerMinute | Self::TokensPerMinute => minute_window(now_ms),
            Self::UsdPerDay => day_window(now_ms),
            Self::UsdPerMonth => month_window(now_ms),
        }
    }
}

/// `limits`: any subset of the four.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct UsageLimits {
    /// Requests per minute.
    pub requests_per_minute: Option<u64>,
    /// Tokens per minute.
    pub tokens_per_minute: Option<u64>,
    /// US dollars per UTC day.
    pub usd_per_day: Option<f64>,
    /// US dollars per UTC month.
    pub usd_per_month: Option<f64>,
}

/// The largest count a limit may set (so sums stay exact in an `i64`).
const MAX_COUNT: u64 = 1_000_000_000_000;
/// The largest budget, US dollars.
const MAX_USD: f64 = 1_000_000_000.0;

impl UsageLimits {
    /// Read `limits` at `at`, reporting every bad field to `errors`.
    pub fn parse(value: &Value, at: &JsonPath, errors: &mut Vec<GatewayError>) -> Option<Self> {
        let Value::Object(map) = value else {
            errors.push(GatewayError::config(
                at.as_str(),
                "`limits` is an object: requests_per_minute, tokens_per_minute, usd_per_day, usd_per_month",
            ));
            return None;
        };
        let mut limits = Self::default();
        let before = errors.len();
        for (field, value) in map {
            let at = at.key(field);
            let Some(kind) = LimitKind::ALL.into_iter().find(|k| k.as_str() == field) else {
                errors.push(GatewayError::config(
                    at.as_str(),
                    "unknown limit (expected requests_per_minute, tokens_per_minute, usd_per_day, usd_per_month)",
                ));
                continue;
            };
            if kind.is_budget() {
                match value.as_f64().filter(|usd| *usd > 0.0 && *usd <= MAX_USD) {
                    Some(usd) if kind == LimitKind::UsdPerDay => limits.usd_per_day = Some(usd),
                    Some(usd) => limits.usd_per_month = Some(usd),
                    None => errors.push(GatewayError::config(
                        at.as_str(),
                        format!("`{field}` is US dollars: a number above 0, at most {MAX_USD}"),
                    )),
                }
            } else {
                match value.as_u64().filter(|n| (1..=MAX_COUNT).contains(n)) {
                    Some(n) if kind == LimitKind::RequestsPerMinute => limits.requests_per_minute = Some(n),
                    Some(n) => limits.tokens_per_minute = Some(n),
                    None => errors.push(GatewayError::config(
                        at.as_str(),
                        format!("`{field}` is a whole number from 1 to {MAX_COUNT}"),
                    )),
                }
            }
        }
        (errors.len() == before).then_some(limits)
    }

    /// `limits_by_metadata`: a metadata field name → the limits each of its values gets.
    pub fn parse_by_metadata(
        value: &Value,
        at: &JsonPath,
        errors: &mut Vec<GatewayError>,
    ) -> Option<Vec<(String, UsageLimits)>> {
        let Value::Object(map) = value else {
            errors.push(GatewayError::config(
                at.as_str(),
                "`limits_by_metadata` maps a metadata field (`_user`, say) to the limits each of its values gets",
            ));
            return None;
        };
        let before = errors.len();
        let out: Vec<(String, UsageLimits)> = map
            .iter()
            .filter_map(|(field, limits)| Some((field.clone(), Self::parse(limits, &at.key(field), errors)?)))
            .collect();
        (errors.len() == before).then_some(out)
    }

    /// The limit of `kind`, in counter units (micro-dollars for budgets).
    pub fn of(&self, kind: LimitKind) -> Option<i64> {
        let count = |n: Option<u64>| n.and_then(|n| i64::try_from(n).ok());
        match kind {
            LimitKind::RequestsPerMinute => count(self.requests_per_minute),
            LimitKind::TokensPerMinute => count(self.tokens_per_minute),
            LimitKind::UsdPerDay => self.usd_per_day.map(micro_usd),
            LimitKind::UsdPerMonth => self.usd_per_month.map(micro_usd),
        }
    }

    /// Whether a request must be estimated (tokens or dollars are limited).
    pub fn needs_estimate(&self) -> bool {
        self.tokens_per_minute.is_some() || self.usd_per_day.is_some() || self.usd_per_month.is_some()
    }

    /// Whether no limit is set.
    pub fn is_empty(&self) -> bool {
        LimitKind::ALL.iter().all(|k| self.of(*k).is_none())
    }
}

/// US dollars in micro-dollars, rounded up (a cost is never under-counted).
pub fn micro_usd(usd: f64) -> i64 {
    if usd.is_finite() && usd > 0.0 { (usd * 1_000_000.0).ceil().min(i64::MAX as f64) as i64 } else { 0 }
}

/// Whom a set of limits applies to: a gateway key, a provider entry, or one value of a
/// metadata field within a key.
#[derive(Debug, Clone, PartialEq)]
pub struct LimitScope {
    /// How errors and the log name it: `key team-a`, `provider openai-prod`,
    /// `key team-a _user=alice`.
    pub name: Arc<str>,
    /// The counters' key prefix: printable, bounded in length whatever a caller's
    /// metadata holds.
    pub counter: Arc<str>,
    /// The limits.
    pub limits: UsageLimits,
}

impl LimitScope {
    /// A gateway key's own limits.
    pub fn key(name: &str, limits: UsageLimits) -> Self {
        Self { name: format!("key {name}").into(), counter: format!("key:{}", safe(name)).into(), limits }
    }

    /// A provider entry's limits.
    pub fn provider(entry: &str, limits: UsageLimits) -> Self {
        Self { name: format!("provider {entry}").into(), counter: format!("provider:{}", safe(entry)).into(), limits }
    }

    /// The limits each value of a metadata `field` gets within a key. The value is
    /// hashed into the counter's name, so a caller's metadata cannot make keys of any
    /// length or shape; the name keeps a bounded prefix of it for people to read.
    pub fn metadata(key: &str, field: &str, value: &str, limits: UsageLimits) -> Self {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(format!("{key}\0{field}\0{value}").as_bytes());
        let shown: String = value.chars().take(64).collect();
        Self {
            name: format!("key {key} {field}={shown}").into(),
            counter: format!("meta:{}", hex::encode(&digest[..16])).into(),
            limits,
        }
    }

    /// What one request is charged against this scope's limits: a request, the
    /// estimated tokens and the estimated cost, each in the window of `now_ms`.
    pub fn charges(&self, scope: usize, estimate: Estimate, now_ms: i64, out: &mut Vec<Charge>) {
        for kind in LimitKind::ALL {
            let Some(limit) = self.limits.of(kind) else { continue };
            let amount = match kind {
                LimitKind::RequestsPerMinute => 1,
                LimitKind::TokensPerMinute => estimate.tokens,
                LimitKind::UsdPerDay | LimitKind::UsdPerMonth => estimate.micro_usd,
            };
            let window = kind.window(now_ms);
            out.push(Charge {
                key: counter_key(&self.counter, kind, window.id),
                previous: (window.previous_weight > 0.0)
                    .then(|| (counter_key(&self.counter, kind, window.id - 1), window.previous_weight)),
                limit,
                amount,
                ttl: window.keep,
                kind,
                scope,
                retry_after: window.ends_in,
            });
        }
    }
}

/// What a request is expected to use, before it is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Estimate {
    /// Input and output tokens.
    pub tokens: i64,
    /// Cost in micro-dollars.
    pub micro_usd: i64,
}

/// A counter's key in one window.
fn counter_key(counter: &str, kind: LimitKind, window: i64) -> String {
    format!("{counter}:{}:{window}", kind.as_str())
}

/// Names from the registry, kept to what a Redis key and a log line carry well.
fn safe(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect()
}

/// One charge: check `limit` against the counter (with the previous window's share for a
/// sliding window), then add `amount`.
#[derive(Debug, Clone, PartialEq)]
pub struct Charge {
    /// The counter in its current window.
    pub key: String,
    /// For a sliding window: the previous window's counter and the share of it that still
    /// counts.
    pub previous: Option<(String, f64)>,
    /// The limit, in the counter's units.
    pub limit: i64,
    /// What this request adds.
    pub amount: i64,
    /// How long the counter must be kept.
    pub ttl: Duration,
    /// Which limit.
    pub kind: LimitKind,
    /// Index of the scope it belongs to (in the caller's list).
    pub scope: usize,
    /// When the window turns: what `Retry-After` says on a refusal.
    pub retry_after: Duration,
}

impl Charge {
    /// Whether a counter at `used` (the previous window's share included) refuses this
    /// charge. A request whose estimate alone is over the limit is let through when the
    /// window is empty, or it could never be made.
    pub fn refuses(&self, used: i64) -> bool {
        used >= self.limit || (used > 0 && used.saturating_add(self.amount) > self.limit)
    }
}

/// A counter window at some instant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    /// Its number (minutes, days or months since the epoch).
    pub id: i64,
    /// The share of the previous window that still counts (sliding windows; else 0).
    pub previous_weight: f64,
    /// Time until this window ends.
    pub ends_in: Duration,
    /// How long a counter of this window is needed.
    pub keep: Duration,
}

const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 86_400_000;

/// The minute `now_ms` is in, and the part of the previous minute still inside the last 60 s.
pub fn minute_window(now_ms: i64) -> Window {
    let into = now_ms.rem_euclid(MINUTE_MS);
    Window {
        id: now_ms.div_euclid(MINUTE_MS),
        previous_weight: (MINUTE_MS - into) as f64 / MINUTE_MS as f64,
        ends_in: Duration::from_millis((MINUTE_MS - into) as u64),
        keep: Duration::from_secs(150),
    }
}

/// The UTC day `now_ms` is in.
pub fn day_window(now_ms: i64) -> Window {
    let into = now_ms.rem_euclid(DAY_MS);
    Window {
        id: now_ms.div_euclid(DAY_MS),
        previous_weight: 0.0,
        ends_in: Duration::from_millis((DAY_MS - into) as u64),
        keep: Duration::from_secs(2 * 86_400),
    }
}

/// The UTC calendar month `now_ms` is in (`year * 12 + month - 1`).
pub fn month_window(now_ms: i64) -> Window {
    let day = now_ms.div_euclid(DAY_MS);
    let (year, month, _) = civil_from_days(day);
    let (next_year, next_month) = if month == 12 { (year + 1, 1) } else { (year, month + 1) };
    let next = days_from_civil(next_year, next_month, 1) * DAY_MS;
    Window {
        id: year * 12 + month - 1,
        previous_weight: 0.0,
        ends_in: Duration::from_millis((next - now_ms).max(0) as u64),
        keep: Duration::from_secs(32 * 86_400),
    }
}

/// (year, month 1..=12, day) of a day number since 1970-01-01 (Howard Hinnant's algorithm).
pub(crate) fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The day number since 1970-01-01 of a civil date.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The limits a metadata map selects from `by_metadata` within key `key`: one scope per
/// field the request's metadata has as text (a number or boolean counts as its text).
pub fn metadata_scopes(
    key: &str,
    by_metadata: &[(String, UsageLimits)],
    metadata: &Map<String, Value>,
) -> Vec<LimitScope> {
    by_metadata
        .iter()
        .filter_map(|(field, limits)| {
            let value = match metadata.get(field)? {
                Value::String(s) => s.clone(),
                v @ (Value::Number(_) | Value::Bool(_)) => v.to_string(),
                _ => return None,
            };
            Some(LimitScope::metadata(key, field, &value, *limits))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn windows_turn_at_the_minute_the_utc_day_and_the_first_of_the_month() {
        // 2026-12-01T09:30:15.250Z
        let now = 1_796_117_415_250;
        let minute = minute_window(now);
        assert_eq!(minute.ends_in, Duration::from_millis(44_750));
        assert!((minute.previous_weight - 44_750.0 / 60_000.0).abs() < 1e-9);
        let day = day_window(now);
        assert_eq!(day.ends_in, Duration::from_millis(14 * 3_600_000 + 29 * 60_000 + 44_750));
        let month = month_window(now);
        assert_eq!(month.id, 2026 * 12 + 11);
        assert_eq!(month.ends_in.as_secs() / 86_400, 30);
        // The last millisecond of February 2028 (a leap year), then March.
        let feb_end = days_from_civil(2028, 3, 1) * DAY_MS - 1;
        assert_eq!(civil_from_days(feb_end.div_euclid(DAY_MS)), (2028, 2, 29));
        assert_eq!(month_window(feb_end).ends_in, Duration::from_millis(1));
        assert_eq!(month_window(feb_end + 1).id, 2028 * 12 + 2);
    }

    #[test]
    fn limits_parse_any_subset_and_report_every_bad_field() {
        let mut errors = Vec::new();
        let limits = UsageLimits::parse(
            &json!({"requests_per_minute": 10, "usd_per_month": 2.5}),
            &JsonPath::root(),
            &mut errors,
        )
        .unwrap();
        assert_eq!(limits.of(LimitKind::RequestsPerMinute), Some(10));
        assert_eq!(limits.of(LimitKind::UsdPerMonth), Some(2_500_000));
        assert_eq!(limits.of(LimitKind::TokensPerMinute), None);
        let bad = json!({"requests_per_minute": 0, "tokens_per_minute": 1.5, "usd_per_day": -1, "rpm": 3});
        assert!(UsageLimits::parse(&bad, &JsonPath::root().key("limits"), &mut errors).is_none());
        let paths: Vec<_> = errors.iter().filter_map(|e| e.param.clone()).collect();
        assert_eq!(
            paths,
            ["limits.requests_per_minute", "limits.tokens_per_minute", "limits.usd_per_day", "limits.rpm"]
        );
    }

    #[test]
    fn a_request_over_the_limit_on_its_own_passes_only_an_empty_window() {
        let mut out = Vec::new();
        let limits = UsageLimits { tokens_per_minute: Some(100), ..UsageLimits::default() };
        LimitScope::key("k", limits).charges(0, Estimate { tokens: 500, micro_usd: 0 }, 0, &mut out);
        assert!(!out[0].refuses(0));
        assert!(out[0].refuses(1));
        assert_eq!(out[0].key, "key:k:tokens_per_minute:0");
    }

    #[test]
    fn metadata_values_are_hashed_into_bounded_counter_names() {
        let limits = UsageLimits { requests_per_minute: Some(1), ..UsageLimits::default() };
        let long = "x".repeat(10_000);
        let metadata = json!({"_user": long, "n": 5}).as_object().unwrap().clone();
        let scopes = metadata_scopes("team", &[("_user".into(), limits), ("n".into(), limits)], &metadata);
        assert_eq!(scopes.len(), 2);
        assert!(scopes[0].counter.len() < 64 && scopes[0].name.len() < 100);
        assert_ne!(scopes[0].counter, LimitScope::metadata("team", "_user", "y", limits).counter);
        assert_eq!(scopes[1].name.as_ref(), "key team n=5");
    }
}
