// Type definitions for gatewise (hand-written; checked by test/types.test.mjs).
// Request and answer bodies are the OpenAI shapes; only the fields the gateway itself
// reads are spelt out, and every object stays open to new OpenAI fields.

/** Any JSON object. */
export type JsonObject = { [key: string]: unknown }

/** A gateway config (Portkey-compatible): a tree of groups (`strategy`, `targets`) and leaves (`provider`, credentials). */
export type GatewayConfig = JsonObject

/**
 * Client options. camelCase or snake_case (`apiKey` or `api_key`); unknown keys are errors.
 * The engine declares every option once (`OPTIONS`); a test checks this list against it.
 */
export interface GatewayOptions {
  /** A config: an object, JSON text, or the name of a config (a `--config-dir` file on the server, a file path in the bindings). */
  config?: Record<string, unknown> | string | null
  /** Provider slug, used when there is no config (or for leaves without one); `@slug` names a registry entry. */
  provider?: string
  /** A registry provider entry, by its slug (as `provider: "@slug"`). */
  virtualKey?: string
  /** The provider's key; with `x-portkey-provider`, the request's `Authorization` bearer. A client with `provider` and no key reads the provider's usual environment variable. */
  apiKey?: string
  /** Other provider fields (`resource_name`, `aws_region`, ...); with `x-portkey-provider`, Portkey's provider headers. */
  providerOptions?: Record<string, unknown>
  /** Replaces every target's base URL. */
  customHost?: string
  /** Request metadata for conditional routing. */
  metadata?: Record<string, unknown> | null
  /** Trace id reported in route info and the `x-portkey-trace-id` answer header. */
  traceId?: string
  /** Per-attempt timeout in milliseconds, overriding the config's. */
  requestTimeout?: number
  /** Caller headers copied to the upstream, overriding the config's list. */
  forwardHeaders?: string[]
  /** Skip the cache lookup (the answer is still stored). */
  cacheForceRefresh?: boolean
  /** Cache namespace: answers are shared only within one. */
  cacheNamespace?: string
}

/**
 * Per-call options, the second argument of every resource method (as in the OpenAI and
 * Portkey SDKs): any client option for this call, plus `headers`, `timeout` and `signal`.
 * An unknown option is an error.
 */
export interface CallOptions extends GatewayOptions {
  /** Extra request headers; `x-portkey-*` ones win over every option. */
  headers?: Record<string, string> | Headers | Array<[string, string]>
  /** Per-attempt timeout in ms (the same as `requestTimeout`). */
  timeout?: number
  /** Aborts the call; for a stream, closes it and cancels the upstream request. */
  signal?: AbortSignal
}

/** One option as the engine declares it. */
export interface OptionSpec {
  name: string
  camel: string
  header: string | null
  typescriptType: string
  doc: string
}

/** Every option, as the engine declares it. */
export declare const OPTIONS: readonly OptionSpec[]

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
  | 'forbidden_custom_host'
  | 'loop_detected'
  | 'attempt_limit_reached'
  | 'deadline_exceeded'
  | 'upstream_response_too_large'
  | 'invalid_upstream_response'
  | 'server_busy'
  | 'unknown_config'
  | 'unauthorized'
  | 'forbidden'
  | 'budget_exceeded'
  | 'circuit_open'
  | 'limits_unavailable'

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
  /** The model that answered (as the answer names it), else the one asked for. */
  model: string | null
  /** Tokens the answer used; for a stream, once it has ended. */
  usage: Usage | null
  /** What the answer cost in US dollars (`null`: the model's price is not known; `0` for a cache hit). */
  cost: number | null
  /** For a stream, the time to its first chunk. */
  ttft_ms: number | null
  /** Targets not called because their circuit was open (`cb_config`), in order. */
  skipped: { option_index: string; provider: string }[]
  /** The rate limit or budget that refused the request (`provider openai-prod: requests_per_minute`). */
  limit: string | null
  /** The registry prompt the request was rendered from. */
  prompt: { id: string; version: string | null } | null
  /** What the guardrail hooks of the answering (or refusing) target concluded (`null`: none ran). */
  hook_results: HookResults | null
}

