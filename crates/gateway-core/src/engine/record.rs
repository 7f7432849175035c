//! One record per request, for whoever watches the gateway: the request log, metrics,
//! traces, a binding's callback. Made by the engine when the answer is complete — for a
//! stream, when it ends, breaks, or the caller goes away — and only when someone watches.
//!
//! The record's field names are a contract (log shippers and dashboards read them):
//! `trace_id`, `key`, `metadata`, `provider`, `model`, `option_index`, `status`,
//! `error_code`, `retries`, `cache_status`, `latency_ms`, `upstream_latency_ms`, `ttft_ms`,
//! `usage`, `cost_usd`, `attempts`, and when they apply `limit` (the rate limit or budget
//! that refused the request), `skipped` (targets passed over for an open circuit) and
//! `prompt_id` / `prompt_version` (the registry prompt the request was rendered from) and
//! `hooks` (each guardrail hook's id, verdict, deny and the checks that failed or erred,
//! per phase). It never holds a credential: no headers, and error
//! messages are the gateway's (an upstream's, with the request's credentials cut out).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::Stream;
use serde::Serialize;
use serde::ser::SerializeStruct;
use serde_json::Value;

use super::route_info::{Attempt, RouteInfo};
use super::stream::ChunkStream;
use crate::error::{ErrorCode, GatewayError};
use crate::json::{self, Field, FieldSink, Fields, key};

/// Receives a record for every request. Called on the task that finished the request, so
/// an implementation must not block: queue the record and return.
pub trait RequestObserver: Send + Sync + std::fmt::Debug {
    /// A request has finished.
    fn record(&self, record: &RequestRecord);

    /// Whether records should carry request and response bodies (`--log-bodies`).
    fn wants_bodies(&self) -> bool {
        false
    }
}

/// Several observers as one.
#[derive(Debug, Default)]
pub struct Observers(pub Vec<Arc<dyn RequestObserver>>);

impl RequestObserver for Observers {
    fn record(&self, record: &RequestRecord) {
        for observer in &self.0 {
            observer.record(record);
        }
    }

    fn wants_bodies(&self) -> bool {
        self.0.iter().any(|o| o.wants_bodies())
    }
}

/// What happened to one request.
#[derive(Debug, Clone)]
pub struct RequestRecord {
    /// When the request reached the engine.
    pub started: SystemTime,
    /// The request's path (`/v1/chat/completions`).
    pub endpoint: String,
    /// Whether the caller asked for a stream.
    pub stream: bool,
    /// The gateway key's name, when the request brought one.
    pub key: Option<String>,
    /// The request's place in a trace, when it has one.
    pub trace_context: Option<super::TraceContext>,
    /// The request's metadata.
    pub metadata: Arc<Value>,
    /// The status sent to the caller.
    pub status: u16,
    /// The error, when the request failed (for a stream: broke after it began).
    pub error: Option<(ErrorCode, String)>,
    /// The caller went away before the stream ended.
    pub cancelled: bool,
    /// The whole time, from the request reaching the engine to the last byte of the answer.
    pub latency: Duration,
    /// How it was routed, with usage and cost.
    pub route: RouteInfo,
    /// The request body, when bodies are logged (text, or its size for binary bodies).
    pub request_body: Option<Bytes>,
    /// The answer body, when bodies are logged and the answer was not streamed.
    pub response_body: Option<Bytes>,
}

fn ms(d: Duration) -> f64 {
    // Microsecond resolution is plenty and keeps the numbers short. Through `u64` (half a
    // million years of microseconds): converting the `u128` is a call, this an instruction.
    (u64::try_from(d.as_micros()).unwrap_or(u64::MAX) as f64) / 1000.0
}

struct Attempts<'a>(&'a [Attempt]);

impl Serialize for Attempts<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(AttemptRecord))
    }
}

impl Field for Attempts<'_> {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.push(b'[');
        for (i, attempt) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            json::write_fields(out, &AttemptRecord(attempt));
        }
        out.push(b']');
    }
}

/// One attempt as the record shows it.
struct AttemptRecord<'a>(&'a Attempt);

