# ---
# jupyter:
#   jupytext:
#     formats: py:percent,ipynb
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # The klinehouse warehouse: what it holds, how clean it is, and what a model learns from it
#
# This notebook reads the warehouse that `make demo` (or `klinehouse extract`, `import`,
# `stream` and `transform`) built. It connects the way the CLI does: from the settings, i.e.
# the `KLINEHOUSE_*` environment (`eval "$(.venv/bin/klinehouse stack env)"` points it at
# the local stack). It only reads.
#
# 1. **Data sources**: which Binance sources filled `raw.binance_klines`, with real rows.
# 2. **Warehouse quality**: missing bars (outages), zero-volume and cut-short bars, revisions.
# 3. **Features**: the distributions of the model's inputs in `marts.candle_features`.
# 4. **A model**: CatBoost on the marts, scored by the purged walk-forward evaluation of
#    `training/` (the same functions `klinehouse train` uses), against the baselines.
#
# `make notebook` writes `notebooks/explore_and_model.ipynb` from this file and runs it.

# %% [markdown]
# The parameters below choose the slice and the model's size. `make test` runs the notebook
# on a small warehouse with fewer iterations and folds (it replaces this cell's values).

# %% tags=["parameters"]
MARKET = "spot"
INTERVAL = "1h"
SYMBOLS: tuple[str, ...] | None = None  # None: every symbol of the market and interval
ITERATIONS = 400  # CatBoost's maximum trees per fit (early stopping on a purged validation)
FOLDS = 4  # walk-forward test windows
EMBARGO_BARS = 24  # bars dropped between training and test, beyond the label's horizon

# %% [markdown]
# ## Setup
# The settings give the warehouse's URL; `query()` returns a polars frame. Prices are
# `numeric` in the warehouse (exact); the queries cast what they plot to `float8`.

# %%
import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
import polars as pl

from klinehouse import db
from klinehouse.features import LABEL_CLASS, NUMERIC_FEATURES
from klinehouse.settings import get_settings

settings = get_settings()
url = settings.require_database_url()
print("warehouse:", db.describe(url))


def query(statement: str, params: tuple[object, ...] | None = None) -> pl.DataFrame:
    with db.connect(url) as conn:
        cursor = conn.execute(statement, params)
        columns = [d.name for d in cursor.description or []]
        return pl.DataFrame(
            cursor.fetchall(), schema=columns, orient="row", infer_schema_length=None
        )


pl.Config.set_tbl_rows(20)
pl.Config.set_tbl_cols(12)

# %% [markdown]
# ## 1. Data sources
# Every row of `raw.binance_klines` says where it came from (`source`):
# `archive` (data.binance.vision monthly CSVs), `rest` (`GET /api/v3/klines`, at most 1000
# rows per call), `stream` (the websocket's closed candles) or `import` (freqtrade files,
# which lack quote volume, trade counts and taker volumes). The same rows were first written
# to the parquet lake on S3 (`settings.lake_uri`), which keeps every fetched file.

# %%
sources = query(
    """
    SELECT market, symbol, interval, source, count(*) AS rows,
           min(open_time) AS first_open_time, max(open_time) AS last_open_time
    FROM raw.binance_klines
    GROUP BY market, symbol, interval, source
    ORDER BY market, symbol, interval, source
    """
)
sources

# %% [markdown]
# Rows per series, coloured by source:

# %%
series = sources.with_columns(
    (pl.col("market") + "/" + pl.col("symbol") + "/" + pl.col("interval")).alias("series")
)
names = series["series"].unique(maintain_order=True).to_list()
fig, ax = plt.subplots(figsize=(8, 0.8 + 0.4 * len(names)))
left = np.zeros(len(names))
for (source,), part in series.group_by("source", maintain_order=True):
    counts = dict(zip(part["series"], part["rows"], strict=True))
    widths = np.array([counts.get(name, 0) for name in names], dtype=float)
    ax.barh(names, widths, left=left, label=source)
    left += widths
