//! Cohere's v2 API: `POST /v2/chat`, `POST /v2/embed` and `POST /v2/rerank`.

mod request;
mod response;
mod stream;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method};
use serde_json::Value;

use super::openai_compatible::openai_style_error;
use super::rerank::{self, RerankDialect};
use super::sse_stream::SseTranslator;
use super::{
    BuildInput, HttpRequest, Provider, ResponseContext, StreamTranslator, forward_headers, insert_header, join_url,
};
use crate::error::{ErrorCode, GatewayError};
use crate::request::Endpoint;
use request::{CohereBody, chat_body, embed_body};
use stream::CohereEvents;

const SLUG: &str = "cohere";
const BASE_URL: &str = "https://api.cohere.com";

/// The Cohere provider.
#[derive(Debug)]
pub struct Cohere;

/// The one instance, registered in the provider table.
pub static COHERE: Cohere = Cohere;

impl Provider for Cohere {
    fn slug(&self) -> &'static str {
        SLUG
    }

    fn supports(&self, endpoint: Endpoint) -> bool {
        matches!(endpoint, Endpoint::ChatCompletions | Endpoint::Embeddings | Endpoint::Rerank)
    }

    fn build_request(&self, input: &BuildInput<'_>) -> Result<HttpRequest, GatewayError> {
        let api_key =
            input.target.option("api_key").ok_or_else(|| GatewayError::config("api_key", "cohere needs `api_key`"))?;
        let params = input.params()?;
        if params.get("model").and_then(Value::as_str).is_none_or(str::is_empty) {
            return Err(GatewayError::request("model", "cohere needs `model`"));
        }
        let (path, CohereBody { body, dropped }) = match input.request.endpoint {
            Endpoint::ChatCompletions => ("/v2/chat", chat_body(&params)?),
            Endpoint::Embeddings => ("/v2/embed", embed_body(&params)?),
            Endpoint::Rerank => {
                let (body, dropped) = rerank::request(RerankDialect::Cohere, &params)?;
                ("/v2/rerank", CohereBody { body, dropped })
            }
            _ => {
                return Err(GatewayError::new(
                    ErrorCode::UnsupportedEndpoint,
                    "cohere offers chat completions, embeddings and rerank only",
                ));
            }
        };
        let mut headers = HeaderMap::new();
        headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        insert_header(&mut headers, "authorization", &super::bearer(api_key))?;
        forward_headers(input, &mut headers);
        let body = crate::providers::body_bytes(&Value::Object(body))?;
        Ok(HttpRequest {
            method: Method::POST,
            url: join_url(input.custom_host.unwrap_or(BASE_URL), path),
            headers,
            body,
            stream: input.request.endpoint == Endpoint::ChatCompletions && input.stream(),
            dropped_params: dropped,
        })
    }

    fn transform_response(&self, cx: &ResponseContext<'_>, body: Bytes) -> Result<Bytes, GatewayError> {
        match cx.endpoint() {
            Endpoint::Embeddings => response::embedding_list(cx, &body),
            Endpoint::Rerank => rerank::answer_bytes(SLUG, RerankDialect::Cohere, cx, &body),
            _ => response::chat_completion(cx, &body),
        }
    }

    fn upstream_error(&self, status: u16, body: &[u8]) -> GatewayError {
        // Cohere errors are `{"message": ...}` (plus an id): the shared reader takes the
        // top-level message when there is no `error` object.
        openai_style_error(SLUG, status, body)
    }

    fn stream_translator(&self, cx: &ResponseContext<'_>) -> Box<dyn StreamTranslator> {
        Box::new(SseTranslator::new(CohereEvents::new(cx)))
    }
}
