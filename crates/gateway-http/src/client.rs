//! The in-process client the Python and Node bindings wrap: a `Gateway` shaped like the
//! OpenAI and Portkey SDKs' clients, holding options, a compiled config and a shared
//! engine. Everything a binding offers is here, so a binding only converts types and
//! bridges its runtime.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::Stream;
use gateway_core::config::{Config, ProviderTarget};
use gateway_core::engine::RouteInfo;
use gateway_core::rng::SplitMix64;
use gateway_core::router::PlannedAttempt;
use gateway_core::{
    Endpoint, Engine, ErrorCode, GatewayError, GatewayRequest, RequestBody, RequestOptions, ResponseBody,
};
use http::HeaderMap;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::server::{ConfigStore, gateway_request, request_options, respond};

/// Client options, as the bindings receive them (a JSON object; unknown keys are errors).
/// Every field is optional; `with_options` replaces the fields it sets.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientOptions {
    /// A config: an object, JSON text, or a path to a JSON file.
    pub config: Option<Value>,
    /// Provider slug used when there is no config (or for leaves without one).
    pub provider: Option<String>,
    /// The provider's key.
    pub api_key: Option<String>,
    /// Other provider fields (`resource_name`, `aws_region`, ...).
    pub provider_options: Option<Map<String, Value>>,
    /// Overrides every target's `custom_host`.
    pub custom_host: Option<String>,
    /// Request metadata for conditional routing.
    pub metadata: Option<Value>,
    /// Trace id reported in route info.
    pub trace_id: Option<String>,
    /// Per-attempt timeout (ms), overriding the config's.
    pub request_timeout: Option<u64>,
    /// Skip the cache lookup.
    pub cache_force_refresh: Option<bool>,
    /// Cache namespace.
    pub cache_namespace: Option<String>,
}

impl ClientOptions {
    /// Parse from a JSON object; errors name the bad field.
    pub fn from_json(value: Value) -> Result<Self, GatewayError> {
        serde_json::from_value(value).map_err(|e| GatewayError::request("", format!("invalid client options: {e}")))
    }

    /// These options with `other`'s set fields replacing ours.
    pub fn merged(&self, other: &ClientOptions) -> ClientOptions {
        macro_rules! pick {
            ($($f:ident),*) => { ClientOptions { $($f: other.$f.clone().or_else(|| self.$f.clone()),)* } };
        }
        pick!(
            config,
            provider,
            api_key,
            provider_options,
            custom_host,
            metadata,
            trace_id,
            request_timeout,
            cache_force_refresh,
            cache_namespace
        )
    }
}

/// An in-process gateway client.
#[derive(Debug, Clone)]
pub struct Gateway {
    engine: Engine,
    options: ClientOptions,
    request_options: RequestOptions,
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

/// An HTTP-shaped answer for the OpenAI SDK hooks (httpx transport, fetch).
pub struct HttpReply {
    /// Status.
    pub status: u16,
    /// Headers, `x-portkey-*` route headers and content type included.
    pub headers: HeaderMap,
    /// The body.
    pub body: HttpReplyBody,
}

/// Body of an [`HttpReply`].
pub enum HttpReplyBody {
    /// Complete.
    Full(Bytes),
    /// SSE frames, ending in `[DONE]` or a `stream_error` event.
    Stream(std::pin::Pin<Box<dyn Stream<Item = Bytes> + Send>>),
}

impl Gateway {
    /// A client over `engine`. An invalid config is an `invalid_config` error naming the
    /// JSON path.
    pub fn new(engine: Engine, options: ClientOptions) -> Result<Self, GatewayError> {
        let request_options = resolve(&options)?;
        Ok(Self { engine, options, request_options })
    }

