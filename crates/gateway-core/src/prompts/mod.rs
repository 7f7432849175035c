//! The prompt library: chat requests kept in the registry by id, their message texts
//! Mustache templates ([`template`]), rendered per call with the caller's variables.
//!
//! A prompt is a chat request body — `model`, hyperparameters, `tools`,
//! `response_format`, `messages` — plus where it runs (`virtual_key`, `provider: "@slug"`
//! or a `config` id) and an optional `version`. Texts are templates wherever a message
//! carries text: a string `content`, and the `text` of content parts. Partials come from
//! the registry's `partials` section. Everything is parsed and checked when the registry
//! loads; a render can fail only on what the caller sent (a variable it did not set).

pub mod template;

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::error::GatewayError;
use crate::json_path::JsonPath;
pub use template::{ParseError, RenderError, Template};

/// The registry's `partials`: name → template.
pub type Partials = HashMap<String, Template>;

/// Fields of a prompt entry that say where it runs, not what is sent.
const ROUTE_FIELDS: &[&str] = &["virtual_key", "provider", "config", "version"];

/// Which prompt, and which version of it, a request was rendered from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptRef {
    /// The prompt's id.
    pub id: String,
    /// Its version label, if it has one.
    pub version: Option<String>,
}

/// A compiled prompt.
#[derive(Debug, Clone)]
pub struct Prompt {
    /// Its id in the registry.
    pub id: String,
    /// Its version label, when the entry gives one (logged with the id).
    pub version: Option<String>,
    /// Where it runs.
    pub route: PromptRoute,
    /// The body's other fields, sent as they are.
    body: Map<String, Value>,
    messages: Vec<PromptMessage>,
}

/// Where a prompt runs: a registry provider entry, or a config id (at most one of each
/// kind; the caller's own headers are used when it names none).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PromptRoute {
    /// `virtual_key` or `provider: "@slug"`: a registry provider entry.
    pub provider: Option<String>,
    /// A registry config id.
    pub config: Option<String>,
}

#[derive(Debug, Clone)]
struct PromptMessage {
    /// `role`, `name`, … as written.
    fields: Map<String, Value>,
    content: Content,
}

#[derive(Debug, Clone)]
enum Content {
    Text(Template),
    /// Content parts; a part's `text` is a template.
    Parts(Vec<(Map<String, Value>, Option<Template>)>),
    /// No content, or content with no text in it (sent as written).
    Verbatim(Option<Value>),
}

