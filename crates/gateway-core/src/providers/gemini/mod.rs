//! Google Gemini, two ways: the Gemini API (`google`) and Vertex AI (`vertex-ai`). Both
//! speak the same `generateContent` format, so one transform serves both; they differ in
//! URL, credentials and the form of `error.code`. Vertex also serves Anthropic's Claude
//! models, in Anthropic's format: the model's [`Publisher`] picks the path and transform.
//!
//! Files: `request.rs` (OpenAI → Gemini bodies), `schema.rs` (JSON Schema → Gemini's
//! schema subset), `response.rs` (answers and errors back), `stream.rs` (SSE chunks),
//! `vertex_claude.rs` (Claude on Vertex, reusing the anthropic module).

mod request;
mod response;
mod schema;
mod stream;
mod vertex_claude;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method};

use super::ProviderTarget;
use super::sse_stream::SseTranslator;
use super::{
    BuildInput, CredentialRequest, HttpRequest, Provider, ResponseContext, StreamTranslator, forward_headers,
    insert_header, join_url,
};
use crate::error::{ErrorCode, GatewayError};
use crate::request::Endpoint;
use response::CodeStyle;
use stream::GeminiEvents;

/// Which Google API a [`Gemini`] provider calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Api {
    /// `generativelanguage.googleapis.com`, key in `x-goog-api-key`.
    GeminiApi,
    /// `aiplatform.googleapis.com`, OAuth access token as a bearer token.
    Vertex,
}

/// Whose API serves a model, which decides the URL path, the body and the answer format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Publisher {
    /// Gemini models: `publishers/google/...:generateContent`.
    Google,
    /// Claude on Vertex: `publishers/anthropic/...:rawPredict`, Anthropic's Messages format.
    Anthropic,
}

impl Publisher {
    /// The URL segment after `publishers/`.
    fn segment(self) -> &'static str {
        match self {
            Publisher::Google => "google",
            Publisher::Anthropic => "anthropic",
        }
    }
}

/// A Gemini-format provider.
#[derive(Debug)]
pub struct Gemini {
    slug: &'static str,
    api: Api,
}

/// `google`: the Gemini API (Google AI Studio keys).
pub static GOOGLE: Gemini = Gemini { slug: "google", api: Api::GeminiApi };

/// `vertex-ai`: Gemini models on Vertex AI (publisher `google`).
pub static VERTEX_AI: Gemini = Gemini { slug: "vertex-ai", api: Api::Vertex };

const GEMINI_API_BASE: &str = "https://generativelanguage.googleapis.com/v1beta";

impl Gemini {
    /// The API root including its version; `custom_host` replaces it.
    fn base_url(&self, input: &BuildInput<'_>) -> Result<String, GatewayError> {
        if let Some(host) = input.custom_host {
            return Ok(host.to_owned());
        }
        match self.api {
            Api::GeminiApi => Ok(GEMINI_API_BASE.to_owned()),
            Api::Vertex => {
                let region = vertex_region(input)?;
                // The global endpoint has no regional host prefix.
                let host = if region == "global" {
                    "aiplatform.googleapis.com".to_owned()
                } else {
                    format!("{region}-aiplatform.googleapis.com")
                };
                Ok(format!("https://{host}/v1"))
            }
        }
    }

    /// Which publisher's API serves `model`. The Gemini API only has Google's models; on
    /// Vertex, partner models whose format is not implemented are refused rather than sent
    /// to Google's publisher as if they were Gemini models.
    fn publisher(&self, model: &str) -> Result<Publisher, GatewayError> {
        match self.api {
            Api::GeminiApi => Ok(Publisher::Google),
            Api::Vertex if vertex_claude::is_claude(model) => Ok(Publisher::Anthropic),
            Api::Vertex if other_publisher(model) => Err(GatewayError::new(
                ErrorCode::UnsupportedEndpoint,
                format!(
                    "vertex-ai: `{model}` is a partner model whose API is not supported yet; vertex-ai serves Gemini \
                     and Claude models"
                ),
            )
            .with_param("model")),
            Api::Vertex => Ok(Publisher::Google),
        }
    }

