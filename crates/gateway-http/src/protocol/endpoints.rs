//! The resources the bindings expose, declared once: each binding builds its client's
//! `chat.completions.create`, `images.generate`, `models.list`, ... from this list, and a
//! test compares both surfaces with it.

use gateway_core::{Endpoint, ErrorCode, GatewayError};

/// A binding method and the endpoint it calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resource {
    /// The method's dotted path on the client (`chat.completions.create`).
    pub method: &'static str,
    /// The endpoint.
    pub endpoint: Endpoint,
    /// How the call's arguments travel.
    pub body: BodyKind,
}

/// How a resource's arguments become the request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// A JSON object.
    Json,
    /// `multipart/form-data`: file fields from files or bytes, the rest as text fields.
    Multipart,
    /// No body (a GET).
    Empty,
    /// A registry prompt's call: `prompt_id`, `variables`, and the fields that override
    /// the prompt's (a JSON object to the bindings).
    Prompt,
}

impl BodyKind {
    /// The name the bindings see (`json`, `multipart`, `empty`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Multipart => "multipart",
            Self::Empty => "empty",
            Self::Prompt => "prompt",
        }
    }
}

/// Every resource of the binding clients.
pub const RESOURCES: &[Resource] = &[
    Resource { method: "chat.completions.create", endpoint: Endpoint::ChatCompletions, body: BodyKind::Json },
    Resource { method: "completions.create", endpoint: Endpoint::Completions, body: BodyKind::Json },
    Resource { method: "embeddings.create", endpoint: Endpoint::Embeddings, body: BodyKind::Json },
    Resource { method: "images.generate", endpoint: Endpoint::ImageGenerations, body: BodyKind::Json },
    Resource { method: "images.edit", endpoint: Endpoint::ImageEdits, body: BodyKind::Multipart },
    Resource { method: "images.create_variation", endpoint: Endpoint::ImageVariations, body: BodyKind::Multipart },
    Resource { method: "audio.speech.create", endpoint: Endpoint::AudioSpeech, body: BodyKind::Json },
    Resource {
        method: "audio.transcriptions.create",
        endpoint: Endpoint::AudioTranscriptions,
        body: BodyKind::Multipart,
    },
    Resource { method: "audio.translations.create", endpoint: Endpoint::AudioTranslations, body: BodyKind::Multipart },
    Resource { method: "moderations.create", endpoint: Endpoint::Moderations, body: BodyKind::Json },
    Resource { method: "models.list", endpoint: Endpoint::ListModels, body: BodyKind::Empty },
    // Anthropic's Messages API, answered in Anthropic's shapes.
    Resource { method: "messages.create", endpoint: Endpoint::Messages, body: BodyKind::Json },
    Resource { method: "messages.count_tokens", endpoint: Endpoint::CountTokens, body: BodyKind::Json },
    // Reranking, in Cohere's shape, whichever provider answers.
    Resource { method: "rerank.create", endpoint: Endpoint::Rerank, body: BodyKind::Json },
    // OpenAI's Responses API, answered in its shapes and events.
    Resource { method: "responses.create", endpoint: Endpoint::Responses, body: BodyKind::Json },
    // The prompt library: a registry prompt rendered, or run as a chat completion.
    Resource { method: "prompts.render", endpoint: Endpoint::ChatCompletions, body: BodyKind::Prompt },
    Resource { method: "prompts.completions.create", endpoint: Endpoint::ChatCompletions, body: BodyKind::Prompt },
];

/// The resource for a method path (`chat.completions.create`), or for a resource whose
/// method is `create`, its name alone (`chat.completions`).
pub fn resource(method: &str) -> Result<&'static Resource, GatewayError> {
    RESOURCES
        .iter()
        .find(|r| r.method == method || r.method.strip_suffix(".create") == Some(method))
        .ok_or_else(|| GatewayError::new(ErrorCode::UnsupportedEndpoint, format!("unknown resource `{method}`")))
}
