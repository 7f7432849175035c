//! The built-in checks, by Portkey's ids (`plugins/default`), compiled once from their
//! parameters (a bad regex or schema is a config error, not a check that errors at every
//! request) and run on a [`Subject`].

use serde_json::{Map, Value};

use super::params::Params;
use super::pii::{self, PiiKind};
use super::text;
use super::webhook::Webhook;
use super::{Phase, Subject};
use crate::json_path::JsonPath;
use crate::request::Endpoint;

/// Every check id, for error messages and docs.
pub const CHECK_IDS: &[&str] = &[
    "default.regexMatch",
    "default.sentenceCount",
    "default.wordCount",
    "default.characterCount",
    "default.jsonSchema",
    "default.jsonKeys",
    "default.contains",
    "default.validUrls",
    "default.containsCode",
    "default.alluppercase",
    "default.alllowercase",
    "default.endsWith",
    "default.modelWhitelist",
    "default.modelRules",
    "default.requiredMetadataKeys",
    "default.allowedRequestTypes",
    "default.notNull",
    "default.webhook",
    "default.pii",
    "portkey.pii",
];

/// A compiled check.
#[derive(Debug)]
pub struct Check(Kind);

#[derive(Debug)]
enum Kind {
    /// `default.regexMatch`: the text matches `rule`.
    RegexMatch { rule: regex::Regex, not: bool },
    /// `default.sentenceCount`.
    SentenceCount(Range),
    /// `default.wordCount`.
    WordCount(Range),
    /// `default.characterCount`.
    CharacterCount(Range),
    /// `default.jsonSchema`: some JSON in the text is valid against `schema`.
    JsonSchema { schema: Box<jsonschema::Validator>, not: bool },
    /// `default.jsonKeys`: some JSON object in the text has `keys` (any, all or none).
    JsonKeys { keys: Vec<String>, operator: Operator },
    /// `default.contains`: the text contains `words` (any, all or none).
    Contains { words: Vec<String>, operator: Operator },
    /// `default.validUrls`: every URL in the text is well formed.
    ValidUrls { not: bool },
    /// `default.containsCode`: a fenced block of the language.
    ContainsCode { format: String, not: bool },
    /// `default.alluppercase`.
    AllUppercase { not: bool },
    /// `default.alllowercase`.
    AllLowercase { not: bool },
    /// `default.endsWith`.
    EndsWith { suffix: String, not: bool },
    /// `default.modelWhitelist`: the request's model is one of `models`.
    ModelAllowList { models: Vec<String>, not: bool },
    /// `default.modelRules`: the models allowed by the request's metadata.
    ModelRules { defaults: Vec<String>, by_metadata: Vec<(String, String, Vec<String>)>, not: bool },
    /// `default.requiredMetadataKeys`.
    RequiredMetadataKeys { keys: Vec<String>, operator: Operator },
    /// `default.allowedRequestTypes`: the endpoint is allowed and not blocked.
    AllowedRequestTypes { allowed: Option<Vec<String>>, blocked: Vec<String> },
    /// `default.notNull`: the answer has text.
    NotNull { not: bool },
    /// `default.webhook`: the verdict of the user's service (run by the engine).
    Webhook(Webhook),
    /// `default.pii`: no personal data or secrets, or each redacted.
    Pii { kinds: Vec<PiiKind>, redact: bool },
}

/// A count range; either end may be open.
#[derive(Debug, Clone, Copy)]
pub struct Range {
    pub(super) min: u64,
    pub(super) max: u64,
    pub(super) not: bool,
}

/// How a list of words or keys must be present.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    /// At least one.
    Any,
    /// Every one.
    All,
    /// None of them.
    None,
}

/// What one check concluded.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckRun {
    /// Whether the text passed.
    pub verdict: bool,
    /// Why the check could not decide (then `verdict` is false, and the check passes
    /// unless `fail_on_error`).
    pub error: Option<String>,
    /// What the check saw (counts, matches, explanation).
    pub data: Value,
    /// A change the check makes to the request (before) or answer (after).
    pub rewrite: Option<Rewrite>,
}

/// A change a check makes.
#[derive(Debug, Clone, PartialEq)]
pub enum Rewrite {
    /// Replace personal data of these kinds by placeholders.
    Redact(Vec<PiiKind>),
    /// Take the texts of this JSON (a webhook's `transformedData`).
    Texts(Value),
}

