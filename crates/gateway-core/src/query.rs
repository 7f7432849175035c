//! The conditional-routing query language (MongoDB semantics), compiled once per config.
//!
//! A query such as `{"metadata.tier": {"$in": ["pro", "team"]}, "params.stream": true}`
//! compiles to a [`Query`]; [`Query::matches`] evaluates it against a [`QueryContext`]
//! without allocating. Every rule here is written down in SPEC.md ("Conditional query
//! language"); where Portkey deviates from MongoDB through early returns, we don't.

use regex::Regex;
use serde_json::{Map, Value};

use crate::error::GatewayError;
use crate::json_path::JsonPath;

/// What a query is evaluated against.
#[derive(Debug, Clone, Copy)]
pub struct QueryContext<'a> {
    /// `x-portkey-metadata` (or the binding's `metadata`); `{}` when absent.
    pub metadata: &'a Value,
    /// The request body as the caller sent it (before `override_params`).
    pub params: &'a Value,
    /// The gateway request path, e.g. `/v1/chat/completions`.
    pub pathname: &'a str,
}

/// A compiled query: all clauses must match.
#[derive(Debug, Clone)]
pub struct Query {
    clauses: Vec<Clause>,
}

#[derive(Debug, Clone)]
enum Clause {
    And(Vec<Query>),
    Or(Vec<Query>),
    Nor(Vec<Query>),
    Field { path: FieldPath, ops: Vec<Op> },
}

/// Where a field path starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Root {
    Metadata,
    Params,
    Pathname,
}

#[derive(Debug, Clone)]
struct FieldPath {
    root: Root,
    segments: Vec<Segment>,
}

#[derive(Debug, Clone)]
struct Segment {
    key: String,
    /// Set when the segment is all digits, so it can index an array.
    index: Option<usize>,
}

#[derive(Debug, Clone)]
enum Op {
    Eq(Value),
    Ne(Value),
    Gt(f64),
    Gte(f64),
    Lt(f64),
    Lte(f64),
    In(Vec<Value>),
    Nin(Vec<Value>),
    Regex(Regex),
    Exists(bool),
    Not(Vec<Op>),
}

