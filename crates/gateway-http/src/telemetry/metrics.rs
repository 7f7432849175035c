//! `GET /metrics`: Prometheus metrics (OpenMetrics text) from the request records.
//!
//! Label values come from bounded sets only: provider slugs and error codes are the
//! gateway's own; statuses are numbers; models are the first [`MAX_MODELS`] seen, later
//! ones count as `other`; metadata values appear only for the keys `--metrics-label`
//! names, each with at most [`MAX_METADATA_VALUES`] values. No trace id is ever a label.

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

use gateway_core::engine::{CacheStatus, RequestObserver, RequestRecord};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Distinct `model` label values, at most.
pub const MAX_MODELS: usize = 256;
/// Distinct values per metadata label, at most.
pub const MAX_METADATA_VALUES: usize = 64;
/// Longest label value kept; longer ones count as `other`.
const MAX_VALUE_LEN: usize = 128;

type Labels = Vec<(&'static str, String)>;

fn seconds() -> Histogram {
    // 5 ms to ~82 s.
    Histogram::new(exponential_buckets(0.005, 2.0, 15))
}

/// The metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<Labels, Counter>,
    duration: Family<Labels, Histogram, fn() -> Histogram>,
    upstream_duration: Family<Labels, Histogram, fn() -> Histogram>,
    ttft: Family<Labels, Histogram, fn() -> Histogram>,
    tokens: Family<Labels, Counter>,
    cost: Family<Labels, Counter<f64, AtomicU64>>,
    cache: Family<Labels, Counter>,
    attempts: Family<Labels, Counter>,
    retries: Family<Labels, Counter>,
    fallbacks: Family<Labels, Counter>,
    in_flight: Gauge,
    /// Metadata keys that are labels of `gatewise_requests_total` and the cost counter.
    metadata_labels: Vec<&'static str>,
    seen: Mutex<Seen>,
}

#[derive(Debug, Default)]
struct Seen {
    models: HashSet<String>,
    metadata: Vec<HashSet<String>>,
}

impl Metrics {
    /// Metrics with `metadata_labels` (metadata keys) as extra request labels.
    pub fn new(metadata_labels: &[String]) -> Self {
        let mut registry = Registry::with_prefix("gatewise");
        let requests = Family::default();
        registry.register("requests", "Requests, by provider, model, status and error code", requests.clone());
        let duration = Family::new_with_constructor(seconds as fn() -> Histogram);
        registry.register(
            "request_duration_seconds",
            "Time from the request to the end of its answer",
            duration.clone(),
        );
        let upstream_duration = Family::new_with_constructor(seconds as fn() -> Histogram);
        registry.register(
            "upstream_duration_seconds",
            "Time the answering upstream took to answer (to its first chunk for streams)",
            upstream_duration.clone(),
        );
        let ttft = Family::new_with_constructor(seconds as fn() -> Histogram);
        registry.register("time_to_first_token_seconds", "Time to a stream's first chunk", ttft.clone());
        let tokens = Family::default();
        registry.register("tokens", "Tokens, by provider, model and type", tokens.clone());
        let cost = Family::default();
        registry.register("cost_usd", "Spend in US dollars, where the price is known", cost.clone());
        let cache = Family::default();
        registry.register("cache_lookups", "Gateway cache lookups, by result", cache.clone());
        let attempts = Family::default();
        registry.register("upstream_attempts", "Upstream attempts, by provider and status", attempts.clone());
        let retries = Family::default();
        registry.register("retries", "Retries of the answering target", retries.clone());
        let fallbacks = Family::default();
        registry.register("fallbacks", "Requests answered by a target after another failed", fallbacks.clone());
        let in_flight = Gauge::default();
        registry.register("in_flight_requests", "Requests being served", in_flight.clone());
        // Label names must be `&'static str`; the list is fixed at start, so leaking it
        // once costs a few bytes for the life of the process.
        let metadata_labels: Vec<&'static str> = metadata_labels
            .iter()
            .map(|k| &*Box::leak(format!("metadata_{}", label_name(k)).into_boxed_str()))
            .collect();
        let seen = Mutex::new(Seen { models: HashSet::new(), metadata: vec![HashSet::new(); metadata_labels.len()] });
        Self {
            registry,
            requests,
            duration,
            upstream_duration,
            ttft,
            tokens,
            cost,
            cache,
            attempts,
            retries,
            fallbacks,
            in_flight,
            metadata_labels,
            seen,
        }
    }

    /// A request has arrived.
    pub fn started(&self) {
        self.in_flight.inc();
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }

    /// The model label value: the model, or `other` once [`MAX_MODELS`] are known.
    fn bounded_model(&self, seen: &mut Seen, model: Option<&str>) -> String {
        let Some(model) = model else { return String::new() };
        bounded(&mut seen.models, model, MAX_MODELS)
    }
}