impl CheckRun {
    fn verdict(verdict: bool, data: Value) -> Self {
        Self { verdict, error: None, data, rewrite: None }
    }

    /// A check that could not decide.
    pub fn error(message: impl Into<String>) -> Self {
        Self { verdict: false, error: Some(message.into()), data: Value::Null, rewrite: None }
    }
}

impl Check {
    /// Compile check `id` with `parameters`; errors name the parameter.
    /// `params_at` is where the parameters sit, `id_at` where the id does.
    pub fn compile(
        id: &str,
        parameters: &Map<String, Value>,
        params_at: &JsonPath,
        id_at: &JsonPath,
    ) -> Result<Self, (JsonPath, String)> {
        let p = Params { map: parameters, at: params_at };
        let not = p.bool("not")?;
        Ok(Self(match id {
            "default.regexMatch" => {
                let rule = p.required_str("rule")?;
                let rule = crate::query::compile_regex(&ascii_classes(rule)).map_err(|e| (p.path("rule"), e))?;
                Kind::RegexMatch { rule, not }
            }
            "default.sentenceCount" => Kind::SentenceCount(p.range("minSentences", "maxSentences", not)?),
            "default.wordCount" => Kind::WordCount(p.range("minWords", "maxWords", not)?),
            "default.characterCount" => Kind::CharacterCount(p.range("minCharacters", "maxCharacters", not)?),
            "default.jsonSchema" => {
                let schema = p
                    .map
                    .get("schema")
                    .filter(|s| s.is_object())
                    .ok_or_else(|| (p.path("schema"), "`schema` must be a JSON Schema object".to_owned()))?;
                // No retriever is configured, so `$ref`s outside the schema fail to compile
                // rather than reach the network; patterns use the linear-time regex engine.
                let validator = jsonschema::options()
                    .with_pattern_options(
                        jsonschema::PatternOptions::regex().size_limit(crate::query::REGEX_SIZE_LIMIT),
                    )
                    .build(schema)
                    .map_err(|e| (p.path("schema"), format!("not a usable JSON Schema: {e}")))?;
                Kind::JsonSchema { schema: Box::new(validator), not }
            }
            "default.jsonKeys" => Kind::JsonKeys { keys: p.strings("keys", true)?, operator: p.operator()? },
            "default.contains" => Kind::Contains { words: p.strings("words", true)?, operator: p.operator()? },
            "default.validUrls" => Kind::ValidUrls { not },
            "default.containsCode" => Kind::ContainsCode { format: p.required_str("format")?.to_owned(), not },
            "default.alluppercase" => Kind::AllUppercase { not },
            "default.alllowercase" => Kind::AllLowercase { not },
            "default.endsWith" => Kind::EndsWith { suffix: p.required_str("suffix")?.to_owned(), not },
            "default.modelWhitelist" => Kind::ModelAllowList { models: p.strings("models", true)?, not },
            "default.modelRules" => model_rules(&p, not)?,
            "default.requiredMetadataKeys" => Kind::RequiredMetadataKeys {
                keys: p.strings("metadataKeys", true)?,
                operator: p.operator_or(Operator::All)?,
            },
            "default.allowedRequestTypes" => {
                let allowed = p.list_or_csv("allowedTypes")?;
                let blocked = p.list_or_csv("blockedTypes")?.unwrap_or_default();
                if let Some(both) = allowed.iter().flatten().find(|t| blocked.contains(t)) {
                    return Err((p.path("blockedTypes"), format!("`{both}` is both allowed and blocked")));
                }
                Kind::AllowedRequestTypes { allowed, blocked }
            }
            "default.notNull" => Kind::NotNull { not },
            "default.webhook" => Kind::Webhook(super::webhook::settings(&p)?),
            "default.pii" | "portkey.pii" => {
                let kinds = match p.map.get("categories") {
                    None => PiiKind::ALL.to_vec(),
                    Some(_) => {
                        let names = p.strings("categories", true)?;
                        let mut kinds = Vec::new();
                        for name in &names {
                            let kind = PiiKind::from_name(name).ok_or_else(|| {
                                let known: Vec<&str> = PiiKind::ALL.iter().map(|k| k.name()).collect();
                                (
                                    p.path("categories"),
                                    format!("unknown category `{name}` (known: {})", known.join(", ")),
                                )
                            })?;
                            kinds.push(kind);
                        }
                        kinds
                    }
                };
                Kind::Pii { kinds, redact: p.bool("redact")? }
            }
            other => {
                return Err((id_at.clone(), format!("unknown check `{other}` (known: {})", CHECK_IDS.join(", "))));
            }
        }))
    }

