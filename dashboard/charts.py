"""Plotly figures of the dashboard (pure functions of the query records)."""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.models import CalibrationBin, EquityPoint, Prediction
from dashboard.queries import Bar, FeatureRow, Gap, SeriesKey, Window

MAX_SHADED_GAPS = 300  # one shape each: beyond this the chart lists them in the summary only
CANDLES_TRACE = "candles"


def candle_figure(
    key: SeriesKey,
    win: Window,
    bars: Sequence[Bar],
    gaps: Sequence[Gap],
    features: Sequence[FeatureRow],
    feature: str | None,
    predictions: Sequence[Prediction],
) -> go.Figure:
    fig = make_subplots(
        rows=3,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.03,
        row_heights=[0.6, 0.15, 0.25],
        specs=[[{}], [{}], [{"secondary_y": True}]],
    )
    x = [b.open_time for b in bars]
    fig.add_trace(
        go.Candlestick(
            name=CANDLES_TRACE,
            x=x,
            open=[b.open for b in bars],
            high=[b.high for b in bars],
            low=[b.low for b in bars],
            close=[b.close for b in bars],
            customdata=[b.bars for b in bars],
        ),
        row=1,
        col=1,
    )
    for name, flag, symbol, color in (
        ("resampled", lambda b: b.resampled, "diamond-open", "#7f7f7f"),
        ("zero volume", lambda b: b.zero_volume, "x", "#d62728"),
        ("off grid", lambda b: b.off_grid, "circle-open", "#9467bd"),
        ("close time short", lambda b: b.close_time_short, "star", "#ff7f0e"),
    ):
        marked = [b for b in bars if flag(b)]
        if marked:
            fig.add_trace(
                go.Scatter(
                    name=name,
                    x=[b.open_time for b in marked],
                    y=[b.high for b in marked],
                    mode="markers",
                    marker={"symbol": symbol, "size": 9, "color": color},
                ),
                row=1,
                col=1,
            )
    for advice, symbol, color in (
        ("buy", "triangle-up", "#2ca02c"),
        ("sell", "triangle-down", "#d62728"),
    ):
        chosen = [p for p in predictions if p.advice == advice]
        if chosen:
            closes = {b.open_time: b.close for b in bars}
            fig.add_trace(
                go.Scatter(
                    name=f"advice: {advice}",
                    x=[p.open_time for p in chosen],
                    y=[closes.get(p.open_time) for p in chosen],
                    mode="markers",
                    marker={"symbol": symbol, "size": 10, "color": color},
                ),
                row=1,
                col=1,
            )
    for gap in gaps[:MAX_SHADED_GAPS]:
        fig.add_vrect(
            x0=gap.start,
            x1=gap.end + key.bar,
            fillcolor="#d62728",
            opacity=0.18,
            line_width=0,
            row=1,
            col=1,
        )
    fig.add_trace(
        go.Bar(name="volume", x=x, y=[b.volume for b in bars], marker_color="#1f77b4"),
        row=2,
        col=1,
    )
    if feature:
        fig.add_trace(
            go.Scatter(
                name=feature,
                x=[f.open_time for f in features],
                y=[f.values.get(feature) for f in features],
                mode="lines",
                line={"color": "#8c564b"},
            ),
            row=3,
            col=1,
        )
    labelled = [f for f in features if f.target_up is not None]
    fig.add_trace(
        go.Scatter(
            name="label: next bar up",
            x=[f.open_time for f in labelled],
            y=[1.0 if f.target_up else 0.0 for f in labelled],
            mode="markers",
            marker={"size": 4, "color": "#bcbd22"},
        ),
        row=3,
        col=1,
        secondary_y=True,
    )
    if predictions:
        fig.add_trace(
            go.Scatter(
                name="champion P(up)",
                x=[p.open_time for p in predictions],
                y=[p.p_up for p in predictions],
                mode="lines",
                line={"color": "#17becf"},
            ),
            row=3,
            col=1,
            secondary_y=True,
        )
    every = "" if not win.downsampled(key) else f", one candle per {win.bucket} (downsampled)"
    fig.update_layout(
        title=f"{key.label()}{every}",
        xaxis_rangeslider_visible=False,
        height=760,
        margin={"l": 50, "r": 30, "t": 50, "b": 30},
        legend={"orientation": "h", "y": -0.05},
        uirevision=key.encode(),
    )
    fig.update_yaxes(title_text="price", row=1, col=1)
    fig.update_yaxes(title_text="volume", row=2, col=1)
    fig.update_yaxes(title_text=feature or "feature", row=3, col=1)
    fig.update_yaxes(
        title_text="P(up) / label",
        range=[-0.05, 1.05],
        tickvals=[0, 0.5, 1],
        row=3,
        col=1,
        secondary_y=True,
    )
    return fig


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