ax.set_xlabel("rows in raw.binance_klines")
ax.set_title("Where the candles came from")
ax.legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# A few collected rows of each source, as stored: times in UTC, `close_time` the bar's last
# millisecond, volumes in the base asset (`volume`) and in the quote asset (`quote_volume`).

# %%
query(
    """
    SELECT * FROM (
        SELECT k.*, row_number() OVER (PARTITION BY source ORDER BY open_time DESC) AS n
        FROM raw.binance_klines k
    ) newest
    WHERE n <= 3
    ORDER BY source, open_time
    """
).drop("n")

# %% [markdown]
# The closes of each series over time (normalised to 1 at its first bar), with the
# missing bars of `marts.candle_gaps` shaded:

# %%
closes = query(
    """
    SELECT symbol, open_time, close::float8 AS close
    FROM marts.candles
    WHERE market = %s AND interval = %s AND is_on_grid
    ORDER BY symbol, open_time
    """,
    (MARKET, INTERVAL),
)
gaps = query(
    """
    SELECT market, symbol, interval, gap_start, gap_end, missing_bars
    FROM marts.candle_gaps ORDER BY market, symbol, interval, gap_start
    """
)
fig, ax = plt.subplots(figsize=(10, 4))
for (symbol,), part in closes.group_by("symbol", maintain_order=True):
    # a new line segment after each hole, so that no line is drawn across missing bars
    step = part["open_time"].diff()
    part = part.with_columns((step > step.median()).fill_null(False).cum_sum().alias("segment"))
    first = part["close"][0]
    for number, (_, segment) in enumerate(part.group_by("segment", maintain_order=True)):
        ax.plot(
            segment["open_time"],
            segment["close"] / first,
            color=f"C{sorted(closes['symbol'].unique()).index(symbol)}",
            label=symbol if number == 0 else None,
            linewidth=0.8,
        )
for row in gaps.filter((pl.col("market") == MARKET) & (pl.col("interval") == INTERVAL)).iter_rows(
    named=True
):
    ax.axvspan(row["gap_start"], row["gap_end"], color="red", alpha=0.3)
ax.set_ylabel("close / first close")
ax.set_title(f"{MARKET} {INTERVAL} closes (red: missing bars)")
ax.legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 2. Warehouse quality
# ### Missing bars
# Binance's own outages leave holes (the archive of 2023-03-24 lacks its 13:00 bar). dbt's
# `marts.candle_gaps` lists every run of missing bars between two present ones.

# %%
gap_summary = (
    gaps.group_by("market", "symbol", "interval")
    .agg(
        pl.len().alias("gaps"),
        pl.col("missing_bars").sum().alias("missing_bars"),
        pl.col("missing_bars").max().alias("longest_gap_bars"),
        pl.col("gap_start").min().alias("first_gap"),
    )
    .sort("missing_bars", descending=True)
)
print(f"{gaps.height} gaps, {int(gaps['missing_bars'].sum() or 0)} missing bars in all")
gap_summary

# %% [markdown]
# Each gap's length against when it happened:

# %%
fig, ax = plt.subplots(figsize=(10, 3))
for (series,), part in gaps.with_columns(
    (pl.col("symbol") + " " + pl.col("interval")).alias("series")
).group_by("series", maintain_order=True):
    ax.scatter(part["gap_start"], part["missing_bars"], label=series, s=20)
ax.set_ylabel("missing bars")
ax.set_title("Gaps in the native series" if gaps.height else "No gap in any series")
if gaps.height:
    ax.legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# ### Zero-volume, cut-short and off-grid bars
# `marts.candles` keeps such bars but flags them: during maintenance Binance publishes flat
# bars without a trade (`is_zero_volume`), an outage can end a bar early
# (`is_close_time_short`, e.g. 2023-03-24 12:00 closing at 12:39:41.646), and some old bars
# start off the interval's grid (`is_on_grid` false; features leave them out).

# %%
flags = query(
    """
    SELECT market, symbol, interval, count(*) AS bars,
           count(*) FILTER (WHERE is_zero_volume) AS zero_volume,
           count(*) FILTER (WHERE is_close_time_short) AS close_time_short,
           count(*) FILTER (WHERE NOT is_on_grid) AS off_grid,
           count(*) FILTER (WHERE source = 'resampled') AS resampled
    FROM marts.candles
    GROUP BY market, symbol, interval
    ORDER BY market, symbol, interval
    """
)
flags

