//! Strategy evaluation: which children of a group are tried, and in what order.
//!
//! The engine walks the tree with [`select`] and asks [`target_for`] which provider a leaf
//! calls; the dry run uses [`plan`] to list the leaves that would be tried if every attempt
//! failed. Both share the same selection, so the dry run can never disagree with the real
//! routing.

use std::sync::Arc;

use crate::config::{Config, Group, Leaf, Node, Strategy, missing_provider_error};
use crate::error::{ErrorCode, GatewayError};
use crate::providers::ProviderTarget;
use crate::query::QueryContext;
use crate::request::GatewayRequest;
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

/// A weighted draw among the targets not in `excluded` (`None`: none is left).
pub fn draw_excluding(weights: &[f64], excluded: &[usize], rng: &dyn RandomSource) -> Option<usize> {
    let left: Vec<f64> =
        weights.iter().enumerate().map(|(i, w)| if excluded.contains(&i) { 0.0 } else { *w }).collect();
    let total: f64 = left.iter().sum();
    (total > 0.0).then(|| draw(&left, total, rng.next_f64()))
}

/// The first leaf of a config, as a walk with nothing failing would reach it first when
/// every draw is the first target (used to price a request before it is routed).
pub fn first_leaf(config: &Config) -> Option<&Leaf> {
    let mut node = config.root();
    loop {
        match node {
            Node::Leaf(leaf) => return Some(leaf),
            Node::Group(group) => node = group.targets.first()?,
        }
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

/// The provider `leaf` calls for `request`: its own (or inherited) one, else the request's
/// own provider; an error when there is none or it lacks the endpoint.
pub fn target_for<'a>(
    leaf: &'a Leaf,
    request: &GatewayRequest,
    request_provider: Option<&'a Arc<ProviderTarget>>,
) -> Result<&'a Arc<ProviderTarget>, GatewayError> {
    let target = leaf.provider.as_ref().or(request_provider).ok_or_else(|| missing_provider_error(leaf))?;
    let slug = target.provider.slug();
    if !crate::providers::offers(target.provider, request.endpoint) {
        return Err(GatewayError::new(
            ErrorCode::UnsupportedEndpoint,
            format!("{slug} does not support {}", request.path),
        )
        .with_provider(slug));
    }
    Ok(target)
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
