#!/usr/bin/env bash
# The three ways into Gatehouse side by side, on ../shared/bench's upstream, request and client:
# direct, the forward proxy (CONNECT + interception), transparent mode (an nftables DNAT of a
# bench user's TCP 443 to the transparent listener) and the base-URL gateway (plain HTTP to
# 127.0.0.1, TLS to the upstream). One Gatehouse process serves all three with the `full`
# configuration of ../shared/bench/gatehouse.sh (redaction, budgets on SQLite, audit).
#
# Needs: root, nft (the ruleset `gatehouse firewall` prints is loaded for a bench user), ../shared/bench/setup.sh done and one run of ../shared/bench/gatehouse.sh (its
# nginx config, certificates and Gatehouse config are reused), `cargo build --release`.
# Usage (from the project root): scripts/bench-ways-in.sh    knobs: N_TP (20000) C_TP (64) N_LAT (600)
# Prints a markdown table; raw oha JSON in /tmp/gh-ways/.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${GH_WAYS_IN_NS:-}" ]; then
  GH_WAYS_IN_NS=1 exec unshare -m --propagation private "$0" "$@"
fi

BIN=${GATEHOUSE_BIN:-$PWD/target/release/gatehouse}
RUN=/tmp/bench-run
SRC=/tmp/gatehouse-bench
OUT=/tmp/gh-ways
N_TP=${N_TP:-20000} C_TP=${C_TP:-64} N_LAT=${N_LAT:-600}
USER_NAME=ghbench
for f in "$RUN/conf/nginx.conf" "$RUN/certs/upstream-ca.pem" "$SRC/full/gatehouse.yaml" "$SRC/certs/gatehouse-ca.pem"; do
  [ -f "$f" ] || { echo "missing $f: run ../shared/bench/gatehouse.sh full first" >&2; exit 1; }
done
command -v nft >/dev/null || { echo "nft missing (apt-get install nftables)" >&2; exit 1; }
rm -rf "$OUT" && mkdir -p "$OUT" && chmod 1777 "$OUT"
cp "$(command -v oha)" "$OUT/oha"
cp ../shared/bench/lib/request.json "$OUT/request.json" && chmod 644 "$OUT/request.json"
id "$USER_NAME" >/dev/null 2>&1 || useradd --system --no-create-home "$USER_NAME"
uid=$(id -u "$USER_NAME")

# api.llm.test -> 127.0.0.1 in this mount namespace only.
{ grep -v -w api.llm.test /etc/hosts || true; echo "127.0.0.1 api.llm.test"; } > "$OUT/hosts"
mount --bind "$OUT/hosts" /etc/hosts

