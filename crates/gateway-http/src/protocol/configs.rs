//! Where a request's config comes from: an object, JSON text, a name (a `--config-dir`
//! file on the server, a file path in the bindings), or the server's default `--config`.
//!
//! The default config and `--config-dir` files are the operator's: their credentials are
//! marked as the server's own ([`Config::server_held`]), which the engine never sends to
//! a host a request names. A request that names its own provider is not routed through a
//! default config that names providers (it would spend the server's key, not the one the
//! request brought); a default config that leaves providers to the request still applies.
//!
//! Each config is compiled once, whether or not the request brings its own provider;
//! whether its leaves need one is checked where it is used ([`Config::require_providers`]).
//! Compiling takes tens of microseconds, so compiled configs are cached: JSON text by its
//! exact text, names by name and file modification time (so an edited file takes effect
//! on the next request without a restart). Configs sent as text come from callers, so
//! their cache is bounded in entries and bytes, and remembers configs that failed to
//! compile too: a bad config sent again costs a lookup, not another compile.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use gateway_core::config::Invalid;
use gateway_core::registry::Registry;
use gateway_core::{Config, GatewayError};
use serde_json::Value;

use super::options::ConfigRef;
use crate::registry::RegistrySource;

/// The cache bounds for configs sent as text: entries, and bytes of text (a compiled config
/// takes a few times its text). Past either the cache is cleared: configs sent inline are
/// usually a handful of distinct strings, so this only guards against abuse.
const INLINE_CACHE_ENTRIES: usize = 1024;
const INLINE_CACHE_BYTES: usize = 8 * 1024 * 1024;

/// Configs sent as text, compiled or refused, against one registry generation.
#[derive(Debug, Default)]
struct InlineCache {
    map: HashMap<String, Compiled>,
    bytes: usize,
    generation: u64,
}

/// A config compiled, or why it is not.
type Compiled = Result<Arc<Config>, Invalid>;

/// A config read by name: the file's modification time and the registry generation it was
/// compiled against, and the config.
type NamedConfig = (SystemTime, u64, Arc<Config>);

/// The registry as one request sees it: the same snapshot for every lookup it makes.
#[derive(Debug, Clone)]
pub struct RegistryView {
    /// The registry.
    pub registry: Arc<Registry>,
    /// Its generation (bumped on every reload).
    pub generation: u64,
}

/// What a config given by name refers to.
#[derive(Debug, Default)]
pub enum ConfigNames {
    /// Names are not accepted (a server without `--config-dir`).
    #[default]
    None,
    /// `NAME` is `DIR/NAME.json` (the server's `--config-dir`); names are plain file stems.
    Dir(PathBuf),
    /// A name is a path to a JSON file (the bindings' `config="path.json"`).
    Files,
}

/// Resolves and caches configs.
#[derive(Debug)]
pub struct ConfigStore {
    /// The default config as written (`${VAR}`s filled).
    default_value: Option<Value>,
    /// The default config, compiled once per registry generation: every request without a
    /// config takes it.
    default: RwLock<(u64, Option<Compiled>)>,
    names: ConfigNames,
    /// The registry: provider entries configs may name, and configs by id.
    registry: Arc<RegistrySource>,
    /// JSON text → compiled, or why not.
    inline: Mutex<InlineCache>,
    /// Names with the file modification time and registry generation they were compiled
    /// from.
    named: Mutex<HashMap<String, NamedConfig>>,
}

impl Default for ConfigStore {
    fn default() -> Self {
        Self::new(None, ConfigNames::None)
    }
}

impl ConfigStore {
    /// A store with an optional default config and a meaning for names. Config files read
    /// by name have their `${VAR}`s filled from the environment; the default config comes
    /// as a value, filled already by whoever read it.
    pub fn new(default: Option<Value>, names: ConfigNames) -> Self {
        Self::with_registry(default, names, Arc::new(RegistrySource::none()))
    }

    /// The same, with a registry.
    pub fn with_registry(default: Option<Value>, names: ConfigNames, registry: Arc<RegistrySource>) -> Self {
        let default_value = default;
        let view = RegistryView::of(&registry);
        let default = RwLock::new((view.generation, default_value.as_ref().map(|v| compile_default(v, &view))));
        Self { default_value, default, names, registry, inline: Mutex::default(), named: Mutex::default() }
    }

