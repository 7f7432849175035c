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
# Streams: the gateway's CPU per streamed chunk (a stream of CHUNKS chunks written back to
# back, less a plain answer's CPU, per event), pass-through and translated from Anthropic;
# and the time to first token at 1 connection, against an upstream that writes its first
# event alone (stream_client ttft), direct, through nginx (passing answers on unbuffered,
# as it must be set up for server-sent events) and through the gateway.
#
# The anchor is nginx as a plain reverse proxy (proxy_pass, upstream keep-alive, no
# routing, access log off, one worker per core like Gatewise) in front of the same
# upstream: what a proxy hop costs on this machine, whatever the machine's speed today.
# The goals are set against it: Gatewise's throughput >= 0.9 x nginx's at 8 connections,
# and the latency it adds at 1 connection (p50 and p99) within 10 us of what nginx adds.
#
#   bash benches/load/run.sh                      # 3 rounds of 5 s phases
#   ROUNDS=5 DURATION=10s bash benches/load/run.sh
#   WORKERS=1 bash benches/load/run.sh            # gatewise serve --workers 1
#   GATEWISE=/tmp/gatewise-old bash benches/load/run.sh   # measure another build
#   INSTRUCTIONS=0 bash benches/load/run.sh       # skip the instruction counts (callgrind)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5s}
CONNECTIONS=${CONNECTIONS:-8}
UP_PORT=${UP_PORT:-9100}
GW_PORT=${GW_PORT:-9101}
REG_PORT=${REG_PORT:-9102}
OBS_PORT=${OBS_PORT:-9103}
NGINX_PORT=${NGINX_PORT:-9104}
TTFT_UP_PORT=${TTFT_UP_PORT:-9105}
TTFT_NGINX_PORT=${TTFT_NGINX_PORT:-9106}
# Text chunks in each streamed answer: enough that the per-chunk cost stands out of the
# per-request one.
CHUNKS=${CHUNKS:-100}
GW=${GATEWISE:-./target/release/gatewise}

command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 1; }
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
[ -x "$NGINX" ] || { echo "nginx is missing: apt-get install -y nginx-light" >&2; exit 1; }
cargo build --release -q -p gateway-http --bin gatewise -p gateway-benches --bin fixed_upstream --bin stream_client

