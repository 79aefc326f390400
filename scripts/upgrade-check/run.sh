#!/usr/bin/env bash
# In-place upgrade check. The build before data objects (52625f5) fills the work queue, a retry queue, the error queue
# and the database; then the new build (HEAD) starts on the same broker and database, as an operator upgrading in place
# would (same settings, same key ring, same retry delays). It must run no old migration again, re-declare no queue with
# other arguments, store everything that was waiting, replay the error queue through its admin API, open the sealed
# columns the old build wrote, and store a payment. Last, the old broker permission (^envio[.]orders([.].+)?$) is tried
# once with the new build: orders must keep working; payments are refused.
#
#   scripts/upgrade-check/run.sh [postgres] [sqlserver]      (default: both; about 4 minutes per engine)
#
# Everything runs as local processes in a temporary directory: a private RabbitMQ node (Debian's rabbitmq-server),
# PostgreSQL 15 (Debian's) or Babelfish (../shared/tds) for SQL Server, and the two builds' services started with
# `dotnet <dll>` from git worktrees of the two commits. Everything is stopped and removed at exit, failure included
# (UPGRADE_CHECK_KEEP=1 keeps the directory and its logs). Exits non-zero when any check fails.
# Environment: UPGRADE_CHECK_OLD (default 52625f5), UPGRADE_CHECK_NEW (default HEAD), UPGRADE_CHECK_TDS (the tds folder).
set -Eeuo pipefail