# %% [markdown]
# The same counts as a chart:

# %%
labels = (flags["symbol"] + " " + flags["interval"]).to_list()
x = np.arange(len(labels))
fig, ax = plt.subplots(figsize=(8, 3))
for offset, flag in zip(
    (-0.25, 0.0, 0.25), ("zero_volume", "close_time_short", "off_grid"), strict=True
):
    ax.bar(x + offset, flags[flag], width=0.25, label=flag)
ax.set_xticks(x, labels)
ax.set_ylabel("bars")
ax.set_title("Flagged bars per series")
ax.legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# The flagged bars themselves (newest first):

# %%
query(
    """
    SELECT market, symbol, interval, open_time, close_time, open, close, volume,
           is_zero_volume, is_close_time_short
    FROM marts.candles
    WHERE is_zero_volume OR is_close_time_short
    ORDER BY open_time DESC
    LIMIT 10
    """
)

# %% [markdown]
# ### Revisions
# raw keeps one version of each bar: a later load of the same key with other values
# replaces it (each load's summary counts these as `revised`) and moves its `ingested_at`.
# Two traces remain in the warehouse. A bar written *after* the bar that follows it was
# re-fetched later: a revision (or a backfill of a hole). And how long after its close each
# bar's stored version was written tells the sources apart: the websocket writes seconds
# after the close, REST minutes to days, archives months later.

# %%
revisions = query(
    """
    WITH ordered AS (
        SELECT market, symbol, interval, open_time, source, ingested_at,
               lead(ingested_at) OVER w AS next_ingested_at
        FROM raw.binance_klines
        WINDOW w AS (PARTITION BY market, symbol, interval ORDER BY open_time)
    )
    SELECT market, symbol, interval, source, count(*) AS rewritten_after_next_bar
    FROM ordered
    WHERE ingested_at > next_ingested_at + interval '1 second'
    GROUP BY market, symbol, interval, source
    ORDER BY rewritten_after_next_bar DESC
    """
)
print(
    f"{int(revisions['rewritten_after_next_bar'].sum() or 0)} bars were rewritten after the bar that follows them"
)
revisions

# %% [markdown]
# The delay between each bar's close and the write of its stored version, per source
# (log scale):

# %%
# counted in SQL (one row per source and bin), so a warehouse of millions of bars plots fast
lags = query(
    """
    SELECT source,
           width_bucket(log(greatest(extract(epoch FROM ingested_at - close_time) / 3600, 1e-3)),
                        -3, 6, 36) AS bin,
           count(*) AS bars
    FROM raw.binance_klines
    GROUP BY source, bin
    ORDER BY source, bin
    """
)
edges = np.logspace(-3, 6, 37)  # width_bucket's 36 bins of log10(hours) in [-3, 6)
fig, ax = plt.subplots(figsize=(8, 3))
for (source,), part in lags.group_by("source", maintain_order=True):
    bins = part["bin"].clip(1, 36).to_numpy() - 1
    binned = np.bincount(bins, weights=part["bars"].to_numpy(), minlength=36)
    ax.stairs(binned, edges, label=source, fill=True, alpha=0.5)
ax.set_xscale("log")
ax.set_xlabel("hours between a bar's close and the write of its stored version")
ax.set_ylabel("bars")
ax.set_title("How late each source wrote its bars")
ax.legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 3. Features
# The model sees the features of `klinehouse/features.py`, computed by dbt in
# `marts.candle_features` (a window that spans a gap or lacks history is NULL, never 0),
# and learns the next bar's direction from `marts.candle_labels`. `load_dataset` is the
# training pipeline's own reader (one `COPY` per worker, straight into polars).

# %%
from training.dataset import DatasetSpec, labelled, load_dataset