/// What a field resolved to. `Str` is for `url.pathname`, which is not a JSON value.
#[derive(Clone, Copy)]
enum Found<'a> {
    Missing,
    Json(&'a Value),
    Str(&'a str),
}

impl Query {
    /// Whether any clause reads `params.*` (the request body).
    pub fn reads_params(&self) -> bool {
        self.clauses.iter().any(|clause| match clause {
            Clause::And(queries) | Clause::Or(queries) | Clause::Nor(queries) => {
                queries.iter().any(Query::reads_params)
            }
            Clause::Field { path, .. } => path.root == Root::Params,
        })
    }

    /// Compile a query object. Errors carry paths relative to the query root.
    pub fn compile(value: &Value) -> Result<Self, GatewayError> {
        Self::compile_at(value, &JsonPath::root())
    }

    /// Compile, reporting error paths below `at`.
    pub fn compile_at(value: &Value, at: &JsonPath) -> Result<Self, GatewayError> {
        let Value::Object(map) = value else {
            return Err(GatewayError::config(at.as_str(), "a query must be an object"));
        };
        let mut clauses = Vec::with_capacity(map.len());
        for (key, operand) in map {
            let here = at.key(key);
            let clause = match key.as_str() {
                "$and" => Clause::And(compile_list(operand, &here)?),
                "$or" => Clause::Or(compile_list(operand, &here)?),
                "$nor" => Clause::Nor(compile_list(operand, &here)?),
                k if k.starts_with('$') => {
                    return Err(GatewayError::config(
                        here.as_str(),
                        format!("unknown query operator `{k}` (expected $and, $or, $nor or a field path)"),
                    ));
                }
                _ => Clause::Field { path: FieldPath::parse(key, &here)?, ops: compile_field_operand(operand, &here)? },
            };
            clauses.push(clause);
        }
        Ok(Self { clauses })
    }

    /// Whether the query matches. Allocation-free.
    pub fn matches(&self, ctx: &QueryContext<'_>) -> bool {
        self.clauses.iter().all(|c| c.matches(ctx))
    }
}

fn compile_list(operand: &Value, at: &JsonPath) -> Result<Vec<Query>, GatewayError> {
    match operand {
        Value::Array(items) if !items.is_empty() => {
            items.iter().enumerate().map(|(i, q)| Query::compile_at(q, &at.index(i))).collect()
        }
        _ => Err(GatewayError::config(at.as_str(), "$and, $or and $nor take a non-empty array of queries")),
    }
}

/// A field's operand: an operator map when every key starts with `$`, else a literal.
fn compile_field_operand(operand: &Value, at: &JsonPath) -> Result<Vec<Op>, GatewayError> {
    match operand {
        Value::Object(map) if map.keys().any(|k| k.starts_with('$')) => compile_op_map(map, at),
        literal => Ok(vec![Op::Eq(literal.clone())]),
    }
}

fn compile_op_map(map: &Map<String, Value>, at: &JsonPath) -> Result<Vec<Op>, GatewayError> {
    if let Some(plain) = map.keys().find(|k| !k.starts_with('$')) {
        return Err(GatewayError::config(
            at.key(plain).as_str(),
            "an operator object cannot mix `$` operators and plain keys",
        ));
    }
    map.iter().map(|(op, operand)| compile_op(op, operand, &at.key(op))).collect()
}

/// Longest `$regex` pattern, bytes.
pub const MAX_REGEX_LEN: usize = 1024;
/// Compiled size limit of one `$regex` (about a millisecond to reach; the regex crate's
/// default of 10 MiB lets one `\w{100}` take 30 ms).
pub const REGEX_SIZE_LIMIT: usize = 64 * 1024;

/// Compile a `$regex` pattern within [`MAX_REGEX_LEN`] and [`REGEX_SIZE_LIMIT`].
pub fn compile_regex(pattern: &str) -> Result<regex::Regex, String> {
    if pattern.len() > MAX_REGEX_LEN {
        return Err(format!("the pattern is longer than {MAX_REGEX_LEN} bytes"));
    }
    regex::RegexBuilder::new(pattern).size_limit(REGEX_SIZE_LIMIT).dfa_size_limit(REGEX_SIZE_LIMIT * 4).build().map_err(
        |e| match e {
            regex::Error::CompiledTooBig(_) => {
                format!("the pattern compiles too big (over {} KiB); simplify it", REGEX_SIZE_LIMIT / 1024)
            }
            other => other.to_string(),
        },
    )
}

fn compile_op(op: &str, operand: &Value, at: &JsonPath) -> Result<Op, GatewayError> {
    let err = |msg: &str| GatewayError::config(at.as_str(), format!("{op}: {msg}"));
    let number = || numeric(operand).ok_or_else(|| err("operand must be a number"));
    let array = || match operand {
        Value::Array(items) => Ok(items.clone()),
        _ => Err(err("operand must be an array")),
    };
    Ok(match op {
        "$eq" => Op::Eq(operand.clone()),
        "$ne" => Op::Ne(operand.clone()),
        "$gt" => Op::Gt(number()?),
        "$gte" => Op::Gte(number()?),
        "$lt" => Op::Lt(number()?),
        "$lte" => Op::Lte(number()?),
        "$in" => Op::In(array()?),
        "$nin" => Op::Nin(array()?),
        "$regex" => {
            let Value::String(pattern) = operand else {
                return Err(err("operand must be a string"));
            };
            Op::Regex(compile_regex(pattern).map_err(|e| err(&format!("invalid regex: {e}")))?)
        }
        "$exists" => match operand {
            Value::Bool(b) => Op::Exists(*b),
            _ => return Err(err("operand must be true or false")),
        },
        "$not" => match operand {
            Value::Object(map) if !map.is_empty() && map.keys().all(|k| k.starts_with('$')) => {
                Op::Not(compile_op_map(map, at)?)
            }
            _ => return Err(err("operand must be an object of operators")),
        },
        _ => return Err(err("unknown operator")),
    })
}

impl FieldPath {
    fn parse(key: &str, at: &JsonPath) -> Result<Self, GatewayError> {
        let bad = || {
            GatewayError::config(
                at.as_str(),
                format!("query path `{key}` must be `metadata`, `params` or start with them, or be `url.pathname`"),
            )
        };
        // A root alone names the whole object: `{"metadata": "x"}` is a valid query that
        // compares all of the metadata (and so matches nothing here), as in Portkey.
        match key {
            "url.pathname" => return Ok(Self { root: Root::Pathname, segments: Vec::new() }),
            "metadata" => return Ok(Self { root: Root::Metadata, segments: Vec::new() }),
            "params" => return Ok(Self { root: Root::Params, segments: Vec::new() }),
            _ => {}
        }
        let (root, rest) = if let Some(rest) = key.strip_prefix("metadata.") {
            (Root::Metadata, rest)
        } else if let Some(rest) = key.strip_prefix("params.") {
            (Root::Params, rest)
        } else {
            return Err(bad());
        };
        let segments = rest
            .split('.')
            .map(|s| {
                if s.is_empty() {
                    return Err(bad());
                }
                let index = if s.bytes().all(|b| b.is_ascii_digit()) { s.parse().ok() } else { None };
                Ok(Segment { key: s.to_owned(), index })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { root, segments })
    }

    fn resolve<'a>(&self, ctx: &QueryContext<'a>) -> Found<'a> {
        let mut current = match self.root {
            Root::Pathname => return Found::Str(ctx.pathname),
            Root::Metadata => ctx.metadata,
            Root::Params => ctx.params,
        };
        for seg in &self.segments {
            let next = match current {
                Value::Object(map) => map.get(&seg.key),
                Value::Array(items) => seg.index.and_then(|i| items.get(i)),
                _ => None,
            };
            match next {
                Some(v) => current = v,
                None => return Found::Missing,
            }
        }
        Found::Json(current)
    }
}

