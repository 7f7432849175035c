//! The prompt library's routes: `POST /v1/prompts/{id}/render` answers the chat request a
//! registry prompt renders to (`{"success": true, "data": <body>}`), and
//! `POST /v1/prompts/{id}/completions` (or `/create`) runs it as a chat completion. A call's body holds
//! `variables`; every other field (`max_tokens`, `stream`, …) overrides the prompt's own.
//! The server and the bindings share this module.

use bytes::Bytes;
use gateway_core::{Endpoint, GatewayError, GatewayRequest, RequestBody};
use serde_json::{Map, Value};

use super::options::{ConfigRef, Options, Text};
use super::{HttpReply, HttpReplyBody, RegistryView};

/// A prompt route, by what it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptCall<'p> {
    /// `/v1/prompts/{id}/render`.
    Render(&'p str),
    /// `/v1/prompts/{id}/completions`.
    Completions(&'p str),
}

impl<'p> PromptCall<'p> {
    /// The prompt route a `POST` to `path` is, if it is one.
    pub fn of(method: &http::Method, path: &'p str) -> Option<Self> {
        let rest = path.strip_prefix("/v1/prompts/").filter(|_| method == http::Method::POST)?;
        let (id, action) = rest.split_once('/')?;
        if id.is_empty() {
            return None;
        }
        match action {
            "render" => Some(Self::Render(id)),
            // `/create` is the same call under the name Portkey's older API gave it.
            "completions" | "create" => Some(Self::Completions(id)),
            _ => None,
        }
    }

    /// The call a prompt resource (`prompts.render`, `prompts.completions.create`) makes.
    pub fn of_resource(method: &str, id: &'p str) -> Self {
        if method == "prompts.render" { Self::Render(id) } else { Self::Completions(id) }
    }

    /// The prompt's id.
    pub fn id(self) -> &'p str {
        match self {
            Self::Render(id) | Self::Completions(id) => id,
        }
    }
}

/// What a prompt call comes to: the rendered body to answer with, or the chat request to
/// route.
#[derive(Debug)]
pub enum PromptOutcome {
    /// `/render`'s answer.
    Rendered(Map<String, Value>),
    /// `/completions`' chat request (the call's options now name where it runs), and the
    /// prompt it was rendered from, for its route info and log record.
    Completion(GatewayRequest, std::sync::Arc<gateway_core::prompts::PromptRef>),
}

/// Serve a prompt call up to the point where a completion is routed like any chat request.
pub fn prompt_request(
    call: PromptCall<'_>,
    view: &RegistryView,
    call_body: &[u8],
    headers: http::HeaderMap,
    options: &mut Options,
) -> Result<PromptOutcome, GatewayError> {
    let (prompt, body) = render(view, call.id(), call_body)?;
    Ok(match call {
        PromptCall::Render(_) => PromptOutcome::Rendered(body),
        PromptCall::Completions(_) => PromptOutcome::Completion(
            completion(&prompt, body, headers, options)?,
            std::sync::Arc::new(prompt.reference()),
        ),
    })
}

/// The chat request body the prompt `id` renders to with this call's variables and
/// overrides, and the prompt.
pub fn render(
    view: &RegistryView,
    id: &str,
    call_body: &[u8],
) -> Result<(std::sync::Arc<gateway_core::prompts::Prompt>, Map<String, Value>), GatewayError> {
    let prompt = view
        .registry
        .prompt(id)
        .cloned()
        .ok_or_else(|| GatewayError::request("url", format!("no prompt `{id}` in the registry")))?;
    let mut overrides = match serde_json::from_slice::<Value>(call_body) {
        Ok(Value::Object(map)) => map,
        _ if call_body.iter().all(u8::is_ascii_whitespace) => Map::new(),
        _ => return Err(GatewayError::request("", "the body must be a JSON object: {\"variables\": {...}, ...}")),
    };
    let variables = overrides.remove("variables").unwrap_or_else(|| Value::Object(Map::new()));
    // The id is the route's; an SDK that repeats it in the body must not send it upstream.
    overrides.remove("prompt_id");
    overrides.remove("promptID");
    let body = prompt.render(&variables, &overrides, view.registry.partials())?;
    Ok((prompt, body))
}

/// `{"success": true, "data": <body>}`, as `/render` answers.
pub fn rendered_json(body: Map<String, Value>) -> Bytes {
    Bytes::from(serde_json::json!({"success": true, "data": body}).to_string())
}

/// [`rendered_json`] as an HTTP reply.
pub fn rendered_reply(body: Map<String, Value>) -> HttpReply {
    let mut headers = http::HeaderMap::new();
    headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    HttpReply { status: 200, headers, body: HttpReplyBody::Full(rendered_json(body)) }
}

/// The chat request a completion of `prompt` sends, and where it runs: the prompt's
/// provider entry or config, unless the call's own options choose what is called.
pub fn completion(
    prompt: &gateway_core::prompts::Prompt,
    body: Map<String, Value>,
    headers: http::HeaderMap,
    options: &mut Options,
) -> Result<GatewayRequest, GatewayError> {
    if !options.changes_routing() {
        options.config = prompt.route.config.clone().map(ConfigRef::Text);
        if options.config.is_none() {
            options.virtual_key = prompt.route.provider.clone().map(Text);
        }
    }
    let mut request = GatewayRequest::json(Endpoint::ChatCompletions, RequestBody::from_value(Value::Object(body))?);
    request.headers = headers;
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_routes_are_read_off_the_path() {
        let post = http::Method::POST;
        assert_eq!(
            PromptCall::of(&post, "/v1/prompts/support-reply/render"),
            Some(PromptCall::Render("support-reply"))
        );
        assert_eq!(PromptCall::of(&post, "/v1/prompts/p1/completions"), Some(PromptCall::Completions("p1")));
        assert_eq!(PromptCall::of(&post, "/v1/prompts/p1/create"), Some(PromptCall::Completions("p1")));
        assert_eq!(PromptCall::of(&http::Method::GET, "/v1/prompts/p1/render"), None);
        for path in ["/v1/prompts/p1", "/v1/prompts//render", "/v1/prompts/a/b/render", "/v1/prompts/p1/other"] {
            assert_eq!(PromptCall::of(&post, path), None, "{path}");
        }
    }
}
