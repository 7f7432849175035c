//! The async orchestration: walk the strategy tree, call providers, retry, fall back.
//!
//! Generic over [`Transport`] (which also supplies sleeping and the clock), so it runs
//! on tokio in the server and bindings, and on a fake in tests, with the same code.

mod admission;
mod circuit;
mod dry_run;
mod guard;
mod limits;
mod metering;
mod options;
mod record;
mod retry_after;
mod route_info;
mod session;
mod stream;
mod stream_cache;
mod trace_context;
mod transport;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::future::{BoxFuture, Either};
use http::HeaderMap;
use serde_json::Value;

pub use admission::WhenStateDown;
pub use dry_run::{PlannedAttempt, dry_run};
pub use limits::Limits;
pub use options::RequestOptions;
pub use record::{Observers, RequestObserver, RequestRecord, rfc3339};
pub use retry_after::{parse_http_date, requested_delay};
pub use route_info::{Attempt, CacheStatus, RouteInfo, Skipped, StreamHooks, StreamTotals, Totals};
pub use session::{Session, Upgraded};
pub use stream::{ChunkStream, EarlyFailure};
pub use trace_context::{TRACEPARENT, TraceContext};
pub use transport::{ByteStream, HttpResponse, Transport, TransportError, TransportErrorKind, collect_body};

use crate::cache::{Cache, CachedResponse, InMemoryCache, cache_key};
use crate::config::{Config, Leaf, Node, Strategy};
use crate::error::{ErrorCode, GatewayError};
use crate::providers::{BuildInput, HttpRequest, Provider, ProviderTarget, ResponseContext, StreamUsage};
use crate::query::QueryContext;
use crate::request::{Endpoint, GatewayRequest, RequestBody, validate_body};
use crate::rng::{RandomSource, SplitMix64};
use crate::router;
use crate::settings::TargetSettings;
use crate::state::{InMemoryState, SharedState};
use admission::Reservations;
use circuit::Circuit;
use limits::{Allowance, Budget, MAX_ERROR_BODY_BYTES, Wait, WaitSetBy};
use metering::Pricing;

/// The header every upstream call of a server carries: the ids of the gateways the request
/// passed through (see [`RequestOptions::via`]).
pub const VIA_HEADER: &str = "x-gatewise-via";

/// The total time a request may spend waiting on `Retry-After` values.
pub const RETRY_AFTER_BUDGET: Duration = Duration::from_secs(60);

/// The answer body.
pub enum ResponseBody {
    /// A complete body (JSON, or binary for audio and pass-through routes).
    Full(Bytes),
    /// A streamed chat/completions answer as OpenAI chunk payloads.
    Events(ChunkStream),
    /// The upstream switched protocols (a realtime WebSocket): the session to relay
    /// (boxed: it carries the session's record, and answers are moved around a lot).
    Upgraded(Box<Session>),
}

impl std::fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Full(b) => f.debug_tuple("Full").field(&b.len()).finish(),
            Self::Events(_) => f.write_str("Events(..)"),
            Self::Upgraded(_) => f.write_str("Upgraded(..)"),
        }
    }
}

/// What the engine returns for every request, success or failure. Errors stay values
/// here: the OpenAI error JSON (or a binding's exception) is made only by whoever shows
/// the error to the caller, never for attempts a fallback throws away.
#[derive(Debug)]
pub struct Response {
    /// HTTP status to report: the answer's, or the error's.
    pub status: u16,
    /// Upstream response headers to pass through (request ids, `retry-after`, ...), for
    /// answers and upstream errors alike.
    pub headers: HeaderMap,
    /// The answer, or why there is none.
    pub result: Result<Answer, GatewayError>,
    /// How the request was routed.
    pub route: RouteInfo,
}

/// A successful answer.
#[derive(Debug)]
pub struct Answer {
    /// `content-type` of a `Full` body (`text/event-stream` for a stream).
    pub content_type: Option<String>,
    /// The body.
    pub body: ResponseBody,
}

impl Response {
    /// An error response with the error's status.
    pub fn from_error(error: GatewayError, route: RouteInfo) -> Self {
        Self { status: error.status, headers: HeaderMap::new(), result: Err(error), route }
    }

    /// The error, when the request failed.
    pub fn error(&self) -> Option<&GatewayError> {
        self.result.as_ref().err()
    }
}

/// The outcome of one node, before the route record is attached.
struct Outcome {
    status: u16,
    headers: HeaderMap,
    result: Result<Answer, GatewayError>,
}

impl Outcome {
    fn error(error: GatewayError) -> Self {
        Self::error_with_headers(error, HeaderMap::new())
    }

    fn error_with_headers(error: GatewayError, headers: HeaderMap) -> Self {
        Self { status: error.status, headers, result: Err(error) }
    }

    fn answer(status: u16, headers: HeaderMap, content_type: &str, body: ResponseBody) -> Self {
        Self { status, headers, result: Ok(Answer { content_type: Some(content_type.to_owned()), body }) }
    }

