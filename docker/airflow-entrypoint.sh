#!/usr/bin/env bash
# Entry point of klinehouse-airflow (every Airflow component and every task pod).
# cosmos renders the dbt DAG from manifest.json, which klinehouse looks for in dbt's
# target directory ($DBT_TARGET_PATH, else $KLINEHOUSE_HOME/dbt/target): a writable
# place (/tmp) under a read-only root filesystem, hence empty when a pod starts.
# The manifest parsed at build time is copied there, then the official image's
# /entrypoint takes over.
set -euo pipefail
baked="${KLINEHOUSE_BAKED_DBT_TARGET:-/opt/klinehouse/build/dbt-target}"
next_entrypoint="${KLINEHOUSE_NEXT_ENTRYPOINT:-/entrypoint}"
target="${DBT_TARGET_PATH:-${KLINEHOUSE_HOME:-/tmp/klinehouse}/dbt/target}"
if [ ! -e "$target/manifest.json" ]; then
    mkdir -p "$target"
    cp "$baked/manifest.json" "$baked/partial_parse.msgpack" "$target/"
fi
exec "$next_entrypoint" "$@"