    /// `<base>/models/<model>` or Vertex's `<base>/projects/.../publishers/<publisher>/models/<model>`.
    fn model_url(&self, input: &BuildInput<'_>, publisher: Publisher, model: &str) -> Result<String, GatewayError> {
        let base = self.base_url(input)?;
        let path = match self.api {
            Api::GeminiApi => format!("/models/{}", encode_segment(model)),
            Api::Vertex => {
                let project = input
                    .target
                    .option("vertex_project_id")
                    .ok_or_else(|| GatewayError::config("vertex_project_id", "vertex-ai needs `vertex_project_id`"))?;
                let region = vertex_region(input)?;
                format!(
                    "/projects/{}/locations/{}/publishers/{}/models/{}",
                    encode_segment(project),
                    region,
                    publisher.segment(),
                    encode_segment(model)
                )
            }
        };
        Ok(join_url(&base, &path))
    }

    fn auth(&self, input: &BuildInput<'_>, headers: &mut HeaderMap) -> Result<(), GatewayError> {
        let target = input.target;
        match self.api {
            Api::GeminiApi => {
                // In a header, not `?key=`: URLs end up in access logs and traces.
                let key = target
                    .option("api_key")
                    .ok_or_else(|| GatewayError::config("api_key", "google needs `api_key` (a Gemini API key)"))?;
                insert_header(headers, "x-goog-api-key", key)
            }
            // An access token given directly, or one the transport fetched for the
            // service account (see `credential_request`).
            Api::Vertex => match target.option("api_key").or(input.credential) {
                Some(token) => {
                    let token = token.strip_prefix("Bearer ").unwrap_or(token);
                    insert_header(headers, "authorization", &super::bearer(token))
                }
                None if service_account(target).is_some() => Err(GatewayError::config(
                    "vertex_service_account_json",
                    "vertex-ai: this transport cannot exchange a service account for a token; \
                     set `api_key` to an OAuth access token",
                )),
                None => Err(GatewayError::config(
                    "api_key",
                    "vertex-ai needs `api_key` (an OAuth access token) or `vertex_service_account_json`",
                )),
            },
        }
    }

    /// The publisher whose format an answer to `cx`'s request is in (the same model,
    /// after `override_params`, that chose the request's path).
    fn answer_publisher(&self, cx: &ResponseContext<'_>) -> Publisher {
        let model = cx.model().unwrap_or_default();
        // A refused model never got as far as an answer.
        self.publisher(model.strip_prefix("models/").unwrap_or(model)).unwrap_or(Publisher::Google)
    }

    /// `generateContent` (or `batchEmbedContents`) with a Gemini body.
    fn gemini_request(
        &self,
        input: &BuildInput<'_>,
        params: &serde_json::Value,
        model: &str,
        headers: HeaderMap,
    ) -> Result<HttpRequest, GatewayError> {
        let model_url = self.model_url(input, Publisher::Google, model)?;
        let stream = input.stream() && input.request.endpoint == Endpoint::ChatCompletions;
        let (url, built) = match input.request.endpoint {
            Endpoint::ChatCompletions => {
                let url = if stream {
                    format!("{model_url}:streamGenerateContent?alt=sse")
                } else {
                    format!("{model_url}:generateContent")
                };
                (url, request::chat_body(params)?)
            }
            Endpoint::Embeddings => (format!("{model_url}:batchEmbedContents"), request::embed_body(params, model)?),
            other => {
                return Err(GatewayError::new(
                    ErrorCode::UnsupportedEndpoint,
                    format!("{} does not support {}", self.slug, other.openai_path()),
                ));
            }
        };
        let body = crate::providers::body_bytes(&built.body)?;
        Ok(HttpRequest { method: Method::POST, url, headers, body, stream, dropped_params: built.dropped })
    }