    /// Whether the target was skipped (its circuit is open), not called.
    fn is_skip(&self) -> bool {
        matches!(&self.result, Err(e) if e.code == ErrorCode::CircuitOpen)
    }
}

/// The engine. Cheap to share: wrap in an `Arc` or clone the handles it holds.
#[derive(Clone)]
pub struct Engine {
    transport: Arc<dyn Transport>,
    rng: Arc<dyn RandomSource>,
    cache: Arc<dyn Cache>,
    /// Serial for ids of answers whose upstream gives none.
    ids: Arc<AtomicU64>,
    limits: Limits,
    /// Who gets a record of every request (`None`: nobody, and no record is made).
    observer: Option<Arc<dyn RequestObserver>>,
    /// Rate-limit and budget counters and circuit state (shared by replicas, or not).
    state: Arc<dyn SharedState>,
    /// What limits do while `state` cannot be reached.
    when_state_down: WhenStateDown,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").finish_non_exhaustive()
    }
}

impl Engine {
    /// An engine over `transport`, with random loadbalancing and an in-memory cache.
    pub fn new(transport: Arc<dyn Transport>) -> Self {
        Self {
            transport,
            rng: Arc::new(SplitMix64::from_entropy()),
            cache: Arc::new(InMemoryCache::default()),
            ids: Arc::new(AtomicU64::new(0)),
            limits: Limits::default(),
            observer: None,
            state: Arc::new(InMemoryState::new()),
            when_state_down: WhenStateDown::Allow,
        }
    }

