'use strict'
// gatewise: the JS half of the Node binding. Like the Rust half (src/lib.rs) it holds
// only conversion and runtime bridging: option names, JSON text across the boundary,
// native errors into GatewayError, native streams into async iterables, ReadableStreams
// and WHATWG Responses. Routing and provider behaviour live in the Rust crates.

const { NativeGateway } = require('./native.js')

// Must match ERROR_MARKER in src/lib.rs.
const ERROR_MARKER = '\u0001gatewise-error:'
const FROM_NATIVE = Symbol('gatewise.fromNative')

// camelCase option names (as the OpenAI and Portkey SDKs spell them) to the facade's
// snake_case `ClientOptions`. Other keys pass through unchanged, so snake_case works too
// and a misspelt key is rejected by the facade, naming the key.
const OPTION_NAMES = {
  apiKey: 'api_key',
  customHost: 'custom_host',
  traceId: 'trace_id',
  requestTimeout: 'request_timeout',
  cacheForceRefresh: 'cache_force_refresh',
  cacheNamespace: 'cache_namespace',
  providerOptions: 'provider_options',
}

/** Every error the gateway reports: a bad config, a bad request, an upstream error, a timeout. */
class GatewayError extends Error {
  constructor(message, fields = {}) {
    super(message)
    this.name = 'GatewayError'
    /** Stable snake_case code: `invalid_config`, `rate_limited`, `timeout`, ... */
    this.code = fields.code ?? 'internal_error'
    /** HTTP status: the upstream's for provider errors, else the code's default. */
    this.status = fields.status ?? 500
    /** JSON path of the bad field (config errors, request errors), else null. */
    this.path = fields.path ?? null
    /** Every bad field (`[{path, message}]`) when validation found several; else empty. */
    this.errors = fields.errors ?? []
    /** The provider that answered with the error, if one did. */
    this.provider = fields.provider ?? null
    /** Whether trying again may help. */
    this.retryable = fields.retryable ?? false
    /** The OpenAI-shaped error body (`{error: {message, type, param, code}}`). */
    this.body = fields.body ?? null
    /** Route info: how far routing got (provider, option_index, attempts, ...). */
    this.route = fields.route ?? null
  }
}

function fromNative(err) {
  const message = err && err.message
  if (typeof message !== 'string' || !message.startsWith(ERROR_MARKER)) return err
  const e = JSON.parse(message.slice(ERROR_MARKER.length))
  return new GatewayError(e.message, {
    code: e.code,
    status: e.status,
    path: e.param,
    errors: e.errors,
    provider: e.provider,
    retryable: e.retryable,
    body: e.body,
    route: e.route,
  })
}

function optionsJson(options) {
  if (options == null) return '{}'
  if (typeof options !== 'object' || Array.isArray(options)) {
    throw new TypeError('gatewise: options must be an object')
  }
  const out = {}
  for (const key of Object.keys(options)) {
    const value = options[key]
    if (value !== undefined) out[OPTION_NAMES[key] ?? key] = value
  }
  return JSON.stringify(out)
}

function withRoute(result, route) {
  if (result !== null && typeof result === 'object') {
    Object.defineProperty(result, 'route', { value: route, enumerable: false, configurable: true, writable: true })
  }
  return result
}

/**
 * A streamed answer: an async iterable of chunk objects. `break` out of `for await` (or
 * `close()`) cancels the upstream request.
 */
class Stream {
  #iterator

  constructor(native, route) {
    this.#iterator = native[Symbol.asyncIterator]()
    /** How the stream was routed. */
    this.route = route
  }

  async next() {
    let item
    try {
      item = await this.#iterator.next()
    } catch (err) {
      const e = fromNative(err)
      if (e instanceof GatewayError && (e.route == null || e.route.provider == null)) e.route = this.route
      throw e
    }
    if (item.done) return { done: true, value: undefined }
    return { done: false, value: JSON.parse(item.value) }
  }

  async return(value) {
    await this.#iterator.return()
    return { done: true, value }
  }

  /** Stop reading and cancel the upstream request. */
  async close() {
    await this.#iterator.return()
  }

  [Symbol.asyncIterator]() {
    return this
  }
}

function abortReason(signal) {
  return signal.reason ?? new DOMException('This operation was aborted', 'AbortError')
}

