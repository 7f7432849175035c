//! What compiling one config may cost. A config can arrive in every request (an inline
//! `x-portkey-config`), so its size is checked before anything else is done with it:
//! targets, their nesting, conditions, `$regex` operators and guardrail checks (each may
//! compile a regex or a JSON Schema) are counted in one walk of the JSON, and each regex
//! compiles under a size limit (the `regex` crate's default of 10 MiB lets one `\w{100}`
//! take 30 ms, and 150 of them 10 s of a worker's CPU).

use serde_json::Value;

use crate::error::GatewayError;
use crate::json_path::JsonPath;

/// Most targets (groups and leaves) in one config.
pub const MAX_TARGETS: usize = 256;
/// Deepest nesting of `targets`.
pub const MAX_NESTING: usize = 8;
/// Most conditional rules in one config.
pub const MAX_CONDITIONS: usize = 256;
/// Most `$regex` operators in one config (with the guardrail checks that compile patterns).
pub const MAX_REGEXES: usize = 16;
/// Most guardrail checks written in one config, over all its hooks (a registry guardrail
/// named by id is compiled once with the registry and does not count).
pub const MAX_HOOK_CHECKS: usize = 64;

/// The fields that hold hooks, in both spellings a config may use.
const HOOK_FIELDS: &[&str] = &[
    "before_request_hooks",
    "beforeRequestHooks",
    "after_request_hooks",
    "afterRequestHooks",
    "input_guardrails",
    "inputGuardrails",
    "output_guardrails",
    "outputGuardrails",
];

/// Every limit the config passes over, each with the path where it was passed.
pub(super) fn check(config: &Value) -> Vec<GatewayError> {
    let mut count = Counts::default();
    walk(config, &JsonPath::root(), 0, &mut count);
    let mut errors = Vec::new();
    let mut over = |n: usize, max: usize, what: &str, at: &Option<String>| {
        if n > max {
            let at = at.as_deref().unwrap_or("");
            errors.push(GatewayError::config(at, format!("a config may have at most {max} {what} (this one has {n})")));
        }
    };
    over(count.targets, MAX_TARGETS, "targets", &count.first_target_over);
    over(count.deepest, MAX_NESTING, "levels of nested targets", &count.first_too_deep);
    over(count.conditions, MAX_CONDITIONS, "conditions", &count.first_condition_over);
    over(count.regexes, MAX_REGEXES, "$regex operators", &count.first_regex_over);
    over(count.checks, MAX_HOOK_CHECKS, "guardrail checks", &count.first_check_over);
    errors
}

#[derive(Default)]
struct Counts {
    targets: usize,
    deepest: usize,
    conditions: usize,
    regexes: usize,
    checks: usize,
    first_target_over: Option<String>,
    first_too_deep: Option<String>,
    first_condition_over: Option<String>,
    first_regex_over: Option<String>,
    first_check_over: Option<String>,
}

fn walk(node: &Value, at: &JsonPath, depth: usize, count: &mut Counts) {
    let Value::Object(map) = node else { return };
    if depth > count.deepest {
        count.deepest = depth;
        if depth > MAX_NESTING && count.first_too_deep.is_none() {
            count.first_too_deep = Some(at.as_str().to_owned());
        }
    }
    if let Some(Value::Array(conditions)) = map.get("strategy").and_then(|s| s.get("conditions")) {
        let here = at.key("strategy").key("conditions");
        for (i, condition) in conditions.iter().enumerate() {
            count.conditions += 1;
            if count.conditions > MAX_CONDITIONS && count.first_condition_over.is_none() {
                count.first_condition_over = Some(here.index(i).as_str().to_owned());
            }
            if let Some(query) = condition.get("query") {
                count_regexes(query, &here.index(i).key("query"), count);
            }
        }
    }
    for field in HOOK_FIELDS {
        if let Some(Value::Array(hooks)) = map.get(*field) {
            count_checks(hooks, &at.key(&crate::config::to_snake_case(field)), count);
        }
    }
    if let Some(Value::Array(targets)) = map.get("targets") {
        // Past a limit, counting goes on (the error says how many) but the walk stops
        // descending, so a huge config costs no more than a count.
        let descend = count.targets <= MAX_TARGETS && depth <= MAX_NESTING;
        for (i, target) in targets.iter().enumerate() {
            count.targets += 1;
            let here = at.key("targets").index(i);
            if count.targets > MAX_TARGETS && count.first_target_over.is_none() {
                count.first_target_over = Some(here.as_str().to_owned());
            }
            if descend {
                walk(target, &here, depth + 1, count);
            }
        }
    }
}

