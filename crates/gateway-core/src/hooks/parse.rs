//! Hooks as configs and the registry write them, compiled.
//!
//! - Full form: `before_request_hooks` / `after_request_hooks`, lists of
//!   `{"id", "type": "guardrail", "deny", "sequential", "on_fail", "on_success", "checks":
//!   [{"id", "parameters", "is_enabled"}]}`; a hook that is `{"id": "..."}` alone names
//!   the registry's `guardrails` entry.
//! - Shorthand: `input_guardrails` / `output_guardrails`, lists whose items are a
//!   registry guardrail's id, or an object where every key but the hook settings is a
//!   check id (`default.` added when the key has no dot) and its value the parameters.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::{Check, CheckSpec, Hook, Phase};
use crate::error::GatewayError;
use crate::json_path::JsonPath;

/// The most hooks one phase of a node may have.
pub const MAX_HOOKS: usize = 16;

/// The most checks one hook may have.
pub const MAX_CHECKS: usize = 32;

/// The registry's `guardrails` section, compiled: id → hook.
pub type Guardrails = HashMap<String, Arc<Hook>>;

/// Hook-level keys of the shorthand form, in either casing, with the full form's name
/// (every other key is a check).
const HOOK_SETTINGS: &[(&str, &str)] = &[
    ("deny", "deny"),
    ("on_fail", "on_fail"),
    ("onFail", "on_fail"),
    ("on_success", "on_success"),
    ("onSuccess", "on_success"),
    ("async", "async"),
    ("id", "id"),
    ("type", "type"),
    ("guardrail_version_id", "guardrail_version_id"),
    ("guardrailVersionId", "guardrail_version_id"),
    ("sequential", "sequential"),
];

/// The full form's fields.
const HOOK_FIELDS: &[&str] = &["id", "type", "deny", "async", "sequential", "on_fail", "on_success", "checks", "name"];

/// What one config node says about hooks: `None` for a phase it does not set (the
/// parent's hooks then apply).
#[derive(Debug, Default)]
pub struct NodeHooks {
    /// Before-request hooks.
    pub before: Option<Vec<Arc<Hook>>>,
    /// After-request hooks.
    pub after: Option<Vec<Arc<Hook>>>,
}

/// The hooks a config node sets, from its four fields; errors carry their paths.
pub fn node_hooks(
    fields: [Option<&Value>; 4],
    at: &JsonPath,
    guardrails: &Guardrails,
    errors: &mut Vec<GatewayError>,
) -> NodeHooks {
    let [before_full, after_full, input, output] = fields;
    let mut phase = |full: Option<&Value>, full_key: &str, shorthand: Option<&Value>, short_key: &str, phase| {
        if full.is_none() && shorthand.is_none() {
            return None;
        }
        let mut hooks = Vec::new();
        if let Some(full) = full {
            hooks.extend(full_form(full, &at.key(full_key), guardrails, errors));
        }
        if let Some(shorthand) = shorthand {
            hooks.extend(shorthand_form(shorthand, &at.key(short_key), phase, guardrails, errors));
        }
        for hook in &hooks {
            for check in hook.checks.iter().filter(|c| !c.check.runs_in(phase)) {
                let other = match phase {
                    Phase::Before => "after_request_hooks / output_guardrails",
                    Phase::After => "before_request_hooks / input_guardrails",
                };
                errors.push(GatewayError::config(
                    at.key(full_key).as_str(),
                    format!("`{}` (hook `{}`) cannot run here: put it in {other}", check.id, hook.id),
                ));
            }
        }
        if hooks.len() > MAX_HOOKS {
            errors.push(GatewayError::config(
                at.key(full_key).as_str(),
                format!("at most {MAX_HOOKS} hooks run in one phase"),
            ));
        }
        Some(hooks)
    };
    NodeHooks {
        before: phase(before_full, "before_request_hooks", input, "input_guardrails", Phase::Before),
        after: phase(after_full, "after_request_hooks", output, "output_guardrails", Phase::After),
    }
}

/// The registry's `guardrails` section: id → a hook in the full form (its `id` is the
/// entry's).
pub fn load_guardrails(section: &Map<String, Value>, at: &JsonPath) -> Result<Guardrails, Vec<GatewayError>> {
    let mut errors = Vec::new();
    let mut out = HashMap::new();
    let none = Guardrails::new();
    for (id, entry) in section {
        let here = at.key(id);
        let Value::Object(map) = entry else {
            errors.push(GatewayError::config(here.as_str(), "a guardrail is an object with `checks`"));
            continue;
        };
        if map.get("checks").is_none() {
            errors.push(GatewayError::config(here.key("checks").as_str(), "a guardrail needs `checks`"));
            continue;
        }
        if let Some(hook) = hook_at(map, id, &here, &none, &mut errors, false) {
            out.insert(id.clone(), hook);
        }
    }
    if errors.is_empty() { Ok(out) } else { Err(errors) }
}

