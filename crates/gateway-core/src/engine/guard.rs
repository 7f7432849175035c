//! Guardrail hooks in a leaf's path (SPEC.md "Guardrail hooks"): before-request hooks
//! on the request before it is built, after-request hooks on each answer before it is
//! taken. A refusal is a 446 outcome, which a fallback moves past and `retry` retries only
//! when 446 is among its statuses; a failure without `deny` lets the answer through as 246.
//! A stream is held whole when an after-request hook could refuse it; otherwise its hooks
//! run once it has ended, and their results reach the request's record.

use std::borrow::Cow;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use futures::future::{Either, join_all};
use serde_json::{Map, Value};

use super::stream::ChunkStream;
use super::transport::collect_body;
use super::{Answer, Engine, Outcome, ResponseBody, RouteInfo, record::rfc3339};
use crate::error::{ErrorCode, GatewayError};
use crate::hooks::{
    self, CheckResult, CheckRun, CheckSpec, Hook, HookReport, HookResult, Phase, PhaseOutcome, Rewrite, Subject,
    text::{self, StreamText},
};
use crate::request::{GatewayRequest, RequestBody};
use crate::settings::TargetSettings;

/// What a leaf's hooks look at besides the body: who is asking, and where it goes.
#[derive(Clone, Copy)]
pub(super) struct HookContext<'a> {
    pub request: &'a GatewayRequest,
    pub settings: &'a TargetSettings,
    pub metadata: &'a Value,
    pub provider: &'a str,
}

impl HookContext<'_> {
    /// The request body as the provider will get it: `override_params` over the caller's
    /// (borrowed when there are none).
    fn request_json(&self) -> Option<Cow<'_, Value>> {
        let body = self.request.body.value()?;
        if self.settings.override_params.is_empty() {
            return Some(Cow::Borrowed(body));
        }
        let mut json = body.clone();
        if let Some(object) = json.as_object_mut() {
            for (k, v) in &self.settings.override_params {
                object.insert(k.clone(), v.clone());
            }
        }
        Some(Cow::Owned(json))
    }

    fn metadata(&self) -> &Map<String, Value> {
        static EMPTY: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);
        self.metadata.as_object().unwrap_or(&EMPTY)
    }
}

/// The error for a request or answer the hooks refused.
pub(super) fn refused(report: &HookReport) -> GatewayError {
    let mut error = GatewayError::new(
        ErrorCode::HooksFailed,
        "The guardrail checks defined in the config failed. You can find more information in the `hook_results` object.",
    );
    error.hook_results = Some(Arc::new(report.to_json()));
    error
}

impl Engine {
    /// Run before-request hooks. `Ok(None)`: send the request as it is; `Ok(Some(r))`:
    /// send `r`, its texts rewritten; `Err`: the hooks refused it. Results go to `route`.
    pub(super) async fn before_hooks(
        &self,
        cx: HookContext<'_>,
        route: &mut RouteInfo,
    ) -> Result<Option<GatewayRequest>, GatewayError> {
        let hooks = &cx.settings.hooks.before;
        if hooks.is_empty() || !hooks::runs_for(cx.request.endpoint, Phase::Before) {
            return Ok(None);
        }
        let Some(json) = cx.request_json() else { return Ok(None) };
        let text = text::request_text(&json);
        let subject = Subject {
            phase: Phase::Before,
            endpoint: cx.request.endpoint,
            request: &json,
            response: None,
            text: &text,
            metadata: cx.metadata(),
            provider: cx.provider,
        };
        let outcome = self.run_hooks(hooks, &subject).await;
        let denied = outcome.denied();
        let report = route.hooks.insert(HookReport { before_request_hooks: outcome.results, ..HookReport::default() });
        if denied {
            return Err(refused(report));
        }
        if outcome.rewrites.is_empty() {
            return Ok(None);
        }
        // The caller's body, its texts rewritten (the provider applies `override_params`).
        let mut body = cx.request.body.value().cloned().unwrap_or_default();
        hooks::apply_rewrites(&mut body, Phase::Before, &outcome.rewrites);
        let body = RequestBody::from_value(body)?;
        Ok(Some(GatewayRequest { body, ..cx.request.clone() }))
    }

