#!/usr/bin/env bash
# Backups of what Envio's data depends on, into ./backup (copy it off the server: BACKUP_COPY_TO). Run from this folder
# on the server, as root (secrets/ is root's); the schedule is in ../README.md, "Backup and restore":
#   ./backup.sh full      SQL Server: recovery model FULL, a full backup (compressed, checksummed, verified)   daily
#   ./backup.sh log       SQL Server: a log backup, then the log's use (fails above LOG_ALERT_PERCENT, 80)   every 15 min
#   ./backup.sh broker    RabbitMQ: its definitions (users with password hashes, vhost, policies, queues)      daily
#   ./backup.sh secrets   .env, secrets/ (passwords, encryption keys, Erlang cookie) and certs/, one archive    daily
#   ./backup.sh all       full + broker + secrets: before every upgrade
# T-SQL is in sqlserver/*.sql, run with sqlcmd inside the sqlserver container, over TLS as the consumer connects and
# with sa's password from its secret file (never on a command line). Files older than BACKUP_KEEP_DAYS (14) are
# removed; BACKUP_COPY_TO (an rsync destination, e.g. backup@vault:/srv/envio) gets a copy of ./backup after each run,
# but the secrets archive, which goes to BACKUP_SECRETS_COPY_TO (another place) only.
set -euo pipefail
cd "$(dirname "$0")"
what="${1:?usage: ./backup.sh full|log|broker|secrets|all}"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
database="${ENVIO_DB_NAME:-enviodb}"
keep_days="${BACKUP_KEEP_DAYS:-14}"
edition="${MSSQL_PID:-$( (sed -n 's/^MSSQL_PID=//p' .env 2>/dev/null || true) | tail -n1)}"
# Express has no backup compression.
compression=COMPRESSION; [ "${edition:-Standard}" = Express ] && compression=NO_COMPRESSION
mkdir -p backup/sqlserver backup/broker backup/secrets
chmod 700 backup/broker backup/secrets # definitions hold password hashes, the archive the keys
# The container sees ./backup/sqlserver at /var/opt/mssql/backup (docker-compose.yml) and writes as mssql (uid 10001).
chown 10001:0 backup/sqlserver 2>/dev/null || echo "note: run as root to give backup/sqlserver to uid 10001 (mssql)" >&2

# Runs sqlserver/<script>.sql with the given NAME=value scripting variables, as sa, inside the container.
sql() { # script, NAME=value...
  local script=$1; shift
  local variables=() pair
  for pair in "ENVIO_DB_NAME=$database" "BACKUP_COMPRESSION=$compression" "$@"; do variables+=(-e "$pair"); done
  docker compose exec -T "${variables[@]}" sqlserver bash -c \
    'SQLCMDPASSWORD="$(cat /run/secrets/sqlserver-password)" SSL_CERT_FILE=/etc/envio/tls/ca.crt exec /opt/mssql-tools18/bin/sqlcmd -S tcp:sqlserver,1433 -U sa -Nm -b -i /dev/stdin' \
    <"sqlserver/$script.sql"
}

full() {
  sql backup-full "BACKUP_FILE=/var/opt/mssql/backup/$database-$stamp-full.bak"
  echo "backup/sqlserver/$database-$stamp-full.bak"
}

log() {
  sql backup-log "BACKUP_FILE=/var/opt/mssql/backup/$database-$stamp-log.trn" "LOG_ALERT_PERCENT=${LOG_ALERT_PERCENT:-80}"
  echo "backup/sqlserver/$database-$stamp-log.trn"
}

broker() {
  # Through a file inside the container (the CLI writes one), printed and removed there.
  (umask 077 && docker compose exec -T messaging bash -c \
    'f=$(mktemp /tmp/definitions.XXXXXX) && rabbitmqctl -q export_definitions "$f" >/dev/null && cat "$f"; status=$?; rm -f "$f"; exit $status' \
    >"backup/broker/definitions-$stamp.json")
  echo "backup/broker/definitions-$stamp.json"
}

secrets() {
  # The encryption keys are the only way to read the personal columns and the messages: a backup of the database is
  # worth nothing without them. ca/ (the CA's key) is kept offline instead, once, by whoever made it.
  local files=(.env secrets certs)
  (umask 077 && tar -czf "backup/secrets/envio-secrets-$stamp.tar.gz" "${files[@]}")
  echo "backup/secrets/envio-secrets-$stamp.tar.gz"
}

case "$what" in
  full) full ;;
  log) log ;;
  broker) broker ;;
  secrets) secrets ;;
  all) full && broker && secrets ;;
  *) echo "usage: ./backup.sh full|log|broker|secrets|all" >&2; exit 2 ;;
esac

# A full backup makes the earlier ones and their logs redundant only after BACKUP_KEEP_DAYS: a restore needs the
# full backup and every log backup after it.
find backup -type f \( -name '*.bak' -o -name '*.trn' -o -name '*.json' -o -name '*.tar.gz' \) -mtime "+$keep_days" -delete
# Off the server: the backups to BACKUP_COPY_TO, the secrets archive (the keys that decrypt those backups) to
# BACKUP_SECRETS_COPY_TO, somewhere else: the two together are the personal data in clear.
if [ -n "${BACKUP_COPY_TO:-}" ]; then
  rsync -a --chmod=Du=rwx,Dgo=,Fu=rw,Fgo= --exclude /secrets/ backup/ "$BACKUP_COPY_TO/"
fi
if [ -n "${BACKUP_SECRETS_COPY_TO:-}" ]; then
  rsync -a --chmod=Du=rwx,Dgo=,Fu=rw,Fgo= backup/secrets/ "$BACKUP_SECRETS_COPY_TO/"
fi
