//! Errors as the bindings show them: the exception class (the OpenAI SDKs' names and
//! statuses), chosen by an exhaustive match on the error code, and the fields every
//! class carries. Python and Node build their errors from this and nothing else.

use gateway_core::engine::RouteInfo;
use gateway_core::{ErrorCode, GatewayError};
use serde_json::Value;

use super::route_json;

/// The error classes, as the OpenAI SDKs name them; each is a `GatewayError`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// 400.
    BadRequest,
    /// 400, the config (or a client option) is invalid; a `BadRequestError`.
    Config,
    /// 401.
    Authentication,
    /// 403.
    PermissionDenied,
    /// 404.
    NotFound,
    /// 409.
    Conflict,
    /// 422.
    UnprocessableEntity,
    /// 429.
    RateLimit,
    /// 5xx.
    InternalServer,
    /// Any other status (408 from an upstream, 413, 446, ...).
    ApiStatus,
    /// An attempt exceeded its timeout.
    ApiTimeout,
    /// The upstream could not be reached.
    ApiConnection,
}

impl ErrorClass {
    /// Every class, parents before children.
    pub const ALL: [ErrorClass; 12] = [
        Self::ApiStatus,
        Self::ApiConnection,
        Self::ApiTimeout,
        Self::BadRequest,
        Self::Config,
        Self::Authentication,
        Self::PermissionDenied,
        Self::NotFound,
        Self::Conflict,
        Self::UnprocessableEntity,
        Self::RateLimit,
        Self::InternalServer,
    ];

    /// The class for an error: an exhaustive match on the code; the codes that carry an
    /// upstream's (or a route's) status go by the status.
    pub fn of(error: &GatewayError) -> Self {
        match error.code {
            ErrorCode::InvalidConfig | ErrorCode::UnknownVirtualKey | ErrorCode::UnknownConfig => Self::Config,
            ErrorCode::Unauthorized => Self::Authentication,
            ErrorCode::Timeout | ErrorCode::DeadlineExceeded => Self::ApiTimeout,
            ErrorCode::UpstreamConnectionError => Self::ApiConnection,
            ErrorCode::RateLimited | ErrorCode::BudgetExceeded => Self::RateLimit,
            ErrorCode::ForbiddenCustomHost | ErrorCode::Forbidden => Self::PermissionDenied,
            ErrorCode::Overloaded
            | ErrorCode::Internal
            | ErrorCode::StreamError
            | ErrorCode::LoopDetected
            | ErrorCode::AttemptLimitReached
            | ErrorCode::UpstreamResponseTooLarge
            | ErrorCode::InvalidUpstreamResponse
            | ErrorCode::ServerBusy
            | ErrorCode::CircuitOpen
            | ErrorCode::LimitsUnavailable => Self::InternalServer,
            ErrorCode::InvalidRequest
            | ErrorCode::NoRouteMatched
            | ErrorCode::UnsupportedEndpoint
            | ErrorCode::PayloadTooLarge
            | ErrorCode::HooksFailed
            | ErrorCode::UpstreamError => Self::for_status(error.status),
        }
    }

    fn for_status(status: u16) -> Self {
        match status {
            400 => Self::BadRequest,
            401 => Self::Authentication,
            403 => Self::PermissionDenied,
            404 => Self::NotFound,
            409 => Self::Conflict,
            422 => Self::UnprocessableEntity,
            429 => Self::RateLimit,
            500.. => Self::InternalServer,
            _ => Self::ApiStatus,
        }
    }

    /// The class name in both bindings.
    pub fn name(self) -> &'static str {
        match self {
            Self::BadRequest => "BadRequestError",
            Self::Config => "ConfigError",
            Self::Authentication => "AuthenticationError",
            Self::PermissionDenied => "PermissionDeniedError",
            Self::NotFound => "NotFoundError",
            Self::Conflict => "ConflictError",
            Self::UnprocessableEntity => "UnprocessableEntityError",
            Self::RateLimit => "RateLimitError",
            Self::InternalServer => "InternalServerError",
            Self::ApiStatus => "APIStatusError",
            Self::ApiTimeout => "APITimeoutError",
            Self::ApiConnection => "APIConnectionError",
        }
    }

    /// The class it extends (`None`: `GatewayError` itself).
    pub fn parent(self) -> Option<Self> {
        match self {
            Self::ApiStatus | Self::ApiConnection => None,
            Self::ApiTimeout => Some(Self::ApiConnection),
            Self::Config => Some(Self::BadRequest),
            _ => Some(Self::ApiStatus),
        }
    }
}

/// An error's fields for a binding's error object (`message`, `code`, `status`, `param`,
/// `provider`, `retryable`, `errors`, `body`, `route`).
pub fn error_fields(error: &GatewayError, route: &RouteInfo) -> Value {
    serde_json::json!({
        "message": error.message,
        "code": error.code.as_str(),
        "status": error.status,
        "param": error.param,
        "provider": error.provider,
        "retryable": error.code.is_retryable(),
        "errors": error.errors.iter().map(|e| serde_json::json!({"path": e.path, "message": e.message})).collect::<Vec<_>>(),
        "body": error.to_openai_json(),
        "route": route_json(route),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_statuses_pick_the_openai_sdk_class() {
        let upstream = |status| GatewayError::new(ErrorCode::UpstreamError, "x").with_status(status);
        assert_eq!(ErrorClass::of(&upstream(401)), ErrorClass::Authentication);
        assert_eq!(ErrorClass::of(&upstream(403)), ErrorClass::PermissionDenied);
        assert_eq!(ErrorClass::of(&upstream(422)), ErrorClass::UnprocessableEntity);
        assert_eq!(ErrorClass::of(&upstream(502)), ErrorClass::InternalServer);
        assert_eq!(ErrorClass::of(&upstream(418)), ErrorClass::ApiStatus);
        let route = GatewayError::new(ErrorCode::InvalidRequest, "unknown route").with_status(404);
        assert_eq!(ErrorClass::of(&route), ErrorClass::NotFound);
        assert_eq!(ErrorClass::of(&GatewayError::config("", "x")), ErrorClass::Config);
        assert_eq!(ErrorClass::Config.parent(), Some(ErrorClass::BadRequest));
    }

    #[test]
    fn parents_come_before_their_children() {
        for (i, class) in ErrorClass::ALL.iter().enumerate() {
            if let Some(parent) = class.parent() {
                assert!(ErrorClass::ALL[..i].contains(&parent), "{class:?}");
            }
        }
    }
}