    /// Run after-request hooks on a successful answer. `Err`: the hooks refused it.
    pub(super) async fn after_hooks(
        &self,
        outcome: Outcome,
        cx: HookContext<'_>,
        route: &mut RouteInfo,
    ) -> Result<Outcome, GatewayError> {
        let hooks = &cx.settings.hooks.after;
        if hooks.is_empty()
            || !hooks::runs_for(cx.request.endpoint, Phase::After)
            || !(200..300).contains(&outcome.status)
        {
            return Ok(outcome);
        }
        let Outcome { status, headers, result: Ok(Answer { content_type, body }) } = outcome else {
            return Ok(outcome);
        };
        let request = cx.request_json().unwrap_or_default();
        let request = &*request;
        let body = match body {
            ResponseBody::Full(bytes) => {
                let Ok(mut answer) = crate::json::from_slice::<Value>(&bytes) else {
                    return Ok(Outcome {
                        status,
                        headers,
                        result: Ok(Answer { content_type, body: ResponseBody::Full(bytes) }),
                    });
                };
                let text = text::answer_text(&answer);
                let outcome = self.run_after(hooks, cx, request, Some(&answer), &text, route).await?;
                if outcome.rewrites.is_empty() {
                    ResponseBody::Full(bytes)
                } else {
                    hooks::apply_rewrites(&mut answer, Phase::After, &outcome.rewrites);
                    ResponseBody::Full(Bytes::from(answer.to_string()))
                }
            }
            ResponseBody::Events(events) if cx.settings.hooks.after_can_deny() => {
                // Held: nothing reaches the caller until the checks have passed.
                let chunks = self.hold(events).await.map_err(|e| e.with_provider(cx.provider))?;
                let mut text = StreamText::new(self.limits.max_response_bytes);
                chunks.iter().for_each(|c| text.push(c));
                self.run_after(hooks, cx, request, None, &text.into_text(), route).await?;
                ResponseBody::Events(Box::pin(futures::stream::iter(chunks.into_iter().map(Ok))))
            }
            ResponseBody::Events(events) => {
                let results = super::route_info::StreamHooks::default();
                route.stream_hooks = Some(results.clone());
                let checked = CheckedStream {
                    engine: self.clone(),
                    hooks: hooks.clone(),
                    request: request.clone(),
                    metadata: cx.metadata().clone(),
                    endpoint: cx.request.endpoint,
                    provider: cx.provider.to_owned(),
                    results,
                };
                ResponseBody::Events(checked.wrap(events, self.limits.max_response_bytes))
            }
            upgraded @ ResponseBody::Upgraded(_) => upgraded,
        };
        Ok(Outcome { status, headers, result: Ok(Answer { content_type, body }) })
    }

    /// Run a complete answer's after-request hooks into `route`; `Err` when they refuse it.
    async fn run_after(
        &self,
        hooks: &[Arc<Hook>],
        cx: HookContext<'_>,
        request: &Value,
        answer: Option<&Value>,
        text: &str,
        route: &mut RouteInfo,
    ) -> Result<PhaseOutcome, GatewayError> {
        let subject = Subject {
            phase: Phase::After,
            endpoint: cx.request.endpoint,
            request,
            response: answer,
            text,
            metadata: cx.metadata(),
            provider: cx.provider,
        };
        let outcome = self.run_hooks(hooks, &subject).await;
        let report = route.hooks.get_or_insert_with(HookReport::default);
        report.after_request_hooks.clone_from(&outcome.results);
        if outcome.denied() {
            return Err(refused(report));
        }
        Ok(outcome)
    }

