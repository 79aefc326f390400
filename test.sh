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

rm -f TestResults/reliability.md TestResults/envio-tests.xml
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# The runner's own report (xUnit XML) says which tests were skipped and why. Its options go after the "--" that
# separates the test application's options, whether or not the caller already wrote one.
report=(--report-xunit --report-xunit-filename envio-tests.xml)
args=("$@")
if [[ " $* " == *" -- "* ]]; then args+=("${report[@]}"); else args+=(-- "${report[@]}"); fi
set +e
dotnet test --project Envio.Tests --results-directory "$PWD/TestResults" "${args[@]}" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e

# The failure tests' figures (see docs/reliability.md); the file carries its header.
if [ -f TestResults/reliability.md ]; then
  echo "Reliability under injected failures:"
  cat TestResults/reliability.md
fi

# The runner's report says which tests failed and why; a long run's log is kept by its tail, so they are named last.
# A skip passes silently in the runner's count. The one documented gate is SQL Server's (scripts/unexpected-skips.sh
# says which reasons it covers); any other skip is a test that did not run where it should have: the run fails and
# names it.
if [ -f TestResults/envio-tests.xml ]; then
  failed=$(scripts/failed-tests.sh TestResults/envio-tests.xml)
  if [ -n "$failed" ]; then
    echo "Failed (scripts/failed-tests.sh; the whole story is in TestResults/envio-tests.xml):"
    echo "$failed" | sed 's/^/  /'
  fi
  unexpected=$(scripts/unexpected-skips.sh TestResults/envio-tests.xml)
  if [ -n "$unexpected" ]; then
    echo "Skipped outside the SQL Server gate (see scripts/unexpected-skips.sh):"
    echo "$unexpected" | sed 's/^/  /'
    status=1
  fi
else
  echo "The runner wrote no report (TestResults/envio-tests.xml): skips cannot be checked." >&2
  status=1
fi

# Microsoft.Testing.Platform's summary: "total: N", "failed: N", "succeeded: N", "skipped: N".
count() { grep -E "^\s+$1: [0-9]+" "$log" | awk '{s += $2} END {print s + 0}'; }
echo "$(count succeeded) passed, $(count failed) failed, $(count skipped) skipped"
exit "$status"
