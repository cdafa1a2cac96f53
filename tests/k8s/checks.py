"""Policy checks on rendered Kubernetes manifests, compose files and Dockerfiles.

Each function returns a list of human-readable violations (empty when fine), so a
test can assert both that our files pass and that a deliberately broken copy is
caught with a message naming what is wrong.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "k8s"
OVERLAYS = ["base", "overlays/dev", "overlays/prod"]
# Oldest Kubernetes we support (native gRPC probes are GA since 1.27) and the newest
# the installed kubernetes-validate ships schemas for.
KUBERNETES_VERSIONS = ["1.30.0", "latest"]

WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Pod"}
SECRETISH = re.compile(r"PASSWORD|SECRET|TOKEN|_KEY$|_KEY_ID$|CONNECTION", re.IGNORECASE)
EXACT_TAG = re.compile(r"^[^:@\s]+(:[^:@\s]*\d[^:@\s]*)?(@sha256:[0-9a-f]{64})?$")


class KustomizeError(RuntimeError):
    pass


def kubectl() -> str | None:
    return shutil.which("kubectl")


def kustomize_build(path: Path) -> list[dict[str, Any]]:
    """`kubectl kustomize path` parsed into documents; raises KustomizeError on failure."""
    exe = kubectl()
    if exe is None:
        raise KustomizeError("kubectl not found")
    proc = subprocess.run(
        [exe, "kustomize", str(path)], capture_output=True, text=True, timeout=120, check=False
    )
    if proc.returncode != 0:
        raise KustomizeError(f"kubectl kustomize {path} failed: {proc.stderr.strip()}")
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


def pod_spec(doc: dict[str, Any]) -> dict[str, Any] | None:
    kind = doc.get("kind")
    if kind not in WORKLOAD_KINDS:
        return None
    if kind == "Pod":
        return doc["spec"]
    if kind == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return doc["spec"]["template"]["spec"]


def pod_labels(doc: dict[str, Any]) -> dict[str, str]:
    if doc["kind"] == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]["metadata"].get("labels", {})
    return doc["spec"]["template"]["metadata"].get("labels", {})


def image_is_pinned(image: str) -> bool:
    """An explicit version tag (containing a digit, never `latest`) or a digest."""
    if image.endswith(":latest") or (":" not in image.rsplit("/", 1)[-1] and "@" not in image):
        return False
    return bool(EXACT_TAG.match(image))


def _env_violations(where: str, env: list[dict[str, Any]]) -> list[str]:
    problems = []
    for var in env:
        value = str(var.get("value", ""))
        if SECRETISH.search(var["name"]) and "value" in var:
            problems.append(f"{where}: env {var['name']} inlines a value; use secretKeyRef")
        elif "://" in value and "@" in value.split("://", 1)[1] and "$(" not in value:
            problems.append(f"{where}: env {var['name']} inlines credentials in a URL")
    return problems


def workload_violations(docs: list[dict[str, Any]]) -> list[str]:
    """Hardening every pod must have: non-root, read-only root, no capabilities, limits."""
    problems: list[str] = []
    for doc in docs:
        spec = pod_spec(doc)
        if spec is None:
            continue
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        psc = spec.get("securityContext", {})
        if psc.get("runAsNonRoot") is not True:
            problems.append(f"{name}: pod securityContext.runAsNonRoot is not true")
        if psc.get("runAsUser", 0) == 0:
            problems.append(f"{name}: pod securityContext.runAsUser is unset or root")
        if psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            problems.append(f"{name}: pod seccompProfile is not RuntimeDefault")
        if spec.get("automountServiceAccountToken") is not False:
            problems.append(f"{name}: automountServiceAccountToken is not false")
        for container in spec.get("initContainers", []) + spec["containers"]:
            where = f"{name} container {container['name']}"
            csc = container.get("securityContext", {})
            if csc.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{where}: readOnlyRootFilesystem is not true")
            if csc.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{where}: allowPrivilegeEscalation is not false")
            if csc.get("capabilities", {}).get("drop") != ["ALL"]:
                problems.append(f"{where}: capabilities are not dropped (drop: [ALL])")
            if csc.get("runAsUser") == 0 or csc.get("privileged"):
                problems.append(f"{where}: runs as root or privileged")
            resources = container.get("resources", {})
            for section in ("requests", "limits"):
                for res in ("cpu", "memory"):
                    if res not in resources.get(section, {}):
                        problems.append(f"{where}: resources.{section}.{res} is not set")
            if not image_is_pinned(container["image"]):
                problems.append(f"{where}: image {container['image']} is not pinned to a version")
            problems += _env_violations(where, container.get("env", []))
    return problems


def secret_violations(docs: list[dict[str, Any]]) -> list[str]:
    """Secrets are created out of band and only referenced: none may be rendered."""
    return [
        f"Secret/{d['metadata']['name']} is inlined in the manifests"
        for d in docs
        if d.get("kind") == "Secret"
    ]


def _references_database(container: dict[str, Any]) -> bool:
    for var in container.get("env", []):
        ref = var.get("valueFrom", {}).get("secretKeyRef", {})
        if "DATABASE_URL" in var["name"] or ref.get("name") == "klinehouse-db":
            return True
    return False


def network_violations(docs: list[dict[str, Any]]) -> list[str]:
    """Default-deny ingress, the database reachable only from labelled pods, and
    every pod that connects to the database carrying that label."""
    problems: list[str] = []
    policies = {d["metadata"]["name"]: d for d in docs if d.get("kind") == "NetworkPolicy"}
    deny = policies.get("default-deny-ingress")
    if not deny or deny["spec"].get("podSelector") != {} or deny["spec"].get("ingress"):
        problems.append("no default-deny-ingress NetworkPolicy selecting every pod")
    db = policies.get("timescaledb")
    allowed: dict[str, str] = {}
    if not db:
        problems.append("no NetworkPolicy guarding timescaledb")
    else:
        rules = db["spec"].get("ingress", [])
        for rule in rules:
            sources = rule.get("from")
            if not sources:
                problems.append("NetworkPolicy timescaledb admits any source")
            for source in sources or []:
                if "podSelector" not in source or "namespaceSelector" in source:
                    problems.append(f"NetworkPolicy timescaledb admits {source}")
                else:
                    allowed.update(source["podSelector"].get("matchLabels", {}))
    for doc in docs:
        spec = pod_spec(doc)
        if spec is None or doc["metadata"]["name"].startswith("timescaledb"):
            continue
        labels = pod_labels(doc)
        if (
            any(_references_database(c) for c in spec["containers"])
            and allowed
            and not all(labels.get(k) == v for k, v in allowed.items())
        ):
            problems.append(
                f"{doc['kind']}/{doc['metadata']['name']} connects to the database but lacks "
                f"the labels {allowed} the timescaledb NetworkPolicy admits"
            )
    return problems


def find(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    for doc in docs:
        if doc.get("kind") == kind and doc["metadata"]["name"] == name:
            return doc
    raise KeyError(f"{kind}/{name} not rendered")


# --- Dockerfiles -------------------------------------------------------------------------


def dockerfile_violations(text: str) -> list[str]:
    """What hadolint does not check: multi-stage, exact base tags, a non-root final USER."""
    problems: list[str] = []
    lines = [
        ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")
    ]
    froms = [ln.split()[1] for ln in lines if ln.upper().startswith("FROM ")]
    stages = {
        ln.split()[3] for ln in lines if ln.upper().startswith("FROM ") and len(ln.split()) > 3
    }
    if len(froms) < 2:
        problems.append("not a multi-stage build")
    for image in froms:
        if image in stages:
            continue
        if not image_is_pinned(image) or not re.search(r":\S*\d+\.\d+", image):
            problems.append(f"base image {image} is not pinned to an exact version")
    users = [ln.split()[1] for ln in lines if ln.upper().startswith("USER ")]
    if not users:
        problems.append("no USER: the image runs as root")
    elif users[-1].split(":")[0] in {"0", "root"}:
        problems.append(f"final USER {users[-1]} is root")
    elif not users[-1].split(":")[0].isdigit():
        problems.append(f"final USER {users[-1]} is a name; use a numeric uid for runAsNonRoot")
    return problems


# --- docker-compose ------------------------------------------------------------------------

COMPOSE_VAR = re.compile(r"\$\{[A-Z0-9_]+(:?[-?][^}]*)?\}")


def compose_violations(compose: dict[str, Any], own_images: tuple[str, ...]) -> list[str]:
    problems: list[str] = []
    for name, service in compose["services"].items():
        image = service.get("image", "")
        if not COMPOSE_VAR.search(image) and not image_is_pinned(image):
            problems.append(f"service {name}: image {image!r} is not pinned")
        env = service.get("environment", {})
        for key, value in env.items() if isinstance(env, dict) else []:
            if key.endswith("_FILE"):  # a path to a secret file, not the secret
                continue
            secretish = SECRETISH.search(key) or ("://" in str(value) and "@" in str(value))
            if secretish and "${" not in str(value):
                problems.append(f"service {name}: {key} inlines a secret; reference ${{VAR}}")
        if any(own in image for own in own_images):
            if service.get("read_only") is not True:
                problems.append(f"service {name}: root filesystem is not read_only")
            if service.get("cap_drop") != ["ALL"]:
                problems.append(f"service {name}: capabilities are not dropped")
            user = str(service.get("user", "")).split(":")[0]
            if user in {"0", "root"}:
                problems.append(f"service {name}: runs as root")
    return problems