tmp=$(mktemp -d)
cleanup() {
  kill "${up_pid:-}" "${ttft_up_pid:-}" "${gw_pid:-}" "${reg_pid:-}" "${obs_pid:-}" "${scrape_pid:-}" "${nginx_pid:-}" "${ttft_nginx_pid:-}" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

./target/release/fixed_upstream "$UP_PORT" 1 "$CHUNKS" & up_pid=$!
# For the time to first token: the first event alone, the rest 2 ms later.
./target/release/fixed_upstream "$TTFT_UP_PORT" 1 20 2 & ttft_up_pid=$!
cat > "$tmp/config.json" <<JSON
{"provider": "openai", "api_key": "sk-bench", "custom_host": "http://127.0.0.1:$UP_PORT/v1"}
JSON
mkdir "$tmp/configs"
cat > "$tmp/configs/ttft.json" <<JSON
{"provider": "openai", "api_key": "sk-bench", "custom_host": "http://127.0.0.1:$TTFT_UP_PORT/v1"}
JSON
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
# nginx as a plain reverse proxy: the anchor. One worker per core, as Gatewise runs.
bash benches/load/nginx.sh "$tmp/nginx.d" "$NGINX_PORT" "$UP_PORT" "${WORKERS:-$(nproc)}" > /dev/null
"$NGINX" -p "$tmp/nginx.d" -c "$tmp/nginx.d/nginx.conf" & nginx_pid=$!
bash benches/load/nginx.sh "$tmp/nginx-stream.d" "$TTFT_NGINX_PORT" "$TTFT_UP_PORT" "${WORKERS:-$(nproc)}" stream > /dev/null
"$NGINX" -p "$tmp/nginx-stream.d" -c "$tmp/nginx-stream.d/nginx.conf" & ttft_nginx_pid=$!
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
ready "$NGINX_PORT"
ready "$TTFT_NGINX_PORT"
ready "$GW_PORT"
ready "$GW_PORT" -H 'x-portkey-config: anthropic'
ready "$REG_PORT" -H 'x-portkey-provider: @bench' -H 'x-portkey-api-key: gw-bench-key'
if $observes; then
  ready "$OBS_PORT"
  # A Prometheus server scrapes every few seconds; once a second is harsher.
  (while sleep 1; do curl -sf -o /dev/null "http://127.0.0.1:$OBS_PORT/metrics" || true; done) & scrape_pid=$!
fi

idle_rss_kb=$(awk '/VmRSS/ {print $2}' "/proc/$gw_pid/status")

cpu_ticks() { # utime + stime of the process and its children (nginx's workers), in clock ticks
  local pid=$1 total=0 child
  total=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  for child in $(cat "/proc/$pid/task/"*/children 2>/dev/null); do
    total=$((total + $(awk '{print $14 + $15}' "/proc/$child/stat")))
  done
  echo "$total"
}
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
wrk -t2 -c"$CONNECTIONS" -d2s -s benches/load/post.lua "http://127.0.0.1:$NGINX_PORT/v1/chat/completions" >/dev/null
wrk -t2 -c"$CONNECTIONS" -d2s -s benches/load/post.lua "http://127.0.0.1:$GW_PORT/v1/chat/completions" >/dev/null
wrk -t2 -c"$CONNECTIONS" -d2s -s benches/load/post_anthropic.lua "http://127.0.0.1:$GW_PORT/v1/chat/completions" >/dev/null
wrk -t2 -c"$CONNECTIONS" -d2s -s benches/load/post_registry.lua "http://127.0.0.1:$REG_PORT/v1/chat/completions" >/dev/null
if $observes; then wrk -t2 -c"$CONNECTIONS" -d2s -s benches/load/post.lua "http://127.0.0.1:$OBS_PORT/v1/chat/completions" >/dev/null; fi
for round in $(seq 1 "$ROUNDS"); do
  phase "$UP_PORT" "$CONNECTIONS" "$up_pid" >> "$tmp/direct"
  phase "$NGINX_PORT" "$CONNECTIONS" "$nginx_pid" >> "$tmp/nginx"
  phase "$GW_PORT" "$CONNECTIONS" "$gw_pid" >> "$tmp/gatewise"
  phase "$UP_PORT" 1 "$up_pid" >> "$tmp/direct1"
  phase "$NGINX_PORT" 1 "$nginx_pid" >> "$tmp/nginx1"
  phase "$GW_PORT" 1 "$gw_pid" >> "$tmp/gatewise1"
  phase "$GW_PORT" "$CONNECTIONS" "$gw_pid" benches/load/post_anthropic.lua >> "$tmp/anthropic"
  phase "$REG_PORT" "$CONNECTIONS" "$reg_pid" benches/load/post_registry.lua >> "$tmp/registry"
  phase "$GW_PORT" "$CONNECTIONS" "$gw_pid" benches/load/stream.lua >> "$tmp/stream"
  phase "$GW_PORT" "$CONNECTIONS" "$gw_pid" benches/load/stream_anthropic.lua >> "$tmp/stream_anthropic"
  ./target/release/stream_client ttft "$TTFT_UP_PORT" 2000 >> "$tmp/ttft_direct"
  ./target/release/stream_client ttft "$TTFT_NGINX_PORT" 2000 >> "$tmp/ttft_nginx"
  ./target/release/stream_client ttft "$GW_PORT" 2000 "x-portkey-config: ttft" >> "$tmp/ttft_gatewise"
  if $observes; then
    phase "$OBS_PORT" "$CONNECTIONS" "$obs_pid" >> "$tmp/observed"
    phase "$OBS_PORT" 1 "$obs_pid" >> "$tmp/observed1"
  fi
  echo "round $round: direct $(tail -1 "$tmp/direct" | cut -d' ' -f1) req/s, nginx $(tail -1 "$tmp/nginx" | cut -d' ' -f1) req/s, gatewise $(tail -1 "$tmp/gatewise" | cut -d' ' -f1) req/s, anthropic $(tail -1 "$tmp/anthropic" | cut -d' ' -f1) req/s" >&2
done
loaded_rss_kb=$(awk '/VmRSS/ {print $2}' "/proc/$gw_pid/status")

d_rps=$(column_median "$tmp/direct" 1); g_rps=$(column_median "$tmp/gatewise" 1); n_rps=$(column_median "$tmp/nginx" 1)
d50=$(column_median "$tmp/direct" 2); g50=$(column_median "$tmp/gatewise" 2); n50=$(column_median "$tmp/nginx" 2)
d99=$(column_median "$tmp/direct" 3); g99=$(column_median "$tmp/gatewise" 3); n99=$(column_median "$tmp/nginx" 3)
up_cpu=$(column_median "$tmp/direct" 4); gw_cpu=$(column_median "$tmp/gatewise" 4); nginx_cpu=$(column_median "$tmp/nginx" 4)
d1=$(column_median "$tmp/direct1" 2); g1=$(column_median "$tmp/gatewise1" 2); n1=$(column_median "$tmp/nginx1" 2)
d1_99=$(column_median "$tmp/direct1" 3); g1_99=$(column_median "$tmp/gatewise1" 3); n1_99=$(column_median "$tmp/nginx1" 3)
a_rps=$(column_median "$tmp/anthropic" 1); a50=$(column_median "$tmp/anthropic" 2)
a99=$(column_median "$tmp/anthropic" 3); a_cpu=$(column_median "$tmp/anthropic" 4)
r_rps=$(column_median "$tmp/registry" 1); r50=$(column_median "$tmp/registry" 2)
r99=$(column_median "$tmp/registry" 3); r_cpu=$(column_median "$tmp/registry" 4)
s_cpu=$(column_median "$tmp/stream" 4); sa_cpu=$(column_median "$tmp/stream_anthropic" 4)
json_median() { sed -E "s/.*\"$2\":([0-9.]+).*/\1/" "$1" | median; }
t_direct=$(json_median "$tmp/ttft_direct" ttft_p50_us); t_gw=$(json_median "$tmp/ttft_gatewise" ttft_p50_us)
t_direct99=$(json_median "$tmp/ttft_direct" ttft_p99_us); t_gw99=$(json_median "$tmp/ttft_gatewise" ttft_p99_us)
t_nginx=$(json_median "$tmp/ttft_nginx" ttft_p50_us); t_nginx99=$(json_median "$tmp/ttft_nginx" ttft_p99_us)
failures=$(awk '{ s += $1 } END { print s + 0 }' "$tmp/failures")
if $observes; then
  o_rps=$(column_median "$tmp/observed" 1); o50=$(column_median "$tmp/observed" 2)
  o99=$(column_median "$tmp/observed" 3); o_cpu=$(column_median "$tmp/observed" 4)
  o1=$(column_median "$tmp/observed1" 2); o1_99=$(column_median "$tmp/observed1" 3)
fi

echo "cores=$(nproc) rounds=$ROUNDS duration=$DURATION gatewise workers=${WORKERS:-one per core} (medians)"
printf '%-22s %12s %10s %10s %12s %10s\n' "at $CONNECTIONS connections" req/s "p50 us" "p99 us" "cpu us/req"
row() { printf '%-22s %12s %10s %10s %12s\n' "$@"; }
row direct "$d_rps" "$d50" "$d99" "$up_cpu"
row "nginx (proxy_pass)" "$n_rps" "$n50" "$n99" "$nginx_cpu"
row gatewise "$g_rps" "$g50" "$g99" "$gw_cpu"
row "gatewise (anthropic)" "$a_rps" "$a50" "$a99" "$a_cpu"
row "gatewise (registry)" "$r_rps" "$r50" "$r99" "$r_cpu"
if $observes; then row "gatewise (log+metrics)" "$o_rps" "$o50" "$o99" "$o_cpu"; fi
printf '%-22s %12s %10s %10s\n' "at 1 connection" "" "p50 us" "p99 us"
row direct "" "$d1" "$d1_99"
row "nginx (proxy_pass)" "" "$n1" "$n1_99"
row gatewise "" "$g1" "$g1_99"
if $observes; then row "gatewise (log+metrics)" "" "$o1" "$o1_99"; fi
awk -v g="$g_rps" -v d="$d_rps" -v n="$n_rps" 'BEGIN {
  printf "throughput vs nginx: %.2f x (goal >= 0.90); vs direct: %.2f x, nginx vs direct: %.2f x\n", g / n, g / d, n / d }'
