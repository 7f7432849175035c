//! What compiling one config may cost. A config can arrive in every request (an inline
//! `x-portkey-config`), so its size is checked before anything else is done with it:
//! targets, their nesting, conditions and `$regex` operators are counted in one walk of
//! the JSON, and each regex compiles under a size limit (the `regex` crate's default of
//! 10 MiB lets one `\w{100}` take 30 ms, and 150 of them 10 s of a worker's CPU).

use serde_json::Value;

use crate::error::GatewayError;
use crate::json_path::JsonPath;

/// Most targets (groups and leaves) in one config.
pub const MAX_TARGETS: usize = 256;
/// Deepest nesting of `targets`.
pub const MAX_NESTING: usize = 8;
/// Most conditional rules in one config.
pub const MAX_CONDITIONS: usize = 256;
/// Most `$regex` operators in one config.
pub const MAX_REGEXES: usize = 16;

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
    errors
}

#[derive(Default)]
struct Counts {
    targets: usize,
    deepest: usize,
    conditions: usize,
    regexes: usize,
    first_target_over: Option<String>,
    first_too_deep: Option<String>,
    first_condition_over: Option<String>,
    first_regex_over: Option<String>,
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
