//! The gateway config: Portkey's config object, validated and compiled once.
//!
//! Loading has two phases. [`RawNode`] mirrors what users write; [`Config`] is the
//! compiled tree the router walks: inheritance resolved, queries and regexes compiled,
//! target names resolved to indices, option-index paths precomputed. Every error of
//! every phase names the JSON path of the bad field, and all of them are reported at
//! once.

mod casing;
mod compile;
mod raw;
mod schema;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

pub use casing::to_snake_case;
pub use raw::{RawCache, RawCondition, RawNode, RawRetry, RawStrategy};
pub use schema::CONFIG_SCHEMA;

use crate::error::{ConfigErrors, GatewayError};
use crate::providers::Provider;
use crate::query::Query;

/// A compiled, validated config.
#[derive(Debug, Clone)]
pub struct Config {
    root: Node,
}

/// A node of the compiled tree.
#[derive(Debug, Clone)]
pub enum Node {
    /// A strategy over child targets.
    Group(Group),
    /// One provider target.
    Leaf(Leaf),
}

/// A strategy group.
#[derive(Debug, Clone)]
pub struct Group {
    /// Option-index path (`config`, `config.targets[1]`).
    pub option_index: String,
    /// How the children are used.
    pub strategy: Strategy,
    /// The children, in config order.
    pub targets: Vec<Node>,
}

/// A compiled strategy.
#[derive(Debug, Clone)]
pub enum Strategy {
    /// Always the first target.
    Single,
    /// Targets in order until one answers acceptably.
    Fallback {
        /// Only these statuses move on; `None` means any non-2xx.
        on_status_codes: Option<Vec<u16>>,
    },
    /// One target drawn by weight.
    LoadBalance {
        /// Weight per target (same order as `targets`).
        weights: Vec<f64>,
        /// Sum of the weights (> 0).
        total: f64,
    },
    /// The first matching condition's target, else the default.
    Conditional {
        /// Compiled conditions, with the index of their target.
        conditions: Vec<Condition>,
        /// Index of the default target.
        default: Option<usize>,
    },
}

/// A compiled conditional rule.
#[derive(Debug, Clone)]
pub struct Condition {
    /// The compiled query.
    pub query: Query,
    /// Index of the target it routes to.
    pub target: usize,
}

/// A provider target with its effective (inherited) settings.
#[derive(Debug, Clone)]
pub struct Leaf {
    /// Option-index path of this leaf.
    pub option_index: String,
    /// JSON path of this leaf in the config (`targets[1]`, or `` for the root), used in
    /// errors found at request time.
    pub config_path: String,
    /// The provider, own or inherited; `None` means "the request's provider".
    pub provider: Option<Arc<ProviderTarget>>,
    /// Effective settings after inheritance.
    pub settings: Arc<TargetSettings>,
}

/// A provider and the credentials/options to call it with.
#[derive(Clone)]
pub struct ProviderTarget {
    /// The provider implementation.
    pub provider: &'static dyn Provider,
    /// `api_key` and the provider-specific fields (`resource_name`, `aws_region`, ...).
    pub options: Map<String, Value>,
}

