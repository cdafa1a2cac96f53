"""docker-compose.yml: the one-host stack is complete, pinned, hardened, and only
references its secrets (from .env)."""

from __future__ import annotations

import copy
from typing import Any

import yaml

from .checks import REPO, compose_violations

OWN_IMAGES = ("klinehouse-inference", "klinehouse-stream")


def load() -> dict[str, Any]:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def test_compose_runs_the_whole_stack() -> None:
    services = load()["services"]
    assert services["timescaledb"]["image"].startswith("timescale/timescaledb:")
    assert "shared_preload_libraries=timescaledb" in services["timescaledb"]["command"]
    assert services["minio"]["image"].startswith("minio/minio:")
    assert services["migrate"]["command"] == ["db", "upgrade"]
    assert services["ingester"]["command"].startswith("stream ")
    assert services["grpc"]["environment"]["KLINEHOUSE_GRPC_ADDRESS"] == "0.0.0.0:50051"
    assert {"airflow-api-server", "airflow-scheduler", "airflow-dag-processor"} <= set(services)
    for name in ("ingester", "grpc"):
        assert (
            services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        )
    # the initdb script the compose file mounts is the one Kubernetes uses
    mount = next(v for v in services["timescaledb"]["volumes"] if "initdb" in v)
    assert (REPO / mount.split(":")[0]).is_dir()


def test_compose_is_pinned_hardened_and_references_secrets() -> None:
    assert compose_violations(load(), OWN_IMAGES) == []
    example = (REPO / "docker/compose.env.example").read_text()
    for line in example.splitlines():
        key, _, value = line.partition("=")
        if "PASSWORD" in key or "TOKEN" in key or "SECRET" in key:
            assert value == "", f"{key} has a value in the committed example"


def test_compose_check_catches_inlined_secrets_and_weak_services() -> None:
    compose = copy.deepcopy(load())
    compose["services"]["grpc"]["environment"]["KLINEHOUSE_GRPC_TOKEN"] = "hunter2"
    compose["services"]["ingester"]["environment"]["KLINEHOUSE_DATABASE_URL"] = (
        "postgresql://klinehouse_ingest:hunter2@timescaledb:5432/klinehouse"
    )
    del compose["services"]["grpc"]["read_only"]
    compose["services"]["ingester"]["user"] = "root"
    compose["services"]["minio"]["image"] = "minio/minio:latest"
    problems = "\n".join(compose_violations(compose, OWN_IMAGES))
    assert "service grpc: KLINEHOUSE_GRPC_TOKEN inlines a secret" in problems
    assert "service ingester: KLINEHOUSE_DATABASE_URL inlines a secret" in problems
    assert "service grpc: root filesystem is not read_only" in problems
    assert "service ingester: runs as root" in problems
    assert "service minio: image 'minio/minio:latest' is not pinned" in problems
