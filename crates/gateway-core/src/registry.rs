//! The registry: what the operator names so that callers never hold a secret.
//!
//! - `providers`: slug → a provider, its credentials and fields, an optional home
//!   `custom_host`, `override_params` defaults and a `models` allow-list. Requests and
//!   configs name an entry as `virtual_key: "slug"`, `provider: "@slug"` or a model
//!   `"@slug/model"`; its credentials are held by the server ([`Held`]): they go only to
//!   the entry's host, and only for the models it allows.
//! - `configs`: id → a config (the usual schema), usable wherever a config name is.
//! - `keys`: gateway keys, stored as SHA-256 hashes, each with a name and a scope.
//! - `guardrails`: id → a guardrail hook ([`crate::hooks`]) configs name by id.
//! - `prompts`: id → a chat request whose message texts are Mustache templates, and where
//!   it runs ([`crate::prompts`]); `partials`: name → a template prompts include.
//!
//! Pure: the text is parsed and `${VAR}`s are filled by the caller (gateway-http reads the
//! file, JSON or YAML, and the environment); this module validates and compiles, reporting
//! every error with its path at once.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::config::Config;
pub use crate::config::{ProviderEntry, Providers, RegistryNames, unknown_entry};
use crate::error::{ConfigErrors, GatewayError};
use crate::json_path::JsonPath;
use crate::pricing::{ModelPrices, Price};
use crate::prompts::{Partials, Prompt};
use crate::providers::{Held, ProviderTarget};
use crate::state::{LimitScope, UsageLimits};

/// The registry JSON Schema, as published (`gatewise schema --registry`). The checks in
/// [`Registry::load`] are what decide; a test keeps the two in agreement on the examples.
pub const REGISTRY_SCHEMA: &str = include_str!("registry.schema.json");

/// A gateway key: who is calling, and what they may use.
#[derive(Debug, Clone)]
pub struct GatewayKey {
    /// The key's name (logged and used by routing; the key itself never is).
    pub name: String,
    hash: [u8; 32],
    /// Provider slugs the key may use (`None`: any).
    pub providers: Option<Vec<String>>,
    /// Config ids the key may use (`None`: any).
    pub configs: Option<Vec<String>>,
    /// Models the key may ask for (`None`: any).
    pub models: Option<Vec<String>>,
    /// Metadata every request with this key carries (the request's own wins).
    pub metadata: Map<String, Value>,
    /// The config id used when a request brings none.
    pub config: Option<String>,
    /// The key's own rate limits and budgets (all its requests together).
    pub limits: Option<crate::state::LimitScope>,
    /// Limits each value of a metadata field gets within the key (`_user` → per user).
    pub limits_by_metadata: Vec<(String, UsageLimits)>,
}

impl GatewayKey {
    /// The limits a request with this key and `metadata` is held to.
    pub fn limit_scopes(&self, metadata: &Map<String, Value>) -> Vec<crate::state::LimitScope> {
        let mut scopes: Vec<_> = self.limits.iter().cloned().collect();
        scopes.extend(crate::state::metadata_scopes(&self.name, &self.limits_by_metadata, metadata));
        scopes
    }
}

/// The registry's sections.
const SECTIONS: &[&str] = &["providers", "configs", "keys", "guardrails", "prompts", "partials"];

/// A validated, compiled registry.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    /// Provider entries and guardrails: what configs name.
    names: RegistryNames,
    configs: HashMap<String, Arc<Config>>,
    keys: Vec<GatewayKey>,
    prompts: HashMap<String, Arc<Prompt>>,
    partials: Arc<Partials>,
}