    /// A client with `overrides` applied (per-request options, as in the OpenAI SDKs).
    /// Overrides that leave the config and provider alone (metadata, trace id, cache
    /// flags, ...) reuse the compiled config instead of compiling it again.
    pub fn with_options(&self, overrides: &ClientOptions) -> Result<Self, GatewayError> {
        let options = self.options.merged(overrides);
        let routing_changed = overrides.config.is_some()
            || overrides.provider.is_some()
            || overrides.api_key.is_some()
            || overrides.provider_options.is_some();
        if routing_changed {
            return Self::new(self.engine.clone(), options);
        }
        let compiled = RequestOptions {
            config: self.request_options.config.clone(),
            provider: self.request_options.provider.clone(),
            ..resolve_per_request(&options)?
        };
        Ok(Self { engine: self.engine.clone(), options, request_options: compiled })
    }

    /// The options this client holds.
    pub fn options(&self) -> &ClientOptions {
        &self.options
    }

    /// Call `endpoint` with an OpenAI-shaped body.
    pub async fn create(&self, endpoint: Endpoint, body: Value) -> Result<Created, CallError> {
        let request = RequestBody::from_value(body)
            .map(|b| GatewayRequest::json(endpoint, b))
            .map_err(|error| CallError { error, route: self.blank_route() })?;
        let response = self.engine.handle(&request, &self.request_options).await;
        if let Some(error) = response.error {
            return Err(CallError { error, route: response.route });
        }
        Ok(match response.body {
            ResponseBody::Events(events) => Created::Stream(events, response.route),
            ResponseBody::Full(body) => Created::Reply(Reply {
                status: response.status,
                content_type: response.content_type,
                body,
                route: response.route,
            }),
        })
    }

    /// The dry-run plan for `body`: the targets in order with the upstream request each
    /// would receive. Nothing is sent.
    pub fn route(
        &self,
        endpoint: Endpoint,
        body: Value,
        metadata: Option<Value>,
        seed: Option<u64>,
    ) -> Result<Vec<PlannedAttempt>, GatewayError> {
        let request = GatewayRequest::json(endpoint, RequestBody::from_value(body)?);
        let mut options = self.request_options.clone();
        if let Some(metadata) = metadata {
            options.metadata = Arc::new(check_metadata(metadata)?);
        }
        let config = options
            .config
            .clone()
            .or_else(|| options.provider.clone().map(|p| Arc::new(Config::single(p.as_ref().clone()))));
        let Some(config) = config else {
            return Err(no_route_source());
        };
        let rng = seed.map(SplitMix64::new).unwrap_or_else(SplitMix64::from_entropy);
        gateway_core::router::dry_run(&config, &request, &options, &rng, SystemTime::now())
    }

    /// Serve an HTTP-shaped request in-process (the OpenAI SDK hooks). `x-portkey-*`
    /// headers on the request override this client's options for that request.
    pub async fn http(&self, method: &str, url: &str, headers: HeaderMap, body: Bytes) -> HttpReply {
        let mut route = self.blank_route();
        let result = async {
            let method = http::Method::from_bytes(method.as_bytes())
                .map_err(|_| GatewayError::request("method", format!("invalid method {method}")))?;
            let uri: http::Uri =
                url.parse().map_err(|e| GatewayError::request("url", format!("invalid URL {url}: {e}")))?;
            let options = self.options_for_headers(&headers)?;
            route.trace_id.clone_from(&options.trace_id);
            let request = gateway_request(method, &uri, headers, body)?;
            Ok::<_, GatewayError>((request, options))
        }
        .await;
        let response = match result {
            Ok((request, options)) => self.engine.handle(&request, &options).await,
            Err(e) => gateway_core::Response::from_error(e, route),
        };
        let mut headers = response.headers;
        respond::route_headers(&response.route, &mut headers);
        let (content_type, body) = match response.body {
            ResponseBody::Full(b) => {
                (response.content_type.unwrap_or_else(|| "application/json".into()), HttpReplyBody::Full(b))
            }
            ResponseBody::Events(events) => {
                ("text/event-stream".to_owned(), HttpReplyBody::Stream(Box::pin(respond::sse_frames(events))))
            }
        };
        if let Ok(v) = http::HeaderValue::from_str(&content_type) {
            headers.insert(http::header::CONTENT_TYPE, v);
        }
        HttpReply { status: response.status, headers, body }
    }

