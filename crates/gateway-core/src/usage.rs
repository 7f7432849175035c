//! Token usage of an answer, read from the OpenAI shape every provider's answer is
//! translated into (so one reader serves every provider): `usage.prompt_tokens`,
//! `completion_tokens`, `total_tokens`, `prompt_tokens_details.cached_tokens`,
//! `completion_tokens_details.reasoning_tokens`, and the cache-write count Anthropic and
//! Bedrock answers carry.
//!
//! Reading is cheap on purpose: it runs on every answer. A complete answer is not parsed;
//! the `usage` object is found by its key and only that object is read.

use std::sync::LazyLock;

use memchr::memmem;
use serde::{Deserialize, Serialize};

use crate::json::{self, Field, FieldSink, Fields, key};

/// Tokens used by one answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Prompt tokens, cached ones included.
    pub input_tokens: u64,
    /// Completion tokens, reasoning ones included.
    pub output_tokens: u64,
    /// As the provider reports it (input + output when it reports none).
    pub total_tokens: u64,
    /// Prompt tokens read from the provider's prompt cache.
    pub cached_input_tokens: u64,
    /// Completion tokens spent reasoning.
    pub reasoning_tokens: u64,
    /// Prompt tokens written to the provider's prompt cache (Anthropic, Bedrock).
    pub cache_write_input_tokens: u64,
}

/// The fields of `usage` in records, route info and the bindings, in this order.
impl Fields for Usage {
    fn fields<S: FieldSink>(&self, sink: &mut S) -> Result<(), S::Error> {
        sink.field(key!("input_tokens"), &self.input_tokens)?;
        sink.field(key!("output_tokens"), &self.output_tokens)?;
        sink.field(key!("total_tokens"), &self.total_tokens)?;
        sink.field(key!("cached_input_tokens"), &self.cached_input_tokens)?;
        sink.field(key!("reasoning_tokens"), &self.reasoning_tokens)?;
        sink.field(key!("cache_write_input_tokens"), &self.cache_write_input_tokens)
    }
}

impl Serialize for Usage {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        json::serialize_fields(self, "Usage", serializer)
    }
}

impl Field for Usage {
    fn write_json(&self, out: &mut Vec<u8>) {
        json::write_fields(out, self);
    }
}

/// The OpenAI `usage` object, as far as it is read. Embeddings report only
/// `prompt_tokens` and `total_tokens`; the Responses API uses `input_tokens` and
/// `output_tokens` (cached ones included, as OpenAI counts them); Anthropic's Messages
/// API uses `input_tokens` too, but counts cache reads and writes apart from it
/// (`cache_read_input_tokens`, `cache_creation_input_tokens`).
#[derive(Deserialize)]
struct OpenAiUsage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default, alias = "output_tokens")]
    completion_tokens: Option<u64>,
    #[serde(default)]
    total_tokens: Option<u64>,
    // The Realtime API's `response.done` says `input_token_details` (no second s).
    #[serde(default, alias = "input_tokens_details", alias = "input_token_details")]
    prompt_tokens_details: Option<Details>,
    #[serde(default, alias = "output_tokens_details", alias = "output_token_details")]
    completion_tokens_details: Option<Details>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
}

#[derive(Deserialize, Default)]
struct Details {
    #[serde(default)]
    cached_tokens: Option<u64>,
    #[serde(default)]
    reasoning_tokens: Option<u64>,
}

impl From<OpenAiUsage> for Usage {
    fn from(u: OpenAiUsage) -> Self {
        let read = u.cache_read_input_tokens.unwrap_or(0);
        let written = u.cache_creation_input_tokens.unwrap_or(0);
        // Anthropic's own shape: `input_tokens` beside the cache counts, not including them.
        let anthropic = u.prompt_tokens.is_none()
            && u.prompt_tokens_details.is_none()
            && (u.cache_read_input_tokens.is_some() || u.cache_creation_input_tokens.is_some());
        let input = match (u.prompt_tokens, u.input_tokens) {
            (Some(prompt), _) => prompt,
            (None, Some(input)) if anthropic => input + read + written,
            (None, input) => input.unwrap_or(0),
        };
        let output = u.completion_tokens.unwrap_or(0);
        let cached = u.prompt_tokens_details.as_ref().and_then(|d| d.cached_tokens);
        Self {
            input_tokens: input,
            output_tokens: output,
            total_tokens: u.total_tokens.unwrap_or(input + output),
            cached_input_tokens: cached.unwrap_or(if anthropic { read } else { 0 }),
            reasoning_tokens: u.completion_tokens_details.as_ref().and_then(|d| d.reasoning_tokens).unwrap_or(0),
            cache_write_input_tokens: written,
        }
    }
}

