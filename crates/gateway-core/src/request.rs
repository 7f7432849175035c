//! What the engine is asked to do: an endpoint, a body, and per-request options.

use bytes::Bytes;
use http::{HeaderMap, Method};
use serde_json::{Map, Value};
use std::sync::{Arc, OnceLock};

use crate::body_shape::{self, BodyShape, Kind, Message, Messages};
use crate::error::GatewayError;

/// The OpenAI-shaped operations the engine routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `POST /v1/chat/completions`
    ChatCompletions,
    /// `POST /v1/completions`
    Completions,
    /// `POST /v1/embeddings`
    Embeddings,
    /// `POST /v1/images/generations`
    ImageGenerations,
    /// `POST /v1/images/edits` (multipart)
    ImageEdits,
    /// `POST /v1/images/variations` (multipart)
    ImageVariations,
    /// `POST /v1/audio/speech` (binary answer)
    AudioSpeech,
    /// `POST /v1/audio/transcriptions` (multipart)
    AudioTranscriptions,
    /// `POST /v1/audio/translations` (multipart)
    AudioTranslations,
    /// `POST /v1/moderations`
    Moderations,
    /// `GET /v1/models`
    ListModels,
    /// `POST /v1/messages`: Anthropic's Messages API, answered in Anthropic's shape.
    Messages,
    /// `POST /v1/messages/count_tokens` (Anthropic).
    CountTokens,
    /// `POST /v1/rerank`, in Cohere's shape (Cohere, Voyage, Jina, Together).
    Rerank,
    /// `POST /v1/responses`: OpenAI's Responses API, answered in its shapes and events.
    /// (`/v1/responses/{id}` and below are [`Self::Passthrough`].)
    Responses,
    /// `GET /v1/realtime?model=...` upgraded to a WebSocket: OpenAI's Realtime API, the
    /// session relayed between caller and provider once the handshake has been routed.
    Realtime,
    /// Every other `/v1/...` route, any method — files, batches, fine-tuning, assistants,
    /// threads and runs, vector stores, uploads, containers, `/models/{id}`, the
    /// `/organization/...` admin API: forwarded verbatim to providers with OpenAI's API.
    Passthrough,
}

impl Endpoint {
    /// Every endpoint, for tables and docs.
    pub const ALL: [Endpoint; 17] = [
        Self::ChatCompletions,
        Self::Completions,
        Self::Embeddings,
        Self::ImageGenerations,
        Self::ImageEdits,
        Self::ImageVariations,
        Self::AudioSpeech,
        Self::AudioTranscriptions,
        Self::AudioTranslations,
        Self::Moderations,
        Self::ListModels,
        Self::Messages,
        Self::CountTokens,
        Self::Rerank,
        Self::Responses,
        Self::Realtime,
        Self::Passthrough,
    ];

