#!/usr/bin/env bash
# Load benchmark: the same fixed-answer upstream measured directly and through Gatewise.
#
# wrk, the upstream and Gatewise share this machine's cores, and a shared VM's speed
# drifts from second to second, so direct and gateway phases alternate over several
# rounds and the medians are reported. Besides throughput and latency it reports the CPU
# each process spends per request (from /proc), which drifts far less than throughput,
# and the latency a single connection sees when nothing queues. Two gateway paths: an
# OpenAI pass-through (the caller's bytes forwarded) and a translating config (Anthropic:
# the request rebuilt, the answer translated back). A second gateway serves the same
# upstream through a registry with gateway keys (`model: "@bench/..."` and a key on every
# request), so the registry's cost shows beside the pass-through's. An answer that is
# not 2xx is counted as a failure, not as throughput, and fails the run. These gateways
# run with the request log and metrics off; a third runs the pass-through with both on
# (JSON lines to a file, /metrics scraped once a second), so their cost shows beside it.
#
#   bash benches/load/run.sh                      # 3 rounds of 5 s phases
#   ROUNDS=5 DURATION=10s bash benches/load/run.sh
#   WORKERS=1 bash benches/load/run.sh            # gatewise serve --workers 1
#   GATEWISE=/tmp/gatewise-old bash benches/load/run.sh   # measure another build
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5s}
CONNECTIONS=${CONNECTIONS:-8}
UP_PORT=${UP_PORT:-9100}
GW_PORT=${GW_PORT:-9101}
REG_PORT=${REG_PORT:-9102}
OBS_PORT=${OBS_PORT:-9103}
GW=${GATEWISE:-./target/release/gatewise}

command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 1; }
cargo build --release -q -p gateway-http --bin gatewise -p gateway-benches --bin fixed_upstream

