#!/usr/bin/env bash
# Generate the Python gRPC stubs of protos/klinehouse/v1 into klinehouse/v1/ (committed;
# never edited by hand: change the .proto and rerun `make protos`).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON_BIN:-.venv/bin/python}
OUT=klinehouse/v1
rm -f "$OUT"/*_pb2.py "$OUT"/*_pb2.pyi "$OUT"/*_pb2_grpc.py
mkdir -p "$OUT"
"$PY" -m grpc_tools.protoc -I protos \
  --python_out=. --pyi_out=. --grpc_python_out=. \
  protos/klinehouse/v1/*.proto
printf '"""Generated gRPC stubs of protos/klinehouse/v1 (`make protos`); do not edit."""\n' > "$OUT/__init__.py"
echo "generated: $(ls "$OUT" | tr '\n' ' ')"
