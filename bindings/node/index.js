'use strict'
// gatewise: the JS half of the Node binding. Like the Rust half (src/lib.rs) it holds
// only conversion and runtime bridging: option names, JSON text across the boundary,
// native errors into GatewayError, native streams into async iterables, ReadableStreams
// and WHATWG Responses. Routing and provider behaviour live in the Rust crates.

const native = require('./native.js')
const { NativeGateway } = native

// Must match ERROR_MARKER in src/lib.rs.
const ERROR_MARKER = '\u0001gatewise-error:'
const FROM_NATIVE = Symbol('gatewise.fromNative')

/** Every error the gateway reports: a bad config, a bad request, an upstream error, a timeout. */
class GatewayError extends Error {
  constructor(message, fields = {}) {
    super(message)
    this.name = 'GatewayError'
    /** Stable snake_case code: `invalid_config`, `rate_limited`, `timeout`, ... */
    this.code = fields.code ?? 'internal_error'
    /** HTTP status: the upstream's for provider errors, else the code's default. */
    this.status = fields.status ?? 500
    /** JSON path of the bad field, or the option or header that was bad; else null. */
    this.param = fields.param ?? null
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

  /** The name earlier releases used for `param`. */
  get path() {
    return this.param
  }
}

// The error classes (the OpenAI SDKs' names), as the engine declares them; which class an
// error gets is decided in Rust, by the error code.
const ERRORS = { GatewayError }
for (const [name, parent] of native.errorClasses()) {
  const Parent = ERRORS[parent]
  ERRORS[name] = {
    [name]: class extends Parent {
      constructor(message, fields) {
        super(message, fields)
        this.name = name
      }
    },
  }[name]
}

function fromNative(err) {
  const message = err && err.message
  if (typeof message !== 'string' || !message.startsWith(ERROR_MARKER)) return err
  const e = JSON.parse(message.slice(ERROR_MARKER.length))
  const ErrorClass = ERRORS[e.class] ?? GatewayError
  return new ErrorClass(e.message, e)
}

function optionsJson(options) {
  if (options == null) return '{}'
  if (typeof options !== 'object' || Array.isArray(options)) {
    throw new TypeError('gatewise: options must be an object')
  }
  // Option names (camelCase or snake_case) are checked by the engine: an unknown one is
  // an error naming it, never ignored.
  return JSON.stringify(options)
}

// Per-call options, as in the OpenAI and Portkey SDKs' `create(params, options)`: every
// client option, plus `headers` (`x-portkey-*` ones win over every option), `timeout`
// (ms, each attempt) and `signal`.
function splitCallOptions(options) {
  if (options == null) return { callJson: '{}', signal: null }
  if (typeof options !== 'object' || Array.isArray(options)) {
    throw new TypeError('gatewise: call options must be an object')
  }
  const { signal = null, timeout, headers, ...rest } = options
  const call = { ...rest }
  if (timeout != null) call.requestTimeout = timeout
  if (headers != null) call.headers = Object.fromEntries(new Headers(headers))
  return { callJson: optionsJson(call), signal }
}

function isFile(value) {
  return (
    value instanceof Uint8Array ||
    value instanceof ArrayBuffer ||
    (typeof Blob !== 'undefined' && value instanceof Blob)
  )
}

async function filePart(field, value) {
  if (value instanceof Uint8Array) return { field, filename: field, data: Buffer.from(value) }
  if (value instanceof ArrayBuffer) return { field, filename: field, data: Buffer.from(value) }
  const data = Buffer.from(await value.arrayBuffer())
  return { field, filename: value.name || field, contentType: value.type || undefined, data }
}

// The file fields of an upload (Buffer, Uint8Array, ArrayBuffer, Blob or File) taken out
// of the params; the rest are the form's text fields.
async function splitFiles(params) {
  const rest = {}
  const files = []
  for (const [key, value] of Object.entries(params)) {
    if (isFile(value)) files.push(await filePart(key, value))
    else if (Array.isArray(value) && value.length > 0 && value.every(isFile)) {
      for (const item of value) files.push(await filePart(`${key}[]`, item))
    } else rest[key] = value
  }
  return { rest, files }
}

// `route` rendered by the native route and parsed on first read: most callers never look
// at it, and doing both on every call was a fifth of a call's instructions.
function withRoute(result, nativeRoute) {
  if (result !== null && typeof result === 'object') {
    Object.defineProperty(result, 'route', {
      get() {
        const route = JSON.parse(nativeRoute.json())
        Object.defineProperty(this, 'route', { value: route, enumerable: false, configurable: true, writable: true })
        return route
      },
      set(route) {
        Object.defineProperty(this, 'route', { value: route, enumerable: false, configurable: true, writable: true })
      },
      enumerable: false,
      configurable: true,
    })
  }
  return result
}

/**
 * A streamed answer: an async iterable of chunk objects. `break` out of `for await` (or
 * `close()`) cancels the upstream request.
 */
class Stream {
  #iterator
  // Chunks a native nextBatch() brought and next() has not handed out yet: one thread
  // crossing per batch instead of per chunk.
  #queue = []
  #at = 0
  #ended = false

  #native