impl Fields for AttemptRecord<'_> {
    fn fields<S: FieldSink>(&self, sink: &mut S) -> Result<(), S::Error> {
        let a = self.0;
        sink.field(key!("option_index"), &a.option_index)?;
        sink.field(key!("provider"), &a.provider)?;
        sink.field(key!("status"), &a.status)?;
        sink.field(key!("error_code"), &a.error.map(ErrorCode::as_str))?;
        sink.field(key!("latency_ms"), &ms(a.duration))
    }
}

impl Serialize for AttemptRecord<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        json::serialize_fields(self, "Attempt", serializer)
    }
}

struct SkippedTargets<'a>(&'a [super::route_info::Skipped]);

impl Field for SkippedTargets<'_> {}

impl Serialize for SkippedTargets<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(
            |s| serde_json::json!({"option_index": s.option_index, "provider": s.provider, "reason": "circuit_open"}),
        ))
    }
}

/// Hook results as the log shows them: per hook, what failed and what erred.
struct HookSummary<'a>(&'a crate::hooks::HookReport);

impl Field for HookSummary<'_> {}

impl Serialize for HookSummary<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let phase = |results: &[crate::hooks::HookResult]| -> Vec<Value> {
            results
                .iter()
                .map(|h| {
                    let ids = |f: &dyn Fn(&crate::hooks::CheckResult) -> bool| -> Vec<&str> {
                        h.checks.iter().filter(|c| f(c)).map(|c| c.id.as_str()).collect()
                    };
                    serde_json::json!({
                        "id": h.id,
                        "verdict": h.verdict,
                        "deny": h.deny,
                        "failed_checks": ids(&|c| !c.verdict && c.error.is_none()),
                        "errored_checks": ids(&|c| c.error.is_some()),
                        "transformed": h.transformed,
                        "execution_time_ms": h.execution_time,
                    })
                })
                .collect()
        };
        let mut s = serializer.serialize_struct("Hooks", 2)?;
        s.serialize_field("before_request_hooks", &phase(&self.0.before_request_hooks))?;
        s.serialize_field("after_request_hooks", &phase(&self.0.after_request_hooks))?;
        s.end()
    }
}

/// Bytes as text when they are UTF-8, else as a note of their size.
struct Body<'a>(&'a Bytes);

impl Body<'_> {
    fn text(&self) -> std::borrow::Cow<'_, str> {
        match std::str::from_utf8(self.0) {
            Ok(text) => text.into(),
            Err(_) => format!("<{} bytes of binary>", self.0.len()).into(),
        }
    }
}

impl Serialize for Body<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text())
    }
}

impl Field for Body<'_> {
    fn write_json(&self, out: &mut Vec<u8>) {
        json::write_str(out, &self.text());
    }
}

/// The record's fields, in the order of its JSON line: the one list both its `Serialize`
/// and [`RequestRecord::write_json_line`] follow.
impl Fields for RequestRecord {
    fn fields<S: FieldSink>(&self, sink: &mut S) -> Result<(), S::Error> {
        let route = &self.route;
        sink.field(key!("time"), Rfc3339::new(self.started).as_str())?;
        sink.field(key!("trace_id"), &route.trace_id)?;
        sink.field(key!("key"), &self.key)?;
        sink.field(key!("metadata"), &*self.metadata)?;
        sink.field(key!("endpoint"), &self.endpoint)?;
        sink.field(key!("stream"), &self.stream)?;
        sink.field(key!("provider"), &route.provider)?;
        sink.field(key!("model"), &route.model)?;
        sink.field(key!("option_index"), &route.option_index)?;
        sink.field(key!("status"), &self.status)?;
        sink.field(key!("error_code"), &self.error.as_ref().map(|(code, _)| code.as_str()))?;
        sink.field(key!("error_message"), &self.error.as_ref().map(|(_, message)| message))?;
        sink.field(key!("cancelled"), &self.cancelled)?;
        sink.field(key!("retries"), &route.retry_count)?;
        sink.field(key!("cache_status"), route.cache_status.as_str())?;
        sink.field(key!("latency_ms"), &ms(self.latency))?;
        sink.field(key!("upstream_latency_ms"), &route.upstream_latency().map(ms))?;
        sink.field(key!("ttft_ms"), &route.ttft.map(ms))?;
        sink.field(key!("usage"), &route.usage)?;
        sink.field(key!("cost_usd"), &route.cost)?;
        if !route.dropped_params.is_empty() {
            sink.field(key!("dropped_params"), &route.dropped_params)?;
        }
        if let Some(limit) = &route.limit {
            sink.field(key!("limit"), limit)?;
        }
        if let Some(prompt) = &route.prompt {
            sink.field(key!("prompt_id"), &prompt.id)?;
            sink.field(key!("prompt_version"), &prompt.version)?;
        }
        if !route.skipped.is_empty() {
            sink.field(key!("skipped"), &SkippedTargets(&route.skipped))?;
        }
        if let Some(hooks) = route.hooks.as_ref().filter(|h| !h.is_empty()) {
            sink.field(key!("hooks"), &HookSummary(hooks))?;
        }
        sink.field(key!("attempts"), &Attempts(&route.attempts))?;
        if let Some(body) = &self.request_body {
            sink.field(key!("request_body"), &Body(body))?;
        }
        if let Some(body) = &self.response_body {
            sink.field(key!("response_body"), &Body(body))?;
        }
        Ok(())
    }
}

