#!/usr/bin/env bash
# The deployment's passwords and keys, one file each in ./secrets (compose mounts each at /run/secrets/<name> in the
# services that need it, never in their environment or on a command line). An existing file is kept: to choose a value
# yourself, or to rotate one, write the file and run this again (../README.md, "Rotating"). Passwords are letters and
# digits only: they travel unquoted in a URI and a connection string.
#   messaging-password   the broker user's password (MESSAGING_USERNAME in .env)
#   sqlserver-password   SQL Server's sa password: the server and the bootstrap step only
#   enviodb-password     the consumer's own login (envio), owner of enviodb and nothing else
#   encryption-key-k1    AES-256 key for message bodies and personal columns
#   messaging-uri, enviodb-connection   the services' connection strings, rewritten from the files above on every run
#   messaging-cluster-uri   the broker's connection string listing every node of docker-compose.cluster.yml
#                           (MESSAGING_NAMES, default "messaging messaging-2 messaging-3")
# Usage: ./make-secrets.sh [directory]   (default ./secrets)
set -euo pipefail
cd "$(dirname "$0")"
out="${1:-secrets}"
mkdir -p "$out" && chmod 700 "$out" # the files are world-readable for the containers' own users; the folder is not

user="${MESSAGING_USERNAME:-$( (sed -n 's/^MESSAGING_USERNAME=//p' .env 2>/dev/null || true) | tail -n1)}"
user="${user:-envio}"

# 32 letters and digits with at least one upper, one lower and one digit (SQL Server's password policy).
password() {
  local value=""
  until [[ "$value" =~ [A-Z] && "$value" =~ [a-z] && "$value" =~ [0-9] ]]; do
    value=$(openssl rand -base64 64 | tr -d '\n' | tr -dc 'A-Za-z0-9' | cut -c1-32)
  done
  printf '%s' "$value"
}

keep() { # name, generator
  if [ ! -s "$out/$1" ]; then
    (umask 022 && $2 >"$out/$1")
  fi
}
keep messaging-password password
keep sqlserver-password password
keep enviodb-password password
keep encryption-key-k1 "openssl rand -base64 32"

for name in messaging-password sqlserver-password enviodb-password; do
  if ! grep -qE '^[A-Za-z0-9]+$' "$out/$name"; then
    echo "$out/$name: letters and digits only (it goes unquoted into a connection string)" >&2
    exit 1
  fi
done
if ! [[ "$user" =~ ^[A-Za-z0-9]+$ ]]; then
  echo "MESSAGING_USERNAME: letters and digits only (it goes into the broker's URI)" >&2
  exit 1
fi

(umask 022
 printf 'amqps://%s:%s@messaging:5671/envio' "$user" "$(cat "$out/messaging-password")" >"$out/messaging-uri"
 nodes=$(for node in ${MESSAGING_NAMES:-messaging messaging-2 messaging-3}; do printf '%s:5671\n' "$node"; done | paste -sd, -)
 printf 'amqps://%s:%s@%s/envio' "$user" "$(cat "$out/messaging-password")" "$nodes" >"$out/messaging-cluster-uri"
 printf 'Server=sqlserver,1433;User ID=envio;Password=%s;Encrypt=Strict;ServerCertificate=/etc/envio/tls/sqlserver.crt;Database=enviodb' \
   "$(cat "$out/enviodb-password")" >"$out/enviodb-connection")
echo "$out/: messaging-password, sqlserver-password, enviodb-password, encryption-key-k1, messaging-uri, messaging-cluster-uri, enviodb-connection. Back them up with certs/."
