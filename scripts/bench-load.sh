#!/usr/bin/env bash
# One Gatehouse configuration of ../shared/bench under the bench's c64 load, without Squid,
# mitmproxy or the direct runs: for quick A/B runs and for running the proxy under a profiler.
#   scripts/bench-load.sh BINARY [VARIANT] [REQUESTS]
# VARIANT is a directory under /tmp/gatehouse-bench (full, min, or a copy with an edited
# gatehouse.yaml); REQUESTS defaults to 20000. Needs one `../shared/bench/gatehouse.sh` run first
# (it leaves the configs, the CAs and nginx's config in /tmp). BINARY may be a wrapper that execs
# the proxy under valgrind or perf. Prints req/s, the proxy's CPU a request over the c64 run, and
# its CPU by thread. Runs in a private mount namespace whose /etc/hosts names the upstream.
set -euo pipefail
bin=${1:?usage: scripts/bench-load.sh BINARY [VARIANT] [REQUESTS]}
variant=${2:-full}
requests=${3:-20000}
dir=/tmp/gatehouse-bench/$variant
[ -f "$dir/gatehouse.yaml" ] || { echo "no $dir/gatehouse.yaml: run ../shared/bench/gatehouse.sh $variant once" >&2; exit 1; }
exec unshare -m bash -s "$bin" "$dir" "$requests" <<'INNER'
set -euo pipefail
bin=$1 dir=$2 requests=$3
echo "127.0.0.1 localhost api.llm.test" > /tmp/bench-load.hosts
mount --bind /tmp/bench-load.hosts /etc/hosts
rm -rf "$dir/audit" "$dir/data"
nginx -c /tmp/bench-run/conf/nginx.conf > /tmp/bench-load.nginx.log 2>&1 &
sleep 0.5
"$bin" run --config "$dir/gatehouse.yaml" > /tmp/bench-load.proxy.log 2>&1 &
proxy=$!
trap 'kill $proxy 2>/dev/null; pkill -f "nginx -c /tmp/bench-run/conf/nginx.conf" || true' EXIT
for _ in $(seq 600); do ss -ltn | grep -q ':18443 ' && break; sleep 0.1; done
oha() {
  SSL_CERT_DIR=/tmp/bench-run/empty-certdir timeout -k 5 600 /root/.cargo/bin/oha --no-tui \
    --output-format json -m POST -T application/json -D /work/shared/bench/lib/request.json \
    -H 'Authorization: Bearer sk-bench-0000' --cacert /tmp/gatehouse-bench/certs/gatehouse-ca.pem \
    -x http://127.0.0.1:18443 "$@" https://api.llm.test/v1/chat/completions
}
threads() { for t in /proc/$proxy/task/*; do echo "$(cat "$t/comm") $(awk '{print $14+$15}' "$t/stat")"; done; }
ticks() { awk '{print $14+$15}' /proc/$proxy/stat; }
oha -n 300 -c 8 > /dev/null
threads > /tmp/bench-load.threads0
t0=$(ticks)
oha -n "$requests" -c 64 > /tmp/bench-load.oha.json
t1=$(ticks)
threads > /tmp/bench-load.threads1
python3 - "$requests" "$t0" "$t1" <<'PY'
import json, os, sys
n, t0, t1 = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
tick_us = 1e6 / os.sysconf("SC_CLK_TCK")
s = json.load(open("/tmp/bench-load.oha.json"))["summary"]
print(f"req/s {s['requestsPerSec']:.0f}  success {s['successRate']:.3f}  CPU us/request {(t1 - t0) * tick_us / n:.0f}")
before = {}
for line in open("/tmp/bench-load.threads0"):
    name, ticks = line.rsplit(" ", 1)
    before[name] = before.get(name, 0) + int(ticks)
after = {}
for line in open("/tmp/bench-load.threads1"):
    name, ticks = line.rsplit(" ", 1)
    after[name] = after.get(name, 0) + int(ticks)
total = max(t1 - t0, 1)
for name, ticks in sorted(after.items(), key=lambda kv: -(kv[1] - before.get(kv[0], 0))):
    used = ticks - before.get(name, 0)
    if used:
        print(f"  {name:20} {100 * used / total:5.1f} %")
PY
INNER