spec = DatasetSpec(MARKET, INTERVAL, SYMBOLS)
dataset = load_dataset(spec, url=url)
rows = labelled(dataset)
print(
    f"{dataset.height} feature rows, {rows.height} with a label, symbols: {sorted(dataset['symbol'].unique())}"
)
dataset.select(NUMERIC_FEATURES).describe()

# %% [markdown]
# The share of NULLs per feature (windows at the start of a series or across a gap), and
# each feature's distribution:

# %%
nulls = dataset.select(pl.col(c).is_null().mean().alias(c) for c in NUMERIC_FEATURES)
print(
    nulls.unpivot(variable_name="feature", value_name="null_share").sort(
        "null_share", descending=True
    )
)
columns = 4
fig, axes = plt.subplots(int(np.ceil(len(NUMERIC_FEATURES) / columns)), columns, figsize=(12, 7))
for ax, feature in zip(axes.flat, NUMERIC_FEATURES, strict=False):
    values = dataset[feature].drop_nulls().to_numpy()
    ax.hist(values, bins=40, color="steelblue")
    ax.set_title(feature, fontsize=9)
for ax in list(axes.flat)[len(NUMERIC_FEATURES) :]:
    ax.set_visible(False)
fig.suptitle(f"Feature distributions ({MARKET} {INTERVAL})")
plt.tight_layout()
plt.show()

# %% [markdown]
# How often the next bar closes higher, per symbol: the majority baseline's accuracy, and
# why accuracy alone says little here.

# %%
balance = (
    rows.group_by("symbol")
    .agg(pl.len().alias("labelled_bars"), pl.col(LABEL_CLASS).mean().alias("up_share"))
    .sort("symbol")
)
fig, ax = plt.subplots(figsize=(6, 3))
ax.bar(balance["symbol"], balance["up_share"])
ax.axhline(0.5, color="grey", linestyle="--")
ax.set_ylabel("share of up bars")
ax.set_title("Label balance")
plt.tight_layout()
plt.show()
balance

# %% [markdown]
# ## 4. A model, evaluated honestly
# `training.evaluate` runs the purged walk-forward evaluation: the time grid is cut into
# `FOLDS` test windows after a first training half; each fold trains on everything before
# its window minus a purge (the label's one-bar horizon) and an embargo of `EMBARGO_BARS`,
# and chooses early stopping and the advice thresholds on a purged validation tail of its
# training rows. The test window is touched only to be scored. A placebo model refitted on
# shuffled labels must score an AUC near 0.5 (the leakage check).

# %%
from training import metrics
from training.evaluate import LEAKAGE_TOLERANCE, EvalConfig, evaluate
from training.folds import walk_forward
from training.models import ModelConfig

eval_config = EvalConfig(n_folds=FOLDS, embargo_bars=EMBARGO_BARS)
folds = walk_forward(
    rows["open_time"], n_folds=FOLDS, purge_bars=eval_config.purge_bars, embargo_bars=EMBARGO_BARS
)
pl.DataFrame([f.as_dict() for f in folds])

# %% [markdown]
# The folds on the time axis: training (blue) always ends an embargo before testing (orange).

# %%
fig, ax = plt.subplots(figsize=(10, 0.6 + 0.4 * len(folds)))
for fold in folds:
    for start, end, colour in (
        (fold.train_start, fold.train_end, "tab:blue"),
        (fold.test_start, fold.test_end, "tab:orange"),
    ):
        begin = mdates.date2num(start)
        ax.barh(fold.number, mdates.date2num(end) - begin, left=begin, color=colour)
ax.xaxis_date()
ax.set_yticks([f.number for f in folds])
ax.set_ylabel("fold")
ax.set_title("Walk-forward folds: train (blue), test (orange)")
plt.tight_layout()
plt.show()

# %% [markdown]
# Fit and score (this is the slow cell: two CatBoost fits per fold, plus the placebo).

# %%
evaluation = evaluate(
    rows, interval=INTERVAL, model_config=ModelConfig(iterations=ITERATIONS), config=eval_config
)
# Scored here from the test rows' forecasts (`evaluation.predictions`: one row per test bar
# with the model's P(up) and the baselines'), with training's own metric functions.
predictions = evaluation.predictions