    /// The path below the provider's base URL (OpenAI layout). `Passthrough` uses the
    /// request's own path.
    pub fn openai_path(self) -> &'static str {
        match self {
            Self::ChatCompletions => "/chat/completions",
            Self::Completions => "/completions",
            Self::Embeddings => "/embeddings",
            Self::ImageGenerations => "/images/generations",
            Self::ImageEdits => "/images/edits",
            Self::ImageVariations => "/images/variations",
            Self::AudioSpeech => "/audio/speech",
            Self::AudioTranscriptions => "/audio/transcriptions",
            Self::AudioTranslations => "/audio/translations",
            Self::Moderations => "/moderations",
            Self::ListModels => "/models",
            Self::Messages => "/messages",
            Self::CountTokens => "/messages/count_tokens",
            Self::Rerank => "/rerank",
            Self::Responses => "/responses",
            Self::Realtime => "/realtime",
            Self::Passthrough => "",
        }
    }

    /// The endpoint for a gateway path (`/v1/chat/completions`), if it is one we route.
    pub fn from_path(method: &Method, path: &str) -> Option<Self> {
        let rest = path.strip_prefix("/v1")?;
        let ep = match (method.as_str(), rest) {
            ("POST", "/chat/completions") => Self::ChatCompletions,
            ("POST", "/completions") => Self::Completions,
            ("POST", "/embeddings") => Self::Embeddings,
            ("POST", "/images/generations") => Self::ImageGenerations,
            ("POST", "/images/edits") => Self::ImageEdits,
            ("POST", "/images/variations") => Self::ImageVariations,
            ("POST", "/audio/speech") => Self::AudioSpeech,
            ("POST", "/audio/transcriptions") => Self::AudioTranscriptions,
            ("POST", "/audio/translations") => Self::AudioTranslations,
            ("POST", "/moderations") => Self::Moderations,
            ("GET", "/models") => Self::ListModels,
            ("POST", "/messages") => Self::Messages,
            ("POST", "/messages/count_tokens") => Self::CountTokens,
            ("POST", "/rerank") => Self::Rerank,
            ("POST", "/responses") => Self::Responses,
            ("GET", "/realtime") => Self::Realtime,
            (_, r) if r.len() > 1 && r.starts_with('/') => Self::Passthrough,
            _ => return None,
        };
        Some(ep)
    }

    /// Whether the body is a JSON object (as opposed to multipart or empty).
    pub fn has_json_body(self) -> bool {
        matches!(
            self,
            Self::ChatCompletions
                | Self::Completions
                | Self::Embeddings
                | Self::ImageGenerations
                | Self::AudioSpeech
                | Self::Moderations
                | Self::Messages
                | Self::CountTokens
                | Self::Rerank
                | Self::Responses
        )
    }

    /// Whether answers may be cached (deterministic reads, not file or batch traffic).
    pub fn is_cacheable(self) -> bool {
        matches!(
            self,
            Self::ChatCompletions | Self::Completions | Self::Embeddings | Self::Moderations | Self::Messages
        )
    }

    /// The API whose shapes the caller speaks: its answers, stream events and errors.
    pub fn dialect(self) -> Dialect {
        match self {
            Self::Messages | Self::CountTokens => Dialect::Anthropic,
            Self::Responses => Dialect::Responses,
            _ => Dialect::OpenAi,
        }
    }

    /// Whether a provider without this API of its own serves it through its chat
    /// translation (Anthropic's Messages, OpenAI's Responses).
    pub fn served_through_chat(self) -> bool {
        matches!(self, Self::Messages | Self::Responses)
    }
}

/// The API a caller speaks, which decides the shape of its answers, stream events and
/// errors (the protocol layer renders them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// OpenAI: `data:` chunks ending in `[DONE]`, `{"error": {...}}`.
    OpenAi,
    /// Anthropic: named events (`event: message_start`), `{"type": "error", "error": {...}}`.
    Anthropic,
    /// OpenAI's Responses API: named events (`event: response.output_text.delta`), no
    /// `[DONE]`; errors as OpenAI's.
    Responses,
}

/// The request body as received.
#[derive(Debug, Clone)]
pub enum RequestBody {
    /// A JSON object: the caller's bytes (forwarded untouched when nothing must change),
    /// the field types validation needs, and the parsed value, made the first time
    /// something reads it (a transform, `override_params`, a `params.*` query, the
    /// cache key); see [`crate::body_shape`].
    Json {
        /// The bytes as received.
        raw: Bytes,
        /// The types of the fields validation checks.
        shape: Arc<BodyShape>,
        /// The parsed object, once read.
        value: Arc<OnceLock<Value>>,
    },
    /// Anything else (multipart, binary): forwarded verbatim with its content type.
    Opaque {
        /// `content-type` of the body, if any.
        content_type: Option<String>,
        /// The bytes.
        raw: Bytes,
    },
    /// No body (GET, DELETE).
    Empty,
}

impl RequestBody {
    /// Parse a JSON body; malformed JSON or a non-object is a 400 `invalid_request`.
    pub fn json(raw: Bytes) -> Result<Self, GatewayError> {
        let shape = body_shape::read(&raw)
            .map_err(|e| GatewayError::request("", format!("the request body is not valid JSON: {e}")))?
            .ok_or_else(|| GatewayError::request("", "the request body must be a JSON object"))?;
        Ok(Self::Json { raw, shape: Arc::new(shape), value: Arc::default() })
    }

