//! The one error type of the engine.
//!
//! Every failure the engine reports — a bad config, a malformed body, an upstream that
//! answered with an error, a timeout — is a [`GatewayError`] with a closed [`ErrorCode`].
//! The code knows its HTTP status and whether a retry could help, so the server, the
//! bindings and the retry loop all read the same facts from one place.

use std::fmt;

/// Stable, snake_case error codes. The set is closed: adding one is an API change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The gateway config is invalid (400); `param` holds the JSON path.
    InvalidConfig,
    /// The request body or a request header is malformed (400).
    InvalidRequest,
    /// A conditional strategy matched no condition and has no default (400).
    NoRouteMatched,
    /// The chosen provider does not offer this endpoint (400).
    UnsupportedEndpoint,
    /// The config names a virtual key the gateway does not know (400).
    UnknownVirtualKey,
    /// An attempt exceeded `request_timeout` (408).
    Timeout,
    /// The request body exceeds the configured limit (413).
    PayloadTooLarge,
    /// A guardrail hook denied the request (446).
    HooksFailed,
    /// The upstream rate-limited the request (429).
    RateLimited,
    /// The upstream could not be reached: refused, reset, DNS, TLS, connect timeout (502).
    UpstreamConnectionError,
    /// The upstream is overloaded (503 / 529).
    Overloaded,
    /// The upstream answered with an error status; the status is kept as is.
    UpstreamError,
    /// A streamed answer broke after it started.
    StreamError,
    /// A bug in the gateway (500). Never used for the caller's mistakes.
    Internal,
    /// The server's credentials would go to a host the caller chose (403): a caller-chosen
    /// host is honoured only with credentials the caller supplied.
    ForbiddenCustomHost,
    /// The request came back to a gateway it already passed through (508).
    LoopDetected,
    /// The request used up its upstream attempts, retries and fallbacks together (502).
    AttemptLimitReached,
    /// The request's overall deadline passed before an answer started (504).
    DeadlineExceeded,
    /// A non-streamed upstream answer was larger than the gateway accepts (502).
    UpstreamResponseTooLarge,
    /// The upstream's success answer is not what it claims (a translated provider's 200
    /// that is not valid JSON, say) (502).
    InvalidUpstreamResponse,
    /// The server is at its connection limit (503, with `Retry-After`).
    ServerBusy,
    /// A config id the registry does not have (400).
    UnknownConfig,
    /// The request brings no gateway key, or one the registry does not have (401).
    Unauthorized,
    /// The gateway key may not use what the request asks for (403).
    Forbidden,
    /// A spend budget (`usd_per_day`, `usd_per_month`) is used up (429, with `Retry-After`).
    BudgetExceeded,
    /// The target failed too often and is skipped for a cool-down (503, with `Retry-After`).
    CircuitOpen,
    /// Rate limits cannot be checked (the shared state is down) and the gateway is set
    /// to refuse what it cannot count (503).
    LimitsUnavailable,
}

impl ErrorCode {
    /// Every code, in declaration order (documentation and the bindings' type stubs are
    /// checked against this list).
    pub const ALL: [ErrorCode; 27] = [
        Self::InvalidConfig,
        Self::InvalidRequest,
        Self::NoRouteMatched,
        Self::UnsupportedEndpoint,
        Self::UnknownVirtualKey,
        Self::Timeout,
        Self::PayloadTooLarge,
        Self::HooksFailed,
        Self::RateLimited,
        Self::UpstreamConnectionError,
        Self::Overloaded,
        Self::UpstreamError,
        Self::StreamError,
        Self::Internal,
        Self::ForbiddenCustomHost,
        Self::LoopDetected,
        Self::AttemptLimitReached,
        Self::DeadlineExceeded,
        Self::UpstreamResponseTooLarge,
        Self::InvalidUpstreamResponse,
        Self::ServerBusy,
        Self::UnknownConfig,
        Self::Unauthorized,
        Self::Forbidden,
        Self::BudgetExceeded,
        Self::CircuitOpen,
        Self::LimitsUnavailable,
    ];

