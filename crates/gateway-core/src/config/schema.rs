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

/// Every schema violation in `config` (already snake_cased), each at its JSON path.
pub fn validate(config: &Value) -> Result<(), Vec<GatewayError>> {
    let validator = validator().map_err(|e| vec![e])?;
    let mut errors: Vec<GatewayError> = Vec::new();
    for err in validator.iter_errors(config) {
        let at = json_path::from_pointer(err.instance_path().as_str());
        match err.kind() {
            // Report each unknown key at its own path: `retries`, not the parent object.
            ValidationErrorKind::AdditionalProperties { unexpected } => {
                for key in unexpected {
                    errors.push(GatewayError::config(
                        at.key(key).as_str(),
                        format!("unknown field `{key}`"),
                    ));
                }
            }
            ValidationErrorKind::Required { property } => {
                let name = property.as_str().unwrap_or_default();
                errors.push(GatewayError::config(
                    at.key(name).as_str(),
                    format!("`{name}` is required"),
                ));
            }
            _ => errors.push(GatewayError::config(
                at.as_str(),
                describe(&at, &err.to_string()),
            )),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn describe(at: &JsonPath, detail: &str) -> String {
    match at.as_str() {
        "" => detail.to_owned(),
        p => format!("{p}: {detail}"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_keys_and_bad_enums_name_their_paths() {
        let errs = validate(&json!({"retries": 1, "targets": [{"strategy": {"mode": "roundrobin"}}], "strategy": {"mode": "fallback"}})).unwrap_err();
        let paths: Vec<_> = errs.iter().map(|e| e.param.clone().unwrap()).collect();
        assert!(paths.contains(&"retries".to_owned()), "{paths:?}");
        assert!(
            paths.contains(&"targets[0].strategy.mode".to_owned()),
            "{paths:?}"
        );
    }
}
