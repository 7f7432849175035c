// Type definitions for gatewise (hand-written; checked by test/types.test.mjs).
// Request and answer bodies are the OpenAI shapes; only the fields the gateway itself
// reads are spelt out, and every object stays open to new OpenAI fields.

/** Any JSON object. */
export type JsonObject = { [key: string]: unknown }

/** A gateway config (Portkey-compatible): a tree of groups (`strategy`, `targets`) and leaves (`provider`, credentials). */
export type GatewayConfig = JsonObject

/** Client options. camelCase or snake_case (`apiKey` or `api_key`); unknown keys are errors. */
export interface GatewayOptions {
  /** A config as an object, as JSON text, or as a path to a JSON file. */
  config?: GatewayConfig | string | null
  /** Provider slug (`openai`, `anthropic`, `groq`, ...) used without a config, or for leaves without one. */
  provider?: string
  /** The provider's key (needs `provider`). */
  apiKey?: string
  /** Other provider fields: `resource_name`, `deployment_id`, `aws_region`, `openai_organization`, ... */
  providerOptions?: JsonObject
  /** Replaces every target's base URL. */
  customHost?: string
  /** Request metadata, for conditional routing (`metadata.*` in queries). */
  metadata?: JsonObject | null
  /** Trace id reported in route info. */
  traceId?: string
  /** Per-attempt timeout in ms (until the response headers), overriding the config's. */
  requestTimeout?: number
  /** Skip the cache lookup and store the fresh answer. */
  cacheForceRefresh?: boolean
  /** Partition the cache. */
  cacheNamespace?: string
}

/** Stable error codes. */
export type ErrorCode =
  | 'invalid_config'
  | 'invalid_request'
  | 'no_route_matched'
  | 'unsupported_endpoint'
  | 'unknown_virtual_key'
  | 'timeout'
  | 'payload_too_large'
  | 'hooks_failed'
  | 'rate_limited'
  | 'upstream_connection_error'
  | 'overloaded'
  | 'upstream_error'
  | 'stream_error'
  | 'internal_error'

/** One upstream attempt. */
export interface RouteAttempt {
  /** Option-index path of the leaf, e.g. `config.targets[1]`. */
  option_index: string
  provider: string
  /** Status received (408 for a timeout, 502 for a connection failure). */
  status: number
  /** Error code, when the attempt failed. */
  error: ErrorCode | null
  /** Time from send to headers (or failure). */
  duration_ms: number
}

/** How a request was routed (the `x-portkey-*` response headers of the server). */
export interface RouteInfo {
  /** Provider slug of the leaf that answered. */
  provider: string | null
  /** Option-index path of that leaf, e.g. `config.targets[1].targets[0]`. */
  option_index: string | null
  /** `0`, the number of retries, or `-1` when retries ran out. */
  retry_count: number
  cache_status: 'HIT' | 'MISS' | 'REFRESH' | 'DISABLED'
  trace_id: string | null
  /** Request parameters the answering provider does not support and left out. */
  dropped_params: string[]
  /** Every upstream attempt, in order. */
  attempts: RouteAttempt[]
}

/** An answer with its route info as a non-enumerable `route` property (`JSON.stringify` leaves it out). */
export type WithRoute<T> = T & { readonly route: RouteInfo }

/** Every error the gateway reports. */
/** One bad field of an invalid config. */
export interface FieldError {
  /** JSON path (`targets[1].strategy.mode`; empty for the root). */
  path: string
  message: string
}

export declare class GatewayError extends Error {
  constructor(
    message: string,
    fields?: {
      code?: ErrorCode
      status?: number
      path?: string | null
      errors?: FieldError[]
      provider?: string | null
      retryable?: boolean
      body?: OpenAIErrorBody | null
      route?: RouteInfo | null
    },
  )
  readonly name: 'GatewayError'
  /** Stable snake_case code. */
  code: ErrorCode
  /** HTTP status: the upstream's for provider errors, else the code's default (400, 408, 429, 502, ...). */
  status: number
  /** JSON path of the bad field (e.g. `targets[0].retry.attempts`), when there is one. */
  path: string | null
  /** Every bad field when validation found several (config errors); else empty. */
  errors: FieldError[]
  /** The provider that answered with the error, if one did. */
  provider: string | null
  /** Whether trying again may help. */
  retryable: boolean
  /** The OpenAI-shaped error body. */
  body: OpenAIErrorBody | null
  /** How far routing got. */
  route: RouteInfo | null
}

export interface OpenAIErrorBody extends JsonObject {
  error: { message: string; type: string; param: string | null; code: string | null } & JsonObject
}

/** A streamed answer: `for await (const chunk of stream)`. `break` or `close()` cancels the upstream request. */
export declare class Stream<T> implements AsyncIterableIterator<T> {
  private constructor()
  /** How the stream was routed. */
  readonly route: RouteInfo
  next(): Promise<IteratorResult<T, undefined>>
  return(value?: unknown): Promise<IteratorResult<T, undefined>>
  /** Stop reading and cancel the upstream request. */
  close(): Promise<void>
  [Symbol.asyncIterator](): Stream<T>
}

// ---- OpenAI shapes (abridged; unknown fields pass through untouched) ----