impl Registry {
    /// Validate and compile a registry (after `${VAR}` interpolation). Every error is
    /// reported at once, each with its path from the registry's root.
    pub fn load(value: &Value) -> Result<Self, ConfigErrors> {
        let mut errors = Vec::new();
        let Value::Object(root) = value else {
            return Err(ConfigErrors(vec![GatewayError::config("", "a registry must be a JSON object")]));
        };
        for key in root.keys() {
            if !SECTIONS.contains(&key.as_str()) {
                errors.push(GatewayError::config(
                    JsonPath::root().key(key).as_str(),
                    format!("unknown registry section (expected {})", SECTIONS.join(", ")),
                ));
            }
        }
        let section = |name: &str, errors: &mut Vec<GatewayError>| -> Map<String, Value> {
            match root.get(name) {
                None => Map::new(),
                Some(Value::Object(map)) => map.clone(),
                Some(_) => {
                    errors.push(GatewayError::config(name, format!("`{name}` must be an object")));
                    Map::new()
                }
            }
        };
        let mut providers = HashMap::new();
        for (slug, entry) in section("providers", &mut errors) {
            let at = JsonPath::root().key("providers").key(&slug);
            match provider_entry(&slug, &entry, &at) {
                Ok(entry) => {
                    providers.insert(slug, entry);
                }
                Err(e) => errors.extend(e),
            }
        }
        let providers = Providers(providers);
        let guardrails =
            crate::hooks::load_guardrails(&section("guardrails", &mut errors), &JsonPath::root().key("guardrails"))
                .unwrap_or_else(|e| {
                    errors.extend(e);
                    Default::default()
                });
        let names = RegistryNames { providers, guardrails };
        let providers = &names.providers;
        let mut configs = HashMap::new();
        for (id, config) in section("configs", &mut errors) {
            let at = JsonPath::root().key("configs").key(&id);
            match Config::load_with(&config, &names) {
                Ok(config) => match config.require_providers() {
                    Ok(()) => {
                        configs.insert(id, Arc::new(config.server_held()));
                    }
                    Err(e) => errors.extend(
                        e.errors.iter().map(|f| GatewayError::config(at.join(&f.path).as_str(), f.message.clone())),
                    ),
                },
                Err(invalid) => errors.extend(invalid.reported(false).0.into_iter().map(|e| e.within(&at))),
            }
        }
        let mut keys = Vec::new();
        for (name, key) in section("keys", &mut errors) {
            let at = JsonPath::root().key("keys").key(&name);
            match gateway_key(&name, &key, &at, providers, &configs) {
                Ok(key) => keys.push(key),
                Err(e) => errors.extend(e),
            }
        }
        let partials =
            match crate::prompts::load_partials(&section("partials", &mut errors), &JsonPath::root().key("partials")) {
                Ok(partials) => partials,
                Err(e) => {
                    errors.extend(e);
                    Partials::new()
                }
            };
        let mut prompts = HashMap::new();
        for (id, entry) in section("prompts", &mut errors) {
            let at = JsonPath::root().key("prompts").key(&id);
            match Prompt::load(&id, &entry, &at, &partials) {
                Ok(prompt) => {
                    if let Some(slug) = prompt.route.provider.as_deref().filter(|s| providers.get(s).is_none()) {
                        let field = if entry.get("virtual_key").is_some() { "virtual_key" } else { "provider" };
                        errors.push(unknown_entry(slug, providers, at.key(field).as_str()));
                    }
                    if let Some(config) = prompt.route.config.as_deref().filter(|c| !configs.contains_key(*c)) {
                        errors.push(GatewayError::config(
                            at.key("config").as_str(),
                            format!("no config `{config}` in `configs`"),
                        ));
                    }
                    prompts.insert(id, Arc::new(prompt));
                }
                Err(e) => errors.extend(e),
            }
        }
        if errors.is_empty() {
            Ok(Self { names, configs, keys, prompts, partials: Arc::new(partials) })
        } else {
            Err(ConfigErrors(errors))
        }
    }

    /// The prompt with this id.
    pub fn prompt(&self, id: &str) -> Option<&Arc<Prompt>> {
        self.prompts.get(id)
    }

    /// The partials prompts include.
    pub fn partials(&self) -> &Partials {
        &self.partials
    }

    /// The provider entries.
    pub fn providers(&self) -> &Providers {
        &self.names.providers
    }

    /// What configs may name: provider entries and guardrails (for [`Config::load_with`]).
    pub fn names(&self) -> &RegistryNames {
        &self.names
    }

    /// The config with this id.
    pub fn config(&self, id: &str) -> Option<&Arc<Config>> {
        self.configs.get(id)
    }

    /// Whether requests must bring a gateway key.
    pub fn has_keys(&self) -> bool {
        !self.keys.is_empty()
    }

    /// Whether the registry holds provider credentials (entries or configs).
    pub fn holds_credentials(&self) -> bool {
        !self.names.providers.0.is_empty() || !self.configs.is_empty()
    }

    /// The gateway key `presented` is, if any. Every stored hash is compared, each in
    /// constant time, so the time taken says nothing about which key, or how much of it,
    /// matched.
    pub fn key(&self, presented: &str) -> Option<&GatewayKey> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found = None;
        for key in &self.keys {
            let same = key.hash.iter().zip(digest.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
            if same && found.is_none() {
                found = Some(key);
            }
        }
        found
    }
}