tmp=$(mktemp -d)
cleanup() { kill "${up_pid:-}" "${gw_pid:-}" "${reg_pid:-}" "${obs_pid:-}" "${scrape_pid:-}" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

./target/release/fixed_upstream "$UP_PORT" 1 & up_pid=$!
cat > "$tmp/config.json" <<JSON
{"provider": "openai", "api_key": "sk-bench", "custom_host": "http://127.0.0.1:$UP_PORT/v1"}
JSON
mkdir "$tmp/configs"
cat > "$tmp/configs/anthropic.json" <<JSON
{"provider": "anthropic", "api_key": "sk-ant-bench", "custom_host": "http://127.0.0.1:$UP_PORT/v1"}
JSON
# Builds from before the request log have neither it nor the flags that turn it off.
observes=false
if "$GW" serve --help | grep -q -- --log-format; then observes=true; fi
off=(); if $observes; then off=(--log-format none --no-metrics); fi
"$GW" serve --port "$GW_PORT" --config "$tmp/config.json" --config-dir "$tmp/configs" \
  --log-level warn ${WORKERS:+--workers "$WORKERS"} "${off[@]}" & gw_pid=$!
if $observes; then
  "$GW" serve --port "$OBS_PORT" --config "$tmp/config.json" --log-level warn ${WORKERS:+--workers "$WORKERS"} \
    --log-format json > "$tmp/requests.log" & obs_pid=$!
fi
key_hash=$(printf '%s' gw-bench-key | sha256sum | cut -d' ' -f1)
cat > "$tmp/registry.json" <<JSON
{"providers": {"bench": {"provider": "openai", "api_key": "sk-bench", "custom_host": "http://127.0.0.1:$UP_PORT/v1"}},
 "keys": {"bench": {"hash": "sha256:$key_hash"}}}
JSON
"$GW" serve --port "$REG_PORT" --registry "$tmp/registry.json" \
  --log-level warn ${WORKERS:+--workers "$WORKERS"} "${off[@]}" & reg_pid=$!

# Both must answer a real request (the gateway through each config) before anything is measured.
ready() { # $1 = port, then extra curl arguments
  local port=$1; shift
  for _ in $(seq 1 100); do
    curl -sf -o /dev/null -X POST -H 'content-type: application/json' "$@" \
      -d '{"model":"m","messages":[{"role":"user","content":"x"}]}' "http://127.0.0.1:$port/v1/chat/completions" && return 0
    sleep 0.1
  done
  echo "no 2xx answer from port $port $* after 10 s: not measuring" >&2
  exit 1
}
ready "$UP_PORT"
ready "$GW_PORT"
ready "$GW_PORT" -H 'x-portkey-config: anthropic'
ready "$REG_PORT" -H 'x-portkey-provider: @bench' -H 'x-portkey-api-key: gw-bench-key'
if $observes; then
  ready "$OBS_PORT"
  # A Prometheus server scrapes every few seconds; once a second is harsher.
  (while sleep 1; do curl -sf -o /dev/null "http://127.0.0.1:$OBS_PORT/metrics" || true; done) & scrape_pid=$!
fi

idle_rss_kb=$(awk '/VmRSS/ {print $2}' "/proc/$gw_pid/status")

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; } # utime + stime, in clock ticks
to_us() { # wrk prints 123.45us / 1.23ms / 1.00s
  awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) print n; else if (v ~ /ms$/) print n * 1000; else print n * 1000000 }'
}
# One wrk phase; prints "req/s p50_us p99_us cpu_us_per_request_of_$3", where req/s counts
# only 2xx answers; failures are added to $tmp/failures.
phase() { # $1 = port, $2 = connections, $3 = pid whose CPU to charge, $4 = wrk script
  local before after out requests failed seconds
  before=$(cpu_ticks "$3")
  out=$(wrk -t"$(( $2 < 2 ? $2 : 2 ))" -c"$2" -d"$DURATION" --latency -s "${4:-benches/load/post.lua}" "http://127.0.0.1:$1/v1/chat/completions")
  after=$(cpu_ticks "$3")
  requests=$(awk '/requests in/ {print $1}' <<<"$out")
  failed=$(awk '/Non-2xx or 3xx responses/ {print $5}' <<<"$out")
  failed=$(( ${failed:-0} + $(awk '/Socket errors/ {gsub(",", ""); print $4 + $6 + $8 + $10}' <<<"$out" | head -1 | grep . || echo 0) ))
  echo "$failed" >> "$tmp/failures"
  seconds=$(awk '/requests in/ {v = $4; sub(",", "", v); n = v + 0; if (v ~ /ms$/) n /= 1000; else if (v ~ /m$/) n *= 60; print n}' <<<"$out")
  printf '%s %s %s %s\n' \
    "$(awk -v n="$requests" -v f="$failed" -v s="$seconds" 'BEGIN { printf "%.0f", (n - f) / s }')" \
    "$(to_us "$(awk '$1 == "50%" {print $2}' <<<"$out")")" \
    "$(to_us "$(awk '$1 == "99%" {print $2}' <<<"$out")")" \
    "$(awk -v t=$((after - before)) -v n="$requests" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", t * 1e6 / hz / n }')"
}
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
column_median() { awk -v c="$2" '{print $c}' "$1" | median; }

# Warm both paths, then alternate.
wrk -t2 -c"$CONNECTIONS" -d2s -s benches/load/post.lua "http://127.0.0.1:$UP_PORT/v1/chat/completions" >/dev/null
wrk -t2 -c"$CONNECTIONS" -d2s -s benches/load/post.lua "http://127.0.0.1:$GW_PORT/v1/chat/completions" >/dev/null
wrk -t2 -c"$CONNECTIONS" -d2s -s benches/load/post_anthropic.lua "http://127.0.0.1:$GW_PORT/v1/chat/completions" >/dev/null
wrk -t2 -c"$CONNECTIONS" -d2s -s benches/load/post_registry.lua "http://127.0.0.1:$REG_PORT/v1/chat/completions" >/dev/null
if $observes; then wrk -t2 -c"$CONNECTIONS" -d2s -s benches/load/post.lua "http://127.0.0.1:$OBS_PORT/v1/chat/completions" >/dev/null; fi
for round in $(seq 1 "$ROUNDS"); do
  phase "$UP_PORT" "$CONNECTIONS" "$up_pid" >> "$tmp/direct"
  phase "$GW_PORT" "$CONNECTIONS" "$gw_pid" >> "$tmp/gatewise"
  phase "$UP_PORT" 1 "$up_pid" >> "$tmp/direct1"
  phase "$GW_PORT" 1 "$gw_pid" >> "$tmp/gatewise1"
  phase "$GW_PORT" "$CONNECTIONS" "$gw_pid" benches/load/post_anthropic.lua >> "$tmp/anthropic"
  phase "$REG_PORT" "$CONNECTIONS" "$reg_pid" benches/load/post_registry.lua >> "$tmp/registry"
  if $observes; then phase "$OBS_PORT" "$CONNECTIONS" "$obs_pid" >> "$tmp/observed"; fi
  echo "round $round: direct $(tail -1 "$tmp/direct" | cut -d' ' -f1) req/s, gatewise $(tail -1 "$tmp/gatewise" | cut -d' ' -f1) req/s, anthropic $(tail -1 "$tmp/anthropic" | cut -d' ' -f1) req/s" >&2
