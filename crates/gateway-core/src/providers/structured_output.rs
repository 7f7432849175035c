//! OpenAI's `response_format` for providers whose own structured output does not cover
//! it: the answer is asked for as a forced call of one tool whose input schema is the
//! requested schema, and the call's arguments come back as the message content.
//!
//! A caller asking for JSON must never silently get free text, so a provider either
//! serves the format (natively or through the answer tool) or refuses it with a 400.
//!
//! The answer tool has a fixed name, and a caller's own tool of that name is refused while
//! a JSON format is asked for, so the answer side needs no state: with a JSON format in
//! the request, a call of [`ANSWER_TOOL`] *is* the answer.

use serde_json::{Value, json};

use super::ResponseContext;
use crate::error::GatewayError;

/// The tool the model is made to call with its answer. The model reads the name, so it
/// says what the tool is for.
pub(crate) const ANSWER_TOOL: &str = "json_answer";

/// The format a caller asked for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum ResponseFormat<'a> {
    /// Free text: no `response_format`, or `{"type": "text"}`.
    Text,
    /// `{"type": "json_object"}`: any JSON object.
    JsonObject,
    /// `{"type": "json_schema", "json_schema": {"name", "description", "schema", "strict"}}`.
    JsonSchema {
        /// The schema the answer must validate against (an object).
        schema: &'a Value,
        /// `json_schema.name`, where the provider takes one.
        name: Option<&'a str>,
        /// `json_schema.description`, shown to the model where the provider takes one.
        description: Option<&'a str>,
    },
}

impl<'a> ResponseFormat<'a> {
    /// Read `response_format` from merged request parameters; a malformed one is a 400
    /// naming the field. With a JSON format, a caller's tool named [`ANSWER_TOOL`] would
    /// be mistaken for the answer: refused too.
    pub(crate) fn of(params: &'a Value) -> Result<Self, GatewayError> {
        let format = Self::read(params)?;
        let tools = params.get("tools").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
        let clash = tools.iter().position(|t| t.pointer("/function/name").and_then(Value::as_str) == Some(ANSWER_TOOL));
        match clash {
            Some(i) if format != Self::Text => Err(GatewayError::request(
                format!("tools[{i}].function.name"),
                format!("`{ANSWER_TOOL}` is the tool JSON answers come through on this provider; rename this tool"),
            )),
            _ => Ok(format),
        }
    }

    fn read(params: &'a Value) -> Result<Self, GatewayError> {
        let Some(format) = params.get("response_format").filter(|v| !v.is_null()) else {
            return Ok(Self::Text);
        };
        match format.get("type").and_then(Value::as_str) {
            Some("text") => Ok(Self::Text),
            Some("json_object") => Ok(Self::JsonObject),
            Some("json_schema") => {
                let spec = format.get("json_schema").unwrap_or(&Value::Null);
                let schema = spec.get("schema").filter(|s| s.is_object()).ok_or_else(|| {
                    GatewayError::request("response_format.json_schema.schema", "json_schema needs a `schema` object")
                })?;
                let text = |key: &str| spec.get(key).and_then(Value::as_str);
                Ok(Self::JsonSchema { schema, name: text("name"), description: text("description") })
            }
            _ => Err(GatewayError::request(
                "response_format.type",
                "response_format.type must be text, json_object or json_schema",
            )),
        }
    }

    /// The answer tool's name, description and input schema, for a JSON format. A tool's
    /// input is always an object, so a schema whose root is another type cannot be served
    /// this way (OpenAI's strict mode refuses such schemas too).
    pub(crate) fn answer_tool(&self) -> Result<Option<AnswerTool>, GatewayError> {
        let (schema, description) = match *self {
            Self::Text => return Ok(None),
            Self::JsonObject => (json!({"type": "object"}), None),
            Self::JsonSchema { schema, description, .. } => {
                let root = schema.get("type");
                if root.is_some_and(|t| t != "object") {
                    return Err(GatewayError::request(
                        "response_format.json_schema.schema.type",
                        "this provider answers in a schema through a tool call, so the schema's root must be an object",
                    ));
                }
                let mut schema = schema.clone();
                if root.is_none() {
                    schema["type"] = "object".into();
                }
                (schema, description)
            }
        };
        let description = description.map_or_else(
            || "Give your complete answer by calling this tool; its input is the answer.".to_owned(),
            |d| format!("Give your complete answer by calling this tool; its input is the answer. {d}"),
        );
        Ok(Some(AnswerTool { name: ANSWER_TOOL, description, schema }))
    }
}

/// The tool a JSON answer is asked for through.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AnswerTool {
    /// [`ANSWER_TOOL`].
    pub(crate) name: &'static str,
    /// What the model is told the tool is for.
    pub(crate) description: String,
    /// The input schema: the requested schema, or any object for `json_object`.
    pub(crate) schema: Value,
}