/// The line to put in a registry for `key`: `sha256:<hex>`.
pub fn key_hash(key: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(key.as_bytes())))
}

/// Fields a provider entry may have besides the provider's own credential fields.
const ENTRY_FIELDS_NOT_ALLOWED: &[&str] = &[
    "strategy",
    "targets",
    "virtual_key",
    "retry",
    "cache",
    "request_timeout",
    "forward_headers",
    "weight",
    "name",
    "on_status_codes",
];

fn provider_entry(slug: &str, entry: &Value, at: &JsonPath) -> Result<ProviderEntry, Vec<GatewayError>> {
    let Value::Object(map) = entry else {
        return Err(vec![GatewayError::config(at.as_str(), "a provider entry must be an object")]);
    };
    let mut errors = Vec::new();
    if slug.is_empty() || !slug.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
        errors.push(GatewayError::config(at.as_str(), "a provider slug is letters, digits, `-`, `_` and `.`"));
    }
    for field in ENTRY_FIELDS_NOT_ALLOWED {
        if map.contains_key(*field) {
            errors.push(GatewayError::config(
                at.key(field).as_str(),
                format!("`{field}` belongs in a config, not a provider entry"),
            ));
        }
    }
    if map.get("provider").and_then(Value::as_str).is_some_and(|p| p.starts_with('@')) {
        errors.push(GatewayError::config(
            at.key("provider").as_str(),
            "a provider entry names a provider, not another entry",
        ));
    }
    let models = match map.get("models") {
        None => None,
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => {
            Some(items.iter().filter_map(Value::as_str).map(str::to_owned).collect::<Arc<[String]>>())
        }
        Some(_) => {
            errors.push(GatewayError::config(at.key("models").as_str(), "`models` must be a list of model names"));
            None
        }
    };
    let prices = match map.get("pricing") {
        None => None,
        Some(value) => match serde_json::from_value::<ModelPrices>(value.clone()) {
            Ok(prices) if prices.values().all(Price::is_valid) => Some(Arc::new(prices)),
            _ => {
                errors.push(GatewayError::config(
                    at.key("pricing").as_str(),
                    "`pricing` maps model names to {input, output, cached_input?, cache_write?}: \
                     US dollars per million tokens, not negative",
                ));
                None
            }
        },
    };
    let limits = map
        .get("limits")
        .and_then(|value| UsageLimits::parse(value, &at.key("limits"), &mut errors))
        .map(|limits| Arc::new(LimitScope::provider(slug, limits)));
    let mut leaf = map.clone();
    leaf.remove("models");
    leaf.remove("pricing");
    leaf.remove("limits");
    let config = match Config::load(&Value::Object(leaf)).map_err(|i| i.reported(false)).and_then(|c| {
        c.require_providers().map_err(|e| ConfigErrors(vec![e]))?;
        Ok(c)
    }) {
        Ok(config) => Some(config),
        Err(e) => {
            errors.extend(e.0.into_iter().map(|e| e.within(at)));
            None
        }
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    let Some(crate::config::Node::Leaf(leaf)) = config.as_ref().map(Config::root) else {
        return Err(vec![GatewayError::config(at.as_str(), "a provider entry is one provider")]);
    };
    let Some(target) = &leaf.provider else {
        return Err(vec![GatewayError::config(at.key("provider").as_str(), "a provider entry needs `provider`")]);
    };
    let held = Held { home: leaf.settings.custom_host.clone(), entry: Some(slug.into()), models, prices, limits };
    let target = Arc::new(ProviderTarget { held: Some(Arc::new(held)), ..(**target).clone() });
    let override_params = leaf.settings.override_params.clone();
    let single = Arc::new(Config::single_entry(target.clone(), override_params.clone()));
    Ok(ProviderEntry { target, override_params, single })
}

/// The fields of a `keys` entry.
const KEY_FIELDS: &[&str] =
    &["hash", "providers", "configs", "models", "metadata", "config", "limits", "limits_by_metadata"];

