#!/usr/bin/env bash
# Instructions per request, counted by callgrind: a figure that a noisy machine does not
# move (the same binary, inputs and environment give the same count), for comparing
# builds where throughput drifts. User-space instructions only: the kernel's share
# (syscalls, the network stack) is not in it.
#
# - server: `gatewise serve --workers 1` under callgrind, its instrumentation switched on
#   after a warm-up, then REQUESTS sequential requests on one kept-alive connection.
#   Then the same with the JSON request log and the metrics on (the goal: within 10%).
# - nginx: the same for nginx as a plain reverse proxy (one worker), the anchor.
# - in-process: the Rust floor (`Engine::handle` over the hyper transport), counted as
#   the difference between a run of 2 x REQUESTS calls and a run of REQUESTS (start-up
#   and connection set-up cancel out).
# - streamed chunks: the server's instructions per chunk of a streamed answer, pass-through
#   (OpenAI) and translated from Anthropic's Messages events, counted as the difference
#   between streams of 101 chunks and of 1 chunk (STREAMS sequential streams each), so
#   what a stream costs once cancels out.
# - Python and Node: a `create` call through the binding (the interpreter's own work,
#   JSON to and from host objects included), counted the same way, and for Python a
#   streamed chunk (streams of 101 chunks against streams of 1), when the Python named
#   by GATEWISE_PYTHON (default python3) can import gatewise, and when the Node module is
#   built (bindings/node, `npm run build`).
#
#   bash benches/load/instructions.sh                 # REQUESTS=2000
#   GATEWISE=/tmp/gatewise-old bash benches/load/instructions.sh
#   GATEWISE_PYTHON=target/py-venv/bin/python bash benches/load/instructions.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
REQUESTS=${REQUESTS:-2000}
STREAMS=${STREAMS:-500}
UP_PORT=${UP_PORT:-9110}
STREAM_UP_PORT=${STREAM_UP_PORT:-9112}
GW_PORT=${GW_PORT:-9111}
NGINX_PORT=${NGINX_PORT:-9114}
GW=${GATEWISE:-./target/release/gatewise}
FLOOR=${FLOOR:-./target/release/inprocess_floor}
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
command -v valgrind >/dev/null || { echo "valgrind is missing: apt-get install -y valgrind" >&2; exit 1; }
cargo build --release -q -p gateway-http --bin gatewise -p gateway-benches --bin fixed_upstream --bin inprocess_floor

