#!/usr/bin/env bash
# Offline checks of the deployment (infra/, azure.yaml, .github/workflows).
# Installs its own tools into .tools/infra-venv from tools/infra/requirements.txt
# (checkov's pins would fight the app's, so never into .venv), then runs:
#
#   1. tools/infra/check_bicep.py: every .bicep parses (pycep, the parser checkov
#      uses), module parameters and outputs agree, nothing unused, the
#      parameters file and azure.yaml's hook scripts agree with the templates;
#   2. checkov --framework bicep over infra/ (a check may be skipped only inline,
#      `// checkov:skip=<id>:<reason>` in the resource);
#   3. checkov --framework github_actions over .github/workflows;
#   4. check-jsonschema --builtin-schema vendor.github-workflows on each workflow;
#   5. shellcheck on the hooks and this script.
#
# Every step runs; the script fails if any failed. No network but PyPI (for the
# first install; cheap and silent when tools/infra/requirements.txt is unchanged).
# The app-settings test, tests/unit/test_infra.py, runs in make test's pytest.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO/.tools/infra-venv"
REQUIREMENTS="$REPO/tools/infra/requirements.txt"
STAMP="$VENV/.requirements.sha256"

say() { printf 'infra-checks: %s\n' "$*"; }
die() {
  printf 'infra-checks: %s\n' "$*" >&2
  exit 1
}

find_python() {
  local candidate
  for candidate in "${PYTHON:-}" python3.11 python3 python3.12 python3.13; do
    [[ -n "$candidate" ]] || continue
    if command -v "$candidate" >/dev/null &&
      "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      command -v "$candidate"
      return 0
    fi
  done
  return 1
}

ensure_venv() {
  if ! [[ -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
    local python
    python="$(find_python)" || die "needs Python 3.11+ (Debian: apt-get install python3 python3-venv)"
    rm -rf "$VENV"
    say "creating .tools/infra-venv with $("$python" --version 2>&1)"
    "$python" -m venv "$VENV" || die "'$python -m venv' failed (Debian: apt-get install python3-venv)"
  fi
  local want have=""
  want="$({
    "$VENV/bin/python" -c 'import sys; print(sys.version)'
    cat "$REQUIREMENTS"
  } | sha256sum | cut -d' ' -f1)"
  [[ -f "$STAMP" ]] && have="$(<"$STAMP")"
  if [[ "$want" != "$have" ]]; then
    say "installing tools/infra/requirements.txt into .tools/infra-venv (about a minute the first time)"
    rm -f "$STAMP"
    "$VENV/bin/python" -m pip install --quiet --quiet --disable-pip-version-check \
      --require-virtualenv -r "$REQUIREMENTS" || die "pip install -r tools/infra/requirements.txt failed"
    printf '%s\n' "$want" >"$STAMP"
  fi
}

failures=()
step() {
  # step NAME COMMAND...: run it, remember a failure, go on.
  local name=$1
  shift
  say "== $name"
  if "$@"; then
    say "ok: $name"
  else
    failures+=("$name")
    say "FAILED: $name"
  fi
}

# checkov exits non-zero on a failed check; also refuse a run that checked
# nothing or could not parse a file (checkov skips such files silently).
checkov_scan() {
  local framework=$1 target=$2 report
  report="$(mktemp)"
  # --skip-download: no Prisma Cloud calls (offline).
  "$VENV/bin/checkov" --framework "$framework" -d "$target" --compact --quiet --skip-download \
    -o cli -o json --output-file-path "console,$report" || {
    rm -f "$report"
    return 1
  }
  "$VENV/bin/python" - "$report" "$framework" <<'PY' || {
import json
import sys

path, framework = sys.argv[1], sys.argv[2]
with open(path) as handle:
    reports = json.load(handle)
reports = reports if isinstance(reports, list) else [reports]
summary = next((r["summary"] for r in reports if r.get("check_type") == framework), None)
if summary is None:
    sys.exit(f"checkov ran no {framework} check (no file recognised)")
print(f"checkov {framework}: {summary}")
if summary["parsing_errors"] or summary["failed"] or not summary["passed"]:
    sys.exit(f"checkov {framework}: parsing errors, failed checks, or nothing checked")
PY
    rm -f "$report"
    return 1
  }
  rm -f "$report"
}

workflows_schema() {
  local files=("$REPO"/.github/workflows/*.yml "$REPO"/.github/workflows/*.yaml)
  local existing=()
  local file
  for file in "${files[@]}"; do
    [[ -f "$file" ]] && existing+=("$file")
  done
  ((${#existing[@]})) || {
    echo "no workflow under .github/workflows" >&2
    return 1
  }
  "$VENV/bin/check-jsonschema" --builtin-schema vendor.github-workflows "${existing[@]}"
}

main() {
  [[ -f "$REQUIREMENTS" ]] || die "missing tools/infra/requirements.txt"
  ensure_venv
  cd "$REPO"
  step "bicep parses, modules agree (tools/infra/check_bicep.py)" \
    "$VENV/bin/python" tools/infra/check_bicep.py "$REPO"
  step "checkov bicep (infra/)" checkov_scan bicep infra
  step "checkov github_actions (.github/workflows)" checkov_scan github_actions .github
  step "workflow schema (check-jsonschema vendor.github-workflows)" workflows_schema
  step "shellcheck (infra/hooks, scripts/infra_checks.sh)" \
    "$VENV/bin/shellcheck" infra/hooks/*.sh scripts/infra_checks.sh
  if ((${#failures[@]})); then
    say "${#failures[@]} check(s) failed: $(printf '%s; ' "${failures[@]}")"
    exit 1
  fi
  say "all infra checks passed"
}

main "$@"
