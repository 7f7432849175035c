//! A provider and the credentials and options to call it with: what a config leaf, a
//! request's `x-portkey-provider` or a binding's `provider=` names.

use serde_json::{Map, Value};

use super::Provider;

/// A provider and the credentials/options to call it with.
#[derive(Clone)]
pub struct ProviderTarget {
    /// The provider implementation.
    pub provider: &'static dyn Provider,
    /// `api_key` and the provider-specific fields (`resource_name`, `aws_region`, ...).
    pub options: Map<String, Value>,
    /// The credentials belong to whoever runs the gateway (its default config, its
    /// config directory), not to the caller: they go only to the host they were
    /// configured with, never to one a request names.
    pub server_held: bool,
}

impl std::fmt::Debug for ProviderTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print credentials.
        f.debug_struct("ProviderTarget")
            .field("provider", &self.provider.slug())
            .field("options", &self.options.keys().collect::<Vec<_>>())
            .field("server_held", &self.server_held)
            .finish()
    }
}

impl ProviderTarget {
    /// Build from a slug and options; `None` when the slug is unknown.
    pub fn new(slug: &str, options: Map<String, Value>) -> Option<Self> {
        super::lookup(slug).map(|provider| Self { provider, options, server_held: false })
    }

    /// A string option (`api_key`, `resource_name`, ...), if set and non-empty.
    pub fn option(&self, key: &str) -> Option<&str> {
        self.options.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
    }
}
