//! Accept camelCase keys everywhere by rewriting them to snake_case before validation.
//!
//! Portkey camel-cases after validating, so its validator rejects `apiKey`; we normalise
//! first, so both spellings validate the same. The contents of user-owned maps
//! (`override_params`, query objects, service-account JSON, hook parameters) are data,
//! not config keys, and are copied verbatim.

use serde_json::{Map, Value};

use crate::error::GatewayError;
use crate::json_path::JsonPath;

/// Keys whose values are user data and must not be re-cased.
/// The guardrail shorthands are data too: their keys are check ids (`default.regexMatch`).
const VERBATIM: &[&str] = &[
    "override_params",
    "query",
    "vertex_service_account_json",
    "parameters",
    "checks",
    "params",
    "metadata",
    "input_guardrails",
    "output_guardrails",
];

/// `apiKey` → `api_key`; snake_case and other keys are returned unchanged.
pub fn to_snake_case(key: &str) -> std::borrow::Cow<'_, str> {
    if !key.bytes().any(|b| b.is_ascii_uppercase()) {
        return key.into();
    }
    let mut out = String::with_capacity(key.len() + 4);
    for (i, ch) in key.chars().enumerate() {
        if ch.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(ch.to_ascii_lowercase());
        } else {
            out.push(ch);
        }
    }
    out.into()
}

/// Rewrite every config key to snake_case. Two spellings of one key in the same object
/// (`apiKey` and `api_key`) are an error at that key.
pub fn normalize_keys(value: Value) -> Result<Value, Vec<GatewayError>> {
    let mut errors = Vec::new();
    let out = normalize(value, &JsonPath::root(), &mut errors);
    if errors.is_empty() { Ok(out) } else { Err(errors) }
}

fn normalize(value: Value, at: &JsonPath, errors: &mut Vec<GatewayError>) -> Value {
    match value {
        Value::Object(map) => {
            let mut out = Map::with_capacity(map.len());
            for (key, v) in map {
                let snake = to_snake_case(&key).into_owned();
                let here = at.key(&snake);
                let v = if VERBATIM.contains(&snake.as_str()) { v } else { normalize(v, &here, errors) };
                if out.insert(snake.clone(), v).is_some() {
                    errors.push(GatewayError::config(
                        here.as_str(),
                        format!("`{snake}` is given twice (in camelCase and snake_case)"),
                    ));
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => {
            Value::Array(items.into_iter().enumerate().map(|(i, v)| normalize(v, &at.index(i), errors)).collect())
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn recases_config_keys_but_not_user_data() {
        let v = normalize_keys(json!({
            "apiKey": "k",
            "overrideParams": {"maxTokens": 5},
            "strategy": {"mode": "conditional", "conditions": [{"query": {"metadata.userPlan": "x"}, "then": "a"}]},
            "targets": [{"customHost": "http://h", "vertexServiceAccountJson": {"clientEmail": "e"}}]
        }))
        .unwrap();
        assert_eq!(v["api_key"], "k");
        assert_eq!(v["override_params"]["maxTokens"], 5);
        assert_eq!(v["strategy"]["conditions"][0]["query"]["metadata.userPlan"], "x");
        assert_eq!(v["targets"][0]["custom_host"], "http://h");
        assert_eq!(v["targets"][0]["vertex_service_account_json"]["clientEmail"], "e");
    }

    #[test]
    fn duplicate_spellings_are_an_error() {
        let e = normalize_keys(json!({"targets": [{"apiKey": "a", "api_key": "b"}]})).unwrap_err();
        assert_eq!(e[0].param.as_deref(), Some("targets[0].api_key"));
    }
}