    /// The registry as it is now.
    pub fn registry(&self) -> RegistryView {
        RegistryView::of(&self.registry)
    }

    /// Whether the default config names providers (and so, most likely, holds their keys).
    pub fn default_holds_credentials(&self) -> bool {
        matches!(&self.default.read().unwrap_or_else(|p| p.into_inner()).1, Some(Ok(c)) if c.names_providers())
    }

    /// The default config's compile errors, if it has any (a server refuses to start).
    pub fn default_errors(&self, request_provider: bool) -> Option<gateway_core::error::ConfigErrors> {
        match &self.default.read().unwrap_or_else(|p| p.into_inner()).1 {
            Some(Err(invalid)) => Some(invalid.clone().reported(request_provider)),
            _ => None,
        }
    }

    /// The config for `config` (`None`: the default, if there is one). Errors name the
    /// bad field; the caller adds where the config came from. `request_provider` (the
    /// request brings a provider) only changes what an invalid config reports: leaves
    /// without a provider are not errors then. A config is compiled once either way.
    pub fn resolve(
        &self,
        config: Option<&ConfigRef>,
        request_provider: bool,
        view: &RegistryView,
    ) -> Result<Option<Arc<Config>>, GatewayError> {
        let report = |invalid: Invalid| GatewayError::from(invalid.reported(request_provider));
        match config {
            Some(ConfigRef::Object(object)) => {
                compile(&Value::Object(object.clone()), &view.registry).map(Some).map_err(report)
            }
            Some(ConfigRef::Text(text)) => match text.trim() {
                "" => self.default_config(request_provider, view),
                text if text.starts_with('{') => self.inline(text, report, view).map(Some),
                id if view.registry.config(id).is_some() => Ok(view.registry.config(id).cloned()),
                name => self.named(name, report, view).map(Some),
            },
            None => self.default_config(request_provider, view),
        }
    }

    fn default_config(&self, request_provider: bool, view: &RegistryView) -> Result<Option<Arc<Config>>, GatewayError> {
        let current = {
            let default = self.default.read().unwrap_or_else(|p| p.into_inner());
            (default.0 == view.generation).then(|| default.1.clone())
        };
        let compiled = match current {
            Some(compiled) => compiled,
            None => {
                // The registry changed: the default config may name its entries.
                let compiled = self.default_value.as_ref().map(|v| compile_default(v, view));
                *self.default.write().unwrap_or_else(|p| p.into_inner()) = (view.generation, compiled.clone());
                compiled
            }
        };
        match compiled {
            None => Ok(None),
            Some(Ok(config)) if request_provider && config.names_providers() => Ok(None),
            Some(Ok(config)) => Ok(Some(config)),
            Some(Err(invalid)) => Err(invalid.reported(request_provider).into()),
        }
    }

    fn inline(
        &self,
        text: &str,
        report: impl Fn(Invalid) -> GatewayError,
        view: &RegistryView,
    ) -> Result<Arc<Config>, GatewayError> {
        {
            let cache = lock(&self.inline);
            if let Some(compiled) = cache.map.get(text).filter(|_| cache.generation == view.generation) {
                return compiled.clone().map_err(report);
            }
        }
        let value: Value = serde_json::from_str(text)
            .map_err(|e| GatewayError::config("", format!("the config is not valid JSON: {e}")))?;
        let compiled = compile(&value, &view.registry);
        if text.len() <= INLINE_CACHE_BYTES / 16 {
            let mut cache = lock(&self.inline);
            if cache.map.len() >= INLINE_CACHE_ENTRIES
                || cache.bytes + text.len() > INLINE_CACHE_BYTES
                || cache.generation != view.generation
            {
                *cache = InlineCache { generation: view.generation, ..InlineCache::default() };
            }
            cache.bytes += text.len();
            cache.map.insert(text.to_owned(), compiled.clone());
        }
        compiled.map_err(report)
    }

