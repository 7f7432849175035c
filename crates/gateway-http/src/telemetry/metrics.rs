//! `GET /metrics`: Prometheus metrics (OpenMetrics text) from the request records.
//!
//! Each request is counted in the tally of the thread that finished it
//! (`shards`): plain numbers, no atomics or locks shared between threads, no
//! allocation once its labels have been seen. A scrape adds the tallies up and encodes
//! them with `prometheus-client`'s encoder (a [`Collector`]). Counting into the crate's
//! own `Family` metrics instead cost 4 µs of CPU per request on the load benchmark
//! (label strings built and hashed, and locks bounced between cores, for nine metrics);
//! this costs a fraction of one.
//!
//! Label values come from bounded sets only: provider slugs and error codes are the
//! gateway's own; statuses are numbers; models are the first [`MAX_MODELS`] seen, later
//! ones count as `other`; metadata values appear only for the keys `--metrics-label`
//! names, each with at most [`MAX_METADATA_VALUES`] values. No trace id is ever a label.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use gateway_core::ErrorCode;
use gateway_core::engine::{CacheStatus, RequestObserver, RequestRecord};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, text::encode};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::shards::Shards;

/// The maps a request touches: foldhash, seeded per process. Each request looks up its
/// series, its model and its attempts' provider, and SipHash over those keys was the
/// larger part of what the metrics cost a request.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
type HashSet<T> = std::collections::HashSet<T, foldhash::fast::RandomState>;

/// Distinct `model` label values, at most.
pub const MAX_MODELS: usize = 256;
/// Distinct values per metadata label, at most.
pub const MAX_METADATA_VALUES: usize = 64;
/// Longest label value kept; longer ones count as `other`.
const MAX_VALUE_LEN: usize = 128;
/// Upper bounds of the latency histograms' buckets, seconds: 5 ms to ~82 s, doubling.
const BUCKETS: [f64; 15] =
    [0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92];
const OTHER: &str = "other";

/// The metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    in_flight: Gauge,
    tallies: Arc<Tallies>,
}

impl Metrics {
    /// Metrics with `metadata_labels` (metadata keys) as extra labels of the request and
    /// cost counters.
    pub fn new(metadata_labels: &[String]) -> Self {
        let mut registry = Registry::with_prefix("gatewise");
        let in_flight = Gauge::default();
        registry.register("in_flight_requests", "Requests being served", in_flight.clone());
        let tallies = Arc::new(Tallies {
            metadata_keys: metadata_labels.to_vec(),
            label_names: metadata_labels.iter().map(|k| format!("metadata_{}", label_name(k))).collect(),
            shards: Shards::default(),
            known: Mutex::new(Known::default()),
        });
        registry.register_collector(Box::new(tallies.clone()));
        Self { registry, in_flight, tallies }
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
}

impl RequestObserver for Metrics {
    fn record(&self, record: &RequestRecord) {
        self.in_flight.dec();
        self.tallies.add(record);
    }
}

/// A metadata key as a Prometheus label name: letters, digits and `_`.
fn label_name(key: &str) -> String {
    key.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect()
}

/// Every thread's counts.
#[derive(Debug)]
struct Tallies {
    metadata_keys: Vec<String>,
    label_names: Vec<String>,
    shards: Shards<Tally>,
    /// Label values shown so far, across threads (decided at scrape).
    known: Mutex<Known>,
}

#[derive(Debug, Default)]
struct Known {
    models: HashSet<String>,
    metadata: HashMap<String, HashSet<String>>,
}

/// One thread's counts since the start.
#[derive(Debug, Default)]
struct Tally {
    /// Reused to build the key of a request's labels without allocating.
    key: String,
    /// By provider, model and metadata values (`\0`-joined).
    series: HashMap<String, Series>,
    /// Upstream attempts by provider and status.
    attempts: HashMap<String, Vec<(u16, u64)>>,
    /// Models this thread has a series for (bounded like the output).
    models: HashSet<String>,
    /// Guardrail check results by phase, check id and result.
    checks: HashMap<CheckLabels, u64>,
}

/// `(phase, check id, pass | fail | error)`: all from fixed sets.
type CheckLabels = (&'static str, &'static str, &'static str);

/// The counts of one provider, model and metadata values.
#[derive(Debug, Default)]
struct Series {
    provider: String,
    model: String,
    metadata: Vec<String>,
    /// Requests by status and error code.
    outcomes: Vec<(u16, Option<ErrorCode>, u64)>,
    duration: Histogram,
    upstream: Histogram,
    ttft: Histogram,
    /// Input, output, cached-input and reasoning tokens.
    tokens: [u64; 4],
    cost: f64,
    /// Cache hits, misses and refreshes.
    cache: [u64; 3],
    retries: u64,
    fallbacks: u64,
}

#[derive(Debug, Default, Clone)]
struct Histogram {
    sum: f64,
    count: u64,
    /// Per bucket of [`BUCKETS`], then above the last.
    buckets: [u64; BUCKETS.len() + 1],
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        self.sum += seconds;
        self.count += 1;
        let i = BUCKETS.iter().position(|b| seconds <= *b).unwrap_or(BUCKETS.len());
        self.buckets[i] += 1;
    }

    fn merge(&mut self, other: &Histogram) {
        self.sum += other.sum;
        self.count += other.count;
        for (a, b) in self.buckets.iter_mut().zip(other.buckets) {
            *a += b;
        }
    }

    fn encode(&self, encoder: &mut prometheus_client::encoding::MetricEncoder<'_>) -> Result<(), std::fmt::Error> {
        let buckets: Vec<(f64, u64)> =
            BUCKETS.iter().copied().chain([f64::INFINITY]).zip(self.buckets.iter().copied()).collect();
        encoder.encode_histogram::<prometheus_client::encoding::NoLabelSet>(self.sum, self.count, &buckets, None)
    }
}

/// A label value if it is short enough and there is room for it among `known`, else `other`.
fn bounded<'a>(known: &mut HashSet<String>, value: &'a str, max: usize) -> &'a str {
    if value.len() > MAX_VALUE_LEN {
        return OTHER;
    }
    if known.contains(value) {
        return value;
    }
    if known.len() < max {
        known.insert(value.to_owned());
        return value;
    }
    OTHER
}

