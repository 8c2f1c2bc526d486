#!/usr/bin/env bash
# Local backing services for the app and its tests: PostgreSQL, Redis, Azurite.
#
#   scripts/services.sh ensure   start whatever is not answering (idempotent)
#   scripts/services.sh status   one line per service; exit 1 if any is down
#   scripts/services.sh stop     stop the Azurite this script started
#
# The app and the tests expect the default local endpoints, so the ports are
# fixed: PostgreSQL 5432, Redis 6379, Azurite 10000-10002, all on 127.0.0.1.
# A service that already answers there is reused, whoever started it.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HOST=127.0.0.1
PG_PORT=5432
REDIS_PORT=6379
AZURITE_PORTS=(10000 10001 10002)
AZURITE_PKG="$REPO/tools/azurite"
AZURITE_BIN="$AZURITE_PKG/node_modules/.bin/azurite"
AZURITE_DIR="$REPO/.azurite"
AZURITE_LOG="$AZURITE_DIR/azurite.log"
AZURITE_PID="$AZURITE_DIR/azurite.pid"
AZURITE_START_TIMEOUT="${AZURITE_START_TIMEOUT:-60}"
# The admin connection the tests use; checked so a refused login fails here,
# with a hint, rather than deep inside pytest.
PG_ADMIN_DSN="${TEST_POSTGRES_ADMIN_DSN:-postgresql://postgres@$HOST:$PG_PORT/postgres}"

say() { printf '%s\n' "$*"; }
die() {
  printf 'services: %s\n' "$*" >&2
  exit 1
}

# True when something accepts TCP connections on HOST:$1 (bash's /dev/tcp,
# so no netcat or ss is needed).
port_open() {
  timeout 2 bash -c "exec 3<>/dev/tcp/$HOST/$1" 2>/dev/null
}

wait_until() {
  # wait_until SECONDS COMMAND...: poll every half second.
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.5
  done
}

# --- PostgreSQL ---------------------------------------------------------------

pg_up() {
  if command -v pg_isready >/dev/null; then
    pg_isready -q -h "$HOST" -p "$PG_PORT" -t 2
  else
    port_open "$PG_PORT"
  fi
}

pg_login_ok() {
  # -w: never prompt; a password must come from the DSN, PGPASSWORD or ~/.pgpass.
  command -v psql >/dev/null || return 0
  PGCONNECT_TIMEOUT=5 psql -w -q -X -A -t -d "$PG_ADMIN_DSN" -c 'select 1' >/dev/null 2>&1
}

