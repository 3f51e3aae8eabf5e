# shellcheck shell=bash
# Shared set-up for scripts/demo.sh and scripts/test.sh (source it; do not run it).
#
#   ensure_venv [EXTRA]   create .venv if missing and install this project into it
#                         (pip install -e ".[EXTRA]"), skipped when the same
#                         pyproject.toml was already installed with that extra.
#
# Sets ROOT (the repository root), VENV and PY (the venv's python).
# QTASKS_VENV=/some/dir uses another venv directory; PYTHON=python3.12 another interpreter.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${QTASKS_VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"

say() { printf '[%s] %s\n' "${SCRIPT_NAME:-qtasks}" "$*" >&2; }
die() { say "error: $*"; exit 1; }

_venv_works() { [ -x "$PY" ] && "$PY" -m pip --version >/dev/null 2>&1; }

_create_venv() {
    local base="${PYTHON:-python3}"
    command -v "$base" >/dev/null 2>&1 || die "$base not found; install Python 3.10 or newer"
    "$base" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
        || die "qtasks needs Python >= 3.10; $base is $("$base" -V 2>&1)"
    say "creating $VENV with $("$base" -V 2>&1)"
    rm -rf "$VENV"
    if ! "$base" -m venv "$VENV" >/dev/null 2>&1; then
        # Debian ships venv/ensurepip separately (python3-venv).
        local pkg
        pkg="python$("$base" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')-venv"
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
            say "installing python3-venv and $pkg with apt-get"
            DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null || true
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv >/dev/null 2>&1 || true
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$pkg" >/dev/null 2>&1 || true
            rm -rf "$VENV"
            "$base" -m venv "$VENV" || die "python3 -m venv still fails after installing $pkg"
        else
            rm -rf "$VENV"
            die "'$base -m venv' failed; install the Debian package $pkg (sudo apt-get install -y $pkg)"
        fi
    fi
    _venv_works || die "the new venv at $VENV has no working pip"
}

ensure_venv() {
    local extra="${1:-}" spec="." stamp want
    [ -n "$extra" ] && spec=".[$extra]"
    _venv_works || _create_venv
    # One stamp per extra; its content is the hash of the pyproject.toml it installed.
    stamp="$VENV/.qtasks-installed${extra:+-$extra}"
    want="$(cd "$ROOT" && "$PY" -c 'import hashlib; print(hashlib.sha256(open("pyproject.toml", "rb").read()).hexdigest())')"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && "$PY" -c 'import qtasks' >/dev/null 2>&1; then
        return 0
    fi
    say "installing qtasks ($spec) into $VENV (this takes a minute the first time)"
    local log="$VENV/pip-install.log"
    if ! (cd "$ROOT" && "$PY" -m pip install --disable-pip-version-check -e "$spec") >"$log" 2>&1; then
        tail -n 30 "$log" >&2
        die "pip install -e '$spec' failed (full output: $log)"
    fi
    printf '%s\n' "$want" > "$stamp"
    # An install with an extra also installed the base project.
    [ -n "$extra" ] && printf '%s\n' "$want" > "$VENV/.qtasks-installed"
    return 0
}