impl Prompt {
    /// Compile the entry `id` at `at`; every error is reported with its path.
    pub fn load(id: &str, entry: &Value, at: &JsonPath, partials: &Partials) -> Result<Self, Vec<GatewayError>> {
        let mut errors = Vec::new();
        let Value::Object(entry) = entry else {
            return Err(vec![GatewayError::config(at.as_str(), "a prompt must be an object")]);
        };
        let text_field = |name: &str, errors: &mut Vec<GatewayError>| match entry.get(name) {
            None => None,
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(_) => {
                errors
                    .push(GatewayError::config(at.key(name).as_str(), format!("`{name}` must be a non-empty string")));
                None
            }
        };
        let virtual_key = text_field("virtual_key", &mut errors);
        let provider = text_field("provider", &mut errors).map(|p| p.trim_start_matches('@').to_owned());
        let config = text_field("config", &mut errors);
        let version = entry.get("version").map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        });
        if virtual_key.is_some() && provider.is_some() {
            errors.push(GatewayError::config(
                at.key("provider").as_str(),
                "name a provider entry once: `virtual_key` or `provider`",
            ));
        }
        let mut messages = Vec::new();
        match entry.get("messages") {
            Some(Value::Array(list)) if !list.is_empty() => {
                for (i, message) in list.iter().enumerate() {
                    match PromptMessage::load(message, &at.key("messages").index(i), partials) {
                        Ok(m) => messages.push(m),
                        Err(e) => errors.extend(e),
                    }
                }
            }
            _ => errors
                .push(GatewayError::config(at.key("messages").as_str(), "a prompt needs `messages`: a non-empty list")),
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let body = entry
            .iter()
            .filter(|(k, _)| k.as_str() != "messages" && !ROUTE_FIELDS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Ok(Self {
            id: id.to_owned(),
            version,
            route: PromptRoute { provider: virtual_key.or(provider), config },
            body,
            messages,
        })
    }

    /// This prompt, as route info and the log name it.
    pub fn reference(&self) -> PromptRef {
        PromptRef { id: self.id.clone(), version: self.version.clone() }
    }

    /// The chat request body this prompt renders to with `variables`; `overrides` (the
    /// caller's `max_tokens`, `stream`, …) win over the prompt's own fields. A variable
    /// the prompt uses and the caller did not set is a 400 naming it.
    pub fn render(
        &self,
        variables: &Value,
        overrides: &Map<String, Value>,
        partials: &Partials,
    ) -> Result<Map<String, Value>, GatewayError> {
        if !variables.is_object() {
            return Err(GatewayError::request("variables", "`variables` must be an object"));
        }
        let rendered = |t: &Template| t.render(variables, partials).map_err(|e| render_error(&self.id, e));
        let mut messages = Vec::with_capacity(self.messages.len());
        for message in &self.messages {
            let mut out = message.fields.clone();
            match &message.content {
                Content::Text(t) => {
                    out.insert("content".into(), Value::String(rendered(t)?));
                }
                Content::Parts(parts) => {
                    let mut list = Vec::with_capacity(parts.len());
                    for (part, text) in parts {
                        let mut part = part.clone();
                        if let Some(t) = text {
                            part.insert("text".into(), Value::String(rendered(t)?));
                        }
                        list.push(Value::Object(part));
                    }
                    out.insert("content".into(), Value::Array(list));
                }
                Content::Verbatim(Some(v)) => {
                    out.insert("content".into(), v.clone());
                }
                Content::Verbatim(None) => {}
            }
            messages.push(Value::Object(out));
        }
        let mut body = self.body.clone();
        body.insert("messages".into(), Value::Array(messages));
        for (k, v) in overrides {
            body.insert(k.clone(), v.clone());
        }
        Ok(body)
    }
}

fn render_error(id: &str, e: RenderError) -> GatewayError {
    match &e {
        RenderError::MissingVariable(name) => GatewayError::request(
            JsonPath::root().key("variables").key(name).as_str(),
            format!("the prompt `{id}` needs the variable `{name}`"),
        ),
        RenderError::UnknownPartial(_) | RenderError::TooDeep | RenderError::TooLarge => {
            GatewayError::request("variables", format!("the prompt `{id}` does not render: {e}"))
        }
    }
}

impl PromptMessage {
    fn load(message: &Value, at: &JsonPath, partials: &Partials) -> Result<Self, Vec<GatewayError>> {
        let Value::Object(message) = message else {
            return Err(vec![GatewayError::config(at.as_str(), "a message must be an object")]);
        };
        let mut errors = Vec::new();
        let mut compile = |text: &str, at: JsonPath| match Template::parse(text) {
            Ok(t) => {
                for name in t.partials() {
                    if !partials.contains_key(name) {
                        errors.push(GatewayError::config(
                            at.as_str(),
                            format!("the partial `{name}` is not in `partials`"),
                        ));
                    }
                }
                Some(t)
            }
            Err(e) => {
                errors.push(GatewayError::config(at.as_str(), format!("not a template: {e}")));
                None
            }
        };
        let content = match message.get("content") {
            Some(Value::String(text)) => compile(text, at.key("content")).map(Content::Text),
            Some(Value::Array(parts)) => {
                let mut compiled = Vec::with_capacity(parts.len());
                for (i, part) in parts.iter().enumerate() {
                    let Value::Object(part) = part else {
                        compiled.push((Map::new(), None));
                        continue;
                    };
                    let text = match part.get("text") {
                        Some(Value::String(text)) => compile(text, at.key("content").index(i).key("text")),
                        _ => None,
                    };
                    compiled.push((part.clone(), text));
                }
                Some(Content::Parts(compiled))
            }
            other => Some(Content::Verbatim(other.cloned())),
        };
        let fields =
            message.iter().filter(|(k, _)| k.as_str() != "content").map(|(k, v)| (k.clone(), v.clone())).collect();
        match content {
            Some(content) if errors.is_empty() => Ok(Self { fields, content }),
            _ => Err(errors),
        }
    }
}

