//! Raw config → compiled tree: inheritance, semantic checks, query compilation.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use super::entries::RegistryNames;
use super::raw::{RawCondition, RawNode, RawStrategy};
use super::{Condition, Group, Invalid, Leaf, Node, Strategy};
use crate::error::GatewayError;
use crate::json_path::JsonPath;
use crate::providers::ProviderTarget;
use crate::query::Query;
use crate::settings::{CachePolicy, DEFAULT_CACHE_MAX_AGE, DEFAULT_RETRY_STATUS_CODES, RetryPolicy, TargetSettings};

/// What a node passes to its children.
#[derive(Clone)]
struct Inherited {
    provider: Option<Arc<ProviderTarget>>,
    settings: TargetSettings,
}

/// Compile the tree, and list the leaves that end up with no provider of their own or
/// inherited (fine when the request will supply one, an error otherwise).
pub(super) fn compile(raw: &RawNode, entries: &RegistryNames) -> Result<(Node, Vec<GatewayError>), Invalid> {
    let mut errors = Vec::new();
    let mut missing_providers = Vec::new();
    let root = Inherited {
        provider: None,
        settings: TargetSettings { strict_open_ai_compliance: true, ..TargetSettings::default() },
    };
    let mut cx = Cx { errors: &mut errors, missing_providers: &mut missing_providers, entries };
    let node = compile_node(raw, &JsonPath::root(), "config".to_owned(), &root, &mut cx);
    match node {
        Some(node) if errors.is_empty() => Ok((node, missing_providers)),
        _ => Err(Invalid { errors, missing_providers }),
    }
}

struct Cx<'e> {
    errors: &'e mut Vec<GatewayError>,
    missing_providers: &'e mut Vec<GatewayError>,
    /// The registry's provider entries (`virtual_key`, `provider: "@slug"`) and guardrails.
    entries: &'e RegistryNames,
}

fn compile_node(
    raw: &RawNode,
    at: &JsonPath,
    option_index: String,
    parent: &Inherited,
    cx: &mut Cx<'_>,
) -> Option<Node> {
    let errors = &mut *cx.errors;
    reject_unsupported(raw, at, errors);
    let inherited = inherit(raw, at, parent, cx.entries, errors);
    match (&raw.strategy, &raw.targets) {
        (Some(strategy), Some(targets)) => {
            let children: Vec<Option<Node>> = targets
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    let path = at.key("targets").index(i);
                    compile_node(t, &path, format!("{option_index}.targets[{i}]"), &inherited, cx)
                })
                .collect();
            let strategy = compile_strategy(strategy, targets, at, cx.errors);
            let children: Option<Vec<Node>> = children.into_iter().collect();
            Some(Node::Group(Group { option_index, strategy: strategy?, targets: children? }))
        }
        (Some(_), None) => {
            cx.errors.push(GatewayError::config(at.key("targets").as_str(), "a strategy needs `targets`"));
            None
        }
        (None, Some(_)) => {
            cx.errors.push(GatewayError::config(
                at.key("strategy").as_str(),
                "`targets` need a `strategy` (mode single, fallback, loadbalance or conditional)",
            ));
            None
        }
        (None, None) => {
            let leaf = Leaf {
                option_index,
                config_path: at.as_str().to_owned(),
                provider: inherited.provider,
                settings: Arc::new(inherited.settings),
            };
            // An unknown slug or entry was reported already; don't add "no provider" on top.
            if leaf.provider.is_none() && raw.provider.is_none() && raw.virtual_key.is_none() {
                cx.missing_providers.push(super::missing_provider_error(&leaf));
            }
            Some(Node::Leaf(leaf))
        }
    }
}

/// Fields Portkey accepts that we refuse rather than silently ignore.
fn reject_unsupported(raw: &RawNode, at: &JsonPath, errors: &mut Vec<GatewayError>) {
    let mutators = [("input_mutators", &raw.input_mutators), ("output_mutators", &raw.output_mutators)];
    for (key, value) in mutators {
        if value.is_some() {
            errors.push(GatewayError::config(
                at.key(key).as_str(),
                "mutators are not supported; a guardrail with `default.pii` and `redact: true` rewrites requests",
            ));
        }
    }
}

