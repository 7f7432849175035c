//! The dry run (`gatewise route`, the bindings' `route()`): the targets a request would
//! try, in order, with the upstream request each would receive. Nothing is sent; the
//! selection and the request building are the engine's own, so a plan never disagrees
//! with what the engine does.

use super::{RequestOptions, build_input};
use crate::config::{Config, Leaf};
use crate::error::GatewayError;
use crate::query::QueryContext;
use crate::request::{GatewayRequest, validate_body};
use crate::rng::RandomSource;
use crate::router;

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
    request: &GatewayRequest,
    options: &RequestOptions,
    rng: &dyn RandomSource,
    now: std::time::SystemTime,
) -> Result<Vec<PlannedAttempt>, GatewayError> {
    validate_body(request.endpoint, &request.body)?;
    static NULL: serde_json::Value = serde_json::Value::Null;
    let ctx = QueryContext {
        metadata: &options.metadata,
        params: request.body.value().unwrap_or(&NULL),
        pathname: &request.path,
    };
    let leaves = router::plan(config, &ctx, rng)?;
    Ok(leaves.into_iter().map(|leaf| plan_leaf(leaf, request, options, now)).collect())
}

fn plan_leaf(
    leaf: &Leaf,
    request: &GatewayRequest,
    options: &RequestOptions,
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
    let target = match router::target_for(leaf, request, options.provider.as_ref()) {
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
    let input = build_input(request, target, &leaf.settings, options, now, placeholder);
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
                crate::json::from_slice(&built.body).unwrap_or_else(|_| serde_json::json!({"bytes": built.body.len()}));
            planned.dropped_params = built.dropped_params;
        }
        Err(e) => planned.error = Some(e.to_openai_json()),
    }
    planned
}