/// How the caller's tool choice combines with the answer tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AnswerChoice {
    /// No tools of the caller's, or `tool_choice: "none"`: the answer tool is forced.
    ForceAnswer,
    /// The caller's tools with `auto` (or no choice): the model must call a tool — one of
    /// the caller's, or the answer tool to answer — as OpenAI's model either calls a tool
    /// or answers in the format.
    AnyTool,
    /// `required` or a named function: the answer is a tool call of the caller's, so the
    /// answer tool is not offered.
    CallersChoice,
}

/// How a request with a JSON format and the caller's `tools` / `tool_choice` is served.
pub(crate) fn answer_choice(params: &Value) -> AnswerChoice {
    let has_tools = params.get("tools").and_then(Value::as_array).is_some_and(|t| !t.is_empty());
    if !has_tools {
        return AnswerChoice::ForceAnswer;
    }
    match params.get("tool_choice") {
        None | Some(Value::Null) => AnswerChoice::AnyTool,
        Some(Value::String(s)) if s == "auto" => AnswerChoice::AnyTool,
        Some(Value::String(s)) if s == "none" => AnswerChoice::ForceAnswer,
        Some(_) => AnswerChoice::CallersChoice,
    }
}

/// Whether an answer to this request carries its JSON as a call of [`ANSWER_TOOL`]: the
/// request asked for JSON (the tool name is refused otherwise, so no caller tool is
/// mistaken for it).
pub(crate) fn answers_through_tool(cx: &ResponseContext<'_>) -> bool {
    cx.param("response_format")
        .and_then(|f| f.get("type"))
        .and_then(Value::as_str)
        .is_some_and(|t| t == "json_object" || t == "json_schema")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn formats_are_read_and_checked() {
        assert_eq!(ResponseFormat::of(&json!({})).unwrap(), ResponseFormat::Text);
        assert_eq!(ResponseFormat::of(&json!({"response_format": {"type": "text"}})).unwrap(), ResponseFormat::Text);
        assert_eq!(
            ResponseFormat::of(&json!({"response_format": {"type": "json_object"}})).unwrap(),
            ResponseFormat::JsonObject
        );
        let e =
            ResponseFormat::of(&json!({"response_format": {"type": "json_schema", "json_schema": {}}})).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("response_format.json_schema.schema"));
        let e = ResponseFormat::of(&json!({"response_format": {"type": "yaml"}})).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("response_format.type"));
        let tools = json!([{"type": "function", "function": {"name": "f"}},
            {"type": "function", "function": {"name": ANSWER_TOOL}}]);
        let clash = json!({"tools": tools, "response_format": {"type": "json_object"}});
        assert_eq!(ResponseFormat::of(&clash).unwrap_err().param.as_deref(), Some("tools[1].function.name"));
        assert_eq!(ResponseFormat::of(&json!({"tools": tools})).unwrap(), ResponseFormat::Text);
    }

    #[test]
    fn the_answer_tool_takes_the_schema_and_needs_an_object_root() {
        let params = json!({"response_format": {"type": "json_schema", "json_schema": {"name": "p",
            "description": "A person.", "schema": {"properties": {"name": {"type": "string"}}}}}});
        let tool = ResponseFormat::of(&params).unwrap().answer_tool().unwrap().unwrap();
        assert_eq!(tool.schema, json!({"type": "object", "properties": {"name": {"type": "string"}}}));
        assert!(tool.description.ends_with("A person."));
        let list = json!({"response_format": {"type": "json_schema", "json_schema": {"schema": {"type": "array"}}}});
        let e = ResponseFormat::of(&list).unwrap().answer_tool().unwrap_err();
        assert_eq!(e.param.as_deref(), Some("response_format.json_schema.schema.type"));
        assert_eq!(ResponseFormat::Text.answer_tool().unwrap(), None);
    }

    #[test]
    fn the_callers_tool_choice_decides_how_the_answer_tool_is_offered() {
        let tool = json!({"type": "function", "function": {"name": "lookup"}});
        let choice = |extra: Value| {
            let mut params = json!({"tools": [tool]});
            params.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            answer_choice(&params)
        };
        assert_eq!(answer_choice(&json!({})), AnswerChoice::ForceAnswer);
        assert_eq!(choice(json!({})), AnswerChoice::AnyTool);
        assert_eq!(choice(json!({"tool_choice": "auto"})), AnswerChoice::AnyTool);
        assert_eq!(choice(json!({"tool_choice": "none"})), AnswerChoice::ForceAnswer);
        assert_eq!(choice(json!({"tool_choice": "required"})), AnswerChoice::CallersChoice);
        assert_eq!(
            choice(json!({"tool_choice": {"type": "function", "function": {"name": "lookup"}}})),
            AnswerChoice::CallersChoice
        );
    }
}
