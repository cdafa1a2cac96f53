"""The demo's last step: start the gRPC service and ask it for advice and a prediction."""

from __future__ import annotations

from app.demo.output import say
from inference.client import Client, format_prediction
from inference.server import ServerConfig, ServerThread

DEMO_INTERVAL = "1h"


def step() -> None:
    """Serve on a free loopback port, then GetAdvice and GetPrediction over gRPC."""
    config = ServerConfig.from_settings(address="127.0.0.1:0", grace_seconds=1.0)
    with ServerThread(config) as server:
        say(f"  gRPC service on 127.0.0.1:{server.port} (reader role, champion from the registry)")
        with Client(f"127.0.0.1:{server.port}") as client:
            advice = client.advise([], DEMO_INTERVAL)
            for rank, p in enumerate(advice.ranked, 1):
                say(f"  {rank:>2}. {format_prediction(p)}")
            best = advice.best_buy.symbol if advice.HasField("best_buy") else "none"
            worst = advice.worst_sell.symbol if advice.HasField("worst_sell") else "none"
            say(f"  advice: best buy {best}, worst sell {worst} (model {advice.model_version})")
            symbol = advice.ranked[0].symbol
            say(f"  prediction: {format_prediction(client.predict(symbol, DEMO_INTERVAL))}")
