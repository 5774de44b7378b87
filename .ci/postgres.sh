#!/usr/bin/env bash
# A scratch PostgreSQL server for the test suite: 127.0.0.1 only, a data directory of its
# own (under /tmp, or $OKR_PG_TMPDIR), trust authentication, durability off (fsync) for
# speed, run as a non-root user. `make test` wraps pytest in `run`, so the server is
# stopped even when a test fails, and each run gets its own port and directory (two runs,
# even at once, never collide; a server whose run was killed is reaped by the next one).
#
#   .ci/postgres.sh run CMD...     start a server, run CMD with OKR_TEST_POSTGRES_URL and
#                                  OKR_REQUIRE_POSTGRES=1 set, stop the server, exit with CMD's code
#   .ci/postgres.sh start [FILE]   start a server, print its URL, write its settings to FILE
#                                  (default .okr/postgres.env)
#   .ci/postgres.sh stop [FILE]    stop the server FILE describes and delete its data
#
# Where PostgreSQL is missing and we are root, it is installed with apt-get. As root the
# server runs as $OKR_PG_OS_USER (default: `postgres`, created when missing). The server
# is reached as role `okr`, database `okr_test`.
set -euo pipefail

DEFAULT_STATE=.okr/postgres.env
ROLE=okr
DATABASE=okr_test

say() { echo "postgres.sh: $*" >&2; }
die() {
    say "$*"
    exit 1
}

find_bin() {
    local dir
    if [[ -n "${PG_BIN:-}" && -x "$PG_BIN/initdb" ]]; then
        echo "$PG_BIN"
        return 0
    fi
    for dir in $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V -r); do
        if [[ -x "$dir/initdb" && -x "$dir/pg_ctl" ]]; then
            echo "$dir"
            return 0
        fi
    done
    if command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then
        dirname "$(command -v initdb)"
        return 0
    fi
    return 1
}

install_postgres() {
    [[ $(id -u) -eq 0 ]] || die "PostgreSQL (initdb, pg_ctl) is not installed; install it, e.g. apt-get install postgresql"
    command -v apt-get >/dev/null || die "PostgreSQL is not installed and apt-get is not available"
    say "installing PostgreSQL with apt-get"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
}

# The OS user the server runs as: PostgreSQL refuses to run as root.
server_user() {
    if [[ $(id -u) -ne 0 ]]; then
        id -un
        return
    fi
    local user=${OKR_PG_OS_USER:-postgres}
    if ! id "$user" >/dev/null 2>&1; then
        useradd --system --user-group --no-create-home --shell /usr/sbin/nologin "$user" >&2
    fi
    echo "$user"
}

# Runs from / so that a working directory the server user may not enter (a clone under
# /root, say) does not stop initdb or pg_ctl; every path they get is absolute.
as_server_user() {
    if [[ $(id -u) -ne 0 ]]; then
        "$@"
    elif command -v runuser >/dev/null; then
        (cd / && runuser -u "$SERVER_USER" -- "$@")
    else
        (cd / && setpriv --reuid="$SERVER_USER" --regid="$(id -g "$SERVER_USER")" --init-groups -- "$@")
    fi
}

# Where scratch servers live: as root, /tmp (the server user must reach it; $TMPDIR may
# be private to root).
scratch_root() {
    if [[ -n "${OKR_PG_TMPDIR:-}" ]]; then
        echo "$OKR_PG_TMPDIR"
    elif [[ $(id -u) -eq 0 ]]; then
        echo /tmp
    else
        echo "${TMPDIR:-/tmp}"
    fi
}

