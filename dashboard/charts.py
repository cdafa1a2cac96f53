"""Plotly figures of the dashboard (pure functions of the query records)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import plotly.graph_objects as go

from dashboard.models import CalibrationBin, EquityPoint, Prediction
from dashboard.queries import Bar, FeatureRow, Gap, SeriesKey, Window

MAX_SHADED_GAPS = 300  # one shape each: beyond this the chart lists them in the summary only
CANDLES_TRACE = "candles"


def _iso(values: Sequence[datetime]) -> list[str]:
    return [v.isoformat() for v in values]


def candle_figure(
    key: SeriesKey,
    win: Window,
    bars: Sequence[Bar],
    gaps: Sequence[Gap],
    features: Sequence[FeatureRow],
    feature: str | None,
    predictions: Sequence[Prediction],
) -> dict[str, Any]:
    """The chart as a plain plotly figure dict: price (candles, flags, advice, shaded gaps),
    volume, and a feature with the labels and the champion's P(up) on a second axis.
    (A dict, not plotly.graph_objects: their validation costs seconds for 2,000 candles.)"""
    x = _iso([b.open_time for b in bars])
    data: list[dict[str, Any]] = [
        {
            "type": "candlestick",
            "name": CANDLES_TRACE,
            "x": x,
            "open": [b.open for b in bars],
            "high": [b.high for b in bars],
            "low": [b.low for b in bars],
            "close": [b.close for b in bars],
            "customdata": [b.bars for b in bars],
            "xaxis": "x",
            "yaxis": "y",
        }
    ]
    for name, flag, symbol, color in _FLAGS:
        marked = [b for b in bars if getattr(b, flag)]
        if marked:
            data.append(
                {
                    "type": "scatter",
                    "name": name,
                    "x": _iso([b.open_time for b in marked]),
                    "y": [b.high for b in marked],
                    "mode": "markers",
                    "marker": {"symbol": symbol, "size": 9, "color": color},
                    "yaxis": "y",
                }
            )
    closes = {b.open_time: b.close for b in bars}
    for advice, symbol, color in _ADVICE:
        chosen = [p for p in predictions if p.advice == advice]
        if chosen:
            data.append(
                {
                    "type": "scatter",
                    "name": f"advice: {advice}",
                    "x": _iso([p.open_time for p in chosen]),
                    "y": [closes.get(p.open_time) for p in chosen],
                    "mode": "markers",
                    "marker": {"symbol": symbol, "size": 10, "color": color},
                    "yaxis": "y",
                }
            )
    data.append(
        {
            "type": "bar",
            "name": "volume",
            "x": x,
            "y": [b.volume for b in bars],
            "marker": {"color": "#1f77b4"},
            "yaxis": "y2",
        }
    )
    if feature:
        data.append(
            {
                "type": "scatter",
                "name": feature,
                "x": _iso([f.open_time for f in features]),
                "y": [f.values.get(feature) for f in features],
                "mode": "lines",
                "line": {"color": "#8c564b"},
                "yaxis": "y3",
            }
        )
    labelled = [f for f in features if f.target_up is not None]
    data.append(
        {
            "type": "scatter",
            "name": "label: next bar up",
            "x": _iso([f.open_time for f in labelled]),
            "y": [1.0 if f.target_up else 0.0 for f in labelled],
            "mode": "markers",
            "marker": {"size": 4, "color": "#bcbd22"},
            "yaxis": "y4",
        }
    )
    if predictions:
        data.append(
            {
                "type": "scatter",
                "name": "champion P(up)",
                "x": _iso([p.open_time for p in predictions]),
                "y": [p.p_up for p in predictions],
                "mode": "lines",
                "line": {"color": "#17becf"},
                "yaxis": "y4",
            }
        )
    shapes = [
        {
            "type": "rect",
            "xref": "x",
            "yref": "y domain",
            "x0": gap.start.isoformat(),
            "x1": (gap.end + key.bar).isoformat(),
            "y0": 0,
            "y1": 1,
            "fillcolor": "#d62728",
            "opacity": 0.18,
            "line": {"width": 0},
        }
        for gap in gaps[:MAX_SHADED_GAPS]
    ]
    every = "" if not win.downsampled(key) else f", one candle per {win.bucket} (downsampled)"
    if win.source:
        every += f" from the {win.source} bars"
    layout = {
        "title": {"text": f"{key.label()}{every}"},
        "height": 760,
        "margin": {"l": 60, "r": 60, "t": 50, "b": 30},
        "legend": {"orientation": "h", "y": -0.05},
        "uirevision": key.encode(),
        "shapes": shapes,
        "xaxis": {"type": "date", "rangeslider": {"visible": False}, "anchor": "y3"},
        "yaxis": {"domain": [0.45, 1.0], "title": {"text": "price"}},
        "yaxis2": {"domain": [0.29, 0.43], "title": {"text": "volume"}},
        "yaxis3": {"domain": [0.0, 0.27], "title": {"text": feature or "feature"}},
        "yaxis4": {
            "overlaying": "y3",
            "side": "right",
            "range": [-0.05, 1.05],
            "tickvals": [0, 0.5, 1],
            "title": {"text": "P(up) / label"},
        },
    }
    return {"data": data, "layout": layout}


_FLAGS = (
    ("resampled", "resampled", "diamond-open", "#7f7f7f"),
    ("zero volume", "zero_volume", "x", "#d62728"),
    ("off grid", "off_grid", "circle-open", "#9467bd"),
    ("close time short", "close_time_short", "star", "#ff7f0e"),
)
_ADVICE = (("buy", "triangle-up", "#2ca02c"), ("sell", "triangle-down", "#d62728"))


def equity_figure(version: str, points: Sequence[EquityPoint]) -> go.Figure:
    fig = go.Figure()
    t = [p.time for p in points]
    fig.add_trace(go.Scatter(name="model (net of fees)", x=t, y=[p.model for p in points]))
    fig.add_trace(go.Scatter(name="buy and hold", x=t, y=[p.buy_and_hold for p in points]))
    fig.update_layout(
        title=f"{version}: equity over the walk-forward test windows (start = 1)",
        height=380,
        margin={"l": 50, "r": 30, "t": 50, "b": 30},
    )
    return fig


def calibration_figure(version: str, bins: Sequence[CalibrationBin] | None) -> go.Figure:
    fig = go.Figure()
    if bins:
        predicted = [b.predicted for b in bins]
        fig.add_trace(
            go.Scatter(
                name="classifier",
                x=predicted,
                y=[b.observed for b in bins],
                mode="lines+markers",
                text=[f"{b.n} bars" for b in bins],
            )
        )
        lo, hi = min(predicted) - 0.02, max(predicted) + 0.02
        fig.add_trace(
            go.Scatter(name="perfect", x=[lo, hi], y=[lo, hi], mode="lines", line={"dash": "dash"})
        )
    title = "calibration (out of sample)" if bins else "no calibration stored for this model"
    fig.update_layout(
        title=f"{version}: {title}",
        xaxis_title="predicted P(up)",
        yaxis_title="observed up frequency",
        height=380,
        margin={"l": 50, "r": 30, "t": 50, "b": 30},
    )
    return fig