/// This node's effective settings: the parent's, overridden by what the node sets.
fn inherit(
    raw: &RawNode,
    at: &JsonPath,
    parent: &Inherited,
    names: &RegistryNames,
    errors: &mut Vec<GatewayError>,
) -> Inherited {
    let entries = &names.providers;
    let mut out = parent.clone();
    let s = &mut out.settings;
    let fields = [&raw.before_request_hooks, &raw.after_request_hooks, &raw.input_guardrails, &raw.output_guardrails]
        .map(Option::as_ref);
    let hooks = crate::hooks::node_hooks(fields, at, &names.guardrails, errors);
    if let Some(before) = hooks.before {
        s.hooks.before = before;
    }
    if let Some(after) = hooks.after {
        s.hooks.after = after;
    }
    if let Some(params) = &raw.override_params {
        for (k, v) in params {
            s.override_params.insert(k.clone(), v.clone());
        }
    }
    if let Some(retry) = &raw.retry {
        let on_status_codes = match (&retry.on_status_codes, retry.attempts) {
            (_, 0) => Vec::new(),
            (Some(codes), _) => codes.clone(),
            (None, _) => DEFAULT_RETRY_STATUS_CODES.to_vec(),
        };
        s.retry = RetryPolicy {
            attempts: retry.attempts,
            on_status_codes,
            use_retry_after_header: retry.use_retry_after_header.unwrap_or(false),
        };
    }
    if let Some(cache) = &raw.cache {
        if cache.mode == "semantic" {
            errors.push(GatewayError::config(
                at.key("cache").key("mode").as_str(),
                "semantic cache is not supported yet; use `simple`",
            ));
        }
        s.cache =
            Some(CachePolicy { max_age: cache.max_age.map(Duration::from_secs).unwrap_or(DEFAULT_CACHE_MAX_AGE) });
    }
    if let Some(ms) = raw.request_timeout.filter(|ms| *ms > 0) {
        s.request_timeout = Some(Duration::from_millis(ms));
    }
    if let Some(host) = &raw.custom_host {
        match check_custom_host(host) {
            Ok(()) => s.custom_host = Some(host.trim_end_matches('/').to_owned()),
            Err(msg) => errors.push(GatewayError::config(at.key("custom_host").as_str(), msg)),
        }
    }
    if let Some(headers) = &raw.forward_headers {
        s.forward_headers = headers.iter().map(|h| h.to_ascii_lowercase()).collect();
        if s.forward_headers.iter().any(|h| h == "x-portkey-forward-headers") {
            errors.push(GatewayError::config(
                at.key("forward_headers").as_str(),
                "forward_headers must not contain `x-portkey-forward-headers`",
            ));
        }
    }
    if let Some(strict) = raw.strict_open_ai_compliance {
        s.strict_open_ai_compliance = strict;
    }
    if let Some(cb_config) = raw.strategy.as_ref().and_then(|strategy| strategy.cb_config.as_ref()) {
        let at = at.key("strategy").key("cb_config");
        s.circuit = crate::state::CircuitPolicy::parse(cb_config, &at, errors).map(Arc::new);
    }
    if let Some((slug, param)) = registry_reference(raw, at, errors) {
        match entries.get(slug) {
            Some(entry) => {
                // The entry's host and parameters are defaults; a host set around it is
                // checked against the entry's when the request is made.
                if s.custom_host.is_none() {
                    s.custom_host = entry.custom_host().map(str::to_owned);
                }
                for (k, v) in &entry.override_params {
                    s.override_params.entry(k.clone()).or_insert_with(|| v.clone());
                }
                if raw.api_key.is_some() || !raw.provider_options.is_empty() {
                    errors.push(GatewayError::config(
                        at.as_str(),
                        format!("`{slug}` is a registry entry: its credentials and fields are set in the registry"),
                    ));
                }
                out.provider = Some(entry.target.clone());
            }
            None => errors.push(super::entries::unknown_entry(slug, entries, param.as_str())),
        }
        return out;
    }
    if let Some(held) = parent.provider.as_ref().and_then(|p| p.held.as_ref()).filter(|h| h.entry.is_some())
        && (raw.api_key.is_some() || !raw.provider_options.is_empty())
    {
        let slug = held.entry.as_deref().unwrap_or_default();
        errors.push(GatewayError::config(
            at.as_str(),
            format!("`{slug}` is a registry entry: its credentials and fields are set in the registry"),
        ));
        return out;
    }
    out.provider = inherit_provider(raw, at, parent.provider.as_deref(), errors).or(out.provider);
    out
}

/// The registry entry a node names (`virtual_key: "slug"` or `provider: "@slug"`), with
/// the path of the field that names it.
fn registry_reference<'r>(
    raw: &'r RawNode,
    at: &JsonPath,
    errors: &mut Vec<GatewayError>,
) -> Option<(&'r str, JsonPath)> {
    let by_provider = raw.provider.as_deref().and_then(|p| p.strip_prefix('@'));
    match (raw.virtual_key.as_deref(), by_provider) {
        (Some(_), Some(_)) => {
            errors.push(GatewayError::config(
                at.as_str(),
                "name a registry entry once: `virtual_key` or `provider: \"@slug\"`",
            ));
            None
        }
        (Some(slug), None) if raw.provider.is_some() => {
            errors.push(GatewayError::config(
                at.key("provider").as_str(),
                format!("`virtual_key: {slug}` brings its provider; remove `provider`"),
            ));
            None
        }
        (Some(slug), None) => Some((slug, at.key("virtual_key"))),
        (None, Some(slug)) => Some((slug, at.key("provider"))),
        (None, None) => None,
    }
}

