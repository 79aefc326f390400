#!/usr/bin/env bash
# A private certificate authority and the broker's and the database's server certificates, in ./certs, for a server
# without a PKI of its own. Ops with a PKI put their own files under the same names instead:
#   ca.crt                          the authority the services trust (and only it, for the broker)
#   messaging.crt, messaging.key    RabbitMQ's certificate, for the host name "messaging"
#   sqlserver.crt, sqlserver.key    SQL Server's certificate, for the host name "sqlserver"
# Re-running keeps an existing authority and renews the server certificates (rotation: see ../README.md).
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p certs ca && chmod 755 certs && chmod 700 ca # ca/ holds the authority's key and is never mounted
days="${CERT_DAYS:-397}"

if [ ! -f ca/ca.key ]; then
  openssl req -x509 -newkey rsa:3072 -sha256 -nodes -days 3650 -subj "/CN=Envio private CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout ca/ca.key -out certs/ca.crt 2>/dev/null
  chmod 600 ca/ca.key
fi

for host in messaging sqlserver; do
  # The broker's certificate names every broker node clients connect to: MESSAGING_NAMES="messaging messaging-2
  # messaging-3" for the three-node variant (docker-compose.cluster.yml).
  names="$host"; [ "$host" = messaging ] && names="${MESSAGING_NAMES:-messaging}"
  san=$(printf 'DNS:%s,' $names); san="${san%,}"
  openssl req -newkey rsa:3072 -sha256 -nodes -subj "/CN=$host" -keyout "certs/$host.key" -out "certs/$host.csr" 2>/dev/null
  openssl x509 -req -in "certs/$host.csr" -CA certs/ca.crt -CAkey ca/ca.key -CAserial ca/ca.srl -CAcreateserial -days "$days" -sha256 \
    -extfile <(printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n' "$san") \
    -out "certs/$host.crt" 2>/dev/null
  rm -f "certs/$host.csr"
done

# Each server reads its key as its own unprivileged user: rabbitmq is uid 999 in its image, mssql uid 10001.
chmod 640 certs/messaging.key certs/sqlserver.key
chown 999:999 certs/messaging.key 2>/dev/null || echo "note: run as root to give certs/messaging.key to uid 999 (rabbitmq)" >&2
chown 10001:0 certs/sqlserver.key 2>/dev/null || echo "note: run as root to give certs/sqlserver.key to uid 10001 (mssql)" >&2
chmod 644 certs/*.crt
echo "certs/: ca.crt, messaging.crt/.key, sqlserver.crt/.key (valid $days days). Keep ca/ca.key offline."