    /// Every chunk of a stream, read to its end (at most the answer size limit).
    async fn hold(&self, mut events: ChunkStream) -> Result<Vec<Bytes>, GatewayError> {
        let mut chunks = Vec::new();
        let mut left = self.limits.max_response_bytes;
        while let Some(chunk) = events.next().await {
            let chunk = chunk?;
            left = left.checked_sub(chunk.len()).ok_or_else(|| {
                GatewayError::new(
                    ErrorCode::UpstreamResponseTooLarge,
                    "the streamed answer is larger than the gateway holds for its after-request guardrails",
                )
            })?;
            chunks.push(chunk);
        }
        Ok(chunks)
    }

    /// Run a phase's hooks together.
    pub(super) async fn run_hooks(&self, hooks: &[Arc<Hook>], subject: &Subject<'_>) -> PhaseOutcome {
        let ran = join_all(hooks.iter().map(|hook| self.run_hook(hook, subject))).await;
        let mut outcome = PhaseOutcome::default();
        for (result, rewrites) in ran {
            // Applied whatever the verdicts (unless a hook refuses): a redaction asked for
            // must not be skipped because another check of its hook failed.
            outcome.rewrites.extend(rewrites);
            outcome.results.push(result);
        }
        outcome
    }

    async fn run_hook(&self, hook: &Hook, subject: &Subject<'_>) -> (HookResult, Vec<Rewrite>) {
        let started = self.transport.now();
        let created_at = rfc3339(self.transport.wall_clock());
        let ran: Vec<(CheckResult, Option<Rewrite>)> = if hook.sequential {
            let mut ran = Vec::with_capacity(hook.checks.len());
            for spec in &hook.checks {
                ran.push(self.run_check(spec, subject).await);
            }
            ran
        } else {
            join_all(hook.checks.iter().map(|spec| self.run_check(spec, subject))).await
        };
        let (checks, rewrites): (Vec<CheckResult>, Vec<Option<Rewrite>>) = ran.into_iter().unzip();
        let elapsed = millis(self.transport.now().saturating_duration_since(started));
        (HookResult::new(hook, checks, elapsed, created_at), rewrites.into_iter().flatten().collect())
    }

    async fn run_check(&self, spec: &CheckSpec, subject: &Subject<'_>) -> (CheckResult, Option<Rewrite>) {
        let started = self.transport.now();
        let created_at = rfc3339(self.transport.wall_clock());
        let run = match spec.check.webhook() {
            Some(webhook) => self.call_webhook(webhook, subject).await,
            None => spec.check.run(subject),
        };
        let elapsed = millis(self.transport.now().saturating_duration_since(started));
        let result = CheckResult::new(&spec.id, spec.fail_on_error, &run, elapsed, created_at);
        (result, run.rewrite)
    }

    /// Post the check's context to the webhook through the transport (its egress policy
    /// applies) and read the verdict, within the check's timeout.
    async fn call_webhook(&self, webhook: &hooks::Webhook, subject: &Subject<'_>) -> CheckRun {
        let request = hooks::webhook::request(webhook, subject);
        let call = async {
            let response = self.transport.send(request).await.map_err(|e| e.message)?;
            let body = collect_body(response.body, hooks::webhook::MAX_ANSWER_BYTES)
                .await
                .map_err(|e| format!("reading the webhook's answer failed: {}", e.message))?;
            Ok::<_, String>((response.status, body))
        };
        let call = std::pin::pin!(call);
        match futures::future::select(call, self.transport.sleep(webhook.timeout)).await {
            Either::Left((Ok((status, body)), _)) => hooks::webhook::verdict(subject.phase, status, &body),
            Either::Left((Err(message), _)) => CheckRun::error(format!("the webhook could not be reached: {message}")),
            Either::Right(_) => {
                CheckRun::error(format!("the webhook did not answer within {} ms", webhook.timeout.as_millis()))
            }
        }
    }
}

