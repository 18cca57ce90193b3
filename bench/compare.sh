#!/usr/bin/env bash
# bench/compare.sh — playhead vs the Redis baseline, one command from a fresh clone.
# Installs redis-server if missing, builds playhead, starts Redis (AOF, appendfsync
# everysec), the baseline (`playhead bench baseline-server`) and a single playhead
# node on loopback, runs each workload against both alternately (A B A B, ROUNDS
# rounds), and writes docs/BENCHMARKS.md (medians, ratios) and docs/bench/*.png.
# Knobs (env): ROUNDS=3 DURATION=8s WARMUP=2s CONCURRENCY=32 RATE=0 (closed loop)
#              WORKLOADS="put batch read propagation ws" BATCH=50
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-8s}
WARMUP=${WARMUP:-2s}
CONCURRENCY=${CONCURRENCY:-32}
RATE=${RATE:-0}
BATCH=${BATCH:-50}
WORKLOADS=${WORKLOADS:-"put batch read propagation ws"}
REDIS_PORT=${REDIS_PORT:-16379}
BASE_PORT=${BASE_PORT:-18090}
PH_PORT=${PH_PORT:-18080}

if ! command -v redis-server >/dev/null; then
  echo "installing redis-server" >&2
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update && $SUDO apt-get install -y redis-server
fi

TMP=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT

go build -o "$TMP/playhead" ./cmd/playhead
PH="$TMP/playhead"
head -c 48 /dev/urandom | base64 | tr -d '\n' > "$TMP/secret"

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$TMP" --appendonly yes --appendfsync everysec \
  --save "" --daemonize no --logfile "$TMP/redis.log" & PIDS+=($!)
"$PH" bench baseline-server --http-addr 127.0.0.1:$BASE_PORT --redis-addr 127.0.0.1:$REDIS_PORT \
  --secret-file "$TMP/secret" > "$TMP/baseline.log" 2>&1 & PIDS+=($!)
"$PH" serve --data-dir "$TMP/ph-data" --http-addr 127.0.0.1:$PH_PORT --auth-secret-file "$TMP/secret" \
  --device-rate -1 --account-rate -1 --log-level warn > "$TMP/playhead.log" 2>&1 & PIDS+=($!)

wait_up() { for _ in $(seq 100); do curl -fsS "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "not up: $1" >&2; cat "$TMP"/*.log >&2; exit 1; }
wait_up "http://127.0.0.1:$BASE_PORT/healthz"
wait_up "http://127.0.0.1:$PH_PORT/readyz"

OUT="$TMP/results"; mkdir -p "$OUT"
run() { # workload system round
  local w=$1 sys=$2 r=$3 url extra=()
  if [ "$sys" = playhead ]; then url=http://127.0.0.1:$PH_PORT; else url=http://127.0.0.1:$BASE_PORT; fi
  case $w in
    batch) extra=(--batch "$BATCH");;
    propagation) extra=(--push sse --rate "${PROP_RATE:-200}");;   # SSE on both: same transport
  esac
  echo "== $w $sys round $r" >&2
  "$PH" bench --quiet --url "$url" --secret-file "$TMP/secret" --account per-profile --workload "$w" --duration "$DURATION" \
    --warmup "$WARMUP" --concurrency "$CONCURRENCY" --rate "$RATE" --seed "$r" "${extra[@]}" \
    --json "$OUT/$w-$sys-$r.json" >&2
}
for r in $(seq "$ROUNDS"); do
  for w in $WORKLOADS; do
    if [ "$w" = ws ]; then run ws playhead "$r"; continue; fi   # the baseline has no WebSocket
    if [ $((r % 2)) = 1 ]; then run "$w" playhead "$r"; run "$w" baseline "$r"
    else run "$w" baseline "$r"; run "$w" playhead "$r"; fi
  done
done
"$PH" bench report --dir "$OUT" --out "$ROOT/docs/BENCHMARKS.md" --plots "$ROOT/docs/bench"
mkdir -p "$ROOT/docs/bench/raw" && cp "$OUT"/*.json "$ROOT/docs/bench/raw/"
echo "wrote docs/BENCHMARKS.md and docs/bench/*.png" >&2
