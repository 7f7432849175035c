//! The OpenAI wire format and every provider that speaks it, as one table.
//!
//! These providers take the caller's body as is (only `override_params` and known
//! unsupported parameters change it), answer in the OpenAI shape, and stream OpenAI
//! chunks. What differs between them is data: base URL, auth header, which endpoints
//! exist, and which parameters they reject.

use std::sync::LazyLock;

use bytes::Bytes;
use http::{HeaderMap, Method};
use memchr::memmem;
use serde_json::Value;

use super::own_events::OwnEvents;
use super::rerank::RerankDialect;
use super::sse_stream::{SseEventHandler, SseTranslator, stream_error, stream_error_verbatim};
use super::{
    BuildInput, HttpRequest, Provider, ResponseContext, StreamTranslator, StreamUsage, body_text_message,
    caller_wants_usage, code_for_status, forward_headers, insert_header, join_url, json_body, passthrough_headers,
};
use crate::error::GatewayError;
use crate::request::{Endpoint, GatewayRequest, RequestBody, with_query_param};
use crate::sse::SseEvent;

/// How the upstream URL is formed.
#[derive(Debug, Clone, Copy)]
pub enum UrlScheme {
    /// `base + /chat/completions` (the base already ends in `/v1` where needed).
    Base(&'static str),
    /// Azure OpenAI: `https://{resource_name}.openai.azure.com/openai/deployments/{deployment_id}/chat/completions?api-version={api_version}`.
    Azure,
}

/// How the credential is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// `Authorization: Bearer <api_key>`.
    Bearer,
    /// Azure: `api-key: <api_key>`, or `Authorization: Bearer <azure_ad_token>`.
    AzureApiKey,
}

/// One OpenAI-compatible provider.
#[derive(Debug)]
pub struct OpenAiCompatible {
    /// Config slug.
    pub slug: &'static str,
    /// Display name used in error messages (`groq error: ...`).
    pub name: &'static str,
    /// URL scheme.
    pub url: UrlScheme,
    /// Credential style.
    pub auth: Auth,
    /// Whether a request without `api_key` is acceptable (local servers).
    pub key_optional: bool,
    /// Endpoints offered.
    pub endpoints: &'static [Endpoint],
    /// Body parameters the upstream rejects; removed before sending.
    pub drop_params: &'static [&'static str],
    /// How a stream reports usage: `OnRequest` providers understand
    /// `stream_options.include_usage`, which the gateway then adds.
    pub stream_usage: StreamUsage,
    /// How its `/rerank` differs from the caller's (Cohere's) shape, for providers that
    /// offer [`Endpoint::Rerank`].
    pub rerank: Option<RerankDialect>,
}

use Endpoint::*;

const ALL: &[Endpoint] = &[
    ChatCompletions,
    Completions,
    Embeddings,
    ImageGenerations,
    ImageEdits,
    ImageVariations,
    AudioSpeech,
    AudioTranscriptions,
    AudioTranslations,
    Moderations,
    ListModels,
    Responses,
    Realtime,
    Passthrough,
];
const CHAT: &[Endpoint] = &[ChatCompletions, ListModels];
const CHAT_EMBED: &[Endpoint] = &[ChatCompletions, Embeddings, ListModels];
const CHAT_COMPLETE_EMBED: &[Endpoint] = &[ChatCompletions, Completions, Embeddings, ListModels];

macro_rules! compatible {
    ($slug:literal, $name:literal, $base:literal, $endpoints:expr) => {
        compatible!($slug, $name, $base, $endpoints, false, &[], None)
    };
    ($slug:literal, $name:literal, $base:literal, $endpoints:expr, $key_optional:expr, $drop:expr) => {
        compatible!($slug, $name, $base, $endpoints, $key_optional, $drop, None)
    };
    ($slug:literal, $name:literal, $base:literal, $endpoints:expr, $key_optional:expr, $drop:expr, $rerank:expr) => {
        &OpenAiCompatible {
            slug: $slug,
            name: $name,
            url: UrlScheme::Base($base),
            auth: Auth::Bearer,
            key_optional: $key_optional,
            endpoints: $endpoints,
            drop_params: $drop,
            stream_usage: StreamUsage::OnRequest,
            rerank: $rerank,
        }
    };
}