impl std::fmt::Debug for ProviderTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print credentials.
        f.debug_struct("ProviderTarget")
            .field("provider", &self.provider.slug())
            .field("options", &self.options.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl ProviderTarget {
    /// Build from a slug and options; `None` when the slug is unknown.
    pub fn new(slug: &str, options: Map<String, Value>) -> Option<Self> {
        crate::providers::lookup(slug).map(|provider| Self { provider, options })
    }

    /// A string option (`api_key`, `resource_name`, ...), if set and non-empty.
    pub fn option(&self, key: &str) -> Option<&str> {
        self.options.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
    }
}

/// Settings that flow down the tree (see SPEC.md "Inheritance").
#[derive(Debug, Clone, Default)]
pub struct TargetSettings {
    /// Merged down the tree; child keys win; the result wins over the request body.
    pub override_params: Map<String, Value>,
    /// Retry policy (replaced, not merged, by a child's).
    pub retry: RetryPolicy,
    /// Response cache policy.
    pub cache: Option<CachePolicy>,
    /// Per-attempt timeout.
    pub request_timeout: Option<Duration>,
    /// Replaces the provider's base URL.
    pub custom_host: Option<String>,
    /// Caller headers copied to the upstream (lower-case).
    pub forward_headers: Vec<String>,
    /// Map finish reasons to OpenAI's values and drop provider extras.
    pub strict_open_ai_compliance: bool,
}

/// How a leaf retries.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RetryPolicy {
    /// Retries after the first try (0..=5).
    pub attempts: u8,
    /// Statuses that trigger a retry.
    pub on_status_codes: Vec<u16>,
    /// Honour `retry-after-ms` / `x-ms-retry-after-ms` / `retry-after` on 429 and 503.
    pub use_retry_after_header: bool,
}

/// The statuses retried when `retry.on_status_codes` is absent.
pub const DEFAULT_RETRY_STATUS_CODES: [u16; 5] = [429, 500, 502, 503, 504];

/// The largest `retry.attempts` accepted.
pub const MAX_RETRY_ATTEMPTS: u8 = 5;

/// Response cache settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CachePolicy {
    /// Entry lifetime.
    pub max_age: Duration,
}

/// Default cache lifetime: 24 h.
pub const DEFAULT_CACHE_MAX_AGE: Duration = Duration::from_secs(86_400);

impl Config {
    /// Parse, validate and compile a config given as JSON text.
    pub fn from_json_str(text: &str) -> Result<Self, ConfigErrors> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| ConfigErrors(vec![GatewayError::config("", format!("config is not valid JSON: {e}"))]))?;
        Self::from_json(&value)
    }

    /// Validate and compile a config. Every leaf must end up with a provider.
    pub fn from_json(value: &Value) -> Result<Self, ConfigErrors> {
        Self::load(value, true)
    }

    /// Like [`Config::from_json`], but leaves may lack a provider: the request supplies
    /// one (the server's `x-portkey-provider` header, a binding's `provider=`), which then
    /// acts as the outermost ancestor.
    pub fn from_json_with_request_provider(value: &Value) -> Result<Self, ConfigErrors> {
        Self::load(value, false)
    }

    fn load(value: &Value, require_providers: bool) -> Result<Self, ConfigErrors> {
        let compile = |normalized: &Value| {
            let raw = deserialize(normalized)?;
            compile::compile(&raw, require_providers).map(|root| Self { root })
        };
        let mut normalized = casing::normalize_keys(value.clone()).map_err(ConfigErrors)?;
        let Err(schema_errors) = schema::validate(&normalized) else {
            return compile(&normalized);
        };
        // Report every problem in one round: drop the fields the schema rejected, compile
        // what is left, and keep the compile errors that are not consequences of a drop.
        let mut pruned_paths = Vec::new();
        let mut errors = Vec::new();
        for e in schema_errors {
            schema::prune(&mut normalized, &e.pointer);
            pruned_paths.push(schema::pruned_path(&e.pointer));
            errors.push(e.error);
        }
        let later = match compile(&normalized) {
            Ok(_) => Vec::new(),
            Err(ConfigErrors(later)) => later,
        };
        for e in later {
            let path = e.param.as_deref().unwrap_or("");
            let consequence = pruned_paths.iter().any(|p| is_within(path, p.as_str()));
            if !consequence && !errors.iter().any(|x| x.param == e.param) {
                errors.push(e);
            }
        }
        Err(ConfigErrors(errors))
    }

    /// Compile an already deserialized raw config (every leaf must get a provider).
    pub fn compile(raw: &RawNode) -> Result<Self, ConfigErrors> {
        compile::compile(raw, true).map(|root| Self { root })
    }

    /// A config with a single leaf for `provider` (the `x-portkey-provider` header or a
    /// binding's `provider=` with no config).
    pub fn single(provider: ProviderTarget) -> Self {
        Self {
            root: Node::Leaf(Leaf {
                option_index: "config".to_owned(),
                config_path: String::new(),
                provider: Some(Arc::new(provider)),
                settings: Arc::new(TargetSettings { strict_open_ai_compliance: true, ..TargetSettings::default() }),
            }),
        }
    }

    /// The root node.
    pub fn root(&self) -> &Node {
        &self.root
    }

    /// Whether a conditional query anywhere in the tree reads `params.*` (the request
    /// body): if none does, routing never needs the parsed body.
    pub fn reads_params(&self) -> bool {
        fn reads(node: &Node) -> bool {
            let Node::Group(group) = node else { return false };
            let own = match &group.strategy {
                Strategy::Conditional { conditions, .. } => conditions.iter().any(|c| c.query.reads_params()),
                _ => false,
            };
            own || group.targets.iter().any(reads)
        }
        reads(&self.root)
    }

    /// Errors for every leaf that has no provider of its own or inherited.
    pub fn leaves_without_provider(&self) -> Vec<GatewayError> {
        let mut out = Vec::new();
        visit_leaves(&self.root, &mut |leaf| {
            if leaf.provider.is_none() {
                out.push(missing_provider_error(leaf));
            }
        });
        out
    }

    /// Whether any leaf caches answers.
    pub fn uses_cache(&self) -> bool {
        let mut any = false;
        visit_leaves(&self.root, &mut |leaf| any |= leaf.settings.cache.is_some());
        any
    }
}

