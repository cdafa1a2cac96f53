"""The committed stubs are exactly what `make protos` generates, and the protos keep the
Buf STANDARD naming rules the service relies on."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from klinehouse import paths
from klinehouse.v1 import candle_pb2, candle_service_pb2, prediction_service_pb2

PROTOS = paths.REPO_ROOT / "protos"
GENERATED = paths.REPO_ROOT / "klinehouse" / "v1"


def test_committed_stubs_match_the_protos(tmp_path: Path) -> None:
    sources = sorted(
        str(p.relative_to(PROTOS)) for p in (PROTOS / "klinehouse" / "v1").glob("*.proto")
    )
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", "-I", str(PROTOS), f"--python_out={tmp_path}",
         f"--pyi_out={tmp_path}", f"--grpc_python_out={tmp_path}", *sources],
        check=True, capture_output=True, cwd=PROTOS,
    )  # fmt: skip
    fresh = {p.name: p.read_text() for p in (tmp_path / "klinehouse" / "v1").iterdir()}
    committed = {p.name: p.read_text() for p in GENERATED.glob("*_pb2*.py*")}
    assert fresh.keys() == committed.keys()
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert not stale, f"regenerate with `make protos`: {stale}"


def test_buf_standard_naming() -> None:
    for module in (candle_pb2, candle_service_pb2, prediction_service_pb2):
        fd = module.DESCRIPTOR
        assert fd.package == "klinehouse.v1"
        assert fd.name.startswith("klinehouse/v1/")
        for service in fd.services_by_name.values():
            assert service.name.endswith("Service")
            for method in service.methods:
                assert method.input_type.name == f"{method.name}Request"
                assert method.output_type.name == f"{method.name}Response"
        for enum in fd.enum_types_by_name.values():
            prefix = "".join("_" + c if c.isupper() else c.upper() for c in enum.name).lstrip("_")
            assert enum.values[0].name == f"{prefix}_UNSPECIFIED" and enum.values[0].number == 0
            assert all(v.name.startswith(prefix + "_") for v in enum.values)
    price_fields = {"open", "high", "low", "close", "volume", "quote_volume"}
    for field in candle_pb2.Candle.DESCRIPTOR.fields:
        if field.name in price_fields:
            assert field.type == field.TYPE_STRING, f"{field.name} must be a decimal string"
