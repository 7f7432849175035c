//! Usage and cost of every answer, read off the OpenAI shape it reaches the caller in.
//!
//! A complete answer is read once, by key (see [`crate::usage`]). A stream is read as it
//! passes: a chunk is looked at only when its text holds `"usage"`, and when the gateway
//! asked for usage the caller did not (`stream_options.include_usage`), the usage chunk is
//! taken out and `"usage":null` is taken off the other chunks, so the caller gets exactly
//! the chunks it asked for.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::Stream;
use memchr::memmem;
use serde_json::Value;

use super::route_info::{RouteInfo, StreamTotals, Totals};
use super::stream::ChunkStream;
use crate::error::GatewayError;
use crate::pricing::{self, ModelPrices};
use crate::usage::{self, Usage};

/// What prices an answer: the provider, the entry's own prices, the model asked for.
#[derive(Debug, Clone)]
pub(crate) struct Pricing {
    pub provider: &'static str,
    pub prices: Option<Arc<ModelPrices>>,
    /// The model asked for, used when the answer names none.
    pub requested_model: Option<String>,
    /// Served from the gateway's cache: nothing was spent.
    pub cache_hit: bool,
}

impl Pricing {
    pub(crate) fn totals(&self, usage: Option<Usage>, answered_model: Option<String>) -> Totals {
        let model = answered_model.or_else(|| self.requested_model.clone());
        let cost = match (&usage, &model) {
            (Some(_), _) if self.cache_hit => Some(0.0),
            (Some(usage), Some(model)) => pricing::cost(self.provider, model, usage, self.prices.as_deref()),
            _ => None,
        };
        Totals { model, usage, cost }
    }
}

/// Record a complete answer's model, usage and cost on `route`.
pub(crate) fn complete(body: &[u8], pricing: &Pricing, route: &mut RouteInfo) {
    let facts = usage::read_answer(body);
    let totals = pricing.totals(facts.usage, facts.model);
    route.model = totals.model;
    route.usage = totals.usage;
    route.cost = totals.cost;
}

/// `events` as the caller should see them, with the stream's totals set on `totals` when
/// it ends. `remove_usage`: the usage was asked for by the gateway, not the caller.
pub(crate) fn stream(events: ChunkStream, remove_usage: bool, pricing: Pricing, totals: StreamTotals) -> ChunkStream {
    Box::pin(Metered { events, remove_usage, pricing, totals, usage: None, model: None, first: true })
}

struct Metered {
    events: ChunkStream,
    remove_usage: bool,
    pricing: Pricing,
    totals: StreamTotals,
    usage: Option<Usage>,
    model: Option<String>,
    first: bool,
}

const USAGE_KEY: &[u8] = b"\"usage\"";

/// Built once: `memmem::find` builds its searcher on every call, which on a stream is
/// every chunk.
static USAGE: std::sync::LazyLock<memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memmem::Finder::new(USAGE_KEY));

impl Metered {
    /// The chunk as the caller gets it, or `None` when it is the gateway's usage chunk.
    fn pass(&mut self, chunk: Bytes) -> Option<Bytes> {
        if std::mem::take(&mut self.first) {
            self.model = usage::read_answer(&chunk).model;
        }
        if USAGE.find(&chunk).is_none() {
            return Some(chunk);
        }
        if let Some(usage) = usage::usage_in(&chunk) {
            self.usage = Some(self.usage.map_or(usage, |earlier| earlier.merged(usage)));
            return if self.remove_usage { without_usage(&chunk) } else { Some(chunk) };
        }
        if self.remove_usage { Some(without_null_usage(chunk)) } else { Some(chunk) }
    }

    fn settle(&mut self) {
        if self.totals.get().is_none() {
            self.totals.set(self.pricing.totals(self.usage, self.model.take()));
        }
    }
}

