//! `x-portkey-*` request headers → [`RequestOptions`].

use std::sync::Arc;
use std::time::Duration;

use gateway_core::config::ProviderTarget;
use gateway_core::{GatewayError, RequestOptions};
use http::HeaderMap;
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

fn text<'h>(headers: &'h HeaderMap, name: &str) -> Result<Option<&'h str>, GatewayError> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .map(|s| Some(s.trim()))
            .map_err(|_| GatewayError::request(name, format!("header `{name}` is not valid text"))),
    }
}

/// The request's own provider, from `x-portkey-provider` and its credential headers.
fn request_provider(headers: &HeaderMap) -> Result<Option<ProviderTarget>, GatewayError> {
    let Some(slug) = text(headers, "x-portkey-provider")?.filter(|s| !s.is_empty()) else {
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
    let provider = request_provider(headers)?.map(Arc::new);
    let config = configs.resolve(text(headers, "x-portkey-config")?, provider.is_some()).map_err(|mut e| {
        // Say which header the bad config came from.
        if e.param.as_deref().is_none_or(str::is_empty) {
            e.param = Some("x-portkey-config".into());
        }
        e
    })?;
    let metadata = match text(headers, "x-portkey-metadata")? {
        None | Some("") => Value::Object(Map::new()),
        Some(raw) => match serde_json::from_str::<Value>(raw) {
            Ok(v @ Value::Object(_)) => v,
            _ => return Err(GatewayError::request("x-portkey-metadata", "x-portkey-metadata must be a JSON object")),
        },
    };
    let request_timeout = match text(headers, "x-portkey-request-timeout")? {
        None | Some("") => None,
        Some(raw) => Some(Duration::from_millis(raw.parse::<u64>().map_err(|_| {
            GatewayError::request(
                "x-portkey-request-timeout",
                "x-portkey-request-timeout must be milliseconds (an integer)",
            )
        })?)),
    };
    let custom_host = text(headers, "x-portkey-custom-host")?.filter(|h| !h.is_empty()).map(str::to_owned);
    if let Some(host) = &custom_host {
        let ok = host
            .parse::<http::Uri>()
            .is_ok_and(|u| matches!(u.scheme_str(), Some("http" | "https")) && u.authority().is_some());
        if !ok {
            return Err(GatewayError::request("x-portkey-custom-host", "x-portkey-custom-host must be an http(s) URL"));
        }
    }
    let forward_headers = match text(headers, "x-portkey-forward-headers")? {
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
    let cache_force_refresh = text(headers, "x-portkey-cache-force-refresh")?.is_some_and(|v| v != "false");
    Ok(RequestOptions {
        config,
        provider,
        metadata: Arc::new(metadata),
        trace_id: text(headers, "x-portkey-trace-id")?.filter(|t| !t.is_empty()).map(str::to_owned),
        custom_host: custom_host.map(|h| h.trim_end_matches('/').to_owned()),
        request_timeout,
        forward_headers,
        cache_force_refresh,
        cache_namespace: text(headers, "x-portkey-cache-namespace")?.filter(|n| !n.is_empty()).map(str::to_owned),
    })
}