def scored(test: pl.DataFrame) -> dict[str, float]:
    y = test[LABEL_CLASS].to_numpy()
    return {
        "test_rows": test.height,
        "auc_model": metrics.auc(y, test["p_up"].to_numpy()),
        "auc_momentum": metrics.auc(y, test["p_momentum"].to_numpy()),
        "log_loss_model": metrics.log_loss(y, test["p_up"].to_numpy()),
        "log_loss_majority": metrics.log_loss(y, test["p_majority"].to_numpy()),
    }


scores = pl.DataFrame(
    [
        {"fold": number, **scored(part)}
        for (number,), part in predictions.group_by("fold", maintain_order=True)
    ]
)
scores

# %% [markdown]
# Out-of-sample AUC per fold against the momentum baseline (0.5 is a coin):

# %%
x = np.arange(scores.height)
fig, ax = plt.subplots(figsize=(7, 3))
ax.bar(x - 0.2, scores["auc_model"], width=0.4, label="CatBoost")
ax.bar(x + 0.2, scores["auc_momentum"], width=0.4, label="momentum")
ax.axhline(0.5, color="grey", linestyle="--")
ax.set_xticks(x, [f"fold {n}" for n in scores["fold"]])
ax.set_ylim(0.4, 0.6)
ax.set_ylabel("AUC")
ax.legend()
plt.tight_layout()
plt.show()
overall = scored(predictions)
shuffled_auc = metrics.auc(
    predictions[LABEL_CLASS].to_numpy(), predictions["p_shuffled"].to_numpy()
)
leakage_ok = abs(shuffled_auc - 0.5) <= LEAKAGE_TOLERANCE
print(
    f"all test windows: AUC {overall['auc_model']:.4f}, log loss "
    f"{overall['log_loss_model']:.5f} (majority {overall['log_loss_majority']:.5f}); "
    f"shuffled-label AUC {shuffled_auc:.4f} "
    f"({'passed' if leakage_ok else 'FAILED'} the leakage check, tolerance {LEAKAGE_TOLERANCE})"
)

# %% [markdown]
# Trading the advice net of fees (`EvalConfig.fee_rate` per change of position) over the
# test windows, against holding and against momentum:

# %%
from training.backtest import equity_curve
from training.backtest import summary as backtest_summary

fig, ax = plt.subplots(figsize=(10, 4))
for name, returns in evaluation.backtest_returns.items():
    curve = equity_curve(returns)
    ax.plot(curve["open_time"], curve["equity"], label=name, linewidth=0.9)
ax.set_ylabel("equity (start = 1)")
ax.set_title("Out-of-sample equity, net of fees")
ax.legend()
plt.tight_layout()
plt.show()
pl.DataFrame(
    [
        {"strategy": name, **backtest_summary(returns, INTERVAL)}
        for name, returns in evaluation.backtest_returns.items()
    ]
)

# %% [markdown]
# Calibration: in each decile of predicted P(up), how often the bar did go up.

# %%
calibration = metrics.calibration_curve(
    predictions[LABEL_CLASS].to_numpy(), predictions["p_up"].to_numpy()
)
predicted = [c["predicted"] for c in calibration]
fig, ax = plt.subplots(figsize=(4.5, 4.5))
ax.plot(predicted, [c["observed"] for c in calibration], "o-", label="CatBoost (test windows)")
low, high = min(predicted) - 0.02, max(predicted) + 0.02
ax.plot([low, high], [low, high], "--", color="grey", label="perfect calibration")
ax.set_xlabel("predicted P(up)")
ax.set_ylabel("observed share of up bars")
ax.legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# ## What this says
# * The warehouse is only as complete as Binance: outages show as gaps and flagged bars, and
#   the marts say so instead of filling them; features across a gap are NULL.
# * On hourly candles of a few large pairs, next-bar direction is barely predictable: an
#   out-of-sample AUC a little above 0.5 is the honest result, and the fees decide whether
#   the advice beats holding. `klinehouse train` applies the same evaluation and promotes a
#   model only when it beats the baselines (see its report and `ml.model_registry`).