    /// The snake_case code that appears in `error.code`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidConfig => "invalid_config",
            Self::InvalidRequest => "invalid_request",
            Self::NoRouteMatched => "no_route_matched",
            Self::UnsupportedEndpoint => "unsupported_endpoint",
            Self::UnknownVirtualKey => "unknown_virtual_key",
            Self::Timeout => "timeout",
            Self::PayloadTooLarge => "payload_too_large",
            Self::HooksFailed => "hooks_failed",
            Self::RateLimited => "rate_limited",
            Self::UpstreamConnectionError => "upstream_connection_error",
            Self::Overloaded => "overloaded",
            Self::UpstreamError => "upstream_error",
            Self::StreamError => "stream_error",
            Self::Internal => "internal_error",
            Self::ForbiddenCustomHost => "forbidden_custom_host",
            Self::LoopDetected => "loop_detected",
            Self::AttemptLimitReached => "attempt_limit_reached",
            Self::DeadlineExceeded => "deadline_exceeded",
            Self::UpstreamResponseTooLarge => "upstream_response_too_large",
            Self::InvalidUpstreamResponse => "invalid_upstream_response",
            Self::ServerBusy => "server_busy",
            Self::UnknownConfig => "unknown_config",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::BudgetExceeded => "budget_exceeded",
            Self::CircuitOpen => "circuit_open",
            Self::LimitsUnavailable => "limits_unavailable",
        }
    }

    /// The HTTP status a gateway-made error of this code carries by default.
    pub fn default_status(self) -> u16 {
        match self {
            Self::InvalidConfig
            | Self::InvalidRequest
            | Self::NoRouteMatched
            | Self::UnsupportedEndpoint
            | Self::UnknownVirtualKey
            | Self::UnknownConfig => 400,
            Self::Unauthorized => 401,
            Self::Forbidden => 403,
            Self::Timeout => 408,
            Self::PayloadTooLarge => 413,
            Self::HooksFailed => 446,
            Self::RateLimited | Self::BudgetExceeded => 429,
            Self::UpstreamConnectionError => 502,
            Self::Overloaded | Self::ServerBusy | Self::CircuitOpen | Self::LimitsUnavailable => 503,
            Self::UpstreamError | Self::StreamError | Self::Internal => 500,
            Self::ForbiddenCustomHost => 403,
            Self::LoopDetected => 508,
            Self::AttemptLimitReached | Self::UpstreamResponseTooLarge | Self::InvalidUpstreamResponse => 502,
            Self::DeadlineExceeded => 504,
        }
    }

    /// The OpenAI-style `error.type` for gateway-made errors.
    pub fn error_type(self) -> &'static str {
        match self {
            Self::InvalidConfig
            | Self::InvalidRequest
            | Self::NoRouteMatched
            | Self::UnsupportedEndpoint
            | Self::UnknownVirtualKey
            | Self::PayloadTooLarge
            | Self::LoopDetected
            | Self::UnknownConfig => "invalid_request_error",
            Self::Unauthorized => "authentication_error",
            Self::ForbiddenCustomHost | Self::Forbidden => "permission_error",
            Self::Timeout | Self::DeadlineExceeded => "timeout_error",
            Self::HooksFailed => "hooks_failed",
            Self::RateLimited | Self::BudgetExceeded => "rate_limit_error",
            Self::UpstreamConnectionError => "api_connection_error",
            Self::Overloaded
            | Self::UpstreamError
            | Self::AttemptLimitReached
            | Self::UpstreamResponseTooLarge
            | Self::InvalidUpstreamResponse
            | Self::ServerBusy
            | Self::CircuitOpen
            | Self::LimitsUnavailable => "api_error",
            Self::StreamError => "stream_error",
            Self::Internal => "internal_error",
        }
    }

    /// Whether the caller may reasonably try again (used by bindings and docs; the
    /// retry loop itself follows the config's `on_status_codes`).
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            Self::Timeout
                | Self::RateLimited
                | Self::UpstreamConnectionError
                | Self::Overloaded
                | Self::ServerBusy
                | Self::CircuitOpen
                | Self::LimitsUnavailable
        )
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error with everything a client needs to act on it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct GatewayError {
    /// The stable code.
    pub code: ErrorCode,
    /// The HTTP status: the code's default, or the upstream's status for provider errors.
    pub status: u16,
    /// Human-readable message.
    pub message: String,
    /// JSON path of the offending field, when there is one (`targets[1].strategy.mode`).
    pub param: Option<String>,
    /// The provider slug, for errors that came from an upstream.
    pub provider: Option<String>,
    /// `error.type` as reported by the upstream (provider errors) or derived from the code.
    pub error_type: Option<String>,
    /// `error.code` as reported by the upstream, when it differs from our code.
    pub upstream_code: Option<serde_json::Value>,
    /// Every field error when one error stands for several (config validation reports all
    /// of them at once); empty otherwise.
    pub errors: Vec<FieldError>,
    /// `hook_results`, when guardrail hooks refused the request (shown beside `error`).
    pub hook_results: Option<std::sync::Arc<serde_json::Value>>,
}

