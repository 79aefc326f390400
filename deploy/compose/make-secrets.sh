#!/usr/bin/env bash
# The deployment's passwords and keys, one file each in ./secrets (compose mounts each at /run/secrets/<name> in the
# services that need it, never in their environment or on a command line). An existing file is kept: to choose a value
# yourself, or to rotate one, write the file and run this again (../README.md, "Rotating"). Passwords are letters and
# digits only: they travel unquoted in a URI and a connection string.
#   messaging-password   the broker administrator's password (MESSAGING_USERNAME in .env): topology and operators' calls
#   messaging-api-password, messaging-consumer-password   the services' own broker users (envio-api, envio-consumer)
#   sqlserver-password   SQL Server's sa password: the server and the bootstrap step only
#   enviodb-password     the consumer's migrations login (envio), owner of enviodb and nothing else
#   enviodb-writer-password   the consumer's runtime login (envio_writer): select and insert on the types' tables
#   sqlserver-monitor-password   the collector's login (envio_monitor): SQL Server's state (the log space), no data
#   encryption-key-k1    AES-256 key for message bodies (and for personal columns stored before column-key-c1)
#   column-key-c1        AES-256 key for personal columns, the consumer's alone
#   erlang.cookie        the broker's Erlang cookie (the shared secret of its nodes and CLI tools), mounted read-only
#                           over the one in the data volume; owned by the broker's user (uid 999): run this as root
#   messaging-uri, messaging-api-uri, messaging-consumer-uri, enviodb-connection   the connection strings (administrator,
#                           API, consumer, database), rewritten from the files above on every run
#   messaging-cluster-uri, messaging-cluster-api-uri, messaging-cluster-consumer-uri   the same, listing every node of
#                           docker-compose.cluster.yml (MESSAGING_NAMES, default "messaging messaging-2 messaging-3")
#   messaging-definitions.json   the broker's virtual host, users and permissions, imported at every boot (rabbitmq.conf):
#                           the same roles as Envio.AppHost/Hosting/BrokerPermissions.cs (a test keeps them in step)
# Usage: ./make-secrets.sh [directory]   (default ./secrets)
set -euo pipefail
cd "$(dirname "$0")"
out="${1:-secrets}"
mkdir -p "$out" && chmod 700 "$out" # the files are world-readable for the containers' own users; the folder is not

user="${MESSAGING_USERNAME:-$( (sed -n 's/^MESSAGING_USERNAME=//p' .env 2>/dev/null || true) | tail -n1)}"
user="${user:-envio}"
max_length="${WORK_QUEUE_MAX_LENGTH:-$( (sed -n 's/^WORK_QUEUE_MAX_LENGTH=//p' .env 2>/dev/null || true) | tail -n1)}"
max_length="${max_length:-1000000}"
profiles="${COMPOSE_PROFILES:-$( (sed -n 's/^COMPOSE_PROFILES=//p' .env 2>/dev/null || true) | tail -n1)}"

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
keep messaging-api-password password
keep messaging-consumer-password password
keep sqlserver-password password
keep enviodb-password password
keep enviodb-writer-password password
keep sqlserver-monitor-password password
keep encryption-key-k1 "openssl rand -base64 32"
keep column-key-c1 "openssl rand -base64 32"
keep erlang.cookie "openssl rand -hex 32"
# Erlang refuses a cookie others can read, and the broker reads it as its own user (uid 999 in its image).
chmod 400 "$out/erlang.cookie"
chown 999:999 "$out/erlang.cookie" 2>/dev/null || echo "note: run as root to give $out/erlang.cookie to uid 999 (rabbitmq)" >&2

for name in messaging-password messaging-api-password messaging-consumer-password sqlserver-password enviodb-password enviodb-writer-password sqlserver-monitor-password; do
  if ! grep -qE '^[A-Za-z0-9]+$' "$out/$name"; then
    echo "$out/$name: letters and digits only (it goes unquoted into a connection string)" >&2
    exit 1
  fi
done
if ! [[ "$max_length" =~ ^[1-9][0-9]*$ ]]; then
  echo "WORK_QUEUE_MAX_LENGTH: a positive number of messages" >&2
  exit 1
fi
if ! [[ "$user" =~ ^[A-Za-z0-9]+$ ]]; then
  echo "MESSAGING_USERNAME: letters and digits only (it goes into the broker's URI)" >&2
  exit 1
