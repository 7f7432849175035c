//! Strategy evaluation: which children of a group are tried, and in what order.
//!
//! The engine walks the tree with [`select`]; `gatewise route` uses [`plan`] to list the
//! leaves that would be tried if every attempt failed. Both share the same selection, so
//! the dry run can never disagree with the real routing.

use crate::config::{Config, Group, Leaf, Node, Strategy};
use crate::error::{ErrorCode, GatewayError};
use crate::query::QueryContext;
use crate::rng::RandomSource;

/// The children of a group to try, in order. Allocation-free.
#[derive(Debug, Clone)]
pub enum Selection {
    /// Exactly one child.
    One(usize),
    /// Children `0..n` in order (fallback).
    All(std::ops::Range<usize>),
}

impl Iterator for Selection {
    type Item = usize;
    fn next(&mut self) -> Option<usize> {
        match self {
            Selection::One(i) => {
                let i = *i;
                *self = Selection::All(0..0);
                Some(i)
            }
            Selection::All(range) => range.next(),
        }
    }
}

/// Pick the children of `group` to try for this request.
pub fn select(group: &Group, ctx: &QueryContext<'_>, rng: &dyn RandomSource) -> Result<Selection, GatewayError> {
    match &group.strategy {
        Strategy::Single => Ok(Selection::One(0)),
        Strategy::Fallback { .. } => Ok(Selection::All(0..group.targets.len())),
        Strategy::LoadBalance { weights, total } => Ok(Selection::One(draw(weights, *total, rng.next_f64()))),
        Strategy::Conditional { conditions, default } => conditions
            .iter()
            .find(|c| c.query.matches(ctx))
            .map(|c| c.target)
            .or(*default)
            .map(Selection::One)
            .ok_or_else(|| {
                GatewayError::new(
                    ErrorCode::NoRouteMatched,
                    format!(
                        "no condition of the conditional strategy at {} matched, and it has no default",
                        group.option_index
                    ),
                )
            }),
    }
}

/// Weighted draw: walk the targets, subtracting weights, until `u·total` falls inside
/// one. Weight 0 is never chosen; rounding at the top end lands on the last non-zero.
fn draw(weights: &[f64], total: f64, u: f64) -> usize {
    let mut r = u * total;
    let mut last_nonzero = 0;
    for (i, w) in weights.iter().enumerate() {
        if *w > 0.0 {
            if r < *w {
                return i;
            }
            last_nonzero = i;
        }
        r -= w;
    }
    last_nonzero
}

/// Whether a fallback group moves on after a child answered with `status`.
pub fn fallback_continues(on_status_codes: Option<&[u16]>, status: u16) -> bool {
    match on_status_codes {
        Some(codes) => codes.contains(&status),
        None => !(200..300).contains(&status),
    }
}

/// The leaves that would be tried, in order, if every attempt failed.
pub fn plan<'c>(
    config: &'c Config,
    ctx: &QueryContext<'_>,
    rng: &dyn RandomSource,
) -> Result<Vec<&'c Leaf>, GatewayError> {
    let mut out = Vec::new();
    plan_node(config.root(), ctx, rng, &mut out)?;
    Ok(out)
}

fn plan_node<'c>(
    node: &'c Node,
    ctx: &QueryContext<'_>,
    rng: &dyn RandomSource,
    out: &mut Vec<&'c Leaf>,
) -> Result<(), GatewayError> {
    match node {
        Node::Leaf(leaf) => out.push(leaf),
        Node::Group(group) => {
            for i in select(group, ctx, rng)? {
                plan_node(&group.targets[i], ctx, rng, out)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draw_respects_zero_weights_and_edges() {
        assert_eq!(draw(&[0.0, 1.0], 1.0, 0.0), 1);
        assert_eq!(draw(&[1.0, 0.0], 1.0, 0.999_999), 0);
        assert_eq!(draw(&[1.0, 3.0], 4.0, 0.25), 1);
        assert_eq!(draw(&[1.0, 3.0, 0.0], 4.0, 0.999_999_999), 1);
    }
}

/// One step of a dry run: a leaf and the request it would receive.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PlannedAttempt {
    /// Option-index path of the leaf.
    pub option_index: String,
    /// Provider slug.
    pub provider: String,
    /// HTTP method.
    pub method: String,
    /// Upstream URL.
    pub url: String,
    /// Upstream headers, credentials redacted.
    pub headers: serde_json::Map<String, serde_json::Value>,
    /// The translated body (JSON when it is JSON, else its size).
    pub body: serde_json::Value,
    /// Parameters the provider would drop.
    pub dropped_params: Vec<String>,
    /// Why this leaf could not be built, if it could not (the plan goes on: a real request
    /// would fall back past it).
    pub error: Option<serde_json::Value>,
}

/// Headers whose values are secrets.
const SECRET_HEADERS: &[&str] =
    &["authorization", "api-key", "x-api-key", "x-goog-api-key", "x-amz-security-token", "x-amz-content-sha256"];

/// Plan a request and build every upstream request it would send, without sending
/// anything (`gatewise route`, the bindings' `route()`).
pub fn dry_run(
    config: &Config,
    request: &crate::GatewayRequest,
    options: &crate::RequestOptions,
    rng: &dyn RandomSource,
    now: std::time::SystemTime,
) -> Result<Vec<PlannedAttempt>, GatewayError> {
    crate::request::validate_body(request.endpoint, &request.body)?;
    static NULL: serde_json::Value = serde_json::Value::Null;
    let ctx = QueryContext {
        metadata: &options.metadata,
        params: request.body.value().unwrap_or(&NULL),
        pathname: &request.path,
    };
    let leaves = plan(config, &ctx, rng)?;
    Ok(leaves.into_iter().map(|leaf| plan_leaf(leaf, request, options, now)).collect())
}

fn plan_leaf(
    leaf: &Leaf,
    request: &crate::GatewayRequest,
    options: &crate::RequestOptions,
    now: std::time::SystemTime,
) -> PlannedAttempt {
    let mut planned = PlannedAttempt {
        option_index: leaf.option_index.clone(),
        provider: String::new(),
        method: String::new(),
        url: String::new(),
        headers: serde_json::Map::new(),
        body: serde_json::Value::Null,
        dropped_params: Vec::new(),
        error: None,
    };
    let target = match leaf.target_for(request, options) {
        Ok(target) => target,
        Err(e) => {
            planned.provider = e.provider.clone().unwrap_or_default();
            planned.error = Some(e.to_openai_json());
            return planned;
        }
    };
    planned.provider = target.provider.slug().to_owned();
    // A dry run fetches nothing: show where a fetched credential would go.
    let placeholder = target.provider.credential_request(target).map(|_| "[fetched credential]");
    let input = crate::providers::BuildInput::for_leaf(request, target, &leaf.settings, options, now, placeholder);
    match target.provider.build_request(&input) {
        Ok(built) => {
            planned.method = built.method.to_string();
            planned.url = built.url;
            for (name, value) in &built.headers {
                let shown = if SECRET_HEADERS.contains(&name.as_str()) {
                    "[redacted]".to_owned()
                } else {
                    value.to_str().unwrap_or("[binary]").to_owned()
                };
                planned.headers.insert(name.as_str().to_owned(), shown.into());
            }
            planned.body =
                serde_json::from_slice(&built.body).unwrap_or_else(|_| serde_json::json!({"bytes": built.body.len()}));
            planned.dropped_params = built.dropped_params;
        }
        Err(e) => planned.error = Some(e.to_openai_json()),
    }
    planned
}
