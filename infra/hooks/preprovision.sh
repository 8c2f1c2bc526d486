#!/usr/bin/env bash
# azd preprovision hook: fail early on parameter combinations Bicep cannot
# reject, and reuse the Key Vault of an earlier deployment of this
# environment, so main.parameters.json's secretOrRandomPassword reads the
# PostgreSQL password from it instead of generating a new one (a fresh CI
# runner has no .azure/<env> with the previous outputs).
#
# Reads the azd environment (azd exports it to hooks): AZURE_ENV_NAME,
# AUTH_MODE, AUTH_CLIENT_ID, NETWORK_ACCESS, AZURE_KEY_VAULT_NAME.
set -euo pipefail

say() { printf 'preprovision: %s\n' "$*"; }
die() {
  printf 'preprovision: %s\n' "$*" >&2
  exit 1
}

auth_mode="${AUTH_MODE:-keys}"
case "$auth_mode" in
  keys | principal) ;;
  *) die "AUTH_MODE must be keys or principal, got '$auth_mode' (azd env set AUTH_MODE ...)" ;;
esac
if [[ "$auth_mode" == principal && -z "${AUTH_CLIENT_ID:-}" ]]; then
  die "AUTH_MODE=principal needs the Entra ID app registration's client id:
  azd env set AUTH_CLIENT_ID <application (client) id>   (docs/deploy.md, 'Entra ID app roles')"
fi

case "${NETWORK_ACCESS:-public}" in
  public | private) ;;
  *) die "NETWORK_ACCESS must be public or private, got '${NETWORK_ACCESS}'" ;;
esac

vault="${AZURE_KEY_VAULT_NAME:-}"
if [[ -z "$vault" ]]; then
  if ! command -v az >/dev/null; then
    say "az CLI not found: cannot look for an existing Key Vault (a first deployment needs none)"
    exit 0
  fi
  group="rg-${AZURE_ENV_NAME:?AZURE_ENV_NAME is not set}"
  if [[ "$(az group exists --name "$group" 2>/dev/null || echo false)" != true ]]; then
    say "resource group $group does not exist yet: first deployment, a new PostgreSQL password will be generated"
    exit 0
  fi
  vault="$(az keyvault list --resource-group "$group" --query '[0].name' --output tsv 2>/dev/null || true)"
  if [[ -z "$vault" ]]; then
    say "no Key Vault in $group yet: a new PostgreSQL password will be generated"
    exit 0
  fi
  say "found Key Vault $vault in $group"
  azd env set AZURE_KEY_VAULT_NAME "$vault"
fi

# secretOrRandomPassword generates a new password when it cannot read the
# secret; on an existing server that would rotate the password behind the
# app's back. Refuse instead.
if command -v az >/dev/null; then
  if az keyvault secret show --vault-name "$vault" --name postgres-admin-password \
    --query id --output tsv >/dev/null 2>&1; then
    say "PostgreSQL password: read from Key Vault $vault (secret postgres-admin-password)"
  elif az keyvault show --name "$vault" >/dev/null 2>&1; then
    die "Key Vault $vault exists but its secret postgres-admin-password cannot be read by $(az account show --query user.name --output tsv 2>/dev/null || echo 'this principal').
  Provisioning now would generate a new PostgreSQL password. Grant 'Key Vault Secrets User' on $vault
  (azd sets AZURE_PRINCIPAL_ID; main.bicep grants it to that principal) and try again."
  fi
fi
