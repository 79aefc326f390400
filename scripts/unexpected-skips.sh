#!/usr/bin/env bash
# Prints the name of each test an xUnit XML report (the runner's --report-xunit) says was skipped for a reason other
# than the one documented gate, one a line; nothing when there is none. The gate is SQL Server's: no SQL Server
# wire-protocol server to test against (ENVIO_TEST_SQLSERVER unset, no ../shared/tds). Any other skip is a test that did
# not run where it should have (docker-compose missing, say): test.sh fails the run on it. Envio.Tests/Hosting/
# SkipCheckTests runs this on the runner's own report of skipped samples, so a change of the report's format that made
# this match nothing fails a test rather than every skip passing unseen.
set -euo pipefail
report=${1:?usage: unexpected-skips.sh REPORT.xml}
gate='ENVIO_TEST_SQLSERVER is not set|No TDS server to start and stop here'
tr '\n' ' ' < "$report" \
  | grep -oP '<test [^>]*name="\K[^"]*(?="[^>]*result="Skip"[^>]*><reason><!\[CDATA\[(?!('"$gate"')))' || true
