//! The in-process client the Python and Node bindings wrap: a `Gateway` shaped like the
//! OpenAI and Portkey SDKs' clients, holding resolved options and a shared engine.
//! Everything a binding offers is here or in [`crate::protocol`], so a binding only
//! converts types and bridges its runtime.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use futures::future::BoxFuture;
use gateway_core::engine::{PlannedAttempt, RouteInfo};
use gateway_core::rng::SplitMix64;
use gateway_core::{Answer, Config, Engine, GatewayError, GatewayRequest, RequestBody, RequestOptions, ResponseBody};
use http::HeaderMap;
use serde_json::{Map, Value};

use crate::protocol::{
    self, BodyKind, ConfigNames, ConfigStore, FilePart, HttpReply, Metadata, OptionValue, Options, Resolved, Resolver,
    Resource,
};
use crate::registry::RegistrySource;
use gateway_core::json_path::JsonPath;

/// An in-process gateway client.
#[derive(Debug, Clone)]
pub struct Gateway {
    engine: Engine,
    resolver: Arc<Resolver>,
    resolved: Resolved,
}

/// What one call adds to the client's options: options (they win over the client's), and
/// request headers — `x-portkey-*` ones win over every option, the others reach the
/// provider where the config's `forward_headers` lets them.
#[derive(Debug, Clone, Default)]
pub struct CallOptions {
    /// Options for this call.
    pub options: Options,
    /// Extra request headers.
    pub headers: HeaderMap,
}

impl CallOptions {
    /// From a binding's JSON object: option names (snake_case or camelCase) and
    /// `headers` (an object of header names to text). Unknown keys are errors.
    pub fn from_json(value: Value) -> Result<Self, GatewayError> {
        let mut object = match value {
            Value::Object(object) => object,
            Value::Null => Map::new(),
            _ => return Err(GatewayError::request("", "call options must be an object")),
        };
        let headers = match object.remove("headers") {
            None | Some(Value::Null) => HeaderMap::new(),
            Some(Value::Object(headers)) => {
                let mut map = HeaderMap::with_capacity(headers.len());
                for (name, value) in headers {
                    let Value::String(value) = value else {
                        return Err(GatewayError::request("headers", format!("header `{name}` must be text")));
                    };
                    map.append(header_name(&name)?, header_value(&name, &value)?);
                }
                map
            }
            Some(_) => return Err(GatewayError::request("headers", "headers must be an object of text values")),
        };
        Ok(Self { options: Options::from_json(Value::Object(object))?, headers })
    }
}

/// `redis` (a URL) and `redis_down` (`allow`, `refuse`) from a binding's constructor
/// arguments: the engine keeps its limits, circuits and cache there, shared with every
/// gateway (server or client) using the same Redis.
fn with_shared_state(engine: Engine, arguments: &mut Value) -> Result<Engine, GatewayError> {
    let Some(arguments) = arguments.as_object_mut() else { return Ok(engine) };
    let when_down = match arguments.remove("redis_down").or_else(|| arguments.remove("redisDown")) {
        None | Some(Value::Null) => gateway_core::engine::WhenStateDown::Allow,
        Some(Value::String(rule)) if rule == "allow" => gateway_core::engine::WhenStateDown::Allow,
        Some(Value::String(rule)) if rule == "refuse" => gateway_core::engine::WhenStateDown::Refuse,
        Some(_) => return Err(GatewayError::config("redis_down", "redis_down is \"allow\" or \"refuse\"")),
    };
    match arguments.remove("redis") {
        None | Some(Value::Null) => Ok(engine),
        Some(Value::String(url)) => {
            let redis = crate::redis_state::RedisState::shared(&url)
                .map_err(|e| GatewayError::config("redis", e.to_string()))?;
            Ok(engine.with_state(redis.clone(), when_down).with_cache(redis))
        }
        Some(_) => Err(GatewayError::config("redis", "redis is a URL: redis://host:6379/0")),
    }
}

