//! What an answer cost, in US dollars: token usage times the prices in
//! `data/pricing.json` (kept as data, reviewed like code), or in a registry entry's
//! `pricing`, which wins. A model that is in neither has no cost: a wrong figure in a
//! budget is worse than none.

use std::collections::HashMap;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

use crate::usage::Usage;

/// Prices of one model, US dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// Prompt tokens.
    pub input: f64,
    /// Completion tokens (reasoning included).
    pub output: f64,
    /// Prompt tokens read from the prompt cache (`input` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_input: Option<f64>,
    /// Prompt tokens written to the prompt cache (`input` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write: Option<f64>,
}

impl Price {
    /// The cost of `usage` at these prices.
    pub fn cost(&self, usage: &Usage) -> f64 {
        let cached = usage.cached_input_tokens.min(usage.input_tokens);
        let written = usage.cache_write_input_tokens.min(usage.input_tokens - cached);
        let plain = usage.input_tokens - cached - written;
        let per_token = |tokens: u64, price: f64| tokens as f64 * price / 1_000_000.0;
        per_token(plain, self.input)
            + per_token(cached, self.cached_input.unwrap_or(self.input))
            + per_token(written, self.cache_write.unwrap_or(self.input))
            + per_token(usage.output_tokens, self.output)
    }

    /// Whether every price is a finite, non-negative number.
    pub fn is_valid(&self) -> bool {
        [Some(self.input), Some(self.output), self.cached_input, self.cache_write]
            .into_iter()
            .flatten()
            .all(|p| p.is_finite() && p >= 0.0)
    }
}

/// Prices by model name.
pub type ModelPrices = HashMap<String, Price>;

/// The built-in table's maps: every answer is priced, three lookups each, and SipHash over
/// the slugs and the model name was ~500 instructions of a request. foldhash, seeded per
/// process; the table is fixed, so no caller decides what is in it.
type FastMap<V> = HashMap<String, V, foldhash::fast::RandomState>;

/// The built-in table (`data/pricing.json`).
#[derive(Debug, Deserialize)]
struct Table {
    /// Provider slug → the slugs whose prices it charges, in order (`azure-openai` →
    /// `openai`; `vertex-ai` → `google`, then `anthropic` for Claude).
    aliases: FastMap<Vec<String>>,
    /// Providers whose every model costs nothing (local servers).
    free: Vec<String>,
    providers: FastMap<FastMap<Price>>,
}

static TABLE: LazyLock<Table> = LazyLock::new(|| {
    // Checked by the `builtin_table_reads` test; an unreadable table would only mean no costs.
    serde_json::from_str(include_str!("../data/pricing.json")).unwrap_or_else(|_| Table {
        aliases: FastMap::default(),
        free: Vec::new(),
        providers: FastMap::default(),
    })
});

/// The cost of `usage` from `provider` running `model`: `own` prices (a registry entry's)
/// first, then the built-in table. `None` when the model's price is not known.
pub fn cost(provider: &str, model: &str, usage: &Usage, own: Option<&ModelPrices>) -> Option<f64> {
    price(provider, model, own).map(|p| p.cost(usage))
}

/// The price of `model` at `provider`, as [`cost`] finds it.
pub fn price(provider: &str, model: &str, own: Option<&ModelPrices>) -> Option<Price> {
    if let Some(price) = own.and_then(|prices| lookup(prices, model)) {
        return Some(price);
    }
    let table = &*TABLE;
    if table.free.iter().any(|p| p == provider) {
        return Some(Price { input: 0.0, output: 0.0, cached_input: None, cache_write: None });
    }
    match table.aliases.get(provider) {
        Some(sellers) => sellers.iter().find_map(|seller| lookup(table.providers.get(seller)?, model)),
        None => lookup(table.providers.get(provider)?, model),
    }
}

/// `model` in `prices`: exactly, or once a Bedrock region prefix, a date suffix or a
/// version suffix is taken off.
fn lookup<S: std::hash::BuildHasher>(prices: &HashMap<String, Price, S>, model: &str) -> Option<Price> {
    if let Some(price) = prices.get(model) {
        return Some(*price);
    }
    let unregioned = ["us.", "eu.", "apac.", "global.", "us-gov."]
        .iter()
        .find_map(|prefix| model.strip_prefix(prefix))
        .unwrap_or(model);
    let base = without_version(without_date(without_version(unregioned)));
    prices.get(base).or_else(|| prices.get(unregioned)).copied()
}

