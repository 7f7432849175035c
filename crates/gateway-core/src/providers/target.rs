//! A provider and the credentials and options to call it with: what a config leaf, a
//! request's `x-portkey-provider` or a binding's `provider=` names.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::Provider;

/// A provider and the credentials/options to call it with.
#[derive(Clone)]
pub struct ProviderTarget {
    /// The provider implementation.
    pub provider: &'static dyn Provider,
    /// `api_key` and the provider-specific fields (`resource_name`, `aws_region`, ...).
    pub options: Map<String, Value>,
    /// Set when the credentials belong to whoever runs the gateway (its default config,
    /// config directory or registry), not to the caller: where they may go.
    pub held: Option<Arc<Held>>,
}

/// Credentials the server holds, and the bounds they come with.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Held {
    /// The only custom host they may be sent to (`None`: only the provider's own host).
    pub home: Option<String>,
    /// The registry entry they come from (`@slug`, `virtual_key`), if any.
    pub entry: Option<Arc<str>>,
    /// The models the entry allows (`None`: any).
    pub models: Option<Arc<[String]>>,
    /// The entry's own prices, which win over the built-in table.
    pub prices: Option<Arc<crate::pricing::ModelPrices>>,
    /// The entry's rate limits and budgets.
    pub limits: Option<Arc<crate::state::LimitScope>>,
}

impl Held {
    /// Whether `host` (the custom host a request would use, `None` for the provider's own)
    /// is where these credentials may go.
    pub fn allows_host(&self, host: Option<&str>) -> bool {
        fn trim(h: &str) -> &str {
            h.trim_end_matches('/')
        }
        host.map(trim) == self.home.as_deref().map(trim)
    }
}

impl std::fmt::Debug for ProviderTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print credentials.
        f.debug_struct("ProviderTarget")
            .field("provider", &self.provider.slug())
            .field("options", &self.options.keys().collect::<Vec<_>>())
            .field("held", &self.held)
            .finish()
    }
}

impl ProviderTarget {
    /// Build from a slug and options; `None` when the slug is unknown.
    pub fn new(slug: &str, options: Map<String, Value>) -> Option<Self> {
        super::lookup(slug).map(|provider| Self { provider, options, held: None })
    }

    /// A string option (`api_key`, `resource_name`, ...), if set and non-empty.
    pub fn option(&self, key: &str) -> Option<&str> {
        self.options.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
    }
}