    /// Hand a [`RequestRecord`] of every request to `observer`.
    pub fn with_observer(mut self, observer: Arc<dyn RequestObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Who gets request records, if anyone.
    pub fn observer(&self) -> Option<&Arc<dyn RequestObserver>> {
        self.observer.as_ref()
    }

    /// Use these per-request limits (attempts, deadline, answer size).
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The per-request limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The same engine (random source, cache, id serial) over another transport: a
    /// server's worker thread gets one with a connection pool of its own.
    pub fn with_transport(mut self, transport: Arc<dyn Transport>) -> Self {
        self.transport = transport;
        self
    }

    /// Use this random source (seed it for reproducible loadbalancing).
    pub fn with_rng(mut self, rng: Arc<dyn RandomSource>) -> Self {
        self.rng = rng;
        self
    }

    /// Use this cache backend.
    pub fn with_cache(mut self, cache: Arc<dyn Cache>) -> Self {
        self.cache = cache;
        self
    }

    /// Keep rate-limit and budget counters and circuit state in `state` (replicas share a
    /// Redis one); `when_down` says what limits do while it cannot be reached.
    pub fn with_state(mut self, state: Arc<dyn SharedState>, when_down: WhenStateDown) -> Self {
        self.state = state;
        self.when_state_down = when_down;
        self
    }

    /// The random source (for dry-run planning with the same draws).
    pub fn rng(&self) -> &dyn RandomSource {
        &*self.rng
    }

    /// Route one request. Never panics and never fails outright: errors come back as a
    /// [`Response`] whose `result` is the [`GatewayError`]. The route carries the answer's
    /// usage and cost (a stream's, once it has ended: [`RouteInfo::settled`]), and the
    /// observer, if any, gets the request's record.
    pub async fn handle(&self, request: &GatewayRequest, options: &RequestOptions) -> Response {
        let started = self.transport.now();
        let started_at = self.transport.wall_clock();
        let reservations = Reservations::default();
        let mut response = self.route(request, options, &reservations).await;
        if let Ok(Answer { body: ResponseBody::Events(_), .. }) = &response.result {
            response.route.ttft = Some(self.transport.now().saturating_duration_since(started));
        }
        // Reserved limits are settled from the request's record, as any observer gets it.
        let observer = match (self.observer.clone(), reservations.settlement(&self.state)) {
            (None, settlement) => settlement,
            (observer, None) => observer,
            (Some(observer), Some(settlement)) => Some(Arc::new(Observers(vec![observer, settlement])) as _),
        };
        match observer {
            Some(observer) => self.report(response, request, options, observer, started, started_at),
            None => response,
        }
    }

    /// Hand the request's record to `observer`: now for a complete answer or an error,
    /// when it ends for a stream.
    fn report(
        &self,
        mut response: Response,
        request: &GatewayRequest,
        options: &RequestOptions,
        observer: Arc<dyn RequestObserver>,
        started: std::time::Instant,
        started_at: std::time::SystemTime,
    ) -> Response {
        let bodies = observer.wants_bodies();
        let request_body = match &request.body {
            RequestBody::Json { raw, .. } | RequestBody::Opaque { raw, .. } if bodies => Some(raw.clone()),
            _ => None,
        };
        let mut record = RequestRecord {
            started: started_at,
            endpoint: request.path.clone(),
            stream: request.body.wants_stream(),
            key: options.key.as_deref().map(str::to_owned),
            trace_context: options.trace_context,
            metadata: options.metadata.clone(),
            status: response.status,
            error: response.error().map(|e| (e.code, e.message.clone())),
            cancelled: false,
            latency: self.transport.now().saturating_duration_since(started),
            // Lent to the record for a complete answer, copied for a stream (both need it).
            route: RouteInfo::default(),
            request_body,
            response_body: None,
        };
        match &mut response.result {
            Ok(Answer { body: ResponseBody::Events(events), .. }) => {
                record.route = response.route.clone();
                let inner = std::mem::replace(events, Box::pin(futures::stream::empty()));
                let clock = self.transport.clone();
                *events = Box::pin(record::Reported { events: inner, record: Some(record), observer, clock, started });
            }
            Ok(Answer { body: ResponseBody::Upgraded(session), .. }) => {
                // Recorded when the session ends, with its length and usage.
                record.route = response.route.clone();
                session.report(record, observer, self.transport.clone(), started);
            }
            Ok(Answer { body: ResponseBody::Full(body), .. }) => {
                if bodies {
                    record.response_body = Some(body.clone());
                }
                record.route = std::mem::take(&mut response.route);
                observer.record(&record);
                response.route = record.route;
            }
            Err(_) => {
                record.route = std::mem::take(&mut response.route);
                observer.record(&record);
                response.route = record.route;
            }
        }
        response
    }

    async fn route(&self, request: &GatewayRequest, options: &RequestOptions, reservations: &Reservations) -> Response {
        let mut route =
            RouteInfo { trace_id: options.trace_id.clone(), prompt: options.prompt.clone(), ..RouteInfo::default() };
        if let Err(e) = validate_body(request.endpoint, &request.body) {
            return Response::from_error(e, route);
        }
        let single;
        let config: &Config = match (&options.config, &options.provider) {
            (Some(config), _) => config,
            (None, Some(provider)) => {
                single = Config::single(provider.as_ref().clone());
                &single
            }
            (None, None) => {
                let e = GatewayError::config(
                    "",
                    "no config and no provider: send a config (x-portkey-config) or a provider (x-portkey-provider)",
                );
                return Response::from_error(e, route);
            }
        };
        static EMPTY: Value = Value::Null;
        let ctx = QueryContext {
            metadata: &options.metadata,
            // Parsing the body is the costliest step of a pass-through request: skip it
            // when no query looks at the body.
            params: if config.reads_params() { request.body.value().unwrap_or(&EMPTY) } else { &EMPTY },
            pathname: &request.path,
        };
        if !options.limits.is_empty() {
            // The request's own limits (its gateway key's, its metadata's), priced at the
            // first target's provider.
            let provider = router::first_leaf(config)
                .and_then(|leaf| leaf.provider.as_ref())
                .or(options.provider.as_ref())
                .map(|t| t.provider.slug());
            let estimate = || admission::estimate(request, provider, None);
            let now = self.transport.wall_clock();
            if let Err(refusal) =
                admission::admit(&*self.state, self.when_state_down, &options.limits, estimate, None, now, reservations)
                    .await
            {
                route.limit = refusal.limit;
                let mut response = Response::from_error(refusal.error, route);
                response.headers = refusal.headers;
                return response;
            }
        }
        let budget = Budget::new(self.limits, self.transport.now());
        let call = Call { request, options, budget: &budget, reservations };
        let outcome = self.try_node(config.root(), call, ctx, &mut route).await;
        Response { status: outcome.status, headers: outcome.headers, result: outcome.result, route }
    }

    fn try_node<'a>(
        &'a self,
        node: &'a Node,
        call: Call<'a>,
        ctx: QueryContext<'a>,
        route: &'a mut RouteInfo,
    ) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let group = match node {
                Node::Leaf(leaf) => return self.try_leaf(leaf, call, route).await,
                Node::Group(group) => group,
            };
            let selection = match router::select(group, &ctx, &*self.rng) {
                Ok(selection) => selection,
                Err(e) => {
                    route.option_index = Some(group.option_index.clone());
                    return Outcome::error(e);
                }
            };
            let mut last = None;
            let mut skipped = Vec::new();
            let mut next = Some(selection);
            while let Some(selection) = next.take() {
                for i in selection {
                    let outcome = self.try_node(&group.targets[i], call, ctx, route).await;
                    // A target skipped for its open circuit was never called: a fallback
                    // moves on whatever its status codes say, a loadbalance draws again.
                    let moves_on = match &group.strategy {
                        _ if outcome.is_skip() => true,
                        Strategy::Fallback { on_status_codes } => {
                            router::fallback_continues(on_status_codes.as_deref(), outcome.status)
                        }
                        _ => false,
                    };
                    if !moves_on {
                        return outcome;
                    }
                    if outcome.is_skip()
                        && let Strategy::LoadBalance { weights, .. } = &group.strategy
                    {
                        skipped.push(i);
                        next = router::draw_excluding(weights, &skipped, &*self.rng).map(router::Selection::One);
                    }
                    last = Some(outcome);
                }
            }
            // Every fallback target failed: the last answer is the answer.
            last.unwrap_or_else(|| Outcome::error(GatewayError::new(ErrorCode::Internal, "a group selected no target")))
        })
    }

    async fn try_leaf(&self, leaf: &Leaf, call: Call<'_>, route: &mut RouteInfo) -> Outcome {
        let Call { request, options, .. } = call;
        route.option_index = Some(leaf.option_index.clone());
        route.retry_count = 0;
        route.cache_status = CacheStatus::Disabled;
        route.provider = None;
        route.dropped_params.clear();
        route.hooks = None;
        route.stream_hooks = None;
        let target = match router::target_for(leaf, request, options.provider.as_ref()) {
            Ok(target) => target,
            Err(e) => {
                route.provider.clone_from(&e.provider);
                return Outcome::error(e);
            }
        };
        let provider = target.provider;
        route.provider = Some(provider.slug().to_owned());
        let settings = &leaf.settings;
        route.model = requested_model(request, settings);
        if let Err(e) = held_credentials_allow(target, settings, options, request) {
            return Outcome::error(e);
        }
        let hook_cx = guard::HookContext { request, settings, metadata: &options.metadata, provider: provider.slug() };
        let rewritten;
        let request = match self.before_hooks(hook_cx, route).await {
            Ok(None) => request,
            Ok(Some(request)) => {
                rewritten = request;
                &rewritten
            }
            Err(e) => return Outcome::error(e.with_provider(provider.slug())),
        };
        let call = Call { request, ..call };
        let circuit = match &settings.circuit {
            Some(policy) => {
                match self.circuit_check(policy, target, custom_host(target, settings, options), leaf, route).await {
                    Ok(circuit) => Some(circuit),
                    Err(skip) => return skip,
                }
            }
            None => None,
        };
        if let Some(scope) = target.held.as_ref().and_then(|held| held.limits.as_deref()) {
            let prices = target.held.as_ref().and_then(|held| held.prices.as_deref());
            let estimate = || admission::estimate(request, Some(provider.slug()), prices);
            let now = self.transport.wall_clock();
            let scopes = std::slice::from_ref(scope);
            let leaf_index = Some(leaf.option_index.as_str());
            let admitted = admission::admit(
                &*self.state,
                self.when_state_down,
                scopes,
                estimate,
                leaf_index,
                now,
                call.reservations,
            );
            if let Err(refusal) = admitted.await {
                route.limit = refusal.limit;
                return Outcome::error_with_headers(refusal.error.with_provider(provider.slug()), refusal.headers);
            }
        }
        let credential = match provider.credential_request(target) {
            None => None,
            Some(request) => match self.transport.credential(&request).await {
                Ok(token) => Some(token),
                Err(e) => return Outcome::error(credential_error(provider.slug(), &e)),
            },
        };
        // A Messages request to a provider that does not speak Messages goes through chat.
        let served = match crate::providers::for_request(provider, request, settings) {
            Ok(served) => served,
            Err(e) => return Outcome::error(e.with_provider(provider.slug())),
        };
        let provider = served.provider();
        let now = self.transport.wall_clock();
        let input = build_input(request, target, settings, options, now, credential.as_deref());
        let mut upstream = match provider.build_request(&input) {
            Ok(upstream) => upstream,
            Err(e) => return Outcome::error(e.with_provider(provider.slug())),
        };
        route.dropped_params.clone_from(&upstream.dropped_params);
        if let Some(via) = &options.via {
            upstream.headers.insert(http::HeaderName::from_static(VIA_HEADER), via.clone());
        }

        // Streamed chat answers are cached as the completion they add up to (and replayed
        // as chunks); other streams are not cacheable.
        let cacheable =
            request.endpoint.is_cacheable() && (!upstream.stream || request.endpoint == Endpoint::ChatCompletions);
        let cache = settings.cache.filter(|_| cacheable).map(|policy| {
            (
                cache_key(provider.slug(), request.endpoint, &upstream, options.cache_namespace.as_deref()),
                policy.max_age,
            )
        });
        let pricing = Pricing {
            provider: provider.slug(),
            prices: target.held.as_ref().and_then(|held| held.prices.clone()),
            requested_model: route.model.clone(),
            cache_hit: false,
        };
        if let Some((key, _)) = &cache
            && let Some(hit) = self.cache_lookup(key, &upstream, options, route).await
        {
            let hit = self.metered(hit, Pricing { cache_hit: true, ..pricing }, provider, request, settings, route);
            return guard::with_hook_results(hit, route);
        }

        let outcome = self.attempts(leaf, provider, &upstream, route, call, circuit.as_ref()).await;
        // An answer a guardrail failed is not served again without its checks.
        let outcome = match cache {
            Some((key, ttl)) if !route.hooks.as_ref().is_some_and(crate::hooks::HookReport::failed) => {
                self.cache_store(outcome, key, ttl).await
            }
            _ => outcome,
        };
        let outcome = self.metered(outcome, pricing, provider, request, settings, route);
        guard::with_hook_results(outcome, route)
    }

    /// Read a successful answer's usage and cost into `route` (a stream's as it passes).
    fn metered(
        &self,
        outcome: Outcome,
        pricing: Pricing,
        provider: &dyn Provider,
        request: &GatewayRequest,
        settings: &TargetSettings,
        route: &mut RouteInfo,
    ) -> Outcome {
        let Outcome { status, headers, result: Ok(Answer { content_type, body }) } = outcome else { return outcome };
        let body = match body {
            ResponseBody::Full(body) => {
                if (200..300).contains(&status) {
                    metering::complete(&body, &pricing, route);
                }
                ResponseBody::Full(body)
            }
            ResponseBody::Events(events) => {
                // The usage chunk is the gateway's own when the provider sends it only on
                // request (or the cache replays it) and the caller did not ask.
                // (A Messages caller always gets the usage, in `message_delta`.)
                let ours = pricing.cache_hit || provider.stream_usage() == StreamUsage::OnRequest;
                let remove_usage = ours
                    && request.endpoint.dialect() == crate::Dialect::OpenAi
                    && !crate::providers::caller_wants_usage(request, settings);
                let totals = StreamTotals::default();
                route.stream_totals = Some(totals.clone());
                ResponseBody::Events(metering::stream(events, remove_usage, pricing, totals))
            }
            ResponseBody::Upgraded(mut session) => {
                let totals = StreamTotals::default();
                route.stream_totals = Some(totals.clone());
                session.meter(pricing, totals);
                ResponseBody::Upgraded(session)
            }
        };
        Outcome { status, headers, result: Ok(Answer { content_type, body }) }
    }

    /// A cached answer for `key`, shaped as the request wants it (a stream is replayed as
    /// chunks); records HIT, MISS or REFRESH.
    async fn cache_lookup(
        &self,
        key: &str,
        upstream: &HttpRequest,
        options: &RequestOptions,
        route: &mut RouteInfo,
    ) -> Option<Outcome> {
        if options.cache_force_refresh {
            route.cache_status = CacheStatus::Refresh;
            return None;
        }
        route.cache_status = CacheStatus::Miss;
        let hit = self.cache.get(key).await?;
        let (body, content_type) = if upstream.stream {
            // Replayed with its usage chunk, which the metering takes out if not asked for.
            (ResponseBody::Events(stream_cache::replay(&hit.body, true)?), "text/event-stream")
        } else {
            (ResponseBody::Full(hit.body), "application/json")
        };
        route.cache_status = CacheStatus::Hit;
        Some(Outcome::answer(200, HeaderMap::new(), content_type, body))
    }

    /// Store a successful final answer, never an error (Portkey's poisoning bug); a
    /// stream is stored once it has ended cleanly.
    async fn cache_store(&self, outcome: Outcome, key: String, ttl: Duration) -> Outcome {
        let Outcome { status, headers, result: Ok(Answer { content_type, body }) } = outcome else { return outcome };
        if !(200..300).contains(&status) {
            return Outcome { status, headers, result: Ok(Answer { content_type, body }) };
        }
        let body = match body {
            ResponseBody::Full(body) => {
                // A pass-through answer is not parsed on its way to the caller, but one that
                // is not JSON must not be served again to every later caller.
                if crate::json::from_slice::<serde::de::IgnoredAny>(&body).is_ok() {
                    self.cache.put(&key, CachedResponse { body: body.clone() }, ttl).await;
                }
                ResponseBody::Full(body)
            }
            ResponseBody::Events(events) => {
                let max = self.limits.max_response_bytes;
                ResponseBody::Events(stream_cache::store_when_complete(events, self.cache.clone(), key, ttl, max))
            }
            // Sessions are never cacheable (see `Endpoint::is_cacheable`).
            upgraded @ ResponseBody::Upgraded(_) => upgraded,
        };
        Outcome { status, headers, result: Ok(Answer { content_type, body }) }
    }

    /// The first try and the retries of one leaf, within the request's budget.
    async fn attempts(
        &self,
        leaf: &Leaf,
        provider: &dyn Provider,
        upstream: &HttpRequest,
        route: &mut RouteInfo,
        call: Call<'_>,
        circuit: Option<&Circuit<'_>>,
    ) -> Outcome {
        let Call { request, budget, options, .. } = call;
        let timeout = options.request_timeout.or(leaf.settings.request_timeout);
        let policy = &leaf.settings.retry;
        // Not drawn from the RNG: that would shift seeded loadbalance draws away from the
        // dry-run plan.
        let serial = self.ids.fetch_add(1, Ordering::Relaxed);
        let fallback_id = crate::hex_id::hex_id("chatcmpl-gw", serial, 12);
        let mut retry_after_left = RETRY_AFTER_BUDGET;
        let mut attempt: u8 = 0;
        loop {
            let started = self.transport.now();
            let started_at = self.transport.wall_clock();
            let wait = match budget.allow(route.attempts.len(), timeout, started) {
                Allowance::Wait(wait) => wait,
                Allowance::Refused(error) => return Outcome::error(error.with_provider(provider.slug())),
            };
            let cx = ResponseContext {
                request,
                settings: &leaf.settings,
                now: self.transport.wall_clock(),
                fallback_id: &fallback_id,
                usage_chunk: true,
            };
            let traceparent = call.options.trace_context.and_then(|t| t.traceparent(route.attempts.len()));
            let result = self.send_once(provider, upstream, traceparent, wait, &cx, budget).await;
            let duration = self.transport.now().saturating_duration_since(started);
            if let Some(circuit) = circuit {
                let (status, headers) = match &result {
                    Ok(outcome) => (outcome.status, &outcome.headers),
                    Err(failure) => (failure.status(), &failure.headers),
                };
                self.circuit_report(circuit, status, headers);
            }
            let result = match result {
                Ok(outcome) => {
                    let settings = &leaf.settings;
                    let cx = guard::HookContext {
                        request,
                        settings,
                        metadata: &options.metadata,
                        provider: provider.slug(),
                    };
                    self.after_hooks(outcome, cx, route)
                        .await
                        .map_err(|e| Failure::gave_up(e.with_provider(provider.slug())))
                }
                failure => failure,
            };
            let (status, failure) = match result {
                Ok(outcome) => {
                    route.attempts.push(self.attempt_record(
                        leaf,
                        provider,
                        outcome.status,
                        None,
                        started_at,
                        duration,
                    ));
                    route.retry_count = i32::from(attempt);
                    return outcome;
                }
                Err(failure) => (failure.status(), failure),
            };
            route.attempts.push(self.attempt_record(
                leaf,
                provider,
                status,
                Some(failure.error.code),
                started_at,
                duration,
            ));
            // Connection failures are retried whatever on_status_codes says.
            let retryable = failure.connection || policy.on_status_codes.contains(&status);
            if !retryable || attempt >= policy.attempts {
                route.retry_count = if retryable && policy.attempts > 0 { -1 } else { i32::from(attempt) };
                return failure.into_outcome();
            }
            let asked = (policy.use_retry_after_header && matches!(status, 429 | 503))
                .then(|| requested_delay(&failure.headers, self.transport.wall_clock()))
                .flatten();
            let delay = match asked {
                Some(delay) if delay > retry_after_left => {
                    // The upstream wants us back later than we are willing to wait.
                    route.retry_count = -1;
                    return failure.into_outcome();
                }
                Some(delay) => {
                    retry_after_left -= delay;
                    delay
                }
                None => transport::backoff(u32::from(attempt) + 1),
            };
            if delay >= budget.remaining(self.transport.now()) {
                // Waiting would use up the request's deadline: this failure is the answer.
                route.retry_count = -1;
                return failure.into_outcome();
            }
            self.transport.sleep(delay).await;
            attempt += 1;
        }
    }

    fn attempt_record(
        &self,
        leaf: &Leaf,
        provider: &dyn Provider,
        status: u16,
        error: Option<ErrorCode>,
        started: std::time::SystemTime,
        duration: Duration,
    ) -> Attempt {
        Attempt {
            option_index: leaf.option_index.clone(),
            provider: provider.slug().to_owned(),
            status,
            error,
            started,
            duration,
        }
    }

    /// One attempt, bounded by `wait`: send, wait for the answer, read it (a stream up to
    /// its first chunk). One timer covers the whole attempt.
    async fn send_once(
        &self,
        provider: &dyn Provider,
        upstream: &HttpRequest,
        traceparent: Option<http::HeaderValue>,
        wait: Wait,
        cx: &ResponseContext<'_>,
        budget: &Budget,
    ) -> Result<Outcome, Failure> {
        let fetch = std::pin::pin!(self.fetch(provider, upstream, traceparent, cx));
        match futures::future::select(fetch, self.transport.sleep(wait.limit)).await {
            Either::Left((result, _)) => result,
            Either::Right(_) => Err(match wait.set_by {
                WaitSetBy::Deadline => Failure::gave_up(budget.deadline_error().with_provider(provider.slug())),
                set_by => Failure::timeout(provider.slug(), wait.limit, set_by),
            }),
        }
    }

    /// Send, wait for headers, then read the answer or open the stream.
    async fn fetch(
        &self,
        provider: &dyn Provider,
        upstream: &HttpRequest,
        traceparent: Option<http::HeaderValue>,
        cx: &ResponseContext<'_>,
    ) -> Result<Outcome, Failure> {
        let slug = provider.slug();
        let mut sent = upstream.clone();
        if let Some(traceparent) = traceparent {
            sent.headers.insert(http::HeaderName::from_static(TRACEPARENT), traceparent);
        }
        let response = self.transport.send(sent).await.map_err(|e| Failure::connection(slug, upstream, &e))?;
        let headers = passthrough_response_headers(&response.headers);
        let content_type =
            response.headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
        if let Some(upgraded) = response.upgraded {
            if cx.endpoint() != Endpoint::Realtime {
                let e = GatewayError::invalid_upstream_response(slug, "it switched protocols unasked");
                return Err(Failure::gave_up(e));
            }
            let session = ResponseBody::Upgraded(Box::new(session::Session::new(upgraded)));
            return Ok(Outcome {
                status: response.status,
                headers,
                result: Ok(Answer { content_type, body: session }),
            });
        }
        if !(200..300).contains(&response.status) {
            let status = response.status;
            // An error body too long to read is reported without its text.
            let body = collect_body(response.body, MAX_ERROR_BODY_BYTES).await.unwrap_or_default();
            let error = without_credentials(provider.upstream_error(status, &body), &upstream.headers);
            return Err(Failure { error, headers, connection: false });
        }
        if upstream.stream {
            let translator = provider.stream_translator(cx);
            return match stream::open(response.body, translator).await {
                Ok(events) => {
                    Ok(Outcome::answer(response.status, headers, "text/event-stream", ResponseBody::Events(events)))
                }
                Err(EarlyFailure::Transport(e)) => Err(Failure::connection(slug, upstream, &e)),
                // A broken stream before its first chunk is as retryable as a refused connection.
                Err(EarlyFailure::Upstream(error)) => {
                    Err(Failure { error: error.with_provider(slug), headers, connection: true })
                }
            };
        }
        let limit = self.limits.max_response_bytes;
        if declared_length(&response.headers).is_some_and(|n| n > limit as u64) {
            return Err(Failure::gave_up(too_large(slug, limit)));
        }
        let body = collect_body(response.body, limit).await.map_err(|e| match e.kind {
            TransportErrorKind::TooLarge => Failure::gave_up(too_large(slug, limit)),
            _ => Failure::connection(slug, upstream, &e),
        })?;
        match provider.transform_response(cx, body) {
            Ok(body) => Ok(Outcome {
                status: response.status,
                headers,
                result: Ok(Answer { content_type, body: ResponseBody::Full(body) }),
            }),
            Err(error) => Err(Failure { error: error.with_provider(slug), headers, connection: false }),
        }
    }
}