    /// `rawPredict` / `streamRawPredict` with an Anthropic Messages body.
    fn claude_request(
        &self,
        input: &BuildInput<'_>,
        params: &serde_json::Value,
        model: &str,
        mut headers: HeaderMap,
    ) -> Result<HttpRequest, GatewayError> {
        let endpoint = input.request.endpoint;
        if endpoint == Endpoint::CountTokens {
            // One `count-tokens` model for every Claude; the model counted is named in the body.
            crate::providers::anthropic::caller_betas(input, &mut headers)?;
            let url = format!("{}:rawPredict", self.model_url(input, Publisher::Anthropic, "count-tokens")?);
            let body = vertex_claude::count_tokens_body(params, vertex_claude::url_model(model))?;
            return Ok(HttpRequest { method: Method::POST, url, headers, body, stream: false, dropped_params: vec![] });
        }
        if !matches!(endpoint, Endpoint::ChatCompletions | Endpoint::Messages) {
            return Err(GatewayError::new(
                ErrorCode::UnsupportedEndpoint,
                format!(
                    "vertex-ai: Claude models offer chat completions, messages and token counts only, not {}",
                    endpoint.openai_path()
                ),
            ));
        }
        let target = input.target;
        let version = target.option("anthropic_version").unwrap_or(vertex_claude::DEFAULT_VERSION);
        let stream = input.stream();
        let model_url = self.model_url(input, Publisher::Anthropic, vertex_claude::url_model(model))?;
        let (body, dropped_params) = if endpoint == Endpoint::Messages {
            // The caller's own Messages request and betas, as Vertex wants them: the
            // model in the URL, the version in the body.
            crate::providers::anthropic::caller_betas(input, &mut headers)?;
            (vertex_claude::raw_messages_body(params, version)?, Vec::new())
        } else {
            if let Some(beta) = target.option("anthropic_beta") {
                insert_header(&mut headers, "anthropic-beta", beta)?;
            }
            vertex_claude::body(params, model, version)?
        };
        Ok(HttpRequest {
            method: Method::POST,
            url: format!("{model_url}:{}", vertex_claude::method(stream)),
            headers,
            body,
            stream,
            dropped_params,
        })
    }

    fn code_style(&self) -> CodeStyle {
        match self.api {
            Api::GeminiApi => CodeStyle::Number,
            Api::Vertex => CodeStyle::String,
        }
    }
}

/// Vertex partner models (Meta, Mistral) served under other paths and formats, not built
/// yet; they must not be sent to Google's publisher as if they were Gemini models.
fn other_publisher(model: &str) -> bool {
    let m = model.to_ascii_lowercase();
    ["meta.", "mistralai.", "mistral."].iter().any(|p| m.starts_with(p))
}

fn vertex_region<'a>(input: &'a BuildInput<'_>) -> Result<&'a str, GatewayError> {
    let region = input.target.option("vertex_region").ok_or_else(|| {
        GatewayError::config("vertex_region", "vertex-ai needs `vertex_region` (e.g. `us-central1` or `global`)")
    })?;
    // The region becomes part of a host name: anything but [a-z0-9-] could redirect
    // the bearer token elsewhere.
    if !region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
        return Err(GatewayError::config("vertex_region", format!("`{region}` is not a valid Vertex AI region")));
    }
    Ok(region)
}

/// Percent-encode a path segment (model names and project ids come from callers; a `/`
/// or `?` must not change which endpoint is called).
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'@') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The scope Vertex AI calls need.
const CLOUD_PLATFORM_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";

fn service_account(target: &ProviderTarget) -> Option<&serde_json::Value> {
    target.options.get("vertex_service_account_json").filter(|v| !v.is_null())
}