fn deserialize(normalized: &Value) -> Result<RawNode, ConfigErrors> {
    serde_path_to_error::deserialize(normalized).map_err(|e| {
        let path = e.path().to_string();
        ConfigErrors(vec![GatewayError::config(
            if path == "." { String::new() } else { path },
            e.into_inner().to_string(),
        )])
    })
}

/// Whether `path` is `prefix` or below it (`targets[1].retry` is within `targets[1]`).
fn is_within(path: &str, prefix: &str) -> bool {
    prefix.is_empty()
        || path == prefix
        || path.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
}

impl Leaf {
    /// The provider this leaf calls for `request`: its own (or inherited) one, else the
    /// request's; an error when there is none or it lacks the endpoint.
    pub fn target_for<'a>(
        &'a self,
        request: &crate::GatewayRequest,
        options: &'a crate::RequestOptions,
    ) -> Result<&'a Arc<ProviderTarget>, GatewayError> {
        let target =
            self.provider.as_ref().or(options.provider.as_ref()).ok_or_else(|| missing_provider_error(self))?;
        let slug = target.provider.slug();
        if !target.provider.supports(request.endpoint) {
            return Err(GatewayError::new(
                crate::ErrorCode::UnsupportedEndpoint,
                format!("{slug} does not support {}", request.path),
            )
            .with_provider(slug));
        }
        Ok(target)
    }
}

/// The error for a leaf that reaches request time without a provider.
pub fn missing_provider_error(leaf: &Leaf) -> GatewayError {
    let path =
        if leaf.config_path.is_empty() { "provider".to_owned() } else { format!("{}.provider", leaf.config_path) };
    GatewayError::config(
        path,
        "no provider: set `provider` on this target or an ancestor, or send one with the request",
    )
}

fn visit_leaves<'a>(node: &'a Node, f: &mut dyn FnMut(&'a Leaf)) {
    match node {
        Node::Leaf(leaf) => f(leaf),
        Node::Group(group) => group.targets.iter().for_each(|t| visit_leaves(t, f)),
    }
}

impl Node {
    /// Option-index path of this node.
    pub fn option_index(&self) -> &str {
        match self {
            Node::Group(g) => &g.option_index,
            Node::Leaf(l) => &l.option_index,
        }
    }
}