    /// Whether the check may run in `phase` (the rest are skipped there).
    pub fn runs_in(&self, phase: Phase) -> bool {
        match &self.0 {
            Kind::ModelAllowList { .. }
            | Kind::ModelRules { .. }
            | Kind::RequiredMetadataKeys { .. }
            | Kind::AllowedRequestTypes { .. } => phase == Phase::Before,
            Kind::NotNull { .. } => phase == Phase::After,
            _ => true,
        }
    }

    /// The webhook to call, for a webhook check.
    pub fn webhook(&self) -> Option<&Webhook> {
        match &self.0 {
            Kind::Webhook(webhook) => Some(webhook),
            _ => None,
        }
    }

    /// Run a check that needs no I/O (every one but a webhook check, which the engine
    /// runs through its transport and reads with [`super::webhook::verdict`]).
    pub fn run(&self, subject: &Subject<'_>) -> CheckRun {
        let text = subject.text;
        match &self.0 {
            Kind::RegexMatch { rule, not } => {
                if text.is_empty() {
                    return CheckRun::error("there is no text to match");
                }
                let found = rule.find(text).map(|m| m.as_str().to_owned());
                let matched = found.is_some();
                CheckRun::verdict(matched != *not, serde_json::json!({"regexPattern": rule.as_str(), "match": found}))
            }
            Kind::SentenceCount(range) => {
                let count = text.split(['.', '!', '?']).filter(|s| !s.trim().is_empty()).count() as u64;
                range.judge("sentenceCount", count)
            }
            Kind::WordCount(range) => {
                if text.trim().is_empty() {
                    return CheckRun::error("there is no text to count words in");
                }
                range.judge("wordCount", text::count_words(text))
            }
            Kind::CharacterCount(range) => {
                if text.is_empty() {
                    return CheckRun::error("there is no text to count characters in");
                }
                range.judge("characterCount", text.chars().count() as u64)
            }
            Kind::JsonSchema { schema, not } => {
                let candidates = text::json_candidates(text);
                if candidates.is_empty() {
                    return CheckRun::verdict(false, serde_json::json!({"explanation": "no JSON found in the text"}));
                }
                let valid = candidates.iter().find(|c| schema.is_valid(c));
                let data = match valid {
                    Some(json) => serde_json::json!({"matchedJson": json}),
                    None => {
                        let errors: Vec<String> =
                            schema.iter_errors(&candidates[0]).take(5).map(|e| e.to_string()).collect();
                        serde_json::json!({"validationErrors": errors})
                    }
                };
                CheckRun::verdict(valid.is_some() != *not, data)
            }
            Kind::JsonKeys { keys, operator } => {
                let objects: Vec<Map<String, Value>> = text::json_candidates(text)
                    .into_iter()
                    .filter_map(|v| match v {
                        Value::Object(o) => Some(o),
                        _ => None,
                    })
                    .collect();
                if objects.is_empty() {
                    return CheckRun::verdict(
                        false,
                        serde_json::json!({"explanation": "no JSON object found in the text"}),
                    );
                }
                let best = objects.iter().max_by_key(|o| keys.iter().filter(|k| o.contains_key(*k)).count());
                let present: Vec<&String> = keys.iter().filter(|k| best.is_some_and(|o| o.contains_key(*k))).collect();
                let verdict = operator.judge(present.len(), keys.len());
                CheckRun::verdict(verdict, serde_json::json!({"presentKeys": present, "operator": operator.name()}))
            }
            Kind::Contains { words, operator } => {
                let found: Vec<&String> = words.iter().filter(|w| text.contains(w.as_str())).collect();
                let verdict = operator.judge(found.len(), words.len());
                CheckRun::verdict(verdict, serde_json::json!({"foundWords": found, "operator": operator.name()}))
            }
            Kind::ValidUrls { not } => {
                let urls = text::find_urls(text);
                if urls.is_empty() {
                    return CheckRun::verdict(false, serde_json::json!({"explanation": "no URL found in the text"}));
                }
                let invalid: Vec<&str> = urls.iter().copied().filter(|u| !text::is_well_formed_url(u)).collect();
                CheckRun::verdict(invalid.is_empty() != *not, serde_json::json!({"urls": urls, "invalidUrls": invalid}))
            }
            Kind::ContainsCode { format, not } => {
                let blocks = text::code_blocks(text);
                if blocks.is_empty() {
                    return CheckRun::verdict(*not, serde_json::json!({"explanation": "no code block found"}));
                }
                let languages: Vec<&str> = blocks.iter().map(|(tag, _)| text::language(tag)).collect();
                let found = languages.iter().any(|l| l.eq_ignore_ascii_case(format));
                CheckRun::verdict(found != *not, serde_json::json!({"languages": languages}))
            }
            Kind::AllUppercase { not } | Kind::AllLowercase { not } => {
                if text.is_empty() {
                    return CheckRun::error("there is no text to check");
                }
                let upper = matches!(self.0, Kind::AllUppercase { .. });
                let letters = text.chars().filter(char::is_ascii_alphabetic);
                let all = letters.clone().all(|c| if upper { c.is_ascii_uppercase() } else { c.is_ascii_lowercase() });
                CheckRun::verdict(all != *not, Value::Null)
            }
            Kind::EndsWith { suffix, not } => {
                let trimmed = text.trim_end();
                let ends = trimmed.ends_with(suffix.as_str())
                    || trimmed.strip_suffix('.').is_some_and(|t| t.ends_with(suffix.as_str()));
                CheckRun::verdict(ends != *not, serde_json::json!({"suffix": suffix}))
            }
            Kind::ModelAllowList { models, not } => match subject.request.get("model").and_then(Value::as_str) {
                None => CheckRun::error("the request names no model"),
                Some(model) => {
                    let listed = models.iter().any(|m| m == model);
                    CheckRun::verdict(listed != *not, serde_json::json!({"model": model}))
                }
            },
            Kind::ModelRules { defaults, by_metadata, not } => {
                let mut allowed: Vec<&String> = Vec::new();
                for (key, value, models) in by_metadata {
                    let matches = match subject.metadata.get(key) {
                        Some(Value::String(s)) => s == value,
                        Some(Value::Array(items)) => items.iter().any(|i| i.as_str() == Some(value)),
                        _ => false,
                    };
                    if matches {
                        allowed.extend(models);
                    }
                }
                if allowed.is_empty() {
                    allowed.extend(defaults);
                }
                if allowed.is_empty() {
                    return CheckRun::error("no rule allows any model for this request's metadata");
                }
                match subject.request.get("model").and_then(Value::as_str) {
                    None => CheckRun::error("the request names no model"),
                    Some(model) => {
                        let listed = allowed.iter().any(|m| *m == model);
                        CheckRun::verdict(listed != *not, serde_json::json!({"model": model, "allowedModels": allowed}))
                    }
                }
            }
            Kind::RequiredMetadataKeys { keys, operator } => {
                let present: Vec<&String> = keys.iter().filter(|k| subject.metadata.contains_key(*k)).collect();
                let verdict = operator.judge(present.len(), keys.len());
                CheckRun::verdict(verdict, serde_json::json!({"presentKeys": present, "operator": operator.name()}))
            }
            Kind::AllowedRequestTypes { allowed, blocked } => {
                let kind = request_type(subject.endpoint);
                let verdict =
                    !blocked.iter().any(|b| b == kind) && allowed.as_ref().is_none_or(|a| a.iter().any(|t| t == kind));
                CheckRun::verdict(verdict, serde_json::json!({"requestType": kind}))
            }
            Kind::NotNull { not } => CheckRun::verdict(text.trim().is_empty() == *not, Value::Null),
            Kind::Webhook(_) => CheckRun::error("a webhook check is run by the engine"),
            Kind::Pii { kinds, redact } => {
                let found = pii::find(text, kinds);
                let mut names: Vec<&str> = found.iter().map(|f| f.kind.name()).collect();
                names.dedup();
                let data = serde_json::json!({"found": names, "count": found.len()});
                if found.is_empty() {
                    return CheckRun::verdict(true, data);
                }
                if *redact {
                    // Redacted: what leaves no longer holds it, so the check passes.
                    return CheckRun {
                        verdict: true,
                        error: None,
                        data,
                        rewrite: Some(Rewrite::Redact(kinds.clone())),
                    };
                }
                CheckRun::verdict(false, data)
            }
        }
    }
}

