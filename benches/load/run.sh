#!/usr/bin/env bash
# Load benchmark: the same fixed-answer upstream measured directly and through Gatewise,
# in one run, with wrk at 8 connections. Prints throughput, p50/p99 latency, the ratio,
# the added p50, and Gatewise's idle RSS.
#
#   bash benches/load/run.sh            # 10 s per phase
#   DURATION=30s bash benches/load/run.sh
#   WORKERS=1 bash benches/load/run.sh  # one runtime thread (wrk and the upstream share the cores)
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-8}
UP_PORT=${UP_PORT:-9100}
GW_PORT=${GW_PORT:-9101}

command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 1; }
cargo build --release -q -p gateway-http --bin gatewise -p gateway-benches --bin fixed_upstream

tmp=$(mktemp -d)
cleanup() { kill "${up_pid:-}" "${gw_pid:-}" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

./target/release/fixed_upstream "$UP_PORT" 1 & up_pid=$!
cat > "$tmp/config.json" <<JSON
{"provider": "openai", "api_key": "sk-bench", "custom_host": "http://127.0.0.1:$UP_PORT/v1"}
JSON
./target/release/gatewise serve --port "$GW_PORT" --config "$tmp/config.json" --log-level warn ${WORKERS:+--workers "$WORKERS"} & gw_pid=$!

for port in "$UP_PORT" "$GW_PORT"; do
  for _ in $(seq 1 100); do
    curl -sf -o /dev/null -X POST -H 'content-type: application/json' \
      -d '{"model":"m","messages":[{"role":"user","content":"x"}]}' "http://127.0.0.1:$port/v1/chat/completions" && break
    sleep 0.1
  done
done
idle_rss_kb=$(awk '/VmRSS/ {print $2}' "/proc/$gw_pid/status")

run() { # $1 = label, $2 = url
  wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -s benches/load/post.lua "$2" > "$tmp/$1.txt"
  local rps p50 p99
  rps=$(awk '/Requests\/sec/ {print $2}' "$tmp/$1.txt")
  p50=$(awk '$1 == "50%" {print $2}' "$tmp/$1.txt")
  p99=$(awk '$1 == "99%" {print $2}' "$tmp/$1.txt")
  echo "$1 $rps $p50 $p99"
}
to_us() { # wrk prints 123.45us / 1.23ms / 1.00s
  awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) print n; else if (v ~ /ms$/) print n * 1000; else print n * 1000000 }'
}

# Warm both paths, then measure.
wrk -t2 -c"$CONNECTIONS" -d2s -s benches/load/post.lua "http://127.0.0.1:$UP_PORT/v1/chat/completions" >/dev/null
wrk -t2 -c"$CONNECTIONS" -d2s -s benches/load/post.lua "http://127.0.0.1:$GW_PORT/v1/chat/completions" >/dev/null
read -r _ d_rps d_p50 d_p99 < <(run direct "http://127.0.0.1:$UP_PORT/v1/chat/completions")
read -r _ g_rps g_p50 g_p99 < <(run gatewise "http://127.0.0.1:$GW_PORT/v1/chat/completions")
loaded_rss_kb=$(awk '/VmRSS/ {print $2}' "/proc/$gw_pid/status")

d50=$(to_us "$d_p50"); g50=$(to_us "$g_p50")
echo "connections=$CONNECTIONS duration=$DURATION cores=$(nproc) gatewise workers=${WORKERS:-one per core}"
printf '%-10s %12s %10s %10s\n' path req/s p50 p99
printf '%-10s %12s %10s %10s\n' direct "$d_rps" "$d_p50" "$d_p99"
printf '%-10s %12s %10s %10s\n' gatewise "$g_rps" "$g_p50" "$g_p99"
awk -v g="$g_rps" -v d="$d_rps" 'BEGIN { printf "throughput ratio (gatewise/direct): %.2f  (goal >= 0.35)\n", g / d }'
awk -v g="$g50" -v d="$d50" 'BEGIN { printf "added p50 latency: %.0f us  (goal <= 100 us)\n", g - d }'
echo "gatewise RSS: idle $((idle_rss_kb / 1024)) MB (goal <= 30 MB), after load $((loaded_rss_kb / 1024)) MB"