/// `value` if it is already known or there is room for it, else `other`.
fn bounded(known: &mut HashSet<String>, value: &str, max: usize) -> String {
    if value.len() > MAX_VALUE_LEN {
        return "other".to_owned();
    }
    if known.contains(value) {
        return value.to_owned();
    }
    if known.len() < max {
        known.insert(value.to_owned());
        return value.to_owned();
    }
    "other".to_owned()
}

/// A metadata key as a Prometheus label name: letters, digits and `_`.
fn label_name(key: &str) -> String {
    key.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect()
}

impl RequestObserver for Metrics {
    fn record(&self, record: &RequestRecord) {
        self.in_flight.dec();
        let route = &record.route;
        let provider = route.provider.clone().unwrap_or_default();
        let (model, metadata) = {
            let mut seen = self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let model = self.bounded_model(&mut seen, route.model.as_deref());
            let metadata: Vec<String> = self
                .metadata_labels
                .iter()
                .enumerate()
                .map(|(i, label)| {
                    let key = &label["metadata_".len()..];
                    let value = record.metadata.get(key).and_then(|v| v.as_str()).unwrap_or("");
                    if value.is_empty() {
                        String::new()
                    } else {
                        bounded(&mut seen.metadata[i], value, MAX_METADATA_VALUES)
                    }
                })
                .collect();
            (model, metadata)
        };
        let error_code = record.error.as_ref().map(|(code, _)| code.as_str()).unwrap_or("");
        let mut labels: Labels = vec![
            ("provider", provider.clone()),
            ("model", model.clone()),
            ("status", record.status.to_string()),
            ("error_code", error_code.to_owned()),
        ];
        labels.extend(self.metadata_labels.iter().copied().zip(metadata.iter().cloned()));
        self.requests.get_or_create(&labels).inc();

        let pm: Labels = vec![("provider", provider.clone()), ("model", model.clone())];
        self.duration.get_or_create(&pm).observe(record.latency.as_secs_f64());
        if let Some(upstream) = route.upstream_latency() {
            self.upstream_duration.get_or_create(&pm).observe(upstream.as_secs_f64());
        }
        if let Some(ttft) = route.ttft {
            self.ttft.get_or_create(&pm).observe(ttft.as_secs_f64());
        }
        if let Some(usage) = &route.usage {
            for (kind, n) in [
                ("input", usage.input_tokens),
                ("output", usage.output_tokens),
                ("cached_input", usage.cached_input_tokens),
                ("reasoning", usage.reasoning_tokens),
            ] {
                if n > 0 {
                    let mut labels = pm.clone();
                    labels.push(("type", kind.to_owned()));
                    self.tokens.get_or_create(&labels).inc_by(n);
                }
            }
        }
        if let Some(cost) = route.cost.filter(|c| *c > 0.0) {
            let mut labels = pm.clone();
            labels.extend(self.metadata_labels.iter().copied().zip(metadata));
            self.cost.get_or_create(&labels).inc_by(cost);
        }
        let lookup = match route.cache_status {
            CacheStatus::Disabled => None,
            CacheStatus::Hit => Some("hit"),
            CacheStatus::Miss => Some("miss"),
            CacheStatus::Refresh => Some("refresh"),
        };
        if let Some(result) = lookup {
            self.cache.get_or_create(&vec![("provider", provider.clone()), ("result", result.to_owned())]).inc();
        }
        for attempt in &route.attempts {
            let labels = vec![("provider", attempt.provider.clone()), ("status", attempt.status.to_string())];
            self.attempts.get_or_create(&labels).inc();
        }
        let retries = match route.retry_count {
            -1 => route
                .attempts
                .iter()
                .filter(|a| Some(&a.option_index) == route.option_index.as_ref())
                .count()
                .saturating_sub(1),
            n => usize::try_from(n).unwrap_or(0),
        };
        if retries > 0 {
            self.retries.get_or_create(&vec![("provider", provider.clone())]).inc_by(retries as u64);
        }
        let fell_back =
            route.attempts.first().is_some_and(|first| Some(&first.option_index) != route.option_index.as_ref());
        if fell_back {
            self.fallbacks.get_or_create(&vec![("provider", provider)]).inc();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_bounded() {
        let mut known = HashSet::new();
        assert_eq!(bounded(&mut known, "a", 1), "a");
        assert_eq!(bounded(&mut known, "a", 1), "a");
        assert_eq!(bounded(&mut known, "b", 1), "other");
        assert_eq!(bounded(&mut known, &"x".repeat(200), 10), "other");
        assert_eq!(label_name("team-id.x"), "team_id_x");
    }
}