    /// A JSON body from an already parsed value (a body the gateway built or rebuilt).
    pub fn from_value(value: Value) -> Result<Self, GatewayError> {
        if !value.is_object() {
            return Err(GatewayError::request("", "the request body must be a JSON object"));
        }
        let raw = serde_json::to_vec(&value).map(Bytes::from).map_err(|e| GatewayError::request("", e.to_string()))?;
        let shape = body_shape::read(&raw)
            .map_err(|e| GatewayError::request("", e.to_string()))?
            .ok_or_else(|| GatewayError::request("", "the request body must be a JSON object"))?;
        Ok(Self::Json { raw, shape: Arc::new(shape), value: Arc::new(OnceLock::from(value)) })
    }

    /// The parsed JSON, if this is a JSON body (parsed on the first call).
    pub fn value(&self) -> Option<&Value> {
        match self {
            // `raw` was read as a JSON object when the body was made, so this parse cannot
            // fail; the empty object is only there to avoid a panic path.
            Self::Json { raw, value, .. } => {
                Some(value.get_or_init(|| crate::json::from_slice(raw).unwrap_or_else(|_| Value::Object(Map::new()))))
            }
            _ => None,
        }
    }

    /// The field types of a JSON body.
    pub fn shape(&self) -> Option<&BodyShape> {
        match self {
            Self::Json { shape, .. } => Some(shape),
            _ => None,
        }
    }

    /// Replace a JSON body's top-level `model` string (`@slug/name` → `name`). When the
    /// old value's JSON text occurs once in the body, and as a value, the bytes are
    /// spliced; otherwise the body is parsed and written again.
    pub fn set_model(&mut self, from: &str, to: &str) -> Result<(), GatewayError> {
        let Self::Json { raw, shape, .. } = self else {
            return Err(GatewayError::request("model", "only a JSON body has a model"));
        };
        let shape = BodyShape { model_name: Some(to.to_owned()), ..(**shape).clone() };
        let (old, new) = (json_text(from)?, json_text(to)?);
        let finder = memchr::memmem::Finder::new(old.as_bytes());
        let spliced = match finder.find(raw) {
            Some(at) if finder.find(&raw[at + old.len()..]).is_none() && follows_a_colon(&raw[..at]) => {
                let mut out = Vec::with_capacity(raw.len() - old.len() + new.len());
                out.extend_from_slice(&raw[..at]);
                out.extend_from_slice(new.as_bytes());
                out.extend_from_slice(&raw[at + old.len()..]);
                Some(Bytes::from(out))
            }
            _ => None,
        };
        let raw = match spliced {
            Some(raw) => raw,
            None => {
                let mut value: Value =
                    crate::json::from_slice(raw).map_err(|e| GatewayError::request("", e.to_string()))?;
                if let Some(object) = value.as_object_mut() {
                    object.insert("model".to_owned(), Value::String(to.to_owned()));
                }
                serde_json::to_vec(&value).map(Bytes::from).map_err(|e| GatewayError::request("", e.to_string()))?
            }
        };
        *self = Self::Json { raw, shape: Arc::new(shape), value: Arc::default() };
        Ok(())
    }

    /// Whether the caller asked for a streamed answer (`"stream": true`).
    pub fn wants_stream(&self) -> bool {
        self.shape().is_some_and(|s| s.stream == Some(Kind::Bool(true)))
    }
}

/// A string as JSON text (quoted, escaped).
fn json_text(s: &str) -> Result<String, GatewayError> {
    serde_json::to_string(s).map_err(|e| GatewayError::request("model", e.to_string()))
}

/// Whether the bytes before a string end in `:` (whitespace aside): the string is a value.
fn follows_a_colon(before: &[u8]) -> bool {
    before.iter().rev().find(|b| !b.is_ascii_whitespace()) == Some(&b':')
}

