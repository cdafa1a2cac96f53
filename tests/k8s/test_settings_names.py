"""Every KLINEHOUSE_* variable the deployment sets is one klinehouse reads: a typo
(KLINEHOUSE_GRPC_ADRESS) would otherwise be ignored silently by pydantic-settings."""

from __future__ import annotations

from typing import Any

import yaml

from klinehouse.settings import Settings

from .checks import K8S, OVERLAYS, REPO, kubectl, kustomize_build, pod_spec

# Read by klinehouse outside Settings, or only expanded into URLs by Kubernetes.
NOT_SETTINGS = {
    "KLINEHOUSE_HOME": "klinehouse.settings.configured_home(): paths.home() reads it per call",
    "KLINEHOUSE_INGEST_PASSWORD": "expanded into the ingester's database URL",
    "KLINEHOUSE_API_PASSWORD": "expanded into the gRPC service's database URL",
}


def unknown(names: set[str]) -> set[str]:
    known = {
        str(field.validation_alias or f"KLINEHOUSE_{name}").upper()
        for name, field in Settings.model_fields.items()
    }
    return {n for n in names if n.startswith("KLINEHOUSE_")} - known - set(NOT_SETTINGS)


def manifest_names() -> set[str]:
    names: set[str] = set()
    if kubectl() is None:
        return names
    for overlay in OVERLAYS:
        for doc in kustomize_build(K8S / overlay):
            if doc["kind"] == "ConfigMap":
                names |= set(doc.get("data", {}))
            for container in (pod_spec(doc) or {}).get("containers", []):
                names |= {var["name"] for var in container.get("env", [])}
    return names


def compose_names() -> set[str]:
    compose: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    names: set[str] = set()
    for service in compose["services"].values():
        env = service.get("environment", {})
        names |= set(env) if isinstance(env, dict) else {e.split("=")[0] for e in env}
    return names


def values_names() -> set[str]:
    names: set[str] = set()
    for path in (K8S / "airflow").glob("values*.yaml"):
        values = yaml.safe_load(path.read_text())
        names |= {var["name"] for var in values.get("env", [])}
        names |= {var["envName"] for var in values.get("secret", [])}
    return names


def test_every_klinehouse_variable_is_a_setting() -> None:
    names = manifest_names() | compose_names() | values_names()
    assert "KLINEHOUSE_GRPC_ADDRESS" in names and "KLINEHOUSE_LAKE_URI" in names
    assert unknown(names) == set()


def test_a_misspelt_variable_is_caught() -> None:
    assert unknown({"KLINEHOUSE_GRPC_ADRESS", "KLINEHOUSE_LAKE_URI"}) == {"KLINEHOUSE_GRPC_ADRESS"}