fn full_form(value: &Value, at: &JsonPath, guardrails: &Guardrails, errors: &mut Vec<GatewayError>) -> Vec<Arc<Hook>> {
    let Value::Array(items) = value else {
        errors.push(GatewayError::config(at.as_str(), "a list of hooks"));
        return Vec::new();
    };
    let mut hooks = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let here = at.index(i);
        let Value::Object(map) = item else {
            errors.push(GatewayError::config(here.as_str(), "a hook is an object"));
            continue;
        };
        let id = map.get("id").and_then(Value::as_str);
        let fallback_id = format!("hook_{i}");
        if let Some(hook) = hook_at(map, id.unwrap_or(&fallback_id), &here, guardrails, errors, false) {
            hooks.push(hook);
        }
    }
    hooks
}

fn shorthand_form(
    value: &Value,
    at: &JsonPath,
    phase: Phase,
    guardrails: &Guardrails,
    errors: &mut Vec<GatewayError>,
) -> Vec<Arc<Hook>> {
    let Value::Array(items) = value else {
        errors.push(GatewayError::config(
            at.as_str(),
            "a list: guardrail ids from the registry, or objects of checks (`{\"default.contains\": {...}, \"deny\": true}`)",
        ));
        return Vec::new();
    };
    let prefix = match phase {
        Phase::Before => "input_guardrail",
        Phase::After => "output_guardrail",
    };
    let mut hooks = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let here = at.index(i);
        match item {
            Value::String(id) => match guardrails.get(id) {
                Some(hook) => hooks.push(hook.clone()),
                None => errors.push(unknown_guardrail(id, guardrails, &here)),
            },
            Value::Object(map) => {
                let mut full = Map::new();
                let mut checks = Vec::new();
                for (key, value) in map {
                    if let Some((_, setting)) = HOOK_SETTINGS.iter().find(|(k, _)| k == key) {
                        full.insert((*setting).to_owned(), value.clone());
                        continue;
                    }
                    if !value.is_object() {
                        errors.push(GatewayError::config(here.key(key).as_str(), "a check's parameters are an object"));
                        continue;
                    }
                    let id = if key.contains('.') { key.clone() } else { format!("default.{key}") };
                    let mut check = Map::new();
                    check.insert("id".into(), Value::String(id));
                    let mut parameters = value.as_object().cloned().unwrap_or_default();
                    if let Some(enabled) = parameters.remove("is_enabled").or_else(|| parameters.remove("isEnabled")) {
                        check.insert("is_enabled".into(), enabled);
                    }
                    check.insert("parameters".into(), Value::Object(parameters));
                    checks.push(Value::Object(check));
                }
                full.remove("guardrail_version_id");
                if checks.is_empty() && full.len() == 1 && full.contains_key("id") {
                    // `{"id": "..."}`: a registry guardrail.
                    if let Some(hook) = hook_at(&full, "", &here, guardrails, errors, false) {
                        hooks.push(hook);
                    }
                    continue;
                }
                full.insert("checks".into(), Value::Array(checks));
                let fallback_id = format!("{prefix}_{i}");
                let id = full.get("id").and_then(Value::as_str).map(str::to_owned).unwrap_or(fallback_id);
                if let Some(hook) = hook_at(&full, &id, &here, guardrails, errors, true) {
                    hooks.push(hook);
                }
            }
            _ => errors.push(GatewayError::config(here.as_str(), "a guardrail id or an object of checks")),
        }
    }
    hooks
}

