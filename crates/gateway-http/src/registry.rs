//! The registry file (`gatewise serve --registry FILE`, a binding's `registry=`): read as
//! JSON or YAML, `${VAR}`s filled from the environment (only here: never in a config that
//! arrives with a request), then validated and compiled by [`gateway_core::registry`].
//!
//! The file is re-read when it changes (its modification time is looked at no more than
//! once a second, so a request never pays for more than a clock read). A bad edit keeps
//! the last good registry and logs every error with its path.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use gateway_core::error::ConfigErrors;
use gateway_core::registry::Registry;
use gateway_core::{ErrorCode, GatewayError};
use serde_json::Value;

/// How often a changed file is looked for.
const RECHECK: Duration = Duration::from_secs(1);

/// A registry, and the file it is kept in step with.
#[derive(Debug)]
pub struct RegistrySource {
    path: Option<PathBuf>,
    state: RwLock<State>,
}

#[derive(Debug)]
struct State {
    registry: Arc<Registry>,
    modified: Option<SystemTime>,
    checked: Instant,
    /// Bumped on every reload, so caches of what was compiled against it can tell.
    generation: u64,
}

impl RegistrySource {
    /// No registry: nothing is named, no key is needed.
    pub fn none() -> Self {
        Self::fixed(Registry::default())
    }

    /// A registry given as a value (a binding's `registry={...}`), never reloaded.
    pub fn fixed(registry: Registry) -> Self {
        let state = State { registry: Arc::new(registry), modified: None, checked: Instant::now(), generation: 0 };
        Self { path: None, state: RwLock::new(state) }
    }

    /// The registry in `path`; an error lists everything wrong with it.
    pub fn open(path: &Path) -> Result<Self, ConfigErrors> {
        let (registry, modified) = read(path)?;
        let state = State { registry: Arc::new(registry), modified, checked: Instant::now(), generation: 0 };
        Ok(Self { path: Some(path.to_owned()), state: RwLock::new(state) })
    }

    /// The current registry and its generation, re-read first if the file changed.
    pub fn current(&self) -> (Arc<Registry>, u64) {
        {
            let state = self.state.read().unwrap_or_else(|p| p.into_inner());
            if self.path.is_none() || state.checked.elapsed() < RECHECK {
                return (state.registry.clone(), state.generation);
            }
        }
        self.recheck()
    }

    fn recheck(&self) -> (Arc<Registry>, u64) {
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        state.checked = Instant::now();
        let Some(path) = &self.path else { return (state.registry.clone(), state.generation) };
        let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        if modified != state.modified {
            state.modified = modified;
            match read(path) {
                Ok((registry, _)) => {
                    state.registry = Arc::new(registry);
                    state.generation += 1;
                    tracing::info!("registry {} reloaded", path.display());
                }
                Err(errors) => {
                    tracing::error!("registry {} not reloaded, the last good one stays: {errors}", path.display());
                }
            }
        }
        (state.registry.clone(), state.generation)
    }
}

/// Read, interpolate and compile a registry file.
pub fn read(path: &Path) -> Result<(Registry, Option<SystemTime>), ConfigErrors> {
    let fail = |message: String| ConfigErrors(vec![GatewayError::config("", message)]);
    let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let text = std::fs::read_to_string(path).map_err(|e| fail(format!("reading {}: {e}", path.display())))?;
    let value = parse(path, &text).map_err(fail)?;
    Ok((load(value)?, modified))
}

/// A registry from a value (`${VAR}`s filled from the environment).
pub fn load(mut value: Value) -> Result<Registry, ConfigErrors> {
    let errors = gateway_core::interpolate::interpolate(&mut value, &|name| std::env::var(name).ok());
    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }
    Registry::load(&value)
}

/// JSON, or YAML for a `.yaml`/`.yml` file.
pub fn parse(path: &Path, text: &str) -> Result<Value, String> {
    let yaml = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"));
    if yaml {
        serde_norway::from_str(text).map_err(|e| format!("{} is not valid YAML: {e}", path.display()))
    } else {
        serde_json::from_str(text).map_err(|e| format!("{} is not valid JSON: {e}", path.display()))
    }
}

/// The error for a config id the registry does not have.
pub fn unknown_config(id: &str) -> GatewayError {
    GatewayError::new(ErrorCode::UnknownConfig, format!("no config `{id}` in the registry")).with_param("config")
}
