#!/usr/bin/env bash
# Runs every Envio test: unit, integration and end to end (the real AppHost with RabbitMQ and PostgreSQL as local
# processes; SQL Server's against a live TDS server where one is available). Its last line is the runner's own
# count: "N passed, N failed, N skipped".
set -euo pipefail
cd "$(dirname "$0")"

# SQL Server's tests run live against a SQL Server wire-protocol server: ENVIO_TEST_SQLSERVER, or one started for
# this run from ../shared/tds where that exists (scripts/with-test-sqlserver.sh).
if [ -z "${ENVIO_TEST_SQLSERVER:-}" ] && [ -f ../shared/tds/start ]; then
  exec scripts/with-test-sqlserver.sh ./test.sh "$@"
fi

scripts/prerequisites.sh --for-tests

rm -f TestResults/reliability.md
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
dotnet test --project Envio.Tests "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e

# The failure tests' figures (see docs/reliability.md).
if [ -f TestResults/reliability.md ]; then
  echo "Reliability under injected failures:"
  echo "| fault | accepted (202) | stored | lost | duplicated | refused (503) | unanswered | error queue |"
  echo "|---|---|---|---|---|---|---|---|"
  cat TestResults/reliability.md
fi

# Microsoft.Testing.Platform's summary: "total: N", "failed: N", "succeeded: N", "skipped: N".
count() { grep -E "^\s+$1: [0-9]+" "$log" | awk '{s += $2} END {print s + 0}'; }
echo "$(count succeeded) passed, $(count failed) failed, $(count skipped) skipped"
exit "$status"
