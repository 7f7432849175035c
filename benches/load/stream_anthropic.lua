-- wrk script: post_anthropic.lua's request, streamed: the Messages API's events translated
-- into OpenAI chunks as they pass.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["x-portkey-config"] = "anthropic"
wrk.body = '{"model":"claude-3-5-haiku-20241022","stream":true,"messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"What is the capital of France? Answer in one word."}],"temperature":0.2,"max_tokens":16}'