/// The table. Base URLs are the providers' documented OpenAI-compatible endpoints.
pub(super) static TABLE: &[&OpenAiCompatible] = &[
    compatible!("openai", "openai", "https://api.openai.com/v1", ALL),
    &OpenAiCompatible {
        slug: "azure-openai",
        name: "azure-openai",
        url: UrlScheme::Azure,
        auth: Auth::AzureApiKey,
        key_optional: false,
        endpoints: ALL,
        drop_params: &[],
        stream_usage: StreamUsage::OnRequest,
        rerank: None,
    },
    compatible!(
        "groq",
        "groq",
        "https://api.groq.com/openai/v1",
        &[ChatCompletions, AudioTranscriptions, AudioTranslations, ListModels]
    ),
    // Mistral and Perplexity report usage on their last chunk unasked, and do not document
    // `stream_options`.
    &OpenAiCompatible {
        stream_usage: StreamUsage::Always,
        ..*compatible!("mistral-ai", "mistral-ai", "https://api.mistral.ai/v1", CHAT_EMBED)
    },
    compatible!(
        "together-ai",
        "together-ai",
        "https://api.together.xyz/v1",
        &[ChatCompletions, Completions, Embeddings, ImageGenerations, ListModels, Rerank],
        false,
        &[],
        Some(RerankDialect::Jina)
    ),
    compatible!("fireworks-ai", "fireworks-ai", "https://api.fireworks.ai/inference/v1", CHAT_COMPLETE_EMBED),
    compatible!("deepseek", "deepseek", "https://api.deepseek.com/v1", CHAT),
    compatible!(
        "openrouter",
        "openrouter",
        "https://openrouter.ai/api/v1",
        &[ChatCompletions, Completions, ListModels]
    ),
    &OpenAiCompatible {
        stream_usage: StreamUsage::Always,
        ..*compatible!("perplexity-ai", "perplexity-ai", "https://api.perplexity.ai", &[ChatCompletions])
    },
    compatible!(
        "x-ai",
        "x-ai",
        "https://api.x.ai/v1",
        &[ChatCompletions, Completions, Embeddings, ImageGenerations, ListModels]
    ),
    compatible!("cerebras", "cerebras", "https://api.cerebras.ai/v1", &[ChatCompletions, Completions, ListModels]),
    compatible!("sambanova", "sambanova", "https://api.sambanova.ai/v1", CHAT_EMBED),
    compatible!("deepinfra", "deepinfra", "https://api.deepinfra.com/v1/openai", CHAT_COMPLETE_EMBED),
    compatible!("ollama", "ollama", "http://localhost:11434/v1", CHAT_COMPLETE_EMBED, true, &[]),
    compatible!("lm-studio", "lm-studio", "http://localhost:1234/v1", CHAT_COMPLETE_EMBED, true, &[]),
    // Embedding and reranking providers.
    compatible!(
        "voyage",
        "voyage",
        "https://api.voyageai.com/v1",
        &[Embeddings, Rerank],
        false,
        &[],
        Some(RerankDialect::Voyage)
    ),
    compatible!("jina", "jina", "https://api.jina.ai/v1", &[Embeddings, Rerank], false, &[], Some(RerankDialect::Jina)),
];

impl OpenAiCompatible {
    fn base_url(&self, input: &BuildInput<'_>) -> Result<String, GatewayError> {
        if let Some(host) = input.custom_host {
            return Ok(host.to_owned());
        }
        match self.url {
            UrlScheme::Base(base) => Ok(base.to_owned()),
            UrlScheme::Azure => {
                let resource = required_option(input, "resource_name")?;
                // Realtime sits beside the deployments, which its query names.
                if input.request.endpoint == Realtime {
                    return Ok(format!("https://{resource}.openai.azure.com/openai"));
                }
                if azure_v1(input.request.endpoint) {
                    return Ok(format!("https://{resource}.openai.azure.com/openai/v1"));
                }
                let deployment = required_option(input, "deployment_id")?;
                Ok(format!("https://{resource}.openai.azure.com/openai/deployments/{deployment}"))
            }
        }
    }

