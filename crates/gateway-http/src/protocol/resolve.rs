//! [`Options`] → the engine's [`RequestOptions`]: configs compiled (or taken from the
//! cache), the request's provider built, values checked. The one overlay every surface
//! uses: client defaults < `with_options` < per-call options < `x-portkey-*` headers.

use std::sync::Arc;
use std::time::Duration;

use gateway_core::providers::ProviderTarget;
use gateway_core::{GatewayError, RequestOptions};
use serde_json::{Map, Value};

use super::configs::{ConfigStore, RegistryView};
use super::options::Options;
use gateway_core::registry::ProviderEntry;

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

    /// The registry as it is now (one snapshot per request).
    pub fn registry(&self) -> RegistryView {
        self.configs.registry()
    }

    /// Resolve `options` on their own.
    pub fn resolve(&self, options: Options) -> Result<Resolved, GatewayError> {
        self.resolve_in(options, &self.registry())
    }

    /// Resolve `options` against this snapshot of the registry.
    pub fn resolve_in(&self, options: Options, view: &RegistryView) -> Result<Resolved, GatewayError> {
        let entry = named_entry(&options, view)?;
        let provider = match &entry {
            Some(entry) => Some(entry.target.clone()),
            None => self.request_provider(&options)?,
        };
        let config = self.configs.resolve(options.config.as_ref(), provider.is_some(), view).map_err(|mut e| {
            // Say which option the bad config came from.
            if e.param.as_deref().is_none_or(str::is_empty) {
                e.param = Some(self.surface.config_param().into());
            }
            e
        })?;
        if let (Some(config), None) = (&config, &provider) {
            config.require_providers()?;
        }
        // A request naming an entry and no config gets the entry's own defaults.
        let config = match (config, entry) {
            (None, Some(entry)) => Some(entry.single.clone()),
            (config, _) => config,
        };
        // With registry entries, each call may still name one (`model: "@slug/name"`).
        if config.is_none() && provider.is_none() && view.registry.providers().is_empty() {
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

/// The registry entry the options name: `virtual_key`, or `provider: "@slug"`. An entry
/// brings its credentials and fields, so the options may not add any.
fn named_entry<'v>(options: &Options, view: &'v RegistryView) -> Result<Option<&'v ProviderEntry>, GatewayError> {
    let by_provider = options.provider.as_ref().map(|p| p.0.as_str()).filter(|p| p.starts_with('@'));
    let by_key = options.virtual_key.as_ref().map(|k| k.0.as_str()).filter(|k| !k.is_empty());
    let (slug, param) = match (by_key, by_provider, options.provider.as_ref().filter(|p| !p.0.is_empty())) {
        (Some(_), _, Some(_)) => {
            return Err(GatewayError::config(
                "virtual_key",
                "name a provider once: a virtual key or a provider, not both",
            ));
        }
        (Some(key), _, None) => (key, "virtual_key"),
        (None, Some(provider), _) => (&provider[1..], "provider"),
        (None, None, _) => return Ok(None),
    };
    let Some(entry) = view.registry.providers().get(slug) else {
        return Err(gateway_core::registry::unknown_entry(slug, view.registry.providers(), param));
    };
    if options.api_key.is_some() || options.provider_options.is_some() {
        return Err(GatewayError::config(
            param,
            format!("`{slug}` is a registry entry: its credentials and fields are set in the registry"),
        ));
    }
    Ok(Some(entry))
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
        // Set by the server (the key it checked and its limits, the trace it joins or starts).
        key: None,
        // Set by whoever renders a registry prompt into the request.
        prompt: None,
        limits: Arc::default(),
        trace_context: None,
        custom_host: options.custom_host.as_ref().map(|h| h.0.clone()),
        request_timeout: options.request_timeout.map(|ms| Duration::from_millis(ms.0)),
        forward_headers: options.forward_headers.as_ref().map(|h| h.0.clone()),
        cache_force_refresh: options.cache_force_refresh.is_some_and(|f| f.0),
        cache_namespace: options.cache_namespace.as_ref().map(|n| n.0.clone()).filter(|n| !n.is_empty()),
        via: None,
    }
}

/// `model: "@slug/name"`: the body names a registry entry and a model. The entry becomes
/// the request's provider (as `provider: "@slug"` would make it) and the body gets the
/// bare model name (spliced into the caller's bytes). A body whose `model` does not start
/// with `@` costs nothing here: its shape, read anyway, says so.
pub fn address_model(
    request: &mut gateway_core::GatewayRequest,
    options: &mut Options,
    view: &RegistryView,
) -> Result<(), GatewayError> {
    // A realtime session names its model in the query (`?model=@slug/model`).
    let model = match request.endpoint {
        gateway_core::Endpoint::Realtime => request.query_param("model").filter(|m| m.starts_with('@')),
        _ => request.body.shape().and_then(|shape| shape.model_entry().map(str::to_owned)),
    };
    let Some(model) = model else {
        return Ok(());
    };
    let Some((slug, name)) = model[1..].split_once('/').filter(|(s, n)| !s.is_empty() && !n.is_empty()) else {
        return Err(GatewayError::request("model", format!("`{model}` is not `@slug/model`")));
    };
    if view.registry.providers().get(slug).is_none() {
        return Err(gateway_core::registry::unknown_entry(slug, view.registry.providers(), "model"));
    }
    let named = options.provider.as_ref().map(|p| p.0.as_str()).or(options.virtual_key.as_ref().map(|k| k.0.as_str()));
    if named.is_some_and(|n| !n.is_empty() && n.trim_start_matches('@') != slug) {
        return Err(GatewayError::request("model", format!("`{model}` names another provider than the request's")));
    }
    options.provider = Some(super::options::Text(format!("@{slug}")));
    options.virtual_key = None;
    if request.endpoint == gateway_core::Endpoint::Realtime {
        request.set_query_param("model", name);
        return Ok(());
    }
    request.body.set_model(&model, name)
}