impl Stream for Metered {
    type Item = Result<Bytes, GatewayError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            match self.events.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(chunk))) => {
                    if let Some(chunk) = self.pass(chunk) {
                        return Poll::Ready(Some(Ok(chunk)));
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    self.settle();
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(None) => {
                    self.settle();
                    return Poll::Ready(None);
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

/// A chunk that carries usage the caller did not ask for: dropped when it carries nothing
/// else (no choices, as OpenAI sends it), else sent without its `usage`.
fn without_usage(chunk: &[u8]) -> Option<Bytes> {
    let Ok(Value::Object(mut object)) = crate::json::from_slice::<Value>(chunk) else {
        return Some(Bytes::copy_from_slice(chunk));
    };
    let has_choices = object.get("choices").and_then(Value::as_array).is_some_and(|c| !c.is_empty());
    if !has_choices {
        return None;
    }
    object.shift_remove("usage");
    serde_json::to_vec(&object).ok().map(Bytes::from)
}

/// `"usage": null`, which OpenAI adds to every chunk once usage is asked for, taken off
/// (with the comma that joined it to its neighbour).
fn without_null_usage(chunk: Bytes) -> Bytes {
    let is_space = |b: &u8| b.is_ascii_whitespace();
    for at in USAGE.find_iter(&chunk) {
        let after_key = at + USAGE_KEY.len();
        let rest = &chunk[after_key..];
        let Some(colon) = rest.iter().position(|b| !is_space(b)).filter(|&i| rest[i] == b':') else { continue };
        let value = colon + 1 + rest[colon + 1..].iter().take_while(|b| is_space(b)).count();
        if !rest[value..].starts_with(b"null") {
            continue;
        }
        let end = after_key + value + 4;
        let before = chunk[..at].iter().rposition(|b| !is_space(b));
        let (cut_from, cut_to) = match before {
            // `, "usage": null`: the comma before it goes.
            Some(i) if chunk[i] == b',' => (i, end),
            // `{"usage": null, ...`: the comma after it goes.
            _ => {
                let next = chunk[end..].iter().position(|b| !is_space(b)).map(|i| end + i);
                match next {
                    Some(i) if chunk[i] == b',' => (at, i + 1),
                    _ => (at, end),
                }
            }
        };
        let mut out = Vec::with_capacity(chunk.len() - (cut_to - cut_from));
        out.extend_from_slice(&chunk[..cut_from]);
        out.extend_from_slice(&chunk[cut_to..]);
        return Bytes::from(out);
    }
    chunk
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use futures::StreamExt;

    use super::*;

    fn chunks(items: &[&str]) -> ChunkStream {
        let items: Vec<_> = items.iter().map(|s| Ok(Bytes::from(s.to_string()))).collect();
        Box::pin(futures::stream::iter(items))
    }

    fn pricing() -> Pricing {
        Pricing { provider: "openai", prices: None, requested_model: Some("gpt-4o".into()), cache_hit: false }
    }

    const FIRST: &str =
        r#"{"id":"c","model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"delta":{"content":"hi"}}],"usage":null}"#;
    const LAST: &str = r#"{"id":"c","model":"gpt-4o-mini-2024-07-18","choices":[],"usage":{"prompt_tokens":1000000,"completion_tokens":0,"total_tokens":1000000}}"#;

    #[test]
    fn the_gateways_usage_chunk_is_read_and_removed() {
        let totals = StreamTotals::default();
        let out: Vec<_> = futures::executor::block_on(
            stream(chunks(&[FIRST, LAST]), true, pricing(), totals.clone()).map(Result::unwrap).collect(),
        );
        assert_eq!(
            out,
            vec![Bytes::from(
                r#"{"id":"c","model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"delta":{"content":"hi"}}]}"#
            )]
        );
        let totals = totals.get().unwrap();
        assert_eq!(totals.usage.unwrap().input_tokens, 1_000_000);
        assert_eq!(totals.model.as_deref(), Some("gpt-4o-mini-2024-07-18"));
        assert_eq!(totals.cost, Some(0.15), "priced as the model that answered");
    }

    #[test]
    fn usage_the_caller_asked_for_is_left_alone() {
        let totals = StreamTotals::default();
        let out: Vec<_> = futures::executor::block_on(
            stream(chunks(&[FIRST, LAST]), false, pricing(), totals.clone()).map(Result::unwrap).collect(),
        );
        assert_eq!(out, vec![Bytes::from(FIRST), Bytes::from(LAST)]);
        assert!(totals.get().unwrap().usage.is_some());
    }

    #[test]
    fn usage_on_a_chunk_with_choices_is_taken_off_it() {
        let chunk = r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":2}}"#;
        assert_eq!(
            without_usage(chunk.as_bytes()).unwrap(),
            Bytes::from(r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#)
        );
    }

    #[test]
    fn null_usage_is_taken_off_however_it_is_spaced() {
        for (chunk, want) in [
            (r#"{"a":1,"usage":null}"#, r#"{"a":1}"#),
            (r#"{"a": 1, "usage" : null }"#, r#"{"a": 1 }"#),
            (r#"{"usage": null, "a": 1}"#, r#"{ "a": 1}"#),
            (r#"{"usage":{"prompt_tokens":1}}"#, r#"{"usage":{"prompt_tokens":1}}"#),
        ] {
            assert_eq!(without_null_usage(Bytes::from(chunk)), Bytes::from(want), "{chunk}");
        }
    }

    #[test]
    fn a_cache_hit_costs_nothing_and_an_unknown_model_has_no_cost() {
        let hit = Pricing { cache_hit: true, ..pricing() };
        let usage = Usage { input_tokens: 5, ..Usage::default() };
        assert_eq!(hit.totals(Some(usage), None).cost, Some(0.0));
        let unknown = Pricing { requested_model: Some("mine".into()), ..pricing() };
        assert_eq!(unknown.totals(Some(usage), None).cost, None);
        assert_eq!(pricing().totals(None, None).cost, None, "no usage, no cost");
    }
}
