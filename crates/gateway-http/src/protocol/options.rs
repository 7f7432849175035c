//! Request options, declared once.
//!
//! Every option a caller can set — as an `x-portkey-*` header, as a client option of the
//! Python or Node binding (snake_case or camelCase), or per call — is one line of the
//! [`options!`] table below. The table makes the [`Options`] struct, its overlay, its JSON
//! and header readers and the [`OPTIONS`] list that the bindings' names, stubs and docs
//! are checked against, so adding an option is one line plus its docs.

use serde_json::{Map, Value};

use gateway_core::GatewayError;
use gateway_core::json_path::kind_of;

/// One option as the outside world spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionSpec {
    /// snake_case: the Python keyword and the facade's JSON key.
    pub name: &'static str,
    /// camelCase: the Node option name.
    pub camel: &'static str,
    /// The `x-portkey-*` request header, for options a request can set by header.
    pub header: Option<&'static str>,
    /// The Python type in the `.pyi` stub.
    pub python_type: &'static str,
    /// The TypeScript type in the `.d.ts` / `.d.mts`.
    pub typescript_type: &'static str,
    /// One line of docs.
    pub doc: &'static str,
}

/// A value an option can hold: how it reads from a binding's JSON and from a header.
pub trait OptionValue: Sized + Clone {
    /// The Python type in the stub.
    const PYTHON: &'static str;
    /// The TypeScript type in the typings.
    const TYPESCRIPT: &'static str;
    /// From a binding's JSON value (never `null`: null means "not set").
    fn from_json(value: Value) -> Result<Self, String>;
    /// From a header's text (trimmed, not empty).
    fn from_header(text: &str) -> Result<Self, String>;
}