impl Serialize for RequestRecord {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        json::serialize_fields(self, "RequestRecord", serializer)
    }
}

impl RequestRecord {
    /// The record as one line of JSON.
    pub fn to_json_line(&self) -> String {
        let mut out = Vec::with_capacity(640);
        self.write_json_line(&mut out);
        // Everything written is UTF-8 (text fields are `str`, bodies that are not UTF-8 are
        // described, not copied).
        String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }

    /// Appends the record as one line of JSON (no newline): exactly what its `Serialize`
    /// gives `serde_json`, written straight from its field list. serde_json escapes every
    /// key byte by byte, and keys are most of a record's bytes: a logged request's line
    /// cost ~8k instructions that way.
    pub fn write_json_line(&self, out: &mut Vec<u8>) {
        json::write_fields(out, self);
    }

    /// A record for a request refused before routing (a bad header, a wrong key).
    pub fn refused(error: &GatewayError, trace_id: Option<String>, endpoint: &str) -> Self {
        Self {
            started: SystemTime::now(),
            endpoint: endpoint.to_owned(),
            stream: false,
            key: None,
            trace_context: None,
            metadata: Arc::new(Value::Object(serde_json::Map::new())),
            status: error.status,
            error: Some((error.code, error.message.clone())),
            cancelled: false,
            latency: Duration::ZERO,
            route: RouteInfo { trace_id, ..RouteInfo::default() },
            request_body: None,
            response_body: None,
        }
    }
}

/// `time` as RFC 3339 in UTC with milliseconds (`2026-12-01T04:51:05.123Z`).
pub fn rfc3339(time: SystemTime) -> String {
    let text = Rfc3339::new(time);
    text.as_str().to_owned()
}

/// RFC 3339 text made without the formatting machinery: it is written once per logged
/// request, where `format!` cost more than the rest of the timestamp's share.
struct Rfc3339([u8; 24]);

impl Rfc3339 {
    fn new(time: SystemTime) -> Self {
        let since = time.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
        let secs = since.as_secs();
        let (days, rest) = (secs / 86_400, secs % 86_400);
        let (year, month, day) = crate::state::civil_from_days(days as i64);
        let year = year.clamp(0, 9999) as u64;
        let mut out = *b"0000-00-00T00:00:00.000Z";
        let mut put = |at: usize, width: usize, mut n: u64| {
            for i in (at..at + width).rev() {
                out[i] = b'0' + (n % 10) as u8;
                n /= 10;
            }
        };
        put(0, 4, year);
        put(5, 2, month as u64);
        put(8, 2, day as u64);
        put(11, 2, rest / 3600);
        put(14, 2, rest % 3600 / 60);
        put(17, 2, rest % 60);
        put(20, 3, u64::from(since.subsec_millis()));
        Self(out)
    }

