#!/usr/bin/env bash
# Create .venv (Python 3.11+) and install the locked requirements into it, and
# install the pinned front-end packages of tools/web (npm ci; axe-core for the
# browser tests, chart.js whose file dashboard/vendor carries).
#
# Idempotent and cheap when nothing changed: pip runs only when the
# requirements files (or the venv's Python) differ from the last successful
# install, recorded as a hash in .venv/.requirements.sha256.
# PYTHON=/path/to/python3.x picks the interpreter for a new venv.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO/.venv"
STAMP="$VENV/.requirements.sha256"
# Compiled from requirements/*.in with exact versions and hashes (make lock);
# installed with --require-hashes. The client package is installed editable.
REQUIREMENTS=(
  "$REPO/requirements.txt"
  "$REPO/requirements-dev.txt"
  "$REPO/requirements-bench.txt"
  "$REPO/clients/python/pyproject.toml"
)

say() { printf 'bootstrap: %s\n' "$*"; }
die() {
  printf 'bootstrap: %s\n' "$*" >&2
  exit 1
}

is_py311_plus() {
  "$1" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null
}

find_python() {
  if [[ -n "${PYTHON:-}" ]]; then
    is_py311_plus "$PYTHON" || return 1
    printf '%s\n' "$PYTHON"
    return 0
  fi
  # 3.11 first: the version the app is written and deployed for.
  local candidate
  for candidate in python3.11 python3 python3.12 python3.13; do
    if command -v "$candidate" >/dev/null && is_py311_plus "$candidate"; then
      command -v "$candidate"
      return 0
    fi
  done
  return 1
}

venv_works() {
  [[ -x "$VENV/bin/python" ]] && is_py311_plus "$VENV/bin/python" &&
    "$VENV/bin/python" -m pip --version >/dev/null 2>&1
}

create_venv() {
  local python
  if ! python="$(find_python)"; then
    [[ -z "${PYTHON:-}" ]] || die "PYTHON=$PYTHON is not a working Python 3.11+"
    die "no Python 3.11+ found (tried python3.11, python3, python3.12, python3.13).
  Install one (Debian: apt-get install python3 python3-venv) or set PYTHON=/path/to/python3."
  fi
  if [[ -e "$VENV" ]]; then
    say "existing .venv is unusable (no working Python 3.11+ with pip); recreating it"
    rm -rf "$VENV"
  fi
  say "creating .venv with $("$python" --version 2>&1) ($python)"
  "$python" -m venv "$VENV" || {
    rm -rf "$VENV"
    die "'$python -m venv' failed; the venv module or ensurepip is missing.
  Install it (Debian: apt-get install python3-venv) and run this again."
  }
}

requirements_hash() {
  # The interpreter version is part of the hash: a venv rebuilt on another
  # Python needs its wheels reinstalled even if the files are unchanged.
  {
    "$VENV/bin/python" -c 'import sys; print(sys.version)'
    cat "${REQUIREMENTS[@]}"
  } | sha256sum | cut -d' ' -f1
}

web_tools() {
  local pkg="$REPO/tools/web"
  # npm ci leaves node_modules/.package-lock.json; an older one means the pins changed.
  if [[ -f "$pkg/node_modules/.package-lock.json" &&
    ! "$pkg/package-lock.json" -nt "$pkg/node_modules/.package-lock.json" ]]; then
    return 0
  fi
  command -v npm >/dev/null ||
    die "tools/web needs Node.js 20+ and npm (Debian: apt-get install nodejs npm)"
  say "installing the pinned front-end packages (npm ci in tools/web)"
  (cd "$pkg" && npm ci --no-audit --no-fund --loglevel=error) || die "npm ci in tools/web failed"
}

main() {
  local file
  for file in "${REQUIREMENTS[@]}"; do
    [[ -f "$file" ]] || die "missing ${file#"$REPO"/}"
  done
  venv_works || create_venv

  local want have=""
  want="$(requirements_hash)"
  [[ -f "$STAMP" ]] && have="$(<"$STAMP")"
  web_tools
  if [[ "$want" == "$have" ]]; then
    say ".venv is up to date ($("$VENV/bin/python" --version))"
    return 0
  fi
  say "installing the locked requirements into .venv (hash-checked; takes a minute on a fresh machine)"
  # Remove the stamp first so an interrupted install is retried next time.
  # Quiet twice: pip still prints errors, but not the per-package chatter.
  rm -f "$STAMP"
  (cd "$REPO" && "$VENV/bin/python" -m pip install --quiet --quiet --disable-pip-version-check \
    --require-virtualenv --require-hashes \
    -r requirements.txt -r requirements-dev.txt -r requirements-bench.txt) ||
    die "pip install of the locked requirements failed (output above)"
  # The Python client, editable (its build tools are in requirements-dev.txt).
  (cd "$REPO" && "$VENV/bin/python" -m pip install --quiet --quiet --disable-pip-version-check \
    --require-virtualenv --no-deps --no-build-isolation -e ./clients/python) ||
    die "pip install -e clients/python failed (output above)"
  printf '%s\n' "$want" >"$STAMP"
  say "requirements installed"
}

main "$@"