pids=()
cleanup() {
  nft delete table inet gatehouse 2>/dev/null || true
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

: > "$RUN/logs/nginx-access.log"; rm -f "$RUN/nginx-backend.sock"
nginx -c "$RUN/conf/nginx.conf" > "$OUT/nginx.out" 2>&1 &
pids+=($!)

# The `full` config, plus the gateway and the transparent listener for the same anonymous agent.
sed -e "s#ca: { dir: .*#ca: { dir: $SRC/certs }#" "$SRC/full/gatehouse.yaml" > "$OUT/gatehouse.yaml"
sed -i -e "s#audit: {.*#audit: { file: $OUT/audit/decisions.jsonl, store: $OUT/audit/decisions.sqlite }#" \
  -e "s#store: $SRC/full/data/budget.sqlite#store: $OUT/data/budget.sqlite#" "$OUT/gatehouse.yaml"
cat >> "$OUT/gatehouse.yaml" <<YAML
gateway:
  listen: 127.0.0.1:18090
  allow_anonymous: true
  routes:
    - { prefix: /llm, upstream: 'https://api.llm.test' }
transparent:
  listen: 127.0.0.1:18082
  fallback_agent: anonymous
YAML
"$BIN" run --config "$OUT/gatehouse.yaml" > "$OUT/gatehouse.out" 2>&1 &
gh=$!; pids+=("$gh")
for _ in $(seq 100); do
  (exec 3<>/dev/tcp/127.0.0.1/18090) 2>/dev/null && (exec 3<>/dev/tcp/127.0.0.1/443) 2>/dev/null && break
  sleep 0.1
done

# The product's own ruleset: the bench user's TCP 80/443 to the transparent listener, the rest dropped.
"$BIN" firewall --config "$OUT/gatehouse.yaml" --agent-user "$USER_NAME" > "$OUT/firewall.nft"
nft -f "$OUT/firewall.nft"

URL=https://api.llm.test/v1/chat/completions
GW=http://127.0.0.1:18090/llm/v1/chat/completions
ticks() { awk '{print $14+$15}' "/proc/$gh/stat"; }
# load NAME CA|- USER|- URL [oha args] -> $OUT/NAME.{tp,lat}.json, prints the table row
load() {
  local name=$1 ca=$2 user=$3 url=$4; shift 4
  local run=(timeout -k 5 300 "$OUT/oha" --no-tui --output-format json -t 10s -m POST -T application/json
    -D "$OUT/request.json")
  [ "$ca" != - ] && run+=(--cacert "$ca")
  local as=(); [ "$user" != - ] && as=(runuser -u "$user" --)
  "${as[@]}" env SSL_CERT_FILE="${ca/#-/$RUN/certs/upstream-ca.pem}" SSL_CERT_DIR="$OUT" "${run[@]}" -n 300 -c 8 "$@" "$url" > /dev/null
  local before; before=$(ticks)
  "${as[@]}" env SSL_CERT_FILE="${ca/#-/$RUN/certs/upstream-ca.pem}" SSL_CERT_DIR="$OUT" "${run[@]}" -n "$N_TP" -c "$C_TP" -o "$OUT/$name.tp.json" "$@" "$url"
  local after; after=$(ticks)
  "${as[@]}" env SSL_CERT_FILE="${ca/#-/$RUN/certs/upstream-ca.pem}" SSL_CERT_DIR="$OUT" "${run[@]}" -n "$N_LAT" -c 1 -o "$OUT/$name.lat.json" "$@" "$url"
  python3 - "$OUT/$name.tp.json" "$OUT/$name.lat.json" "$name" "$((after - before))" "$N_TP" "$(getconf CLK_TCK)" <<'PY'
import json, sys
tp, lat = (json.load(open(p)) for p in sys.argv[1:3])
name, ticks, n, hz = sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
ok = tp["statusCodeDistribution"].get("200", 0)
ms = lambda j, p: j["latencyPercentiles"][p] * 1000
cpu = "-" if name == "direct" else f"{ticks / hz * 1e6 / max(ok, 1):,.0f}"
print(f"| {name} | {tp['summary']['requestsPerSec']:,.0f} | {ms(tp, 'p50'):.2f} | {ms(tp, 'p99'):.2f} "
      f"| {ms(lat, 'p50'):.2f} | {ms(lat, 'p99'):.2f} | {cpu} | {ok}/{n} |")
PY
}
echo "| way in | req/s c$C_TP | p50 ms | p99 ms | c1 p50 ms | c1 p99 ms | proxy CPU µs/req | 200s/sent |"
echo "|---|---|---|---|---|---|---|---|"
key=(-H "Authorization: Bearer sk-bench-0000")
load direct "$RUN/certs/upstream-ca.pem" - "$URL" "${key[@]}"
load forward "$SRC/certs/gatehouse-ca.pem" - "$URL" "${key[@]}" -x http://127.0.0.1:18443
load transparent "$SRC/certs/gatehouse-ca.pem" "$USER_NAME" "$URL" "${key[@]}"
# The gateway's anonymous agent sends no key (a key it does not know is refused, 401).
load gateway - - "$GW"
echo
echo "audited decisions: $(grep -c '"effect"' "$OUT/audit/decisions.jsonl" || true); Gatehouse $("$BIN" --version 2>/dev/null || echo "$BIN")"