/** `hook_results`: every guardrail hook's result, per phase (beside the answer, or the 446 error). */
export interface HookResults {
  before_request_hooks: HookResult[]
  after_request_hooks: HookResult[]
}

/** One guardrail hook's result. */
export interface HookResult {
  id: string
  /** Every enabled check passed (a check that errored passes unless `failOnError`). */
  verdict: boolean
  /** This result refused the request (a failed hook with `deny`). */
  deny: boolean
  /** A check rewrote the request or answer (PII redaction, a webhook's `transformedData`). */
  transformed: boolean
  checks: HookCheckResult[]
  feedback: JsonObject | null
  execution_time: number
  async: boolean
  type: 'guardrail'
  created_at: string
}

/** One check's result within a hook. */
export interface HookCheckResult {
  /** The check id, e.g. `default.regexMatch`. */
  id: string
  verdict: boolean
  /** What the check saw (counts, matches, the webhook's `data`). */
  data: unknown
  /** Why the check could not decide. */
  error?: { name: string; message: string }
  execution_time: number
  transformed: boolean
  created_at: string
  log: null
  fail_on_error: boolean
}

/** Tokens, as every provider's usage is normalised. */
export interface Usage {
  input_tokens: number
  output_tokens: number
  total_tokens: number
  cached_input_tokens: number
  reasoning_tokens: number
  cache_write_input_tokens: number
}

/** One finished request, as the server's request log writes it (`onLog` gets these). */
export interface RequestRecord {
  time: string
  trace_id: string | null
  /** The gateway key's name (server only). */
  key: string | null
  metadata: Record<string, unknown>
  endpoint: string
  stream: boolean
  provider: string | null
  model: string | null
  option_index: string | null
  status: number
  error_code: ErrorCode | null
  error_message: string | null
  /** The caller stopped reading a stream before it ended. */
  cancelled: boolean
  retries: number
  cache_status: 'HIT' | 'MISS' | 'REFRESH' | 'DISABLED'
  latency_ms: number
  upstream_latency_ms: number | null
  ttft_ms: number | null
  usage: Usage | null
  cost_usd: number | null
  /** Present when the answering provider left request parameters out. */
  dropped_params?: string[]
  /** Present when a rate limit or budget refused the request. */
  limit?: string
  /** Present when targets were skipped for an open circuit. */
  skipped?: { option_index: string; provider: string; reason: 'circuit_open' }[]
  /** Present when the request was rendered from a registry prompt. */
  prompt_id?: string
  prompt_version?: string | null
  /** Present when guardrail hooks ran: per hook, what failed and what erred. */
  hooks?: {
    before_request_hooks: HookLogEntry[]
    after_request_hooks: HookLogEntry[]
  }
  attempts: { option_index: string; provider: string; status: number; error_code: ErrorCode | null; latency_ms: number }[]
}

/** A guardrail hook as the request log records it. */
export interface HookLogEntry {
  id: string
  verdict: boolean
  deny: boolean
  failed_checks: string[]
  errored_checks: string[]
  transformed: boolean
  execution_time_ms: number
}

/** An answer with its route info as a non-enumerable `route` property (`JSON.stringify` leaves it out). */
export type WithRoute<T> = T & { readonly route: RouteInfo }

/** One bad field of an invalid config. */
export interface FieldError {
  /** JSON path (`targets[1].strategy.mode`; empty for the root). */
  path: string
  message: string
}

/** The fields every gateway error carries. */
export interface GatewayErrorFields {
  code?: ErrorCode
  status?: number
  param?: string | null
  errors?: FieldError[]
  provider?: string | null
  retryable?: boolean
  body?: OpenAIErrorBody | null
  route?: RouteInfo | null
}

