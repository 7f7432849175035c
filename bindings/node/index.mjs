// ESM entry: the same objects as the CommonJS entry (index.js), so `instanceof` agrees
// whichever way the package is loaded.
import gatewise from './index.js'

export const {
  Gateway,
  Stream,
  OPTIONS,
  GatewayError,
  APIStatusError,
  APIConnectionError,
  APITimeoutError,
  BadRequestError,
  ConfigError,
  AuthenticationError,
  PermissionDeniedError,
  NotFoundError,
  ConflictError,
  UnprocessableEntityError,
  RateLimitError,
  InternalServerError,
} = gatewise