impl Tallies {
    fn add(&self, record: &RequestRecord) {
        let route = &record.route;
        let mut tally = self.shards.mine();
        let Tally { key, series, attempts, models, checks } = &mut *tally;
        if let Some(report) = route.hooks.as_ref() {
            for (phase, results) in
                [("before_request", &report.before_request_hooks), ("after_request", &report.after_request_hooks)]
            {
                for check in results.iter().flat_map(|h| &h.checks) {
                    let id = gateway_core::hooks::CHECK_IDS.iter().find(|id| **id == check.id).copied();
                    let result = match (check.verdict, &check.error) {
                        (_, Some(_)) => "error",
                        (true, None) => "pass",
                        (false, None) => "fail",
                    };
                    *checks.entry((phase, id.unwrap_or(OTHER), result)).or_default() += 1;
                }
            }
        }
        let provider = route.provider.as_deref().unwrap_or("");
        let model = route.model.as_deref().map_or("", |m| bounded(models, m, MAX_MODELS));
        key.clear();
        key.push_str(provider);
        key.push('\0');
        key.push_str(model);
        let mut metadata = Vec::new();
        for name in &self.metadata_keys {
            let value = record.metadata.get(name).and_then(|v| v.as_str()).unwrap_or("");
            key.push('\0');
            key.push_str(value);
            metadata.push(value);
        }
        if !series.contains_key(key.as_str()) {
            let new = Series {
                provider: provider.to_owned(),
                model: model.to_owned(),
                metadata: metadata.iter().map(|v| (*v).to_owned()).collect(),
                ..Series::default()
            };
            series.insert(key.clone(), new);
        }
        let Some(s) = series.get_mut(key.as_str()) else { return };
        let error = record.error.as_ref().map(|(code, _)| *code);
        match s.outcomes.iter_mut().find(|(status, e, _)| *status == record.status && *e == error) {
            Some((_, _, n)) => *n += 1,
            None => s.outcomes.push((record.status, error, 1)),
        }
        s.duration.observe(record.latency.as_secs_f64());
        if let Some(upstream) = route.upstream_latency() {
            s.upstream.observe(upstream.as_secs_f64());
        }
        if let Some(ttft) = route.ttft {
            s.ttft.observe(ttft.as_secs_f64());
        }
        if let Some(u) = &route.usage {
            for (total, n) in
                s.tokens.iter_mut().zip([u.input_tokens, u.output_tokens, u.cached_input_tokens, u.reasoning_tokens])
            {
                *total += n;
            }
        }
        s.cost += route.cost.unwrap_or(0.0);
        match route.cache_status {
            CacheStatus::Hit => s.cache[0] += 1,
            CacheStatus::Miss => s.cache[1] += 1,
            CacheStatus::Refresh => s.cache[2] += 1,
            CacheStatus::Disabled => {}
        }
        let answering = route.option_index.as_ref();
        s.retries +=
            route.attempts.iter().filter(|a| Some(&a.option_index) == answering).count().saturating_sub(1) as u64;
        if route.attempts.first().is_some_and(|first| Some(&first.option_index) != answering) {
            s.fallbacks += 1;
        }
        for attempt in &route.attempts {
            if !attempts.contains_key(attempt.provider.as_str()) {
                attempts.insert(attempt.provider.clone(), Vec::new());
            }
            let Some(by_status) = attempts.get_mut(attempt.provider.as_str()) else { continue };
            match by_status.iter_mut().find(|(status, _)| *status == attempt.status) {
                Some((_, n)) => *n += 1,
                None => by_status.push((attempt.status, 1)),
            }
        }
    }

