#!/usr/bin/env bash
# A throw-away PostgreSQL cluster for the tests: its own data dir, listening on a unix
# socket only (no port to collide on), trusted local connections, no fsync. Idempotent:
# initdb only when the cluster is new, pg_ctl start only when it is not running. Prints
# the SQLAlchemy URL of its `postgres` database on stdout (messages go to stderr).
#   env: PIER_POSTGRES_DIR (default /tmp/pier-postgres), PIER_POSTGRES_WAIT_S (default 30)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=${PIER_POSTGRES_DIR:-/tmp/pier-postgres}
wait_s=${PIER_POSTGRES_WAIT_S:-30}
data=$root/data
sockets=$root/socket
log=$root/server.log

say() { echo "start-postgres: $*" >&2; }
die() { echo "start-postgres: error: $*" >&2; exit 1; }

"$here/install-system-packages.sh" test >&2
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -n "$bin" ] || die "no PostgreSQL server under /usr/lib/postgresql (apt-get install postgresql)"

# initdb and the server refuse to run as root: they run as the postgres user then.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

mkdir -p "$root"
exec 9>"$root.lock"
flock 9  # two sessions starting at once: one initialises, the other waits (the server
         # must not inherit fd 9: it would hold the lock for as long as it runs)

if [ ! -s "$data/PG_VERSION" ]; then
  say "initialising a cluster in $data"
  rm -rf "$data" "$sockets"
  mkdir -p "$data" "$sockets"
  [ "$(id -u)" -eq 0 ] && chown postgres: "$data" "$sockets"
  chmod 700 "$data"
  as_owner "$bin/initdb" -D "$data" -U postgres --auth=trust --no-locale -E UTF8 >"$root/initdb.log" \
    || { tail -n 20 "$root/initdb.log" >&2; die "initdb failed"; }
  cat >>"$data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$sockets'
max_connections = 300
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
fi

if as_owner "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
  say "the cluster in $data runs already"
else
  say "starting PostgreSQL (log: $log)"
  touch "$log"
  [ "$(id -u)" -eq 0 ] && chown postgres: "$log"
  as_owner "$bin/pg_ctl" -D "$data" -l "$log" -w -t "$wait_s" start >/dev/null 9>&- \
    || { tail -n 20 "$log" >&2; die "PostgreSQL did not start within ${wait_s} s"; }
fi
echo "postgresql+psycopg://postgres@/postgres?host=$sockets"