/// Compile the registry's `partials` section: name → template. A partial may include
/// another; one that names a partial that does not exist is an error here.
pub fn load_partials(section: &Map<String, Value>, at: &JsonPath) -> Result<Partials, Vec<GatewayError>> {
    let mut partials = Partials::new();
    let mut errors = Vec::new();
    for (name, text) in section {
        let at = at.key(name);
        match text {
            Value::String(text) => match Template::parse(text) {
                Ok(t) => {
                    partials.insert(name.clone(), t);
                }
                Err(e) => errors.push(GatewayError::config(at.as_str(), format!("not a template: {e}"))),
            },
            _ => errors.push(GatewayError::config(at.as_str(), "a partial is a template string")),
        }
    }
    for (name, partial) in &partials {
        for included in partial.partials() {
            if !partials.contains_key(included) {
                errors.push(GatewayError::config(
                    at.key(name).as_str(),
                    format!("the partial `{included}` is not in `partials`"),
                ));
            }
        }
    }
    if errors.is_empty() { Ok(partials) } else { Err(errors) }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    fn library() -> (Prompt, Partials) {
        let partials = load_partials(json!({"sig": "Be brief."}).as_object().unwrap(), &JsonPath::root()).unwrap();
        let entry = json!({"virtual_key": "openai-prod", "version": 3, "model": "gpt-4o-mini", "max_tokens": 256,
            "messages": [{"role": "system", "content": "You help {{product}} users. {{>sig}}"},
                         {"role": "user", "content": [{"type": "text", "text": "{{question}}"},
                                                      {"type": "image_url", "image_url": {"url": "https://x/{{no}}.png"}}]}]});
        (
            Prompt::load("support-reply", &entry, &JsonPath::root().key("prompts").key("support-reply"), &partials)
                .unwrap(),
            partials,
        )
    }

    #[test]
    fn a_prompt_renders_to_the_chat_body_and_overrides_win() {
        let (prompt, partials) = library();
        assert_eq!(prompt.route, PromptRoute { provider: Some("openai-prod".into()), config: None });
        assert_eq!(prompt.version.as_deref(), Some("3"));
        let overrides = json!({"max_tokens": 64, "stream": true});
        let body = prompt
            .render(
                &json!({"product": "Gatewise", "question": "How? {{product}}"}),
                overrides.as_object().unwrap(),
                &partials,
            )
            .unwrap();
        assert_eq!(
            Value::Object(body),
            json!({"model": "gpt-4o-mini", "max_tokens": 64, "stream": true,
                   "messages": [{"role": "system", "content": "You help Gatewise users. Be brief."},
                                {"role": "user", "content": [{"type": "text", "text": "How? {{product}}"},
                                                             {"type": "image_url", "image_url": {"url": "https://x/{{no}}.png"}}]}]}),
            "a value is never read as a template; only text parts are templates"
        );
    }

    #[test]
    fn a_missing_variable_is_a_400_naming_it() {
        let (prompt, partials) = library();
        let e = prompt.render(&json!({"product": "G"}), &Map::new(), &partials).unwrap_err();
        assert_eq!((e.status, e.param.as_deref()), (400, Some("variables.question")));
        assert!(e.message.contains("support-reply") && e.message.contains("question"), "{}", e.message);
        let e = prompt.render(&json!(["x"]), &Map::new(), &partials).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("variables"));
    }

    #[test]
    fn bad_entries_are_reported_with_their_paths() {
        let partials = load_partials(&Map::new(), &JsonPath::root()).unwrap();
        let entry = json!({"virtual_key": "a", "provider": "@b",
                           "messages": [{"role": "user", "content": "{{#x}}"}, {"role": "user", "content": "{{>nope}}"}]});
        let errors = Prompt::load("p", &entry, &JsonPath::root().key("prompts").key("p"), &partials).unwrap_err();
        let paths: Vec<_> = errors.iter().map(|e| e.param.clone().unwrap_or_default()).collect();
        assert_eq!(paths, ["prompts.p.provider", "prompts.p.messages[0].content", "prompts.p.messages[1].content"]);
        assert!(Prompt::load("p", &json!({"messages": []}), &JsonPath::root(), &partials).is_err());
        let bad = load_partials(json!({"a": "{{>b}}", "c": 1}).as_object().unwrap(), &JsonPath::root().key("partials"));
        assert_eq!(bad.unwrap_err().len(), 2);
    }
}