impl Clause {
    fn matches(&self, ctx: &QueryContext<'_>) -> bool {
        match self {
            Self::And(qs) => qs.iter().all(|q| q.matches(ctx)),
            Self::Or(qs) => qs.iter().any(|q| q.matches(ctx)),
            Self::Nor(qs) => !qs.iter().any(|q| q.matches(ctx)),
            Self::Field { path, ops } => {
                let found = path.resolve(ctx);
                ops.iter().all(|op| op.matches(found))
            }
        }
    }
}

impl Op {
    fn matches(&self, found: Found<'_>) -> bool {
        match self {
            Self::Eq(c) => eq_match(found, c),
            Self::Ne(c) => !eq_match(found, c),
            Self::In(cs) => cs.iter().any(|c| eq_match(found, c)),
            Self::Nin(cs) => !cs.iter().any(|c| eq_match(found, c)),
            Self::Gt(c) => any_scalar(found, |v| numeric_found(v).is_some_and(|n| n > *c)),
            Self::Gte(c) => any_scalar(found, |v| numeric_found(v).is_some_and(|n| n >= *c)),
            Self::Lt(c) => any_scalar(found, |v| numeric_found(v).is_some_and(|n| n < *c)),
            Self::Lte(c) => any_scalar(found, |v| numeric_found(v).is_some_and(|n| n <= *c)),
            Self::Regex(re) => any_scalar(found, |v| match v {
                Found::Str(s) => re.is_match(s),
                Found::Json(Value::String(s)) => re.is_match(s),
                _ => false,
            }),
            Self::Exists(want) => !matches!(found, Found::Missing) == *want,
            Self::Not(ops) => !ops.iter().all(|op| op.matches(found)),
        }
    }
}

/// MongoDB equality: null matches null or missing; an array field matches when the
/// whole array equals the operand or any element does.
fn eq_match(found: Found<'_>, operand: &Value) -> bool {
    match found {
        Found::Missing => operand.is_null(),
        Found::Str(s) => operand.as_str() == Some(s),
        Found::Json(v) => {
            json_eq(v, operand) || matches!(v, Value::Array(items) if items.iter().any(|e| json_eq(e, operand)))
        }
    }
}

/// Apply a scalar predicate to the field, or to any element when the field is an array.
fn any_scalar(found: Found<'_>, pred: impl Fn(Found<'_>) -> bool) -> bool {
    match found {
        Found::Json(Value::Array(items)) => items.iter().any(|e| pred(Found::Json(e))),
        other => pred(other),
    }
}

/// Type-strict equality, except that numbers compare by value (5 == 5.0) and object key
/// order does not matter.
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

/// A number, or a string that parses as one (Portkey compares `parseFloat`s).
fn numeric(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => parse_number(s),
        _ => None,
    }
}

fn numeric_found(found: Found<'_>) -> Option<f64> {
    match found {
        Found::Json(v) => numeric(v),
        Found::Str(s) => parse_number(s),
        Found::Missing => None,
    }
}

fn parse_number(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok().filter(|n| n.is_finite())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn check(query: Value, metadata: Value) -> bool {
        let q = Query::compile(&query).unwrap();
        let params = json!({});
        q.matches(&QueryContext { metadata: &metadata, params: &params, pathname: "/v1/chat/completions" })
    }

    #[test]
    fn or_does_not_short_circuit_siblings() {
        // Portkey returns at `$or` and ignores `metadata.b`; we AND every key.
        let q = json!({"$or": [{"metadata.a": "1"}], "metadata.b": "2"});
        assert!(!check(q.clone(), json!({"a": "1", "b": "X"})));
        assert!(check(q, json!({"a": "1", "b": "2"})));
    }

    #[test]
    fn regex_does_not_skip_later_operators() {
        assert!(!check(json!({"metadata.e": {"$regex": "a", "$eq": "zzz"}}), json!({"e": "abc"})));
    }

    #[test]
    fn deep_paths_and_numeric_strings() {
        assert!(check(json!({"metadata.user.plan.tier": "pro"}), json!({"user": {"plan": {"tier": "pro"}}})));
        assert!(check(json!({"metadata.n": {"$gt": 5}}), json!({"n": "10"})));
        assert!(!check(json!({"metadata.n": 5}), json!({"n": "5"})));
    }

    #[test]
    fn compile_errors_name_the_path() {
        let e = Query::compile(&json!({"$or": [{"metadata.a": {"$in": "x"}}]})).unwrap_err();
        assert_eq!(e.param.as_deref(), Some(r#"$or[0]["metadata.a"].$in"#));
    }
}