/// A header name from a binding, checked.
pub fn header_name(name: &str) -> Result<http::HeaderName, GatewayError> {
    http::HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| GatewayError::request("headers", format!("invalid header name {name:?}")))
}

/// A header value from a binding, checked.
pub fn header_value(name: &str, value: &str) -> Result<http::HeaderValue, GatewayError> {
    http::HeaderValue::from_str(value)
        .map_err(|_| GatewayError::request("headers", format!("invalid value for header {name}")))
}

/// The arguments of one call: the params and, for upload resources, the files.
#[derive(Debug, Clone, Default)]
pub struct CallArgs {
    /// The params as JSON text, an object: the request body, or the text fields of a
    /// multipart upload. Text, because that is what the bindings hold and what a JSON body
    /// is sent as: parsed into a map and written out again, it cost a sixth of a binding's
    /// own instructions per call.
    pub params: String,
    /// File fields of a multipart upload.
    pub files: Vec<FilePart>,
}

/// A finished (non-streamed) answer.
#[derive(Debug)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Content type of `body`.
    pub content_type: Option<String>,
    /// The body (OpenAI JSON, or binary for audio).
    pub body: Bytes,
    /// How it was routed.
    pub route: RouteInfo,
}

/// What `create` returns.
pub enum Created {
    /// A complete answer.
    Reply(Reply),
    /// A streamed answer: chunk payloads (JSON text) and the route that produced it.
    Stream(gateway_core::engine::ChunkStream, RouteInfo),
}

impl std::fmt::Debug for Created {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Reply(r) => f.debug_tuple("Reply").field(r).finish(),
            Self::Stream(_, route) => f.debug_tuple("Stream").field(route).finish(),
        }
    }
}

/// An error with the route it happened on (bindings expose both).
#[derive(Debug)]
pub struct CallError {
    /// The error.
    pub error: GatewayError,
    /// The route, when routing got that far.
    pub route: RouteInfo,
}

impl From<GatewayError> for CallError {
    fn from(error: GatewayError) -> Self {
        Self { error, route: RouteInfo::default() }
    }
}

impl Gateway {
    /// A client over `engine`. An invalid config is an `invalid_config` error naming the
    /// JSON path; a config given by name is a registry config id or a JSON file's path.
    pub fn new(engine: Engine, options: Options) -> Result<Self, GatewayError> {
        Self::with_registry(engine, options, RegistrySource::none())
    }

    /// A client whose configs and providers may name `registry`'s entries.
    pub fn with_registry(engine: Engine, options: Options, registry: RegistrySource) -> Result<Self, GatewayError> {
        let resolver = Resolver::client(ConfigStore::with_registry(None, ConfigNames::Files, Arc::new(registry)));
        let resolved = resolver.resolve(options)?;
        Ok(Self { engine, resolver: Arc::new(resolver), resolved })
    }

    /// A client from a binding's constructor arguments: the options, and `registry` (a
    /// path to a registry file, re-read when it changes, or the registry itself).
    pub fn from_json(engine: Engine, mut arguments: Value) -> Result<Self, GatewayError> {
        let engine = with_shared_state(engine, &mut arguments)?;
        let registry = match arguments.as_object_mut().and_then(|a| a.remove("registry")) {
            None | Some(Value::Null) => RegistrySource::none(),
            Some(Value::String(path)) => RegistrySource::open(std::path::Path::new(&path))
                .map_err(|e| GatewayError::from(e).within(&JsonPath::root().key("registry")))?,
            Some(value @ Value::Object(_)) => RegistrySource::fixed(
                crate::registry::load(value)
                    .map_err(|e| GatewayError::from(e).within(&JsonPath::root().key("registry")))?,
            ),
            Some(_) => return Err(GatewayError::config("registry", "registry must be a file path or an object")),
        };
        Self::with_registry(engine, Options::from_json(arguments)?, registry)
    }

    /// A client with `overrides` laid over this one's options (as the OpenAI SDKs'
    /// `with_options`). Overrides that leave the config and provider alone reuse the
    /// compiled config.
    pub fn with_options(&self, overrides: &Options) -> Result<Self, GatewayError> {
        let resolved = self.resolver.overlay(&self.resolved, overrides)?;
        Ok(Self { engine: self.engine.clone(), resolver: self.resolver.clone(), resolved })
    }