    fn url(&self, input: &BuildInput<'_>) -> Result<String, GatewayError> {
        let base = self.base_url(input)?;
        let request = input.request;
        let path = match request.endpoint {
            Passthrough => passthrough_path(&request.path)?,
            ep => ep.openai_path(),
        };
        let mut url = join_url(&base, path);
        let azure = matches!(self.url, UrlScheme::Azure);
        let mut query: Vec<String> = match request.endpoint {
            Realtime => {
                super::realtime::query(input, if azure { &["model", "api-version", "deployment"] } else { &[] })
                    .into_iter()
                    .collect()
            }
            _ => request.query.iter().filter(|q| !q.is_empty()).cloned().collect(),
        };
        if azure && request.endpoint == Realtime {
            let version = input.target.option("api_version").unwrap_or(AZURE_REALTIME_API_VERSION);
            query.push(with_query_param("", "api-version", version));
            query.push(with_query_param("", "deployment", required_option(input, "deployment_id")?));
        } else if azure && !azure_v1(request.endpoint) {
            let version = input.target.option("api_version").unwrap_or("2024-10-21");
            query.push(format!("api-version={version}"));
        }
        if !query.is_empty() {
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str(&query.join("&"));
        }
        Ok(url)
    }

    fn auth_headers(&self, input: &BuildInput<'_>, headers: &mut HeaderMap) -> Result<(), GatewayError> {
        let target = input.target;
        // OpenAI's admin API takes an admin key, not a project key; a configured admin key
        // is only ever sent to it.
        let admin_key = target.option("admin_api_key").filter(|_| is_admin_route(input.request));
        match self.auth {
            Auth::Bearer => match admin_key.or(target.option("api_key")) {
                Some(key) => insert_header(headers, "authorization", &super::bearer(key))?,
                None if self.key_optional => {}
                None => return Err(missing_key(self.slug)),
            },
            Auth::AzureApiKey => match (target.option("api_key"), target.option("azure_ad_token")) {
                (Some(key), _) => insert_header(headers, "api-key", key)?,
                (None, Some(token)) => {
                    let token = token.strip_prefix("Bearer ").unwrap_or(token);
                    insert_header(headers, "authorization", &super::bearer(token))?
                }
                (None, None) => return Err(missing_key(self.slug)),
            },
        }
        for (option, header) in [
            ("openai_organization", "openai-organization"),
            ("openai_project", "openai-project"),
            ("openai_beta", "openai-beta"),
        ] {
            if let Some(v) = target.option(option) {
                insert_header(headers, header, v)?;
            }
        }
        Ok(())
    }
}

/// The caller's path below `/v1`, for a pass-through route. The path is the caller's and
/// the URL it lands in carries the provider's credential, so only plain segments pass:
/// no `.` or `..`, no empty segment, no percent-encoding (an encoded `/` or `.` could
/// climb out of the base URL after decoding upstream), nothing outside RFC 3986's
/// segment characters. OpenAI's resource ids never need more.
fn passthrough_path(path: &str) -> Result<&str, GatewayError> {
    const MAX_PATH: usize = 2048;
    let rest = path.strip_prefix("/v1").unwrap_or(path);
    let plain = |segment: &str| {
        !segment.is_empty()
            && segment != "."
            && segment != ".."
            && segment.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~:@!$&'()*+,;=".contains(&b))
    };
    match rest.strip_prefix('/') {
        Some(segments) if path.len() <= MAX_PATH && segments.split('/').all(plain) => Ok(rest),
        _ => Err(GatewayError::request("url", "a pass-through path must be plain `/v1/...` segments")),
    }
}

/// The first API version with the Realtime API (the GA `2024-10-21` has none).
const AZURE_REALTIME_API_VERSION: &str = "2025-04-01-preview";

/// Whether Azure serves `endpoint` on its v1 API (`/openai/v1/...`, no `api-version`,
/// the deployment named by the body's `model`) rather than under a deployment: the
/// Responses API and the resource-level routes (files, batches, assistants, vector
/// stores, ...), which Azure never put under deployments.
fn azure_v1(endpoint: Endpoint) -> bool {
    matches!(endpoint, Responses | Passthrough)
}

/// Whether the request is for OpenAI's admin API (`/v1/organization/...`).
fn is_admin_route(request: &GatewayRequest) -> bool {
    request.endpoint == Passthrough
        && request.path.strip_prefix("/v1/organization").is_some_and(|r| r.is_empty() || r.starts_with('/'))
}