/// One hook in the full form. With `checks_at_keys` (the shorthand), a check's errors are
/// reported at its key rather than at `checks[i]`.
fn hook_at(
    map: &Map<String, Value>,
    id: &str,
    at: &JsonPath,
    guardrails: &Guardrails,
    errors: &mut Vec<GatewayError>,
    checks_at_keys: bool,
) -> Option<Arc<Hook>> {
    let before = errors.len();
    for key in map.keys() {
        if !HOOK_FIELDS.contains(&key.as_str()) {
            errors.push(GatewayError::config(
                at.key(key).as_str(),
                format!("unknown hook field (expected {})", HOOK_FIELDS.join(", ")),
            ));
        }
    }
    let Some(checks) = map.get("checks") else {
        // A reference to the registry: the id alone.
        return match map.get("id").and_then(Value::as_str) {
            Some(id) if map.len() == 1 || (map.len() == 2 && map.contains_key("type")) => match guardrails.get(id) {
                Some(hook) => Some(hook.clone()),
                None => {
                    errors.push(unknown_guardrail(id, guardrails, &at.key("id")));
                    None
                }
            },
            _ => {
                errors.push(GatewayError::config(
                    at.key("checks").as_str(),
                    "a hook needs `checks`, or names a registry guardrail by `id` alone",
                ));
                None
            }
        };
    };
    match map.get("type").and_then(Value::as_str) {
        None | Some("guardrail") => {}
        Some("mutator") => errors.push(GatewayError::config(
            at.key("type").as_str(),
            "mutator hooks are not supported; a guardrail with `default.pii` and `redact: true` rewrites requests",
        )),
        Some(_) => errors.push(GatewayError::config(at.key("type").as_str(), "`type` is `guardrail`")),
    }
    if map.get("async").and_then(Value::as_bool) == Some(true) {
        errors.push(GatewayError::config(
            at.key("async").as_str(),
            "async hooks are not run (nor are they by Portkey's gateway); remove `async` to run the checks",
        ));
    }
    let flag = |key: &str, errors: &mut Vec<GatewayError>| match map.get(key) {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            errors.push(GatewayError::config(at.key(key).as_str(), format!("`{key}` must be true or false")));
            false
        }
    };
    let deny = flag("deny", errors);
    let sequential = flag("sequential", errors);
    let feedback = |key: &str| map.get(key).and_then(|v| v.get("feedback")).filter(|f| !f.is_null()).cloned();
    let Value::Array(items) = checks else {
        errors.push(GatewayError::config(at.key("checks").as_str(), "`checks` is a list"));
        return None;
    };
    if items.len() > MAX_CHECKS {
        errors.push(GatewayError::config(at.key("checks").as_str(), format!("at most {MAX_CHECKS} checks in a hook")));
        return None;
    }
    let mut specs = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let Some(spec) = check_spec(item, at, i, checks_at_keys, errors) else { continue };
        if let Some(spec) = spec {
            specs.push(spec);
        }
    }
    if errors.len() > before {
        return None;
    }
    Some(Arc::new(Hook {
        id: id.to_owned(),
        deny,
        sequential,
        checks: specs,
        on_fail: feedback("on_fail"),
        on_success: feedback("on_success"),
    }))
}

/// One check: `None` on an error (reported), `Some(None)` for a disabled check.
fn check_spec(
    item: &Value,
    at: &JsonPath,
    i: usize,
    checks_at_keys: bool,
    errors: &mut Vec<GatewayError>,
) -> Option<Option<CheckSpec>> {
    let Value::Object(check) = item else {
        errors.push(GatewayError::config(at.key("checks").index(i).as_str(), "a check is `{\"id\", \"parameters\"}`"));
        return None;
    };
    let Some(id) = check.get("id").and_then(Value::as_str) else {
        errors.push(GatewayError::config(at.key("checks").index(i).key("id").as_str(), "a check needs an `id`"));
        return None;
    };
    let here = if checks_at_keys { at.key(id) } else { at.key("checks").index(i) };
    let empty = Map::new();
    let parameters = match check.get("parameters") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(p)) => p,
        Some(_) => {
            errors.push(GatewayError::config(here.key("parameters").as_str(), "`parameters` is an object"));
            return None;
        }
    };
    let enabled = check.get("is_enabled").or_else(|| check.get("isEnabled")).and_then(Value::as_bool).unwrap_or(true);
    // The shorthand's parameters are the value at the check's key itself.
    let (params_at, id_at) =
        if checks_at_keys { (here.clone(), here.clone()) } else { (here.key("parameters"), here.key("id")) };
    let compiled = Check::compile(id, parameters, &params_at, &id_at);
    let check = match compiled {
        Ok(check) => check,
        Err((path, message)) => {
            errors.push(GatewayError::config(path.as_str(), message));
            return None;
        }
    };
    let fail_on_error = parameters
        .get("failOnError")
        .or_else(|| parameters.get("fail_on_error"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Some(enabled.then(|| CheckSpec { id: id.to_owned(), fail_on_error, check }))
}

fn unknown_guardrail(id: &str, guardrails: &Guardrails, at: &JsonPath) -> GatewayError {
    let mut known: Vec<&str> = guardrails.keys().map(String::as_str).collect();
    known.sort_unstable();
    let known =
        if known.is_empty() { "the registry has none".to_owned() } else { format!("known: {}", known.join(", ")) };
    GatewayError::config(at.as_str(), format!("no guardrail `{id}` in the registry's `guardrails` ({known})"))
}