    fn named(
        &self,
        name: &str,
        report: impl Fn(Invalid) -> GatewayError,
        view: &RegistryView,
    ) -> Result<Arc<Config>, GatewayError> {
        let path = match &self.names {
            ConfigNames::None => {
                return Err(crate::registry::unknown_config(name));
            }
            ConfigNames::Dir(dir) => {
                // Plain file stems only: no path separators, no `..`, no hidden files.
                if name.starts_with('.') || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
                    return Err(GatewayError::config("", format!("`{name}` is not a valid config name")));
                }
                dir.join(format!("{name}.json"))
            }
            ConfigNames::Files => PathBuf::from(name),
        };
        // One stat per request: whether the file is there, and whether it changed.
        let unreadable =
            |why: String| GatewayError::config("", format!("reading config file {}: {why}", path.display()));
        let metadata = match (std::fs::metadata(&path), &self.names) {
            (Ok(metadata), _) if metadata.is_file() => metadata,
            (_, ConfigNames::Dir(dir)) => {
                return Err(GatewayError::config("", format!("no config named `{name}` in {}", dir.display())));
            }
            (Ok(_), _) => return Err(unreadable("not a file".to_owned())),
            (Err(e), _) => return Err(unreadable(e.to_string())),
        };
        let modified = metadata.modified().map_err(|e| unreadable(e.to_string()))?;
        let fresh = |(at, generation, _): &&NamedConfig| *at == modified && *generation == view.generation;
        if let Some((_, _, config)) = lock(&self.named).get(name).filter(fresh) {
            return Ok(config.clone());
        }
        let mut config = compile(&read_json(&path)?, &view.registry).map_err(report)?;
        if matches!(self.names, ConfigNames::Dir(_)) {
            config = server_held(config);
        }
        lock(&self.named).insert(name.to_owned(), (modified, view.generation, config.clone()));
        Ok(config)
    }
}

impl RegistryView {
    fn of(source: &RegistrySource) -> Self {
        let (registry, generation) = source.current();
        Self { registry, generation }
    }
}

fn read_json(path: &Path) -> Result<Value, GatewayError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| GatewayError::config("", format!("reading config file {}: {e}", path.display())))?;
    let mut value: Value = serde_json::from_str(&text)
        .map_err(|e| GatewayError::config("", format!("{} is not valid JSON: {e}", path.display())))?;
    let errors = gateway_core::interpolate::interpolate(&mut value, &|name| std::env::var(name).ok());
    if let Some(e) = errors.into_iter().next() {
        return Err(GatewayError::config(e.param.unwrap_or_default(), format!("{}: {}", path.display(), e.message)));
    }
    Ok(value)
}

fn compile(value: &Value, registry: &Registry) -> Result<Arc<Config>, Invalid> {
    Config::load_with(value, registry.names()).map(Arc::new)
}

fn compile_default(value: &Value, view: &RegistryView) -> Result<Arc<Config>, Invalid> {
    compile(value, &view.registry).map(server_held)
}

fn server_held(config: Arc<Config>) -> Arc<Config> {
    Arc::new(Arc::unwrap_or_clone(config).server_held())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn text(config: &Value) -> ConfigRef {
        ConfigRef::Text(config.to_string())
    }

    #[test]
    fn a_config_that_failed_to_compile_is_remembered_and_reported_again() {
        let store = ConfigStore::new(None, ConfigNames::None);
        let bad = serde_json::json!({"provider": "openai", "retry": {"attempts": "many"}});
        let first = store.resolve(Some(&text(&bad)), true, &store.registry()).unwrap_err();
        assert!(matches!(lock(&store.inline).map.get(&bad.to_string()), Some(Err(_))));
        let again = store.resolve(Some(&text(&bad)), true, &store.registry()).unwrap_err();
        assert_eq!(first, again);
    }

    #[test]
    fn the_inline_cache_is_bounded_in_bytes() {
        let store = ConfigStore::new(None, ConfigNames::None);
        let pad = "x".repeat(200 * 1024);
        for i in 0..100 {
            let config = serde_json::json!({"provider": "openai", "api_key": format!("{i}{pad}")});
            store.resolve(Some(&text(&config)), false, &store.registry()).unwrap();
            assert!(lock(&store.inline).bytes <= INLINE_CACHE_BYTES);
        }
        assert!(lock(&store.inline).map.len() < 100);
    }
}
