//! The registry's provider entries as configs see them: what `virtual_key: "slug"` and
//! `provider: "@slug"` name. Here rather than in the registry so that compiling a config
//! needs only its own module; the registry builds these and holds them.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::Config;
use crate::error::{ErrorCode, GatewayError};
use crate::providers::ProviderTarget;

/// A registry provider entry, compiled.
#[derive(Debug, Clone)]
pub struct ProviderEntry {
    /// The target, its credentials marked as held by the server.
    pub target: Arc<ProviderTarget>,
    /// `override_params` the entry applies under a config's own.
    pub override_params: Map<String, Value>,
    /// The config of a request that names the entry and brings none, made once.
    pub single: Arc<Config>,
}

impl ProviderEntry {
    /// The entry's home host (`None`: the provider's own).
    pub fn custom_host(&self) -> Option<&str> {
        self.target.held.as_ref().and_then(|h| h.home.as_deref())
    }
}

/// The provider entries configs may name; empty outside a registry.
#[derive(Debug, Clone, Default)]
pub struct Providers(pub(crate) HashMap<String, ProviderEntry>);

impl Providers {
    /// The entry for `slug` (without the `@`).
    pub fn get(&self, slug: &str) -> Option<&ProviderEntry> {
        self.0.get(slug)
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every slug, sorted (for error messages).
    pub fn slugs(&self) -> Vec<&str> {
        let mut slugs: Vec<&str> = self.0.keys().map(String::as_str).collect();
        slugs.sort_unstable();
        slugs
    }
}

/// What a config may name in a registry: provider entries and guardrails.
#[derive(Debug, Clone, Default)]
pub struct RegistryNames {
    /// Provider entries (`virtual_key`, `@slug`).
    pub providers: Providers,
    /// Guardrails, by id (`before_request_hooks: [{"id": ...}]`, `input_guardrails: ["id"]`).
    pub guardrails: crate::hooks::Guardrails,
}

/// An error for a registry entry that is not there.
pub fn unknown_entry(slug: &str, providers: &Providers, param: &str) -> GatewayError {
    let known = providers.slugs();
    let known =
        if known.is_empty() { "the registry has none".to_owned() } else { format!("known: {}", known.join(", ")) };
    GatewayError::new(ErrorCode::UnknownVirtualKey, format!("no provider entry `{slug}` in the registry ({known})"))
        .with_param(param)
}