// A native stream of SSE frames as a pull-based ReadableStream: one native `next()` per
// read, and cancel (or an abort of `signal`) drops the native stream.
function sseBody(native, signal) {
  const iterator = native[Symbol.asyncIterator]()
  let finished = false
  let onAbort = null
  const finish = () => {
    finished = true
    if (onAbort) signal.removeEventListener('abort', onAbort)
    return iterator.return().then(() => undefined)
  }
  return new ReadableStream(
    {
      start(controller) {
        if (!signal) return
        onAbort = () => {
          if (finished) return
          finish().catch(() => {})
          controller.error(abortReason(signal))
        }
        signal.addEventListener('abort', onAbort, { once: true })
      },
      async pull(controller) {
        try {
          const item = await iterator.next()
          if (finished) return
          if (item.done) {
            finish().catch(() => {})
            controller.close()
          } else {
            controller.enqueue(item.value)
          }
        } catch (err) {
          if (finished) return
          finish().catch(() => {})
          controller.error(fromNative(err))
        }
      },
      cancel() {
        if (!finished) return finish()
      },
    },
    { highWaterMark: 0 },
  )
}

function untilAborted(promise, signal) {
  if (!signal) return promise
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      reject(abortReason(signal))
      // The answer may still arrive; a stream nobody will read is closed at once.
      promise.then((reply) => reply.stream && reply.stream[Symbol.asyncIterator]().return()).catch(() => {})
    }
    signal.addEventListener('abort', onAbort, { once: true })
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort)
        resolve(value)
      },
      (err) => {
        signal.removeEventListener('abort', onAbort)
        reject(err)
      },
    )
  })
}

const NULL_BODY_STATUS = new Set([101, 103, 204, 205, 304])

async function gatewayFetch(native, input, init) {
  const request = new Request(input, init)
  const signal = init && init.signal ? request.signal : null
  if (signal && signal.aborted) throw abortReason(signal)
  const headers = []
  request.headers.forEach((value, name) => headers.push(name, value))
  const body = request.body ? Buffer.from(await request.arrayBuffer()) : null
  let reply
  try {
    reply = await untilAborted(native.http(request.method, request.url, headers, body), signal)
  } catch (err) {
    throw fromNative(err)
  }
  const responseHeaders = new Headers()
  for (let i = 0; i + 1 < reply.headers.length; i += 2) responseHeaders.append(reply.headers[i], reply.headers[i + 1])
  let responseBody = null
  if (reply.stream) responseBody = sseBody(reply.stream, signal)
  else if (!NULL_BODY_STATUS.has(reply.status)) responseBody = reply.body
  return new Response(responseBody, { status: reply.status, headers: responseHeaders })
}

/** An in-process gateway client, shaped like the OpenAI and Portkey SDK clients. */
class Gateway {
  #native

  constructor(options = {}) {
    if (options && options[FROM_NATIVE]) {
      this.#native = options[FROM_NATIVE]
    } else {
      const json = optionsJson(options)
      try {
        this.#native = new NativeGateway(json)
      } catch (err) {
        throw fromNative(err)
      }
    }
    const create = (endpoint) => (params) => this.#create(endpoint, params)
    this.chat = { completions: { create: create('chat.completions') } }
    this.completions = { create: create('completions') }
    this.embeddings = { create: create('embeddings') }
    this.images = { generate: create('images.generate') }
    this.moderations = { create: create('moderations') }
    const native = this.#native
    /** A fetch bound to this client: `new OpenAI({ fetch: gw.fetch, baseURL: 'http://gatewise.local/v1' })`. */
    this.fetch = (input, init) => gatewayFetch(native, input, init)
  }

  async #create(endpoint, params) {
    const body = JSON.stringify(params)
    let reply
    try {
      reply = await this.#native.create(endpoint, body)
    } catch (err) {
      throw fromNative(err)
    }
    const route = JSON.parse(reply.route)
    if (reply.stream) return new Stream(reply.stream, route)
    const type = reply.contentType
    const result = type == null || type.includes('json') ? JSON.parse(reply.body) : reply.body
    return withRoute(result, route)
  }

  /** A new client with these options replacing this one's. */
  withOptions(options) {
    const json = optionsJson(options)
    let native
    try {
      native = this.#native.withOptions(json)
    } catch (err) {
      throw fromNative(err)
    }
    return new Gateway({ [FROM_NATIVE]: native })
  }

  /** The dry-run plan: the targets in the order they would be tried. Sends nothing. */
  route(params, options = {}) {
    const { metadata, seed, endpoint = 'chat.completions' } = options
    try {
      const metadataJson = metadata === undefined ? null : JSON.stringify(metadata)
      return JSON.parse(this.#native.route(endpoint, JSON.stringify(params), metadataJson, seed ?? null))
    } catch (err) {
      throw fromNative(err)
    }
  }
}

module.exports = { Gateway, GatewayError, Stream }