macro_rules! options {
    ($( #[doc = $doc:literal] $name:ident : $ty:ty = $camel:literal, $header:expr; )*) => {
        /// Request options as the outside world gives them, before they are checked and
        /// compiled into the engine's `RequestOptions` (see [`super::Resolver`]). Every
        /// field is optional; in an overlay, a set field wins.
        #[derive(Debug, Clone, Default)]
        pub struct Options {
            $( #[doc = $doc] pub $name: Option<$ty>, )*
        }

        /// Every option, in declaration order.
        pub const OPTIONS: &[OptionSpec] = &[$(OptionSpec {
            name: stringify!($name),
            camel: $camel,
            header: $header,
            python_type: <$ty as OptionValue>::PYTHON,
            typescript_type: <$ty as OptionValue>::TYPESCRIPT,
            doc: $doc.trim_ascii(),
        },)*];

        impl Options {
            /// These options with `top`'s set fields in place of ours.
            pub fn overlay(&self, top: &Options) -> Options {
                Options { $( $name: top.$name.clone().or_else(|| self.$name.clone()), )* }
            }

            /// Whether no option is set.
            pub fn is_empty(&self) -> bool {
                true $( && self.$name.is_none() )*
            }

            /// Set the option named `key` (snake_case or camelCase) from JSON.
            fn set_json(&mut self, key: &str, value: Value) -> Result<(), GatewayError> {
                $( if key == stringify!($name) || key == $camel {
                    if !value.is_null() {
                        self.$name = Some(<$ty>::from_json(value)
                            .map_err(|e| GatewayError::request(stringify!($name), format!("option `{key}`: {e}")))?);
                    }
                    return Ok(());
                } )*
                let known: Vec<&str> = OPTIONS.iter().map(|o| o.name).collect();
                Err(GatewayError::request(key, format!("unknown option `{key}` (known: {})", known.join(", "))))
            }

            /// Set the option read from header `name` (an `x-portkey-*` header of the
            /// table); `Ok(false)` for any other header.
            fn set_header(&mut self, name: &str, text: &str) -> Result<bool, GatewayError> {
                $( if let Some(header) = Option::<&'static str>::from($header) && name == header {
                    if self.$name.is_none() && !text.is_empty() {
                        self.$name = Some(<$ty>::from_header(text)
                            .map_err(|e| GatewayError::request(header, format!("header `{header}`: {e}")))?);
                    }
                    return Ok(true);
                } )*
                Ok(false)
            }
        }
    };
}

options! {
    /// A config: an object, JSON text, or the name of a config (a `--config-dir` file on the server, a file path in the bindings).
    config: ConfigRef = "config", Some("x-portkey-config");
    /// Provider slug, used when there is no config (or for leaves without one); `@slug` names a registry entry.
    provider: Text = "provider", Some("x-portkey-provider");
    /// A registry provider entry, by its slug (as `provider: "@slug"`).
    virtual_key: Text = "virtualKey", Some("x-portkey-virtual-key");
    /// The provider's key; with `x-portkey-provider`, the request's `Authorization` bearer. A client with `provider` and no key reads the provider's usual environment variable.
    api_key: Text = "apiKey", None;
    /// Other provider fields (`resource_name`, `aws_region`, ...); with `x-portkey-provider`, Portkey's provider headers.
    provider_options: Fields = "providerOptions", None;
    /// Replaces every target's base URL.
    custom_host: BaseUrl = "customHost", Some("x-portkey-custom-host");
    /// Request metadata for conditional routing.
    metadata: Metadata = "metadata", Some("x-portkey-metadata");
    /// Trace id reported in route info and the `x-portkey-trace-id` answer header.
    trace_id: Text = "traceId", Some("x-portkey-trace-id");
    /// Per-attempt timeout in milliseconds, overriding the config's.
    request_timeout: Millis = "requestTimeout", Some("x-portkey-request-timeout");
    /// Caller headers copied to the upstream, overriding the config's list.
    forward_headers: HeaderNames = "forwardHeaders", Some("x-portkey-forward-headers");
    /// Skip the cache lookup (the answer is still stored).
    cache_force_refresh: Flag = "cacheForceRefresh", Some("x-portkey-cache-force-refresh");
    /// Cache namespace: answers are shared only within one.
    cache_namespace: Text = "cacheNamespace", Some("x-portkey-cache-namespace");
}

/// Provider headers (Portkey's header set, section 6.1) → provider fields. Read only with
/// `x-portkey-provider`: they describe the request's own provider.
pub const PROVIDER_FIELD_HEADERS: &[(&str, &str)] = &[
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

impl Options {
    /// Options from a JSON object (a binding's client or call options). Unknown keys
    /// are errors naming the key; `null` values mean "not set".
    pub fn from_json(value: Value) -> Result<Self, GatewayError> {
        let object = match value {
            Value::Object(object) => object,
            Value::Null => Map::new(),
            _ => return Err(GatewayError::request("", "options must be an object")),
        };
        let mut options = Options::default();
        for (key, value) in object {
            options.set_json(&key, value)?;
        }
        Ok(options)
    }

    /// Options from a request's headers: the `x-portkey-*` headers of the table, in one
    /// pass (most requests carry one or none). With `x-portkey-provider`, the request's
    /// key (`Authorization: Bearer`, `x-api-key`, `api-key`) and provider headers too.
    /// Bad values are 400s naming the header; of repeated headers the first wins.
    pub fn from_headers(headers: &http::HeaderMap) -> Result<Self, GatewayError> {
        let mut options = Options::default();
        for (name, value) in headers {
            let name = name.as_str();
            if !name.starts_with("x-portkey-") {
                continue;
            }
            let text = header_text(name, value)?;
            options.set_header(name, text)?;
        }
        // A registry entry brings its own credentials: then `Authorization` is not a
        // provider key (it may be the caller's gateway key).
        if options.provider.as_ref().is_some_and(|p| !p.0.starts_with('@')) {
            options.api_key = request_key(headers)?.map(Text);
            let mut fields = Map::new();
            for (header, field) in PROVIDER_FIELD_HEADERS {
                let Some(value) = headers.get(*header) else { continue };
                let text = header_text(header, value)?;
                if text.is_empty() || fields.contains_key(*field) {
                    continue;
                }
                let value = if *field == "vertex_service_account_json" {
                    serde_json::from_str(text)
                        .map_err(|e| GatewayError::request(*header, format!("`{header}` is not valid JSON: {e}")))?
                } else {
                    Value::String(text.to_owned())
                };
                fields.insert((*field).to_owned(), value);
            }
            options.provider_options = (!fields.is_empty()).then_some(Fields(fields));
        }
        Ok(options)
    }

    /// Whether these options choose what is called (config, provider, key), as opposed
    /// to options that only shape one request (metadata, trace id, cache flags, ...).
    pub fn changes_routing(&self) -> bool {
        self.config.is_some()
            || self.provider.is_some()
            || self.virtual_key.is_some()
            || self.api_key.is_some()
            || self.provider_options.is_some()
    }
}

fn header_text<'h>(name: &str, value: &'h http::HeaderValue) -> Result<&'h str, GatewayError> {
    value.to_str().map(str::trim).map_err(|_| GatewayError::request(name, format!("header `{name}` is not valid text")))
}