tmp=$(mktemp -d)
cleanup() { kill "${up_pid:-}" "${stream_up_pid:-}" "${vg_pid:-}" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
./target/release/fixed_upstream "$UP_PORT" 1 & up_pid=$!
printf '%s' '{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"What is the capital of France? Answer in one word."}],"temperature":0.2}' > "$tmp/body.json"
cat > "$tmp/config.json" <<JSON
{"provider": "openai", "api_key": "sk-bench", "custom_host": "http://127.0.0.1:$UP_PORT/v1"}
JSON

# n sequential POSTs on one kept-alive connection; any answer but 200 fails the run. With
# $3, streamed chat completions through the config id $3 (configs/$3.json), each of which
# must end in [DONE].
requests() { # $1 = port, $2 = count, [$3 = config id]
  python3 - "$1" "$2" "$tmp/body.json" "${3:-}" <<'PY'
import http.client, sys
port, n, body, config = int(sys.argv[1]), int(sys.argv[2]), open(sys.argv[3], "rb").read(), sys.argv[4]
headers = {"content-type": "application/json", "authorization": "Bearer sk-bench"}
if config:
    headers["x-portkey-config"] = config
    body = body.replace(b'{"model":"gpt-4o-mini",', b'{"model":"gpt-4o-mini","stream":true,"max_tokens":16,')
connection = http.client.HTTPConnection("127.0.0.1", port)
for _ in range(n):
    connection.request("POST", "/v1/chat/completions", body, headers)
    answer = connection.getresponse()
    text = answer.read()
    if answer.status != 200 or (config and not text.endswith(b"data: [DONE]\n\n")):
        sys.exit(f"answer {answer.status} from port {port}: {text[:300]!r}")
PY
}
wait_ready() { # $1 = port
  for _ in $(seq 1 200); do
    curl -sf -o /dev/null -X POST -H 'content-type: application/json' --data-binary @"$tmp/body.json" "http://127.0.0.1:$1/v1/chat/completions" && return 0
    sleep 0.1
  done
  echo "no answer from port $1" >&2; exit 1
}
totals() { awk '/^totals:/ { s += $2 } END { print s + 0 }' "$@"; }

# A server under callgrind: warm up, count n requests, print instructions per request.
# COUNT (default REQUESTS) and CONFIG (streamed requests through that config id) adjust it.
count_server() { # $1 = port, then the command
  local port=$1 n=${COUNT:-$REQUESTS}; shift
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$tmp/cg.%p" "$@" > "$tmp/valgrind.log" 2>&1 & vg_pid=$!
  wait_ready "$port"
  requests "$port" 200 ${CONFIG:-}
  callgrind_control -i on "$vg_pid" > /dev/null 2>&1
  requests "$port" "$n" ${CONFIG:-}
  callgrind_control -i off "$vg_pid" > /dev/null 2>&1
  callgrind_control -d "$vg_pid" > /dev/null 2>&1
  kill "$vg_pid"; wait "$vg_pid" 2>/dev/null || true
  awk -v t="$(totals "$tmp"/cg.*)" -v n="$n" 'BEGIN { printf "%.0f", t / n }'
  rm -f "$tmp"/cg.*
}

gw_ir=$(count_server "$GW_PORT" "$GW" serve --port "$GW_PORT" --workers 1 --config "$tmp/config.json" \
  --log-level warn --log-format none --no-metrics)
# The same with the observability defaults on: the JSON request log (on stdout, which
# count_server sends to a file) and the metrics (what a request pays to be counted).
observed_ir=$(count_server "$GW_PORT" "$GW" serve --port "$GW_PORT" --workers 1 --config "$tmp/config.json" \
  --log-level warn --log-format json)
# Streamed chunks: the same gateway over an upstream that streams 1 chunk, then one that
# streams 101; the difference over 100 is a chunk's cost.
mkdir -p "$tmp/configs"
for kind in openai anthropic; do
  echo "{\"provider\": \"$kind\", \"api_key\": \"sk-bench\", \"custom_host\": \"http://127.0.0.1:$STREAM_UP_PORT/v1\"}" > "$tmp/configs/$kind.json"
done
stream_ir() { # $1 = config id, $2 = chunks per stream
  ./target/release/fixed_upstream "$STREAM_UP_PORT" 1 "$2" > /dev/null & stream_up_pid=$!
  COUNT=$STREAMS CONFIG=$1 count_server "$GW_PORT" "$GW" serve --port "$GW_PORT" --workers 1 --config "$tmp/config.json" \
    --config-dir "$tmp/configs" --log-level warn --log-format none --no-metrics
  kill "$stream_up_pid"; wait "$stream_up_pid" 2>/dev/null || true
}
per_chunk() { # $1 = config id
  local one many
  one=$(stream_ir "$1" 1); many=$(stream_ir "$1" 101)
  awk -v a="$one" -v b="$many" 'BEGIN { printf "%.0f", (b - a) / 100 }'
}
chunk_ir=$(per_chunk openai)
anthropic_chunk_ir=$(per_chunk anthropic)
bash benches/load/nginx.sh "$tmp/nginx.d" "$NGINX_PORT" "$UP_PORT" 1 single > /dev/null
nginx_ir=n/a
if [ -x "$NGINX" ]; then nginx_ir=$(count_server "$NGINX_PORT" "$NGINX" -p "$tmp/nginx.d" -c "$tmp/nginx.d/nginx.conf"); fi

# The in-process floor. Each run warms up with a tenth of its calls first, so the longer
# run makes 1.1 x REQUESTS calls more than the shorter.
floor_total() { # $1 = calls
  valgrind --tool=callgrind --callgrind-out-file="$tmp/floor.%p" "$FLOOR" "http://127.0.0.1:$UP_PORT/v1" "$1" caller > /dev/null 2>&1
  totals "$tmp"/floor.*
  rm -f "$tmp"/floor.*
}
base=$(floor_total "$REQUESTS")
full=$(floor_total $(( 2 * REQUESTS )))
floor_ir=$(awk -v f="$full" -v b="$base" -v n="$REQUESTS" 'BEGIN { printf "%.0f", (f - b) / (1.1 * n) }')

# A binding's call, counted as the difference of two runs of a script that makes
# `calls` sequential chat completions (all threads: the call's runtime included).
binding_ir() { # $1 = name for the output files, then the command; the call count is appended
  local name=$1; shift
  valgrind --tool=callgrind --callgrind-out-file="$tmp/$name-base.%p" "$@" "$REQUESTS" > /dev/null 2>&1
  valgrind --tool=callgrind --callgrind-out-file="$tmp/$name-full.%p" "$@" $(( 2 * REQUESTS )) > /dev/null 2>&1
  awk -v f="$(totals "$tmp/$name"-full.*)" -v b="$(totals "$tmp/$name"-base.*)" -v n="$REQUESTS" \
    'BEGIN { printf "%.0f", (f - b) / n }'
  rm -f "$tmp/$name"-*
}
CHAT='{"model": "gpt-4o-mini", "messages": [{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": "What is the capital of France? Answer in one word."}], "temperature": 0.2}'
PYTHON=${GATEWISE_PYTHON:-python3}
python_ir=n/a
python_chunk_ir=n/a
if "$PYTHON" -c 'import gatewise' 2>/dev/null; then
  cat > "$tmp/calls.py" <<PY
import json, sys, gatewise
gw = gatewise.Gateway({"provider": "openai", "api_key": "sk-bench", "custom_host": "http://127.0.0.1:$UP_PORT/v1"})
request = json.loads('$CHAT')
for _ in range(int(sys.argv[1])):
    gw.chat.completions.create(**request)
PY
  python_ir=$(binding_ir python "$PYTHON" "$tmp/calls.py")
  # A streamed chunk in Python: streams of 101 chunks against streams of 1, as the server's.
  cat > "$tmp/streams.py" <<PY
import sys, gatewise
gw = gatewise.Gateway({"provider": "openai", "api_key": "sk-bench", "custom_host": "http://127.0.0.1:$STREAM_UP_PORT/v1"})
for _ in range(int(sys.argv[1])):
    for chunk in gw.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True):
        pass
