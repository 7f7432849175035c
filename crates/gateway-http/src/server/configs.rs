//! Where a request's config comes from: the `x-portkey-config` header (inline JSON or a
//! name in `--config-dir`), or the server's default `--config`.
//!
//! Compiling a config takes tens of microseconds, so compiled configs are cached: inline
//! ones by their exact text (bounded), named ones by name and file modification time (so
//! an edited file takes effect on the next request without a restart).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use gateway_core::{Config, GatewayError};
use serde_json::Value;

/// The cache bound for inline configs; past it the cache is cleared (configs sent inline
/// are usually a handful of distinct strings, so this only guards against abuse).
const INLINE_CACHE_LIMIT: usize = 1024;

/// Cache key: the config text or name, and whether the request brings its own provider
/// (which changes what compiles).
type Key = (String, bool);

/// Resolves and caches configs.
#[derive(Debug, Default)]
pub struct ConfigStore {
    /// The default config compiled both ways (without, with a request provider): every
    /// request without a config header takes it, so it is resolved without a lookup.
    default: Option<[Result<Arc<Config>, GatewayError>; 2]>,
    dir: Option<PathBuf>,
    /// (text or name, request has a provider) → compiled.
    inline: Mutex<HashMap<Key, Arc<Config>>>,
    /// Named configs with the file modification time they were compiled from.
    named: Mutex<HashMap<Key, (SystemTime, Arc<Config>)>>,
}

impl ConfigStore {
    /// A store with an optional default config and config directory.
    pub fn new(default: Option<Value>, dir: Option<PathBuf>) -> Self {
        let default = default.map(|value| [compile(&value, false), compile(&value, true)]);
        Self { default, dir, ..Self::default() }
    }

    /// The config for a request. `header` is the `x-portkey-config` value; with
    /// `request_provider`, leaves without a provider take the request's.
    pub fn resolve(&self, header: Option<&str>, request_provider: bool) -> Result<Option<Arc<Config>>, GatewayError> {
        match header.map(str::trim).filter(|h| !h.is_empty()) {
            Some(text) if text.starts_with('{') => self.inline(text, request_provider).map(Some),
            Some(name) => self.named(name, request_provider).map(Some),
            None => match &self.default {
                Some(compiled) => compiled[usize::from(request_provider)].clone().map(Some),
                None => Ok(None),
            },
        }
    }

    fn inline(&self, text: &str, request_provider: bool) -> Result<Arc<Config>, GatewayError> {
        let key = (text.to_owned(), request_provider);
        cached(&self.inline, key, || {
            let value: Value = serde_json::from_str(text)
                .map_err(|e| GatewayError::config("", format!("x-portkey-config is not valid JSON: {e}")))?;
            compile(&value, request_provider)
        })
    }

    fn named(&self, name: &str, request_provider: bool) -> Result<Arc<Config>, GatewayError> {
        let Some(dir) = &self.dir else {
            return Err(GatewayError::config(
                "",
                format!(
                    "x-portkey-config `{name}` is not JSON, and the server has no --config-dir to look names up in"
                ),
            ));
        };
        // Names are plain file stems: no path separators, no `..`, no hidden files.
        if name.starts_with('.') || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
            return Err(GatewayError::config("", format!("`{name}` is not a valid config name")));
        }
        let path = dir.join(format!("{name}.json"));
        let modified = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .map_err(|_| GatewayError::config("", format!("no config named `{name}` in {}", dir.display())))?;
        let key = (name.to_owned(), request_provider);
        if let Some((_, config)) = lock(&self.named).get(&key).filter(|(at, _)| *at == modified) {
            return Ok(config.clone());
        }
        let text = std::fs::read_to_string(&path)
            .map_err(|e| GatewayError::config("", format!("reading {}: {e}", path.display())))?;
        let value: Value = serde_json::from_str(&text)
            .map_err(|e| GatewayError::config("", format!("{} is not valid JSON: {e}", path.display())))?;
        let config = compile(&value, request_provider)?;
        lock(&self.named).insert(key, (modified, config.clone()));
        Ok(config)
    }
}

fn compile(value: &Value, request_provider: bool) -> Result<Arc<Config>, GatewayError> {
    let compiled =
        if request_provider { Config::from_json_with_request_provider(value) } else { Config::from_json(value) };
    compiled.map(Arc::new).map_err(GatewayError::from)
}

fn cached(
    map: &Mutex<HashMap<Key, Arc<Config>>>,
    key: Key,
    make: impl FnOnce() -> Result<Arc<Config>, GatewayError>,
) -> Result<Arc<Config>, GatewayError> {
    if let Some(config) = lock(map).get(&key) {
        return Ok(config.clone());
    }
    let config = make()?;
    let mut map = lock(map);
    if map.len() >= INLINE_CACHE_LIMIT {
        map.clear();
    }
    map.insert(key, config.clone());
    Ok(config)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
