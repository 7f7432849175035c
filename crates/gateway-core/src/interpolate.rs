//! `${VAR}` and `${VAR:-default}` in the files an operator writes (the registry, `--config`,
//! `--config-dir`), so that no secret has to be written in a file. Never applied to a config
//! that arrives with a request: a caller must not be able to read the server's environment.
//!
//! Pure: the environment comes in as a function, so tests and the core stay free of it.
//! Every string value is interpolated (object keys are not); `$${` writes a literal `${`.

use serde_json::Value;

use crate::error::GatewayError;
use crate::json_path::JsonPath;

/// Replace every `${VAR}` / `${VAR:-default}` in the string values of `value`. A variable
/// that is unset (and has no default) or a malformed reference is an error naming it and
/// the path where it was; all of them are reported at once.
pub fn interpolate(value: &mut Value, env: &dyn Fn(&str) -> Option<String>) -> Vec<GatewayError> {
    let mut errors = Vec::new();
    walk(value, &JsonPath::root(), env, &mut errors);
    errors
}

fn walk(value: &mut Value, at: &JsonPath, env: &dyn Fn(&str) -> Option<String>, errors: &mut Vec<GatewayError>) {
    match value {
        Value::String(text) if text.contains("${") => match expand(text, env) {
            Ok(expanded) => *text = expanded,
            Err(message) => errors.push(GatewayError::config(at.as_str(), message)),
        },
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                walk(item, &at.index(i), env, errors);
            }
        }
        Value::Object(map) => {
            for (key, item) in map.iter_mut() {
                walk(item, &at.key(key), env, errors);
            }
        }
        _ => {}
    }
}

/// One string with its references replaced. The message never quotes a variable's value.
fn expand(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        if rest[..start].ends_with('$') {
            // `$${` is an escaped, literal `${`.
            out.push_str(&rest[..start - 1]);
            out.push_str("${");
            rest = &rest[start + 2..];
            continue;
        }
        out.push_str(&rest[..start]);
        let body_and_rest = &rest[start + 2..];
        let end = body_and_rest.find('}').ok_or_else(|| "`${` without a closing `}`".to_owned())?;
        let body = &body_and_rest[..end];
        let (name, default) = match body.split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (body, None),
        };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(format!("`${{{body}}}` is not a variable reference (letters, digits and _ only)"));
        }
        match env(name).filter(|v| !v.is_empty()).or_else(|| default.map(str::to_owned)) {
            Some(v) => out.push_str(&v),
            None => return Err(format!("environment variable {name} is not set (and has no `:-default`)")),
        }
        rest = &body_and_rest[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn env(name: &str) -> Option<String> {
        match name {
            "KEY" => Some("sk-secret".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn references_are_replaced_with_defaults_and_escapes() {
        let mut v =
            json!({"a": "${KEY}", "b": ["x-${KEY}-y", "${MISSING:-fallback}", "${EMPTY:-d}", "$${KEY}"], "n": 1});
        assert!(interpolate(&mut v, &env).is_empty());
        assert_eq!(v, json!({"a": "sk-secret", "b": ["x-sk-secret-y", "fallback", "d", "${KEY}"], "n": 1}));
    }

    #[test]
    fn every_missing_or_malformed_reference_is_reported_with_its_path_and_no_value() {
        let mut v = json!({"providers": {"p": {"api_key": "${NOPE}"}}, "x": ["${KEY", "${a-b}"]});
        let errors = interpolate(&mut v, &env);
        let paths: Vec<_> = errors.iter().map(|e| e.param.clone().unwrap()).collect();
        assert_eq!(paths, ["providers.p.api_key", "x[0]", "x[1]"]);
        assert!(errors[0].message.contains("NOPE is not set"), "{}", errors[0].message);
        assert!(errors.iter().all(|e| !e.message.contains("sk-secret")));
    }
}