impl Range {
    fn judge(self, what: &str, count: u64) -> CheckRun {
        let inside = (self.min..=self.max).contains(&count);
        let max = if self.max == u64::MAX { Value::Null } else { self.max.into() };
        CheckRun::verdict(inside != self.not, serde_json::json!({what: count, "min": self.min, "max": max}))
    }
}

impl Operator {
    fn judge(self, present: usize, total: usize) -> bool {
        match self {
            Self::Any => present > 0,
            Self::All => present == total,
            Self::None => present == 0,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Any => "any",
            Self::All => "all",
            Self::None => "none",
        }
    }
}

/// Portkey's name for the kind of request an endpoint serves (`allowedRequestTypes`).
fn request_type(endpoint: Endpoint) -> &'static str {
    match endpoint {
        Endpoint::ChatCompletions => "chatComplete",
        Endpoint::Completions => "complete",
        Endpoint::Embeddings => "embed",
        Endpoint::Messages => "messages",
        Endpoint::CountTokens => "messagesCountTokens",
        Endpoint::Responses => "createModelResponse",
        Endpoint::ImageGenerations => "imageGenerate",
        Endpoint::ImageEdits => "imageEdit",
        Endpoint::ImageVariations => "imageVariation",
        Endpoint::AudioSpeech => "createSpeech",
        Endpoint::AudioTranscriptions => "createTranscription",
        Endpoint::AudioTranslations => "createTranslation",
        Endpoint::Moderations => "moderate",
        Endpoint::ListModels => "listModels",
        Endpoint::Rerank => "rerank",
        Endpoint::Realtime => "realtime",
        Endpoint::Passthrough => "proxy",
    }
}

