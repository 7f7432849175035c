//! Anthropic's Messages API (`POST /v1/messages`).
//!
//! The body builder, the answer parser and the stream translator take the model and the
//! provider name from their caller, so Anthropic-on-Vertex (`rawPredict`: the model in
//! the URL, `anthropic_version: "vertex-2023-10-16"` in the body) reuses them unchanged.

pub(crate) mod request;
pub(crate) mod response;
pub(crate) mod stream;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method};
use serde_json::{Map, Value};

use request::{MessagesBody, messages_body};
use response::chat_completion;
use stream::MessagesEvents;

use super::openai_compatible::openai_style_error;
use super::own_events::OwnEvents;
use super::sse_stream::SseTranslator;
use super::{
    BuildInput, HttpRequest, Provider, ResponseContext, StreamTranslator, forward_headers, insert_header, join_url,
    json_body,
};
use crate::error::{ErrorCode, GatewayError};
use crate::request::Endpoint;

const SLUG: &str = "anthropic";
const BASE_URL: &str = "https://api.anthropic.com/v1";
const DEFAULT_VERSION: &str = "2023-06-01";

/// The Anthropic provider.
#[derive(Debug)]
pub struct Anthropic;

/// The one instance, registered in the provider table.
pub static ANTHROPIC: Anthropic = Anthropic;

impl Provider for Anthropic {
    fn slug(&self) -> &'static str {
        SLUG
    }

    fn supports(&self, endpoint: Endpoint) -> bool {
        matches!(endpoint, Endpoint::ChatCompletions | Endpoint::Messages | Endpoint::CountTokens)
    }

    fn build_request(&self, input: &BuildInput<'_>) -> Result<HttpRequest, GatewayError> {
        let endpoint = input.request.endpoint;
        if matches!(endpoint, Endpoint::Messages | Endpoint::CountTokens) {
            return self.messages_request(input, endpoint);
        }
        if endpoint != Endpoint::ChatCompletions {
            return Err(GatewayError::new(ErrorCode::UnsupportedEndpoint, "anthropic only offers chat and messages"));
        }
        let target = input.target;
        let api_key = api_key(input)?;
        let params = input.params()?;
        let model = params
            .get("model")
            .and_then(Value::as_str)
            .filter(|m| !m.is_empty())
            .ok_or_else(|| GatewayError::request("model", "anthropic needs `model`"))?;
        let MessagesBody { body, dropped } = messages_body(&params, model)?;
        let mut full = Map::with_capacity(body.len() + 1);
        full.insert("model".into(), model.into());
        full.extend(body);

        let mut headers = HeaderMap::new();
        headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        insert_header(&mut headers, "x-api-key", api_key)?;
        insert_header(
            &mut headers,
            "anthropic-version",
            target.option("anthropic_version").unwrap_or(DEFAULT_VERSION),
        )?;
        // Unlike Portkey, no beta is sent by default: betas change behaviour and must be
        // opted into.
        if let Some(beta) = target.option("anthropic_beta") {
            insert_header(&mut headers, "anthropic-beta", beta)?;
        }
        forward_headers(input, &mut headers);

        let body = crate::providers::body_bytes(&Value::Object(full))?;
        Ok(HttpRequest {
            method: Method::POST,
            url: join_url(input.custom_host.unwrap_or(BASE_URL), "/messages"),
            headers,
            body,
            stream: input.stream(),
            dropped_params: dropped,
        })
    }

    fn transform_response(&self, cx: &ResponseContext<'_>, body: Bytes) -> Result<Bytes, GatewayError> {
        match cx.endpoint() {
            // Anthropic's own answer, for a caller of Anthropic's own API.
            Endpoint::Messages | Endpoint::CountTokens => Ok(body),
            _ => chat_completion(SLUG, cx, &body),
        }
    }

    fn upstream_error(&self, status: u16, body: &[u8]) -> GatewayError {
        // `{"type":"error","error":{"type","message"}}`: the inner object has OpenAI's
        // field names, so the shared reader applies (type copied, code from the status).
        openai_style_error(SLUG, status, body)
    }

    fn stream_translator(&self, cx: &ResponseContext<'_>) -> Box<dyn StreamTranslator> {
        match cx.endpoint() {
            Endpoint::Messages => Box::new(SseTranslator::new(OwnEvents::messages(SLUG))),
            _ => Box::new(SseTranslator::new(MessagesEvents::new(SLUG, cx))),
        }
    }
}

impl Anthropic {
    /// A Messages (or token count) request as the caller sent it: only the model
    /// (`@slug/model` resolved), `override_params` and the credential change. The
    /// caller's `anthropic-version` and `anthropic-beta` headers go with it.
    fn messages_request(&self, input: &BuildInput<'_>, endpoint: Endpoint) -> Result<HttpRequest, GatewayError> {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        insert_header(&mut headers, "x-api-key", api_key(input)?)?;
        caller_anthropic_headers(input, &mut headers)?;
        forward_headers(input, &mut headers);
        Ok(HttpRequest {
            method: Method::POST,
            url: join_url(input.custom_host.unwrap_or(BASE_URL), endpoint.openai_path()),
            headers,
            body: json_body(&input.request.body, input.settings, &[], false)?,
            stream: input.stream(),
            dropped_params: Vec::new(),
        })
    }
}

fn api_key<'a>(input: &BuildInput<'a>) -> Result<&'a str, GatewayError> {
    input
        .target
        .option("api_key")
        .ok_or_else(|| GatewayError::config("api_key", "anthropic needs `api_key` (sent as `x-api-key`)"))
}

/// `anthropic-version` (the caller's, else the target's, else the default) and
/// `anthropic-beta` (the caller's betas and the target's, joined), for a caller of the
/// Messages API: its SDK sets them for the features it uses.
pub(crate) fn caller_anthropic_headers(input: &BuildInput<'_>, headers: &mut HeaderMap) -> Result<(), GatewayError> {
    let version = caller_header(input, "anthropic-version");
    let version =
        if version.is_empty() { input.target.option("anthropic_version").unwrap_or(DEFAULT_VERSION) } else { &version };
    insert_header(headers, "anthropic-version", version)?;
    caller_betas(input, headers)
}

/// Every value the caller sent for header `name`, joined with commas.
fn caller_header(input: &BuildInput<'_>, name: &str) -> String {
    input.request.headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).collect::<Vec<_>>().join(",")
}

/// `anthropic-beta`: the caller's betas and the target's, joined, each once.
pub(crate) fn caller_betas(input: &BuildInput<'_>, headers: &mut HeaderMap) -> Result<(), GatewayError> {
    let betas = betas(input);
    if !betas.is_empty() {
        insert_header(headers, "anthropic-beta", &betas.join(","))?;
    }
    Ok(())
}

/// The caller's betas (its `anthropic-beta` headers) and the target's, each once, in order.
pub(crate) fn betas(input: &BuildInput<'_>) -> Vec<String> {
    let from_caller = caller_header(input, "anthropic-beta");
    let mut unique: Vec<String> = Vec::new();
    for beta in [from_caller.as_str(), input.target.option("anthropic_beta").unwrap_or("")]
        .iter()
        .flat_map(|b| b.split(','))
        .map(str::trim)
        .filter(|b| !b.is_empty())
    {
        if !unique.iter().any(|u| u == beta) {
            unique.push(beta.to_owned());
        }
    }
    unique
}
