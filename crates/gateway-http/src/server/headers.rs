//! `x-portkey-*` request headers → [`RequestOptions`].

use std::sync::Arc;
use std::time::Duration;

use gateway_core::config::ProviderTarget;
use gateway_core::{GatewayError, RequestOptions};
use http::{HeaderMap, HeaderValue};
use serde_json::{Map, Value};

use super::configs::ConfigStore;

/// Provider option headers → config field names (Portkey's header set, section 6.1).
const PROVIDER_OPTION_HEADERS: &[(&str, &str)] = &[
    ("x-portkey-azure-resource-name", "resource_name"),
    ("x-portkey-azure-deployment-id", "deployment_id"),
    ("x-portkey-azure-api-version", "api_version"),
    ("x-portkey-azure-ad-token", "azure_ad_token"),
    ("x-portkey-azure-model-name", "azure_model_name"),
    ("x-portkey-aws-access-key-id", "aws_access_key_id"),
    ("x-portkey-aws-secret-access-key", "aws_secret_access_key"),
    ("x-portkey-aws-session-token", "aws_session_token"),
    ("x-portkey-aws-region", "aws_region"),
    ("x-portkey-vertex-project-id", "vertex_project_id"),
    ("x-portkey-vertex-region", "vertex_region"),
    ("x-portkey-vertex-service-account-json", "vertex_service_account_json"),
    ("x-portkey-openai-organization", "openai_organization"),
    ("x-portkey-openai-project", "openai_project"),
    ("x-portkey-openai-beta", "openai_beta"),
    ("x-portkey-anthropic-version", "anthropic_version"),
    ("x-portkey-anthropic-beta", "anthropic_beta"),
    ("anthropic-version", "anthropic_version"),
    ("anthropic-beta", "anthropic_beta"),
];

/// The `x-portkey-*` headers that shape routing, found in one pass over the request's
/// headers: most requests carry one or none, and looking up a dozen names one by one
/// costs more than the routing decision itself.
#[derive(Default)]
struct PortkeyHeaders<'h> {
    config: Option<&'h HeaderValue>,
    provider: Option<&'h HeaderValue>,
    metadata: Option<&'h HeaderValue>,
    trace_id: Option<&'h HeaderValue>,
    custom_host: Option<&'h HeaderValue>,
    request_timeout: Option<&'h HeaderValue>,
    forward_headers: Option<&'h HeaderValue>,
    cache_force_refresh: Option<&'h HeaderValue>,
    cache_namespace: Option<&'h HeaderValue>,
}

impl<'h> PortkeyHeaders<'h> {
    fn scan(headers: &'h HeaderMap) -> Self {
        let mut found = Self::default();
        for (name, value) in headers {
            let Some(suffix) = name.as_str().strip_prefix("x-portkey-") else { continue };
            let slot = match suffix {
                "config" => &mut found.config,
                "provider" => &mut found.provider,
                "metadata" => &mut found.metadata,
                "trace-id" => &mut found.trace_id,
                "custom-host" => &mut found.custom_host,
                "request-timeout" => &mut found.request_timeout,
                "forward-headers" => &mut found.forward_headers,
                "cache-force-refresh" => &mut found.cache_force_refresh,
                "cache-namespace" => &mut found.cache_namespace,
                _ => continue,
            };
            // The first of repeated headers wins, as with `HeaderMap::get`.
            slot.get_or_insert(value);
        }
        found
    }
}

/// A header's value as trimmed text; `name` is for the error.
fn text_of<'h>(name: &str, value: Option<&'h HeaderValue>) -> Result<Option<&'h str>, GatewayError> {
    match value {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .map(|s| Some(s.trim()))
            .map_err(|_| GatewayError::request(name, format!("header `{name}` is not valid text"))),
    }
}

fn text<'h>(headers: &'h HeaderMap, name: &str) -> Result<Option<&'h str>, GatewayError> {
    text_of(name, headers.get(name))
}

