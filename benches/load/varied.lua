-- wrk script: the chat completion of post.lua, each request with metadata and a trace id
-- of its own (as a busy deployment sends them), for checking that memory stays flat.
local thread_id = 0
local n = 0
function setup(thread)
  thread_id = thread_id + 1
  thread:set("thread_id", thread_id)
end
function request()
  n = n + 1
  local headers = {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer sk-bench",
    ["x-portkey-trace-id"] = string.format("trace-%d-%d", thread_id, n),
    ["x-portkey-metadata"] = string.format('{"_user":"user-%d","session":"s-%d-%d","feature":"f%d"}', n % 100000, thread_id, n, n % 1000),
  }
  return wrk.format("POST", nil, headers, '{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"What is the capital of France? Answer in one word."}],"temperature":0.2}')
end
