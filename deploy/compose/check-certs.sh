#!/usr/bin/env bash
# Every certificate in ./certs: its expiry, and whether it chains to ca.crt. Exits 1 when one expires within DAYS
# (30) or does not verify, so that cron mails it: `0 6 * * * cd /opt/envio && ./check-certs.sh >/dev/null || echo …`.
# Renewal: ../README.md, "Certificates".
set -euo pipefail
cd "$(dirname "$0")"
days="${DAYS:-30}"
status=0
for certificate in certs/*.crt; do
  end=$(openssl x509 -enddate -noout -in "$certificate" | cut -d= -f2)
  if ! openssl x509 -checkend $((days * 86400)) -noout -in "$certificate" >/dev/null; then
    echo "$certificate: expires $end, within $days days: renew it" >&2
    status=1
  elif [ "$certificate" != certs/ca.crt ] && ! openssl verify -CAfile certs/ca.crt "$certificate" >/dev/null 2>&1; then
    echo "$certificate: does not chain to certs/ca.crt" >&2
    status=1
  else
    echo "$certificate: valid until $end"
  fi
done
exit "$status"
