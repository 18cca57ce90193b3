#!/usr/bin/env bash
# bench/wrk/run.sh — the outside-generator check (issue 15): wrk, a load
# generator nobody here wrote, and playhead-bench run the same PUT workload
# against one playhead node, alternating, and their throughputs are compared.
#
#   bench/wrk/run.sh                 # 3 rounds of 10 s each, ~1.5 minutes
#   ROUNDS=5 DURATION=20 bench/wrk/run.sh
#
# Workload (both generators): 2 wrk threads / 64 connections (playhead-bench:
# 64 workers, one connection each), closed loop, PUT one position per
# request, profiles uniform over 100,000 and videos over 20, one device per
# profile, SDK-style versions, one account's token. The node is started as
# bench/compare.sh starts it (Pebble in a temp dir, WAL synced before every
# answer, rate limits off). Installs wrk from Debian if it is missing; if it
# cannot, it says so and exits 0 (SKIPPED), so CI without network passes.
set -euo pipefail
cd "$(dirname "$0")/../.."

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
THREADS=${THREADS:-2}
CONNS=${CONNS:-64}
PROFILES=${PROFILES:-100000}
VIDEOS=${VIDEOS:-20}

if ! command -v wrk >/dev/null 2>&1; then
  echo "wrk-check: installing wrk (apt-get)" >&2
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  if ! { $SUDO apt-get update && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y wrk; } >&2; then
    echo "wrk-check: SKIPPED: wrk is not installed and apt-get could not install it"
    exit 0
  fi
fi

TMP=$(mktemp -d)
NODE=""
cleanup() {
  if [ -n "$NODE" ]; then kill "$NODE" 2>/dev/null || true; wait "$NODE" 2>/dev/null || true; fi
  rm -rf "$TMP"
}
trap cleanup EXIT
go build -o "$TMP/playhead" ./cmd/playhead
go build -o "$TMP/playhead-bench" ./cmd/playhead-bench
head -c 48 /dev/urandom | base64 > "$TMP/secret"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 18321)
URL=http://127.0.0.1:$PORT
"$TMP/playhead" serve --node-id wrk --data-dir "$TMP/data" --http-addr "127.0.0.1:$PORT" \
  --auth-secret-file "$TMP/secret" --device-rate -1 --account-rate -1 --log-level warn >"$TMP/node.log" 2>&1 &
NODE=$!
for _ in $(seq 300); do
  curl -sf "$URL/readyz" >/dev/null 2>&1 && break
  kill -0 "$NODE" 2>/dev/null || { cat "$TMP/node.log"; exit 1; }
  sleep 0.1
done
export PLAYHEAD_WRK_TOKEN PLAYHEAD_WRK_PROFILES=$PROFILES PLAYHEAD_WRK_VIDEOS=$VIDEOS
PLAYHEAD_WRK_TOKEN=$("$TMP/playhead" token --secret-file "$TMP/secret" --account wrk | awk 'END {print $NF}')

run_wrk() {
  wrk -t"$THREADS" -c"$CONNS" -d"$1"s -s bench/wrk/put.lua "$URL" -- "$THREADS" | tee -a "$TMP/wrk.out" | awk '/^wrk-result/ {print $7}'
}
run_ours() {
  "$TMP/playhead-bench" --url "$URL" --token "$PLAYHEAD_WRK_TOKEN" --workload put --uniform \
    --profiles "$PROFILES" --videos "$VIDEOS" --devices-per-profile 1 --concurrency "$CONNS" \
    --duration "$1"s --warmup 0s --quiet | tee -a "$TMP/ours.out" | awk 'NR == 3 {print $2}'
  sleep 2 # wrk's versions run up to 1 s ahead of the clock (put.lua); let the clock pass them
}

echo "wrk-check: node at $URL; warming up (5 s of wrk)" >&2
run_wrk 5 >/dev/null
W=(); O=()
for r in $(seq "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then w=$(run_wrk "$DURATION"); o=$(run_ours "$DURATION")
  else o=$(run_ours "$DURATION"); w=$(run_wrk "$DURATION"); fi
  W+=("$w"); O+=("$o")
  echo "wrk-check: round $r: wrk $w PUT/s, playhead-bench $o PUT/s" >&2
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
MW=$(median "${W[@]}"); MO=$(median "${O[@]}")
grep -h "^wrk-result" "$TMP/wrk.out" | sed 's/^/wrk-check: wrk: /' >&2 || true
awk '/^ *[0-9]/ || /409/' "$TMP/ours.out" | sed 's/^/wrk-check: playhead-bench: /' >&2 || true
awk -v w="$MW" -v o="$MO" -v n="$ROUNDS" -v d="$DURATION" 'BEGIN {
  r = o / w; diff = (r > 1 ? r - 1 : 1 - r) * 100
  printf "wrk-check: median of %d rounds of %d s: wrk %.0f PUT/s, playhead-bench %.0f PUT/s, playhead-bench/wrk %.2f (%.1f %% apart): %s\n",
    n, d, w, o, r, diff, (diff <= 15 ? "AGREE within 15 %" : "DISAGREE by more than 15 %")
}'
