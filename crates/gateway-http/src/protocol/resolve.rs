//! [`Options`] → the engine's [`RequestOptions`]: configs compiled (or taken from the
//! cache), the request's provider built, values checked. The one overlay every surface
//! uses: client defaults < `with_options` < per-call options < `x-portkey-*` headers.

use std::sync::Arc;
use std::time::Duration;

use gateway_core::providers::ProviderTarget;
use gateway_core::{GatewayError, RequestOptions};
use serde_json::{Map, Value};

use super::configs::ConfigStore;
use super::options::Options;

/// Turns options into request options. The server has one (with its default config and
/// `--config-dir`); each binding client has one (config names are file paths, and a
/// provider without a key reads the provider's environment variable).
#[derive(Debug)]
pub struct Resolver {
    configs: ConfigStore,
    surface: Surface,
}

/// Who the options come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Surface {
    /// HTTP requests to `gatewise serve`: options are headers.
    Server,
    /// A binding's client: options are keyword arguments or option objects.
    Client,
}

impl Surface {
    /// Whether a missing provider key is read from the environment. Never on a server: a
    /// caller naming a provider must not be able to spend a key in the server's
    /// environment.
    fn reads_key_env(self) -> bool {
        self == Self::Client
    }

    /// How errors name the config option.
    fn config_param(self) -> &'static str {
        match self {
            Self::Server => "x-portkey-config",
            Self::Client => "config",
        }
    }
}

/// Options with what they resolved to, so that an overlay that only changes per-request
/// options (metadata, trace id, ...) reuses the compiled config.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The options as given.
    pub options: Options,
    /// What the engine reads.
    pub request: RequestOptions,
}

impl Resolver {
    /// The server's resolver.
    pub fn server(configs: ConfigStore) -> Self {
        Self { configs, surface: Surface::Server }
    }

    /// A binding client's resolver.
    pub fn client(configs: ConfigStore) -> Self {
        Self { configs, surface: Surface::Client }
    }

    /// Resolve `options` on their own.
    pub fn resolve(&self, options: Options) -> Result<Resolved, GatewayError> {
        let provider = self.request_provider(&options)?;
        let config = self.configs.resolve(options.config.as_ref(), provider.is_some()).map_err(|mut e| {
            // Say which option the bad config came from.
            if e.param.as_deref().is_none_or(str::is_empty) {
                e.param = Some(self.surface.config_param().into());
            }
            e
        })?;
        if let (Some(config), None) = (&config, &provider) {
            config.require_providers()?;
        }
        if config.is_none() && provider.is_none() {
            return Err(GatewayError::config(
                "",
                "no config and no provider: send a config (x-portkey-config, config=...) \
                 or a provider (x-portkey-provider, provider=...)",
            ));
        }
        let request = RequestOptions { config, provider, ..per_request(&options) };
        Ok(Resolved { options, request })
    }

    /// `base` with `top` laid over it. When `top` leaves the config and provider alone,
    /// the base's compiled ones are reused.
    pub fn overlay(&self, base: &Resolved, top: &Options) -> Result<Resolved, GatewayError> {
        if top.is_empty() {
            return Ok(base.clone());
        }
        let options = base.options.overlay(top);
        if top.changes_routing() {
            return self.resolve(options);
        }
        let request = RequestOptions {
            config: base.request.config.clone(),
            provider: base.request.provider.clone(),
            ..per_request(&options)
        };
        Ok(Resolved { options, request })
    }

    /// The provider the options name, with its key and fields.
    fn request_provider(&self, options: &Options) -> Result<Option<Arc<ProviderTarget>>, GatewayError> {
        let Some(slug) = options.provider.as_ref().map(|p| p.0.as_str()).filter(|s| !s.is_empty()) else {
            if options.api_key.is_some() {
                return Err(GatewayError::config("api_key", "api_key needs a provider (or put the key in the config)"));
            }
            return Ok(None);
        };
        let mut fields = options.provider_options.as_ref().map(|f| f.0.clone()).unwrap_or_default();
        let key = options.api_key.as_ref().map(|k| k.0.clone()).or_else(|| self.env_key(slug, &fields));
        if let Some(key) = key {
            fields.insert("api_key".into(), Value::String(key));
        }
        ProviderTarget::new(slug, fields).map(|t| Some(Arc::new(t))).ok_or_else(|| {
            GatewayError::config(
                "provider",
                format!("unknown provider `{slug}` (known: {})", gateway_core::providers::slugs().join(", ")),
            )
        })
    }

    fn env_key(&self, slug: &str, fields: &Map<String, Value>) -> Option<String> {
        if !self.surface.reads_key_env() || fields.contains_key("api_key") {
            return None;
        }
        api_key_env_vars(slug).into_iter().find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }
}

/// The environment variables a provider's official SDK reads its key from, in order:
/// `<SLUG>_API_KEY` unless the provider's SDK says otherwise.
pub fn api_key_env_vars(slug: &str) -> Vec<String> {
    match slug {
        "google" => vec!["GEMINI_API_KEY".into(), "GOOGLE_API_KEY".into()],
        "cohere" => vec!["CO_API_KEY".into(), "COHERE_API_KEY".into()],
        "together-ai" => vec!["TOGETHER_API_KEY".into()],
        "x-ai" => vec!["XAI_API_KEY".into()],
        "mistral-ai" => vec!["MISTRAL_API_KEY".into()],
        "perplexity-ai" => vec!["PERPLEXITY_API_KEY".into()],
        "fireworks-ai" => vec!["FIREWORKS_API_KEY".into()],
        // Credentials that are not one key (AWS, Google service accounts) come from the
        // provider fields, not one variable.
        "bedrock" | "vertex-ai" => Vec::new(),
        other => vec![format!("{}_API_KEY", other.to_ascii_uppercase().replace('-', "_"))],
    }
}

/// The options that do not choose what is called.
fn per_request(options: &Options) -> RequestOptions {
    RequestOptions {
        config: None,
        provider: None,
        metadata: Arc::new(Value::Object(options.metadata.as_ref().map(|m| m.0.clone()).unwrap_or_default())),
        trace_id: options.trace_id.as_ref().map(|t| t.0.clone()).filter(|t| !t.is_empty()),
        custom_host: options.custom_host.as_ref().map(|h| h.0.clone()),
        request_timeout: options.request_timeout.map(|ms| Duration::from_millis(ms.0)),
        forward_headers: options.forward_headers.as_ref().map(|h| h.0.clone()),
        cache_force_refresh: options.cache_force_refresh.is_some_and(|f| f.0),
        cache_namespace: options.cache_namespace.as_ref().map(|n| n.0.clone()).filter(|n| !n.is_empty()),
        via: None,
    }
}