/// A node with `provider` starts a new provider target; a node with only credential
/// fields refines the inherited one (its fields win).
fn inherit_provider(
    raw: &RawNode,
    at: &JsonPath,
    parent: Option<&ProviderTarget>,
    errors: &mut Vec<GatewayError>,
) -> Option<Arc<ProviderTarget>> {
    let mut own = raw.provider_options.clone();
    if let Some(key) = &raw.api_key {
        own.insert("api_key".to_owned(), Value::String(key.clone()));
    }
    match (&raw.provider, parent) {
        (Some(slug), _) => match ProviderTarget::new(slug, own) {
            Some(target) => Some(Arc::new(target)),
            None => {
                errors.push(GatewayError::config(
                    at.key("provider").as_str(),
                    format!("unknown provider `{slug}` (known: {})", crate::providers::slugs().join(", ")),
                ));
                None
            }
        },
        (None, Some(parent)) if !own.is_empty() => {
            let mut options: Map<String, Value> = parent.options.clone();
            options.extend(own);
            Some(Arc::new(ProviderTarget { provider: parent.provider, options, held: parent.held.clone() }))
        }
        _ => None,
    }
}

fn check_custom_host(host: &str) -> Result<(), String> {
    let uri: http::Uri = host.parse().map_err(|e| format!("custom_host is not a URL: {e}"))?;
    match (uri.scheme_str(), uri.authority()) {
        (Some("http" | "https"), Some(_)) => Ok(()),
        _ => Err("custom_host must be an absolute http:// or https:// URL".to_owned()),
    }
}

fn compile_strategy(
    raw: &RawStrategy,
    targets: &[RawNode],
    at: &JsonPath,
    errors: &mut Vec<GatewayError>,
) -> Option<Strategy> {
    let at_strategy = at.key("strategy");
    match raw.mode.as_str() {
        "single" => Some(Strategy::Single),
        "fallback" => Some(Strategy::Fallback { on_status_codes: raw.on_status_codes.clone() }),
        "loadbalance" => {
            let weights: Vec<f64> = targets.iter().map(|t| t.weight.unwrap_or(1.0)).collect();
            let total: f64 = weights.iter().sum();
            if total > 0.0 && total.is_finite() {
                Some(Strategy::LoadBalance { weights, total })
            } else {
                errors.push(GatewayError::config(
                    at.key("targets").as_str(),
                    "every loadbalance weight is 0: no target could ever be chosen",
                ));
                None
            }
        }
        "conditional" => compile_conditional(raw, targets, at, errors),
        other => {
            errors.push(GatewayError::config(at_strategy.key("mode").as_str(), format!("unknown mode `{other}`")));
            None
        }
    }
}

fn compile_conditional(
    raw: &RawStrategy,
    targets: &[RawNode],
    at: &JsonPath,
    errors: &mut Vec<GatewayError>,
) -> Option<Strategy> {
    let at_targets = at.key("targets");
    let at = &at.key("strategy");
    let mut ok = true;
    // Names must be unique, or `then` would be ambiguous.
    for (i, t) in targets.iter().enumerate() {
        if let Some(name) = t.name.as_ref().filter(|n| targets[..i].iter().any(|p| p.name.as_ref() == Some(*n))) {
            ok = false;
            errors.push(GatewayError::config(
                at_targets.index(i).key("name").as_str(),
                format!("duplicate target name `{name}`"),
            ));
        }
    }
    let find = |name: &str| targets.iter().position(|t| t.name.as_deref() == Some(name));
    let Some(raw_conditions) = raw.conditions.as_ref().filter(|c| !c.is_empty()) else {
        errors.push(GatewayError::config(
            at.key("conditions").as_str(),
            "conditional mode needs a non-empty `conditions` array",
        ));
        return None;
    };
    let mut conditions = Vec::with_capacity(raw_conditions.len());
    for (i, RawCondition { query, then }) in raw_conditions.iter().enumerate() {
        let at_cond = at.key("conditions").index(i);
        let query = Query::compile_at(query, &at_cond.key("query"));
        let target = find(then);
        if target.is_none() {
            errors.push(GatewayError::config(at_cond.key("then").as_str(), format!("no target is named `{then}`")));
        }
        match (query, target) {
            (Ok(query), Some(target)) => conditions.push(Condition { query, target }),
            (Err(e), _) => {
                ok = false;
                errors.push(e);
            }
            _ => ok = false,
        }
    }
    let default = match &raw.default {
        Some(name) => match find(name) {
            Some(i) => Some(i),
            None => {
                ok = false;
                errors.push(GatewayError::config(at.key("default").as_str(), format!("no target is named `{name}`")));
                None
            }
        },
        None => None,
    };
    ok.then_some(Strategy::Conditional { conditions, default })
}
