"""S3 of the local stack: moto's standalone server on 127.0.0.1 (objects in memory only)."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from devstack.stack._proc import (
    free_port,
    pid_alive,
    pid_cmdline,
    port_holder,
    terminate,
    wait_for_port,
)

DEFAULT_PORT = 59123
ACCESS_KEY = "klinehouse-local"
SECRET_KEY = "klinehouse-local-secret"  # moto accepts any key; this one guards nothing


class S3Error(RuntimeError):
    """The local S3 endpoint could not be started; the message says why."""


@dataclass(frozen=True)
class S3Instance:
    pid: int
    port: int

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def is_ours(pid: int) -> bool:
    return pid_alive(pid) and "moto.server" in pid_cmdline(pid)


def start(home: Path, preferred_port: int = DEFAULT_PORT) -> S3Instance:
    port = free_port(preferred_port)
    if port != preferred_port:
        print(f"port {preferred_port} is held by {port_holder(preferred_port)}; S3 uses {port}")
    log = (home / "s3.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    if not wait_for_port(port, timeout=60):
        terminate(proc.pid)
        raise S3Error(f"moto server did not listen on 127.0.0.1:{port} (log {home / 's3.log'})")
    return S3Instance(proc.pid, port)


def stop(pid: int) -> bool:
    if not is_ours(pid):
        return False
    terminate(pid)
    return True


def ensure_bucket(endpoint_url: str, bucket: str) -> None:
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name="us-east-1",
    )
    existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
    if bucket not in existing:
        client.create_bucket(Bucket=bucket)