    /// The options this client holds.
    pub fn options(&self) -> &Options {
        &self.resolved.options
    }

    /// Call a resource. Per-call options win over the client's, and `x-portkey-*` headers
    /// among the call's headers win over both.
    ///
    /// The future is boxed: a call holds a few KB of state (the request, its options, the
    /// engine's own future), and the runtimes the bindings hand it to copy a future each
    /// time they move it (napi's moves cost a Node call 80k instructions of `memcpy`).
    pub fn create<'a>(
        &'a self,
        resource: &'a Resource,
        args: CallArgs,
        call: CallOptions,
    ) -> BoxFuture<'a, Result<Created, CallError>> {
        Box::pin(self.create_inline(resource, args, call))
    }

    async fn create_inline(
        &self,
        resource: &Resource,
        args: CallArgs,
        call: CallOptions,
    ) -> Result<Created, CallError> {
        if resource.body == BodyKind::Prompt {
            // Boxed: inline, its state (a registry view, a rendered request) would make
            // every call's future several KB, which runtimes and bindings copy as they move it.
            return Box::pin(self.prompt(resource, args, call)).await;
        }
        let mut request = build_request(resource, args)?;
        let options = self.for_request(&mut request, &call.options, &call.headers)?;
        request.headers = call.headers;
        let response = self.engine.handle(&request, &options).await;
        created(response)
    }

    /// `prompts.render` and `prompts.completions.create`: the registry prompt
    /// `prompt_id` rendered with the call's `variables` (its other fields override the
    /// prompt's), answered as `{"success": true, "data": <body>}` or run as a chat
    /// completion on the prompt's provider entry or config — unless this client or the
    /// call chooses what is called.
    async fn prompt(&self, resource: &Resource, args: CallArgs, call: CallOptions) -> Result<Created, CallError> {
        // `prompt_id` as the Python SDKs spell it, `promptID` as Portkey's Node SDK does.
        let mut params = params_object(&args.params)?;
        let id = match params.remove("prompt_id").or_else(|| params.remove("promptID")) {
            Some(Value::String(id)) if !id.is_empty() => id,
            _ => {
                return Err(
                    GatewayError::request("prompt_id", "`prompt_id` (a registry prompt's id) is required").into()
                );
            }
        };
        let body = Value::Object(params).to_string();
        let mut options = self.resolved.options.overlay(&call.options);
        if call.headers.keys().any(|k| k.as_str().starts_with("x-portkey-")) {
            options = options.overlay(&Options::from_headers(&call.headers)?);
        }
        let view = self.resolver.registry();
        let prompt_call = protocol::PromptCall::of_resource(resource.method, &id);
        match protocol::prompt_request(prompt_call, &view, body.as_bytes(), call.headers, &mut options)? {
            protocol::PromptOutcome::Rendered(body) => Ok(Created::Reply(Reply {
                status: 200,
                content_type: Some("application/json".to_owned()),
                body: protocol::rendered_json(body),
                route: RouteInfo::default(),
            })),
            protocol::PromptOutcome::Completion(mut request, prompt) => {
                protocol::address_model(&mut request, &mut options, &view)?;
                let mut resolved = self.resolver.overlay(&self.resolved, &options)?.request;
                resolved.prompt = Some(prompt);
                created(self.engine.handle(&request, &resolved).await)
            }
        }
    }

    /// The dry-run plan for `params` (JSON text, an object): the targets in order with the
    /// upstream request each would receive. Nothing is sent.
    pub fn route(
        &self,
        resource: &Resource,
        params: String,
        metadata: Option<Value>,
        seed: Option<u64>,
    ) -> Result<Vec<PlannedAttempt>, GatewayError> {
        let request = build_request(resource, CallArgs { params, files: Vec::new() })?;
        let mut options = self.resolved.request.clone();
        if let Some(metadata) = metadata.filter(|m| !m.is_null()) {
            let metadata = Metadata::from_json(metadata).map_err(|e| GatewayError::request("metadata", e))?;
            options.metadata = Arc::new(Value::Object(metadata.0));
        }
        let single;
        let config = match (&options.config, &options.provider) {
            (Some(config), _) => config.as_ref(),
            (None, Some(provider)) => {
                single = Config::single(provider.as_ref().clone());
                &single
            }
            (None, None) => return Err(GatewayError::config("", "no config and no provider")),
        };
        let rng = seed.map(SplitMix64::new).unwrap_or_else(SplitMix64::from_entropy);
        gateway_core::engine::dry_run(config, &request, &options, &rng, SystemTime::now())
    }

    /// Serve an HTTP-shaped request in-process (the OpenAI SDK hooks: httpx transport,
    /// `fetch`). `x-portkey-*` headers on the request win over this client's options.
    /// Boxed, as [`Gateway::create`] is.
    pub fn http<'a>(
        &'a self,
        method: &'a str,
        url: &'a str,
        headers: HeaderMap,
        body: Bytes,
    ) -> BoxFuture<'a, HttpReply> {
        Box::pin(self.http_inline(method, url, headers, body))
    }

    async fn http_inline(&self, method: &str, url: &str, headers: HeaderMap, body: Bytes) -> HttpReply {
        let trace_id = self.resolved.request.trace_id.clone();
        let dialect =
            url.parse::<http::Uri>().map_or(gateway_core::Dialect::OpenAi, |u| protocol::dialect_of(u.path()));
        let prepared = async {
            let method = http::Method::from_bytes(method.as_bytes())
                .map_err(|_| GatewayError::request("method", format!("invalid method {method}")))?;
            let uri: http::Uri =
                url.parse().map_err(|e| GatewayError::request("url", format!("invalid URL {url}: {e}")))?;
            let headers_for_options = headers.clone();
            let mut request = protocol::gateway_request(method, &uri, headers, body)?;
            let options = self.for_request(&mut request, &Options::default(), &headers_for_options)?;
            Ok::<_, GatewayError>((request, options))
        }
        .await;
        match prepared {
            Ok((request, options)) => protocol::render(self.engine.handle(&request, &options).await, dialect),
            Err(e) => protocol::error(e, trace_id, dialect),
        }
    }

    /// The client's options with a call's options and then its `x-portkey-*` headers on
    /// top, and `model: "@slug/name"` in the body naming the provider; the client's own,
    /// borrowed, when the call adds none (the common case).
    fn for_request(
        &self,
        request: &mut GatewayRequest,
        options: &Options,
        headers: &HeaderMap,
    ) -> Result<Cow<'_, RequestOptions>, GatewayError> {
        let has_portkey_header = headers.keys().any(|k| k.as_str().starts_with("x-portkey-"));
        let names_entry = request.body.shape().is_some_and(|shape| shape.model_entry().is_some());
        if options.is_empty() && !has_portkey_header && !names_entry {
            return Ok(Cow::Borrowed(&self.resolved.request));
        }
        let mut top =
            if has_portkey_header { options.overlay(&Options::from_headers(headers)?) } else { options.clone() };
        let view = self.resolver.registry();
        protocol::address_model(request, &mut top, &view)?;
        Ok(Cow::Owned(self.resolver.overlay(&self.resolved, &top)?.request))
    }
}