/**
 * Every error the gateway reports. Its class is one of the OpenAI SDKs' (chosen by the
 * engine from the error code): `BadRequestError` (400; `ConfigError` for an invalid
 * config), `AuthenticationError` (401), `PermissionDeniedError` (403), `NotFoundError`
 * (404), `ConflictError` (409), `UnprocessableEntityError` (422), `RateLimitError` (429),
 * `InternalServerError` (5xx), `APIStatusError` (other statuses), `APITimeoutError`,
 * `APIConnectionError`.
 */
export declare class GatewayError extends Error {
  constructor(message: string, fields?: GatewayErrorFields)
  /** Stable snake_case code. */
  code: ErrorCode
  /** HTTP status: the upstream's for provider errors, else the code's default (400, 408, 429, 502, ...). */
  status: number
  /** JSON path of the bad field (e.g. `targets[0].retry.attempts`), or the option or header that was bad. */
  param: string | null
  /** The name earlier releases used for `param`. */
  readonly path: string | null
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
/** The request failed with an HTTP status. */
export declare class APIStatusError extends GatewayError {}
/** The upstream could not be reached. */
export declare class APIConnectionError extends GatewayError {}
/** An attempt exceeded its timeout. */
export declare class APITimeoutError extends APIConnectionError {}
/** 400. */
export declare class BadRequestError extends APIStatusError {}
/** 400: the config (or a client option) is invalid. */
export declare class ConfigError extends BadRequestError {}
/** 401. */
export declare class AuthenticationError extends APIStatusError {}
/** 403. */
export declare class PermissionDeniedError extends APIStatusError {}
/** 404. */
export declare class NotFoundError extends APIStatusError {}
/** 409. */
export declare class ConflictError extends APIStatusError {}
/** 422. */
export declare class UnprocessableEntityError extends APIStatusError {}
/** 429. */
export declare class RateLimitError extends APIStatusError {}
/** 5xx. */
export declare class InternalServerError extends APIStatusError {}

export interface OpenAIErrorBody extends JsonObject {
  error: { message: string; type: string; param: string | null; code: string | null } & JsonObject
  /** Beside a guardrail refusal (446). */
  hook_results?: HookResults & JsonObject
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

/** A file to upload: bytes, or a `Blob`/`File` (its name and type are sent). */
export type Uploadable = Uint8Array | ArrayBuffer | Blob

export interface ImageEditParams extends JsonObject {
  image: Uploadable | Uploadable[]
  prompt: string
  mask?: Uploadable
  model?: string
}

export interface ImageVariationParams extends JsonObject {
  image: Uploadable
  model?: string
}

export interface SpeechCreateParams extends JsonObject {
  model: string
  input: string
  voice: string
}

export interface TranscriptionCreateParams extends JsonObject {
  file: Uploadable
  model: string
}

export interface Transcription extends JsonObject {
  text: string
}

export interface ModelList extends JsonObject {
  object: 'list'
  data: Array<{ id: string; object: 'model' } & JsonObject>
}

export interface MessageCreateParams extends JsonObject {
  model: string
  max_tokens: number
  messages: Array<{ role: 'user' | 'assistant'; content: string | JsonObject[] } & JsonObject>
  stream?: boolean | null
}

/** An answer of Anthropic's Messages API. */
export interface Message extends JsonObject {
  id: string
  type: 'message'
  role: 'assistant'
  model: string
  content: Array<{ type: string } & JsonObject>
  stop_reason: string | null
  usage: { input_tokens: number; output_tokens: number } & JsonObject
}

/** One event of a streamed Messages answer (`message_start`, `content_block_delta`, ...). */
export interface MessageStreamEvent extends JsonObject {
  type: string
}

export interface RerankParams extends JsonObject {
  model: string
  query: string
  documents: Array<string | ({ text: string } & JsonObject)>
  top_n?: number | null
  return_documents?: boolean | null
}

/** A rerank answer, in Cohere's shape whichever provider answered. */
export interface RerankResponse extends JsonObject {
  id: string | null
  results: Array<{ index: number; relevance_score: number; document?: { text: string } } & JsonObject>
}

/** A registry prompt's call: its id, its variables, and fields that override the prompt's (`max_tokens`, `stream`, ...). */
export interface PromptCallParams extends JsonObject {
  /** The prompt's id in the registry (`prompt_id` is accepted too). */
  promptID: string
  variables?: JsonObject | null
}

/** What `prompts.render` answers: the chat request the prompt renders to. */
export interface RenderedPrompt extends JsonObject {
  success: true
  data: ChatCompletionCreateParams
}

export interface ResponseCreateParams extends JsonObject {
  model: string
  input: string | JsonObject[]
  instructions?: string | null
  stream?: boolean | null
}

/** A `response` of OpenAI's Responses API. */
export interface ResponseObject extends JsonObject {
  id: string
  object: 'response'
  status: string
  model: string
  output: Array<{ type: string } & JsonObject>
  usage: ({ input_tokens: number; output_tokens: number; total_tokens: number } & JsonObject) | null
}

/** One event of a streamed response (`response.output_text.delta`, `response.completed`, ...). */
export interface ResponseStreamEvent extends JsonObject {
  type: string
  sequence_number: number
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

/** A resource method, as the engine lists them (`RESOURCES` in the Rust protocol layer). */
export type Endpoint =
  | 'chat.completions.create'
  | 'completions.create'
  | 'embeddings.create'
  | 'images.generate'
  | 'images.edit'
  | 'images.create_variation'
  | 'audio.speech.create'
  | 'audio.transcriptions.create'
  | 'audio.translations.create'
  | 'moderations.create'
  | 'models.list'
  | 'messages.create'
  | 'messages.count_tokens'
  | 'rerank.create'
  | 'responses.create'
  | 'prompts.render'
  | 'prompts.completions.create'
  | 'chat.completions'
  | 'completions'
  | 'embeddings'
  | 'moderations'
  | 'messages'
  | 'rerank'
  | 'responses'
  | 'prompts.completions'

export interface RouteOptions {
  /** Metadata for conditional routing; replaces the client's for this plan. */
  metadata?: JsonObject | null
  /** Seed for `loadbalance` draws, for a reproducible plan. */
  seed?: number
  /** The resource planned for (its path is `url.pathname` in queries). Default `chat.completions.create`. */
  endpoint?: Endpoint
}

/** A fetch-compatible function served in-process by the gateway. */
export type GatewayFetch = (input: string | URL | Request, init?: RequestInit) => Promise<Response>

/** An in-process gateway client, shaped like the OpenAI and Portkey SDK clients. */
/** A client's options, and what only a client is made with. */
export interface GatewayClientOptions extends GatewayOptions {
  /** The registry: a file path (JSON or YAML, re-read when it changes) or the registry itself. */
  registry?: string | Record<string, unknown>
  /** Called with each request's record when it is finished (a stream: when it ends). */
  onLog?: (record: RequestRecord) => void
  /**
   * A Redis or Valkey URL (`redis://host:6379/0`, `rediss://` for TLS): rate limits,
   * budgets, the response cache and circuit state are shared with every gateway using it.
   */
  redis?: string
  /** While Redis is unreachable: `allow` requests uncounted (the default) or `refuse` them. */
  redisDown?: 'allow' | 'refuse'
}

export declare class Gateway {
  /** @throws {ConfigError} `invalid_config` (with `param`) for an invalid config or registry. */
  constructor(options?: GatewayClientOptions)