fn required_option<'a>(input: &'a BuildInput<'_>, key: &str) -> Result<&'a str, GatewayError> {
    input
        .target
        .option(key)
        .ok_or_else(|| GatewayError::config(key, format!("{} needs `{key}`", input.target.provider.slug())))
}

/// A missing credential is a config problem, reported like every other provider does.
fn missing_key(slug: &str) -> GatewayError {
    GatewayError::config(
        "api_key",
        format!("{slug} needs `api_key`: set it in the config or send `Authorization: Bearer <key>`"),
    )
}

impl Provider for OpenAiCompatible {
    fn slug(&self) -> &'static str {
        self.slug
    }

    fn supports(&self, endpoint: Endpoint) -> bool {
        self.endpoints.contains(&endpoint)
    }

    fn build_request(&self, input: &BuildInput<'_>) -> Result<HttpRequest, GatewayError> {
        let request = input.request;
        let mut headers = HeaderMap::new();
        match request.endpoint {
            Passthrough => passthrough_headers(request, &mut headers),
            Realtime => super::realtime::handshake_headers(input, &mut headers),
            _ => {}
        }
        self.auth_headers(input, &mut headers)?;
        forward_headers(input, &mut headers);
        let rerank = self.rerank.filter(|_| request.endpoint == Rerank);
        let mut dropped_params = Vec::new();
        let body = match &request.body {
            RequestBody::Json { .. } if let Some(dialect) = rerank => {
                headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
                let (body, dropped) = super::rerank::request(dialect, &input.params()?)?;
                dropped_params = dropped;
                Bytes::from(Value::Object(body).to_string())
            }
            RequestBody::Json { .. } => {
                headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
                // The engine reads every answer's usage: ask for it where the caller did not.
                let ask_usage = self.stream_usage == StreamUsage::OnRequest
                    && input.stream()
                    && matches!(request.endpoint, ChatCompletions | Completions)
                    && !caller_wants_usage(request, input.settings);
                json_body(&request.body, input.settings, self.drop_params, ask_usage)?
            }
            RequestBody::Opaque { content_type, raw } => {
                if let Some(ct) = content_type {
                    insert_header(&mut headers, "content-type", ct)?;
                }
                raw.clone()
            }
            RequestBody::Empty => Bytes::new(),
        };
        let method = match request.endpoint {
            Passthrough => request.method.clone(),
            ListModels | Realtime => Method::GET,
            _ => Method::POST,
        };
        // Only parse the body (see RequestBody::value) when there are params to look for.
        if !self.drop_params.is_empty() {
            let body = request.body.value();
            let present = |k: &&&str| body.is_some_and(|v| v.get(**k).is_some());
            dropped_params.extend(self.drop_params.iter().filter(present).map(|k| (*k).to_owned()));
        }
        Ok(HttpRequest { method, url: self.url(input)?, headers, body, stream: input.stream(), dropped_params })
    }

    fn transform_response(&self, cx: &ResponseContext<'_>, body: Bytes) -> Result<Bytes, GatewayError> {
        match self.rerank.filter(|_| cx.endpoint() == Rerank) {
            Some(dialect) => super::rerank::answer_bytes(self.name, dialect, cx, &body),
            // Already the OpenAI shape: hand the bytes back without touching them.
            None => Ok(body),
        }
    }

    fn upstream_error(&self, status: u16, body: &[u8]) -> GatewayError {
        openai_style_error(self.name, status, body)
    }

    fn stream_translator(&self, cx: &ResponseContext<'_>) -> Box<dyn StreamTranslator> {
        match cx.endpoint() {
            // The Responses API's own events, for a caller of that API.
            Responses => Box::new(SseTranslator::new(OwnEvents::responses(self.name))),
            _ => Box::new(SseTranslator::new(OpenAiEvents::new(self.name))),
        }
    }

    fn stream_usage(&self) -> StreamUsage {
        self.stream_usage
    }
}

