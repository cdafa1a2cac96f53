"""k8s/airflow/values*.yaml for the official Airflow Helm chart: our image, KubernetesExecutor,
hardened pods that may reach the database, and secrets referenced by name only.

The chart itself is not downloaded here (no Helm repository access on CI): the
values are checked for what klinehouse relies on, not rendered with `helm template`."""

from __future__ import annotations

import copy
from typing import Any

import yaml

from .checks import REPO, SECRETISH, kubectl, kustomize_build

VALUES = REPO / "k8s/airflow/values.yaml"


def load() -> dict[str, Any]:
    return yaml.safe_load(VALUES.read_text())


def violations(values: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    image = values["images"]["airflow"]
    if image["repository"] != "ghcr.io/klinehouse/klinehouse-airflow" or image["tag"] in (
        "",
        "latest",
    ):
        problems.append(f"airflow image {image} is not the pinned klinehouse-airflow image")
    if values.get("postgresql", {}).get("enabled") is not False:
        problems.append("the chart's bundled PostgreSQL is enabled")
    if not values.get("data", {}).get("metadataSecretName"):
        problems.append("metadata connection is not taken from a Secret")
    for key in ("fernetKey", "apiSecretKey", "webserverSecretKey", "jwtSecret"):
        if values.get(key):
            problems.append(f"{key} is inlined; use {key}SecretName")
    for var in values.get("env", []):
        if SECRETISH.search(var["name"]) or "@" in str(var.get("value", "")):
            problems.append(f"env {var['name']} inlines a secret; list it under `secret`")
    pod = values["securityContexts"]["pod"]
    containers = values["securityContexts"]["containers"]
    if pod.get("runAsNonRoot") is not True or pod.get("runAsUser", 0) == 0:
        problems.append("Airflow pods may run as root")
    if containers.get("readOnlyRootFilesystem") is not True:
        problems.append("Airflow containers have a writable root filesystem")
    if containers.get("capabilities", {}).get("drop") != ["ALL"]:
        problems.append("Airflow containers keep capabilities")
    for component in ("scheduler", "apiServer", "dagProcessor", "triggerer", "workers"):
        resources = values.get(component, {}).get("resources", {})
        if not all(
            r in resources.get(s, {}) for s in ("requests", "limits") for r in ("cpu", "memory")
        ):
            problems.append(f"{component} lacks cpu/memory requests and limits")
    return problems


def test_values_are_complete_and_hardened() -> None:
    values = load()
    assert violations(values) == []
    assert values["executor"] == "KubernetesExecutor"
    assert values["dags"]["gitSync"]["enabled"] is False  # the DAGs ship in the image
    secrets = {s["envName"]: s for s in values["secret"]}
    assert secrets["KLINEHOUSE_DATABASE_URL"]["secretName"] == "klinehouse-db"
    # cosmos' dbt profile reads the Airflow connection app.orchestration names
    from app.orchestration.env import WAREHOUSE_CONN_ID

    assert secrets[f"AIRFLOW_CONN_{WAREHOUSE_CONN_ID.upper()}"]["secretName"] == "klinehouse-db"
    prod = yaml.safe_load((REPO / "k8s/airflow/values-prod.yaml").read_text())
    assert violations({**values, **prod}) == []


def test_airflow_pods_carry_the_label_the_database_policy_admits() -> None:
    labels = load()["labels"]
    if kubectl() is None:
        admitted = {"klinehouse.io/db-access": "true"}
    else:
        docs = kustomize_build(REPO / "k8s/base")
        policy = next(
            d
            for d in docs
            if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == "timescaledb"
        )
        admitted = policy["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"]
    assert admitted.items() <= labels.items()


def test_values_check_catches_inlined_secrets_and_root() -> None:
    values = copy.deepcopy(load())
    values["fernetKey"] = "c2VjcmV0"
    values["env"].append({"name": "KLINEHOUSE_DATABASE_URL", "value": "postgresql://u:p@db/k"})
    values["securityContexts"]["pod"]["runAsUser"] = 0
    values["securityContexts"]["containers"]["readOnlyRootFilesystem"] = False
    del values["workers"]["resources"]["limits"]
    values["images"]["airflow"]["tag"] = "latest"
    problems = "\n".join(violations(values))
    for expected in (
        "fernetKey is inlined",
        "env KLINEHOUSE_DATABASE_URL inlines a secret",
        "Airflow pods may run as root",
        "writable root filesystem",
        "workers lacks cpu/memory",
        "not the pinned klinehouse-airflow image",
    ):
        assert expected in problems