impl Provider for Gemini {
    fn slug(&self) -> &'static str {
        self.slug
    }

    /// Vertex with a service account and no access token: the transport signs the
    /// account's JWT and exchanges it for a token (that takes I/O, so not here).
    fn credential_request(&self, target: &ProviderTarget) -> Option<CredentialRequest> {
        match self.api {
            Api::Vertex if target.option("api_key").is_none() => service_account(target).map(|account| {
                CredentialRequest::GoogleServiceAccount { account: account.clone(), scope: CLOUD_PLATFORM_SCOPE }
            }),
            _ => None,
        }
    }

    fn supports(&self, endpoint: Endpoint) -> bool {
        match self.api {
            // Vertex embeddings use a different API (`:predict`), not built yet.
            Api::GeminiApi => matches!(endpoint, Endpoint::ChatCompletions | Endpoint::Embeddings),
            Api::Vertex => matches!(endpoint, Endpoint::ChatCompletions | Endpoint::Messages | Endpoint::CountTokens),
        }
    }

    fn speaks(&self, endpoint: Endpoint, model: Option<&str>) -> bool {
        match endpoint {
            Endpoint::Messages | Endpoint::CountTokens => {
                self.api == Api::Vertex && model.is_some_and(vertex_claude::is_claude)
            }
            _ => self.supports(endpoint),
        }
    }

    fn build_request(&self, input: &BuildInput<'_>) -> Result<HttpRequest, GatewayError> {
        let params = input.params()?;
        let model = request::model(&params)?;
        let publisher = self.publisher(model)?;
        let mut headers = HeaderMap::new();
        self.auth(input, &mut headers)?;
        headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        forward_headers(input, &mut headers);
        match publisher {
            Publisher::Anthropic => self.claude_request(input, &params, model, headers),
            Publisher::Google => self.gemini_request(input, &params, model, headers),
        }
    }

    fn transform_response(&self, cx: &ResponseContext<'_>, body: Bytes) -> Result<Bytes, GatewayError> {
        match (self.answer_publisher(cx), cx.endpoint()) {
            // Claude's own message and token count, for a Messages caller.
            (Publisher::Anthropic, Endpoint::Messages | Endpoint::CountTokens) => Ok(body),
            (Publisher::Anthropic, _) => vertex_claude::chat(self.slug, cx, &body),
            (_, Endpoint::Embeddings) => response::embedding_list(self.slug, cx, &body),
            _ => response::chat_completion(self.slug, cx, &body),
        }
    }

    fn upstream_error(&self, status: u16, body: &[u8]) -> GatewayError {
        // Errors raised by Claude itself keep Anthropic's shape; Vertex's own refusals
        // (quota, auth, unknown model) are Google-shaped whatever the model.
        if self.api == Api::Vertex && vertex_claude::is_anthropic_error(body) {
            return vertex_claude::upstream_error(self.slug, status, body);
        }
        response::upstream_error(self.slug, self.code_style(), status, body)
    }

    fn stream_translator(&self, cx: &ResponseContext<'_>) -> Box<dyn StreamTranslator> {
        match self.answer_publisher(cx) {
            Publisher::Anthropic if cx.endpoint() == Endpoint::Messages => {
                Box::new(SseTranslator::new(crate::providers::own_events::OwnEvents::messages(self.slug)))
            }
            Publisher::Anthropic => vertex_claude::stream_translator(self.slug, cx),
            Publisher::Google => Box::new(SseTranslator::new(GeminiEvents::new(self.slug, cx))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(encode_segment("gemini-1.5-pro@002"), "gemini-1.5-pro@002");
        assert_eq!(encode_segment("../x?y"), "..%2Fx%3Fy");
    }

    #[test]
    fn the_model_picks_the_publisher() {
        let vertex = |m| VERTEX_AI.publisher(m).ok();
        assert_eq!(vertex("claude-3-5-sonnet@20240620"), Some(Publisher::Anthropic));
        assert_eq!(vertex("anthropic.claude-3-5-sonnet@20240620"), Some(Publisher::Anthropic));
        assert_eq!(vertex("gemini-2.0-flash"), Some(Publisher::Google));
        assert_eq!(vertex("meta.llama-3.3-70b"), None);
        assert_eq!(vertex("mistralai.mistral-large"), None);
        // The Gemini API has no partner models: a Claude name there is the caller's mistake
        // for Google to report.
        assert_eq!(GOOGLE.publisher("claude-3-5-sonnet@20240620").ok(), Some(Publisher::Google));
    }
}