/// `name` without a trailing `-YYYY-MM-DD` or `-YYYYMMDD` (OpenAI, Anthropic snapshots).
fn without_date(name: &str) -> &str {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if let Some((head, tail)) = name.rsplit_once('-')
        && tail.len() == 8
        && digits(tail)
    {
        return head;
    }
    // -YYYY-MM-DD: three dash-separated numeric parts of 4, 2 and 2 digits.
    let parts: Vec<&str> = name.rsplitn(4, '-').collect();
    if let [day, month, year, head] = parts[..]
        && day.len() == 2
        && month.len() == 2
        && year.len() == 4
        && [day, month, year].into_iter().all(digits)
    {
        return head;
    }
    name
}

/// `name` without a trailing Bedrock version (`-v1:0`, `-v2`), Vertex one (`@20241022`)
/// or Gemini one (`-001`).
fn without_version(name: &str) -> &str {
    if let Some((head, _)) = name.rsplit_once('@') {
        return head;
    }
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b == b':');
    match (name.rsplit_once("-v"), name.rsplit_once('-')) {
        (Some((head, tail)), _) if digits(tail) => head,
        (_, Some((head, tail))) if tail.len() == 3 && digits(tail) => head,
        _ => name,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn usage(input: u64, output: u64, cached: u64) -> Usage {
        Usage { input_tokens: input, output_tokens: output, cached_input_tokens: cached, ..Usage::default() }
    }

    #[test]
    fn builtin_table_reads_and_every_price_is_valid() {
        let table: Table = serde_json::from_str(include_str!("../data/pricing.json")).unwrap();
        assert!(table.providers["openai"].len() > 5);
        for (provider, models) in &table.providers {
            for (model, price) in models {
                assert!(price.is_valid(), "{provider}/{model}");
            }
        }
        for target in table.aliases.values().flatten() {
            assert!(table.providers.contains_key(target), "alias to {target}");
        }
    }

    #[test]
    fn snapshots_versions_and_regions_find_their_model() {
        let p = |provider, model| price(provider, model, None).map(|p| p.input);
        assert_eq!(p("openai", "gpt-4o-2024-08-06"), Some(2.5));
        assert_eq!(p("openai", "gpt-4o-mini-2024-07-18"), Some(0.15));
        assert_eq!(p("azure-openai", "gpt-4o-mini"), Some(0.15));
        assert_eq!(p("anthropic", "claude-sonnet-4-5-20250929"), Some(3.0));
        assert_eq!(p("bedrock", "us.anthropic.claude-3-5-haiku-20241022-v1:0"), Some(0.8));
        assert_eq!(p("vertex-ai", "gemini-2.5-flash"), Some(0.3));
        assert_eq!(p("google", "gemini-2.0-flash-001"), Some(0.1));
        assert_eq!(p("vertex-ai", "claude-3-5-sonnet-v2@20241022"), Some(3.0), "Claude on Vertex at Anthropic's price");
        assert_eq!(p("openai", "gpt-4o-audio-preview"), None, "no prefix guessing");
        assert_eq!(p("openai", "my-fine-tune"), None);
        assert_eq!(p("no-such-provider", "gpt-4o"), None);
        assert_eq!(p("ollama", "anything"), Some(0.0));
    }

    #[test]
    fn cost_charges_cached_and_written_tokens_at_their_prices() {
        // gpt-4o: 2.5 in, 10 out, 1.25 cached, per million.
        let c = cost("openai", "gpt-4o", &usage(1_000_000, 100_000, 400_000), None).unwrap();
        assert!((c - (0.6 * 2.5 + 0.4 * 1.25 + 0.1 * 10.0)).abs() < 1e-9, "{c}");
        let claude = Usage { cache_write_input_tokens: 100_000, ..usage(300_000, 0, 100_000) };
        let c = cost("anthropic", "claude-sonnet-4", &claude, None).unwrap();
        assert!((c - (0.1 * 3.0 + 0.1 * 0.3 + 0.1 * 3.75)).abs() < 1e-9, "{c}");
    }

    #[test]
    fn own_prices_win() {
        let own: ModelPrices =
            [("gpt-4o".to_owned(), Price { input: 1.0, output: 1.0, cached_input: None, cache_write: None })].into();
        assert_eq!(cost("openai", "gpt-4o", &usage(1_000_000, 0, 0), Some(&own)), Some(1.0));
        assert_eq!(cost("openai", "gpt-4o-mini", &usage(1_000_000, 0, 0), Some(&own)), Some(0.15));
    }
}
