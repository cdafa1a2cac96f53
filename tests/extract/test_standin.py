"""The Binance stand-in behaves like Binance where our client relies on it."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import requests

from devstack.standin.binance_rest import Fault, StandinThread
from klinehouse.settings import get_settings


def test_real_rows_weights_and_settings(binance_standin: StandinThread, shared_data: Path) -> None:
    assert get_settings().binance_rest_url == binance_standin.url
    url = f"{binance_standin.url}/api/v3/klines"
    response = requests.get(
        url, params={"symbol": "BTCUSDT", "interval": "1h", "startTime": 1735689600000, "limit": 2}
    )
    rows = response.json()
    first_line = (
        (shared_data / "binance/spot-archive/BTCUSDT-1h-2025-01.csv").read_text().split("\n")[0]
    )
    fields = first_line.split(",")
    # The archive's µs times are served in ms, decimals as the archive's strings.
    assert rows[0][0] == int(fields[0]) // 1000 and rows[0][1] == fields[1]
    assert response.headers["X-MBX-USED-WEIGHT-1M"] == "2"
    futures = requests.get(
        f"{binance_standin.url}/fapi/v1/klines",
        params={"symbol": "BTCUSDT", "interval": "1m", "limit": 1200},
    )
    assert len(futures.json()) == 1200
    assert futures.headers["X-MBX-USED-WEIGHT-1M"] == "10"


def test_errors_like_binance(binance_standin: StandinThread) -> None:
    bad = requests.get(
        f"{binance_standin.url}/api/v3/klines", params={"symbol": "NOPEUSDT", "interval": "1h"}
    )
    assert (bad.status_code, bad.json()) == (400, {"code": -1121, "msg": "Invalid symbol."})
    binance_standin.config.weight_limits["spot"] = 3
    requests.get(f"{binance_standin.url}/api/v3/time")
    requests.get(f"{binance_standin.url}/api/v3/time")
    limited = requests.get(f"{binance_standin.url}/api/v3/time")
    assert limited.status_code == 429 and 1 <= int(limited.headers["Retry-After"]) <= 60
    binance_standin.config.faults.append(Fault(503, 1, path_contains="/fapi/"))
    assert requests.get(f"{binance_standin.url}/fapi/v1/time").status_code == 503
    assert requests.get(f"{binance_standin.url}/fapi/v1/time").status_code == 200


def test_archive_with_checksum_keeps_the_original_bytes(
    binance_standin: StandinThread, shared_data: Path
) -> None:
    base = f"{binance_standin.url}/data/spot/monthly/klines/BTCUSDT/1h/BTCUSDT-1h-2023-03.zip"
    data = requests.get(base).content
    checksum = requests.get(base + ".CHECKSUM").text
    assert checksum.split()[0] == hashlib.sha256(data).hexdigest()
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        inner = zf.read("BTCUSDT-1h-2023-03.csv")
    assert (
        inner
        == (shared_data / "binance/spot-archive-with-header/BTCUSDT-1h-2023-03.csv").read_bytes()
    )
    binance_standin.config.corrupt_checksums.add("BTCUSDT-1h-2023-03.zip")
    assert requests.get(base + ".CHECKSUM").text.split()[0] != hashlib.sha256(data).hexdigest()
    # The current month is not published yet.
    missing = requests.get(
        f"{binance_standin.url}/data/spot/monthly/klines/BTCUSDT/1h/BTCUSDT-1h-2999-01.zip"
    )
    assert missing.status_code == 404


def test_control_endpoint_lists_extra_symbols(binance_standin: StandinThread) -> None:
    url = f"{binance_standin.url}/api/v3/klines"
    params = {"symbol": "SYN000USDT", "interval": "1h", "limit": 3}
    assert requests.get(url, params=params).status_code == 400
    requests.post(
        f"{binance_standin.url}/_standin/config", json={"extra_symbols": {"spot": ["SYN000USDT"]}}
    )
    assert len(requests.get(url, params=params).json()) == 3
