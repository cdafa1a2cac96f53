#!/bin/bash
# First start of the TimescaleDB container (docker-entrypoint-initdb.d): the login
# roles the services connect as, and Airflow's metadata database. Passwords come
# from the environment (a Secret in Kubernetes, .env in docker-compose).
# The NOLOGIN roles klinehouse_loader/klinehouse_reader are the ones the
# migrations grant to (`klinehouse db upgrade` re-creates them only if missing).
#   klinehouse_ingest  member of klinehouse_loader: the websocket ingester (writes raw)
#   klinehouse_api     member of klinehouse_reader: the gRPC service (reads marts, ml)
#   airflow            owner of the database `airflow` (Airflow's metadata)
set -euo pipefail
: "${KLINEHOUSE_INGEST_PASSWORD:?KLINEHOUSE_INGEST_PASSWORD is not set}"
: "${KLINEHOUSE_API_PASSWORD:?KLINEHOUSE_API_PASSWORD is not set}"
: "${AIRFLOW_DB_PASSWORD:?AIRFLOW_DB_PASSWORD is not set}"

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
     -v ingest_pw="$KLINEHOUSE_INGEST_PASSWORD" \
     -v api_pw="$KLINEHOUSE_API_PASSWORD" \
     -v airflow_pw="$AIRFLOW_DB_PASSWORD" <<'SQL'
CREATE ROLE klinehouse_loader NOLOGIN;
CREATE ROLE klinehouse_reader NOLOGIN;
CREATE ROLE klinehouse_ingest LOGIN PASSWORD :'ingest_pw' IN ROLE klinehouse_loader;
CREATE ROLE klinehouse_api LOGIN PASSWORD :'api_pw' IN ROLE klinehouse_reader;
CREATE ROLE airflow LOGIN PASSWORD :'airflow_pw';
CREATE DATABASE airflow OWNER airflow;
SQL