  readonly chat: {
    readonly completions: {
      create(params: ChatCompletionCreateParams & { stream: true }, options?: CallOptions): Promise<Stream<ChatCompletionChunk>>
      create(
        params: ChatCompletionCreateParams & { stream?: false | null },
        options?: CallOptions,
      ): Promise<WithRoute<ChatCompletion>>
      create(
        params: ChatCompletionCreateParams,
        options?: CallOptions,
      ): Promise<WithRoute<ChatCompletion> | Stream<ChatCompletionChunk>>
    }
  }
  readonly completions: {
    create(params: CompletionCreateParams & { stream: true }, options?: CallOptions): Promise<Stream<Completion>>
    create(params: CompletionCreateParams & { stream?: false | null }, options?: CallOptions): Promise<WithRoute<Completion>>
    create(params: CompletionCreateParams, options?: CallOptions): Promise<WithRoute<Completion> | Stream<Completion>>
  }
  readonly embeddings: {
    create(params: EmbeddingCreateParams, options?: CallOptions): Promise<WithRoute<CreateEmbeddingResponse>>
  }
  readonly images: {
    generate(params: ImageGenerateParams, options?: CallOptions): Promise<WithRoute<ImagesResponse>>
    edit(params: ImageEditParams, options?: CallOptions): Promise<WithRoute<ImagesResponse>>
    createVariation(params: ImageVariationParams, options?: CallOptions): Promise<WithRoute<ImagesResponse>>
  }
  readonly audio: {
    readonly speech: {
      /** The audio bytes (`Buffer`), with its route. */
      create(params: SpeechCreateParams, options?: CallOptions): Promise<WithRoute<Buffer>>
    }
    readonly transcriptions: {
      create(params: TranscriptionCreateParams, options?: CallOptions): Promise<WithRoute<Transcription>>
    }
    readonly translations: {
      create(params: TranscriptionCreateParams, options?: CallOptions): Promise<WithRoute<Transcription>>
    }
  }
  readonly moderations: {
    create(params: ModerationCreateParams, options?: CallOptions): Promise<WithRoute<ModerationCreateResponse>>
  }
  readonly models: {
    list(params?: JsonObject, options?: CallOptions): Promise<WithRoute<ModelList>>
  }
  /** Anthropic's Messages API: answers and stream events in Anthropic's shapes. */
  readonly messages: {
    create(params: MessageCreateParams & { stream: true }, options?: CallOptions): Promise<Stream<MessageStreamEvent>>
    create(params: MessageCreateParams & { stream?: false | null }, options?: CallOptions): Promise<WithRoute<Message>>
    create(params: MessageCreateParams, options?: CallOptions): Promise<WithRoute<Message> | Stream<MessageStreamEvent>>
    countTokens(params: JsonObject, options?: CallOptions): Promise<WithRoute<{ input_tokens: number }>>
  }
  /** Reranking in Cohere's shape (Cohere, Voyage, Jina, Together). */
  readonly rerank: {
    create(params: RerankParams, options?: CallOptions): Promise<WithRoute<RerankResponse>>
  }
  /** The registry's prompt library: a prompt rendered, or run as a chat completion. */
  readonly prompts: {
    render(params: PromptCallParams, options?: CallOptions): Promise<WithRoute<RenderedPrompt>>
    readonly completions: {
      create(params: PromptCallParams & { stream: true }, options?: CallOptions): Promise<Stream<ChatCompletionChunk>>
      create(params: PromptCallParams & { stream?: false | null }, options?: CallOptions): Promise<WithRoute<ChatCompletion>>
      create(params: PromptCallParams, options?: CallOptions): Promise<WithRoute<ChatCompletion> | Stream<ChatCompletionChunk>>
    }
  }
  /** OpenAI's Responses API: OpenAI and Azure serve it; other providers a stateless `create` through chat. */
  readonly responses: {
    create(params: ResponseCreateParams & { stream: true }, options?: CallOptions): Promise<Stream<ResponseStreamEvent>>
    create(params: ResponseCreateParams & { stream?: false | null }, options?: CallOptions): Promise<WithRoute<ResponseObject>>
    create(params: ResponseCreateParams, options?: CallOptions): Promise<WithRoute<ResponseObject> | Stream<ResponseStreamEvent>>
  }

  /**
   * A fetch bound to this client, for SDKs that accept one:
   * `new OpenAI({ fetch: gw.fetch, baseURL: 'http://gatewise.local/v1', apiKey: 'unused' })`.
   * `x-portkey-*` request headers override this client's options per request.
   */
  readonly fetch: GatewayFetch

  /** A new client with these options laid over this one's (a new config is compiled once, here). */
  withOptions(options: GatewayOptions): Gateway

  /** The dry-run plan: the targets in the order they would be tried. Sends nothing. */
  route(params: JsonObject, options?: RouteOptions): { targets: PlannedAttempt[] }
}
