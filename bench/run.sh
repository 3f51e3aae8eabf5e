#!/usr/bin/env bash
# Run the shared peer harness for celery and ours (this repository's qtasks) from the repo root.
#
#   bash bench/run.sh                                  # celery,ours, 3 reps, N=20000, no redis-benchmark
#   bash bench/run.sh --reps 1 --n 2000                # extra arguments go to peers.py
#   BENCH_OURS_ASYNC=1 bash bench/run.sh               # measure qtasks.asyncio (still named "ours")
#   BENCH_PEERS=celery,dramatiq,ours bash bench/run.sh
#
# Environment:
#   BENCH_HARNESS       the shared harness dir (default: <repo>/../shared/bench)
#   BENCH_VENV          peer venv (default ~/.cache/qtasks-peer-bench/venv); created when missing
#   BENCH_FULL_SETUP=1  create every peer venv with the harness's setup_peers.sh (default: only the
#                       main venv, which holds celery and the packages "ours" imports)
#   BENCH_OUT           results dir (default <repo>/bench-results[-async])
#   BENCH_PEERS         peers (default celery,ours)
#   BENCH_SKIP_CEILING  1 (default here) skips redis-benchmark; 0 measures the Redis ceiling
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
HARNESS="${BENCH_HARNESS:-$REPO/../shared/bench}"
HARNESS="$(cd "$HARNESS" && pwd)" || { echo "shared harness not found; set BENCH_HARNESS" >&2; exit 1; }
[ -f "$HARNESS/peers.py" ] || { echo "$HARNESS/peers.py missing; set BENCH_HARNESS" >&2; exit 1; }
export BENCH_VENV="${BENCH_VENV:-$HOME/.cache/qtasks-peer-bench/venv}"

if [ ! -x "$BENCH_VENV/bin/python" ] || ! "$BENCH_VENV/bin/python" -c 'import celery, pydantic, apscheduler, redis' 2>/dev/null; then
  if [ "${BENCH_FULL_SETUP:-0}" = "1" ]; then
    bash "$HARNESS/setup_peers.sh"
  else
    echo "creating the peer venv $BENCH_VENV (celery + what ours needs)"
    "${PYTHON:-python3}" -m venv "$BENCH_VENV"
    "$BENCH_VENV/bin/pip" install -q --upgrade pip
    # qtasks 1.7.3 brings pydantic and apscheduler, which our package needs too.
    "$BENCH_VENV/bin/pip" install -q "celery[redis]==5.7.0" "qtasks==1.7.3" hiredis "redis>=6.4,<8"
  fi
fi
# uvloop is a runtime dependency of our package (pyproject.toml) but not of any peer, so the
# harness's setup does not install it; without it "ours" silently runs on the stdlib loop.
# QTASKS_UVLOOP=0 measures the stdlib loop on purpose.
"$BENCH_VENV/bin/python" -c 'import uvloop' 2>/dev/null || "$BENCH_VENV/bin/pip" install -q "uvloop>=0.19"

# ours_peer.py runs with the adapters dir as its cwd, so tell it where our package is.
export BENCH_OURS_ROOT="${BENCH_OURS_ROOT:-$REPO}"
if [ "${BENCH_OURS_ASYNC:-0}" = "1" ]; then
  export BENCH_OUT="${BENCH_OUT:-$REPO/bench-results-async}"
else
  export BENCH_OUT="${BENCH_OUT:-$REPO/bench-results}"
fi
export BENCH_SKIP_CEILING="${BENCH_SKIP_CEILING:-1}"
cd "$REPO"
exec bash "$HARNESS/run_peers.sh" --peers "${BENCH_PEERS:-celery,ours}" "$@"
