//! Providers: pure translation between the OpenAI shape and each upstream API.
//!
//! A [`Provider`] builds the upstream HTTP request, turns a successful upstream answer
//! into the OpenAI shape, classifies upstream errors, and creates a per-request
//! [`StreamTranslator`]. None of it does I/O, so every transform is tested against JSON
//! fixtures and benchmarked without a network.

mod anthropic;
mod bedrock;
mod cohere;
mod gemini;
mod messages;
mod openai_compatible;
mod own_events;
mod realtime;
mod rerank;
mod responses;
mod sse_stream;
mod structured_output;
mod target;
mod via_chat;

use std::time::SystemTime;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde_json::{Map, Value};

use crate::error::{ErrorCode, GatewayError};
use crate::request::{Endpoint, GatewayRequest, RequestBody};
use crate::settings::TargetSettings;

pub use gemini::Gemini;
pub use messages::event_type;
pub use openai_compatible::{OpenAiCompatible, UrlScheme};
pub use realtime::{INSECURE_KEY_PROTOCOL, offered_subprotocols};
pub use target::{Held, ProviderTarget};
pub use via_chat::ViaChat;

/// Everything a provider needs to build one upstream request.
#[derive(Debug, Clone, Copy)]
pub struct BuildInput<'a> {
    /// Wall-clock time of the attempt (request signing, e.g. SigV4's `x-amz-date`).
    pub now: SystemTime,
    /// The caller's request.
    pub request: &'a GatewayRequest,
    /// Provider credentials and options.
    pub target: &'a ProviderTarget,
    /// The leaf's effective settings (override_params, forward_headers, ...).
    pub settings: &'a TargetSettings,
    /// Effective base URL override (request header wins over config).
    pub custom_host: Option<&'a str>,
    /// Effective forward-header list (request header wins over config).
    pub forward_headers: &'a [String],
    /// The credential the transport fetched for this provider's
    /// [`Provider::credential_request`] (e.g. an OAuth access token), if it asked for one.
    pub credential: Option<&'a str>,
}

impl<'a> BuildInput<'a> {
    /// Whether the caller asked for a stream.
    pub fn stream(&self) -> bool {
        self.request.body.wants_stream()
    }

    /// The request body after `override_params` (for transforms that rebuild the body).
    pub fn params(&self) -> Result<Value, GatewayError> {
        effective_params(&self.request.body, self.settings)
    }
}

/// What a provider needs to translate an answer back: the request it answers, the
/// effective settings, and injected time and id (deterministic in tests).
#[derive(Debug, Clone, Copy)]
pub struct ResponseContext<'a> {
    /// The caller's request.
    pub request: &'a GatewayRequest,
    /// The leaf's effective settings.
    pub settings: &'a TargetSettings,
    /// Wall-clock time, for `created` when the upstream gives none.
    pub now: SystemTime,
    /// An id for answers whose upstream gives none (`chatcmpl-...`).
    pub fallback_id: &'a str,
    /// Emit the usage chunk of a stream even when the caller did not ask for it: the
    /// engine reads every answer's usage, and drops that chunk before the caller.
    pub usage_chunk: bool,
}

impl ResponseContext<'_> {
    /// The endpoint being answered.
    pub fn endpoint(&self) -> Endpoint {
        self.request.endpoint
    }

    /// The model the caller asked for (`override_params` wins over the body).
    pub fn model(&self) -> Option<&str> {
        self.param("model").and_then(Value::as_str)
    }

    /// A request parameter as the provider saw it: `override_params` win over the body.
    pub fn param(&self, name: &str) -> Option<&Value> {
        self.settings
            .override_params
            .get(name)
            .or_else(|| self.request.body.value().and_then(|v| v.get(name)))
            .filter(|v| !v.is_null())
    }

    /// Whether a stream translator emits the final usage chunk: the caller asked for it,
    /// or the engine did ([`Self::usage_chunk`]).
    pub fn include_usage(&self) -> bool {
        self.usage_chunk || self.caller_wants_usage()
    }

    /// `stream_options.include_usage` as the caller sent it (override_params win).
    pub fn caller_wants_usage(&self) -> bool {
        caller_wants_usage(self.request, self.settings)
    }

    /// Map finish reasons to OpenAI's set and drop provider extras.
    pub fn strict(&self) -> bool {
        self.settings.strict_open_ai_compliance
    }

    /// `created` as Unix seconds.
    pub fn created(&self) -> u64 {
        self.now.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
    }
}