/// The request's own provider `slug`, with the credential headers that go with it.
fn request_provider(headers: &HeaderMap, slug: Option<&str>) -> Result<Option<ProviderTarget>, GatewayError> {
    let Some(slug) = slug.filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let mut options = Map::new();
    let bearer = text(headers, "authorization")?
        .map(|a| a.strip_prefix("Bearer ").or_else(|| a.strip_prefix("bearer ")).unwrap_or(a).trim().to_owned());
    let key = bearer
        .or(text(headers, "x-api-key")?.map(str::to_owned))
        .or(text(headers, "api-key")?.map(str::to_owned))
        .filter(|k| !k.is_empty());
    if let Some(key) = key {
        options.insert("api_key".into(), Value::String(key));
    }
    for (header, field) in PROVIDER_OPTION_HEADERS {
        if let Some(v) = text(headers, header)?.filter(|v| !v.is_empty()) {
            let value = if *field == "vertex_service_account_json" {
                serde_json::from_str(v)
                    .map_err(|e| GatewayError::request(*header, format!("`{header}` is not valid JSON: {e}")))?
            } else {
                Value::String(v.to_owned())
            };
            options.entry(field.to_string()).or_insert(value);
        }
    }
    ProviderTarget::new(slug, options).map(Some).ok_or_else(|| {
        GatewayError::request(
            "x-portkey-provider",
            format!("unknown provider `{slug}` (known: {})", gateway_core::providers::slugs().join(", ")),
        )
    })
}

/// Every option a request's headers carry. Bad values are 400s naming the header.
pub fn request_options(headers: &HeaderMap, configs: &ConfigStore) -> Result<RequestOptions, GatewayError> {
    let portkey = PortkeyHeaders::scan(headers);
    let provider = request_provider(headers, text_of("x-portkey-provider", portkey.provider)?)?.map(Arc::new);
    let config =
        configs.resolve(text_of("x-portkey-config", portkey.config)?, provider.is_some()).map_err(|mut e| {
            // Say which header the bad config came from.
            if e.param.as_deref().is_none_or(str::is_empty) {
                e.param = Some("x-portkey-config".into());
            }
            e
        })?;
    let metadata = match text_of("x-portkey-metadata", portkey.metadata)? {
        None | Some("") => Value::Object(Map::new()),
        Some(raw) => match serde_json::from_str::<Value>(raw) {
            Ok(v @ Value::Object(_)) => v,
            _ => return Err(GatewayError::request("x-portkey-metadata", "x-portkey-metadata must be a JSON object")),
        },
    };
    let request_timeout = match text_of("x-portkey-request-timeout", portkey.request_timeout)? {
        None | Some("") => None,
        Some(raw) => Some(Duration::from_millis(raw.parse::<u64>().map_err(|_| {
            GatewayError::request(
                "x-portkey-request-timeout",
                "x-portkey-request-timeout must be milliseconds (an integer)",
            )
        })?)),
    };
    let custom_host =
        text_of("x-portkey-custom-host", portkey.custom_host)?.filter(|h| !h.is_empty()).map(str::to_owned);
    if let Some(host) = &custom_host {
        let ok = host
            .parse::<http::Uri>()
            .is_ok_and(|u| matches!(u.scheme_str(), Some("http" | "https")) && u.authority().is_some());
        if !ok {
            return Err(GatewayError::request("x-portkey-custom-host", "x-portkey-custom-host must be an http(s) URL"));
        }
    }
    let forward_headers = match text_of("x-portkey-forward-headers", portkey.forward_headers)? {
        None | Some("") => None,
        Some(list) => {
            let names: Vec<String> =
                list.split(',').map(|h| h.trim().to_ascii_lowercase()).filter(|h| !h.is_empty()).collect();
            if names.iter().any(|h| h == "x-portkey-forward-headers") {
                return Err(GatewayError::request(
                    "x-portkey-forward-headers",
                    "forward_headers must not contain the 'x-portkey-forward-headers' header",
                ));
            }
            Some(names)
        }
    };
    let cache_force_refresh =
        text_of("x-portkey-cache-force-refresh", portkey.cache_force_refresh)?.is_some_and(|v| v != "false");
    Ok(RequestOptions {
        config,
        provider,
        metadata: Arc::new(metadata),
        trace_id: text_of("x-portkey-trace-id", portkey.trace_id)?.filter(|t| !t.is_empty()).map(str::to_owned),
        custom_host: custom_host.map(|h| h.trim_end_matches('/').to_owned()),
        request_timeout,
        forward_headers,
        cache_force_refresh,
        cache_namespace: text_of("x-portkey-cache-namespace", portkey.cache_namespace)?
            .filter(|n| !n.is_empty())
            .map(str::to_owned),
    })
}