/// The headers that carry a credential upstream.
const CREDENTIAL_HEADERS: &[&str] =
    &["authorization", "api-key", "x-api-key", "x-goog-api-key", "x-amz-security-token", "proxy-authorization"];

/// `error` with every credential the request carried cut out of its message: upstreams
/// echo a rejected key ("Incorrect API key provided: sk-..."), and a server's own key
/// must reach neither the caller nor the request log.
fn without_credentials(mut error: GatewayError, sent: &HeaderMap) -> GatewayError {
    for name in CREDENTIAL_HEADERS {
        for value in sent.get_all(*name) {
            let Ok(value) = value.to_str() else { continue };
            let secret = value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("Basic ")).unwrap_or(value).trim();
            // Short values cannot be told apart from ordinary words.
            if secret.len() >= 8 && error.message.contains(secret) {
                error.message = error.message.replace(secret, "[redacted]");
            }
        }
    }
    error
}

/// `content-length`, when the upstream declares one.
fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(http::header::CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

fn too_large(provider: &str, limit: usize) -> GatewayError {
    GatewayError::new(
        ErrorCode::UpstreamResponseTooLarge,
        format!("{provider} answered with more than {limit} bytes, the most the gateway reads"),
    )
    .with_provider(provider)
}

/// The model a leaf asks for: its `override_params` model, else the body's (a realtime
/// session's: its `?model=`).
fn requested_model(request: &GatewayRequest, settings: &TargetSettings) -> Option<String> {
    match settings.override_params.get("model") {
        Some(model) => model.as_str().map(str::to_owned),
        None if request.endpoint == Endpoint::Realtime => request.query_param("model"),
        None => request.body.shape().and_then(|shape| shape.model_name.clone()),
    }
}

/// The parts of one request every node of the walk reads.
#[derive(Clone, Copy)]
struct Call<'a> {
    request: &'a GatewayRequest,
    options: &'a RequestOptions,
    budget: &'a Budget,
    /// What the request reserved against limits, settled when it ends.
    reservations: &'a Reservations,
}

