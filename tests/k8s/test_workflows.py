"""The GitHub Actions workflows (written for users, not run here) are well-formed and
wired as the README says: test on push, images on tags, deploy an overlay."""

from __future__ import annotations

import re
from typing import Any

import yaml

from .checks import REPO, SECRETISH

WORKFLOWS = REPO / ".github" / "workflows"


def load(name: str) -> dict[str, Any]:
    doc = yaml.safe_load((WORKFLOWS / name).read_text())
    doc["on"] = doc.pop(True, doc.get("on"))  # YAML 1.1 reads the key `on` as True
    return doc


def steps(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in doc["jobs"].values() for step in job["steps"]]


def inline_secret_violations(doc: dict[str, Any]) -> list[str]:
    problems = []
    for step in steps(doc):
        for key, value in {**step.get("with", {}), **step.get("env", {})}.items():
            if SECRETISH.search(key.replace("-", "_")) and "${{" not in str(value):
                problems.append(f"step {step.get('name', step.get('uses'))}: {key} is inlined")
    return problems


def test_ci_runs_make_test_on_every_push() -> None:
    ci = load("ci.yml")
    assert "push" in ci["on"]
    assert any(step.get("run", "").startswith("make test") for step in steps(ci))


def test_release_builds_and_pushes_the_three_images_on_tags() -> None:
    release = load("release.yml")
    assert release["on"]["push"]["tags"]
    images = release["jobs"]["images"]
    assert set(images["strategy"]["matrix"]["image"]) == {"inference", "stream", "airflow"}
    build = next(
        s for s in images["steps"] if s.get("uses", "").startswith("docker/build-push-action")
    )
    assert build["with"]["push"] is True
    assert build["with"]["file"] == "docker/${{ matrix.image }}.Dockerfile"
    for image in images["strategy"]["matrix"]["image"]:
        assert (REPO / f"docker/{image}.Dockerfile").exists()


def test_deploy_applies_an_overlay_and_the_airflow_chart() -> None:
    deploy = load("deploy.yml")
    overlays = deploy["on"]["workflow_dispatch"]["inputs"]["overlay"]["options"]
    for overlay in overlays:
        assert (REPO / "k8s/overlays" / overlay / "kustomization.yaml").exists()
    script = "\n".join(s.get("run", "") for s in steps(deploy))
    assert 'kubectl apply -k "k8s/overlays/$OVERLAY"' in script
    assert "k8s/airflow/values.yaml" in script
    assert re.search(r"wait --for=condition=complete job/klinehouse-db-upgrade", script)


def test_workflows_only_reference_secrets() -> None:
    for path in WORKFLOWS.glob("*.yml"):
        assert inline_secret_violations(load(path.name)) == [], path.name
    broken = load("release.yml")
    login = next(s for s in broken["jobs"]["images"]["steps"] if "login" in s.get("uses", ""))
    login["with"]["password"] = "ghp_notasecret"
    assert inline_secret_violations(broken) == ["step docker/login-action@v3: password is inlined"]


def test_no_expression_is_pasted_into_a_deploy_script() -> None:
    """Secrets and inputs go through `env:`; `${{ … }}` inside `run:` would be script injection."""
    for path in WORKFLOWS.glob("*.yml"):
        for step in steps(load(path.name)):
            pasted = re.findall(
                r"\$\{\{\s*(secrets|inputs|github\.event)[^}]*\}\}", step.get("run", "")
            )
            assert not pasted, (
                f"{path.name}: step {step.get('name')} pastes {pasted} into its script"
            )
