//! AWS Bedrock: chat through the Converse API (`/model/{id}/converse` and
//! `/converse-stream`), embeddings through `/model/{id}/invoke` (Titan, Cohere), and
//! Anthropic's Messages API for Claude through `/invoke` and `/invoke-with-response-stream`
//! ([`claude`]; other models serve Messages through chat).
//!
//! Requests are signed with SigV4 for the host actually called, so a `custom_host` (a VPC
//! endpoint, a proxy) verifies too; a Bedrock API key (`api_key`) is sent as a bearer
//! token instead when no AWS keys are configured. Streams arrive in the binary AWS
//! event-stream framing, decoded by [`eventstream`].

mod claude;
mod eventstream;
mod request;
mod response;
mod sigv4;
mod stream;

use bytes::Bytes;
use http::{HeaderMap, Method};

use super::{
    BuildInput, HttpRequest, Provider, ResponseContext, StreamTranslator, forward_headers, insert_header, join_url,
};
use crate::error::{ErrorCode, GatewayError};
use crate::request::Endpoint;

const SLUG: &str = "bedrock";
const NAME: &str = "bedrock";
const DEFAULT_REGION: &str = "us-east-1";
/// SigV4 signing name of the Bedrock runtime.
const SERVICE: &str = "bedrock";

/// The Bedrock provider.
#[derive(Debug)]
pub struct Bedrock;

/// The one instance, registered in the provider table.
pub static BEDROCK: Bedrock = Bedrock;

/// How the request is authenticated.
enum Auth<'a> {
    SigV4(sigv4::Credentials<'a>),
    /// A Bedrock API key, sent as `Authorization: Bearer`.
    ApiKey(&'a str),
}

fn auth<'a>(input: &'a BuildInput<'_>) -> Result<Auth<'a>, GatewayError> {
    let target = input.target;
    match target.option("aws_auth_type") {
        None | Some("accessKey" | "apiKey") => {}
        Some(other) => {
            return Err(GatewayError::config(
                "aws_auth_type",
                format!(
                    "bedrock: aws_auth_type `{other}` needs credentials fetched at request time (STS, instance \
                     metadata), which this gateway does not do; use `aws_access_key_id` + `aws_secret_access_key` \
                     (and `aws_session_token`) or `api_key`"
                ),
            ));
        }
    }
    let key_id = target.option("aws_access_key_id");
    let secret = target.option("aws_secret_access_key");
    match (key_id, secret, target.option("api_key")) {
        (Some(access_key_id), Some(secret_access_key), _) => Ok(Auth::SigV4(sigv4::Credentials {
            access_key_id,
            secret_access_key,
            session_token: target.option("aws_session_token"),
        })),
        (Some(_), None, _) => Err(GatewayError::config(
            "aws_secret_access_key",
            "bedrock needs `aws_secret_access_key` to go with `aws_access_key_id`",
        )),
        (None, Some(_), _) => Err(GatewayError::config(
            "aws_access_key_id",
            "bedrock needs `aws_access_key_id` to go with `aws_secret_access_key`",
        )),
        (None, None, Some(key)) => Ok(Auth::ApiKey(key)),
        (None, None, None) => Err(GatewayError::config(
            "aws_access_key_id",
            "bedrock needs `aws_access_key_id` and `aws_secret_access_key` (or a Bedrock API key in `api_key`)",
        )),
    }
}

fn region<'a>(input: &'a BuildInput<'_>) -> Result<&'a str, GatewayError> {
    let region = input.target.option("aws_region").unwrap_or(DEFAULT_REGION);
    // The region becomes part of a host name and of the signature scope.
    if region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
        Ok(region)
    } else {
        Err(GatewayError::config("aws_region", format!("`{region}` is not an AWS region name")))
    }
}

/// A model id as one URL path segment: AWS encodes every reserved character, so
/// `v1:0` → `v1%3A0` and an ARN's `/` → `%2F`.
fn encode_model_id(model: &str) -> String {
    sigv4::uri_encode(model, true)
}

/// The pieces of an absolute URL that signing needs.
struct UrlParts<'a> {
    /// The `host` header value: the authority without userinfo or a default port.
    host: String,
    path: &'a str,
    query: &'a str,
}

fn split_url(url: &str) -> Option<UrlParts<'_>> {
    let (scheme, rest) = url.split_once("://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match scheme.to_ascii_lowercase().as_str() {
        "https" => authority.strip_suffix(":443").unwrap_or(authority),
        "http" => authority.strip_suffix(":80").unwrap_or(authority),
        _ => return None,
    };
    if host.is_empty() {
        return None;
    }
    let rest = &rest[end..];
    let rest = rest.split_once('#').map_or(rest, |(r, _)| r);
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    Some(UrlParts { host: host.to_ascii_lowercase(), path, query })
}

