#!/usr/bin/env bash
# Memory under load: Gatewise's resident set over REQUESTS requests that each carry
# metadata and a trace id of their own (request log to a file and metrics on, as deployed),
# and what an open, idle stream costs.
#
# - flat: RSS sampled every few seconds while wrk sends at least REQUESTS requests
#   (varied.lua); the goal is a spread of at most 5 MB after the warm-up.
# - idle streams: STREAMS streamed completions held open at once through the gateway (the
#   upstream sends the first event, then nothing for ten minutes); the goal is at most
#   30 KB of gateway RSS per stream.
#
#   bash benches/load/memory.sh                     # REQUESTS=1000000 STREAMS=10000
set -euo pipefail
cd "$(dirname "$0")/../.."
REQUESTS=${REQUESTS:-1000000}
STREAMS=${STREAMS:-10000}
UP_PORT=${UP_PORT:-9120}
IDLE_UP_PORT=${IDLE_UP_PORT:-9121}
GW_PORT=${GW_PORT:-9122}
GW=${GATEWISE:-./target/release/gatewise}
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 1; }
cargo build --release -q -p gateway-http --bin gatewise -p gateway-benches --bin fixed_upstream --bin stream_client
# Every idle stream is a socket at the client, two at the gateway and one at the upstream:
# the gateway needs two descriptors a stream, so a machine's hard limit caps the count.
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ $(( STREAMS * 2 + 1024 )) -gt "$hard" ]; then
  STREAMS=$(( (hard - 1024) / 2 ))
  echo "open files are capped at $hard here: measuring $STREAMS idle streams" >&2
fi
ulimit -n "$hard"

tmp=$(mktemp -d)
cleanup() { kill "${up_pid:-}" "${idle_up_pid:-}" "${gw_pid:-}" "${client_pid:-}" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
./target/release/fixed_upstream "$UP_PORT" 1 & up_pid=$!
./target/release/fixed_upstream "$IDLE_UP_PORT" 1 20 600000 & idle_up_pid=$!
mkdir "$tmp/configs"
cat > "$tmp/config.json" <<JSON
{"provider": "openai", "api_key": "sk-bench", "custom_host": "http://127.0.0.1:$UP_PORT/v1"}
JSON
cat > "$tmp/configs/idle.json" <<JSON
{"provider": "openai", "api_key": "sk-bench", "custom_host": "http://127.0.0.1:$IDLE_UP_PORT/v1"}
JSON
"$GW" serve --port "$GW_PORT" --config "$tmp/config.json" --config-dir "$tmp/configs" --log-level warn \
  --log-format json > "$tmp/requests.log" & gw_pid=$!
for _ in $(seq 1 100); do
  curl -sf -o /dev/null -X POST -H 'content-type: application/json' -d '{"model":"m","messages":[]}' \
    "http://127.0.0.1:$GW_PORT/v1/chat/completions" && break
  sleep 0.1
done
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/${1:-$gw_pid}/status"; }
url="http://127.0.0.1:$GW_PORT/v1/chat/completions"

start_kb=$(rss_kb)
wrk -t2 -c8 -d3s -s benches/load/varied.lua "$url" > /dev/null # warm-up
warm_kb=$(rss_kb)
sent=0; low=$warm_kb; high=$warm_kb
while [ "$sent" -lt "$REQUESTS" ]; do
  out=$(wrk -t2 -c8 -d5s -s benches/load/varied.lua "$url")
  if grep -q "Non-2xx" <<<"$out"; then echo "FAILED: non-2xx answers" >&2; exit 1; fi
  sent=$(( sent + $(awk '/requests in/ {print $1}' <<<"$out") ))
  now=$(rss_kb)
  [ "$now" -lt "$low" ] && low=$now
  [ "$now" -gt "$high" ] && high=$now
  echo "  $sent requests: RSS $((now / 1024)) MB" >&2
done
end_kb=$(rss_kb)

before_kb=$(rss_kb)
up_before_kb=$(rss_kb "$idle_up_pid")
./target/release/stream_client idle "$GW_PORT" "$STREAMS" "x-portkey-config: idle" > "$tmp/client.out" & client_pid=$!
for _ in $(seq 1 600); do
  grep -q '^open' "$tmp/client.out" && break
  kill -0 "$client_pid" 2>/dev/null || { echo "the stream client failed" >&2; exit 1; }
  sleep 0.1
done
grep -q '^open' "$tmp/client.out" || { echo "the streams did not all open within 60 s" >&2; exit 1; }
sleep 1
held_kb=$(rss_kb)
up_held_kb=$(rss_kb "$idle_up_pid")

echo "gatewise RSS, request log + metrics on:"
echo "  at start $((start_kb / 1024)) MB, after warm-up $((warm_kb / 1024)) MB"
awk -v n="$sent" -v lo="$low" -v hi="$high" -v e="$end_kb" 'BEGIN {
  printf "  over %d requests with varied metadata and trace ids: %.1f to %.1f MB (spread %.1f MB, goal <= 5), %.1f MB at the end\n",
    n, lo / 1024, hi / 1024, (hi - lo) / 1024, e / 1024 }'
awk -v s="$STREAMS" -v b="$before_kb" -v h="$held_kb" 'BEGIN {
  printf "  %d idle streams held open: %.1f MB -> %.1f MB, %.1f KB per stream (goal <= 30)\n", s, b / 1024, h / 1024, (h - b) / s }'
# The upstream (axum on hyper, one connection a stream) holding the same streams: what one
# hyper-served connection with a stream open costs, for scale (the gateway holds two).
awk -v s="$STREAMS" -v b="$up_before_kb" -v h="$up_held_kb" 'BEGIN {
  printf "  the upstream holding them: %.1f KB per stream\n", (h - b) / s }'