impl Usage {
    /// Two reports of one answer's usage taken together: Anthropic's stream reports the
    /// prompt in `message_start` and the output in `message_delta`, each count at its
    /// latest value, so each field is the larger of the two.
    pub fn merged(self, later: Usage) -> Usage {
        let input_tokens = self.input_tokens.max(later.input_tokens);
        let output_tokens = self.output_tokens.max(later.output_tokens);
        Usage {
            input_tokens,
            output_tokens,
            total_tokens: self.total_tokens.max(later.total_tokens).max(input_tokens + output_tokens),
            cached_input_tokens: self.cached_input_tokens.max(later.cached_input_tokens),
            reasoning_tokens: self.reasoning_tokens.max(later.reasoning_tokens),
            cache_write_input_tokens: self.cache_write_input_tokens.max(later.cache_write_input_tokens),
        }
    }

    /// The usage of two answers together (a realtime session's responses), field by field.
    pub fn plus(self, other: Usage) -> Usage {
        Usage {
            input_tokens: self.input_tokens.saturating_add(other.input_tokens),
            output_tokens: self.output_tokens.saturating_add(other.output_tokens),
            total_tokens: self.total_tokens.saturating_add(other.total_tokens),
            cached_input_tokens: self.cached_input_tokens.saturating_add(other.cached_input_tokens),
            reasoning_tokens: self.reasoning_tokens.saturating_add(other.reasoning_tokens),
            cache_write_input_tokens: self.cache_write_input_tokens.saturating_add(other.cache_write_input_tokens),
        }
    }
}

/// What is read off an answer: its usage and the model that produced it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AnswerFacts {
    /// `usage`, when the answer has one.
    pub usage: Option<Usage>,
    /// The top-level `model`, when the answer names one.
    pub model: Option<String>,
}

const USAGE_KEY: &[u8] = b"\"usage\"";
const MODEL_KEY: &[u8] = b"\"model\"";

/// Most places a key is tried at. Each try reads the value after the key; an upstream the
/// caller chose (`custom_host`) could fill an answer with keys whose values nest, and
/// trying every one would read the body again and again. A real answer's key is found on
/// the first try.
const MAX_TRIES: usize = 4;

// Made once: building a searcher costs more than searching an answer.
static USAGE_FROM_END: LazyLock<memmem::FinderRev<'static>> = LazyLock::new(|| memmem::FinderRev::new(USAGE_KEY));
static MODEL_FROM_START: LazyLock<memmem::Finder<'static>> = LazyLock::new(|| memmem::Finder::new(MODEL_KEY));

/// Usage and model of an OpenAI-shaped answer body (a completion, an embedding list, or
/// one stream chunk). The key text `"usage"` can only appear unescaped as a key (inside
/// a JSON string its quotes would be escaped) or as the whole string value `"usage"`,
/// which is not followed by a colon; the last `"usage":` whose value reads as usage
/// wins, since OpenAI puts the top-level one after the choices.
pub fn read_answer(body: &[u8]) -> AnswerFacts {
    AnswerFacts { usage: usage_in(body), model: model_in(body) }
}

/// Usage in an OpenAI-shaped body or chunk, as [`read_answer`] finds it.
pub fn usage_in(body: &[u8]) -> Option<Usage> {
    let mut end = body.len();
    for _ in 0..MAX_TRIES {
        let Some(at) = USAGE_FROM_END.rfind(&body[..end]) else { break };
        if let Some(usage) = value_after_key::<OpenAiUsage>(body, at + USAGE_KEY.len()) {
            return Some(Usage::from(usage));
        }
        end = at;
    }
    None
}

