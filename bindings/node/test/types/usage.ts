// Compiled with `tsc --noEmit` by test/types.test.mjs: the hand-written index.d.ts must
// accept the documented usage and reject misuse (the @ts-expect-error lines).
import OpenAI from 'openai'
import { Gateway, GatewayError, Stream, type RouteInfo, type ChatCompletionChunk } from 'gatewise'

async function main(): Promise<void> {
  const gw = new Gateway({
    config: { strategy: { mode: 'fallback' }, targets: [{ provider: 'openai', api_key: 'k' }] },
    metadata: { tier: 'pro' },
    traceId: 't',
    requestTimeout: 1000,
    cacheForceRefresh: false,
    cacheNamespace: 'ns',
    providerOptions: { openai_organization: 'org' },
  })
  new Gateway({ provider: 'openai', apiKey: 'k', customHost: 'http://localhost:1/v1' })
  new Gateway({ config: './config.json' })

  const r = await gw.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] })
  const content: string | null = r.choices[0].message.content
  const route: RouteInfo = r.route
  const index: string | null = route.option_index
  void content
  void index

  const s = await gw.chat.completions.create({ model: 'm', messages: [], stream: true })
  const typed: Stream<ChatCompletionChunk> = s
  for await (const chunk of typed) {
    const delta: string | null | undefined = chunk.choices[0].delta.content
    void delta
    break
  }
  await s.close()

  const e = await gw.embeddings.create({ model: 'e', input: ['a', 'b'] })
  void e.data[0].embedding
  await gw.completions.create({ model: 'm', prompt: 'p' })
  await gw.images.generate({ prompt: 'cat' })
  await gw.moderations.create({ input: 'x' })

  const plan = gw.route({ model: 'm', messages: [] }, { metadata: { a: 1 }, seed: 7, endpoint: 'chat.completions' })
  const first: string = plan.targets[0].option_index
  void first

  const other: Gateway = gw.withOptions({ metadata: { tier: 'free' }, traceId: 'x' })
  void other

  const client = new OpenAI({ fetch: gw.fetch, baseURL: 'http://gatewise.local/v1', apiKey: 'unused' })
  void client
  const res: Response = await gw.fetch('http://gatewise.local/v1/models')
  void res

  try {
    new Gateway({ config: {} })
  } catch (err) {
    if (err instanceof GatewayError) {
      const code: string = err.code
      const status: number = err.status
      const path: string | null = err.path
      const provider: string | null = err.provider
      void [code, status, path, provider, err.route?.attempts]
    }
  }

  // @ts-expect-error unknown option names are not accepted
  new Gateway({ apikey: 'k' })
  // @ts-expect-error requestTimeout is a number of ms
  new Gateway({ requestTimeout: '1s' })
  // @ts-expect-error a non-stream answer is not iterable
  for await (const x of r) void x
  // @ts-expect-error no such endpoint
  gw.route({}, { endpoint: 'audio.nope' })
}

void main