/// One bad field: where, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// JSON path (`targets[1].strategy.mode`; empty for the root).
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl GatewayError {
    /// A gateway-made error with the code's default status.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            status: code.default_status(),
            message: message.into(),
            param: None,
            provider: None,
            error_type: None,
            upstream_code: None,
            errors: Vec::new(),
            hook_results: None,
        }
    }

    /// Attach the JSON path of the bad field.
    pub fn with_param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    /// Attach the provider slug.
    pub fn with_provider(mut self, provider: impl Into<String>) -> Self {
        self.provider = Some(provider.into());
        self
    }

    /// The same error, its `param` (and every field error's path) read below `prefix`: an
    /// error found in a part reported where the part sits in the whole.
    pub fn within(mut self, prefix: &crate::json_path::JsonPath) -> Self {
        self.param = Some(prefix.join(self.param.as_deref().unwrap_or("")).as_str().to_owned());
        for field in &mut self.errors {
            field.path = prefix.join(&field.path).as_str().to_owned();
        }
        self
    }

    /// Override the HTTP status (upstream errors keep the upstream's).
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// Shorthand for an `invalid_config` error at `path`.
    pub fn config(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidConfig, message).with_param(path)
    }

    /// Shorthand for an `invalid_request` error at `path`.
    pub fn request(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, message).with_param(path)
    }

    /// An upstream success answer that is not what it claims to be (`why` says how).
    pub fn invalid_upstream_response(provider: &str, why: impl std::fmt::Display) -> Self {
        Self::new(ErrorCode::InvalidUpstreamResponse, format!("{provider} sent an invalid response: {why}"))
            .with_provider(provider)
    }

    /// The OpenAI error body: `{"error":{"message","type","param","code"}}`, plus
    /// `"provider"` for upstream errors.
    pub fn to_openai_json(&self) -> serde_json::Value {
        let code = match (&self.upstream_code, self.code) {
            (Some(code), _) => code.clone(),
            (None, ErrorCode::UpstreamError) => serde_json::Value::Null,
            (None, code) => code.as_str().into(),
        };
        let mut body = serde_json::json!({
            "error": {
                "message": self.message,
                "type": self.error_type.as_deref().unwrap_or(self.code.error_type()),
                "param": self.param,
                "code": code,
            }
        });
        if !self.errors.is_empty() {
            let list: Vec<serde_json::Value> =
                self.errors.iter().map(|e| serde_json::json!({"path": e.path, "message": e.message})).collect();
            body["error"]["errors"] = list.into();
        }
        if let (Some(provider), Some(obj)) = (&self.provider, body.as_object_mut()) {
            obj.insert("provider".into(), provider.as_str().into());
        }
        self.with_hook_results(body)
    }

    /// `body` with the hook results beside the error, as Portkey shows them.
    fn with_hook_results(&self, mut body: serde_json::Value) -> serde_json::Value {
        if let (Some(results), Some(obj)) = (&self.hook_results, body.as_object_mut()) {
            obj.insert("hook_results".into(), (**results).clone());
        }
        body
    }

    /// The Anthropic error body, for callers of `/v1/messages`:
    /// `{"type":"error","error":{"type","message"}}`, the type Anthropic uses for the
    /// status (an Anthropic upstream's own type is kept), plus our stable `code`, `param`
    /// and `provider`, which Anthropic's SDKs ignore.
    pub fn to_anthropic_json(&self) -> serde_json::Value {
        const ANTHROPIC_TYPES: &[&str] = &[
            "invalid_request_error",
            "authentication_error",
            "billing_error",
            "permission_error",
            "not_found_error",
            "request_too_large",
            "rate_limit_error",
            "timeout_error",
            "api_error",
            "overloaded_error",
        ];
        let kind = match self.error_type.as_deref() {
            Some(kind) if ANTHROPIC_TYPES.contains(&kind) => kind,
            _ => match self.status {
                401 => "authentication_error",
                402 => "billing_error",
                403 => "permission_error",
                404 => "not_found_error",
                413 => "request_too_large",
                429 => "rate_limit_error",
                504 => "timeout_error",
                503 | 529 => "overloaded_error",
                s if s >= 500 => "api_error",
                _ => "invalid_request_error",
            },
        };
        let mut error = serde_json::json!({
            "type": kind,
            "message": self.message,
            "code": self.code.as_str(),
            "param": self.param,
        });
        if let Some(provider) = &self.provider {
            error["provider"] = provider.as_str().into();
        }
        self.with_hook_results(serde_json::json!({"type": "error", "error": error}))
    }

    /// The error body in the caller's dialect.
    pub fn to_json(&self, dialect: crate::Dialect) -> serde_json::Value {
        match dialect {
            crate::Dialect::OpenAi | crate::Dialect::Responses => self.to_openai_json(),
            crate::Dialect::Anthropic => self.to_anthropic_json(),
        }
    }
}

/// A list of config errors, each with its path. Validation reports all of them at once
/// so a user fixes a config in one round.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", render_errors(.0))]
pub struct ConfigErrors(pub Vec<GatewayError>);

fn render_errors(errors: &[GatewayError]) -> String {
    let mut out = String::new();
    for (i, e) in errors.iter().enumerate() {
        if i > 0 {
            out.push_str("; ");
        }
        match e.param.as_deref() {
            Some(p) if !p.is_empty() => out.push_str(&format!("{p}: {}", e.message)),
            _ => out.push_str(&e.message),
        }
    }
    out
}

impl From<ConfigErrors> for GatewayError {
    /// The first error's code and path, the message listing all of them, and every one in
    /// `errors`.
    fn from(errors: ConfigErrors) -> Self {
        let message = render_errors(&errors.0);
        let fields: Vec<FieldError> = errors
            .0
            .iter()
            .map(|e| FieldError { path: e.param.clone().unwrap_or_default(), message: e.message.clone() })
            .collect();
        let mut first = errors.0.into_iter().next().unwrap_or_else(|| GatewayError::config("", "invalid config"));
        first.message = format!("invalid config: {message}");
        first.errors = fields;
        first
    }
}
