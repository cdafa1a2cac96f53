"""The protos pass `buf lint` (STANDARD and COMMENTS) and `buf breaking` against the last release.

The last release is the Buf image committed in protos/releases/ (the newest
vX.Y.Z.binpb, written by `make proto-baseline` when a release is cut), so the
check needs neither network nor git tags. buf comes from npm (`make node-deps`)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from .checks import REPO

PROTOS = REPO / "protos"
BUF = REPO / "node_modules" / ".bin" / "buf"

pytestmark = [
    pytest.mark.skipif(
        not BUF.exists(), reason="buf not installed: run `make node-deps` (npm @bufbuild/buf)"
    ),
    pytest.mark.skipif(
        not any(PROTOS.glob("klinehouse/v1/*.proto")),
        reason="no protos in protos/klinehouse/v1 yet",
    ),
]


def last_release() -> Path:
    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", path.stem))

    releases = sorted((PROTOS / "releases").glob("v*.binpb"), key=version)
    assert releases, "no release baseline in protos/releases (make proto-baseline)"
    return releases[-1]


def buf(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BUF), *args], capture_output=True, text=True, cwd=cwd, timeout=120, check=False
    )


def protos_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "protos"
    shutil.copytree(PROTOS, copy, ignore=shutil.ignore_patterns("releases"))
    return copy


def test_buf_lint() -> None:
    proc = buf("lint", str(PROTOS))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_buf_breaking_against_the_last_release() -> None:
    proc = buf("breaking", str(PROTOS), "--against", str(last_release()))
    assert proc.returncode == 0, (
        f"{proc.stdout}{proc.stderr}\nA breaking change against {last_release().name}: "
        "add fields or a new package version (klinehouse.v2) instead."
    )


def test_buf_breaking_detects_a_removed_field(tmp_path: Path) -> None:
    copy = protos_copy(tmp_path)
    candle = copy / "klinehouse/v1/candle.proto"
    text = candle.read_text()
    removed = re.search(r"^\s*string\s+(\w+)\s*=\s*\d+;\n", text, re.MULTILINE)
    assert removed, "no string field to remove in candle.proto"
    candle.write_text(text.replace(removed.group(0), "", 1))
    proc = buf("breaking", str(copy), "--against", str(last_release()), "--error-format", "json")
    assert proc.returncode != 0
    findings = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    assert any(
        f["type"] == "FIELD_NO_DELETE" and removed.group(1) in f["message"] for f in findings
    ), findings


def test_buf_lint_detects_a_style_violation(tmp_path: Path) -> None:
    copy = protos_copy(tmp_path)
    (copy / "klinehouse/v1/bad.proto").write_text(
        'syntax = "proto3";\npackage klinehouse.v1;\n'
        "enum side { BUY = 0; }\nmessage get_thing { string Name = 1; }\n"
    )
    proc = buf("lint", str(copy), "--error-format", "json")
    assert proc.returncode != 0
    rules = {json.loads(line)["type"] for line in proc.stdout.splitlines() if line.strip()}
    assert {"ENUM_PASCAL_CASE", "MESSAGE_PASCAL_CASE", "FIELD_LOWER_SNAKE_CASE"} <= rules, rules


def test_buf_lint_requires_a_comment_on_every_field(tmp_path: Path) -> None:
    copy = protos_copy(tmp_path)
    candle = copy / "klinehouse/v1/candle.proto"
    text = candle.read_text()
    commented = re.search(r"^  // The number of trades.*\n", text, re.MULTILINE)
    assert commented, "Candle.trades has no comment to remove"
    candle.write_text(text.replace(commented.group(0), "", 1))
    proc = buf("lint", str(copy), "--error-format", "json")
    assert proc.returncode != 0
    findings = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    assert [f["type"] for f in findings] == ["COMMENT_FIELD"], findings
    assert "trades" in findings[0]["message"], findings
