#!/usr/bin/env bash
# Runs a command with a SQL Server to test against: ENVIO_TEST_SQLSERVER as it is given, or else a private SQL Server
# wire-protocol server (Babelfish for PostgreSQL, ../shared/tds beside the checkout) started for the command and
# stopped after it. Where neither exists, the command runs without one and the SQL Server tests say they skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
tds=../shared/tds
if [ -n "${ENVIO_TEST_SQLSERVER:-}" ] || [ ! -f "$tds/start" ]; then
  exec "$@"
fi

# A directory start creates itself (it hands it to its own server user).
dir=$(mktemp -u -d "${TMPDIR:-/tmp}/envio-tds.XXXXXXXX")
trap 'bash "$tds/stop" --dir "$dir" >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
ENVIO_TEST_SQLSERVER=$(bash "$tds/start" --port 0 --pg-port 0 --dir "$dir")
ENVIO_TEST_TDS=$(cd "$tds" && pwd)
ENVIO_TEST_SQLSERVER_CERTIFICATE="$dir/data/server.crt" # the throwaway certificate start made for it
export ENVIO_TEST_SQLSERVER ENVIO_TEST_TDS ENVIO_TEST_SQLSERVER_CERTIFICATE
echo "SQL Server for the tests: Babelfish ($ENVIO_TEST_TDS), ${ENVIO_TEST_SQLSERVER%%;*}" >&2
"$@"