/// The request's own key: `Authorization: Bearer`, else `x-api-key`, else `api-key` (the
/// OpenAI, Anthropic and Azure SDKs' `api_key`).
pub(crate) fn request_key(headers: &http::HeaderMap) -> Result<Option<String>, GatewayError> {
    for name in ["authorization", "x-api-key", "api-key"] {
        let Some(value) = headers.get(name) else { continue };
        let text = header_text(name, value)?;
        let key = if name == "authorization" {
            text.strip_prefix("Bearer ").or_else(|| text.strip_prefix("bearer ")).unwrap_or(text).trim()
        } else {
            text
        };
        if !key.is_empty() {
            return Ok(Some(key.to_owned()));
        }
    }
    Ok(None)
}

/// A config as the outside names it.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigRef {
    /// A config object.
    Object(Map<String, Value>),
    /// JSON text (starts with `{`), or a name.
    Text(String),
}

impl OptionValue for ConfigRef {
    const PYTHON: &'static str = "Union[Dict[str, Any], str, os.PathLike[str]]";
    const TYPESCRIPT: &'static str = "Record<string, unknown> | string";
    fn from_json(value: Value) -> Result<Self, String> {
        match value {
            Value::Object(object) => Ok(Self::Object(object)),
            Value::String(text) => Ok(Self::Text(text)),
            _ => Err("a config must be an object, JSON text or a name".to_owned()),
        }
    }
    fn from_header(text: &str) -> Result<Self, String> {
        Ok(Self::Text(text.to_owned()))
    }
}

/// Text (a slug, an id, a URL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text(pub String);

impl OptionValue for Text {
    const PYTHON: &'static str = "str";
    const TYPESCRIPT: &'static str = "string";
    fn from_json(value: Value) -> Result<Self, String> {
        match value {
            Value::String(text) => Ok(Self(text)),
            other => Err(format!("expected a string, got {}", kind_of(&other))),
        }
    }
    fn from_header(text: &str) -> Result<Self, String> {
        Ok(Self(text.to_owned()))
    }
}

/// An absolute `http(s)://` base URL, without a trailing `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl(pub String);

impl BaseUrl {
    fn new(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let ok = text
            .parse::<http::Uri>()
            .is_ok_and(|u| matches!(u.scheme_str(), Some("http" | "https")) && u.authority().is_some());
        if !ok {
            return Err("must be an http(s) URL".to_owned());
        }
        Ok(Self(text.trim_end_matches('/').to_owned()))
    }
}

impl OptionValue for BaseUrl {
    const PYTHON: &'static str = "str";
    const TYPESCRIPT: &'static str = "string";
    fn from_json(value: Value) -> Result<Self, String> {
        match value {
            Value::String(text) => Self::new(&text),
            other => Err(format!("expected a URL, got {}", kind_of(&other))),
        }
    }
    fn from_header(text: &str) -> Result<Self, String> {
        Self::new(text)
    }
}

/// A JSON object of provider fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Fields(pub Map<String, Value>);

impl OptionValue for Fields {
    const PYTHON: &'static str = "Dict[str, Any]";
    const TYPESCRIPT: &'static str = "Record<string, unknown>";
    fn from_json(value: Value) -> Result<Self, String> {
        match value {
            Value::Object(object) => Ok(Self(object)),
            other => Err(format!("expected an object, got {}", kind_of(&other))),
        }
    }
    fn from_header(_: &str) -> Result<Self, String> {
        Err("provider fields come from provider headers".to_owned())
    }
}

/// Request metadata: a JSON object.
#[derive(Debug, Clone, PartialEq)]
pub struct Metadata(pub Map<String, Value>);

impl OptionValue for Metadata {
    const PYTHON: &'static str = "Dict[str, Any]";
    const TYPESCRIPT: &'static str = "Record<string, unknown>";
    fn from_json(value: Value) -> Result<Self, String> {
        match value {
            Value::Object(object) => Ok(Self(object)),
            other => Err(format!("metadata must be an object, got {}", kind_of(&other))),
        }
    }
    fn from_header(text: &str) -> Result<Self, String> {
        match serde_json::from_str(text) {
            Ok(Value::Object(object)) => Ok(Self(object)),
            _ => Err("must be a JSON object".to_owned()),
        }
    }
}

/// A duration in whole milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Millis(pub u64);

