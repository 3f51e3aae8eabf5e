#!/usr/bin/env bash
# Run the qtasks demo:  bash scripts/demo.sh
#
# 1. creates .venv when missing and installs qtasks into it (pip install -e .;
#    skipped when pyproject.toml has not changed since the last install);
# 2. picks the backend: by default the embedded SQLite backend, in a database
#    file under a fresh temporary directory (no server needed). Set
#    QTASKS_BROKER_URL to use another one: for redis://... the script finds that
#    Redis or starts a private redis-server on a free port (installing the
#    Debian package with apt-get when running as root);
# 3. starts a worker for examples/demo_app.py in the background and waits until
#    the backend lists it as a live worker (asked through the app, not the log);
# 4. runs examples/demo_client.py, which calls the demo tasks and prints the results;
# 5. stops the worker (SIGTERM) and any redis-server it started, then deletes
#    the demo's data (the SQLite file, or the "qtasks_demo:" keys on Redis).
#
# Exits non-zero if any step fails or a result is not what the demo expects.
set -euo pipefail
SCRIPT_NAME=demo
# shellcheck source=scripts/_venv.sh
source "$(dirname "$0")/_venv.sh"
cd "$ROOT"

ensure_venv

WORKER_PID=""
SVC_PID=""   # scripts/services.py, when it runs as our coprocess
SVC_IN=""    # our end of its stdin
LOG_DIR="$(mktemp -d "${TMPDIR:-/tmp}/qtasks-demo.XXXXXX")"
WORKER_LOG="$LOG_DIR/worker.log"
DEMO_DB=""   # the SQLite file, when the demo uses the default backend

cleanup() {
    local rc=$?
    set +e
    if [ -n "$WORKER_PID" ] && kill -0 "$WORKER_PID" 2>/dev/null; then
        say "stopping the worker (SIGTERM to pid $WORKER_PID)"
        kill -TERM "$WORKER_PID" 2>/dev/null
        for _ in $(seq 400); do kill -0 "$WORKER_PID" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$WORKER_PID" 2>/dev/null; then
            say "the worker did not stop within 40s; killing it"
            kill -KILL "$WORKER_PID" 2>/dev/null
        fi
        wait "$WORKER_PID" 2>/dev/null
    fi
    if [ -n "$SVC_PID" ]; then
        # services.py stops the redis-server it started when its stdin closes.
        [ -n "$SVC_IN" ] && exec {SVC_IN}>&-
        wait "$SVC_PID" 2>/dev/null
        [ -n "$PRIVATE_PORT" ] && say "stopped the private redis-server on port $PRIVATE_PORT"
    fi
    if [ -n "$DEMO_DB" ]; then
        rm -f "$DEMO_DB" "$DEMO_DB-wal" "$DEMO_DB-shm" "$DEMO_DB-journal"
    fi
    if [ "$rc" -ne 0 ] && [ -s "$WORKER_LOG" ]; then
        say "last lines of the worker log ($WORKER_LOG):"
        tail -n 40 "$WORKER_LOG" >&2
    else
        rm -rf "$LOG_DIR"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- backend
PRIVATE_PORT=""
BACKEND=""
case "${QTASKS_BROKER_URL:-}" in
redis://*|rediss://*|unix://*)
    WANTED_URL="$QTASKS_BROKER_URL"
    # services.py prints a URL; if it had to start a redis-server it keeps it running
    # until its stdin closes, so it runs as a coprocess whose stdin we hold open. In a
    # session of its own (setsid), a Ctrl-C here does not stop Redis before the worker.
    SETSID=()
    command -v setsid >/dev/null 2>&1 && SETSID=(setsid)
    coproc SERVICES { QTASKS_TEST_REDIS_URL="$WANTED_URL" exec "${SETSID[@]}" "$PY" scripts/services.py redis; }
    SVC_PID=$!
    # Bash forgets a coprocess's variables and closes its pipes once it exits, so take
    # our own copies of both ends at once and close bash's.
    exec {SVC_IN}>&"${SERVICES[1]}" {SVC_OUT}<&"${SERVICES[0]}"
    eval "exec ${SERVICES[1]}>&- ${SERVICES[0]}<&-"
    REDIS_URL_FOUND=""
    read -r -u "$SVC_OUT" REDIS_URL_FOUND || true
    exec {SVC_OUT}<&-
    [ -n "$REDIS_URL_FOUND" ] || die "could not find or start Redis (see the message above)"
    if [ "$REDIS_URL_FOUND" = "$WANTED_URL" ]; then
        say "using the Redis at $REDIS_URL_FOUND"
    else
        PRIVATE_PORT="${REDIS_URL_FOUND##*:}"
        PRIVATE_PORT="${PRIVATE_PORT%%/*}"
        say "no Redis answers at $WANTED_URL: using a private redis-server on port $PRIVATE_PORT" \
            "(stopped at the end)"
    fi
    export QTASKS_BROKER_URL="$REDIS_URL_FOUND"

    if [ -n "$PRIVATE_PORT" ]; then
        BACKEND="a private redis-server on port $PRIVATE_PORT"
    else
        BACKEND="Redis at $REDIS_URL_FOUND"
    fi
    ;;
"")
    # The default: the embedded SQLite backend, in a file of our own (deleted at the end).
    DEMO_DB="$LOG_DIR/demo.db"
    export QTASKS_BROKER_URL="sqlite:///$DEMO_DB"
    BACKEND="embedded SQLite at $DEMO_DB"
    ;;
*)
    BACKEND="$QTASKS_BROKER_URL"
    ;;
esac
say "backend: $BACKEND"

# Forget what an earlier run may have left (keys qtasks_demo:* on a shared Redis).
"$PY" -c 'from examples.demo_app import app; app.flush_all()'

# ---------------------------------------------------------------- worker
WORKER_ID="demo-$$"
say "starting a worker: python -m qtasks -A examples.demo_app:app run --worker-id $WORKER_ID" \
    "(log: $WORKER_LOG)"
"$PY" -m qtasks -A examples.demo_app:app run --worker-id "$WORKER_ID" >"$WORKER_LOG" 2>&1 &
WORKER_PID=$!

# Ready when the backend lists the worker's id among the app's live workers and
# the heartbeat answers app.ping() — asked of the backend, not read from the log.
"$PY" - "$WORKER_ID" "$WORKER_PID" <<'PYEOF' || die "the worker did not start"
import asyncio, sys, time
from examples.demo_app import app

worker_id, pid = sys.argv[1], int(sys.argv[2])
global_config = app.broker.storage.global_config

def alive() -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:
        return True

deadline = time.monotonic() + 30
while not (worker_id in asyncio.run(global_config.workers()) and app.ping()):
    if not alive():
        sys.exit("the worker exited during start-up")
    if time.monotonic() > deadline:
        sys.exit("the worker did not register within 30s")
    time.sleep(0.05)
PYEOF
say "worker $WORKER_ID is running"

# ---------------------------------------------------------------- client
echo "Backend: $BACKEND"
"$PY" examples/demo_client.py

# ---------------------------------------------------------------- shutdown
say "stopping the worker (SIGTERM to pid $WORKER_PID)"
kill -TERM "$WORKER_PID"
rc=0
wait "$WORKER_PID" || rc=$?
WORKER_PID=""
[ "$rc" -eq 0 ] || die "the worker exited with status $rc after SIGTERM"
"$PY" -c 'from examples.demo_app import app; app.flush_all()'
if [ -n "$DEMO_DB" ]; then
    say "worker stopped cleanly; the demo database is deleted on exit"
else
    say "worker stopped cleanly; removed the demo's data (keys qtasks_demo:*)"
fi