/// The checks a hook list writes: a full-form hook's `checks`, a shorthand hook's keys
/// other than its settings; a registry guardrail's id counts nothing. A check that
/// compiles patterns (`regexMatch`, `jsonSchema`) also counts as a `$regex`: one budget
/// of regexes for the whole config.
fn count_checks(hooks: &[Value], at: &JsonPath, count: &mut Counts) {
    const SETTINGS: &[&str] = &[
        "deny",
        "on_fail",
        "onFail",
        "on_success",
        "onSuccess",
        "async",
        "id",
        "type",
        "sequential",
        "guardrail_version_id",
        "guardrailVersionId",
        "name",
    ];
    // The regexes a check compiles: a rule, or a schema's `pattern`s and `patternProperties`.
    let regexes = |id: &str, parameters: Option<&Value>| match id.trim_start_matches("default.") {
        "regexMatch" => 1,
        "jsonSchema" => parameters.and_then(|p| p.get("schema")).map_or(0, schema_patterns).max(1),
        _ => 0,
    };
    for (i, hook) in hooks.iter().enumerate() {
        let Value::Object(hook) = hook else { continue };
        let checks: Vec<(&str, Option<&Value>)> = match hook.get("checks") {
            Some(Value::Array(checks)) => checks
                .iter()
                .map(|c| (c.get("id").and_then(Value::as_str).unwrap_or(""), c.get("parameters")))
                .collect(),
            Some(_) => Vec::new(),
            None => hook
                .iter()
                .filter(|(k, _)| !SETTINGS.contains(&k.as_str()))
                .map(|(k, v)| (k.as_str(), Some(v)))
                .collect(),
        };
        let here = at.index(i);
        count.checks += checks.len();
        if count.checks > MAX_HOOK_CHECKS && count.first_check_over.is_none() {
            count.first_check_over = Some(here.as_str().to_owned());
        }
        count.regexes += checks.iter().map(|(id, parameters)| regexes(id, *parameters)).sum::<usize>();
        if count.regexes > MAX_REGEXES && count.first_regex_over.is_none() {
            count.first_regex_over = Some(here.as_str().to_owned());
        }
    }
}

/// How many patterns a JSON Schema compiles (`pattern` keywords, `patternProperties` keys).
fn schema_patterns(schema: &Value) -> usize {
    match schema {
        Value::Object(map) => map
            .iter()
            .map(|(key, value)| match (key.as_str(), value) {
                ("pattern", Value::String(_)) => 1,
                ("patternProperties", Value::Object(patterns)) => {
                    patterns.len() + patterns.values().map(schema_patterns).sum::<usize>()
                }
                _ => schema_patterns(value),
            })
            .sum(),
        Value::Array(items) => items.iter().map(schema_patterns).sum(),
        _ => 0,
    }
}