/// One request to route.
#[derive(Debug, Clone)]
pub struct GatewayRequest {
    /// What to do.
    pub endpoint: Endpoint,
    /// HTTP method (matters for pass-through).
    pub method: Method,
    /// The gateway path, `/v1/...` (for `url.pathname` queries and pass-through).
    pub path: String,
    /// Query string without `?` (pass-through).
    pub query: Option<String>,
    /// The body.
    pub body: RequestBody,
    /// The caller's headers (for `forward_headers` and pass-through).
    pub headers: HeaderMap,
}

impl GatewayRequest {
    /// A JSON request for `endpoint` at its standard path.
    pub fn json(endpoint: Endpoint, body: RequestBody) -> Self {
        let method =
            if matches!(endpoint, Endpoint::ListModels | Endpoint::Realtime) { Method::GET } else { Method::POST };
        Self {
            endpoint,
            method,
            path: format!("/v1{}", endpoint.openai_path()),
            query: None,
            body,
            headers: HeaderMap::new(),
        }
    }

    /// The value of a query parameter (`?model=...`), percent-decoded: the first one of
    /// that name (`None` also when its encoding is not UTF-8).
    pub fn query_param(&self, name: &str) -> Option<String> {
        let value = self.query.as_deref()?.split('&').find_map(|pair| match pair.split_once('=') {
            Some((key, value)) if key == name => Some(value),
            None if pair == name => Some(""),
            _ => None,
        })?;
        String::from_utf8(percent_decode(value)).ok()
    }

    /// Set the query parameter `name` to `value` (see [`with_query_param`]).
    pub fn set_query_param(&mut self, name: &str, value: &str) {
        self.query = Some(with_query_param(self.query.as_deref().unwrap_or(""), name, value));
    }
}

/// `query` with every `name` parameter replaced by one set to `value` (percent-encoded
/// here), the other parameters kept in their order.
pub fn with_query_param(query: &str, name: &str, value: &str) -> String {
    let mut pairs: Vec<&str> = query
        .split('&')
        .filter(|pair| !pair.is_empty() && pair.split_once('=').map_or(*pair, |(key, _)| key) != name)
        .collect();
    let pair = format!("{name}={}", percent_encode(value));
    pairs.push(&pair);
    pairs.join("&")
}

/// `text` with its `%XX` escapes decoded; a `%` not followed by two hex digits is kept as
/// it is. (Bytes, not text: what they decode to need not be UTF-8.)
pub(crate) fn percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(high), Some(low)) => {
                out.push((high * 16 + low) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// `text` with everything but RFC 3986's unreserved characters percent-encoded, for a
/// query value.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b >> 4)]));
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b & 15)]));
        }
    }
    out
}

/// Check the endpoint's required fields (SPEC.md "Request bodies"). Unknown fields are
/// never rejected: new OpenAI parameters must keep working.
pub fn validate_body(endpoint: Endpoint, body: &RequestBody) -> Result<(), GatewayError> {
    if !endpoint.has_json_body() {
        return Ok(());
    }
    let Some(shape) = body.shape() else {
        return Err(GatewayError::request("", "this endpoint takes a JSON object body"));
    };
    if shape.model.is_some_and(|m| m != Kind::String) {
        return Err(GatewayError::request("model", "`model` must be a string"));
    }
    if shape.stream.is_some_and(|s| !matches!(s, Kind::Bool(_) | Kind::Null)) {
        return Err(GatewayError::request("stream", "`stream` must be a boolean"));
    }
    match endpoint {
        Endpoint::ChatCompletions | Endpoint::Messages | Endpoint::CountTokens => {
            validate_messages(shape.messages.as_ref())
        }
        Endpoint::Completions => require("prompt", shape.prompt),
        Endpoint::Embeddings | Endpoint::Moderations => require("input", shape.input),
        Endpoint::ImageGenerations => require_string("prompt", shape.prompt),
        Endpoint::AudioSpeech => require_string("input", shape.input),
        _ => Ok(()),
    }
}

fn require(field: &str, kind: Option<Kind>) -> Result<(), GatewayError> {
    match kind {
        Some(k) if k != Kind::Null => Ok(()),
        _ => Err(GatewayError::request(field, format!("`{field}` is required"))),
    }
}

