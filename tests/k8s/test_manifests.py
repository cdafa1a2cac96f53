"""`kubectl kustomize` builds every overlay; the result validates against the Kubernetes
JSON schemas (kubernetes-validate, offline) and meets our hardening policy."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from .checks import (
    K8S,
    KUBERNETES_VERSIONS,
    OVERLAYS,
    KustomizeError,
    find,
    kubectl,
    kustomize_build,
    network_violations,
    secret_violations,
    workload_violations,
)

pytestmark = pytest.mark.skipif(
    kubectl() is None, reason="kubectl is not installed: cannot run `kubectl kustomize`"
)

_RENDERED: dict[str, list[dict[str, Any]]] = {}


def rendered(overlay: str) -> list[dict[str, Any]]:
    if overlay not in _RENDERED:
        _RENDERED[overlay] = kustomize_build(K8S / overlay)
    return copy.deepcopy(_RENDERED[overlay])


def schema_errors(docs: list[dict[str, Any]], version: str) -> list[str]:
    if version == "latest":
        version = kubernetes_validate.utils.latest_version()
    errors = []
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = "/".join(str(p) for p in exc.path)
            errors.append(f"{doc['kind']}/{doc['metadata']['name']} at {where}: {exc.message}")
    return errors


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_builds_and_validates(overlay: str) -> None:
    docs = rendered(overlay)
    kinds = {d["kind"] for d in docs}
    assert {"StatefulSet", "Deployment", "Service", "Job", "NetworkPolicy"} <= kinds
    for version in KUBERNETES_VERSIONS:
        assert schema_errors(docs, version) == [], f"{overlay} against Kubernetes {version}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_meets_hardening_policy(overlay: str) -> None:
    docs = rendered(overlay)
    assert workload_violations(docs) == []
    assert secret_violations(docs) == []
    assert network_violations(docs) == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_components_are_wired_as_documented(overlay: str) -> None:
    docs = rendered(overlay)
    db = find(docs, "StatefulSet", "timescaledb")
    container = db["spec"]["template"]["spec"]["containers"][0]
    assert container["image"].startswith("timescale/timescaledb:")
    assert "shared_preload_libraries=timescaledb" in container["args"]
    assert db["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"]

    grpc = find(docs, "Deployment", "klinehouse-grpc")["spec"]["template"]["spec"]["containers"][0]
    assert grpc["args"] == ["serve"]
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert grpc[probe]["grpc"]["port"] == 50051, probe
    env = {e["name"]: e for e in grpc["env"]}
    assert env["KLINEHOUSE_GRPC_ADDRESS"]["value"] == "0.0.0.0:50051"
    assert env["KLINEHOUSE_GRPC_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "klinehouse-grpc"
    assert env["KLINEHOUSE_READER_DATABASE_URL"]["value"].startswith("postgresql://klinehouse_api:")
    service = find(docs, "Service", "klinehouse-grpc")
    assert service["spec"]["ports"][0]["port"] == 50051

    job = find(docs, "Job", "klinehouse-db-upgrade")["spec"]["template"]["spec"]["containers"][0]
    assert job["args"] == ["db", "upgrade"]

    ingesters = [
        d
        for d in docs
        if d["kind"] == "Deployment" and d["metadata"]["name"].startswith("klinehouse-ingester")
    ]
    assert ingesters
    for ingester in ingesters:
        spec = ingester["spec"]["template"]["spec"]["containers"][0]
        assert spec["args"][0] == "stream" and "--health-port" in spec["args"]
        assert spec["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert ingester["spec"]["strategy"]["type"] == "Recreate"


def test_prod_shards_the_ingester_by_symbol_and_autoscales_grpc() -> None:
    docs = rendered("overlays/prod")
    shards = {
        d["metadata"]["name"]: d
        for d in docs
        if d["kind"] == "Deployment" and "ingester" in d["metadata"]["name"]
    }
    assert len(shards) >= 2
    selectors = [
        tuple(sorted(d["spec"]["selector"]["matchLabels"].items())) for d in shards.values()
    ]
    assert len(set(selectors)) == len(selectors), "two shards share a selector"
    symbol_sets = []
    for d in shards.values():
        args = d["spec"]["template"]["spec"]["containers"][0]["args"]
        symbol_sets.append({args[i + 1] for i, a in enumerate(args) if a == "--symbol"})
    union = set().union(*symbol_sets)
    assert sum(len(s) for s in symbol_sets) == len(union), "a symbol is ingested by two shards"
    hpa = find(docs, "HorizontalPodAutoscaler", "klinehouse-grpc")
    assert hpa["spec"]["minReplicas"] >= 2
    assert "replicas" not in find(docs, "Deployment", "klinehouse-grpc")["spec"]
    ingress = find(docs, "Ingress", "klinehouse-grpc")
    assert ingress["spec"]["tls"][0]["secretName"] == "klinehouse-grpc-tls"
    assert not any(d["metadata"]["name"] == "minio" for d in docs), "prod uses external S3"
    assert any(d["metadata"]["name"] == "minio" for d in rendered("overlays/dev"))


# --- the checks can fail -------------------------------------------------------------------


def test_schema_validation_catches_a_broken_manifest() -> None:
    docs = rendered("overlays/dev")
    grpc = find(docs, "Deployment", "klinehouse-grpc")
    grpc["spec"]["replicas"] = "two"
    grpc["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["grpc"]["prot"] = 50051
    errors = schema_errors([grpc], "1.30.0")
    assert errors and "Deployment/klinehouse-grpc" in errors[0]
    assert any("replicas" in e for e in errors) or any("prot" in e for e in errors)


def test_policy_catches_a_weakened_workload() -> None:
    docs = rendered("overlays/dev")
    grpc = find(docs, "Deployment", "klinehouse-grpc")
    pod = grpc["spec"]["template"]["spec"]
    del pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"]
    pod["containers"][0]["securityContext"]["capabilities"] = {"add": ["NET_ADMIN"]}
    del pod["containers"][0]["resources"]["limits"]
    pod["securityContext"]["runAsUser"] = 0
    pod["containers"][0]["image"] = "ghcr.io/klinehouse/klinehouse-inference:latest"
    pod["containers"][0]["env"].append({"name": "KLINEHOUSE_GRPC_TOKEN", "value": "hunter2"})
    problems = "\n".join(workload_violations([grpc]))
    for expected in (
        "readOnlyRootFilesystem",
        "capabilities are not dropped",
        "resources.limits.cpu",
        "runAsUser is unset or root",
        "not pinned",
        "KLINEHOUSE_GRPC_TOKEN inlines a value",
    ):
        assert expected in problems


def test_policy_catches_an_inlined_secret_and_an_open_database() -> None:
    docs = rendered("overlays/dev")
    docs.append({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "klinehouse-db"}})
    assert secret_violations(docs) == ["Secret/klinehouse-db is inlined in the manifests"]
    ingester = find(docs, "Deployment", "klinehouse-ingester")
    del ingester["spec"]["template"]["metadata"]["labels"]["klinehouse.io/db-access"]
    policy = find(docs, "NetworkPolicy", "timescaledb")
    policy["spec"]["ingress"].append({"from": [{"namespaceSelector": {}}]})
    problems = "\n".join(network_violations(docs))
    assert "klinehouse-ingester connects to the database but lacks" in problems
    assert "admits {'namespaceSelector': {}}" in problems


def test_a_broken_kustomization_fails_the_build(tmp_path: Path) -> None:
    shutil.copytree(K8S, tmp_path / "k8s")
    kustomization = tmp_path / "k8s/overlays/prod/kustomization.yaml"
    kustomization.write_text(
        kustomization.read_text().replace("path: /spec/replicas", "path: /spec/replicaz")
    )
    with pytest.raises(KustomizeError, match="replicaz"):
        kustomize_build(tmp_path / "k8s/overlays/prod")