    fn as_str(&self) -> &str {
        // Only ASCII digits and separators are ever written.
        std::str::from_utf8(&self.0).unwrap_or("1970-01-01T00:00:00.000Z")
    }
}

/// A stream that hands its record to `observer` when it ends, breaks or is dropped.
pub(crate) struct Reported {
    pub events: ChunkStream,
    pub record: Option<RequestRecord>,
    pub observer: Arc<dyn RequestObserver>,
    /// The engine's clock, and its reading at the start of the request.
    pub clock: Arc<dyn super::Transport>,
    pub started: std::time::Instant,
}

impl Reported {
    fn finish(&mut self, error: Option<&GatewayError>, cancelled: bool) {
        let Some(mut record) = self.record.take() else { return };
        record.latency = self.clock.now().saturating_duration_since(self.started);
        record.route = record.route.settled();
        record.error = error.map(|e| (e.code, e.message.clone()));
        record.cancelled = cancelled;
        self.observer.record(&record);
    }
}

impl Stream for Reported {
    type Item = Result<Bytes, GatewayError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let item = self.events.as_mut().poll_next(cx);
        match &item {
            Poll::Ready(Some(Err(e))) => self.finish(Some(e), false),
            Poll::Ready(None) => self.finish(None, false),
            _ => {}
        }
        item
    }
}