/// A pattern with JavaScript's meaning of `\d`, `\w` and `\b` (ASCII; Portkey's checks
/// run JavaScript regexes): Unicode's `\d{16}` alone compiles past the regex size limit,
/// while `[0-9]{16}` is small and is what the rule's author meant.
fn ascii_classes(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut chars = pattern.chars().peekable();
    // Depth of character classes; a `]` right after `[` or `[^` is a literal.
    let mut depth = 0usize;
    let mut class_start = false;
    while let Some(c) = chars.next() {
        let starting = std::mem::take(&mut class_start);
        match c {
            '\\' => {
                let Some(next) = chars.next() else {
                    out.push(c);
                    break;
                };
                let replacement = match (next, depth > 0) {
                    ('d', false) => Some("[0-9]"),
                    ('D', false) => Some("[^0-9]"),
                    ('w', false) => Some("[0-9A-Za-z_]"),
                    ('W', false) => Some("[^0-9A-Za-z_]"),
                    ('b', false) => Some("(?-u:\\b)"),
                    ('B', false) => Some("(?-u:\\B)"),
                    ('d', true) => Some("0-9"),
                    ('w', true) => Some("0-9A-Za-z_"),
                    _ => None,
                };
                match replacement {
                    Some(r) => out.push_str(r),
                    None => {
                        out.push(c);
                        out.push(next);
                    }
                }
            }
            '[' => {
                depth += 1;
                out.push(c);
                if chars.peek() == Some(&'^') {
                    out.push('^');
                    chars.next();
                }
                class_start = true;
            }
            ']' if depth > 0 && !starting => {
                depth -= 1;
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

fn model_rules(p: &Params<'_>, not: bool) -> Result<Kind, (JsonPath, String)> {
    let rules = p.map.get("rules").and_then(Value::as_object).ok_or_else(|| {
        (
            p.path("rules"),
            "`rules` must be an object: {\"defaults\": [models], \"metadata\": {key: {value: [models]}}}".to_owned(),
        )
    })?;
    let at = p.path("rules");
    let models = |value: &Value, at: JsonPath| -> Result<Vec<String>, (JsonPath, String)> {
        match value {
            Value::Array(items) if items.iter().all(Value::is_string) => {
                Ok(items.iter().filter_map(Value::as_str).map(str::to_owned).collect())
            }
            _ => Err((at, "a list of model names".to_owned())),
        }
    };
    let defaults = match rules.get("defaults") {
        Some(value) => models(value, at.key("defaults"))?,
        None => Vec::new(),
    };
    let mut by_metadata = Vec::new();
    if let Some(metadata) = rules.get("metadata") {
        let Some(metadata) = metadata.as_object() else {
            return Err((at.key("metadata"), "an object: {key: {value: [models]}}".to_owned()));
        };
        for (key, values) in metadata {
            let Some(values) = values.as_object() else {
                return Err((at.key("metadata").key(key), "an object: {value: [models]}".to_owned()));
            };
            for (value, list) in values {
                by_metadata.push((key.clone(), value.clone(), models(list, at.key("metadata").key(key).key(value))?));
            }
        }
    }
    Ok(Kind::ModelRules { defaults, by_metadata, not })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    fn check(id: &str, parameters: Value) -> Check {
        let Value::Object(parameters) = parameters else { panic!() };
        let at = JsonPath::root();
        Check::compile(id, &parameters, &at.key("parameters"), &at.key("id")).unwrap()
    }

    fn run_on(check: &Check, phase: Phase, text: &str, request: &Value, metadata: &Value) -> CheckRun {
        let empty = Map::new();
        let subject = Subject {
            phase,
            endpoint: Endpoint::ChatCompletions,
            request,
            response: None,
            text,
            metadata: metadata.as_object().unwrap_or(&empty),
            provider: "openai",
        };
        check.run(&subject)
    }

    /// The verdict of check `id` with `parameters` on `text` (an error reads as `None`).
    fn verdict(id: &str, parameters: Value, text: &str) -> Option<bool> {
        let run = run_on(&check(id, parameters), Phase::After, text, &json!({}), &json!({}));
        run.error.is_none().then_some(run.verdict)
    }

    #[test]
    fn text_checks_pass_and_fail() {
        let regex = json!({"rule": "sk-[A-Za-z0-9]+"});
        assert_eq!(verdict("default.regexMatch", regex.clone(), "my key is sk-abc"), Some(true));
        assert_eq!(verdict("default.regexMatch", regex, "no key"), Some(false));
        assert_eq!(verdict("default.regexMatch", json!({"rule": "sk-", "not": true}), "sk-1"), Some(false));
        assert_eq!(verdict("default.regexMatch", json!({"rule": "x"}), ""), None);

        let sentences = json!({"minSentences": 1, "maxSentences": 2});
        assert_eq!(verdict("default.sentenceCount", sentences.clone(), "One. Two!"), Some(true));
        assert_eq!(verdict("default.sentenceCount", sentences, "One. Two! Three?"), Some(false));
        let words = json!({"minWords": 2, "maxWords": 3});
        assert_eq!(verdict("default.wordCount", words.clone(), "two  words"), Some(true));
        assert_eq!(verdict("default.wordCount", words.clone(), "one"), Some(false));
        assert_eq!(verdict("default.wordCount", words, "  "), None);
        assert_eq!(verdict("default.wordCount", json!({"maxWords": 1, "not": true}), "a b"), Some(true));
        let chars = json!({"minCharacters": 1, "maxCharacters": 3});
        assert_eq!(verdict("default.characterCount", chars.clone(), "héé"), Some(true));
        assert_eq!(verdict("default.characterCount", chars, "four"), Some(false));

        let any = json!({"words": ["apple", "pear"], "operator": "any"});
        assert_eq!(verdict("default.contains", any.clone(), "an apple"), Some(true));
        assert_eq!(verdict("default.contains", any, "an Apple"), Some(false));
        assert_eq!(verdict("default.contains", json!({"words": ["a", "b"], "operator": "all"}), "a"), Some(false));
        assert_eq!(verdict("default.contains", json!({"words": ["x"], "operator": "none"}), "abc"), Some(true));

        assert_eq!(verdict("default.alluppercase", json!({}), "HELLO, 123!"), Some(true));
        assert_eq!(verdict("default.alluppercase", json!({}), "Hello"), Some(false));
        assert_eq!(verdict("default.alllowercase", json!({}), "hello é"), Some(true));
        assert_eq!(verdict("default.alllowercase", json!({"not": true}), "hello"), Some(false));
        assert_eq!(verdict("default.endsWith", json!({"suffix": "Thanks"}), "Bye. Thanks.\n"), Some(true));
        assert_eq!(verdict("default.endsWith", json!({"suffix": "Thanks"}), "Thanks! Bye"), Some(false));
        assert_eq!(verdict("default.notNull", json!({}), "x"), Some(true));
        assert_eq!(verdict("default.notNull", json!({}), " "), Some(false));
    }

    #[test]
    fn json_code_and_url_checks_pass_and_fail() {
        let schema =
            json!({"schema": {"type": "object", "required": ["answer"], "properties": {"answer": {"type": "string"}}}});
        assert_eq!(
            verdict("default.jsonSchema", schema.clone(), "Here: ```json\n{\"answer\": \"yes\"}\n```"),
            Some(true)
        );
        assert_eq!(verdict("default.jsonSchema", schema.clone(), "{\"answer\": 4}"), Some(false));
        assert_eq!(verdict("default.jsonSchema", schema, "no json at all"), Some(false));
        let keys = json!({"keys": ["a", "b"], "operator": "all"});
        assert_eq!(verdict("default.jsonKeys", keys.clone(), "x {\"a\": 1, \"b\": 2} y"), Some(true));
        assert_eq!(verdict("default.jsonKeys", keys, "{\"a\": 1}"), Some(false));
        assert_eq!(verdict("default.jsonKeys", json!({"keys": ["z"], "operator": "none"}), "{\"a\": 1}"), Some(true));

        let python = json!({"format": "Python"});
        assert_eq!(verdict("default.containsCode", python.clone(), "```py\nprint(1)\n```"), Some(true));
        assert_eq!(verdict("default.containsCode", python.clone(), "```sql\nSELECT 1\n```"), Some(false));
        assert_eq!(verdict("default.containsCode", python, "no code"), Some(false));
        assert_eq!(verdict("default.containsCode", json!({"format": "SQL", "not": true}), "prose"), Some(true));

        assert_eq!(verdict("default.validUrls", json!({}), "see https://docs.example.com/a?b=1."), Some(true));
        assert_eq!(
            verdict("default.validUrls", json!({}), "see https://exa mple and http://bad_host.c0m/x"),
            Some(false)
        );
        assert_eq!(verdict("default.validUrls", json!({}), "no links"), Some(false));
        assert_eq!(verdict("default.validUrls", json!({"not": true}), "http://-bad-.com"), Some(true));
    }

    #[test]
    fn request_checks_read_the_model_metadata_and_endpoint() {
        let run = |id: &str, parameters: Value, request: Value, metadata: Value| {
            let run = run_on(&check(id, parameters), Phase::Before, "hi", &request, &metadata);
            run.error.is_none().then_some(run.verdict)
        };
        let allow = json!({"models": ["gpt-4o-mini"]});
        assert_eq!(
            run("default.modelWhitelist", allow.clone(), json!({"model": "gpt-4o-mini"}), json!({})),
            Some(true)
        );
        assert_eq!(run("default.modelWhitelist", allow.clone(), json!({"model": "gpt-4o"}), json!({})), Some(false));
        assert_eq!(run("default.modelWhitelist", allow, json!({}), json!({})), None);
        let rules = json!({"rules": {"defaults": ["small"], "metadata": {"plan": {"pro": ["big", "small"]}}}});
        assert_eq!(
            run("default.modelRules", rules.clone(), json!({"model": "big"}), json!({"plan": "pro"})),
            Some(true)
        );
        assert_eq!(
            run("default.modelRules", rules.clone(), json!({"model": "big"}), json!({"plan": "free"})),
            Some(false)
        );
        assert_eq!(
            run("default.modelRules", rules, json!({"model": "big"}), json!({"plan": ["x", "pro"]})),
            Some(true)
        );
        let keys = json!({"metadataKeys": ["_user", "team"]});
        assert_eq!(
            run("default.requiredMetadataKeys", keys.clone(), json!({}), json!({"_user": "u", "team": "t"})),
            Some(true)
        );
        assert_eq!(run("default.requiredMetadataKeys", keys, json!({}), json!({"_user": "u"})), Some(false));
        let types = json!({"allowedTypes": "chatComplete, complete"});
        assert_eq!(run("default.allowedRequestTypes", types, json!({}), json!({})), Some(true));
        assert_eq!(
            run("default.allowedRequestTypes", json!({"blockedTypes": ["chatComplete"]}), json!({}), json!({})),
            Some(false)
        );
    }

    #[test]
    fn words_are_counted_as_javascript_splits_them() {
        for text in ["", "one", "  two words ", "a\tb\nc", "x\u{a0}y\u{3000}z", "ça va\u{2003}bien", "\u{85}é"] {
            assert_eq!(text::count_words(text), text.split_whitespace().count() as u64, "{text:?}");
        }
    }

    #[test]
    fn regexes_read_perl_classes_as_javascript_does() {
        assert_eq!(ascii_classes(r"\d{16}"), "[0-9]{16}");
        assert_eq!(ascii_classes(r"[\d\s-]+\bx\\d"), r"[0-9\s-]+(?-u:\b)x\\d");
        assert_eq!(ascii_classes(r"[]\w]\w"), "[]0-9A-Za-z_][0-9A-Za-z_]");
        assert_eq!(
            verdict(
                "default.regexMatch",
                json!({"rule": r"\b\d{4}[ -]?\d{4}[ -]?\d{4}[ -]?\d{4}\b"}),
                "4111 1111 1111 1111"
            ),
            Some(true)
        );
        assert_eq!(verdict("default.regexMatch", json!({"rule": r"\w{32}"}), "٣".repeat(40).as_str()), Some(false));
    }

    #[test]
    fn pii_blocks_or_redacts() {
        let text = "mail me at jane@example.com";
        assert_eq!(verdict("default.pii", json!({}), text), Some(false));
        assert_eq!(verdict("default.pii", json!({"categories": ["phone"]}), text), Some(true));
        let run = run_on(&check("default.pii", json!({"redact": true})), Phase::Before, text, &json!({}), &json!({}));
        assert!(run.verdict);
        assert_eq!(run.rewrite, Some(Rewrite::Redact(PiiKind::ALL.to_vec())));
        assert_eq!(run.data["found"], json!(["email"]));
    }

    #[test]
    fn bad_parameters_are_config_errors_at_their_path() {
        let error = |id: &str, parameters: Value| {
            let Value::Object(parameters) = parameters else { panic!() };
            let at = JsonPath::root().key("checks").index(0);
            let (path, message) = Check::compile(id, &parameters, &at.key("parameters"), &at.key("id")).unwrap_err();
            (path.as_str().to_owned(), message)
        };
        assert_eq!(error("default.nope", json!({})).0, "checks[0].id");
        assert!(error("default.nope", json!({})).1.contains("default.regexMatch"));
        assert_eq!(error("default.regexMatch", json!({"rule": "(a"})).0, "checks[0].parameters.rule");
        assert_eq!(error("default.regexMatch", json!({"rule": "a{100}{100}{100}"})).0, "checks[0].parameters.rule");
        assert_eq!(error("default.wordCount", json!({})).0, "checks[0].parameters.minWords");
        assert_eq!(
            error("default.wordCount", json!({"minWords": 5, "maxWords": 2})).0,
            "checks[0].parameters.minWords"
        );
        assert_eq!(error("default.jsonSchema", json!({"schema": {"type": 5}})).0, "checks[0].parameters.schema");
        // A remote `$ref` is never fetched: the schema does not compile.
        let remote = json!({"schema": {"$ref": "https://example.com/schema.json"}});
        assert_eq!(error("default.jsonSchema", remote).0, "checks[0].parameters.schema");
        assert_eq!(error("default.contains", json!({"words": []})).0, "checks[0].parameters.words");
        assert_eq!(
            error("default.contains", json!({"words": ["a"], "operator": "some"})).0,
            "checks[0].parameters.operator"
        );
        assert_eq!(error("default.webhook", json!({"webhookURL": "ftp://x"})).0, "checks[0].parameters.webhookURL");
        assert_eq!(
            error("default.webhook", json!({"webhookURL": "http://x", "timeout": 60000})).0,
            "checks[0].parameters.timeout"
        );
        assert_eq!(error("default.pii", json!({"categories": ["dna"]})).0, "checks[0].parameters.categories");
        assert_eq!(
            error("default.allowedRequestTypes", json!({"allowedTypes": ["embed"], "blockedTypes": "embed"})).0,
            "checks[0].parameters.blockedTypes"
        );
    }
}
