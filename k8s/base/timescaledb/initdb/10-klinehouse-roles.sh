#!/bin/bash
# First start of the TimescaleDB container (docker-entrypoint-initdb.d): the login
# roles the services connect as, and Airflow's metadata database. Passwords come
# from the environment (a Secret in Kubernetes, .env in docker-compose).
# The NOLOGIN roles klinehouse_loader/klinehouse_reader are the ones the
# migrations grant to (`klinehouse db upgrade` creates them too when missing).
#   klinehouse_ingest  member of klinehouse_loader: the websocket ingester (writes raw)
#   klinehouse_api     member of klinehouse_reader: the gRPC service (reads marts, ml)
#   airflow            owner of the database `airflow` (Airflow's metadata)
# Idempotent: what exists is left alone (rotate a password with ALTER ROLE).
set -euo pipefail
: "${KLINEHOUSE_INGEST_PASSWORD:?KLINEHOUSE_INGEST_PASSWORD is not set}"
: "${KLINEHOUSE_API_PASSWORD:?KLINEHOUSE_API_PASSWORD is not set}"
: "${AIRFLOW_DB_PASSWORD:?AIRFLOW_DB_PASSWORD is not set}"

psql -v ON_ERROR_STOP=1 --no-psqlrc --quiet \
     --username "$POSTGRES_USER" --dbname "${POSTGRES_DB:-$POSTGRES_USER}" \
     -v ingest_pw="$KLINEHOUSE_INGEST_PASSWORD" \
     -v api_pw="$KLINEHOUSE_API_PASSWORD" \
     -v airflow_pw="$AIRFLOW_DB_PASSWORD" <<'SQL'
SELECT format('CREATE ROLE %I NOLOGIN', name)
  FROM unnest(ARRAY['klinehouse_loader', 'klinehouse_reader']) AS name
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = name) \gexec
SELECT format('CREATE ROLE klinehouse_ingest LOGIN PASSWORD %L IN ROLE klinehouse_loader', :'ingest_pw')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'klinehouse_ingest') \gexec
SELECT format('CREATE ROLE klinehouse_api LOGIN PASSWORD %L IN ROLE klinehouse_reader', :'api_pw')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'klinehouse_api') \gexec
SELECT format('CREATE ROLE airflow LOGIN PASSWORD %L', :'airflow_pw')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'airflow') \gexec
SELECT 'CREATE DATABASE airflow OWNER airflow'
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'airflow') \gexec
SQL