ensure_postgres() {
  if ! pg_up; then
    command -v pg_ctlcluster >/dev/null ||
      die "PostgreSQL is not answering on $HOST:$PG_PORT and pg_ctlcluster is not installed.
  Install it (Debian: apt-get install postgresql) or start a PostgreSQL 15+ server on $HOST:$PG_PORT."
    local conf version started=0
    for conf in /etc/postgresql/*/main; do
      [[ -d "$conf" ]] || continue
      version="$(basename "$(dirname "$conf")")"
      say "PostgreSQL: starting cluster $version/main"
      pg_ctlcluster --skip-systemctl-redirect "$version" main start ||
        die "pg_ctlcluster $version main start failed (see /var/log/postgresql/)"
      started=1
    done
    ((started)) ||
      die "PostgreSQL is not answering on $HOST:$PG_PORT and no cluster exists under /etc/postgresql.
  Create one (Debian: pg_createcluster 15 main) or start a server on $HOST:$PG_PORT."
    wait_until 30 pg_up ||
      die "PostgreSQL did not answer on $HOST:$PG_PORT within 30 s (see /var/log/postgresql/)"
  fi
  pg_login_ok ||
    die "PostgreSQL answers on $HOST:$PG_PORT but refuses '$PG_ADMIN_DSN'.
  The tests connect as user postgres without a password: allow trust auth for
  127.0.0.1 in pg_hba.conf, or set TEST_POSTGRES_ADMIN_DSN (and POSTGRES_DSN)."
  say "PostgreSQL: up on $HOST:$PG_PORT"
}

# --- Redis --------------------------------------------------------------------

redis_up() {
  if command -v redis-cli >/dev/null; then
    [[ "$(timeout 3 redis-cli -h "$HOST" -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]]
  else
    # Speak the one command of the protocol we need, without redis-cli.
    timeout 3 bash -c "exec 3<>/dev/tcp/$HOST/$REDIS_PORT; printf 'PING\r\n' >&3; read -r reply <&3; [[ \$reply == +PONG* ]]" 2>/dev/null
  fi
}

ensure_redis() {
  if ! redis_up; then
    command -v redis-server >/dev/null ||
      die "Redis is not answering on $HOST:$REDIS_PORT and redis-server is not installed.
  Install it (Debian: apt-get install redis-server) or start Redis 7 on $HOST:$REDIS_PORT."
    say "Redis: starting redis-server on $HOST:$REDIS_PORT"
    # Nothing in Redis is the only copy of anything, so no persistence.
    redis-server --daemonize yes --bind "$HOST" --port "$REDIS_PORT" --save "" --appendonly no >/dev/null
    wait_until 15 redis_up || die "Redis did not answer PING on $HOST:$REDIS_PORT within 15 s"
  fi
  say "Redis:      up on $HOST:$REDIS_PORT"
}

# --- Azurite ------------------------------------------------------------------

azurite_ports_open() {
  local port
  for port in "${AZURITE_PORTS[@]}"; do
    port_open "$port" || return 1
  done
}

azurite_ports_partly_open() {
  local port
  for port in "${AZURITE_PORTS[@]}"; do
    port_open "$port" && return 0
  done
  return 1
}

# The pid in our pid file, if that process is alive and still an Azurite.
our_azurite_pid() {
  [[ -f "$AZURITE_PID" ]] || return 1
  local pid
  pid="$(<"$AZURITE_PID")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  # Guard against a recycled pid now belonging to something else.
  grep -qa azurite "/proc/$pid/cmdline" 2>/dev/null || return 1
  printf '%s\n' "$pid"
}

# "Azurite-Blob/3.37.0" from the blob endpoint's Server header, or nothing.
azurite_server() {
  timeout 3 bash -c "exec 3<>/dev/tcp/$HOST/${AZURITE_PORTS[0]}
    printf 'GET /devstoreaccount1?comp=list HTTP/1.0\r\nHost: $HOST\r\n\r\n' >&3
    while IFS= read -r line <&3; do
      line=\${line%\$'\r'}
      [[ -z \$line ]] && break
      [[ \${line,,} == server:* ]] && printf '%s\n' \"\${line#*: }\"
    done" 2>/dev/null || true
}

install_azurite() {
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    die "Azurite needs Node.js 20+ and npm, and they are not on PATH.
  Install them (Debian: apt-get install nodejs npm) and run this again."
  fi
  local major
  major="$(node -p 'process.versions.node.split(".")[0]')"
  ((major >= 20)) || die "Azurite needs Node.js 20 or newer; found $(node --version)"
  say "Azurite: installing the pinned version (npm ci in tools/azurite)"
  # Azurite 3.37 declares node >= 22 but runs on 20; loglevel=error keeps the
  # engine warnings out of the way (real failures still print).
  (cd "$AZURITE_PKG" && npm ci --no-audit --no-fund --loglevel=error) ||
    die "npm ci in $AZURITE_PKG failed"
}

azurite_installed() {
  [[ -x "$AZURITE_BIN" ]] &&
    # npm ci leaves this hidden lock behind; a newer package-lock.json means
    # the pinned version changed since the install.
    [[ ! "$AZURITE_PKG/package-lock.json" -nt "$AZURITE_PKG/node_modules/.package-lock.json" ]]
}

azurite_log_tail() {
  if [[ -f "$AZURITE_LOG" ]]; then
    printf -- '--- last lines of %s ---\n' "$AZURITE_LOG" >&2
    tail -n 20 "$AZURITE_LOG" >&2
  fi
}

ensure_azurite() {
  # Installed even when another Azurite is reused: the tests that stop or break
  # storage start private ones from this checkout's own copy.
  azurite_installed || install_azurite
  if azurite_ports_open; then
    local server
    server="$(azurite_server)"
    if our_azurite_pid >/dev/null; then
      say "Azurite:    up on $HOST:10000-10002 (${server:-unknown server}, started by this script)"
    else
      say "Azurite:    up on $HOST:10000-10002 (${server:-unknown server}, already running; reused)"
    fi
    return 0
  fi
  local pid
  if pid="$(our_azurite_pid)"; then
    # Ours but not (yet) listening on every port: give it the usual time.
    say "Azurite: pid $pid is starting; waiting for its ports"
  else
    if azurite_ports_partly_open; then
      die "some of ports 10000-10002 on $HOST are taken, but not all by a working Azurite.
  Stop whatever holds them (ss -ltnp 'sport >= 10000 and sport <= 10002') and retry."
    fi
    azurite_installed || install_azurite
    mkdir -p "$AZURITE_DIR"
    say "Azurite: starting $("$AZURITE_BIN" --version) (log: ${AZURITE_LOG#"$REPO"/})"
    printf '\n=== %s: services.sh starts Azurite ===\n' "$(date -Is)" >>"$AZURITE_LOG"
    # setsid: its own session, so a Ctrl-C in `make run` or the end of a CI
    # step's process group does not take the emulator down with it.
    setsid "$AZURITE_BIN" --disableTelemetry --skipApiVersionCheck --silent \
      --location "$AZURITE_DIR" \
      --blobHost "$HOST" --queueHost "$HOST" --tableHost "$HOST" \
      </dev/null >>"$AZURITE_LOG" 2>&1 &
    pid=$!
    printf '%s\n' "$pid" >"$AZURITE_PID"
  fi
  local deadline=$((SECONDS + AZURITE_START_TIMEOUT))
  until azurite_ports_open; do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$AZURITE_PID"
      azurite_log_tail
      die "Azurite (pid $pid) exited before listening on $HOST:10000-10002"
    fi
    if ((SECONDS >= deadline)); then
      azurite_log_tail
      die "Azurite (pid $pid) did not listen on $HOST:10000-10002 within ${AZURITE_START_TIMEOUT} s"
    fi
    sleep 0.5
  done
  say "Azurite:    up on $HOST:10000-10002 (pid $pid)"
}

stop_azurite() {
  local pid
  if ! pid="$(our_azurite_pid)"; then
    rm -f "$AZURITE_PID"
    say "Azurite: none started by this script is running; nothing to stop"
    return 0
  fi
  say "Azurite: stopping pid $pid"
  kill -TERM "$pid" 2>/dev/null || true
  if ! wait_until 15 bash -c "! kill -0 $pid 2>/dev/null"; then
    say "Azurite: pid $pid ignored SIGTERM for 15 s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$AZURITE_PID"
}

# --- commands -----------------------------------------------------------------

status() {
  local down=0 pid server
  if pg_up; then say "PostgreSQL: up on $HOST:$PG_PORT"; else
    say "PostgreSQL: DOWN on $HOST:$PG_PORT"
    down=1
  fi
  if redis_up; then say "Redis:      up on $HOST:$REDIS_PORT"; else
    say "Redis:      DOWN on $HOST:$REDIS_PORT"
    down=1
  fi
  if azurite_ports_open; then
    server="$(azurite_server)"
    if pid="$(our_azurite_pid)"; then
      say "Azurite:    up on $HOST:10000-10002 (${server:-unknown server}, pid $pid, started by this script)"
    else
      say "Azurite:    up on $HOST:10000-10002 (${server:-unknown server}, not started by this script)"
    fi
  else
    say "Azurite:    DOWN on $HOST:10000-10002"
    down=1
  fi
  return "$down"
}

usage() {
  say "usage: $0 ensure|start|status|stop"
}

main() {
  case "${1:-}" in
    ensure | start)
      ensure_postgres
      ensure_redis
      ensure_azurite
      ;;
    status) status ;;
    stop) stop_azurite ;;
    -h | --help | help) usage ;;
    *)
      usage >&2
      exit 2
      ;;
  esac
}

main "$@"
