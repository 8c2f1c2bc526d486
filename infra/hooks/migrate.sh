#!/usr/bin/env bash
# azd predeploy hook: apply sql/ migrations to the provisioned PostgreSQL
# before the new code is deployed (`python -m shared.migrate`, which skips
# files already applied and refuses edited ones: safe to run on every deploy).
#
# The DSN comes from Key Vault (secret postgres-dsn, written by Bicep); it is
# passed in the environment (POSTGRES_DSN), never on a command line.
#
# networkAccess public: when this machine cannot log in (the server's firewall
# admits Azure's addresses, so a GitHub-hosted runner usually can), a firewall
# rule for its public address is added for the run and removed on exit.
# networkAccess private: the server has no public endpoint; run `azd deploy`
# from a machine inside the VNet, or set SKIP_MIGRATIONS=true and migrate from
# there (docs/deploy.md).
#
# Environment (azd exports its environment to hooks): AZURE_KEY_VAULT_NAME,
# AZURE_RESOURCE_GROUP, POSTGRES_SERVER_NAME, POSTGRES_HOST, NETWORK_ACCESS,
# POSTGRES_DSN_SECRET_NAME; optional SKIP_MIGRATIONS=true,
# MIGRATIONS_OPEN_FIREWALL=false, MIGRATIONS_PYTHON=/path/to/python3.11.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="$REPO/.tools/migrate-venv"

say() { printf 'migrate: %s\n' "$*"; }
die() {
  printf 'migrate: %s\n' "$*" >&2
  exit 1
}

if [[ "${SKIP_MIGRATIONS:-false}" == true ]]; then
  say "SKIP_MIGRATIONS=true: not migrating (run python -m shared.migrate from a machine that reaches the server)"
  exit 0
fi

: "${AZURE_KEY_VAULT_NAME:?not set: run azd provision first (or azd env refresh)}"
: "${POSTGRES_HOST:?not set: run azd provision first (or azd env refresh)}"
: "${POSTGRES_SERVER_NAME:?not set: run azd provision first (or azd env refresh)}"
: "${AZURE_RESOURCE_GROUP:?not set: run azd provision first (or azd env refresh)}"
command -v az >/dev/null || die "needs the Azure CLI (az), signed in as the principal that ran azd provision"

rule=""
cleanup() {
  if [[ -n "$rule" ]]; then
    say "removing firewall rule $rule"
    az postgres flexible-server firewall-rule delete --resource-group "$AZURE_RESOURCE_GROUP" \
      --name "$POSTGRES_SERVER_NAME" --rule-name "$rule" --yes --output none ||
      say "WARNING: could not remove firewall rule $rule; remove it by hand"
  fi
}
trap cleanup EXIT

# A Python 3.11+ with the app's requirements: the app's .venv when it has
# psycopg, else a venv of the hook's own (.tools/, ignored by git and .funcignore).
python="${MIGRATIONS_PYTHON:-}"
if [[ -z "$python" ]]; then
  if [[ -x "$REPO/.venv/bin/python" ]] && "$REPO/.venv/bin/python" -c 'import psycopg' 2>/dev/null; then
    python="$REPO/.venv/bin/python"
  else
    base=""
    for candidate in python3.11 python3 python3.12 python3.13; do
      if command -v "$candidate" >/dev/null &&
        "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        base="$candidate"
        break
      fi
    done
    [[ -n "$base" ]] || die "needs Python 3.11+ (or MIGRATIONS_PYTHON=/path/to/python)"
    if [[ ! -x "$VENV/bin/python" ]]; then
      say "creating $VENV"
      "$base" -m venv "$VENV"
    fi
    say "installing requirements.txt into $VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REPO/requirements.txt"
    python="$VENV/bin/python"
  fi
fi

secret="${POSTGRES_DSN_SECRET_NAME:-postgres-dsn}"
say "reading the DSN from Key Vault $AZURE_KEY_VAULT_NAME (secret $secret)"
POSTGRES_DSN="$(az keyvault secret show --vault-name "$AZURE_KEY_VAULT_NAME" --name "$secret" \
  --query value --output tsv)" || die "cannot read secret $secret (needs Key Vault Secrets User)"
[[ -n "$POSTGRES_DSN" ]] || die "secret $secret is empty"
export POSTGRES_DSN

# can_login ATTEMPTS: log in to the server's postgres database, every 5 s.
# (A TCP probe would not do: the server's gateway accepts the connection and
# only the login is refused by the firewall.)
can_login() {
  "$python" - "$1" <<'PY'
import os
import sys
import time

import psycopg

attempts = int(sys.argv[1])
for attempt in range(attempts):
    try:
        with psycopg.connect(os.environ["POSTGRES_DSN"], dbname="postgres", connect_timeout=10):
            sys.exit(0)
    except psycopg.OperationalError as exc:
        last = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if attempt + 1 < attempts:
            time.sleep(5)
print(f"migrate: cannot log in: {last}", file=sys.stderr)
sys.exit(1)
PY
}

if ! can_login 1; then
  if [[ "${NETWORK_ACCESS:-public}" == private ]]; then
    die "$POSTGRES_HOST is not reachable: the server is VNet-only (NETWORK_ACCESS=private).
  Run azd deploy from a machine in the VNet, or set SKIP_MIGRATIONS=true and apply the
  migrations from inside the VNet before deploying (docs/deploy.md, 'Private network')."
  fi
  [[ "${MIGRATIONS_OPEN_FIREWALL:-true}" == true ]] ||
    die "cannot log in to $POSTGRES_HOST and MIGRATIONS_OPEN_FIREWALL is not true"
  command -v curl >/dev/null || die "needs curl to find this machine's public address"
  address="$(curl -fsS --max-time 10 https://api.ipify.org || true)"
  [[ "$address" =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ ]] ||
    die "cannot find this machine's public IPv4 address; add a firewall rule by hand (postgresAllowedIpRanges)"
  rule="azd-migrate-$(date -u +%Y%m%d%H%M%S)-$$"
  say "adding a temporary firewall rule $rule for $address"
  az postgres flexible-server firewall-rule create --resource-group "$AZURE_RESOURCE_GROUP" \
    --name "$POSTGRES_SERVER_NAME" --rule-name "$rule" \
    --start-ip-address "$address" --end-ip-address "$address" --output none
  say "waiting for the rule to apply"
  can_login 24 || die "still cannot log in to $POSTGRES_HOST (see the error above)"
fi

cd "$REPO"
say "applying migrations (python -m shared.migrate --dsn \$POSTGRES_DSN)"
# shared.migrate's own main, with the DSN from the environment rather than argv.
"$python" -c 'import os, sys; from shared.migrate import main; sys.exit(main(["--dsn", os.environ["POSTGRES_DSN"]]))'
