#!/usr/bin/env bash
# bench/compare.sh — playhead vs the Redis baseline, one command from a fresh clone.
#
#   bench/compare.sh            # ~4 minutes: 3 rounds × 6 cases × 2 systems, 5 s each
#   bench/compare.sh --long     # 5 rounds of 20 s
#   bench/compare.sh --help     # every flag of `playhead-bench compare`
#   PLAYHEAD_WRK=0 bench/compare.sh   # without the wrk check at the end
#
# Installs redis-server from Debian if it is missing, builds playhead, then runs
# `playhead-bench compare "$@"`: Redis (AOF, appendfsync everysec), the baseline
# (`playhead-bench baseline-server`) and one playhead node start on loopback in a
# temp dir; every case runs against both, alternating which goes first; the medians,
# ratios and plots go to docs/BENCHMARKS.md, docs/bench/*.png, docs/bench/raw/.
# Then bench/wrk/run.sh checks playhead-bench's PUT figure against wrk's on
# the same node (about 1.5 minutes; it installs wrk, or says SKIPPED); its
# last line goes into the hand-written notes of docs/BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v redis-server >/dev/null 2>&1; then
  echo "compare.sh: installing redis-server (apt-get)" >&2
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y redis-server
fi
# Debian's package starts a system redis on :6379; compare runs its own on a free port.

BIN=$(mktemp -d)
trap 'rm -rf "$BIN"' EXIT
go build -o "$BIN/playhead" ./cmd/playhead
go build -o "$BIN/playhead-bench" ./cmd/playhead-bench
"$BIN/playhead-bench" compare --playhead "$BIN/playhead" "$@"
case "${1:-}" in -h|--help|-help) exit 0 ;; esac
if [ "${PLAYHEAD_WRK:-1}" != 0 ]; then
  bench/wrk/run.sh
fi
