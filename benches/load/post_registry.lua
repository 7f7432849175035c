-- wrk script: the same request as post.lua, through a registry: the model names a
-- provider entry (@bench/...) and the request carries a gateway key.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer gw-bench-key"
wrk.body = '{"model":"@bench/gpt-4o-mini","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"What is the capital of France? Answer in one word."}],"temperature":0.2}'
