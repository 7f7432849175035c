// The ESM type entry (index.d.mts), compiled with `tsc --strict` by test/types.test.mjs:
// the new surface (per-call options, uploads, models, the error classes) type-checks when
// imported as an ES module, and misuse does not.
import {
  Gateway,
  GatewayError,
  RateLimitError,
  ConfigError,
  APIStatusError,
  OPTIONS,
  type CallOptions,
  type ChatCompletion,
  type WithRoute,
} from 'gatewise'

export async function main(): Promise<void> {
  const gw = new Gateway({ provider: 'openai', apiKey: 'k', forwardHeaders: ['x-user'] })
  const controller = new AbortController()
  const call: CallOptions = { traceId: 't', headers: { 'x-portkey-metadata': '{}' }, timeout: 500, signal: controller.signal }
  const r: WithRoute<ChatCompletion> = await gw.chat.completions.create({ model: 'm', messages: [] }, call)
  void r.route.trace_id
  const t = await gw.audio.transcriptions.create({ file: new Uint8Array([1, 2]), model: 'whisper-1' })
  const text: string = t.text
  const models = await gw.models.list()
  const id: string = models.data[0].id
  await gw.images.createVariation({ image: new Blob(['png']) })
  const names: string[] = OPTIONS.map((o) => o.camel)
  void [text, id, names]

  try {
    await gw.embeddings.create({ model: 'e', input: 'x' })
  } catch (err) {
    if (err instanceof RateLimitError) {
      const limited: APIStatusError = err
      const param: string | null = limited.param
      void param
    } else if (err instanceof ConfigError || err instanceof GatewayError) {
      void err.code
    }
  }

  // @ts-expect-error timeout is a number of ms
  await gw.chat.completions.create({ model: 'm', messages: [] }, { timeout: '1s' })
  // @ts-expect-error unknown call options are refused
  await gw.chat.completions.create({ model: 'm', messages: [] }, { maxRetries: 2 })
  // @ts-expect-error a transcription needs a file
  await gw.audio.transcriptions.create({ model: 'whisper-1' })
}
