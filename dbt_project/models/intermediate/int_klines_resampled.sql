-- Coarser bars built from a base interval (dbt var `resample`, e.g. 1m -> 5m, 15m,
-- 1h, 4h, 1d): first open, max high, min low, last close, summed volumes; complete
-- buckets only. marts.candles keeps a native bar over a resampled one.
{{ resample_klines(ref('int_klines_deduplicated')) }}