/// The upstream request a provider built.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    /// Method.
    pub method: Method,
    /// Absolute URL.
    pub url: String,
    /// Headers, auth included.
    pub headers: HeaderMap,
    /// Body bytes (possibly the caller's own bytes, untouched).
    pub body: Bytes,
    /// Whether the answer will be a stream.
    pub stream: bool,
    /// Request parameters the provider does not support and left out (reported in
    /// [`crate::RouteInfo::dropped_params`]).
    pub dropped_params: Vec<String>,
}

/// A credential a provider cannot compute itself because getting it takes I/O; the
/// engine asks the [`crate::Transport`] for it and hands it back in
/// [`BuildInput::credential`].
#[derive(Debug, Clone, PartialEq)]
pub enum CredentialRequest {
    /// An OAuth 2 access token for a Google service account (the JSON key file's contents).
    GoogleServiceAccount {
        /// The key file: `client_email`, `private_key`, `token_uri`, ...
        account: Value,
        /// The OAuth scope to ask for.
        scope: &'static str,
    },
}

/// A provider implementation. Synchronous and object-safe: one static instance serves
/// every request.
pub trait Provider: Send + Sync + 'static {
    /// The slug used in configs (`openai`, `groq`, ...).
    fn slug(&self) -> &'static str;

    /// A credential to fetch before building requests for `target` (none by default).
    fn credential_request(&self, _target: &ProviderTarget) -> Option<CredentialRequest> {
        None
    }

    /// Whether this provider's API offers `endpoint` (for some of its models).
    fn supports(&self, endpoint: Endpoint) -> bool;

    /// Whether `model` is served `endpoint` by this provider's own API, as opposed to
    /// through a translation ([`for_request`]). Vertex speaks Messages for Claude only.
    fn speaks(&self, endpoint: Endpoint, _model: Option<&str>) -> bool {
        self.supports(endpoint)
    }

    /// Build the upstream request.
    fn build_request(&self, input: &BuildInput<'_>) -> Result<HttpRequest, GatewayError>;

    /// Turn a successful (2xx) upstream body into the OpenAI shape.
    fn transform_response(&self, cx: &ResponseContext<'_>, body: Bytes) -> Result<Bytes, GatewayError>;

    /// Turn an upstream error answer into a [`GatewayError`] that keeps its status.
    fn upstream_error(&self, status: u16, body: &[u8]) -> GatewayError;

    /// A fresh translator for one streamed answer.
    fn stream_translator(&self, cx: &ResponseContext<'_>) -> Box<dyn StreamTranslator>;

    /// Where a streamed answer's usage comes from.
    fn stream_usage(&self) -> StreamUsage {
        StreamUsage::OnRequest
    }
}

/// Where a streamed answer's usage comes from (the engine reads every answer's usage, and
/// the caller must still get exactly the chunks it asked for).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamUsage {
    /// A final chunk of its own, only when asked (`stream_options.include_usage`): the
    /// engine always asks, and removes it when the caller did not.
    OnRequest,
    /// The upstream always reports it in its own chunks: they reach the caller as sent.
    Always,
}

/// `stream_options.include_usage` as the caller sent it (override_params win).
pub fn caller_wants_usage(request: &GatewayRequest, settings: &TargetSettings) -> bool {
    settings
        .override_params
        .get("stream_options")
        .or_else(|| match &request.body {
            // Absent from the caller's bytes: no need to parse them to know.
            RequestBody::Json { shape, .. } if shape.stream_options.is_none() => None,
            body => body.value().and_then(|v| v.get("stream_options")),
        })
        .and_then(|o| o.get("include_usage"))
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// Turns one upstream stream into OpenAI `chat.completion.chunk` payloads (JSON text of
/// each `data:` event, without the `data: ` framing). One per request; stateful.
pub trait StreamTranslator: Send {
    /// Feed upstream bytes, split anywhere; complete chunks are appended to `out`.
    fn feed(&mut self, bytes: &[u8], out: &mut Vec<Bytes>) -> Result<(), GatewayError>;

    /// The upstream ended. Emits what is left, or fails if the answer was cut short
    /// (a stream must never look complete when it is not).
    fn finish(&mut self, out: &mut Vec<Bytes>) -> Result<(), GatewayError>;
}

/// Providers with their own wire format (one module each).
static NATIVE: &[&dyn Provider] =
    &[&anthropic::ANTHROPIC, &gemini::GOOGLE, &gemini::VERTEX_AI, &bedrock::BEDROCK, &cohere::COHERE];

/// Whether `provider` can serve `endpoint`: its own API offers it, or (for a Messages or
/// Responses request) it offers chat, through which the request is translated.
pub fn offers(provider: &dyn Provider, endpoint: Endpoint) -> bool {
    provider.supports(endpoint) || (endpoint.served_through_chat() && provider.supports(Endpoint::ChatCompletions))
}

/// The provider as it serves one request: itself, or through chat.
pub enum Served {
    /// The provider's own API serves the request.
    Native(&'static dyn Provider),
    /// A Messages or Responses request through the provider's chat translation.
    ViaChat(Box<ViaChat>),
}

impl Served {
    /// The provider to build and read the request with.
    pub fn provider(&self) -> &dyn Provider {
        match self {
            Self::Native(provider) => *provider,
            Self::ViaChat(via) => &**via,
        }
    }
}

/// How `provider` serves `request` (with the leaf's `settings`): a Messages or Responses
/// request to a provider that does not speak that API for the model goes through chat.
pub fn for_request(
    provider: &'static dyn Provider,
    request: &GatewayRequest,
    settings: &TargetSettings,
) -> Result<Served, GatewayError> {
    if !request.endpoint.served_through_chat() {
        return Ok(Served::Native(provider));
    }
    let model = settings
        .override_params
        .get("model")
        .or_else(|| request.body.value().and_then(|v| v.get("model")))
        .and_then(Value::as_str);
    if provider.speaks(request.endpoint, model) {
        return Ok(Served::Native(provider));
    }
    Ok(Served::ViaChat(Box::new(ViaChat::new(provider, request, settings)?)))
}

/// The provider for `slug`.
pub fn lookup(slug: &str) -> Option<&'static dyn Provider> {
    openai_compatible::TABLE
        .iter()
        .map(|p| *p as &'static dyn Provider)
        .chain(NATIVE.iter().copied())
        .find(|p| p.slug() == slug)
}

/// Whether `slug` is of the OpenAI-compatible family (the table): its answers are the
/// upstream's own OpenAI-shaped bytes, not answers the gateway builds.
pub fn speaks_openai(slug: &str) -> bool {
    openai_compatible::TABLE.iter().any(|p| p.slug == slug)
}

/// All known slugs, for error messages and docs.
pub fn slugs() -> Vec<&'static str> {
    openai_compatible::TABLE.iter().map(|p| p.slug).chain(NATIVE.iter().map(|p| p.slug())).collect()
}

/// The JSON body to send: the caller's bytes untouched when nothing changes (the common
/// case: no copy, no re-serialisation), else the body with `override_params` merged over
/// it and `drop` keys removed.
pub fn json_body(
    body: &RequestBody,
    settings: &TargetSettings,
    drop: &[&str],
    ask_usage: bool,
) -> Result<Bytes, GatewayError> {
    let RequestBody::Json { raw, shape, .. } = body else {
        return Err(GatewayError::request("", "this endpoint takes a JSON body"));
    };
    // Parsing the body is the expensive part: only look when there is something to drop.
    let must_drop = !drop.is_empty() && body.value().is_some_and(|v| drop.iter().any(|k| v.get(k).is_some()));
    if settings.override_params.is_empty() && !must_drop {
        if !ask_usage {
            return Ok(raw.clone());
        }
        if shape.stream_options.is_none()
            && let Some(spliced) = with_leading_member(raw, br#""stream_options":{"include_usage":true}"#)
        {
            return Ok(spliced);
        }
    }
    let mut merged = body.value().cloned().unwrap_or_default();
    if let Value::Object(obj) = &mut merged {
        for (k, v) in &settings.override_params {
            obj.insert(k.clone(), v.clone());
        }
        for k in drop {
            obj.shift_remove(*k);
        }
        if ask_usage {
            let options = obj.entry("stream_options").or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(options) = options {
                options.insert("include_usage".to_owned(), Value::Bool(true));
            }
        }
    }
    body_bytes(&merged)
}

/// `raw` (a JSON object whose keys do not include `member`'s) with `member` added as its
/// first member: the caller's bytes otherwise untouched, and not parsed.
fn with_leading_member(raw: &[u8], member: &[u8]) -> Option<Bytes> {
    let open = raw.iter().position(|b| !b.is_ascii_whitespace()).filter(|&i| raw[i] == b'{')?;
    let empty = raw[open + 1..].iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'}');
    let mut out = Vec::with_capacity(raw.len() + member.len() + 1);
    out.extend_from_slice(&raw[..=open]);
    out.extend_from_slice(member);
    if !empty {
        out.push(b',');
    }
    out.extend_from_slice(&raw[open + 1..]);
    Some(Bytes::from(out))
}

/// A JSON request body as bytes (every provider that builds its body sends it through here).
pub(crate) fn body_bytes(body: &Value) -> Result<Bytes, GatewayError> {
    serde_json::to_vec(body)
        .map(Bytes::from)
        .map_err(|e| GatewayError::new(ErrorCode::Internal, format!("serialising the request body: {e}")))
}

/// The request body after `override_params`, as a value (for transforms that rebuild the
/// body in another shape).
pub fn effective_params(body: &RequestBody, settings: &TargetSettings) -> Result<Value, GatewayError> {
    let value = body.value().ok_or_else(|| GatewayError::request("", "this endpoint takes a JSON body"))?;
    let mut merged = value.clone();
    if let Value::Object(obj) = &mut merged {
        for (k, v) in &settings.override_params {
            obj.insert(k.clone(), v.clone());
        }
    }
    Ok(merged)
}

/// Headers that describe one hop's framing or connection: never forwarded, whatever
/// `forward_headers` names (the upstream request gets its own, for its own body).
const NEVER_FORWARDED: &[&str] = &[
    "content-length",
    "transfer-encoding",
    "host",
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "te",
    "trailer",
    "upgrade",
    "expect",
];

/// Copy the caller headers named in `forward_headers` to the upstream request. Framing and
/// hop-by-hop headers are never copied, and neither is a header the provider has set
/// already (its own `authorization` is never joined by a second one).
pub fn forward_headers(input: &BuildInput<'_>, headers: &mut HeaderMap) {
    for name in input.forward_headers {
        if NEVER_FORWARDED.contains(&name.as_str()) {
            continue;
        }
        let Ok(name) = HeaderName::from_bytes(name.as_bytes()) else { continue };
        if headers.contains_key(&name) {
            continue;
        }
        for value in input.request.headers.get_all(&name) {
            headers.append(name.clone(), value.clone());
        }
    }
}

/// Copy every caller header except gateway, hop-by-hop and auth ones (pass-through routes).
pub fn passthrough_headers(request: &GatewayRequest, headers: &mut HeaderMap) {
    const SKIP: &[&str] = &[
        "host",
        "content-length",
        "connection",
        "transfer-encoding",
        "expect",
        "authorization",
        "api-key",
        "x-api-key",
        "keep-alive",
        "upgrade",
        "te",
        "accept-encoding",
    ];
    for (name, value) in &request.headers {
        let n = name.as_str();
        if n.starts_with("x-portkey-") || SKIP.contains(&n) {
            continue;
        }
        headers.append(name.clone(), value.clone());
    }
}

/// Insert a header whose value came from config or request data; a value that is not a
/// valid header (a newline in an API key) is the caller's mistake, not a panic.
pub fn insert_header(headers: &mut HeaderMap, name: &'static str, value: &str) -> Result<(), GatewayError> {
    let value = HeaderValue::from_str(value)
        .map_err(|_| GatewayError::request("", format!("the value for header `{name}` contains invalid characters")))?;
    headers.insert(HeaderName::from_static(name), value);
    Ok(())
}

/// `Bearer <token>` (built without `format!`: every OpenAI-family request needs one).
pub(crate) fn bearer(token: &str) -> String {
    let mut value = String::with_capacity(7 + token.len());
    value.push_str("Bearer ");
    value.push_str(token);
    value
}

/// The message for an error answer that is not the provider's error JSON (an HTML page
/// from a proxy, plain text): the text itself, bounded, or the status when it is empty.
pub(crate) fn body_text_message(status: u16, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() { format!("HTTP {status}") } else { text.chars().take(2000).collect() }
}

/// An upstream error status mapped to our code (429 stays 429, overloaded stays retryable).
pub fn code_for_status(status: u16) -> ErrorCode {
    match status {
        429 => ErrorCode::RateLimited,
        503 | 529 => ErrorCode::Overloaded,
        _ => ErrorCode::UpstreamError,
    }
}

/// Token counts in OpenAI's `usage` shape, as every translated answer reports them.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Usage {
    /// Prompt tokens, cache reads and writes included.
    pub prompt: u64,
    /// Completion tokens, reasoning included.
    pub completion: u64,
    /// The provider's own total, when it gives one (else prompt + completion).
    pub total: Option<u64>,
    /// Prompt tokens read from the provider's prompt cache.
    pub cached: u64,
    /// Reasoning ("thinking") tokens within `completion`, when the provider counts them.
    pub reasoning: Option<u64>,
}

impl Usage {
    /// OpenAI's `usage` object as OpenAI's own answers have it: the three counts and
    /// `prompt_tokens_details.cached_tokens` (0 when nothing was read from a cache), plus
    /// `completion_tokens_details.reasoning_tokens` when the provider reports them.
    pub(crate) fn to_openai(self) -> Value {
        let mut usage = serde_json::json!({
            "prompt_tokens": self.prompt,
            "completion_tokens": self.completion,
            "total_tokens": self.total.unwrap_or(self.prompt + self.completion),
            "prompt_tokens_details": {"cached_tokens": self.cached},
        });
        if let Some(reasoning) = self.reasoning {
            usage["completion_tokens_details"] = serde_json::json!({"reasoning_tokens": reasoning});
        }
        usage
    }
}

/// OpenAI's `encoding_format: "base64"` embedding: the vector as little-endian float32
/// bytes, standard base64 (the OpenAI SDKs ask for it by default and decode it
/// themselves). Narrowing to f32 is the format's definition, not a loss we choose.
pub(crate) fn f32_base64(vector: &Value) -> String {
    use base64::Engine as _;
    let bytes: Vec<u8> = vector
        .as_array()
        .map(|a| a.iter().flat_map(|x| (x.as_f64().unwrap_or(0.0) as f32).to_le_bytes()).collect())
        .unwrap_or_default();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Join a base URL and a path without doubling or dropping the slash.
pub fn join_url(base: &str, path: &str) -> String {
    let base = base.trim_end_matches('/');
    let mut url = String::with_capacity(base.len() + path.len() + 1);
    url.push_str(base);
    if !path.is_empty() && !path.starts_with('/') {
        url.push('/');
    }
    url.push_str(path);
    url
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn usage_asked(raw: &str) -> Value {
        let body = RequestBody::json(raw.to_owned().into()).unwrap();
        let bytes = json_body(&body, &TargetSettings::default(), &[], true).unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn a_streams_usage_is_asked_for_by_adding_to_the_callers_bytes() {
        let raw = r#" {"model":"m","stream":true,"messages":[{"role":"user","content":"\"stream_options\""}]}"#;
        let body = RequestBody::json(raw.to_owned().into()).unwrap();
        let bytes = json_body(&body, &TargetSettings::default(), &[], true).unwrap();
        // The caller's bytes kept as they were, the member added first.
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            r#" {"stream_options":{"include_usage":true},"model":"m","stream":true,"messages":[{"role":"user","content":"\"stream_options\""}]}"#
        );
        assert_eq!(usage_asked(" { } ")["stream_options"]["include_usage"], true);
        // The caller's own stream_options are kept, with include_usage set.
        let own = usage_asked(r#"{"model":"m","stream_options":{"include_obfuscation":false}}"#);
        assert_eq!(own["stream_options"], serde_json::json!({"include_obfuscation": false, "include_usage": true}));
    }

    #[test]
    fn f32_base64_is_little_endian_float32_in_standard_base64() {
        // 1.0f32 and -2.0f32, little-endian: 00 00 80 3f, 00 00 00 c0.
        assert_eq!(f32_base64(&serde_json::json!([1.0, -2.0])), "AACAPwAAAMA=");
        assert_eq!(f32_base64(&serde_json::json!([])), "");
    }
}