/// An answer with its hook results: status 246 when a hook failed without refusing, and
/// `hook_results` in a JSON body (as Portkey answers).
pub(super) fn with_hook_results(outcome: Outcome, route: &RouteInfo) -> Outcome {
    let Some(report) = route.hooks.as_ref().filter(|r| !r.is_empty()) else { return outcome };
    let Outcome { mut status, headers, result: Ok(Answer { content_type, body }) } = outcome else { return outcome };
    if !(200..300).contains(&status) {
        return Outcome { status, headers, result: Ok(Answer { content_type, body }) };
    }
    if report.failed() {
        status = 246;
    }
    let body = match body {
        ResponseBody::Full(bytes) => ResponseBody::Full(with_field(&bytes, "hook_results", report).unwrap_or(bytes)),
        other => other,
    };
    Outcome { status, headers, result: Ok(Answer { content_type, body }) }
}

/// A JSON object's text with `"name": value` added before its closing brace, without
/// parsing it again (`None` when the text is not an object).
fn with_field(object: &[u8], name: &str, value: &impl serde::Serialize) -> Option<Bytes> {
    let start = object.iter().position(|b| !b.is_ascii_whitespace())?;
    let end = object.iter().rposition(|b| !b.is_ascii_whitespace())?;
    if object[start] != b'{' || object[end] != b'}' || end == start {
        return None;
    }
    let empty = object[start + 1..end].iter().all(u8::is_ascii_whitespace);
    let mut out = Vec::with_capacity(object.len() + 1024);
    out.extend_from_slice(&object[..end]);
    if !empty {
        out.push(b',');
    }
    serde_json::to_writer(&mut out, name).ok()?;
    out.push(b':');
    serde_json::to_writer(&mut out, value).ok()?;
    out.extend_from_slice(&object[end..]);
    Some(Bytes::from(out))
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A stream whose after-request hooks (none of which can refuse it) run once it has
/// ended cleanly, their results set in the route's [`super::route_info::StreamHooks`].
struct CheckedStream {
    engine: Engine,
    hooks: Vec<Arc<Hook>>,
    request: Value,
    metadata: Map<String, Value>,
    endpoint: crate::request::Endpoint,
    provider: String,
    results: super::route_info::StreamHooks,
}

impl CheckedStream {
    fn wrap(self, events: ChunkStream, max_text: usize) -> ChunkStream {
        struct State {
            events: ChunkStream,
            text: StreamText,
            checked: Option<CheckedStream>,
        }
        let state = State { events, text: StreamText::new(max_text), checked: Some(self) };
        Box::pin(futures::stream::unfold(state, |mut s| async move {
            match s.events.next().await {
                Some(Ok(chunk)) => {
                    s.text.push(&chunk);
                    Some((Ok(chunk), s))
                }
                Some(Err(e)) => {
                    s.checked = None; // a broken answer is not checked
                    Some((Err(e), s))
                }
                None => {
                    if let Some(checked) = s.checked.take() {
                        let text = std::mem::take(&mut s.text).into_text();
                        let subject = Subject {
                            phase: Phase::After,
                            endpoint: checked.endpoint,
                            request: &checked.request,
                            response: None,
                            text: &text,
                            metadata: &checked.metadata,
                            provider: &checked.provider,
                        };
                        let outcome = checked.engine.run_hooks(&checked.hooks, &subject).await;
                        checked.results.set(outcome.results);
                    }
                    None
                }
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_field_is_added_to_an_object_without_reparsing_it() {
        let added = |text: &str| with_field(text.as_bytes(), "k", &serde_json::json!([1])).map(|b| b.to_vec());
        assert_eq!(added(r#"{"a": 1}"#).unwrap(), br#"{"a": 1,"k":[1]}"#);
        assert_eq!(added(" {  }\n").unwrap(), b" {  \"k\":[1]}\n");
        assert_eq!(added("[1]"), None);
        assert_eq!(added("\"x\""), None);
        let parsed: Value = serde_json::from_slice(&added(r#"{"choices": [{"text": "}"}]}"#).unwrap()).unwrap();
        assert_eq!(parsed["k"], serde_json::json!([1]));
    }
}