impl OptionValue for Millis {
    const PYTHON: &'static str = "int";
    const TYPESCRIPT: &'static str = "number";
    fn from_json(value: Value) -> Result<Self, String> {
        value.as_u64().map(Self).ok_or_else(|| format!("expected milliseconds (a non-negative integer), got {value}"))
    }
    fn from_header(text: &str) -> Result<Self, String> {
        text.parse().map(Self).map_err(|_| "must be milliseconds (an integer)".to_owned())
    }
}

/// A yes/no switch; as a header, any value but `false` is yes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flag(pub bool);

impl OptionValue for Flag {
    const PYTHON: &'static str = "bool";
    const TYPESCRIPT: &'static str = "boolean";
    fn from_json(value: Value) -> Result<Self, String> {
        value.as_bool().map(Self).ok_or_else(|| format!("expected a boolean, got {}", kind_of(&value)))
    }
    fn from_header(text: &str) -> Result<Self, String> {
        Ok(Self(text != "false"))
    }
}

/// Header names, lower-cased; as a header, a comma-separated list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderNames(pub Vec<String>);

impl HeaderNames {
    fn new(names: impl IntoIterator<Item = String>) -> Result<Self, String> {
        let names: Vec<String> =
            names.into_iter().map(|h| h.trim().to_ascii_lowercase()).filter(|h| !h.is_empty()).collect();
        if names.iter().any(|h| h == "x-portkey-forward-headers") {
            return Err("forward_headers must not contain the 'x-portkey-forward-headers' header".to_owned());
        }
        Ok(Self(names))
    }
}

impl OptionValue for HeaderNames {
    const PYTHON: &'static str = "List[str]";
    const TYPESCRIPT: &'static str = "string[]";
    fn from_json(value: Value) -> Result<Self, String> {
        let Value::Array(items) = value else { return Err("expected a list of header names".to_owned()) };
        let names = items
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                other => Err(format!("expected a header name, got {}", kind_of(&other))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(names)
    }
    fn from_header(text: &str) -> Result<Self, String> {
        Self::new(text.split(',').map(str::to_owned))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn snake_and_camel_case_set_the_same_option_and_unknown_keys_are_named() {
        let a = Options::from_json(serde_json::json!({"trace_id": "t", "request_timeout": 5})).unwrap();
        let b = Options::from_json(serde_json::json!({"traceId": "t", "requestTimeout": 5})).unwrap();
        assert_eq!((a.trace_id, a.request_timeout), (b.trace_id, b.request_timeout));
        let e = Options::from_json(serde_json::json!({"traceID": "t"})).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("traceID"));
        assert!(e.message.contains("trace_id"), "{}", e.message);
        let e = Options::from_json(serde_json::json!({"metadata": [1]})).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("metadata"));
    }

    #[test]
    fn every_option_header_reads_back_into_its_own_field() {
        let mut headers = http::HeaderMap::new();
        for spec in OPTIONS {
            let Some(header) = spec.header else { continue };
            let value = match spec.typescript_type {
                _ if spec.name == "custom_host" => "http://127.0.0.1:1/v1",
                "number" => "5",
                "boolean" => "true",
                "Record<string, unknown>" => "{}",
                _ => "x",
            };
            headers.insert(http::HeaderName::from_static(header), http::HeaderValue::from_static(value));
        }
        let options = Options::from_headers(&headers).unwrap();
        assert!(options.config.is_some() && options.provider.is_some() && options.metadata.is_some());
        assert!(options.trace_id.is_some() && options.custom_host.is_some() && options.request_timeout.is_some());
        assert!(options.forward_headers.is_some() && options.cache_force_refresh.is_some());
        assert!(options.cache_namespace.is_some() && options.virtual_key.is_some());
        assert_eq!(OPTIONS.iter().filter(|s| s.header.is_some()).count(), 10, "every header option is covered above");
    }

    #[test]
    fn overlay_takes_the_top_layer_where_it_is_set() {
        let base = Options::from_json(serde_json::json!({"trace_id": "a", "cache_namespace": "n"})).unwrap();
        let top = Options::from_json(serde_json::json!({"trace_id": "b"})).unwrap();
        let both = base.overlay(&top);
        assert_eq!(both.trace_id, Some(Text("b".into())));
        assert_eq!(both.cache_namespace, Some(Text("n".into())));
        assert!(!top.changes_routing());
        assert!(Options::from_json(serde_json::json!({"provider": "openai"})).unwrap().changes_routing());
    }
}