/// What a provider needs to build the upstream request for one leaf: request options win
/// over the leaf's settings for `custom_host` and `forward_headers` (the `x-portkey-*`
/// headers override every target, as in Portkey).
fn build_input<'a>(
    request: &'a GatewayRequest,
    target: &'a ProviderTarget,
    settings: &'a TargetSettings,
    options: &'a RequestOptions,
    now: std::time::SystemTime,
    credential: Option<&'a str>,
) -> BuildInput<'a> {
    BuildInput {
        now,
        request,
        target,
        settings,
        custom_host: custom_host(target, settings, options),
        forward_headers: options.forward_headers.as_deref().unwrap_or(&settings.forward_headers),
        credential,
    }
}

/// The custom host a leaf's request goes to: the request's (`x-portkey-custom-host`), else
/// the leaf's, else the one held credentials come with (`None`: the provider's own).
fn custom_host<'a>(
    target: &'a ProviderTarget,
    settings: &'a TargetSettings,
    options: &'a RequestOptions,
) -> Option<&'a str> {
    let home = || target.held.as_ref().and_then(|held| held.home.as_deref());
    options.custom_host.as_deref().or(settings.custom_host.as_deref()).or_else(home)
}

/// What credentials the server holds may be used for. They go only to the host they
/// were configured with: a host a request names (`x-portkey-custom-host`, or a caller's
/// config around a registry entry) is honoured only with credentials the caller brought,
/// or anyone who can reach the gateway could send its keys anywhere. And a registry entry
/// with a `models` list serves only those models.
fn held_credentials_allow(
    target: &ProviderTarget,
    settings: &TargetSettings,
    options: &RequestOptions,
    request: &GatewayRequest,
) -> Result<(), GatewayError> {
    let Some(held) = &target.held else { return Ok(()) };
    if let Some(models) = &held.models {
        let model = settings
            .override_params
            .get("model")
            .or_else(|| request.body.value().and_then(|body| body.get("model")))
            .and_then(Value::as_str)
            .unwrap_or("");
        if !models.iter().any(|m| m == model) {
            let entry = held.entry.as_deref().unwrap_or("this provider");
            return Err(GatewayError::request(
                "model",
                format!("`{entry}` serves only {}; `{model}` is not one of them", models.join(", ")),
            ));
        }
    }
    if held.allows_host(custom_host(target, settings, options)) {
        return Ok(());
    }
    let slug = target.provider.slug();
    Err(GatewayError::new(
        ErrorCode::ForbiddenCustomHost,
        format!(
            "the server's own {slug} credentials are only sent to the host they were configured with, \
             never to another host; to call another host, bring your own key \
             (x-portkey-provider with Authorization, or a config with api_key)"
        ),
    )
    .with_param("custom_host")
    .with_provider(slug))
}