    fn options_for_headers(&self, headers: &HeaderMap) -> Result<RequestOptions, GatewayError> {
        let has_overrides = headers.keys().any(|k| k.as_str().starts_with("x-portkey-"));
        if !has_overrides {
            return Ok(self.request_options.clone());
        }
        let from_headers = request_options(headers, &ConfigStore::default())?;
        let base = &self.request_options;
        Ok(RequestOptions {
            config: from_headers.config.or_else(|| base.config.clone()),
            provider: from_headers.provider.or_else(|| base.provider.clone()),
            metadata: if headers.contains_key("x-portkey-metadata") {
                from_headers.metadata
            } else {
                base.metadata.clone()
            },
            trace_id: from_headers.trace_id.or_else(|| base.trace_id.clone()),
            custom_host: from_headers.custom_host.or_else(|| base.custom_host.clone()),
            request_timeout: from_headers.request_timeout.or(base.request_timeout),
            forward_headers: from_headers.forward_headers.or_else(|| base.forward_headers.clone()),
            cache_force_refresh: from_headers.cache_force_refresh || base.cache_force_refresh,
            cache_namespace: from_headers.cache_namespace.or_else(|| base.cache_namespace.clone()),
        })
    }

    fn blank_route(&self) -> RouteInfo {
        RouteInfo { trace_id: self.request_options.trace_id.clone(), ..RouteInfo::default() }
    }
}

fn no_route_source() -> GatewayError {
    GatewayError::config("", "no config and no provider: pass config=... or provider=...")
}

fn check_metadata(metadata: Value) -> Result<Value, GatewayError> {
    match metadata {
        Value::Object(_) => Ok(metadata),
        Value::Null => Ok(Value::Object(Map::new())),
        _ => Err(GatewayError::request("metadata", "metadata must be an object")),
    }
}

/// Compile the options once, at construction.
fn resolve(options: &ClientOptions) -> Result<RequestOptions, GatewayError> {
    let provider = match &options.provider {
        Some(slug) => {
            let mut fields = options.provider_options.clone().unwrap_or_default();
            if let Some(key) = &options.api_key {
                fields.insert("api_key".into(), Value::String(key.clone()));
            }
            let target = ProviderTarget::new(slug, fields).ok_or_else(|| {
                GatewayError::config(
                    "provider",
                    format!("unknown provider `{slug}` (known: {})", gateway_core::providers::slugs().join(", ")),
                )
            })?;
            Some(Arc::new(target))
        }
        None if options.api_key.is_some() => {
            return Err(GatewayError::config("provider", "api_key needs provider=... (or put the key in the config)"));
        }
        None => None,
    };
    let config = match &options.config {
        None | Some(Value::Null) => None,
        Some(source) => Some(Arc::new(load_config(source, provider.is_some())?)),
    };
    if config.is_none() && provider.is_none() {
        return Err(no_route_source());
    }
    Ok(RequestOptions { config, provider, ..resolve_per_request(options)? })
}

/// The options that do not affect which config or provider is used.
fn resolve_per_request(options: &ClientOptions) -> Result<RequestOptions, GatewayError> {
    Ok(RequestOptions {
        config: None,
        provider: None,
        metadata: Arc::new(check_metadata(options.metadata.clone().unwrap_or(Value::Null))?),
        trace_id: options.trace_id.clone(),
        custom_host: options.custom_host.clone(),
        request_timeout: options.request_timeout.map(Duration::from_millis),
        forward_headers: None,
        cache_force_refresh: options.cache_force_refresh.unwrap_or(false),
        cache_namespace: options.cache_namespace.clone(),
    })
}

/// A config given as an object, as JSON text, or as a path to a JSON file.
fn load_config(source: &Value, request_provider: bool) -> Result<Config, GatewayError> {
    let value = match source {
        Value::Object(_) => source.clone(),
        Value::String(text) if text.trim_start().starts_with('{') => serde_json::from_str(text)
            .map_err(|e| GatewayError::config("", format!("config is not valid JSON: {e}")))?,
        Value::String(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| GatewayError::config("", format!("reading config file {path}: {e}")))?;
            serde_json::from_str(&text)
                .map_err(|e| GatewayError::config("", format!("{path} is not valid JSON: {e}")))?
        }
        _ => return Err(GatewayError::config("", "config must be an object, JSON text or a file path")),
    };
    let compiled =
        if request_provider { Config::from_json_with_request_provider(&value) } else { Config::from_json(&value) };
    compiled.map_err(GatewayError::from)
}