impl Provider for Bedrock {
    fn slug(&self) -> &'static str {
        SLUG
    }

    fn supports(&self, endpoint: Endpoint) -> bool {
        matches!(endpoint, Endpoint::ChatCompletions | Endpoint::Embeddings | Endpoint::CountTokens)
    }

    fn speaks(&self, endpoint: Endpoint, model: Option<&str>) -> bool {
        match endpoint {
            Endpoint::Messages | Endpoint::CountTokens => model.is_some_and(claude::is_claude),
            _ => self.supports(endpoint),
        }
    }

    fn build_request(&self, input: &BuildInput<'_>) -> Result<HttpRequest, GatewayError> {
        let auth = auth(input)?;
        let region = region(input)?;
        let params = input.params()?;
        let model =
            params.get("model").and_then(serde_json::Value::as_str).filter(|m| !m.is_empty()).ok_or_else(|| {
                GatewayError::request("model", "bedrock needs `model`: a model id, inference profile id or ARN")
            })?;
        let endpoint = input.request.endpoint;
        let stream = matches!(endpoint, Endpoint::ChatCompletions | Endpoint::Messages) && input.stream();
        let (operation, body, dropped) = match endpoint {
            Endpoint::ChatCompletions => {
                let built = request::converse(&params)?;
                (
                    if stream { "converse-stream" } else { "converse" },
                    crate::providers::body_bytes(&built.body)?,
                    built.dropped,
                )
            }
            Endpoint::Embeddings => {
                let built = request::embeddings(model, &params)?;
                ("invoke", crate::providers::body_bytes(&built.body)?, built.dropped)
            }
            Endpoint::Messages if claude::is_claude(model) => {
                (claude::operation(stream), claude::body(input, &params)?, Vec::new())
            }
            Endpoint::CountTokens if claude::is_claude(model) => {
                ("count-tokens", claude::count_tokens_body(input, &params)?, Vec::new())
            }
            other => {
                return Err(GatewayError::new(
                    ErrorCode::UnsupportedEndpoint,
                    format!("bedrock does not support {}", other.openai_path()),
                ));
            }
        };
        let base = match input.custom_host {
            Some(host) => host.to_owned(),
            None => format!("https://bedrock-runtime.{region}.amazonaws.com"),
        };
        let url = join_url(&base, &format!("/model/{}/{operation}", encode_model_id(model)));
        let parts = split_url(&url)
            .ok_or_else(|| GatewayError::config("custom_host", format!("`{base}` is not an absolute http(s) URL")))?;

        let mut headers = HeaderMap::new();
        // Forwarded first, so they can never replace a signed header.
        forward_headers(input, &mut headers);
        insert_header(&mut headers, "content-type", "application/json")?;
        match auth {
            Auth::ApiKey(key) => insert_header(&mut headers, "authorization", &super::bearer(key))?,
            Auth::SigV4(creds) => {
                let amz_date = sigv4::amz_date(input.now);
                let payload_hash = sigv4::sha256_hex(&body);
                // The transport must send exactly this host: it is part of the signature.
                insert_header(&mut headers, "host", &parts.host)?;
                insert_header(&mut headers, "x-amz-date", &amz_date)?;
                insert_header(&mut headers, "x-amz-content-sha256", &payload_hash)?;
                let mut signed = vec![
                    ("content-type", "application/json"),
                    ("host", parts.host.as_str()),
                    ("x-amz-content-sha256", payload_hash.as_str()),
                    ("x-amz-date", amz_date.as_str()),
                ];
                if let Some(token) = creds.session_token {
                    insert_header(&mut headers, "x-amz-security-token", token)?;
                    signed.push(("x-amz-security-token", token));
                }
                let scope = sigv4::Scope { region, service: SERVICE, amz_date: &amz_date };
                let signable = sigv4::Signable {
                    method: "POST",
                    path: parts.path,
                    query: parts.query,
                    headers: &signed,
                    payload_hash: &payload_hash,
                };
                insert_header(&mut headers, "authorization", &sigv4::authorization(&creds, &scope, &signable))?;
            }
        }
        Ok(HttpRequest { method: Method::POST, url, headers, body, stream, dropped_params: dropped })
    }

    fn transform_response(&self, cx: &ResponseContext<'_>, body: Bytes) -> Result<Bytes, GatewayError> {
        match cx.endpoint() {
            Endpoint::Embeddings => response::embeddings(cx, &body),
            // Claude's own message, for a Messages caller.
            Endpoint::Messages => Ok(body),
            Endpoint::CountTokens => claude::token_count(&body),
            _ => response::chat(cx, &body),
        }
    }

    fn upstream_error(&self, status: u16, body: &[u8]) -> GatewayError {
        response::upstream_error(status, body)
    }

    fn stream_translator(&self, cx: &ResponseContext<'_>) -> Box<dyn StreamTranslator> {
        match cx.endpoint() {
            Endpoint::Messages => Box::new(claude::translator()),
            _ => Box::new(stream::translator(cx)),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn model_ids_are_one_path_segment() {
        assert_eq!(
            encode_model_id("anthropic.claude-3-5-sonnet-20240620-v1:0"),
            "anthropic.claude-3-5-sonnet-20240620-v1%3A0"
        );
        assert_eq!(
            encode_model_id(
                "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-haiku-20240307-v1:0"
            ),
            "arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.anthropic.claude-3-haiku-20240307-v1%3A0"
        );
    }

    #[test]
    fn url_parts() {
        let p = split_url("https://bedrock-runtime.us-east-1.amazonaws.com:443/model/a%3A0/converse").unwrap();
        assert_eq!(
            (p.host.as_str(), p.path, p.query),
            ("bedrock-runtime.us-east-1.amazonaws.com", "/model/a%3A0/converse", "")
        );
        let p = split_url("http://u:p@127.0.0.1:9000/proxy/model/x/invoke?a=1#f").unwrap();
        assert_eq!((p.host.as_str(), p.path, p.query), ("127.0.0.1:9000", "/proxy/model/x/invoke", "a=1"));
        assert!(split_url("bedrock.example.com/model/x").is_none());
        assert!(split_url("ftp://x/y").is_none());
    }
}