impl Drop for Reported {
    fn drop(&mut self) {
        self.finish(None, true);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::engine::route_info::{CacheStatus, Skipped};
    use crate::hooks::{CheckResult, HookReport, HookResult};
    use crate::prompts::PromptRef;
    use crate::usage::Usage;

    fn attempt(error: Option<ErrorCode>) -> Attempt {
        Attempt {
            option_index: "config.targets[0]".into(),
            provider: "open\"ai".into(),
            status: 502,
            error,
            started: SystemTime::UNIX_EPOCH,
            duration: Duration::from_micros(1234),
        }
    }

    #[test]
    fn the_json_line_is_what_serialize_gives_serde_json() {
        let check = CheckResult {
            id: "pii".into(),
            verdict: false,
            data: Value::Null,
            error: None,
            execution_time: 3,
            transformed: false,
            created_at: "t".into(),
            log: Value::Null,
            fail_on_error: false,
        };
        let hook = HookResult {
            verdict: false,
            id: "guard".into(),
            transformed: true,
            checks: vec![check],
            feedback: None,
            execution_time: 4,
            is_async: false,
            kind: "guardrail",
            created_at: "t".into(),
            deny: true,
        };
        let full = RequestRecord {
            started: SystemTime::UNIX_EPOCH + Duration::from_millis(1_796_100_665_123),
            endpoint: "/v1/chat/completions".into(),
            stream: true,
            key: Some("team-\u{e9}".into()),
            trace_context: None,
            metadata: Arc::new(serde_json::json!({"user": "a\nb", "n": [1, 2.5, null]})),
            status: 429,
            error: Some((ErrorCode::RateLimited, "too \"many\" \\ requests\t".into())),
            cancelled: true,
            latency: Duration::from_nanos(12_345_678),
            route: RouteInfo {
                option_index: Some("config.targets[1]".into()),
                provider: Some("anthropic".into()),
                retry_count: -1,
                cache_status: CacheStatus::Hit,
                attempts: vec![attempt(Some(ErrorCode::UpstreamError)), attempt(None)],
                trace_id: Some("gw-\u{1}".into()),
                dropped_params: vec!["logit_bias".into()],
                model: Some("claude-\u{2603}".into()),
                usage: Some(Usage {
                    input_tokens: 10,
                    output_tokens: 5,
                    total_tokens: 15,
                    cached_input_tokens: 1,
                    reasoning_tokens: 2,
                    cache_write_input_tokens: 3,
                }),
                cost: Some(4.2000000000000004e-6),
                ttft: Some(Duration::from_micros(777)),
                skipped: vec![Skipped { option_index: "config.targets[2]".into(), provider: "groq".into() }],
                limit: Some("key team-a: requests_per_minute".into()),
                prompt: Some(Arc::new(PromptRef { id: "welcome".into(), version: Some("v2".into()) })),
                hooks: Some(HookReport { before_request_hooks: vec![hook.clone()], after_request_hooks: vec![hook] }),
                ..RouteInfo::default()
            },
            request_body: Some(Bytes::from_static(b"{\"model\":\"m\"}")),
            response_body: Some(Bytes::from_static(b"\xff\xfe")),
        };
        let bare = RequestRecord::refused(&GatewayError::new(ErrorCode::InvalidRequest, "bad"), None, "/v1/x");
        let no_version = RequestRecord {
            route: RouteInfo {
                prompt: Some(Arc::new(PromptRef { id: "p".into(), version: None })),
                attempts: vec![attempt(None)],
                ..RouteInfo::default()
            },
            ..RequestRecord::refused(&GatewayError::new(ErrorCode::InvalidRequest, "bad"), Some("t".into()), "/")
        };
        for record in [full, bare, no_version] {
            assert_eq!(record.to_json_line(), serde_json::to_string(&record).unwrap());
        }
    }

    /// Formats that write a map's length before its entries (MessagePack) need the count
    /// of fields present, not of fields there could be.
    #[test]
    fn serialize_gives_the_count_of_fields_present() {
        use serde_test::{Token, assert_ser_tokens};
        let error = GatewayError::new(ErrorCode::InvalidRequest, "bad");
        let record = RequestRecord {
            started: SystemTime::UNIX_EPOCH,
            route: RouteInfo {
                prompt: Some(Arc::new(PromptRef { id: "p".into(), version: None })),
                attempts: vec![attempt(None)],
                ..RouteInfo::default()
            },
            ..RequestRecord::refused(&error, None, "/")
        };
        let route = &record.route;
        let mut tokens = vec![Token::Struct { name: "RequestRecord", len: 23 }];
        let absent = |key: &'static str| [Token::Str(key), Token::None];
        tokens.extend([Token::Str("time"), Token::Str("1970-01-01T00:00:00.000Z")]);
        tokens.extend(absent("trace_id"));
        tokens.extend(absent("key"));
        tokens.extend([Token::Str("metadata"), Token::Map { len: Some(0) }, Token::MapEnd]);
        tokens.extend([Token::Str("endpoint"), Token::Str("/"), Token::Str("stream"), Token::Bool(false)]);
        tokens.extend(absent("provider"));
        tokens.extend(absent("model"));
        tokens.extend(absent("option_index"));
        tokens.extend([Token::Str("status"), Token::U16(400)]);
        tokens.extend([Token::Str("error_code"), Token::Some, Token::Str(ErrorCode::InvalidRequest.as_str())]);
        tokens.extend([Token::Str("error_message"), Token::Some, Token::Str("bad")]);
        tokens.extend([
            Token::Str("cancelled"),
            Token::Bool(false),
            Token::Str("retries"),
            Token::I32(route.retry_count),
        ]);
        tokens.extend([Token::Str("cache_status"), Token::Str(route.cache_status.as_str())]);
        tokens.extend([Token::Str("latency_ms"), Token::F64(0.0)]);
        tokens.extend([Token::Str("upstream_latency_ms"), Token::Some, Token::F64(1.234)]);
        tokens.extend(absent("ttft_ms"));
        tokens.extend(absent("usage"));
        tokens.extend(absent("cost_usd"));
        tokens.extend([Token::Str("prompt_id"), Token::Str("p")]);
        tokens.extend(absent("prompt_version"));
        tokens.extend([Token::Str("attempts"), Token::Seq { len: Some(1) }, Token::Struct { name: "Attempt", len: 5 }]);
        tokens.extend([Token::Str("option_index"), Token::Str("config.targets[0]")]);
        tokens.extend([Token::Str("provider"), Token::Str("open\"ai"), Token::Str("status"), Token::U16(502)]);
        tokens.extend(absent("error_code"));
        tokens.extend([Token::Str("latency_ms"), Token::F64(1.234), Token::StructEnd, Token::SeqEnd]);
        tokens.push(Token::StructEnd);
        assert_ser_tokens(&record, &tokens);
    }

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_796_100_665_123);
        assert_eq!(rfc3339(t), "2026-12-01T04:51:05.123Z");
        let leap = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000Z");
    }
}
