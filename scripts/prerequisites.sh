#!/usr/bin/env bash
# Installs what running Envio without containers needs, when it is missing: Debian's/Ubuntu's rabbitmq-server
# and PostgreSQL. Called by run.sh (only when no container runtime answers) and test.sh (always: the suite runs
# the broker and the database as local processes). With --for-tests it also installs docker-compose, with which a
# test validates deploy/compose (no container engine is needed for that), and Debian's prometheus for its promtool,
# with which a test checks deploy/compose/observability's configuration and alert rules.
set -euo pipefail

if ! command -v dotnet >/dev/null 2>&1; then
  echo "The .NET 10 SDK is required: https://dotnet.microsoft.com/download (or: sudo apt-get install -y dotnet-sdk-10.0)" >&2
  exit 1
fi

have_rabbitmq() { [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] && command -v epmd >/dev/null 2>&1; }
have_postgres() { compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null; }
have_setpriv() { command -v setpriv >/dev/null 2>&1; }

missing=()
have_rabbitmq || missing+=(rabbitmq-server)
have_postgres || missing+=(postgresql)
have_setpriv || missing+=(util-linux)
if [ "${1:-}" = "--for-tests" ] && ! command -v docker-compose >/dev/null 2>&1 && ! docker compose version >/dev/null 2>&1; then
  missing+=(docker-compose)
fi
if [ "${1:-}" = "--for-tests" ] && ! command -v promtool >/dev/null 2>&1; then
  missing+=(prometheus)
fi
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "Missing: ${missing[*]}. Install them with your package manager, or run with Docker/Podman." >&2
  exit 1
fi

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "Installing ${missing[*]} (local broker and database for Envio)..."
# The packages start system-wide services by default; Envio runs its own private instances instead. Stop and
# disable only a service this install created: one the machine already had (its own broker or database, running or
# not) is none of Envio's business.
has_systemctl() { command -v systemctl >/dev/null 2>&1; }
services_before=""
if has_systemctl; then
  services_before=$(systemctl list-unit-files --type=service --no-legend 2>/dev/null | awk '{print $1}' || true)
fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
for package in "${missing[@]}"; do
  case "$package" in
    rabbitmq-server) service=rabbitmq-server ;;
    postgresql) service=postgresql ;;
    prometheus) service=prometheus ;; # only its promtool is wanted
    *) continue ;;
  esac
  if has_systemctl && ! grep -qx "$service.service" <<<"$services_before"; then
    $sudo systemctl disable --now "$service" >/dev/null 2>&1 || true
  fi
done
echo "Installed ${missing[*]}."