/// An engine response as what `create` returns.
fn created(response: gateway_core::Response) -> Result<Created, CallError> {
    let route = response.route;
    match response.result {
        Err(error) => Err(CallError { error, route }),
        Ok(Answer { body: ResponseBody::Events(events), .. }) => Ok(Created::Stream(events, route)),
        Ok(Answer { content_type, body: ResponseBody::Full(body) }) => {
            Ok(Created::Reply(Reply { status: response.status, content_type, body, route }))
        }
        // No resource is a realtime session (see RESOURCES).
        Ok(Answer { body: ResponseBody::Upgraded(_), .. }) => {
            Err(CallError { error: crate::protocol::not_relayed(), route })
        }
    }
}

/// A pull-based stream of byte items (chunk JSON, or SSE frames) that a binding hands to
/// its host language. `next` pulls one item from the upstream; `close` returns at once,
/// even while a `next` is waiting for the upstream, and drops the upstream response,
/// which cancels the upstream request.
pub struct ClosableStream {
    stream: tokio::sync::Mutex<Option<ItemStream>>,
    closed: std::sync::atomic::AtomicBool,
    close: tokio::sync::Notify,
    /// An error read while a batch was being gathered, for the next call to return.
    failed: std::sync::Mutex<Option<GatewayError>>,
}

