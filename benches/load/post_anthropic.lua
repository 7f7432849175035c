-- wrk script: the same request as post.lua, routed through the gateway's `anthropic`
-- config (--config-dir): the request is rebuilt for the Messages API and the answer
-- translated back.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["x-portkey-config"] = "anthropic"
wrk.body = '{"model":"claude-3-5-haiku-20241022","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"What is the capital of France? Answer in one word."}],"temperature":0.2,"max_tokens":16}'