HERE=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
REPO=$(git -C "$HERE" rev-parse --show-toplevel)
OLD_REF=${UPGRADE_CHECK_OLD:-52625f5}
NEW_REF=${UPGRADE_CHECK_NEW:-HEAD}
TDS=${UPGRADE_CHECK_TDS:-$REPO/../shared/tds}
ENGINES=("$@")
[ ${#ENGINES[@]} -gt 0 ] || ENGINES=(postgres sqlserver)
for engine in "${ENGINES[@]}"; do
  [[ $engine == postgres || $engine == sqlserver ]] || { echo "usage: $0 [postgres] [sqlserver]" >&2; exit 64; }
done

# What the old build is made to leave behind. A write fails while the database answers (the orders table is held, and
# a statement waiting for it is cancelled within a quarter of a second), so a message goes to the 2 s retry queue,
# then to the 45 s one, then (third failure) to the error queue.
RETRY_SHORT=00:00:02 RETRY_LONG=00:00:45 RETRY_LONG_SECONDS=45
N_STORED=10   # stored by the old build
N_ERROR=4     # retries exhausted: in the error queue at the switch
N_RETRY=4     # in the 45 s retry queue at the switch, its delay still running
N_WAITING=10  # posted after the old consumer stopped: in the work queue at the switch
WORK_QUEUE=envio.orders ERROR_QUEUE=envio.orders.error
SHORT_QUEUE=envio.orders.retry.2000ms LONG_QUEUE=envio.orders.retry.45000ms
NEW_PERMISSION='^envio[.][a-z0-9-]+([.].+)?$'  # deploy/compose/rabbitmq/rabbitmq.conf today
OLD_PERMISSION='^envio[.]orders([.].+)?$'      # the same file at 52625f5
PG_BIN=/usr/lib/postgresql/15/bin
RABBITMQ_BIN=/usr/lib/rabbitmq/bin

WORK=$(mktemp -d /tmp/envio-upgrade-check.XXXXXX)
chmod 755 "$WORK" # postgres (a service account) reaches its data directory through it
OLD_TREE=$WORK/old NEW_TREE=$WORK/new
PIDS=() TDS_DIRS=() CHECKS=() FAILED=0
declare -A R # figures, by "<engine>.<name>"

say() { printf '[upgrade-check %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { say "FATAL: $*"; exit 1; }

cleanup() {
  local status=$?
  set +e
  trap '' INT TERM # finish cleaning up
  for pid in "${PIDS[@]}"; do kill -TERM -- "-$pid" 2>/dev/null; done
  for pid in "${PIDS[@]}"; do stop_group "$pid" TERM 15; done
  for dir in "${TDS_DIRS[@]}"; do "$TDS/stop" --dir "$dir" >/dev/null 2>&1; done
  for tree in "$OLD_TREE" "$NEW_TREE"; do
    [ -d "$tree" ] && git -C "$REPO" worktree remove --force "$tree" >/dev/null 2>&1
  done
  git -C "$REPO" worktree prune
  if [ "${UPGRADE_CHECK_KEEP:-0}" = 1 ]; then say "kept $WORK"; else rm -rf "$WORK"; fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Signals a process group (each background process here leads its own, through setsid) and reaps its leader,
# killing the group when it has not ended within the grace period.
stop_group() {
  local pid=$1 signal=$2 grace=$3
  kill -0 "$pid" 2>/dev/null || { { wait "$pid" || true; } 2>/dev/null; return 0; }
  kill "-$signal" -- "-$pid" 2>/dev/null || true
  ( sleep "$grace"; kill -KILL -- "-$pid" 2>/dev/null ) & local watchdog=$!
  { wait "$pid" || true; } 2>/dev/null
  { kill "$watchdog"; wait "$watchdog" || true; } 2>/dev/null
  local kept=()
  for other in "${PIDS[@]}"; do [ "$other" = "$pid" ] || kept+=("$other"); done
  PIDS=("${kept[@]}")
}

# start <log> <dir> <command...>: in its own process group, from <dir>; the pid is in $STARTED.
start() {
  local log=$1 dir=$2; shift 2
  ( cd "$dir" && exec setsid "$@" ) >"$log" 2>&1 &
  STARTED=$!
  PIDS+=("$STARTED")
}

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

check() { # check <engine> <description> <ok: 0|1> <detail>
  local verdict=PASS
  [ "$3" = 0 ] || { verdict=FAIL; FAILED=1; }
  CHECKS+=("$1|$2|$verdict|$4")
  say "$verdict [$1] $2: $4"
}

# wait_until <seconds> <description> <command...>: polls every 2 s until the command succeeds.
wait_until() {
  local timeout=$1 what=$2; shift 2
  local deadline=$((SECONDS + timeout))
  until "$@"; do
    [ $SECONDS -lt $deadline ] || { say "timed out after ${timeout}s waiting for $what"; return 1; }
    sleep 2
  done
}

# --- builds --------------------------------------------------------------------------------------------------------

build() { # build <tree> <project>
  say "building $2 in $1"
  dotnet build "$1/$2" -c Release -nologo -v quiet -clp:ErrorsOnly >"$WORK/build.log" 2>&1 \
    || { cat "$WORK/build.log" >&2; die "the build of $2 in $1 failed"; }
}

prepare_builds() {
  OLD_COMMIT=$(git -C "$REPO" rev-parse "$OLD_REF^{commit}")
  NEW_COMMIT=$(git -C "$REPO" rev-parse "$NEW_REF^{commit}")
  git -C "$REPO" worktree add --detach "$OLD_TREE" "$OLD_COMMIT" >/dev/null 2>&1 || die "git worktree add $OLD_TREE $OLD_COMMIT failed"
  git -C "$REPO" worktree add --detach "$NEW_TREE" "$NEW_COMMIT" >/dev/null 2>&1 || die "git worktree add $NEW_TREE $NEW_COMMIT failed"
  # The helpers as they are in this checkout, built against the new build's Envio.Contracts.
  rm -rf "$NEW_TREE/scripts/upgrade-check/UpgradeCheck"
  mkdir -p "$NEW_TREE/scripts/upgrade-check"
  cp -r "$HERE/UpgradeCheck" "$NEW_TREE/scripts/upgrade-check/"
  rm -rf "$NEW_TREE/scripts/upgrade-check/UpgradeCheck/bin" "$NEW_TREE/scripts/upgrade-check/UpgradeCheck/obj"
  for tree in "$OLD_TREE" "$NEW_TREE"; do
    build "$tree" Envio.ApiService/Envio.ApiService.csproj
    build "$tree" Envio.ConsumerService/Envio.ConsumerService.csproj
  done
  build "$NEW_TREE" scripts/upgrade-check/UpgradeCheck/UpgradeCheck.csproj
}

tool() { dotnet "$NEW_TREE/scripts/upgrade-check/UpgradeCheck/bin/Release/net10.0/UpgradeCheck.dll" "$@"; }

# --- broker ----------------------------------------------------------------------------------------------------------

start_broker() { # start_broker <dir>
  MQ_DIR=$1
  mkdir -p "$MQ_DIR/mnesia" "$MQ_DIR/log"
  local epmd_port dist_port
  epmd_port=$(free_port) MQ_PORT=$(free_port) dist_port=$(free_port)
  MQ_NODE="upgrade-check-$MQ_PORT@localhost"
  MQ_PASS=$(openssl rand -hex 16)
  echo '[].' >"$MQ_DIR/enabled_plugins"
  echo '[].' >"$MQ_DIR/advanced.config"
  cat >"$MQ_DIR/rabbitmq.conf" <<EOF
default_vhost = envio
default_user = envio
default_pass = $MQ_PASS
default_user_tags.administrator = false
default_permissions.configure = $NEW_PERMISSION
default_permissions.write = $NEW_PERMISSION
default_permissions.read = $NEW_PERMISSION
loopback_users = none
collect_statistics_interval = 1000
EOF
  MQ_ENV=(HOME="$MQ_DIR" RABBITMQ_NODENAME="$MQ_NODE" ERL_EPMD_ADDRESS=127.0.0.1 ERL_EPMD_PORT="$epmd_port")
  start "$MQ_DIR/epmd.log" "$MQ_DIR" /usr/bin/epmd -address 127.0.0.1 -port "$epmd_port"
  start "$MQ_DIR/rabbitmq.log" "$MQ_DIR" env "${MQ_ENV[@]}" \
    RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT="$MQ_PORT" RABBITMQ_DIST_PORT="$dist_port" \
    RABBITMQ_MNESIA_BASE="$MQ_DIR/mnesia" RABBITMQ_LOG_BASE="$MQ_DIR/log" RABBITMQ_LOGS="$MQ_DIR/log/broker.log" \
    RABBITMQ_ENABLED_PLUGINS_FILE="$MQ_DIR/enabled_plugins" RABBITMQ_CONFIG_FILE="$MQ_DIR/rabbitmq.conf" \
    RABBITMQ_ADVANCED_CONFIG_FILE="$MQ_DIR/advanced.config" "$RABBITMQ_BIN/rabbitmq-server"
  MQ_PID=$STARTED
  wait_until 180 "RabbitMQ" ctl await_startup --timeout 60 >/dev/null 2>&1 || { tail -20 "$MQ_DIR/rabbitmq.log" >&2; die "RabbitMQ did not start"; }
  say "RabbitMQ $MQ_NODE on 127.0.0.1:$MQ_PORT (user envio, permissions $NEW_PERMISSION)"
}

ctl() { env "${MQ_ENV[@]}" "$RABBITMQ_BIN/rabbitmqctl" -n "$MQ_NODE" "$@"; }

queues() { ctl list_queues -p envio name messages arguments -q --no-table-headers; }

queue_count() { # queue_count <listing file> <queue>
  awk -F'\t' -v q="$2" '$1 == q { print $2; found = 1 } END { if (!found) print "absent" }' "$1"
}

queue_holds() { # queue_holds <queue> <count>
  queues >"$MQ_DIR/listing" 2>/dev/null && [ "$(queue_count "$MQ_DIR/listing" "$1")" = "$2" ]
}

# --- databases -------------------------------------------------------------------------------------------------------

start_postgres() { # start_postgres <dir>
  local dir=$1 port password
  port=$(free_port) password=$(openssl rand -hex 16)
  mkdir -p "$dir"
  printf '%s' "$password" >"$dir/pwfile"
  chown -R postgres:postgres "$dir"
  setpriv --reuid=postgres --regid=postgres --init-groups "$PG_BIN/initdb" -D "$dir/data" -U envio --pwfile="$dir/pwfile" \
    --auth-host=scram-sha-256 --auth-local=scram-sha-256 --encoding=UTF8 --no-locale --no-sync >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
  start "$dir/postgres.log" "$dir" setpriv --reuid=postgres --regid=postgres --init-groups \
    "$PG_BIN/postgres" -D "$dir/data" -p "$port" -c listen_addresses=127.0.0.1 -k "$dir/data"
  PG_PID=$STARTED
  PSQL=(env PGPASSWORD="$password" psql -h 127.0.0.1 -p "$port" -U envio -v ON_ERROR_STOP=1 -qAt)
  wait_until 60 "PostgreSQL" "${PSQL[@]}" -d postgres -c 'SELECT 1' >/dev/null 2>&1 || die "PostgreSQL did not start"
  "${PSQL[@]}" -d postgres -c 'CREATE DATABASE enviodb'
  PSQL+=(-d enviodb)
  ORDERS_TABLE=orders
  DB_CS="Host=127.0.0.1;Port=$port;Username=envio;Password=$password;Database=enviodb;SSL Mode=Disable"
  say "PostgreSQL 15 on 127.0.0.1:$port"
}

start_babelfish() { # start_babelfish <dir>
  local dir=$1
  [ -x "$TDS/start" ] || die "no $TDS/start (set UPGRADE_CHECK_TDS)"
  TDS_DIRS+=("$dir")
  DB_CS=$("$TDS/start" --port 0 --pg-port 0 --dir "$dir" 2>"$WORK/tds-start.log") || { cat "$WORK/tds-start.log" >&2; die "Babelfish did not start"; }
  local runtime pg_port
  runtime=$(sed -n 's/^runtime=//p' "$dir/envio-tds.state")
  pg_port=$(sed -n 's/^pg_port=//p' "$dir/envio-tds.state")
  PSQL=("$runtime/bin/psql" -h "$dir/run" -p "$pg_port" -U postgres -d babelfish_db -v ON_ERROR_STOP=1 -qAt)
  ORDERS_TABLE=enviodb_dbo.orders # Babelfish's PostgreSQL name of enviodb's dbo.orders
  say "Babelfish: $DB_CS"
}

# Holds the orders table (ACCESS EXCLUSIVE) from a session of its own until release_orders, and cancels every
# statement that waits for it within 250 ms: the consumer's write fails (PostgreSQL 57014; through Babelfish, SQL
# error 33557097 "canceling statement due to user request") while the database answers. The same on both engines, and
# nothing in the services' settings: Babelfish resets a login's lock_timeout, so a short lock timeout cannot be set there.
lock_orders() {
  start "$ENGINE_DIR/lock.log" "$ENGINE_DIR" env PGAPPNAME=upgrade-check-lock "${PSQL[@]}" \
    -c "BEGIN; LOCK TABLE $ORDERS_TABLE IN ACCESS EXCLUSIVE MODE;
        DO \$\$ BEGIN FOR i IN 1..3600 LOOP
          PERFORM pg_cancel_backend(pid) FROM pg_locks WHERE relation = '$ORDERS_TABLE'::regclass AND NOT granted;
          PERFORM pg_sleep(0.25);
        END LOOP; END \$\$;"
  LOCK_PID=$STARTED
  wait_until 30 "the lock on $ORDERS_TABLE" lock_held || die "could not lock $ORDERS_TABLE"
}

lock_held() {
  [ "$("${PSQL[@]}" -c "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
     WHERE a.application_name = 'upgrade-check-lock' AND l.mode = 'AccessExclusiveLock' AND l.granted")" -ge 1 ]
}

release_orders() {
  "${PSQL[@]}" -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'upgrade-check-lock'" >/dev/null
  stop_group "$LOCK_PID" TERM 10
}

# --- services --------------------------------------------------------------------------------------------------------

start_services() { # start_services <tree> <label>: the consumer, then the API, both healthy
  local tree=$1 label=$2 common
  common=(ASPNETCORE_ENVIRONMENT=Development DOTNET_ENVIRONMENT=Development
    "ConnectionStrings__messaging=amqp://envio:$MQ_PASS@127.0.0.1:$MQ_PORT/envio"
    Envio__Encryption__CurrentKeyId=k1 "Envio__Encryption__Keys__k1=$ENCRYPTION_KEY"
    "Envio__Topology__RetryDelays__0=$RETRY_SHORT" "Envio__Topology__RetryDelays__1=$RETRY_LONG")
  local bin=Release/net10.0
  start "$LOGS/$label-consumer.log" "$tree/Envio.ConsumerService/bin/$bin" env "${common[@]}" \
    "ASPNETCORE_URLS=http://127.0.0.1:$CONSUMER_PORT" "ConnectionStrings__enviodb=$DB_CS" \
    dotnet Envio.ConsumerService.dll
  CONSUMER_PID=$STARTED
  start "$LOGS/$label-api.log" "$tree/Envio.ApiService/bin/$bin" env "${common[@]}" \
    "ASPNETCORE_URLS=http://127.0.0.1:$API_PORT" \
    Authentication__Schemes__Bearer__ValidIssuer=envio-upgrade-check \
    Authentication__Schemes__Bearer__ValidAudiences__0=envio-api \
    Authentication__Schemes__Bearer__SigningKeys__0__Issuer=envio-upgrade-check \
    "Authentication__Schemes__Bearer__SigningKeys__0__Value=$SIGNING_KEY" \
    dotnet Envio.ApiService.dll
  API_PID=$STARTED
  wait_healthy "$label consumer" "$CONSUMER_PORT" "$CONSUMER_PID" "$LOGS/$label-consumer.log"
  wait_healthy "$label API" "$API_PORT" "$API_PID" "$LOGS/$label-api.log"
}

wait_healthy() { # wait_healthy <name> <port> <pid> <log>
  local deadline=$((SECONDS + 120)) code
  while :; do
    kill -0 "$3" 2>/dev/null || { tail -30 "$4" >&2; die "$1 exited"; }
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$2/health" || true)
    [ "$code" = 200 ] && break
    if [ "${HEALTH_OPTIONAL:-0}" = 1 ] && [ $SECONDS -gt $((deadline - 60)) ]; then
      say "$1 answers /health with $code after 60 s: going on"; return 0
    fi
    [ $SECONDS -lt $deadline ] || { tail -30 "$4" >&2; die "$1 not healthy after 120 s (last answer $code)"; }
    sleep 1
  done
  say "$1 healthy"
}

stop_services() {
  stop_group "$API_PID" TERM 30
  stop_group "$CONSUMER_PID" TERM 30
}

post_orders() { # post_orders <count> <ids file>
  tool post "http://127.0.0.1:$API_PORT" "$TOKEN" order "$1" "$2" >/dev/null || die "posting orders failed"
}

stored_count() { tool stored "$DB_CS" "$1" | cut -d' ' -f1; } # rows of the orders in <ids file>

stored_is() { [ "$(stored_count "$1")" = "$2" ]; }

# --- one engine ------------------------------------------------------------------------------------------------------

run_engine() {
  local e=$1
  ENGINE_DIR=$WORK/$e LOGS=$WORK/$e/logs
  mkdir -p "$LOGS"
  chmod 755 "$ENGINE_DIR"
  say "=== $e ==="
  ENCRYPTION_KEY=$(openssl rand -base64 32) SIGNING_KEY=$(openssl rand -base64 32)
  API_PORT=$(free_port) CONSUMER_PORT=$(free_port)
  start_broker "$ENGINE_DIR/rabbitmq"
  if [ "$e" = postgres ]; then start_postgres "$ENGINE_DIR/postgres"; else start_babelfish "$ENGINE_DIR/tds"; fi
  TOKEN=$(tool token envio-upgrade-check envio-api "$SIGNING_KEY" envio.send envio.admin)
  local ids=$ENGINE_DIR/ids
  mkdir -p "$ids"
  touch "$ids/stored" "$ids/error" "$ids/retry" "$ids/waiting" "$ids/payment" "$ids/exp-order" "$ids/exp-payment" "$ids/exp-widened"

  # 1. The old build stores orders.
  say "1. old build ($OLD_COMMIT): $N_STORED orders stored"
  start_services "$OLD_TREE" old
  post_orders "$N_STORED" "$ids/stored"
  wait_until 60 "the old build to store $N_STORED orders" stored_is "$ids/stored" "$N_STORED" || die "the old build did not store its orders"
  R[$e.old_stored]=$(stored_count "$ids/stored")

  # 2. Writes fail while the database answers: some orders exhaust their retries, some wait in the long retry queue.
  say "2. orders table locked: $N_ERROR orders to the error queue (about ${RETRY_LONG_SECONDS}s), then $N_RETRY to the ${RETRY_LONG_SECONDS}s retry queue"
  lock_orders
  post_orders "$N_ERROR" "$ids/error"
  wait_until $((RETRY_LONG_SECONDS + 90)) "$N_ERROR messages in $ERROR_QUEUE" queue_holds "$ERROR_QUEUE" "$N_ERROR" \
    || die "the error queue did not fill"
  post_orders "$N_RETRY" "$ids/retry"
  wait_until 60 "$N_RETRY messages in $LONG_QUEUE" queue_holds "$LONG_QUEUE" "$N_RETRY" || die "the retry queue did not fill"

  # 3. The old consumer stops; more orders wait in the work queue; the old API stops.
  say "3. old consumer stopped; $N_WAITING orders posted to wait in the work queue; old API stopped"
  stop_group "$CONSUMER_PID" TERM 30
  release_orders
  post_orders "$N_WAITING" "$ids/waiting"
  stop_group "$API_PID" TERM 30

  # 4. The switch (queue lengths are the broker's statistics, refreshed every second).
  wait_until 30 "$N_WAITING messages in $WORK_QUEUE" queue_holds "$WORK_QUEUE" "$N_WAITING" || true
  queues >"$ENGINE_DIR/queues-at-switch.txt"
  tool journal "$DB_CS" >"$ENGINE_DIR/journal-before.txt"
  R[$e.q_work]=$(queue_count "$ENGINE_DIR/queues-at-switch.txt" "$WORK_QUEUE")
  R[$e.q_short]=$(queue_count "$ENGINE_DIR/queues-at-switch.txt" "$SHORT_QUEUE")
  R[$e.q_long]=$(queue_count "$ENGINE_DIR/queues-at-switch.txt" "$LONG_QUEUE")
  R[$e.q_error]=$(queue_count "$ENGINE_DIR/queues-at-switch.txt" "$ERROR_QUEUE")
  R[$e.journal_before]=$(wc -l <"$ENGINE_DIR/journal-before.txt")
  say "4. at the switch: work ${R[$e.q_work]}, retry 2 s ${R[$e.q_short]}, retry 45 s ${R[$e.q_long]}, error ${R[$e.q_error]}; journal ${R[$e.journal_before]} rows"
  sed 's/^/     /' "$ENGINE_DIR/queues-at-switch.txt" >&2
  check "$e" "queues at the switch" \
    "$([ "${R[$e.q_work]}" = "$N_WAITING" ] && [ "${R[$e.q_long]}" = "$N_RETRY" ] && [ "${R[$e.q_error]}" = "$N_ERROR" ]; echo $?)" \
    "work ${R[$e.q_work]}/$N_WAITING, retry 45 s ${R[$e.q_long]}/$N_RETRY, error ${R[$e.q_error]}/$N_ERROR"
  local in_flight
  in_flight=$(cat "$ids/error" "$ids/retry" "$ids/waiting" >"$ids/in-flight"; stored_count "$ids/in-flight")
  check "$e" "nothing in the queues is stored yet" "$([ "$in_flight" = 0 ]; echo $?)" "$in_flight rows"

  # 5. The new build starts on the same broker and database.
  say "5. new build ($NEW_COMMIT) started on the same broker and database"
  local switched=$SECONDS
  start_services "$NEW_TREE" new
  wait_until 90 "the work queue's orders" stored_is "$ids/waiting" "$N_WAITING" || true
  R[$e.waiting_stored]=$(stored_count "$ids/waiting")
  R[$e.waiting_after]=$((SECONDS - switched))
  check "$e" "the work queue's orders stored at once" "$([ "${R[$e.waiting_stored]}" = "$N_WAITING" ]; echo $?)" \
    "${R[$e.waiting_stored]}/$N_WAITING within ${R[$e.waiting_after]} s of the switch"
  wait_until $((RETRY_LONG_SECONDS + 90)) "the retry queue's orders" stored_is "$ids/retry" "$N_RETRY" || true
  R[$e.retry_stored]=$(stored_count "$ids/retry")
  R[$e.retry_after]=$((SECONDS - switched))
  check "$e" "the retry queue's orders stored after their delay" "$([ "${R[$e.retry_stored]}" = "$N_RETRY" ]; echo $?)" \
    "${R[$e.retry_stored]}/$N_RETRY, ${R[$e.retry_after]} s after the switch"
  local replay
  replay=$(tool replay "http://127.0.0.1:$API_PORT" "$TOKEN" order 2>"$ENGINE_DIR/replay.txt") || replay="failed"
  R[$e.replayed]=${replay%% *}
  wait_until 60 "the replayed orders" stored_is "$ids/error" "$N_ERROR" || true
  R[$e.error_stored]=$(stored_count "$ids/error")
  check "$e" "error queue replayed (POST /admin/errors/replay?type=order) and stored" \
    "$([ "${R[$e.replayed]}" = "$N_ERROR" ] && [ "${R[$e.error_stored]}" = "$N_ERROR" ]; echo $?)" \
    "replayed ${R[$e.replayed]}/$N_ERROR, stored ${R[$e.error_stored]}/$N_ERROR ($(cat "$ENGINE_DIR/replay.txt"))"

  cat "$ids/stored" "$ids/in-flight" >"$ids/all"
  local total all
  total=$(wc -l <"$ids/all")
  all=$(tool stored "$DB_CS" "$ids/all")
  R[$e.total]=$total R[$e.all_stored]=$all
  check "$e" "every order posted stored exactly once, old and new build's rows alike" \
    "$([ "$all" = "$total $total $((2 * total)) 1" ]; echo $?)" \
    "rows, distinct ids, item rows, distinct row contents: $all (of $total orders sent alike, 2 items each)"

  local opened_old opened_all
  opened_old=$(tool open "$DB_CS" "$ids/stored" k1 "$ENCRYPTION_KEY" 2>"$ENGINE_DIR/open.err") || opened_old="failed: $(head -3 "$ENGINE_DIR/open.err")"
  opened_all=$(tool open "$DB_CS" "$ids/all" k1 "$ENCRYPTION_KEY" 2>"$ENGINE_DIR/open.err") || opened_all="failed: $(head -3 "$ENGINE_DIR/open.err")"
  R[$e.opened_old]=$opened_old R[$e.opened_all]=$opened_all
  check "$e" "sealed columns opened with the key ring (SensitiveColumns.Open)" \
    "$([ "$opened_old" = $((2 * N_STORED)) ] && [ "$opened_all" = $((2 * total)) ]; echo $?)" \
    "$opened_old/$((2 * N_STORED)) of the rows the old build wrote, $opened_all/$((2 * total)) in all"

  local payment
  payment=$(tool post "http://127.0.0.1:$API_PORT" "$TOKEN" payment 1 "$ids/payment" 2>"$ENGINE_DIR/payment.err") || true
  wait_until 60 "the payment" payment_stored "$ids/payment" || true
  R[$e.payment]="${payment%% *}, $(tool payments "$DB_CS" "$ids/payment" k1 "$ENCRYPTION_KEY" 2>&1 | sed 's/^\([0-9]*\) \([0-9]*\)$/\1 stored, \2 payer document opened/')"
  check "$e" "a payment posted and stored by the new build" "$(payment_stored "$ids/payment"; echo $?)" "${R[$e.payment]}"

  queues >"$ENGINE_DIR/queues-after.txt"
  local leftover
  leftover=$(awk -F'\t' '$2 != 0 { printf "%s=%s ", $1, $2 }' "$ENGINE_DIR/queues-after.txt")
  check "$e" "every queue empty at the end" "$([ -z "$leftover" ]; echo $?)" "${leftover:-all $(wc -l <"$ENGINE_DIR/queues-after.txt") queues at 0}"

  tool journal "$DB_CS" >"$ENGINE_DIR/journal-after.txt"
  local kept added before=${R[$e.journal_before]}
  kept=$(head -n "$before" "$ENGINE_DIR/journal-after.txt" | cmp -s - "$ENGINE_DIR/journal-before.txt"; echo $?)
  added=$(tail -n +"$((before + 1))" "$ENGINE_DIR/journal-after.txt" | cut -d'|' -f1 | sed 's/.*Migrations\.//' | paste -sd, -)
  R[$e.journal_after]=$(wc -l <"$ENGINE_DIR/journal-after.txt") R[$e.journal_added]=$added
  R[$e.journal_names]=$(cut -d'|' -f1 "$ENGINE_DIR/journal-before.txt" | sed 's/.*Migrations\.[A-Za-z]*\.//' | paste -sd, -)
  local expected_added=Postgres.0005_payments.sql
  [ "$e" = postgres ] || expected_added=SqlServer.0003_payments.sql
  check "$e" "journal kept its rows and gained only the payments migration" \
    "$([ "$kept" = 0 ] && [ "$added" = "$expected_added" ]; echo $?)" \
    "${R[$e.journal_before]} rows before (${R[$e.journal_names]}), ${R[$e.journal_after]} after: + $added; old rows unchanged: $([ "$kept" = 0 ] && echo yes || echo NO)"

  # Warnings of the new build (the old build's are the failures made on purpose), and channel errors anywhere.
  grep -hE -A1 '^[0-9:. ]*(warn|fail|crit):' "$LOGS/new-consumer.log" "$LOGS/new-api.log" | grep -vE '^--$' \
    | sed -E 's/^[0-9:. ]+//' | paste - - | sed -E 's/ +/ /g' | sort | uniq -c >"$ENGINE_DIR/new-warnings.txt" || true
  local refusals
  refusals=$(grep -ciE 'precondition_failed|access_refused|inequivalent arg' "$LOGS"/old-*.log "$LOGS"/new-*.log "$MQ_DIR/log/broker.log" | awk -F: '{ s += $NF } END { print s + 0 }' || true)
  R[$e.refusals]=$refusals
  check "$e" "no PRECONDITION_FAILED / ACCESS_REFUSED (both builds' logs and the broker's)" "$([ "$refusals" = 0 ]; echo $?)" "$refusals lines"
  R[$e.new_warnings]=$(awk '{ s += $1 } END { print s + 0 }' "$ENGINE_DIR/new-warnings.txt")

  # 6. The old permission: the deployed broker's first boot at 52625f5 gave the user ^envio[.]orders([.].+)?$ only.
  say "6. permission experiment: $OLD_PERMISSION"
  stop_services
  ctl set_permissions -p envio envio "$OLD_PERMISSION" "$OLD_PERMISSION" "$OLD_PERMISSION" >/dev/null
  HEALTH_OPTIONAL=1 start_services "$NEW_TREE" experiment
  local order_status payment_status
  order_status=$(tool post "http://127.0.0.1:$API_PORT" "$TOKEN" order 1 "$ids/exp-order" 2>/dev/null | cut -d' ' -f1) || true
  wait_until 60 "the experiment's order" stored_is "$ids/exp-order" 1 || true
  payment_status=$(tool post "http://127.0.0.1:$API_PORT" "$TOKEN" payment 1 "$ids/exp-payment" 2>"$ENGINE_DIR/exp-payment.txt" | cut -d' ' -f1) || true
  sleep 3
  R[$e.exp_order]="$order_status, stored $(stored_count "$ids/exp-order")"
  R[$e.exp_payment]="$payment_status: $(grep -oE '"(title|detail)":"[^"]*"' "$ENGINE_DIR/exp-payment.txt" | cut -d'"' -f4 | paste -sd' ' - || true)"
  R[$e.exp_consumer_retries]=$(grep -c 'Consuming envio.payments failed' "$LOGS/experiment-consumer.log" || true)
  R[$e.exp_consumer]=$(grep -m1 -iE 'access_refused' "$LOGS/experiment-consumer.log" | sed -E 's/^[0-9:. ]+//' | head -c 400 || true)
  R[$e.exp_api]=$(grep -m1 -iE 'access_refused' "$LOGS/experiment-api.log" | sed -E 's/^[0-9:. ]+//' | head -c 400 || true)
  R[$e.exp_consumer_health]=$(curl -s -w ' (%{http_code})' "http://127.0.0.1:$CONSUMER_PORT/health" || true)
  check "$e" "old permission: orders still accepted and stored" "$([ "${R[$e.exp_order]}" = "202, stored 1" ]; echo $?)" "${R[$e.exp_order]}"
  check "$e" "old permission: a payment is refused with 503 naming the refusal" \
    "$([ "$payment_status" = 503 ] && grep -qi 'permissions do not cover' "$ENGINE_DIR/exp-payment.txt"; echo $?)" "${R[$e.exp_payment]}"
  # Widened again while both services run (docs/reliability.md, "A new type on an older broker": no restart needed).
  ctl set_permissions -p envio envio "$NEW_PERMISSION" "$NEW_PERMISSION" "$NEW_PERMISSION" >/dev/null
  payment_status=$(tool post "http://127.0.0.1:$API_PORT" "$TOKEN" payment 1 "$ids/exp-widened" 2>/dev/null | cut -d' ' -f1) || true
  wait_until 60 "the payment after widening" payment_stored "$ids/exp-widened" || true
  R[$e.exp_widened]="$payment_status, $(tool payments "$DB_CS" "$ids/exp-widened" k1 "$ENCRYPTION_KEY" 2>&1 | cut -d' ' -f1) stored"
  check "$e" "permission widened again, no restart: a payment is accepted and stored" \
    "$([ "${R[$e.exp_widened]}" = "202, 1 stored" ]; echo $?)" "${R[$e.exp_widened]}"
  stop_services

  # This engine's broker and database go; the next engine gets its own.
  stop_group "$MQ_PID" TERM 60
  [ "$e" = postgres ] && stop_group "$PG_PID" INT 30
  [ "$e" = sqlserver ] && "$TDS/stop" --dir "$ENGINE_DIR/tds" >/dev/null 2>&1
  return 0
}

payment_stored() { [ "$(tool payments "$DB_CS" "$1" k1 "$ENCRYPTION_KEY" 2>/dev/null)" = "1 1" ]; }

# --- main ------------------------------------------------------------------------------------------------------------

[ "$(id -u)" = 0 ] || die "run as root (PostgreSQL runs through setpriv as the postgres account)"
started=$SECONDS
prepare_builds
say "old build $OLD_COMMIT, new build $NEW_COMMIT (work directory $WORK)"
for engine in "${ENGINES[@]}"; do
  run_engine "$engine"
done

# --- summary ---------------------------------------------------------------------------------------------------------

echo
echo "In-place upgrade check, $(date -u +%Y-%m-%d), old build $(git -C "$REPO" log -1 --format='%h %s' "$OLD_COMMIT" | cut -c1-70)…,"
echo "new build $(git -C "$REPO" log -1 --format='%h %s' "$NEW_COMMIT" | cut -c1-70)…; $((SECONDS - started)) s in all"
echo
header="| Figure |" rule="|---|"
for e in "${ENGINES[@]}"; do header+=" $e |"; rule+="---|"; done
echo "$header"; echo "$rule"
row() { local line="| $1 |"; for e in "${ENGINES[@]}"; do line+=" ${R[$e.$2]:-} |"; done; echo "$line"; }
row "Orders stored by the old build" old_stored
row "At the switch: work queue" q_work
row "At the switch: retry queue 2 s" q_short
row "At the switch: retry queue 45 s" q_long
row "At the switch: error queue" q_error
row "Work queue's orders stored (s after the switch)" waiting_after
row "Retry queue's orders stored (s after the switch)" retry_after
row "Replayed from the error queue" replayed
row "Orders posted" total
row "Stored: rows, distinct ids, item rows, distinct contents" all_stored
row "Sealed values opened: old build's rows" opened_old
row "Sealed values opened: all rows" opened_all
row "Journal rows before the switch" journal_before
row "Journal rows after" journal_after
row "Journal gained" journal_added
row "PRECONDITION_FAILED / ACCESS_REFUSED lines" refusals
row "New build's warning lines" new_warnings
row "Payment (status, stored, opened)" payment
row "Old permission: order" exp_order
row "Old permission: payment" exp_payment
row "Old permission: consumer says" exp_consumer
row "Old permission: API says" exp_api
row "Old permission: consumer's 'Consuming envio.payments failed' lines" exp_consumer_retries
row "Old permission: consumer /health" exp_consumer_health
row "Widened again, no restart: payment" exp_widened
echo
for e in "${ENGINES[@]}"; do
  if [ -s "$WORK/$e/new-warnings.txt" ]; then
    echo "New build's warnings on $e (count, line):"
    sed 's/^/  /' "$WORK/$e/new-warnings.txt" | cut -c1-400
  else
    echo "New build's warnings on $e: none"
  fi
done
echo
printf '%s\n' "${CHECKS[@]}" | awk -F'|' '{ printf "%-4s %-9s %s: %s\n", $3, $1, $2, $4 }'
echo
if [ "$FAILED" = 0 ]; then echo "upgrade check: PASS"; else echo "upgrade check: FAIL"; fi
exit "$FAILED"