awk -v g="$g1" -v n="$n1" -v d="$d1" -v g99="$g1_99" -v n99="$n1_99" -v d99="$d1_99" 'BEGIN {
  printf "added at 1 connection: gatewise p50 %.0f us, p99 %.0f us; nginx p50 %.0f us, p99 %.0f us; gatewise - nginx: p50 %+.0f us, p99 %+.0f us (goal <= +10)\n",
    g - d, g99 - d99, n - d, n99 - d99, g - n, g99 - n99 }'
if $observes; then
  awk -v o="$o_rps" -v n="$n_rps" -v o1="$o1" -v n1="$n1" -v o99="$o1_99" -v n99="$n1_99" -v d="$d1" -v d99="$d1_99" 'BEGIN {
    printf "with log+metrics: throughput vs nginx %.2f x (goal >= 0.81); added at 1 connection - nginx'"'"'s: p50 %+.0f us, p99 %+.0f us (goal <= +11 us over nginx'"'"'s added %.0f / %.0f)\n",
      o / n, o1 - n1, o99 - n99, n1 - d, n99 - d99 }'
fi
echo "CPU per request: upstream $up_cpu us, nginx $nginx_cpu us, gatewise $gw_cpu us (pass-through), $a_cpu us (translating to anthropic), $r_cpu us (registry: @slug/model + gateway key)"
# A streamed answer's CPU beyond a plain one's, per event: OpenAI's stream has CHUNKS text
# chunks plus the role and finish chunks; Anthropic's CHUNKS deltas plus 5 other events.
awk -v s="$s_cpu" -v sa="$sa_cpu" -v g="$gw_cpu" -v a="$a_cpu" -v c="$CHUNKS" 'BEGIN {
  printf "streaming, CPU per chunk (chunks back to back): %.2f us pass-through (goal <= 2), %.2f us translated from anthropic (goal <= 5); per streamed request %.1f / %.1f us\n",
    (s - g) / (c + 2), (sa - a) / (c + 5), s, sa }'