    /// Every thread's tallies added up, with label values bounded across threads.
    fn total(&self) -> Total {
        let mut known = self.known.lock().unwrap_or_else(PoisonError::into_inner);
        let mut total = Total::default();
        self.shards.each(|tally| {
            for s in tally.series.values() {
                let model = bounded(&mut known.models, &s.model, MAX_MODELS).to_owned();
                let metadata: Vec<String> = self
                    .metadata_keys
                    .iter()
                    .zip(&s.metadata)
                    .map(|(key, value)| {
                        if value.is_empty() {
                            return String::new();
                        }
                        bounded(known.metadata.entry(key.clone()).or_default(), value, MAX_METADATA_VALUES).to_owned()
                    })
                    .collect();
                let pm = (s.provider.clone(), model.clone());
                for (status, error, n) in &s.outcomes {
                    let error = error.map_or("", ErrorCode::as_str);
                    let key = (s.provider.clone(), model.clone(), *status, error, metadata.clone());
                    *total.requests.entry(key).or_default() += n;
                }
                let per = total.per_model.entry(pm).or_default();
                per.duration.merge(&s.duration);
                per.upstream.merge(&s.upstream);
                per.ttft.merge(&s.ttft);
                for (a, b) in per.tokens.iter_mut().zip(s.tokens) {
                    *a += b;
                }
                for (a, b) in per.cache.iter_mut().zip(s.cache) {
                    *a += b;
                }
                per.retries += s.retries;
                per.fallbacks += s.fallbacks;
                *total.cost.entry((s.provider.clone(), model, metadata)).or_default() += s.cost;
            }
            for (labels, n) in &tally.checks {
                *total.checks.entry(*labels).or_default() += n;
            }
            for (provider, by_status) in &tally.attempts {
                for (status, n) in by_status {
                    *total.attempts.entry((provider.clone(), *status)).or_default() += n;
                }
            }
        });
        total
    }
}

/// The tallies added up, in a stable order.
#[derive(Default)]
struct Total {
    requests: BTreeMap<(String, String, u16, &'static str, Vec<String>), u64>,
    per_model: BTreeMap<(String, String), PerModel>,
    cost: BTreeMap<(String, String, Vec<String>), f64>,
    attempts: BTreeMap<(String, u16), u64>,
    checks: BTreeMap<CheckLabels, u64>,
}

#[derive(Default)]
struct PerModel {
    duration: Histogram,
    upstream: Histogram,
    ttft: Histogram,
    tokens: [u64; 4],
    cache: [u64; 3],
    retries: u64,
    fallbacks: u64,
}

type Labels<'a> = Vec<(&'a str, &'a str)>;

impl Collector for Tallies {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let total = self.total();
        let with_metadata = |labels: Labels<'_>, values: &[String]| -> Vec<(String, String)> {
            let mut owned: Vec<(String, String)> =
                labels.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
            owned.extend(self.label_names.iter().cloned().zip(values.iter().cloned()));
            owned
        };

        let mut family = encoder.encode_descriptor(
            "requests",
            "Requests, by provider, model, status and error code",
            None,
            MetricType::Counter,
        )?;
        for ((provider, model, status, error, metadata), n) in &total.requests {
            let status = status.to_string();
            let labels = vec![
                ("provider", provider.as_str()),
                ("model", model.as_str()),
                ("status", status.as_str()),
                ("error_code", *error),
            ];
            family
                .encode_family(&with_metadata(labels, metadata))?
                .encode_counter::<prometheus_client::encoding::NoLabelSet, u64, u64>(n, None)?;
        }