free_port() {
    local python
    python=$(command -v python3 || command -v python)
    "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# A process that exists and is not a zombie (a killed wrapper may linger as one).
alive() {
    if [[ -r "/proc/$1/status" ]]; then
        if grep -q '^State:[[:space:]]*Z' "/proc/$1/status"; then
            return 1
        fi
        return 0
    else
        kill -0 "$1" 2>/dev/null
    fi
}

# Servers whose `run` wrapper died (kill -9, a closed terminal) are stopped and deleted.
reap_orphans() {
    local dir owner
    for dir in "$(scratch_root)"/okr-postgres.*; do
        [[ -f "$dir/owner.pid" ]] || continue
        owner=$(cat "$dir/owner.pid")
        # `start` writes "manual": only `stop` ends such a server.
        [[ "$owner" =~ ^[0-9]+$ ]] || continue
        if ! alive "$owner"; then
            say "stopping an orphaned server in $dir"
            stop_server "$dir" || true
            # ... and forgetting the settings file its `run` left behind.
            grep -l -s -x "OKR_PG_DIR=$dir" "${TMPDIR:-/tmp}"/okr-postgres-env.* | xargs -r rm -f
        fi
    done
}

# start_server STATE_FILE OWNER: start a server, write its settings to STATE_FILE. OWNER is
# the pid of the `run` that will stop it, or "manual".
start_server() {
    local state=$1 owner=$2 port="" base attempt
    PG_BIN=$(find_bin || { install_postgres && find_bin; }) || die "initdb not found after installing PostgreSQL"
    SERVER_USER=$(server_user)
    reap_orphans
    base=$(mktemp -d "$(scratch_root)/okr-postgres.XXXXXX")
    mkdir -p "$(dirname "$state")"
    echo "OKR_PG_DIR=$base" >"$state"
    echo "$owner" >"$base/owner.pid"
    echo "$SERVER_USER" >"$base/user"
    echo "$PG_BIN" >"$base/bin"
    chmod 755 "$base"
    mkdir -m 700 "$base/data"
    chown "$SERVER_USER" "$base" "$base/data"
    if ! as_server_user "$PG_BIN/initdb" --pgdata="$base/data" --username="$ROLE" --auth=trust \
        --encoding=UTF8 --no-locale --no-sync >"$base/initdb.log" 2>&1; then
        cat "$base/initdb.log" >&2
        give_up "$state" "initdb failed"
    fi
    for attempt in 1 2 3; do
        port=$(free_port)
        if as_server_user "$PG_BIN/pg_ctl" --pgdata="$base/data" --log="$base/server.log" \
            --wait --timeout=60 --silent start \
            -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$base -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
            >&2; then
            break
        fi
        say "the server did not start on port $port (attempt $attempt)"
        port=""
    done
    if [[ -z "$port" ]]; then
        cat "$base/server.log" >&2 || true
        give_up "$state" "could not start PostgreSQL"
    fi
    "$PG_BIN/createdb" --host=127.0.0.1 --port="$port" --username="$ROLE" "$DATABASE" ||
        give_up "$state" "could not create database $DATABASE"
    echo "OKR_TEST_POSTGRES_URL=postgresql+psycopg2://$ROLE@127.0.0.1:$port/$DATABASE" >>"$state"
    say "PostgreSQL $("$PG_BIN/pg_ctl" --version | awk '{print $3}') on 127.0.0.1:$port (data in $base)"
}

# give_up STATE_FILE MESSAGE: remove what a failed start left, and fail.
give_up() {
    stop_server "$(state_dir "$1")" || true
    rm -f "$1"
    die "$2"
}

# stop_server DIR: stop the server whose scratch directory is DIR, then delete DIR.
stop_server() {
    local base=$1
    [[ -d "$base" ]] || return 0
    SERVER_USER=$(cat "$base/user" 2>/dev/null || id -un)
    PG_BIN=$(cat "$base/bin" 2>/dev/null || find_bin)
    if [[ -f "$base/data/postmaster.pid" ]]; then
        as_server_user "$PG_BIN/pg_ctl" --pgdata="$base/data" --mode=fast --wait --silent stop >&2 ||
            as_server_user "$PG_BIN/pg_ctl" --pgdata="$base/data" --mode=immediate --wait --silent stop >&2 ||
            true
    fi
    rm -rf "$base"
}

# The `run` command's exit trap: stop its server, whatever happened.
stop_after_run() {
    local state=$1 dir
    dir=$(state_dir "$state" 2>/dev/null || true)
    if [[ -n "$dir" ]]; then
        stop_server "$dir" || true
        say "stopped the server"
    fi
    rm -f "$state"
}

state_dir() {
    # OKR_PG_DIR from a state file, without sourcing anything else from it.
    sed -n 's/^OKR_PG_DIR=//p' "$1"
}

command=${1:-}
shift || true
case "$command" in
start)
    state=${1:-$DEFAULT_STATE}
    if [[ -f "$state" ]]; then
        say "$state exists: stopping the server it describes first"
        stop_server "$(state_dir "$state")" || true
        rm -f "$state"
    fi
    # No wrapper owns a server started this way: `stop` must be called.
    start_server "$state" manual
    sed -n 's/^OKR_TEST_POSTGRES_URL=//p' "$state"
    ;;
stop)
    state=${1:-$DEFAULT_STATE}
    [[ -f "$state" ]] || die "$state not found: no server to stop"
    stop_server "$(state_dir "$state")"
    rm -f "$state"
    ;;
run)
    [[ $# -gt 0 ]] || die "usage: $0 run CMD..."
    state=$(mktemp "${TMPDIR:-/tmp}/okr-postgres-env.XXXXXX")
    trap 'stop_after_run "$state"' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM HUP
    start_server "$state" $$
    url=$(sed -n 's/^OKR_TEST_POSTGRES_URL=//p' "$state")
    status=0
    OKR_TEST_POSTGRES_URL=$url OKR_REQUIRE_POSTGRES=1 "$@" || status=$?
    exit "$status"
    ;;
*)
    die "usage: $0 run CMD... | start [STATE_FILE] | stop [STATE_FILE]"
    ;;
esac