awk -v d="$t_direct" -v g="$t_gw" -v n="$t_nginx" -v d99="$t_direct99" -v g99="$t_gw99" -v n99="$t_nginx99" 'BEGIN {
  printf "time to first token at 1 connection: direct %.0f us, nginx %.0f us, gatewise %.0f us: gatewise adds p50 %.0f us (goal <= 50), p99 %.0f us; nginx adds p50 %.0f us, p99 %.0f us\n",
    d, n, g, g - d, g99 - d99, n - d, n99 - d99 }'
if $observes; then
  awk -v o="$o_cpu" -v g="$gw_cpu" -v n="$(wc -l < "$tmp/requests.log")" 'BEGIN {
    printf "request log + metrics: %.1f us CPU per request vs %.1f us with both off (%+.1f%%, goal <= +10%%); %d log lines written\n", o, g, (o / g - 1) * 100, n }'
fi
echo "gatewise RSS: idle $((idle_rss_kb / 1024)) MB (goal <= 30 MB), after load $((loaded_rss_kb / 1024)) MB"
# The deterministic figure: instructions per request, which machine noise does not move.
if [ "${INSTRUCTIONS:-1}" != 0 ] && command -v valgrind >/dev/null; then
  GATEWISE="$GW" bash benches/load/instructions.sh
fi
if [ "$failures" -gt 0 ]; then
  echo "FAILED: $failures answers were not 2xx (or the socket failed); they are not counted as throughput" >&2
  exit 1
fi
