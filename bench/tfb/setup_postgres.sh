#!/usr/bin/env bash
# Create the TechEmpower `hello_world` database on the local PostgreSQL (127.0.0.1:5432):
# user benchmarkdbuser/benchmarkdbpass, tables World (10,000 rows) and Fortune (12 rows),
# from shared/tfb/create-postgres.sql. Idempotent: an existing database is left as it is.
# PGADMIN_URL overrides the admin connection (default postgresql://postgres@127.0.0.1:5432/postgres).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
sql="${TFB_SQL:-$here/../../../shared/tfb/create-postgres.sql}"
[ -f "$sql" ] || sql="/work/shared/tfb/create-postgres.sql"
admin="${PGADMIN_URL:-postgresql://postgres@127.0.0.1:5432/postgres}"
db_url="${admin%/*}/hello_world"

psql -v ON_ERROR_STOP=1 -qAt "$admin" <<'SQL'
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'benchmarkdbuser') THEN
    CREATE ROLE benchmarkdbuser LOGIN PASSWORD 'benchmarkdbpass';
  END IF;
END $$;
SQL
if [ "$(psql -qAt "$admin" -c "SELECT 1 FROM pg_database WHERE datname = 'hello_world'")" != "1" ]; then
  psql -v ON_ERROR_STOP=1 -q "$admin" -c "CREATE DATABASE hello_world OWNER benchmarkdbuser"
  # pg_stat_statements needs preloading; the benchmark does not use it.
  grep -v 'pg_stat_statements' "$sql" | psql -v ON_ERROR_STOP=1 -q "$db_url"
  echo "created hello_world"
else
  echo "hello_world exists"
fi