export interface ChatCompletionMessageParam extends JsonObject {
  role: 'system' | 'developer' | 'user' | 'assistant' | 'tool' | (string & {})
  content?: string | JsonObject[] | null
}

export interface ChatCompletionCreateParams extends JsonObject {
  model: string
  messages: ChatCompletionMessageParam[]
  stream?: boolean | null
}

export interface ChatCompletion extends JsonObject {
  id: string
  object: 'chat.completion'
  created: number
  model: string
  choices: Array<
    {
      index: number
      message: { role: 'assistant'; content: string | null } & JsonObject
      finish_reason: string | null
    } & JsonObject
  >
  usage?: { prompt_tokens: number; completion_tokens: number; total_tokens: number } & JsonObject
}

export interface ChatCompletionChunk extends JsonObject {
  id: string
  object: 'chat.completion.chunk'
  created: number
  model: string
  choices: Array<
    {
      index: number
      delta: { role?: string; content?: string | null } & JsonObject
      finish_reason: string | null
    } & JsonObject
  >
}

export interface CompletionCreateParams extends JsonObject {
  model: string
  prompt: string | string[] | number[] | number[][] | null
  stream?: boolean | null
}

export interface Completion extends JsonObject {
  id: string
  object: 'text_completion'
  created: number
  model: string
  choices: Array<{ index: number; text: string; finish_reason: string | null } & JsonObject>
}

export interface EmbeddingCreateParams extends JsonObject {
  model: string
  input: string | string[] | number[] | number[][]
}

export interface CreateEmbeddingResponse extends JsonObject {
  object: 'list'
  model: string
  data: Array<{ object: 'embedding'; index: number; embedding: number[] | string } & JsonObject>
}

export interface ImageGenerateParams extends JsonObject {
  prompt: string
  model?: string
}

export interface ImagesResponse extends JsonObject {
  created: number
  data?: Array<{ url?: string; b64_json?: string } & JsonObject>
}

export interface ModerationCreateParams extends JsonObject {
  input: string | string[] | JsonObject[]
  model?: string
}

export interface ModerationCreateResponse extends JsonObject {
  id: string
  model: string
  results: Array<{ flagged: boolean } & JsonObject>
}

/** One planned step of a dry run. */
export interface PlannedAttempt {
  option_index: string
  provider: string
  method: string
  url: string
  /** Upstream headers, credentials shown as `[redacted]`. */
  headers: { [name: string]: string }
  /** The translated body. */
  body: unknown
  /** Parameters the provider would drop. */
  dropped_params: string[]
  /** Why this leaf could not be built (a real request would fall back past it). */
  error: OpenAIErrorBody | null
}

export type Endpoint = 'chat.completions' | 'completions' | 'embeddings' | 'images.generate' | 'moderations'

export interface RouteOptions {
  /** Metadata for conditional routing; replaces the client's for this plan. */
  metadata?: JsonObject | null
  /** Seed for `loadbalance` draws, for a reproducible plan. */
  seed?: number
  /** The endpoint planned for (its path is `url.pathname` in queries). Default `chat.completions`. */
  endpoint?: Endpoint
}

/** A fetch-compatible function served in-process by the gateway. */
export type GatewayFetch = (input: string | URL | Request, init?: RequestInit) => Promise<Response>

/** An in-process gateway client, shaped like the OpenAI and Portkey SDK clients. */
export declare class Gateway {
  /** @throws {GatewayError} `invalid_config` (with `path`) for an invalid config. */
  constructor(options?: GatewayOptions)

  readonly chat: {
    readonly completions: {
      create(params: ChatCompletionCreateParams & { stream: true }): Promise<Stream<ChatCompletionChunk>>
      create(params: ChatCompletionCreateParams & { stream?: false | null }): Promise<WithRoute<ChatCompletion>>
      create(params: ChatCompletionCreateParams): Promise<WithRoute<ChatCompletion> | Stream<ChatCompletionChunk>>
    }
  }
  readonly completions: {
    create(params: CompletionCreateParams & { stream: true }): Promise<Stream<Completion>>
    create(params: CompletionCreateParams & { stream?: false | null }): Promise<WithRoute<Completion>>
    create(params: CompletionCreateParams): Promise<WithRoute<Completion> | Stream<Completion>>
  }
  readonly embeddings: {
    create(params: EmbeddingCreateParams): Promise<WithRoute<CreateEmbeddingResponse>>
  }
  readonly images: {
    generate(params: ImageGenerateParams): Promise<WithRoute<ImagesResponse>>
  }
  readonly moderations: {
    create(params: ModerationCreateParams): Promise<WithRoute<ModerationCreateResponse>>
  }

  /**
   * A fetch bound to this client, for SDKs that accept one:
   * `new OpenAI({ fetch: gw.fetch, baseURL: 'http://gatewise.local/v1', apiKey: 'unused' })`.
   * `x-portkey-*` request headers override this client's options per request.
   */
  readonly fetch: GatewayFetch

  /** A new client with these options replacing this one's (the config is compiled once, here). */
  withOptions(options: GatewayOptions): Gateway

  /** The dry-run plan: the targets in the order they would be tried. Sends nothing. */
  route(params: JsonObject, options?: RouteOptions): { targets: PlannedAttempt[] }
}