  constructor(native) {
    this.#native = native
    this.#iterator = native[Symbol.asyncIterator]()
  }

  /** How the stream was routed; `usage` and `cost` are filled in once it has ended. */
  get route() {
    return JSON.parse(this.#native.routeJson())
  }

  async next() {
    if (this.#queue.length === 0 && !this.#ended) {
      let batch
      try {
        batch = await this.#native.nextBatch()
      } catch (err) {
        const e = fromNative(err)
        if (e instanceof GatewayError && (e.route == null || e.route.provider == null)) e.route = this.route
        throw e
      }
      if (batch.length === 0) this.#ended = true
      else this.#queue = batch
      this.#at = 0
    }
    if (this.#at >= this.#queue.length) return { done: true, value: undefined }
    const item = this.#queue[this.#at++]
    if (this.#at >= this.#queue.length) {
      this.#queue = []
      this.#at = 0
    }
    return { done: false, value: JSON.parse(item) }
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

// A native stream of SSE frames as a pull-based ReadableStream: one native `nextBatch()`
// per read (every frame already read from the upstream, enqueued together), and cancel
// (or an abort of `signal`) drops the native stream.
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
          const batch = await native.nextBatch()
          if (finished) return
          if (batch.length === 0) {
            finish().catch(() => {})
            controller.close()
          } else {
            for (const frame of batch) controller.enqueue(frame)
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

/**
 * The native half hands over each request's record as JSON text; the caller's function
 * gets the object. What it throws is reported as a warning, never thrown into a request.
 */
function logCallback(onLog) {
  if (onLog == null) return undefined
  if (typeof onLog !== 'function') throw new TypeError('gatewise: onLog must be a function')
  return (line) => {
    try {
      onLog(JSON.parse(line))
    } catch (err) {
      process.emitWarning(`gatewise: the onLog callback threw: ${err && err.stack ? err.stack : err}`)
    }
  }
}

/** An in-process gateway client, shaped like the OpenAI and Portkey SDK clients. */
class Gateway {
  #native

  constructor(options = {}) {
    if (options && options[FROM_NATIVE]) {
      this.#native = options[FROM_NATIVE]
    } else {
      let rest = options
      let onLog
      if (options != null && typeof options === 'object' && !Array.isArray(options)) {
        const { onLog: camel, on_log: snake, ...others } = options
        rest = others
        onLog = camel ?? snake
      }
      const json = optionsJson(rest)
      try {
        this.#native = new NativeGateway(json, logCallback(onLog))
      } catch (err) {
        throw fromNative(err)
      }
    }
    // The resources, as the engine lists them: `chat.completions.create`, `models.list`, ...
    for (const [method, kind] of native.resources()) {
      const path = method.split('.')
      // The engine's names are snake_case; Node's are camelCase (`images.createVariation`).
      const leaf = path.pop().replace(/_([a-z])/g, (_, c) => c.toUpperCase())
      let owner = this
      for (const part of path) owner = owner[part] ??= {}
      owner[leaf] = (params, options) => this.#call(method, kind, params ?? {}, options)
    }
    const nativeGateway = this.#native
    /** A fetch bound to this client: `new OpenAI({ fetch: gw.fetch, baseURL: 'http://gatewise.local/v1' })`. */
    this.fetch = (input, init) => gatewayFetch(nativeGateway, input, init)
  }

  async #call(method, kind, params, options) {
    const { callJson, signal } = splitCallOptions(options)
    if (signal && signal.aborted) throw abortReason(signal)
    let body = params
    let files = []
    if (kind === 'multipart') ({ rest: body, files } = await splitFiles(params))
    let reply
    try {
      reply = await untilAborted(this.#native.create(method, JSON.stringify(body), files, callJson), signal)
    } catch (err) {
      throw fromNative(err)
    }
    if (reply.stream) {
      const stream = new Stream(reply.stream)
      if (signal) signal.addEventListener('abort', () => stream.close().catch(() => {}), { once: true })
      return stream
    }
    const type = reply.contentType
    const result = type == null || type.includes('json') ? JSON.parse(reply.body) : reply.body
    return withRoute(result, reply.route)
  }

  /** A new client with these options laid over this one's. */
  withOptions(options) {
    const json = optionsJson(options)
    let nativeGateway
    try {
      nativeGateway = this.#native.withOptions(json)
    } catch (err) {
      throw fromNative(err)
    }
    return new Gateway({ [FROM_NATIVE]: nativeGateway })
  }

  /** The dry-run plan: the targets in the order they would be tried. Sends nothing. */
  route(params, options = {}) {
    const { metadata, seed, endpoint = 'chat.completions.create' } = options
    try {
      const metadataJson = metadata === undefined ? null : JSON.stringify(metadata)
      return JSON.parse(this.#native.route(endpoint, JSON.stringify(params), metadataJson, seed ?? null))
    } catch (err) {
      throw fromNative(err)
    }
  }
}

/** Every option, as the engine declares it: `{name, camel, header, typescriptType, doc}`. */
const OPTIONS = Object.freeze(native.options().map((o) => Object.freeze(o)))

module.exports = { Gateway, Stream, OPTIONS, ...ERRORS }
