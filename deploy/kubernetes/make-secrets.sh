#!/usr/bin/env bash
# Envio's Secrets in the namespace (default envio), created with kubectl from files in a private temporary folder,
# so that no value is on a command line. An existing Secret is kept: to choose or rotate a value, delete the Secret
# and run this again (docs/kubernetes.md, "Rotating"). Passwords are letters and digits: they travel unquoted in a
# URI and a connection string.
#   envio-{api,consumer,admin,keda}-broker   username, password (the topology operator creates the user), uri
#   envio-encryption                          k1: AES-256 key for message bodies (API and consumer)
#   envio-column-encryption                   c1: AES-256 key for personal columns (the consumer only)
#   enviodb-login                             password of the consumer's login envio (owner of enviodb: its migrations),
#                                             writer-password of envio_writer (what it writes with); the bootstrap Job sets both
#   enviodb-connection                        connection: the consumer's as envio_writer; migrations: as envio
#   sqlserver-admin (trial only)              username sa, password: the trial server's administrator
# Usage: ./make-secrets.sh trial
#        ./make-secrets.sh external <sql-host>[,<port>]   e.g. envio-ag-listener.db.example.com
# For external, create sqlserver-admin (a login that may create databases and logins) and sqlserver-ca (ca.crt: the
# authority of the server's certificate) yourself; see docs/kubernetes.md.
set -euo pipefail
mode="${1:?usage: make-secrets.sh trial | external <sql-host>[,<port>]}"
ns="${NAMESPACE:-envio}"
broker="messaging.${ns}.svc:5671"
case "$mode" in
  trial)
    # The trial server's certificate is pinned, as in compose (the consumer mounts it there).
    server="tcp:sqlserver,1433"; link="Encrypt=Strict;ServerCertificate=/etc/envio/tls/sqlserver.crt" ;;
  external)
    host="${2:?external needs the SQL Server host (an availability group listener, or a managed server)}"
    [[ "$host" == *,* ]] || host="$host,1433"
    # MultiSubnetFailover: after a failover of an availability group the listener's name resolves to the new
    # primary's address among several; the client tries them in parallel instead of one after the other.
    server="tcp:$host"; link="Encrypt=Strict;MultiSubnetFailover=True" ;;
  *) echo "usage: make-secrets.sh trial | external <sql-host>[,<port>]" >&2; exit 2 ;;
esac

work=$(mktemp -d) && chmod 700 "$work" && trap 'rm -rf "$work"' EXIT

# 32 letters and digits with at least one upper, one lower and one digit (SQL Server's password policy).
password() {
  local value=""
  until [[ "$value" =~ [A-Z] && "$value" =~ [a-z] && "$value" =~ [0-9] ]]; do
    value=$(openssl rand -base64 64 | tr -d '\n' | tr -dc 'A-Za-z0-9' | cut -c1-32)
  done
  printf '%s' "$value"
}
exists() { kubectl -n "$ns" get secret "$1" >/dev/null 2>&1; }
read_key() { kubectl -n "$ns" get secret "$1" -o "jsonpath={.data.$2}" | base64 -d; }
create() { # name, then key=file pairs
  local name="$1"; shift
  local args=()
  for pair in "$@"; do args+=("--from-file=$pair"); done
  kubectl -n "$ns" create secret generic "$name" "${args[@]}" >/dev/null
  echo "$name: created"
}

kubectl get namespace "$ns" >/dev/null 2>&1 || kubectl create namespace "$ns" >/dev/null

for role in api consumer admin keda; do
  name="envio-$role-broker"
  if exists "$name"; then echo "$name: kept"; continue; fi
  mkdir -p "$work/$role"
  printf 'envio-%s' "$role" >"$work/$role/username"
  password >"$work/$role/password"
  printf 'amqps://envio-%s:%s@%s/envio' "$role" "$(cat "$work/$role/password")" "$broker" >"$work/$role/uri"
  create "$name" "username=$work/$role/username" "password=$work/$role/password" "uri=$work/$role/uri"
done

if exists envio-encryption; then echo "envio-encryption: kept"; else
  openssl rand -base64 32 | tr -d '\n' >"$work/k1"
  create envio-encryption "k1=$work/k1"
fi
if exists envio-column-encryption; then echo "envio-column-encryption: kept"; else
  openssl rand -base64 32 | tr -d '\n' >"$work/c1"
  create envio-column-encryption "c1=$work/c1"
fi

# A Secret from before the runtime login (no writer-password, no migrations key) is completed, its password kept.
if exists enviodb-login && [ -n "$(read_key enviodb-login writer-password)" ]; then
  read_key enviodb-login password >"$work/enviodb-password"; read_key enviodb-login writer-password >"$work/enviodb-writer-password"
  echo "enviodb-login: kept"
else
  if exists enviodb-login; then read_key enviodb-login password >"$work/enviodb-password"; kubectl -n "$ns" delete secret enviodb-login >/dev/null
  else password >"$work/enviodb-password"; fi
  password >"$work/enviodb-writer-password"
  create enviodb-login "password=$work/enviodb-password" "writer-password=$work/enviodb-writer-password"
fi
if exists enviodb-connection && [ -n "$(read_key enviodb-connection migrations)" ]; then echo "enviodb-connection: kept"; else
  if exists enviodb-connection; then kubectl -n "$ns" delete secret enviodb-connection >/dev/null; fi
  printf 'Server=%s;Database=enviodb;User ID=envio_writer;Password=%s;%s' "$server" "$(cat "$work/enviodb-writer-password")" "$link" >"$work/connection"
  printf 'Server=%s;Database=enviodb;User ID=envio;Password=%s;%s' "$server" "$(cat "$work/enviodb-password")" "$link" >"$work/migrations"
  create enviodb-connection "connection=$work/connection" "migrations=$work/migrations"
fi

if [ "$mode" = trial ]; then
  if exists sqlserver-admin; then echo "sqlserver-admin: kept"; else
    printf 'sa' >"$work/sa-username"
    password >"$work/sa-password"
    create sqlserver-admin "username=$work/sa-username" "password=$work/sa-password"
  fi
fi
echo "Back these Secrets up with the CA (Secret envio-ca): the data depends on envio-encryption and envio-column-encryption."