/// What a [`ClosableStream`] reads from.
pub type ItemStream = std::pin::Pin<Box<dyn futures::Stream<Item = Result<Bytes, GatewayError>> + Send>>;

impl ClosableStream {
    /// Wrap a stream.
    pub fn new(stream: ItemStream) -> Arc<Self> {
        Arc::new(Self {
            stream: tokio::sync::Mutex::new(Some(stream)),
            closed: std::sync::atomic::AtomicBool::new(false),
            close: tokio::sync::Notify::new(),
            failed: std::sync::Mutex::new(None),
        })
    }

    /// The next items: waits for one, then takes those already read from the upstream (at
    /// most `max`); empty at the end or once closed. For a binding whose every call
    /// crosses threads (Node's): a fast stream's chunks arrive many to a read, and one
    /// crossing carries them all. An error after the first item is returned by the next
    /// call, after the items before it.
    pub async fn next_batch(&self, max: usize) -> Result<Vec<Bytes>, GatewayError> {
        let Some(first) = self.next().await? else { return Ok(Vec::new()) };
        let mut items = vec![first];
        while items.len() < max {
            match futures::FutureExt::now_or_never(self.next()) {
                Some(Ok(Some(item))) => items.push(item),
                Some(Ok(None)) | None => break,
                Some(Err(e)) => {
                    *self.failed.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(e);
                    break;
                }
            }
        }
        Ok(items)
    }

    /// The next item, `None` at the end or once closed. An error ends the stream.
    pub async fn next(&self) -> Result<Option<Bytes>, GatewayError> {
        use futures::StreamExt;
        use std::sync::atomic::Ordering;
        if let Some(e) = self.failed.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take() {
            return Err(e);
        }
        // Registered before the flag is read, so a close() in between still wakes us.
        let closing = self.close.notified();
        tokio::pin!(closing);
        closing.as_mut().enable();
        if self.closed.load(Ordering::Acquire) {
            return Ok(None);
        }
        let mut guard = tokio::select! {
            guard = self.stream.lock() => guard,
            () = &mut closing => return Ok(None),
        };
        let Some(stream) = guard.as_mut() else { return Ok(None) };
        let item = tokio::select! {
            item = stream.next() => item,
            () = &mut closing => None,
        };
        match item {
            Some(Ok(bytes)) => Ok(Some(bytes)),
            Some(Err(e)) => {
                *guard = None;
                Err(e)
            }
            None => {
                *guard = None;
                Ok(None)
            }
        }
    }

    /// Stop reading: returns at once; the upstream request is cancelled as soon as no
    /// `next` holds the stream (at once, or when a pending one wakes for the close).
    pub fn close(&self) {
        self.closed.store(true, std::sync::atomic::Ordering::Release);
        self.close.notify_waiters();
        if let Ok(mut guard) = self.stream.try_lock() {
            guard.take();
        }
    }
}

impl std::fmt::Debug for ClosableStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClosableStream").finish_non_exhaustive()
    }
}

/// Params text as a JSON object (for the resources that take fields apart).
fn params_object(params: &str) -> Result<Map<String, Value>, GatewayError> {
    match serde_json::from_str(params) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(GatewayError::request("", "the request params must be a JSON object")),
        Err(e) => Err(GatewayError::request("", format!("the request params are not valid JSON: {e}"))),
    }
}