/// Parse an endpoint name as the bindings spell it.
pub fn endpoint_from_name(name: &str) -> Result<Endpoint, GatewayError> {
    Ok(match name {
        "chat.completions" | "chat_completions" => Endpoint::ChatCompletions,
        "completions" => Endpoint::Completions,
        "embeddings" => Endpoint::Embeddings,
        "images.generations" | "images.generate" => Endpoint::ImageGenerations,
        "audio.speech" => Endpoint::AudioSpeech,
        "moderations" => Endpoint::Moderations,
        other => {
            return Err(GatewayError::new(ErrorCode::UnsupportedEndpoint, format!("unknown endpoint `{other}`")));
        }
    })
}

/// Route info as JSON, the one shape both bindings expose (`r.route` in Python,
/// `r.route` in Node).
pub fn route_json(route: &RouteInfo) -> Value {
    serde_json::json!({
        "provider": route.provider,
        "option_index": route.option_index,
        "retry_count": route.retry_count,
        "cache_status": route.cache_status.as_str(),
        "trace_id": route.trace_id,
        "dropped_params": route.dropped_params,
        "attempts": route.attempts.iter().map(|a| serde_json::json!({
            "option_index": a.option_index,
            "provider": a.provider,
            "status": a.status,
            "error": a.error.map(|c| c.as_str()),
            "duration_ms": a.duration.as_secs_f64() * 1000.0,
        })).collect::<Vec<_>>(),
    })
}

/// An error as JSON for the bindings' exception constructors.
pub fn error_json(error: &GatewayError, route: &RouteInfo) -> Value {
    serde_json::json!({
        "message": error.message,
        "code": error.code.as_str(),
        "status": error.status,
        "param": error.param,
        "provider": error.provider,
        "retryable": error.code.is_retryable(),
        "errors": error.errors.iter().map(|e| serde_json::json!({"path": e.path, "message": e.message})).collect::<Vec<_>>(),
        "body": error.to_openai_json(),
        "route": route_json(route),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn options(value: Value) -> ClientOptions {
        ClientOptions::from_json(value).unwrap()
    }

    #[test]
    fn with_options_reuses_the_compiled_config_unless_routing_changes() {
        let engine = crate::engine(crate::TransportOptions::default()).unwrap();
        let base = Gateway::new(engine, options(serde_json::json!({"config": {"provider": "openai", "api_key": "k"}})))
            .unwrap();
        let per_request =
            base.with_options(&options(serde_json::json!({"metadata": {"plan": "pro"}, "trace_id": "t"}))).unwrap();
        let (a, b) =
            (base.request_options.config.as_ref().unwrap(), per_request.request_options.config.as_ref().unwrap());
        assert!(Arc::ptr_eq(a, b), "metadata and trace id do not recompile the config");
        assert_eq!(per_request.request_options.metadata["plan"], "pro");
        assert_eq!(per_request.request_options.trace_id.as_deref(), Some("t"));

        let rerouted =
            base.with_options(&options(serde_json::json!({"config": {"provider": "groq", "api_key": "k"}}))).unwrap();
        assert!(!Arc::ptr_eq(a, rerouted.request_options.config.as_ref().unwrap()));
        assert!(
            base.with_options(&options(serde_json::json!({"metadata": [1]}))).is_err(),
            "bad metadata is still checked"
        );
    }
}