PY
  python_streams() { # $1 = chunks per stream
    ./target/release/fixed_upstream "$STREAM_UP_PORT" 1 "$1" > /dev/null & stream_up_pid=$!
    sleep 0.3
    valgrind --tool=callgrind --callgrind-out-file="$tmp/pystream.%p" "$PYTHON" "$tmp/streams.py" "$STREAMS" > /dev/null 2>&1
    kill "$stream_up_pid"; wait "$stream_up_pid" 2>/dev/null || true
    totals "$tmp"/pystream.*
    rm -f "$tmp"/pystream.*
  }
  one=$(python_streams 1); many=$(python_streams 101)
  python_chunk_ir=$(awk -v a="$one" -v b="$many" -v n="$STREAMS" 'BEGIN { printf "%.0f", (b - a) / n / 100 }')
fi
node_ir=n/a
if command -v node >/dev/null && node -e "require('./bindings/node')" 2>/dev/null; then
  cat > "$tmp/calls.cjs" <<JS
const { Gateway } = require('$PWD/bindings/node')
const gw = new Gateway({ provider: 'openai', apiKey: 'sk-bench', customHost: 'http://127.0.0.1:$UP_PORT/v1' })
const request = $CHAT
;(async () => { for (let i = 0; i < Number(process.argv[2]); i++) await gw.chat.completions.create(request) })()
JS
  node_ir=$(binding_ir node node "$tmp/calls.cjs")
fi

echo "instructions per request (callgrind, user space, $REQUESTS sequential requests):"
printf '  %-44s %10s\n' "server: gatewise serve (pass-through)" "$gw_ir"
printf '  %-44s %10s\n' "server: the same, JSON log + metrics on" "$observed_ir"
printf '  %-44s %10s\n' "server: nginx proxy_pass (the anchor)" "$nginx_ir"
printf '  %-44s %10s\n' "server: a streamed chunk, pass-through" "$chunk_ir"
printf '  %-44s %10s\n' "server: a streamed chunk, from Anthropic" "$anthropic_chunk_ir"
printf '  %-44s %10s\n' "in-process: Engine::handle over hyper" "$floor_ir"
printf '  %-44s %10s\n' "in-process: Python gw.chat.completions.create" "$python_ir"
printf '  %-44s %10s\n' "in-process: Python, a streamed chunk" "$python_chunk_ir"
printf '  %-44s %10s\n' "in-process: Node gw.chat.completions.create" "$node_ir"