fn require_string(field: &str, kind: Option<Kind>) -> Result<(), GatewayError> {
    match kind {
        Some(Kind::String) => Ok(()),
        Some(_) => Err(GatewayError::request(field, format!("`{field}` must be a string"))),
        None => Err(GatewayError::request(field, format!("`{field}` is required"))),
    }
}

fn validate_messages(messages: Option<&Messages>) -> Result<(), GatewayError> {
    let messages = match messages {
        Some(Messages::Array(items)) if !items.is_empty() => items,
        Some(Messages::Array(_)) => {
            return Err(GatewayError::request("messages", "`messages` must not be empty"));
        }
        Some(Messages::Other(_)) => {
            return Err(GatewayError::request("messages", "`messages` must be an array"));
        }
        None => return Err(GatewayError::request("messages", "`messages` is required")),
    };
    for (i, m) in messages.iter().enumerate() {
        let Message::Object { role, content } = m else {
            return Err(GatewayError::request(format!("messages[{i}]"), "each message must be an object"));
        };
        if *role != Some(Kind::String) {
            return Err(GatewayError::request(format!("messages[{i}].role"), "`role` must be a string"));
        }
        if !matches!(content, None | Some(Kind::Null | Kind::String | Kind::Array)) {
            return Err(GatewayError::request(
                format!("messages[{i}].content"),
                "`content` must be a string, null or an array of parts",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn query_parameters_are_read_decoded_and_replaced_in_place() {
        let mut request = super::GatewayRequest::json(super::Endpoint::Realtime, super::RequestBody::Empty);
        assert_eq!(request.method, http::Method::GET);
        assert_eq!(request.query_param("model"), None);
        request.query = Some("model=%40openai-prod%2Fgpt-realtime&x=1&flag&model=second".to_owned());
        assert_eq!(request.query_param("model").as_deref(), Some("@openai-prod/gpt-realtime"));
        assert_eq!(request.query_param("flag").as_deref(), Some(""));
        request.set_query_param("model", "gpt-realtime mini/é");
        assert_eq!(request.query.as_deref(), Some("x=1&flag&model=gpt-realtime%20mini%2F%C3%A9"));
        assert_eq!(request.query_param("model").as_deref(), Some("gpt-realtime mini/é"));
        request.query = Some("model=%ff%zz".to_owned());
        assert_eq!(request.query_param("model"), None, "not UTF-8");
        request.query = Some("model=100%".to_owned());
        assert_eq!(request.query_param("model").as_deref(), Some("100%"));
    }

    fn renamed(body: &str) -> (String, Value) {
        let mut b = RequestBody::json(Bytes::from(body.to_owned())).unwrap();
        let from = b.shape().unwrap().model_entry().unwrap().to_owned();
        b.set_model(&from, "gpt-4o").unwrap();
        assert!(b.shape().unwrap().model_entry().is_none());
        let RequestBody::Json { raw, .. } = &b else { panic!() };
        (String::from_utf8(raw.to_vec()).unwrap(), b.value().unwrap().clone())
    }

    #[test]
    fn set_model_splices_the_one_occurrence_and_rewrites_otherwise() {
        let (raw, _) = renamed(r#"{"model" : "@p/gpt-4o-mini", "messages": [], "x": 1}"#);
        assert_eq!(raw, r#"{"model" : "gpt-4o", "messages": [], "x": 1}"#, "the caller's bytes, but the model");
        // The same text elsewhere (a message quoting it, a nested key): written again.
        let (_, value) = renamed(r#"{"metadata": {"m": "@p/gpt-4o-mini"}, "model": "@p/gpt-4o-mini"}"#);
        assert_eq!(
            (value["model"].as_str(), value["metadata"]["m"].as_str()),
            (Some("gpt-4o"), Some("@p/gpt-4o-mini"))
        );
        let (_, value) = renamed(r#"{"model": "@p/a\"b", "messages": []}"#);
        assert_eq!(value["model"], "gpt-4o");
    }
}
