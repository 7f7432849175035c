"""Where a proxy's added latency goes, hop by hop, from a loopback capture.

For each request through the proxy on port PROXY to the upstream on port UPSTREAM, with
the time each packet carrying data crossed loopback:

- request in -> out to the upstream: the proxy's inbound half (reading and parsing the
  request, routing, writing the upstream request), its wake-up from idle included;
- the upstream's answer: what the proxy waits for (not the proxy's cost);
- answer in -> out to the client: the outbound half (the upstream's first answer packet
  to the proxy's first answer packet: for a stream, the time-to-first-token share).

Non-invasive (nothing runs inside the proxy), so gatewise and nginx are measured alike.
One kept-alive client connection at a time (stream_client ttft, or wrk -c1):

    tcpdump -i lo -tt -n -l "tcp and (port 9105 or port 9112)" > cap.txt &
    ./target/release/stream_client ttft 9112 1500; kill %1
    python3 benches/load/hops.py 9112 9105 < cap.txt

(tcpdump: apt-get install -y tcpdump; capturing needs root or CAP_NET_RAW.)
"""

import re
import sys

LINE = re.compile(r"^(\d+\.\d+) IP 127\.0\.0\.1\.(\d+) > 127\.0\.0\.1\.(\d+): .* length (\d+)")


def hops(lines, proxy: int, upstream: int) -> dict:
    out = {"request in -> out to the upstream": [], "the upstream's answer": [], "answer in -> out to the client": []}
    inbound, waited, outbound = out.values()
    state, since = "idle", 0.0
    for line in lines:
        m = LINE.match(line)
        if not m or int(m[4]) == 0:  # not a packet line, or a bare ACK
            continue
        t, src, dst = float(m[1]), int(m[2]), int(m[3])
        if dst == proxy and state in ("idle", "rest"):
            state, since = "in", t
        elif state == "in" and dst == upstream:
            inbound.append(t - since)
            state, since = "up", t
        elif state == "up" and src == upstream:
            waited.append(t - since)
            state, since = "out", t
        elif state == "out" and src == proxy:
            outbound.append(t - since)
            state = "rest"  # the rest of the answer, until the next request
    return out


def percentile(xs: list, q: float) -> float:
    xs = sorted(xs)
    return xs[int(q * (len(xs) - 1))] * 1e6


def main() -> None:
    proxy, upstream = int(sys.argv[1]), int(sys.argv[2])
    for name, xs in hops(sys.stdin, proxy, upstream).items():
        if xs:
            print(f"{name:36} p50 {percentile(xs, 0.5):6.0f} us  p90 {percentile(xs, 0.9):6.0f} us  (n={len(xs)})")


if __name__ == "__main__":
    main()
