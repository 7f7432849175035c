//! Validation against the published JSON Schema (`gatewise schema` prints it).

use std::sync::OnceLock;

use jsonschema::error::ValidationErrorKind;
use serde_json::Value;

use crate::error::GatewayError;
use crate::json_path::{self, JsonPath};

/// The config JSON Schema, as published.
pub const CONFIG_SCHEMA: &str = include_str!("config.schema.json");

fn validator() -> Result<&'static jsonschema::Validator, GatewayError> {
    static VALIDATOR: OnceLock<Result<jsonschema::Validator, String>> = OnceLock::new();
    VALIDATOR
        .get_or_init(|| {
            let schema: Value = serde_json::from_str(CONFIG_SCHEMA).map_err(|e| e.to_string())?;
            jsonschema::validator_for(&schema).map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| GatewayError::new(crate::ErrorCode::Internal, format!("config schema: {e}")))
}

/// A schema violation, and the JSON pointer of the field to drop so the rest of the
/// config can still be checked.
#[derive(Debug)]
pub struct SchemaError {
    /// The error, at its JSON path.
    pub error: GatewayError,
    /// Pointer to the offending field (`/targets/1/weight`).
    pub pointer: String,
}

/// Every schema violation in `config` (already snake_cased), each at its JSON path.
pub fn validate(config: &Value) -> Result<(), Vec<SchemaError>> {
    let validator = validator().map_err(|error| vec![SchemaError { error, pointer: String::new() }])?;
    let mut errors = Vec::new();
    for err in validator.iter_errors(config) {
        let pointer = err.instance_path().as_str().to_owned();
        let at = json_path::from_pointer(&pointer);
        let mut push = |at: JsonPath, pointer: String, message: String| {
            errors.push(SchemaError { error: GatewayError::config(at.as_str(), message), pointer });
        };
        match err.kind() {
            // Report each unknown key at its own path: `retries`, not the parent object.
            ValidationErrorKind::AdditionalProperties { unexpected } => {
                for key in unexpected {
                    push(at.key(key), format!("{pointer}/{}", escape(key)), format!("unknown field `{key}`"));
                }
            }
            ValidationErrorKind::Required { property } => {
                let name = property.as_str().unwrap_or_default();
                push(at.key(name), pointer, format!("`{name}` is required"));
            }
            // List every allowed value; the default message names two and "N other candidates".
            ValidationErrorKind::Enum { options } => {
                let allowed: Vec<String> = options.as_array().into_iter().flatten().map(|o| o.to_string()).collect();
                let got = shown(&pointer, err.instance());
                push(at, pointer, format!("{got} is not one of {}", allowed.join(", ")));
            }
            // The path travels in `param`; the message is the detail alone, with the value
            // left out when it is a secret.
            _ => {
                let mut message = err.to_string();
                if super::is_secret_path(&pointer) {
                    message = message.replace(&err.instance().to_string(), &shown(&pointer, err.instance()));
                }
                push(at, pointer, message);
            }
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

/// A value for an error message: itself, or only its kind when it sits under a secret
/// field (an error must never echo a key back, to a caller or into a log).
fn shown(pointer: &str, value: &Value) -> String {
    if !super::is_secret_path(pointer) {
        return value.to_string();
    }
    format!("(a secret: {})", json_path::kind_of(value))
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// Decoded pointer segments, and how many of them lead to the deepest config node on the
/// path (the root, or an element of a `targets` array).
fn node_prefix(pointer: &str) -> (Vec<String>, usize) {
    let segments: Vec<String> = pointer.split('/').skip(1).map(|s| s.replace("~1", "/").replace("~0", "~")).collect();
    let mut depth = 0;
    let mut i = 0;
    while i + 1 < segments.len() {
        if segments[i] == "targets" && segments[i + 1].parse::<usize>().is_ok() {
            depth = i + 2;
            i += 2;
        } else {
            i += 1;
        }
    }
    (segments, depth)
}

/// Remove the node field that holds the error at `pointer` (for `/targets/1/retry/attempts`
/// that is `/targets/1/retry`), so the pruned config deserialises. Items of `targets` are
/// never removed: that would shift the indices every other error reports.
pub fn prune(config: &mut Value, pointer: &str) {
    let (segments, depth) = node_prefix(pointer);
    let Some(field) = segments.get(depth) else { return };
    let mut node = &mut *config;
    for seg in &segments[..depth] {
        let next = match node {
            Value::Object(map) => map.get_mut(seg),
            Value::Array(items) => seg.parse::<usize>().ok().and_then(|i| items.get_mut(i)),
            _ => None,
        };
        match next {
            Some(v) => node = v,
            None => return,
        }
    }
    if let Value::Object(map) = node {
        map.shift_remove(field);
    }
}

/// The JSON path of the field [`prune`] removes for `pointer`.
pub fn pruned_path(pointer: &str) -> JsonPath {
    let (segments, depth) = node_prefix(pointer);
    let keep = segments.len().min(depth + 1);
    let pointer: String = segments[..keep].iter().map(|s| format!("/{}", escape(s))).collect();
    json_path::from_pointer(&pointer)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_keys_and_bad_enums_name_their_paths() {
        let errs = validate(
            &json!({"retries": 1, "targets": [{"strategy": {"mode": "roundrobin"}}], "strategy": {"mode": "fallback"}}),
        )
        .unwrap_err();
        let paths: Vec<_> = errs.iter().map(|e| e.error.param.clone().unwrap()).collect();
        assert!(paths.contains(&"retries".to_owned()), "{paths:?}");
        assert!(paths.contains(&"targets[0].strategy.mode".to_owned()), "{paths:?}");
    }
}

#[cfg(test)]
mod prune_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn prunes_the_node_field_not_the_target() {
        let mut v = json!({"targets": [{"retry": {"attempts": 9}, "provider": "openai"}]});
        prune(&mut v, "/targets/0/retry/attempts");
        assert_eq!(v, json!({"targets": [{"provider": "openai"}]}));
        assert_eq!(pruned_path("/targets/0/retry/attempts").as_str(), "targets[0].retry");
        assert_eq!(pruned_path("/strategy/mode").as_str(), "strategy");
    }
}
