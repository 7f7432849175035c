// The benchmark's mock upstream, run in its own process so that serving requests does not
// share the measured process's event loop. Prints its base URL on stdout.
import http from 'node:http'

const answer = JSON.stringify({
  id: 'chatcmpl-bench',
  object: 'chat.completion',
  created: 1,
  model: 'gpt-4o-mini',
  choices: [{ index: 0, message: { role: 'assistant', content: 'Hello! How can I help you today?' }, finish_reason: 'stop' }],
  usage: { prompt_tokens: 9, completion_tokens: 9, total_tokens: 18 },
})

// A request with `stream: true` gets `max_tokens` chunks of text, then the finish chunk.
const chunk = (delta, finish = null) =>
  `data: ${JSON.stringify({ id: 'chatcmpl-bench', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o-mini', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`
const stream = (n) =>
  chunk({ role: 'assistant', content: '' }) +
  Array.from({ length: n }, (_, i) => chunk({ content: `tok${i} ` })).join('') +
  chunk({}, 'stop') +
  'data: [DONE]\n\n'

const server = http.createServer((req, res) => {
  const parts = []
  req.on('data', (c) => parts.push(c))
  req.on('end', () => {
    const request = JSON.parse(Buffer.concat(parts))
    const [body, type] = request.stream ? [stream(request.max_tokens ?? 0), 'text/event-stream'] : [answer, 'application/json']
    res.writeHead(200, { 'content-type': type, 'content-length': Buffer.byteLength(body) })
    res.end(body)
  })
})
server.keepAliveTimeout = 60_000
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`http://127.0.0.1:${server.address().port}\n`)
})
process.on('disconnect', () => process.exit(0))
