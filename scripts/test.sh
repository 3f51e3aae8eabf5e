#!/usr/bin/env bash
# Lint, type-check and test qtasks:  bash scripts/test.sh [pytest arguments...]
#
#   bash scripts/test.sh                     # ruff, mypy, the whole pytest suite
#   bash scripts/test.sh -k smoke -x         # extra arguments go to pytest
#
# Creates .venv when missing and installs the project with its dev extra
# (pip install -e ".[dev]"), again only when pyproject.toml changed. The tests
# use the Redis at $QTASKS_TEST_REDIS_URL (or $REDIS_URL, or 127.0.0.1:6379) and
# start a private redis-server on a free port when none answers there.
# Every step runs; the exit status is non-zero if any of them failed.
set -uo pipefail
SCRIPT_NAME=test
# shellcheck source=scripts/_venv.sh
source "$(dirname "$0")/_venv.sh"
set -e
ensure_venv dev
set +e
cd "$ROOT"

failed=()
step() {
    local name="$1"; shift
    say "$name: $*"
    if "$@"; then
        say "$name: ok"
    else
        say "$name: FAILED"
        failed+=("$name")
    fi
}

step ruff "$PY" -m ruff check .
step mypy "$PY" -m mypy
step pytest "$PY" -m pytest "$@"

if [ "${#failed[@]}" -gt 0 ]; then
    say "failed: ${failed[*]}"
    exit 1
fi
say "all checks passed"