/// A credential that could not be fetched: a rejected key is the caller's config problem
/// (400, no retry); an unreachable token endpoint is a connection failure (502, fallback).
fn credential_error(provider: &str, e: &TransportError) -> GatewayError {
    let error = if e.kind == TransportErrorKind::Forbidden {
        GatewayError::config("", format!("{provider} credentials were refused: {}", e.message))
    } else {
        GatewayError::new(
            ErrorCode::UpstreamConnectionError,
            format!("fetching {provider} credentials failed: {}", e.message),
        )
    };
    error.with_provider(provider)
}

/// A failed attempt.
struct Failure {
    error: GatewayError,
    headers: HeaderMap,
    /// No usable answer arrived (refused, reset, DNS, TLS, broken early stream).
    connection: bool,
}

impl Failure {
    fn status(&self) -> u16 {
        self.error.status
    }

    fn timeout(provider: &str, limit: Duration, set_by: WaitSetBy) -> Self {
        let message = if set_by == WaitSetBy::RequestTimeout {
            format!("Request exceeded the timeout sent in the request: {}ms", limit.as_millis())
        } else {
            format!(
                "no answer from {provider} within {} s, the gateway's default attempt timeout \
                 (set request_timeout to choose another)",
                limit.as_secs()
            )
        };
        let error = GatewayError::new(ErrorCode::Timeout, message).with_provider(provider);
        Self { error, headers: HeaderMap::new(), connection: false }
    }

