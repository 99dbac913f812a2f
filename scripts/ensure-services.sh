#!/usr/bin/env bash
# Makes sure PostgreSQL and Redis answer on 127.0.0.1, starting (or installing) them if needed,
# and writes the URLs to .ci/services.env. Used by .ci/run; safe to run by hand.
set -euo pipefail
cd "$(dirname "$0")/.."

PG_URL="${DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/test}"
REDIS="${REDIS_URL:-redis://127.0.0.1:6379}"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_install() {
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
if ! command -v pg_isready >/dev/null || ! pg_up; then
  command -v pg_ctlcluster >/dev/null || apt_install postgresql
  cluster_version=$(ls /etc/postgresql | sort -V | tail -1)
  as_root pg_ctlcluster --skip-systemctl-redirect "$cluster_version" main start || true
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
  pg_up || { echo "PostgreSQL did not start" >&2; exit 1; }
fi
# A freshly installed cluster asks for a password over TCP; the tests need one that works.
if ! psql "$PG_URL" -Atc 'select 1' >/dev/null 2>&1; then
  as_root su postgres -c "psql -qc \"ALTER USER postgres PASSWORD 'postgres'\""
  PG_URL="postgresql://postgres:postgres@127.0.0.1:5432/test"
  psql "postgresql://postgres:postgres@127.0.0.1:5432/postgres" -qc 'CREATE DATABASE test' 2>/dev/null || true
fi
psql "$PG_URL" -Atc 'select 1' >/dev/null

redis_up() { redis-cli -u "$REDIS" ping 2>/dev/null | grep -q PONG; }
if ! command -v redis-cli >/dev/null || ! redis_up; then
  command -v redis-server >/dev/null || apt_install redis-server
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  for _ in $(seq 1 30); do redis_up && break; sleep 1; done
  redis_up || { echo "Redis did not start" >&2; exit 1; }
fi

printf 'export DATABASE_URL=%q\nexport REDIS_URL=%q\n' "$PG_URL" "$REDIS" > .ci/services.env
echo "PostgreSQL: $PG_URL  Redis: $REDIS"
