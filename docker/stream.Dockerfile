# syntax=docker/dockerfile:1.7
# The websocket ingester: `klinehouse stream …` with /healthz on :8080 for the probes.
# Build from the repository root:
#   docker build -f docker/stream.Dockerfile -t klinehouse-stream .
# Base images are pinned to an exact patch release; pin the digest too
# (`python:3.11.13-slim-bookworm@sha256:…`) in your registry mirror or with Renovate.

FROM python:3.11.13-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /opt/klinehouse
# Dependencies first, from pyproject.toml alone (stub packages), so that this
# slow layer is reused while only the code changes.
COPY pyproject.toml README.md ./
RUN for pkg in klinehouse extract transform expectations training inference app protos; do \
        mkdir -p "$pkg" && touch "$pkg/__init__.py"; \
    done \
    && pip install "/opt/klinehouse[extract]" \
    && pip uninstall --yes klinehouse
# The project itself, installed in place: migrations, dbt_project/ and the
# protos resolve relative to the source tree (klinehouse.paths.REPO_ROOT).
COPY klinehouse/ klinehouse/
COPY extract/ extract/
COPY transform/ transform/
COPY expectations/ expectations/
COPY training/ training/
COPY inference/ inference/
COPY app/ app/
COPY protos/ protos/
COPY dbt_project/ dbt_project/
RUN pip install --no-deps -e . \
    && python -m compileall -q /opt/klinehouse

FROM python:3.11.13-slim-bookworm AS runtime
LABEL org.opencontainers.image.title="klinehouse-stream" \
      org.opencontainers.image.description="klinehouse websocket ingester: closed candles into raw.binance_klines and the lake" \
      org.opencontainers.image.source="https://github.com/klinehouse/klinehouse" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 klinehouse \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
       --home-dir /tmp --shell /usr/sbin/nologin klinehouse
COPY --from=build /opt/venv /opt/venv
COPY --from=build /opt/klinehouse /opt/klinehouse
# Read-only root filesystem at runtime: everything writable lives under /tmp
# (an emptyDir in Kubernetes, a tmpfs in docker-compose).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    MPLCONFIGDIR=/tmp/matplotlib \
    KLINEHOUSE_HOME=/tmp/klinehouse
WORKDIR /opt/klinehouse
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["klinehouse"]
CMD ["stream", "--market", "spot", "--symbol", "BTCUSDT", "--interval", "1m", "--health-port", "8080", "--health-host", "0.0.0.0"]
