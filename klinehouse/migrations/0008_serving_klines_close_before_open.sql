-- serving.klines gets marts.candles' third cleaning rule: a bar that closes before it
-- opens (the archives' maintenance bars) is never served, as marts.candles leaves it
-- out (issue 15). The view keeps its columns; only its filter grows.

CREATE OR REPLACE VIEW serving.klines AS
SELECT
    market, symbol, interval, open_time, close_time,
    open, high, low, close, volume, quote_volume,
    trades AS trade_count, taker_buy_base_volume, taker_buy_quote_volume,
    source, ingested_at
FROM raw.binance_klines
WHERE coalesce(serving.is_on_grid(open_time, interval), false)
  AND coalesce(serving.is_ohlc_valid(open, high, low, close, volume), false)
  AND close_time > open_time;