done
loaded_rss_kb=$(awk '/VmRSS/ {print $2}' "/proc/$gw_pid/status")

d_rps=$(column_median "$tmp/direct" 1); g_rps=$(column_median "$tmp/gatewise" 1)
d50=$(column_median "$tmp/direct" 2); g50=$(column_median "$tmp/gatewise" 2)
d99=$(column_median "$tmp/direct" 3); g99=$(column_median "$tmp/gatewise" 3)
up_cpu=$(column_median "$tmp/direct" 4); gw_cpu=$(column_median "$tmp/gatewise" 4)
d1=$(column_median "$tmp/direct1" 2); g1=$(column_median "$tmp/gatewise1" 2)
a_rps=$(column_median "$tmp/anthropic" 1); a50=$(column_median "$tmp/anthropic" 2)
a99=$(column_median "$tmp/anthropic" 3); a_cpu=$(column_median "$tmp/anthropic" 4)
r_rps=$(column_median "$tmp/registry" 1); r50=$(column_median "$tmp/registry" 2)
r99=$(column_median "$tmp/registry" 3); r_cpu=$(column_median "$tmp/registry" 4)
failures=$(awk '{ s += $1 } END { print s + 0 }' "$tmp/failures")
if $observes; then
  o_rps=$(column_median "$tmp/observed" 1); o50=$(column_median "$tmp/observed" 2)
  o99=$(column_median "$tmp/observed" 3); o_cpu=$(column_median "$tmp/observed" 4)
fi

echo "cores=$(nproc) rounds=$ROUNDS duration=$DURATION gatewise workers=${WORKERS:-one per core} (medians)"
printf '%-22s %12s %10s %10s\n' "at $CONNECTIONS connections" req/s "p50 us" "p99 us"
printf '%-22s %12s %10s %10s\n' direct "$d_rps" "$d50" "$d99"
printf '%-22s %12s %10s %10s\n' gatewise "$g_rps" "$g50" "$g99"
printf '%-22s %12s %10s %10s\n' "gatewise (anthropic)" "$a_rps" "$a50" "$a99"
printf '%-22s %12s %10s %10s\n' "gatewise (registry)" "$r_rps" "$r50" "$r99"
if $observes; then printf '%-22s %12s %10s %10s\n' "gatewise (log+metrics)" "$o_rps" "$o50" "$o99"; fi
awk -v g="$g_rps" -v d="$d_rps" 'BEGIN { printf "throughput ratio (gatewise/direct): %.2f  (goal >= 0.35)\n", g / d }'
awk -v g="$g50" -v d="$d50" -v c="$CONNECTIONS" 'BEGIN { printf "added p50 at %s connections (saturated): %.0f us\n", c, g - d }'
awk -v g="$g1" -v d="$d1" 'BEGIN { printf "added p50 at 1 connection: %.0f us (direct %.0f us, gatewise %.0f us)\n", g - d, d, g }'
echo "CPU per request: upstream $up_cpu us, gatewise $gw_cpu us (pass-through), $a_cpu us (translating to anthropic), $r_cpu us (registry: @slug/model + gateway key)"
if $observes; then
  awk -v o="$o_cpu" -v g="$gw_cpu" -v n="$(wc -l < "$tmp/requests.log")" 'BEGIN {
    printf "request log + metrics: %.1f us CPU per request vs %.1f us with both off (%+.1f%%, goal <= +10%%); %d log lines written\n", o, g, (o / g - 1) * 100, n }'
fi
echo "gatewise RSS: idle $((idle_rss_kb / 1024)) MB (goal <= 30 MB), after load $((loaded_rss_kb / 1024)) MB"
if [ "$failures" -gt 0 ]; then
  echo "FAILED: $failures answers were not 2xx (or the socket failed); they are not counted as throughput" >&2
  exit 1
fi
