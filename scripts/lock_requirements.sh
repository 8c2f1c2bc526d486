#!/usr/bin/env bash
# Recompile the locked requirement files from requirements/*.in: exact versions
# and sha256 hashes of every package (pip-tools, in its own venv under .tools).
#
#   make lock                   # after editing a pin in requirements/*.in
#   make lock ARGS=--upgrade    # newest versions the .in files allow
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO/.tools/piptools-venv"
PIP_TOOLS="pip-tools==7.6.2"

if ! [[ -x "$VENV/bin/pip-compile" ]]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "$PIP_TOOLS"
fi
compile() {
  # The outputs are read back as the previous pins: start from none so a pin
  # that moved in the .in file wins, unless --upgrade-package is asked for.
  "$VENV/bin/pip-compile" --quiet --generate-hashes --allow-unsafe --strip-extras \
    --no-header --no-emit-index-url --no-emit-find-links --no-emit-trusted-host \
    "$@"
}
cd "$REPO/requirements"
# Order matters: each later file is constrained by the ones before it.
compile "${@}" --output-file ../requirements.txt runtime.in
compile "${@}" --output-file ../requirements-dev.txt dev.in
compile "${@}" --output-file ../requirements-bench.txt bench.in
echo "lock: requirements.txt, requirements-dev.txt, requirements-bench.txt compiled; make bootstrap installs them"