fn gateway_key(
    name: &str,
    key: &Value,
    at: &JsonPath,
    providers: &Providers,
    configs: &HashMap<String, Arc<Config>>,
) -> Result<GatewayKey, Vec<GatewayError>> {
    let Value::Object(map) = key else {
        return Err(vec![GatewayError::config(at.as_str(), "a key entry must be an object")]);
    };
    let mut errors = Vec::new();
    for field in map.keys() {
        if !KEY_FIELDS.contains(&field.as_str()) {
            errors.push(GatewayError::config(
                at.key(field).as_str(),
                format!("unknown key field (expected {})", KEY_FIELDS.join(", ")),
            ));
        }
    }
    let hash = match map.get("hash").and_then(Value::as_str).and_then(|h| h.strip_prefix("sha256:")) {
        Some(hex_digest) => match hex::decode(hex_digest).ok().and_then(|b| <[u8; 32]>::try_from(b).ok()) {
            Some(hash) => hash,
            None => {
                errors
                    .push(GatewayError::config(at.key("hash").as_str(), "`hash` must be `sha256:` and 64 hex digits"));
                [0; 32]
            }
        },
        None => {
            errors.push(GatewayError::config(
                at.key("hash").as_str(),
                "a key needs `hash`: `sha256:<hex>` of the key (`gatewise keys new` prints one)",
            ));
            [0; 32]
        }
    };
    let mut list = |field: &str, known: &dyn Fn(&str) -> bool, what: &str| -> Option<Vec<String>> {
        let value = map.get(field)?;
        let Some(items) = value.as_array().filter(|items| items.iter().all(Value::is_string)) else {
            errors.push(GatewayError::config(at.key(field).as_str(), format!("`{field}` must be a list of names")));
            return None;
        };
        let names: Vec<String> = items.iter().filter_map(Value::as_str).map(str::to_owned).collect();
        for (i, n) in names.iter().enumerate() {
            if !known(n) {
                errors.push(GatewayError::config(
                    at.key(field).index(i).as_str(),
                    format!("no {what} `{n}` in the registry"),
                ));
            }
        }
        Some(names)
    };
    let providers_scope = list("providers", &|s| providers.get(s).is_some(), "provider entry");
    let configs_scope = list("configs", &|c| configs.contains_key(c), "config");
    let models = list("models", &|_| true, "model");
    let metadata = match map.get("metadata") {
        None => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => {
            errors.push(GatewayError::config(at.key("metadata").as_str(), "`metadata` must be an object"));
            Map::new()
        }
    };
    let config = match map.get("config") {
        None => None,
        Some(Value::String(id)) if configs_scope.as_ref().is_some_and(|scope| !scope.contains(id)) => {
            errors.push(GatewayError::config(
                at.key("config").as_str(),
                format!("the default config `{id}` is not one of the key's `configs`"),
            ));
            None
        }
        Some(Value::String(id)) if configs.contains_key(id) => Some(id.clone()),
        Some(_) => {
            errors.push(GatewayError::config(at.key("config").as_str(), "`config` must name a config of the registry"));
            None
        }
    };
    let limits = map
        .get("limits")
        .and_then(|value| UsageLimits::parse(value, &at.key("limits"), &mut errors))
        .map(|limits| LimitScope::key(name, limits));
    let limits_by_metadata = map
        .get("limits_by_metadata")
        .and_then(|value| UsageLimits::parse_by_metadata(value, &at.key("limits_by_metadata"), &mut errors))
        .unwrap_or_default();
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(GatewayKey {
        limits,
        limits_by_metadata,
        name: name.to_owned(),
        hash,
        providers: providers_scope,
        configs: configs_scope,
        models,
        metadata,
        config,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::config::Node;
    use crate::error::ErrorCode;
    use serde_json::json;

    fn registry() -> Value {
        json!({
            "providers": {
                "openai-prod": {"provider": "openai", "api_key": "sk-prod"},
                "claude": {"provider": "anthropic", "api_key": "sk-ant", "custom_host": "https://claude.example/v1",
                           "models": ["claude-sonnet-4-5"], "override_params": {"max_tokens": 512}}
            },
            "guardrails": {"no-secrets": {"checks": [{"id": "default.regexMatch",
                                                      "parameters": {"rule": "sk-[A-Za-z0-9]+", "not": true}}],
                                          "deny": true}},
            "configs": {"pc-support": {"strategy": {"mode": "fallback"}, "input_guardrails": ["no-secrets"],
                                        "targets": [{"virtual_key": "openai-prod"}, {"provider": "@claude"}]}},
            "keys": {"team-a": {"hash": key_hash("gw-team-a"), "providers": ["openai-prod"], "configs": ["pc-support"],
                                "metadata": {"team": "a"}}},
            "prompts": {"support-reply": {"virtual_key": "openai-prod", "model": "gpt-4o-mini", "max_tokens": 256,
                                          "messages": [{"role": "system", "content": "You help {{product}} users. {{>sig}}"},
                                                       {"role": "user", "content": "{{question}}"}]}},
            "partials": {"sig": "Be brief."}
        })
    }

    fn leaves(config: &Config) -> Vec<&crate::config::Leaf> {
        match config.root() {
            Node::Group(g) => {
                g.targets.iter().filter_map(|t| if let Node::Leaf(l) = t { Some(l) } else { None }).collect()
            }
            Node::Leaf(l) => vec![l],
        }
    }

    #[test]
    fn the_minimal_shape_loads_and_configs_resolve_entries_as_held_credentials() {
        let r = Registry::load(&registry()).unwrap();
        let config = r.config("pc-support").unwrap();
        let [openai, claude] = leaves(config)[..] else { panic!() };
        let openai_target = openai.provider.as_ref().unwrap();
        assert_eq!(openai_target.option("api_key"), Some("sk-prod"));
        assert_eq!(openai_target.held.as_ref().unwrap().entry.as_deref(), Some("openai-prod"));
        let claude_target = claude.provider.as_ref().unwrap();
        assert_eq!(claude.settings.custom_host.as_deref(), Some("https://claude.example/v1"));
        assert_eq!(claude.settings.override_params["max_tokens"], 512);
        assert_eq!(claude_target.held.as_ref().unwrap().models.as_deref(), Some(&["claude-sonnet-4-5".to_owned()][..]));
        assert!(r.has_keys() && r.holds_credentials());
        let key = r.key("gw-team-a").unwrap();
        assert_eq!((key.name.as_str(), key.metadata["team"].as_str()), ("team-a", Some("a")));
        assert!(r.key("gw-team-b").is_none());
    }

    #[test]
    fn a_callers_config_may_name_entries_but_not_change_their_credentials() {
        let r = Registry::load(&registry()).unwrap();
        let ok = Config::load_with(
            &json!({"virtual_key": "openai-prod", "override_params": {"model": "gpt-4o"}}),
            r.names(),
        );
        assert!(ok.is_ok());
        for bad in [
            json!({"virtual_key": "openai-prod", "api_key": "sk-mine"}),
            json!({"provider": "@claude", "targets": [{"api_key": "x"}], "strategy": {"mode": "single"}}),
            json!({"virtual_key": "openai-prod", "provider": "openai"}),
        ] {
            let e = Config::load_with(&bad, r.names()).unwrap_err().reported(false);
            assert!(!e.0.is_empty(), "{bad}");
        }
        let e = Config::load_with(&json!({"virtual_key": "nope"}), r.names()).unwrap_err().reported(false);
        assert_eq!((e.0[0].code, e.0[0].param.as_deref()), (ErrorCode::UnknownVirtualKey, Some("virtual_key")));
        assert!(e.0[0].message.contains("claude, openai-prod"), "{}", e.0[0].message);
    }

    #[test]
    fn the_published_schema_agrees_with_the_loader_on_the_examples() {
        let schema: Value = serde_json::from_str(REGISTRY_SCHEMA).unwrap();
        let validator = jsonschema::validator_for(&schema).unwrap();
        assert!(validator.is_valid(&registry()));
        assert!(Registry::load(&registry()).is_ok());
        for bad in [
            json!({"providers": {"a": {"provider": "openai", "retry": {"attempts": 1}}}}),
            json!({"keys": {"k": {"hash": "md5:00"}}}),
            json!({"other": {}}),
            json!({"providers": {"a": {"provider": "@b"}}}),
            json!({"providers": {"a": {"provider": "openai", "pricing": {"m": {"input": -1, "output": 1}}}}}),
            json!({"providers": {"a": {"provider": "openai", "pricing": {"m": {"input": 1}}}}}),
            json!({"providers": {"a": {"provider": "openai", "pricing": {"m": {"input": 1, "output": 1, "per": 2}}}}}),
            json!({"prompts": {"p": {"model": "m"}}}),
            json!({"prompts": {"p": {"messages": []}}}),
            json!({"partials": {"sig": 3}}),
            json!({"guardrails": {"g": {"deny": true}}}),
            json!({"guardrails": {"g": {"checks": [], "deny": "yes"}}}),
            json!({"guardrails": {"g": {"checks": [{"parameters": {}}]}}}),
            json!({"prompts": {"p": {"virtual_key": "a", "provider": "@a", "messages": [{"role": "user"}]}}}),
        ] {
            assert!(!validator.is_valid(&bad), "schema: {bad}");
            assert!(Registry::load(&bad).is_err(), "loader: {bad}");
        }
    }

    #[test]
    fn guardrails_load_and_configs_name_them_by_id() {
        let r = Registry::load(&registry()).unwrap();
        let [openai, _] = leaves(r.config("pc-support").unwrap())[..] else { panic!() };
        assert_eq!(openai.settings.hooks.before[0].id, "no-secrets");
        assert!(openai.settings.hooks.before[0].deny);
        let bad = json!({"guardrails": {"g": {"checks": [{"id": "default.nope"}]}},
                         "configs": {"c": {"provider": "openai", "api_key": "k", "input_guardrails": ["missing"]}}});
        let e = Registry::load(&bad).unwrap_err();
        let paths: Vec<_> = e.0.iter().map(|e| e.param.clone().unwrap_or_default()).collect();
        assert_eq!(paths, ["guardrails.g.checks[0].id", "configs.c.input_guardrails[0]"], "{e}");
    }

    #[test]
    fn an_entrys_own_prices_come_with_its_credentials() {
        let registry = Registry::load(&json!({"providers": {"azure": {"provider": "openai", "api_key": "k",
            "pricing": {"gpt-4o": {"input": 2.2, "output": 9.0, "cached_input": 1.1}}}}}))
        .unwrap();
        let held = registry.providers().get("azure").unwrap().target.held.clone().unwrap();
        let prices = held.prices.as_ref().unwrap();
        assert_eq!(prices["gpt-4o"].input, 2.2);
        assert_eq!(prices["gpt-4o"].cached_input, Some(1.1));
    }

    #[test]
    fn every_error_is_reported_at_once_with_its_path() {
        let bad = json!({
            "providers": {"a": {"provider": "nope"}, "b": {"provider": "openai", "retry": {"attempts": 1}, "models": "x"}},
            "configs": {"c": {"virtual_key": "missing"}},
            "keys": {"k": {"hash": "md5:00", "providers": ["zzz"], "extra": 1},
                     "j": {"hash": key_hash("j"), "configs": [], "config": "c"}},
            "prompts": {"p": {"virtual_key": "nobody", "config": "none", "messages": [{"role": "user", "content": "{{>gone}}"}]},
                        "q": {"provider": "@b", "messages": [{"role": "user", "content": "{{#open}}"}]}},
            "partials": {"x": "{{>y}}"},
            "other": {}
        });
        let errors = Registry::load(&bad).unwrap_err().0;
        let paths: Vec<&str> = errors.iter().filter_map(|e| e.param.as_deref()).collect();
        for want in [
            "other",
            "providers.a.provider",
            "providers.b.retry",
            "providers.b.models",
            "configs.c.virtual_key",
            "keys.k.extra",
            "keys.k.hash",
            "keys.k.providers[0]",
            "keys.j.config",
            "prompts.p.messages[0].content",
            "prompts.q.messages[0].content",
            "partials.x",
        ] {
            assert!(paths.contains(&want), "{want} in {paths:?}");
        }
    }

    #[test]
    fn prompts_load_with_their_partials_and_must_name_what_exists() {
        let r = Registry::load(&registry()).unwrap();
        let prompt = r.prompt("support-reply").unwrap();
        assert_eq!(prompt.route.provider.as_deref(), Some("openai-prod"));
        let body = prompt.render(&json!({"product": "G", "question": "Q?"}), &Map::new(), r.partials()).unwrap();
        assert_eq!(body["messages"][0]["content"], "You help G users. Be brief.");
        let mut bad = registry();
        bad["prompts"]["support-reply"]["virtual_key"] = json!("nobody");
        bad["prompts"]["other"] = json!({"config": "none", "messages": [{"role": "user", "content": "hi"}]});
        let errors = Registry::load(&bad).unwrap_err().0;
        let mut paths: Vec<&str> = errors.iter().filter_map(|e| e.param.as_deref()).collect();
        paths.sort_unstable();
        assert_eq!(paths, ["prompts.other.config", "prompts.support-reply.virtual_key"]);
    }
}