/// The first top-level-looking `"model": "..."` of a body.
fn model_in(body: &[u8]) -> Option<String> {
    let mut start = 0;
    for _ in 0..MAX_TRIES {
        let Some(found) = MODEL_FROM_START.find(&body[start..]) else { break };
        let at = start + found;
        if let Some(model) = value_after_key::<String>(body, at + MODEL_KEY.len()) {
            return Some(model);
        }
        start = at + MODEL_KEY.len();
    }
    None
}

/// The value after `"key"` at `after` (past `:` and whitespace), if it reads as `T`.
fn value_after_key<'de, T: Deserialize<'de>>(body: &'de [u8], after: usize) -> Option<T> {
    let rest = body.get(after..)?;
    let colon = rest.iter().position(|b| !b.is_ascii_whitespace())?;
    if rest[colon] != b':' {
        return None;
    }
    let value = &rest[colon + 1..];
    // Reads one value and stops, whatever follows it.
    serde_json::Deserializer::from_slice(value).into_iter::<T>().next()?.ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reads_the_openai_usage_object_and_its_details() {
        let body = br#"{"id":"x","model":"gpt-4o-2024-08-06","choices":[{"message":{"content":"the \"usage\": 5"}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15,
            "prompt_tokens_details": {"cached_tokens": 4}, "completion_tokens_details": {"reasoning_tokens": 2}}}"#;
        let facts = read_answer(body);
        assert_eq!(facts.model.as_deref(), Some("gpt-4o-2024-08-06"));
        assert_eq!(
            facts.usage,
            Some(Usage {
                input_tokens: 10,
                output_tokens: 5,
                total_tokens: 15,
                cached_input_tokens: 4,
                reasoning_tokens: 2,
                cache_write_input_tokens: 0
            })
        );
    }

    #[test]
    fn embeddings_null_usage_and_no_usage() {
        let u = usage_in(br#"{"object":"list","usage":{"prompt_tokens":7,"total_tokens":7}}"#).unwrap();
        assert_eq!((u.input_tokens, u.output_tokens, u.total_tokens), (7, 0, 7));
        assert_eq!(usage_in(br#"{"choices":[],"usage":null}"#), None);
        assert_eq!(usage_in(br#"{"content":"usage"}"#), None, "a string value is not the key");
        assert_eq!(read_answer(b"not json").usage, None);
    }

    #[test]
    fn a_body_made_of_usage_keys_is_tried_a_few_times_not_at_every_key() {
        let body = |decoys: usize| {
            let decoys = vec![r#"{"usage":1}"#; decoys].join(",");
            format!(r#"{{"usage":{{"prompt_tokens":7}},"x":[{decoys}]}}"#)
        };
        assert_eq!(usage_in(body(MAX_TRIES - 1).as_bytes()).map(|u| u.input_tokens), Some(7));
        assert_eq!(usage_in(body(10_000).as_bytes()), None, "each try reads a value: only a few are made");
    }

    #[test]
    fn anthropic_cache_writes_are_kept() {
        let u = usage_in(br#"{"usage":{"prompt_tokens":160,"completion_tokens":20,"total_tokens":180,
            "prompt_tokens_details":{"cached_tokens":50},"cache_read_input_tokens":50,"cache_creation_input_tokens":10}}"#)
        .unwrap();
        assert_eq!((u.cached_input_tokens, u.cache_write_input_tokens), (50, 10));
    }

    #[test]
    fn a_realtime_response_done_is_read_and_responses_add_up() {
        let done = br#"{"type":"response.done","response":{"id":"resp_1","usage":{"total_tokens":180,
            "input_tokens":120,"output_tokens":60,"input_token_details":{"cached_tokens":20,"audio_tokens":80},
            "output_token_details":{"audio_tokens":50}}}}"#;
        let u = usage_in(done).unwrap();
        assert_eq!((u.input_tokens, u.output_tokens, u.total_tokens, u.cached_input_tokens), (120, 60, 180, 20));
        let both = u.plus(u);
        assert_eq!((both.input_tokens, both.total_tokens, both.cached_input_tokens), (240, 360, 40));
        assert_eq!(Usage { input_tokens: u64::MAX, ..u }.plus(u).input_tokens, u64::MAX, "saturates");
    }
}
