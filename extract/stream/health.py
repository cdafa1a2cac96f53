"""`/healthz` for Kubernetes probes: connected or not, last message age, last flush.

200 while every connection is up and a message arrived within `stale_after`
seconds; 503 otherwise. The body is the same JSON either way, so a human
reading the probe sees why; its `last_error` quotes exception text, so the body
goes out with credentials masked.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aiohttp import web

from klinehouse import redact


async def start_health_server(
    snapshot: Callable[[], dict[str, Any]], *, host: str, port: int
) -> tuple[web.AppRunner, int]:
    """Serve /healthz; returns the runner (to clean up) and the bound port (port 0 picks one)."""

    async def healthz(request: web.Request) -> web.Response:
        body = snapshot()
        return web.Response(
            text=redact.mask(json.dumps(body)),
            content_type="application/json",
            status=200 if body["healthy"] else 503,
        )

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    return runner, int(runner.addresses[0][1])