/// The engine request for a resource call.
fn build_request(resource: &Resource, args: CallArgs) -> Result<GatewayRequest, GatewayError> {
    let body = match resource.body {
        BodyKind::Json | BodyKind::Prompt => RequestBody::json(Bytes::from(args.params))?,
        BodyKind::Empty => RequestBody::Empty,
        BodyKind::Multipart => {
            // Random, so that no file's bytes can contain the boundary by chance.
            let draw = gateway_core::rng::RandomSource::next_f64(&SplitMix64::from_entropy());
            let boundary = gateway_core::hex_id::hex_id("gatewise-", (draw * u64::MAX as f64) as u64, 16);
            let (content_type, raw) = protocol::multipart_body(&params_object(&args.params)?, &args.files, &boundary);
            RequestBody::Opaque { content_type: Some(content_type), raw }
        }
    };
    let mut request = GatewayRequest::json(resource.endpoint, body);
    if let RequestBody::Opaque { content_type: Some(ct), .. } = &request.body
        && let Ok(value) = http::HeaderValue::from_str(ct)
    {
        request.headers.insert(http::header::CONTENT_TYPE, value);
    }
    Ok(request)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn options(value: Value) -> Options {
        Options::from_json(value).unwrap()
    }

    #[test]
    fn with_options_reuses_the_compiled_config_unless_routing_changes() {
        let engine = crate::engine(crate::TransportOptions::default()).unwrap();
        let base = Gateway::new(engine, options(serde_json::json!({"config": {"provider": "openai", "api_key": "k"}})))
            .unwrap();
        let per_request =
            base.with_options(&options(serde_json::json!({"metadata": {"plan": "pro"}, "trace_id": "t"}))).unwrap();
        let (a, b) =
            (base.resolved.request.config.as_ref().unwrap(), per_request.resolved.request.config.as_ref().unwrap());
        assert!(Arc::ptr_eq(a, b), "metadata and trace id do not recompile the config");
        assert_eq!(per_request.resolved.request.metadata["plan"], "pro");
        assert_eq!(per_request.resolved.request.trace_id.as_deref(), Some("t"));

        let rerouted =
            base.with_options(&options(serde_json::json!({"config": {"provider": "groq", "api_key": "k"}}))).unwrap();
        assert!(!Arc::ptr_eq(a, rerouted.resolved.request.config.as_ref().unwrap()));
        assert!(Options::from_json(serde_json::json!({"metadata": [1]})).is_err(), "bad metadata is still checked");
    }

    #[test]
    fn call_headers_win_over_call_options_which_win_over_the_client() {
        let engine = crate::engine(crate::TransportOptions::default()).unwrap();
        let client = Gateway::new(
            engine,
            options(
                serde_json::json!({"provider": "openai", "api_key": "k", "trace_id": "client", "cache_namespace": "c"}),
            ),
        )
        .unwrap();
        let call = CallOptions::from_json(serde_json::json!({
            "traceId": "call", "cache_namespace": "call-ns",
            "headers": {"x-portkey-trace-id": "header", "x-custom": "1"}
        }))
        .unwrap();
        let hello = || {
            let body = RequestBody::json(Bytes::from_static(br#"{"model":"m","messages":[]}"#)).unwrap();
            GatewayRequest::json(gateway_core::Endpoint::ChatCompletions, body)
        };
        let resolved = client.for_request(&mut hello(), &call.options, &call.headers).unwrap();
        assert_eq!(resolved.trace_id.as_deref(), Some("header"));
        assert_eq!(resolved.cache_namespace.as_deref(), Some("call-ns"));
        assert!(Arc::ptr_eq(client.resolved.request.provider.as_ref().unwrap(), resolved.provider.as_ref().unwrap()));
        let plain = client.for_request(&mut hello(), &Options::default(), &HeaderMap::new()).unwrap();
        assert!(matches!(plain, Cow::Borrowed(_)), "a call that adds nothing copies nothing");
        assert!(CallOptions::from_json(serde_json::json!({"signal": 1})).is_err(), "unknown call options are errors");
    }
}
