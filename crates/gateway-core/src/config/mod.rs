//! The gateway config: Portkey's config object, validated and compiled once.
//!
//! Loading has two phases. [`RawNode`] mirrors what users write; [`Config`] is the
//! compiled tree the router walks: inheritance resolved, queries and regexes compiled,
//! target names resolved to indices, option-index paths precomputed. Every error of
//! every phase names the JSON path of the bad field, and all of them are reported at
//! once.

mod casing;
mod compile;
mod entries;
mod limits;
mod raw;
mod schema;

use serde_json::Value;
use std::sync::Arc;

pub use crate::query::{MAX_REGEX_LEN, REGEX_SIZE_LIMIT};
pub use casing::to_snake_case;
pub use entries::{ProviderEntry, Providers, RegistryNames, unknown_entry};
pub use limits::{MAX_CONDITIONS, MAX_HOOK_CHECKS, MAX_NESTING, MAX_REGEXES, MAX_TARGETS};
pub use raw::{RawCache, RawCondition, RawNode, RawRetry, RawStrategy};
pub use schema::CONFIG_SCHEMA;

use crate::error::{ConfigErrors, GatewayError};
use crate::providers::ProviderTarget;
use crate::query::Query;
use crate::settings::TargetSettings;

/// A compiled, validated config.
#[derive(Debug, Clone)]
pub struct Config {
    root: Node,
    /// One error per leaf with no provider of its own or inherited (empty for most
    /// configs): fine when the request brings a provider, an error otherwise.
    missing_providers: Vec<GatewayError>,
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

impl Config {
    /// Parse, validate and compile a config given as JSON text (every leaf must have a
    /// provider, as with [`Config::from_json`]).
    pub fn from_json_str(text: &str) -> Result<Self, ConfigErrors> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| ConfigErrors(vec![GatewayError::config("", format!("config is not valid JSON: {e}"))]))?;
        Self::from_json(&value)
    }

    /// Validate and compile a config that must stand alone: every leaf must end up with a
    /// provider. All errors are reported at once, missing providers included.
    pub fn from_json(value: &Value) -> Result<Self, ConfigErrors> {
        match Self::load(value) {
            Ok(config) => config.standing_alone(),
            Err(invalid) => Err(invalid.reported(false)),
        }
    }

    /// Validate and compile a config once, for every use: leaves may leave the provider to
    /// the request (the server's `x-portkey-provider`, a binding's `provider=`), which then
    /// acts as the outermost ancestor. Where no request provider will come, check with
    /// [`Config::require_providers`].
    pub fn load(value: &Value) -> Result<Self, Invalid> {
        Self::load_with(value, &RegistryNames::default())
    }

    /// [`Config::load`], where targets may name the registry's provider entries
    /// (`virtual_key: "slug"`, `provider: "@slug"`) and hooks its guardrails.
    pub fn load_with(value: &Value, entries: &RegistryNames) -> Result<Self, Invalid> {
        let over_limits = limits::check(value);
        if !over_limits.is_empty() {
            return Err(Invalid { errors: over_limits, missing_providers: Vec::new() });
        }
        let compile = |normalized: &Value| {
            let raw = deserialize(normalized).map_err(|e| Invalid { errors: e.0, missing_providers: Vec::new() })?;
            compile::compile(&raw, entries).map(|(root, missing_providers)| Self { root, missing_providers })
        };
        let mut normalized = casing::normalize_keys(value.clone())
            .map_err(|errors| Invalid { errors, missing_providers: Vec::new() })?;
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
        let (later, missing) = match compile(&normalized) {
            Ok(config) => (Vec::new(), config.missing_providers),
            Err(Invalid { errors, missing_providers }) => (errors, missing_providers),
        };
        let independent = |e: &GatewayError, errors: &[GatewayError]| {
            let path = e.param.as_deref().unwrap_or("");
            !pruned_paths.iter().any(|p| is_within(path, p.as_str())) && !errors.iter().any(|x| x.param == e.param)
        };
        for e in later {
            if independent(&e, &errors) {
                errors.push(e);
            }
        }
        let missing_providers = missing.into_iter().filter(|e| independent(e, &errors)).collect();
        Err(Invalid { errors, missing_providers })
    }

    /// Compile an already deserialized raw config (every leaf must get a provider).
    pub fn compile(raw: &RawNode) -> Result<Self, ConfigErrors> {
        let config = compile::compile(raw, &RegistryNames::default())
            .map(|(root, missing_providers)| Self { root, missing_providers })
            .map_err(|invalid| invalid.reported(false))?;
        config.standing_alone()
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
            missing_providers: Vec::new(),
        }
    }

    /// A config with a single leaf for a registry entry's target, its `override_params`
    /// applied (a request that names an entry, `@slug` or a virtual key, with no config).
    pub fn single_entry(target: Arc<ProviderTarget>, override_params: serde_json::Map<String, Value>) -> Self {
        let settings = TargetSettings {
            strict_open_ai_compliance: true,
            override_params,
            custom_host: target.held.as_ref().and_then(|h| h.home.clone()),
            ..TargetSettings::default()
        };
        Self {
            root: Node::Leaf(Leaf {
                option_index: "config".to_owned(),
                config_path: String::new(),
                provider: Some(target),
                settings: Arc::new(settings),
            }),
            missing_providers: Vec::new(),
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

    /// Every leaf has a provider of its own or inherited; else an `invalid_config` error
    /// listing each leaf that has none (for a config used without a request provider).
    pub fn require_providers(&self) -> Result<(), GatewayError> {
        if self.missing_providers.is_empty() {
            return Ok(());
        }
        Err(ConfigErrors(self.missing_providers.clone()).into())
    }

    /// This config if every leaf has a provider, else one error per leaf without.
    fn standing_alone(self) -> Result<Self, ConfigErrors> {
        if self.missing_providers.is_empty() { Ok(self) } else { Err(ConfigErrors(self.missing_providers)) }
    }

    /// The same config, its credentials marked as the server's own: whoever runs the
    /// gateway wrote it (a default config, a config directory), so each leaf's keys are sent
    /// only to the host that leaf names, never to one a request chooses.
    pub fn server_held(mut self) -> Self {
        fn mark(node: &mut Node) {
            match node {
                Node::Leaf(leaf) => {
                    if let Some(target) = &mut leaf.provider {
                        let target = Arc::make_mut(target);
                        let mut held = target.held.as_deref().cloned().unwrap_or_default();
                        held.home.clone_from(&leaf.settings.custom_host);
                        target.held = Some(Arc::new(held));
                    }
                }
                Node::Group(group) => group.targets.iter_mut().for_each(mark),
            }
        }
        mark(&mut self.root);
        self
    }

    /// Whether any leaf names its own provider (rather than leaving it to the request).
    pub fn names_providers(&self) -> bool {
        let mut any = false;
        visit_leaves(&self.root, &mut |leaf| any |= leaf.provider.is_some());
        any
    }

    /// The registry entries the leaves name (`virtual_key`, `@slug`), each once.
    pub fn entries(&self) -> Vec<&str> {
        let mut entries: Vec<&str> = Vec::new();
        visit_leaves(&self.root, &mut |leaf| {
            let entry = leaf.provider.as_ref().and_then(|p| p.held.as_ref()).and_then(|h| h.entry.as_deref());
            if let Some(entry) = entry.filter(|e| !entries.contains(e)) {
                entries.push(entry);
            }
        });
        entries
    }

    /// Whether any leaf caches answers.
    pub fn uses_cache(&self) -> bool {
        let mut any = false;
        visit_leaves(&self.root, &mut |leaf| any |= leaf.settings.cache.is_some());
        any
    }
}

/// A config that did not compile: its errors, and apart from them the leaves that have no
/// provider (an error only where no request provider fills them).
#[derive(Debug, Clone)]
pub struct Invalid {
    errors: Vec<GatewayError>,
    missing_providers: Vec<GatewayError>,
}

impl Invalid {
    /// Every error to report: with `request_provider` (the request brings a provider),
    /// leaves without one are not errors.
    pub fn reported(self, request_provider: bool) -> ConfigErrors {
        let mut errors = self.errors;
        if !request_provider {
            errors.extend(self.missing_providers);
        }
        ConfigErrors(errors)
    }
}

fn deserialize(normalized: &Value) -> Result<RawNode, ConfigErrors> {
    serde_path_to_error::deserialize(normalized).map_err(|e| {
        let path = e.path().to_string();
        let secret =
            e.path().iter().any(|s| matches!(s, serde_path_to_error::Segment::Map { key } if is_secret_field(key)));
        // serde's messages quote the value (`invalid type: string "sk-..."`): not a secret's.
        let message = if secret { "invalid value for a secret field".to_owned() } else { e.into_inner().to_string() };
        ConfigErrors(vec![GatewayError::config(if path == "." { String::new() } else { path }, message)])
    })
}

/// Whether a config field holds a secret (`api_key`, `aws_secret_access_key`,
/// `azure_ad_token`, `vertex_service_account_json`, ...): errors never quote its value.
pub fn is_secret_field(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["key", "secret", "token", "password", "credential", "service_account", "authorization"]
        .iter()
        .any(|word| name.contains(word))
        // Names and ids, not secrets.
        && !matches!(name.as_str(), "aws_access_key_id" | "aws_s3_object_key")
}

/// Whether any segment of a JSON pointer (`/targets/0/api_key/0`) names a secret field.
fn is_secret_path(pointer: &str) -> bool {
    pointer.split('/').any(is_secret_field)
}

/// Whether `path` is `prefix` or below it (`targets[1].retry` is within `targets[1]`).
fn is_within(path: &str, prefix: &str) -> bool {
    prefix.is_empty()
        || path == prefix
        || path.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
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