/// Map an OpenAI-style error body (`{"error":{"message","type","param","code"}}`, or a
/// bare `{"message"}`, or non-JSON text) to a [`GatewayError`] with the upstream status.
pub fn openai_style_error(provider: &str, status: u16, body: &[u8]) -> GatewayError {
    let parsed: Option<Value> = crate::json::from_slice(body).ok();
    let error = parsed.as_ref().map(|v| v.get("error").unwrap_or(v));
    let message = error
        .and_then(|e| match e {
            Value::String(s) => Some(s.clone()),
            e => e.get("message").and_then(Value::as_str).map(str::to_owned),
        })
        .unwrap_or_else(|| body_text_message(status, body));
    let mut err = GatewayError::new(code_for_status(status), format!("{provider} error: {message}"))
        .with_status(status)
        .with_provider(provider);
    if let Some(e) = error.filter(|e| e.is_object()) {
        err.error_type = e.get("type").and_then(Value::as_str).map(str::to_owned);
        err.param = e.get("param").and_then(Value::as_str).map(str::to_owned);
        err.upstream_code = e.get("code").filter(|c| !c.is_null()).cloned();
    }
    err
}

/// OpenAI SSE → chunk payloads, verbatim. Tracks `[DONE]` and `finish_reason` so a
/// stream that was cut short is reported, and turns an in-band `{"error":...}` event
/// into a stream error.
#[derive(Debug)]
pub(crate) struct OpenAiEvents {
    provider: &'static str,
    done: bool,
    saw_finish: bool,
}

impl OpenAiEvents {
    /// A handler for `provider`'s stream.
    pub(crate) fn new(provider: &'static str) -> Self {
        Self { provider, done: false, saw_finish: false }
    }
}

/// The keys every chunk is searched for, each searcher built once (`str::contains` builds
/// one per call: on a stream, several per chunk).
static ERROR_KEY: LazyLock<memmem::Finder<'static>> = LazyLock::new(|| memmem::Finder::new(br#""error""#));
static FINISH: LazyLock<memmem::Finder<'static>> = LazyLock::new(|| memmem::Finder::new(br#""finish_reason":""#));
static SPACED_FINISH: LazyLock<memmem::Finder<'static>> =
    LazyLock::new(|| memmem::Finder::new(br#""finish_reason": ""#));

/// The `error` object of an in-band `{"error": {...}}` event. A cheap text check first, so
/// ordinary chunks are never parsed.
fn in_band_error(data: &str) -> Option<Value> {
    ERROR_KEY.find(data.as_bytes())?;
    let mut v: Value = serde_json::from_str(data).ok()?;
    v.get_mut("error").filter(|e| !e.is_null()).map(Value::take)
}

impl SseEventHandler for OpenAiEvents {
    fn on_event(&mut self, event: SseEvent, out: &mut Vec<Bytes>) -> Result<(), GatewayError> {
        let data = event.data.trim();
        if data == "[DONE]" {
            self.done = true;
            return Ok(());
        }
        if data.is_empty() || self.done {
            return Ok(());
        }
        // Cheap checks on the raw text; parse only when they hit.
        if let Some(e) = in_band_error(data) {
            let msg = e.get("message").and_then(Value::as_str).unwrap_or("stream error");
            return Err(stream_error(self.provider, msg));
        }
        if !self.saw_finish && (FINISH.find(data.as_bytes()).is_some() || SPACED_FINISH.find(data.as_bytes()).is_some())
        {
            self.saw_finish = true;
        }
        out.push(Bytes::from(event.data));
        Ok(())
    }

    fn is_complete(&self) -> bool {
        self.done || self.saw_finish
    }

    fn cut_short(&self) -> GatewayError {
        let provider = self.provider;
        stream_error_verbatim(
            provider,
            format!("{provider} stream ended before the answer was complete (no finish_reason, no [DONE])"),
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn only_plain_paths_pass_through() {
        assert_eq!(passthrough_path("/v1/threads/thread_1/runs").unwrap(), "/threads/thread_1/runs");
        assert_eq!(passthrough_path("/v1/organization/users").unwrap(), "/organization/users");
        for path in [
            "/v1/files/../organization/users",
            "/v1/./files",
            "/v1/files/%2e%2e",
            "/v1/files/a%2Fb",
            "/v1/files//x",
            "/v1/files/",
            "/v1/",
            "/v1/files/a\\b",
            "/v1/files/a b",
            "/v1/files?x=1",
            &format!("/v1/{}", "a".repeat(4096)),
        ] {
            assert!(passthrough_path(path).is_err(), "{path}");
        }
    }
}