fn count_regexes(query: &Value, at: &JsonPath, count: &mut Counts) {
    match query {
        Value::Object(map) => {
            for (key, value) in map {
                if key == "$regex" {
                    count.regexes += 1;
                    if count.regexes > MAX_REGEXES && count.first_regex_over.is_none() {
                        count.first_regex_over = Some(at.key(key).as_str().to_owned());
                    }
                }
                count_regexes(value, &at.key(key), count);
            }
        }
        Value::Array(items) => items.iter().enumerate().for_each(|(i, v)| count_regexes(v, &at.index(i), count)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::{MAX_REGEX_LEN, compile_regex};
    use serde_json::json;

    fn leaf() -> Value {
        json!({"provider": "openai", "api_key": "k"})
    }

    fn nested(depth: usize) -> Value {
        if depth == 0 { leaf() } else { json!({"strategy": {"mode": "fallback"}, "targets": [nested(depth - 1)]}) }
    }

    #[test]
    fn configs_within_the_limits_pass_and_each_limit_names_where_it_was_passed() {
        assert!(check(&nested(MAX_NESTING)).is_empty());
        let deep = check(&nested(MAX_NESTING + 1));
        assert_eq!(deep.len(), 1);
        assert!(deep[0].message.contains("levels of nested targets"), "{}", deep[0].message);

        let wide = json!({"strategy": {"mode": "loadbalance"}, "targets": vec![leaf(); MAX_TARGETS + 1]});
        let e = check(&wide);
        assert_eq!(e[0].param.as_deref(), Some(format!("targets[{MAX_TARGETS}]").as_str()));

        let condition = json!({"query": {"metadata.x": {"$regex": "a"}}, "then": "a"});
        let many = json!({"strategy": {"mode": "conditional", "conditions": vec![condition; MAX_REGEXES + 1]},
                          "targets": [{"name": "a", "provider": "openai"}]});
        let e = check(&many);
        assert_eq!(e.len(), 1);
        assert!(e[0].message.contains("$regex"), "{}", e[0].message);

        // Guardrail checks are counted over every node and both forms; those that compile
        // patterns are counted with the `$regex` operators too.
        let full =
            json!({"id": "h", "checks": vec![json!({"id": "default.wordCount", "parameters": {"maxWords": 1}}); 40]});
        let short = json!({"default.wordCount": {"maxWords": 1}, "default.contains": {"words": ["x"]}, "deny": true});
        let guarded = json!({"before_request_hooks": [full.clone()], "strategy": {"mode": "fallback"},
                             "targets": [{"provider": "openai", "inputGuardrails": vec![short; 13]}]});
        let e = check(&guarded);
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].param.as_deref(), Some("targets[0].input_guardrails[12]"));
        assert!(e[0].message.contains("at most 64 guardrail checks (this one has 66)"), "{}", e[0].message);
        assert!(check(&json!({"after_request_hooks": [full], "output_guardrails": ["a", "b"]})).is_empty());
        let regexes = json!({"checks": vec![json!({"id": "default.regexMatch", "parameters": {"rule": "a"}}); 10]});
        let schemas = json!({"jsonSchema": {"schema": {}}, "regexMatch": {"rule": "b"}});
        let e = check(&json!({"before_request_hooks": [regexes], "output_guardrails": vec![schemas; 4]}));
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].param.as_deref(), Some("output_guardrails[3]"));
        assert!(e[0].message.contains("16 $regex operators (this one has 18)"), "{}", e[0].message);
        let schema = json!({"type": "object", "properties": {"a": {"type": "string", "pattern": "x"}},
                            "patternProperties": {"^b": {"pattern": "y"}, "^c": {}}, "items": [{"pattern": "z"}]});
        assert_eq!(schema_patterns(&schema), 5);
        let e = check(
            &json!({"before_request_hooks": [{"checks": vec![json!({"id": "default.jsonSchema", "parameters": {"schema": schema}}); 4]}]}),
        );
        assert!(e[0].message.contains("(this one has 20)"), "{e:?}");
    }

    #[test]
    fn a_regex_that_compiles_too_big_or_is_too_long_is_refused() {
        // `\w{100}` compiles under the regex crate's default limit, taking 30 ms; the
        // compile cost at these limits is measured in benches/core.rs.
        let e = compile_regex(r"\w{100}").err().unwrap_or_default();
        assert!(e.contains("too big"), "{e}");
        assert!(compile_regex(&"a".repeat(MAX_REGEX_LEN + 1)).is_err());
        assert!(compile_regex("^gpt-4o(-mini)?$").is_ok());
    }
}