fi

# Each role's permissions on every type's names (envio.orders, envio.payments, … and the names below them), so that
# they cover the types a later build adds: see docs/security.md.
t='envio[.][a-z0-9-]+'
permissions() { # user, configure, write, read
  printf '{"user":"%s","vhost":"envio","configure":"%s","write":"%s","read":"%s"}' "$1" "$2" "$3" "$4"
}
(umask 022
 nodes=$(for node in ${MESSAGING_NAMES:-messaging messaging-2 messaging-3}; do printf '%s:5671\n' "$node"; done | paste -sd, -)
 for role in admin api consumer; do
   case $role in
     admin) name=$user secret=messaging cluster=messaging-cluster ;;
     *) name=envio-$role secret=messaging-$role cluster=messaging-cluster-$role ;;
   esac
   printf 'amqps://%s:%s@messaging:5671/envio' "$name" "$(cat "$out/$secret-password")" >"$out/$secret-uri"
   printf 'amqps://%s:%s@%s/envio' "$name" "$(cat "$out/$secret-password")" "$nodes" >"$out/$cluster-uri"
 done
 # Each work queue's backlog is bounded, and a publish beyond it is refused (reject-publish): the broker nacks it and
 # the client gets 503, never a silent drop. A policy, not a queue argument, so that .env can change it later.
 printf '{"vhosts":[{"name":"envio"}],"users":[%s,%s,%s],"permissions":[%s,%s,%s],"policies":[%s]}\n' \
   "$(printf '{"name":"%s","password":"%s","tags":""}' "$user" "$(cat "$out/messaging-password")")" \
   "$(printf '{"name":"envio-api","password":"%s","tags":""}' "$(cat "$out/messaging-api-password")")" \
   "$(printf '{"name":"envio-consumer","password":"%s","tags":""}' "$(cat "$out/messaging-consumer-password")")" \
   "$(permissions "$user" "^$t([.].+)?\$" "^$t([.].+)?\$" "^$t([.].+)?\$")" \
   "$(permissions envio-api '^$' "^$t\$" '^$')" \
   "$(permissions envio-consumer "^$t[.]control[.]consumer[.].+\$" "^$t([.]error|[.]retry|[.]control[.]replies|[.]control[.]consumer[.].+)\$" "^$t([.]control([.]state|[.]consumer[.].+)?)?\$")" \
   "$(printf '{"vhost":"envio","name":"envio-work-queues","pattern":"^%s$","apply-to":"queues","priority":0,"definition":{"max-length":%s,"overflow":"reject-publish"}}' "$t" "$max_length")" \
   >"$out/messaging-definitions.json"
 # With your own database (COMPOSE_PROFILES has external-db) the connection string is yours: kept once written.
 # Its migrations connection too, unless you write one (a login owning the database; without one, your login does both).
 if [[ ",$profiles," == *,external-db,* && -s "$out/enviodb-connection" ]]; then
   echo "$out/enviodb-connection kept: external-db, your database's connection string" >&2
   [ -s "$out/enviodb-migrations-connection" ] || cp "$out/enviodb-connection" "$out/enviodb-migrations-connection"
 else
   # Mandatory TLS with the server's certificate pinned (TrustServerCertificate=false, so the pin is checked): what
   # SQL Server 2022 on Linux accepts (it refuses strict TDS 8, error 17821), and what its health check uses too.
   # The consumer writes as envio_writer and migrates as envio (the database's owner).
   link='Encrypt=Mandatory;TrustServerCertificate=false;ServerCertificate=/etc/envio/tls/sqlserver.crt;Database=enviodb'
   printf 'Server=sqlserver,1433;User ID=envio_writer;Password=%s;%s' "$(cat "$out/enviodb-writer-password")" "$link" >"$out/enviodb-connection"
   printf 'Server=sqlserver,1433;User ID=envio;Password=%s;%s' "$(cat "$out/enviodb-password")" "$link" >"$out/enviodb-migrations-connection"
 fi)
echo "$out/: the passwords (messaging, messaging-api, messaging-consumer, sqlserver, enviodb, enviodb-writer, sqlserver-monitor), encryption-key-k1, column-key-c1, erlang.cookie, the connection strings and messaging-definitions.json. Back them up with certs/ (../README.md, \"Backup and restore\")."
