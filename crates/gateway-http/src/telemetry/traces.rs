//! OpenTelemetry spans, exported over OTLP/HTTP (protobuf) by the SDK's batch processor.
//!
//! One span per request (`chat gpt-4o`, kind SERVER) and one per upstream attempt (kind
//! CLIENT, its child), with the GenAI semantic conventions' attributes. Spans are made
//! from the request's record once it is finished — the engine keeps no tracing state
//! while it works, and makes nothing at all when export is off. The ids are the ones the
//! engine put in the `traceparent` it sent upstream, so the providers' spans (where they
//! have any) hang under the right attempt.

use std::borrow::Cow;
use std::time::Duration;

use gateway_core::engine::{RequestObserver, RequestRecord, TraceContext};
use opentelemetry::trace::{SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{BatchSpanProcessor, SpanData, SpanEvents, SpanLinks, SpanProcessor};

/// The OTLP span exporter.
pub struct Traces {
    processor: BatchSpanProcessor,
    scope: InstrumentationScope,
}

impl std::fmt::Debug for Traces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Traces").finish_non_exhaustive()
    }
}

impl Traces {
    /// Export to `endpoint` (an OTLP/HTTP base such as `http://collector:4318`, to which
    /// `/v1/traces` is added, or a full `.../v1/traces` URL). The SDK adds the headers of
    /// `OTEL_EXPORTER_OTLP_HEADERS` (a collector's credentials).
    pub fn otlp(endpoint: &str) -> Result<Self, String> {
        let endpoint = if endpoint.trim_end_matches('/').ends_with("/v1/traces") {
            endpoint.to_owned()
        } else {
            format!("{}/v1/traces", endpoint.trim_end_matches('/'))
        };
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(endpoint)
            .with_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| format!("OTLP exporter: {e}"))?;
        let mut processor = BatchSpanProcessor::builder(exporter).build();
        processor.set_resource(&Resource::builder().with_service_name("gatewise").build());
        let scope = InstrumentationScope::builder("gatewise").with_version(env!("CARGO_PKG_VERSION")).build();
        Ok(Self { processor, scope })
    }

    /// Send what is queued and stop (at server shutdown).
    pub fn shutdown(&self) {
        if let Err(e) = self.processor.shutdown() {
            tracing::warn!("exporting the last spans: {e}");
        }
    }

    fn span(&self, context: SpanContext, parent: Option<[u8; 8]>, parts: SpanParts) -> SpanData {
        SpanData {
            span_context: context,
            parent_span_id: parent.map_or(SpanId::INVALID, SpanId::from_bytes),
            parent_span_is_remote: parts.remote_parent,
            span_kind: parts.kind,
            name: parts.name,
            start_time: parts.start,
            end_time: parts.end,
            attributes: parts.attributes,
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: parts.status,
            instrumentation_scope: self.scope.clone(),
        }
    }
}

struct SpanParts {
    name: Cow<'static, str>,
    kind: SpanKind,
    remote_parent: bool,
    start: std::time::SystemTime,
    end: std::time::SystemTime,
    attributes: Vec<KeyValue>,
    status: Status,
}

/// `gen_ai.operation.name` for a gateway path.
fn operation(endpoint: &str) -> &'static str {
    let path = endpoint.split('?').next().unwrap_or(endpoint);
    match path.trim_end_matches('/') {
        "/v1/chat/completions" => "chat",
        "/v1/completions" => "text_completion",
        "/v1/embeddings" => "embeddings",
        "/v1/images/generations" | "/v1/images/edits" | "/v1/images/variations" => "generate_content",
        _ => "other",
    }
}

fn context(trace: &TraceContext, span: [u8; 8]) -> SpanContext {
    let flags = if trace.sampled { TraceFlags::SAMPLED } else { TraceFlags::default() };
    SpanContext::new(TraceId::from_bytes(trace.trace_id), SpanId::from_bytes(span), flags, false, TraceState::default())
}

impl RequestObserver for Traces {
    fn record(&self, record: &RequestRecord) {
        let Some(trace) = record.trace_context.filter(|t| t.sampled) else { return };
        let Some(span_id) = trace.span_id else { return };
        let route = &record.route;
        let operation = operation(&record.endpoint);
        let name = match &route.model {
            Some(model) => format!("{operation} {model}"),
            None => operation.to_owned(),
        };
        let mut attributes = vec![
            KeyValue::new("gen_ai.operation.name", operation),
            KeyValue::new("http.response.status_code", i64::from(record.status)),
            KeyValue::new("gatewise.cache_status", route.cache_status.as_str()),
            KeyValue::new("gatewise.retries", i64::from(route.retry_count)),
        ];
        let text = |key: &'static str, value: &Option<String>| value.clone().map(|v| KeyValue::new(key, v));
        attributes.extend(text("gen_ai.provider.name", &route.provider));
        attributes.extend(text("gen_ai.request.model", &route.model));
        attributes.extend(text("gen_ai.response.model", &route.model));
        attributes.extend(text("gatewise.option_index", &route.option_index));
        attributes.extend(text("gatewise.trace_id", &route.trace_id));
        attributes.extend(text("gatewise.key", &record.key));
        if let Some(usage) = &route.usage {
            let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
            attributes.push(KeyValue::new("gen_ai.usage.input_tokens", n(usage.input_tokens)));
            attributes.push(KeyValue::new("gen_ai.usage.output_tokens", n(usage.output_tokens)));
            attributes.push(KeyValue::new("gen_ai.usage.cached_input_tokens", n(usage.cached_input_tokens)));
            attributes.push(KeyValue::new("gen_ai.usage.reasoning_tokens", n(usage.reasoning_tokens)));
        }
        if let Some(cost) = route.cost {
            attributes.push(KeyValue::new("gatewise.cost", cost));
        }
        if let Some(ttft) = route.ttft {
            attributes.push(KeyValue::new("gatewise.ttft_ms", ttft.as_secs_f64() * 1000.0));
        }
        let status = match &record.error {
            Some((code, _)) => {
                attributes.push(KeyValue::new("error.type", code.as_str()));
                Status::error(code.as_str())
            }
            None => Status::Ok,
        };
        let request_span = self.span(
            context(&trace, span_id),
            trace.parent_id,
            SpanParts {
                name: name.clone().into(),
                kind: SpanKind::Server,
                remote_parent: trace.parent_id.is_some(),
                start: record.started,
                end: record.started + record.latency,
                attributes,
                status,
            },
        );
        self.processor.on_end(request_span);
        for (n, attempt) in route.attempts.iter().enumerate() {
            let Some(attempt_id) = trace.attempt_span_id(n) else { continue };
            let mut attributes = vec![
                KeyValue::new("gen_ai.operation.name", operation),
                KeyValue::new("gen_ai.provider.name", attempt.provider.clone()),
                KeyValue::new("http.response.status_code", i64::from(attempt.status)),
                KeyValue::new("gatewise.option_index", attempt.option_index.clone()),
            ];
            attributes.extend(text("gen_ai.request.model", &route.model));
            let status = match attempt.error {
                Some(code) => {
                    attributes.push(KeyValue::new("error.type", code.as_str()));
                    Status::error(code.as_str())
                }
                None => Status::Ok,
            };
            let span = self.span(
                context(&trace, attempt_id),
                Some(span_id),
                SpanParts {
                    name: name.clone().into(),
                    kind: SpanKind::Client,
                    remote_parent: false,
                    start: attempt.started,
                    end: attempt.started + attempt.duration,
                    attributes,
                    status,
                },
            );
            self.processor.on_end(span);
        }
    }
}