    /// A failure that is neither the upstream's answer nor a connection problem.
    fn gave_up(error: GatewayError) -> Self {
        Self { error, headers: HeaderMap::new(), connection: false }
    }

    fn connection(provider: &str, upstream: &HttpRequest, e: &TransportError) -> Self {
        let host = upstream.url.split('/').nth(2).unwrap_or(&upstream.url);
        if e.kind == TransportErrorKind::Forbidden {
            let error = GatewayError::new(ErrorCode::InvalidRequest, format!("refusing to call {host}: {}", e.message))
                .with_param("custom_host")
                .with_provider(provider);
            return Self { error, headers: HeaderMap::new(), connection: false };
        }
        let error = GatewayError::new(
            ErrorCode::UpstreamConnectionError,
            format!("could not reach {provider} at {host}: {}", e.message),
        )
        .with_provider(provider);
        Self { error, headers: HeaderMap::new(), connection: true }
    }

    fn into_outcome(self) -> Outcome {
        Outcome::error_with_headers(self.error, self.headers)
    }
}

/// Upstream headers worth passing to the caller: everything but framing, encoding and
/// connection management, which belong to each hop.
fn passthrough_response_headers(upstream: &HeaderMap) -> HeaderMap {
    const HOP: &[&str] = &[
        "content-length",
        "content-encoding",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "content-type",
        "date",
        "server",
        "upgrade",
        "trailer",
        "te",
        "proxy-connection",
        "alt-svc",
        "set-cookie",
    ];
    let mut out = HeaderMap::with_capacity(upstream.len());
    for (name, value) in upstream {
        if !HOP.contains(&name.as_str()) && !name.as_str().starts_with("x-portkey-") {
            out.append(name.clone(), value.clone());
        }
    }
    out
}