        for (name, help, pick) in [
            (
                "request_duration_seconds",
                "Time from the request to the end of its answer",
                (|p: &PerModel| &p.duration) as fn(&PerModel) -> &Histogram,
            ),
            (
                "upstream_duration_seconds",
                "Time the answering upstream took to answer (to its first chunk for streams)",
                |p: &PerModel| &p.upstream,
            ),
            ("time_to_first_token_seconds", "Time to a stream's first chunk", |p: &PerModel| &p.ttft),
        ] {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Histogram)?;
            for ((provider, model), per) in &total.per_model {
                let histogram = pick(per);
                if histogram.count > 0 {
                    let labels: Labels<'_> = vec![("provider", provider), ("model", model)];
                    histogram.encode(&mut family.encode_family(&labels)?)?;
                }
            }
        }

        let mut family =
            encoder.encode_descriptor("tokens", "Tokens, by provider, model and type", None, MetricType::Counter)?;
        for ((provider, model), per) in &total.per_model {
            for (kind, n) in ["input", "output", "cached_input", "reasoning"].into_iter().zip(per.tokens) {
                if n > 0 {
                    let labels: Labels<'_> = vec![("provider", provider), ("model", model), ("type", kind)];
                    counter(&mut family, &labels, n)?;
                }
            }
        }

        let mut family = encoder.encode_descriptor(
            "cost_usd",
            "Spend in US dollars, where the price is known",
            None,
            MetricType::Counter,
        )?;
        for ((provider, model, metadata), cost) in &total.cost {
            if *cost > 0.0 {
                let labels = with_metadata(vec![("provider", provider), ("model", model)], metadata);
                family
                    .encode_family(&labels)?
                    .encode_counter::<prometheus_client::encoding::NoLabelSet, f64, f64>(cost, None)?;
            }
        }

        let mut family = encoder.encode_descriptor(
            "cache_lookups",
            "Gateway cache lookups, by result",
            None,
            MetricType::Counter,
        )?;
        for ((provider, model), per) in &total.per_model {
            for (result, n) in ["hit", "miss", "refresh"].into_iter().zip(per.cache) {
                if n > 0 {
                    counter(
                        &mut family,
                        &vec![("provider", provider.as_str()), ("model", model), ("result", result)],
                        n,
                    )?;
                }
            }
        }

        for (name, help, pick) in [
            ("retries", "Retries of the answering target", (|p: &PerModel| p.retries) as fn(&PerModel) -> u64),
            ("fallbacks", "Requests answered by a target after another failed", |p: &PerModel| p.fallbacks),
        ] {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for ((provider, model), per) in &total.per_model {
                if pick(per) > 0 {
                    counter(&mut family, &vec![("provider", provider.as_str()), ("model", model)], pick(per))?;
                }
            }
        }

        let mut family = encoder.encode_descriptor(
            "upstream_attempts",
            "Upstream attempts, by provider and status",
            None,
            MetricType::Counter,
        )?;
        for ((provider, status), n) in &total.attempts {
            let status = status.to_string();
            counter(&mut family, &vec![("provider", provider.as_str()), ("status", status.as_str())], *n)?;
        }

        let mut family = encoder.encode_descriptor(
            "guardrail_checks",
            "Guardrail check results, by phase, check id and result (pass, fail, error)",
            None,
            MetricType::Counter,
        )?;
        for ((phase, check, result), n) in &total.checks {
            counter(&mut family, &vec![("phase", *phase), ("check", *check), ("result", *result)], *n)?;
        }
        Ok(())
    }
}

fn counter(
    family: &mut prometheus_client::encoding::MetricEncoder<'_>,
    labels: &Labels<'_>,
    n: u64,
) -> Result<(), std::fmt::Error> {
    family.encode_family(labels)?.encode_counter::<prometheus_client::encoding::NoLabelSet, u64, u64>(&n, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_bounded() {
        let mut known = HashSet::default();
        assert_eq!(bounded(&mut known, "a", 1), "a");
        assert_eq!(bounded(&mut known, "a", 1), "a");
        assert_eq!(bounded(&mut known, "b", 1), "other");
        assert_eq!(bounded(&mut known, &"x".repeat(200), 10), "other");
        assert_eq!(label_name("team-id.x"), "team_id_x");
    }

    #[test]
    fn histograms_count_into_their_buckets() {
        let mut h = Histogram::default();
        h.observe(0.001);
        h.observe(0.03);
        h.observe(1000.0);
        assert_eq!((h.count, h.buckets[0], h.buckets[3], h.buckets[BUCKETS.len()]), (3, 1, 1, 1));
    }
}
