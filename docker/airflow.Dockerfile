# syntax=docker/dockerfile:1.7
# Airflow 3 with astronomer-cosmos, dbt and the klinehouse project: the image of
# the official Airflow Helm chart (k8s/airflow/values.yaml) and of docker-compose.
# Build from the repository root:
#   docker build -f docker/airflow.Dockerfile -t klinehouse-airflow .
# The Airflow version is pinned to the one pyproject.toml allows (3.3.x); pin the
# base digest too (`apache/airflow:3.3.2-python3.11@sha256:…`) in your mirror.

# Stage 1: the project tree as it runs in Airflow, without tests, benches or caches.
FROM python:3.11.13-slim-bookworm AS source
WORKDIR /opt/klinehouse
COPY pyproject.toml README.md ./
COPY klinehouse/ klinehouse/
COPY extract/ extract/
COPY transform/ transform/
COPY expectations/ expectations/
COPY training/ training/
COPY inference/ inference/
COPY app/ app/
COPY protos/ protos/
COPY dbt_project/ dbt_project/
COPY dags/ dags/
RUN find . -name '__pycache__' -prune -exec rm -rf {} + \
    && rm -rf dbt_project/target dbt_project/logs dbt_project/dbt_packages expectations/gx/uncommitted

# Stage 2: the official image plus the project, installed as the airflow user.
FROM apache/airflow:3.3.2-python3.11 AS runtime
LABEL org.opencontainers.image.title="klinehouse-airflow" \
      org.opencontainers.image.description="Airflow 3 + cosmos + dbt with the klinehouse DAGs" \
      org.opencontainers.image.source="https://github.com/klinehouse/klinehouse" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
COPY --from=source --chown=airflow:0 /opt/klinehouse /opt/klinehouse
# Pinning apache-airflow to the image's own version keeps pip from up- or
# downgrading Airflow while it resolves the project's dependencies.
# The project is installed in place: dbt_project/, migrations and the DAGs
# resolve relative to the source tree (klinehouse.paths.REPO_ROOT).
# `dbt parse` then writes the manifest cosmos renders the dbt DAG from; it reads
# no database (the URL only completes the profile).
RUN pip install "apache-airflow==${AIRFLOW_VERSION}" -e "/opt/klinehouse[orchestration]" \
    && KLINEHOUSE_HOME=/tmp/klinehouse-build \
       DBT_TARGET_PATH=/opt/klinehouse/build/dbt-target \
       KLINEHOUSE_DATABASE_URL=postgresql://build@127.0.0.1:1/klinehouse \
       python -c "from transform.runner import parse_manifest; parse_manifest()" \
    && test -s /opt/klinehouse/build/dbt-target/manifest.json \
    && rm -rf /tmp/klinehouse-build
# The DAGs ship in the image (no git-sync, no DAG volume): one artefact per release.
COPY --from=source --chown=airflow:0 /opt/klinehouse/dags/ /opt/airflow/dags/
COPY --chmod=0555 docker/airflow-entrypoint.sh /opt/klinehouse/docker/airflow-entrypoint.sh
# Writable paths under /tmp so that the containers run with a read-only root
# filesystem: dbt's target/ (the manifest is copied there at start) and logs/,
# cosmos' cache, klinehouse's state.
ENV DBT_LOG_PATH=/tmp/dbt/logs \
    AIRFLOW__COSMOS__CACHE_DIR=/tmp/cosmos \
    AIRFLOW__COSMOS__ENABLE_TELEMETRY=False \
    MPLCONFIGDIR=/tmp/matplotlib \
    PYTHONDONTWRITEBYTECODE=1 \
    KLINEHOUSE_HOME=/tmp/klinehouse
USER 50000
ENTRYPOINT ["/usr/bin/dumb-init", "--", "/opt/klinehouse/docker/airflow-entrypoint.sh"]
