"""The PostgreSQL NOTIFY channels klinehouse's components talk over (one definition)."""

from typing import Final

# The ingester, after each commit: JSON {market, symbol, interval, open_time} per candle.
CANDLES: Final = "klinehouse_candles"
# run_dbt, after a run that may have written the marts (incremental marts.candles
# holds a new candle only once dbt ran): payload ignored.
MARTS: Final = "klinehouse_marts"
# The registry, after a promotion: the gRPC service hot-reloads its champion.
MODELS: Final = "klinehouse_models"
