//! Gateway keys: who is calling, and what they may use. Only when the registry defines
//! keys; then every request must bring one, as `x-portkey-api-key` or as the SDK's `api_key`
//! (OpenAI's `Authorization: Bearer`, Anthropic's `x-api-key`). A key is never logged or echoed: errors say what
//! was refused, not with what.

use gateway_core::registry::GatewayKey;
use gateway_core::{Config, ErrorCode, GatewayError};
use http::HeaderMap;
use serde_json::Value;

use super::configs::RegistryView;
use super::options::{ConfigRef, Metadata, Options, Text, request_key};

/// The gateway key a request brings, if the registry wants one. `Ok(None)`: the registry
/// has no keys, so requests are not authenticated.
pub fn authenticate<'r>(headers: &HeaderMap, view: &'r RegistryView) -> Result<Option<&'r GatewayKey>, GatewayError> {
    if !view.registry.has_keys() {
        return Ok(None);
    }
    let portkey =
        headers.get("x-portkey-api-key").and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty());
    let presented = match (portkey, request_key(headers).ok().flatten()) {
        (Some(key), _) => view.registry.key(key),
        // The SDK's api_key (OpenAI's bearer, Anthropic's x-api-key): a gateway key only if
        // it is one (it may be a provider key sent with x-portkey-provider, when another
        // header carries the gateway key).
        (None, Some(sdk_key)) => view.registry.key(&sdk_key),
        (None, None) => {
            return Err(GatewayError::new(
                ErrorCode::Unauthorized,
                "this gateway needs a gateway key: send it as x-portkey-api-key, or as the SDK's api_key",
            ));
        }
    };
    presented.map(Some).ok_or_else(|| GatewayError::new(ErrorCode::Unauthorized, "the gateway key is not valid"))
}

/// The key's defaults, under what the request says: its metadata (and its name, as
/// `gateway_key`, for conditional routing) and its default config. A bearer that was the
/// gateway key is not a provider key.
pub fn apply_key(key: &GatewayKey, headers: &HeaderMap, options: &mut Options) {
    let mut metadata = options.metadata.take().map(|m| m.0).unwrap_or_default();
    for (k, v) in &key.metadata {
        metadata.entry(k.clone()).or_insert_with(|| v.clone());
    }
    metadata.entry("gateway_key".to_owned()).or_insert_with(|| Value::String(key.name.clone()));
    options.metadata = Some(Metadata(metadata));
    if options.config.is_none() {
        options.config = key.config.clone().map(ConfigRef::Text);
    }
    let sdk_key = request_key(headers).ok().flatten();
    if options
        .api_key
        .as_ref()
        .is_some_and(|Text(k)| Some(k) == sdk_key.as_ref() && headers.get("x-portkey-api-key").is_none())
    {
        options.api_key = None;
    }
}

/// Whether `key` may make this request: the registry entry it names (`@slug`, a virtual
/// key, `@slug/model`), the registry config it names, the entries an inline config of its
/// own names, and the model. Entries inside a registry config the key may use are allowed
/// with it.
pub fn check_scope(
    key: &GatewayKey,
    options: &Options,
    config: Option<&Config>,
    model: Option<&str>,
    view: &RegistryView,
) -> Result<(), GatewayError> {
    let refuse = |what: String| {
        Err(GatewayError::new(ErrorCode::Forbidden, format!("the gateway key `{}` may not use {what}", key.name)))
    };
    let allowed = |list: &Option<Vec<String>>, name: &str| list.as_ref().is_none_or(|l| l.iter().any(|n| n == name));
    let named = options
        .virtual_key
        .as_ref()
        .map(|k| k.0.as_str())
        .or_else(|| options.provider.as_ref().and_then(|p| p.0.strip_prefix('@')));
    if let Some(slug) = named.filter(|s| !allowed(&key.providers, s)) {
        return refuse(format!("the provider `{slug}`"));
    }
    match &options.config {
        Some(ConfigRef::Text(id)) if view.registry.config(id.trim()).is_some() && !allowed(&key.configs, id.trim()) => {
            return refuse(format!("the config `{}`", id.trim()));
        }
        Some(ConfigRef::Text(id)) if view.registry.config(id.trim()).is_some() => {}
        Some(_) => {
            for slug in config.map(Config::entries).unwrap_or_default() {
                if !allowed(&key.providers, slug) {
                    return refuse(format!("the provider `{slug}`"));
                }
            }
        }
        None => {}
    }
    if let Some(model) = model.filter(|m| !allowed(&key.models, m)) {
        return refuse(format!("the model `{model}`"));
    }
    Ok(())
}
