"""The commands the manifests and the compose file run are real `klinehouse` commands:
each container's arguments are parsed by the CLI itself (click), so a renamed option
or a bad interval in a manifest fails here rather than in a crash-looping pod."""

from __future__ import annotations

import json
import re
import shlex
from typing import Any

import click
import pytest
import yaml

from .checks import K8S, OVERLAYS, REPO, kubectl, kustomize_build, pod_spec

OWN_IMAGES = ("klinehouse-inference", "klinehouse-stream")


def parse_cli(args: list[str]) -> tuple[str, dict[str, Any]]:
    """Resolve and parse `klinehouse <args>` without running it; raises click.UsageError."""
    from app.cli import cli

    command: click.Command = cli
    path = ["klinehouse"]
    rest = list(args)
    parent: click.Context | None = None
    while isinstance(command, click.Group):
        if not rest:
            raise click.UsageError(f"{' '.join(path)} needs a subcommand")
        name, *rest = rest
        ctx = click.Context(command, info_name=path[-1], parent=parent)
        sub = command.get_command(ctx, name)
        if sub is None:
            raise click.UsageError(f"no such command {' '.join([*path, name])}")
        command, parent = sub, ctx
        path.append(name)
    ctx = command.make_context(path[-1], rest, parent=parent)
    return " ".join(path[1:]), ctx.params


def manifest_commands() -> list[tuple[str, list[str]]]:
    if kubectl() is None:
        pytest.skip("kubectl is not installed: cannot render the overlays")
    found = []
    for overlay in OVERLAYS:
        for doc in kustomize_build(K8S / overlay):
            spec = pod_spec(doc)
            for container in (spec or {}).get("containers", []):
                if any(image in container["image"] for image in OWN_IMAGES):
                    found.append((f"{overlay} {doc['metadata']['name']}", container["args"]))
    return found


def compose_commands() -> list[tuple[str, list[str]]]:
    services = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
    found = []
    for name, service in services.items():
        if not any(image in service.get("image", "") for image in OWN_IMAGES):
            continue
        command = service["command"]
        if isinstance(command, str):  # ${VAR:-default} as compose interpolates it without .env
            command = shlex.split(re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", command))
        found.append((f"compose {name}", command))
    return found


def dockerfile_commands() -> list[tuple[str, list[str]]]:
    found = []
    for name in ("inference", "stream"):
        text = (REPO / f"docker/{name}.Dockerfile").read_text()
        entrypoint = json.loads(re.findall(r"^ENTRYPOINT (.*)$", text, re.MULTILINE)[-1])
        cmd = json.loads(re.findall(r"^CMD (.*)$", text, re.MULTILINE)[-1])
        assert entrypoint == ["klinehouse"], name
        found.append((f"docker/{name}.Dockerfile CMD", cmd))
    return found


def test_every_container_runs_a_valid_klinehouse_command() -> None:
    commands = manifest_commands() + compose_commands() + dockerfile_commands()
    seen = set()
    for where, args in commands:
        try:
            name, params = parse_cli(args)
        except click.UsageError as exc:  # includes BadParameter, NoSuchOption
            pytest.fail(f"{where}: klinehouse {' '.join(args)}: {exc.format_message()}")
        seen.add(name)
        if name == "stream":
            assert params["symbols"] and params["health_port"] == 8080, where
            if not where.startswith("compose"):  # probed from outside the container
                assert params["health_host"] == "0.0.0.0", f"{where}: /healthz on loopback only"
    assert {"serve", "stream", "db upgrade"} <= seen


@pytest.mark.parametrize(
    "args",
    [
        ["stream", "--market", "spot", "--symbol", "BTCUSDT", "--interval", "2m"],
        ["stream", "--market", "spot", "--interval", "1m"],
        ["stream", "--symbol", "BTCUSDT", "--health-prot", "8080"],
        ["db", "upgrades"],
        ["serve", "--no-such-flag"],
    ],
)
def test_a_wrong_command_is_caught(args: list[str]) -> None:
    with pytest.raises(click.UsageError):
        parse_cli(args)
