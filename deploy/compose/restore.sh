#!/usr/bin/env bash
# Restores Envio's database from ./backup/sqlserver (backup.sh): the newest full backup, or the one named, and every log
# backup taken after it, in order. Run from this folder on the server, as root:
#   ./restore.sh drill [full.bak]      as enviodb_drill beside production, checked (DBCC CHECKDB), then dropped:
#                                       the monthly proof that the backups restore. Production is not touched.
#   ./restore.sh database [full.bak]   over enviodb: stops the consumers, restores, runs the login bootstrap again (the
#                                       owner), starts the consumers. Objects accepted since the last log backup are
#                                       lost from the database; clients that kept their ids can send them again.
# The secrets the data needs (encryption keys) come back first, from backup/secrets: ../README.md, "Restore".
set -euo pipefail
cd "$(dirname "$0")"
mode="${1:?usage: ./restore.sh drill|database [backup/sqlserver/<name>-full.bak]}"
database="${ENVIO_DB_NAME:-enviodb}"
full="${2:-$(ls -1 backup/sqlserver/"$database"-*-full.bak 2>/dev/null | sort | tail -n1)}"
[ -f "$full" ] || { echo "No full backup in backup/sqlserver (./backup.sh full)." >&2; exit 1; }
case "$mode" in
  drill) target="${database}_drill" ;;
  database) target="$database" ;;
  *) echo "usage: ./restore.sh drill|database [full.bak]" >&2; exit 2 ;;
esac

sql() { # script, NAME=value...
  local script=$1; shift
  local variables=() pair
  for pair in "ENVIO_DB_NAME=$database" "RESTORE_AS=$target" "$@"; do variables+=(-e "$pair"); done
  docker compose exec -T "${variables[@]}" sqlserver bash -c \
    'SQLCMDPASSWORD="$(cat /run/secrets/sqlserver-password)" SSL_CERT_FILE=/etc/envio/tls/ca.crt exec /opt/mssql-tools18/bin/sqlcmd -S tcp:sqlserver,1433 -U sa -Nm -b -i /dev/stdin' \
    <"sqlserver/$script.sql"
}
inside() { echo "/var/opt/mssql/backup/$(basename "$1")"; }

# The log backups after the full one: their names sort by time (UTC stamps).
logs=()
for file in $(ls -1 backup/sqlserver/"$database"-*-log.trn 2>/dev/null | sort); do
  [[ "$(basename "$file")" > "$(basename "$full")" ]] && logs+=("$file")
done

# SQL Server reads them as mssql (uid 10001); files brought back from elsewhere belong to whoever copied them.
chown -R 10001:0 backup/sqlserver 2>/dev/null || echo "note: run as root to give backup/sqlserver to uid 10001 (mssql)" >&2

if [ "$mode" = database ]; then
  docker compose stop consumer consumer-external 2>/dev/null || docker compose stop consumer
fi
echo "Restoring $full and ${#logs[@]} log backup(s) as $target"
sql restore-full "BACKUP_FILE=$(inside "$full")"
for file in "${logs[@]}"; do
  sql restore-log "BACKUP_FILE=$(inside "$file")"
done
sql restore-finish
if [ "$mode" = drill ]; then
  sql drop-drill
  echo "Drill passed: $full and ${#logs[@]} log backup(s) restore and check clean."
else
  docker compose up -d sqlserver-bootstrap   # the consumer's login owns the restored database again
  docker compose up -d
  echo "Restored $target. Watch the consumers catch up: docker compose logs -f consumer"
fi
