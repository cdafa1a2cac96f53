"""The Dash application: a chart page (`/`) and a model registry page (`/models`).

Both pages are in the layout from the start and shown by path, so every callback's
components always exist. Each callback opens a pooled connection (the reader role when
configured) and runs the by-key queries of `dashboard.queries`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import dash
import psycopg
from dash import Dash, Input, Output, State, dcc, html
from psycopg_pool import ConnectionPool

from dashboard import charts, queries
from dashboard.models import ChampionCache, calibration, equity_curve, predict
from dashboard.queries import SeriesKey
from klinehouse.errors import KlinehouseError
from klinehouse.features import NUMERIC_FEATURES
from klinehouse.settings import Settings

RANGES: dict[str, timedelta | None] = {
    "all": None,
    "1y": timedelta(days=365),
    "30d": timedelta(days=30),
    "7d": timedelta(days=7),
    "1d": timedelta(days=1),
}
LIVE_POLL_MS = 3000
HIDDEN = {"display": "none"}
SHOWN = {"display": "block"}


class DashboardInputError(KlinehouseError):
    """A picker value the dashboard cannot use; the message names it."""


@dataclass
class Warehouse:
    """The pooled reader connections and the champion cache behind the callbacks."""

    url: str
    settings: Settings
    pool: ConnectionPool
    champion: ChampionCache

    @classmethod
    def open(cls, url: str, settings: Settings) -> Warehouse:
        pool = ConnectionPool(
            url,
            min_size=1,
            max_size=4,
            open=True,
            kwargs={
                "autocommit": True,
                "options": "-c statement_timeout=15000",
                "application_name": "klinehouse-dashboard",
            },
        )
        return cls(url, settings, pool, ChampionCache(url, settings))

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        with self.pool.connection() as conn:
            yield conn


def parse_time(value: str | None, name: str) -> datetime | None:
    if not value or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise DashboardInputError(
            f"{name} {value!r} is not an ISO date or time (e.g. 2024-05-01 or 2024-05-01T12:00)"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def resolve_window(
    key: SeriesKey,
    first: datetime,
    last: datetime,
    choice: str,
    start_text: str | None,
    end_text: str | None,
) -> queries.Window:
    end = parse_time(end_text, "end") or last + key.bar
    span = RANGES.get(choice)
    start = parse_time(start_text, "start") or (max(first, end - span) if span else first)
    if start >= end:
        raise DashboardInputError(f"start {start.isoformat()} is not before end {end.isoformat()}")
    return queries.window(key, start, end)


def _chart_page() -> html.Div:
    return html.Div(
        id="page-chart",
        children=[
            html.Div(
                style={
                    "display": "flex",
                    "gap": "12px",
                    "flexWrap": "wrap",
                    "alignItems": "center",
                },
                children=[
                    dcc.Dropdown(id="series", placeholder="series", style={"width": "280px"}),
                    dcc.RadioItems(
                        id="range",
                        options=list(RANGES),
                        value="all",
                        inline=True,
                        inputStyle={"marginLeft": "8px"},
                    ),
                    dcc.Input(
                        id="start",
                        placeholder="start (UTC, ISO)",
                        debounce=True,
                        style={"width": "200px"},
                    ),
                    dcc.Input(
                        id="end",
                        placeholder="end (UTC, ISO)",
                        debounce=True,
                        style={"width": "200px"},
                    ),
                    dcc.Dropdown(
                        id="feature",
                        options=list(NUMERIC_FEATURES),
                        value="rsi_14",
                        clearable=True,
                        style={"width": "200px"},
                    ),
                ],
            ),
            html.Div(id="summary", style={"margin": "8px 0"}),
            dcc.Graph(id="chart", config={"displaylogo": False}),
            html.H4("Live"),
            html.Div(id="live"),
            dcc.Store(id="newest-seen"),  # [series, newest open_time] last polled
            dcc.Store(id="new-bar"),  # set only when the drawn series gets a newer bar
            dcc.Interval(id="tick", interval=LIVE_POLL_MS),
        ],
    )


def _models_page() -> html.Div:
    return html.Div(
        id="page-models",
        style=HIDDEN,
        children=[
            html.H3("Model registry"),
            html.Div(id="models-table"),
            dcc.Dropdown(id="model", placeholder="model", style={"width": "420px"}),
            html.Div(
                style={"display": "flex", "flexWrap": "wrap"},
                children=[
                    dcc.Graph(id="equity", style={"width": "58%"}),
                    dcc.Graph(id="calibration", style={"width": "40%"}),
                ],
            ),
        ],
    )


def _table(rows: list[queries.ModelRow]) -> html.Table:
    head = ["version", "status", "reason", "market", "interval", "symbols", "trained on",
            "log loss", "AUC", "net return", "buy & hold"]  # fmt: skip
    body = []
    for r in rows:
        m = r.metrics or {}
        clf = m.get("classifier") or {}
        bt = m.get("backtest") or {}
        body.append(
            html.Tr(
                [
                    html.Td(r.version),
                    html.Td(r.status, className=f"status-{r.status}"),
                    html.Td(r.reason),
                    html.Td(r.market),
                    html.Td(r.interval),
                    html.Td(", ".join(r.symbols)),
                    html.Td(f"{r.train_start:%Y-%m-%d} → {r.train_end:%Y-%m-%d}"),
                    html.Td(_num(clf.get("log_loss"), ".5f")),
                    html.Td(_num(clf.get("auc"), ".4f")),
                    html.Td(_num((bt.get("model") or {}).get("net_return"), "+.2%")),
                    html.Td(_num((bt.get("buy_and_hold") or {}).get("net_return"), "+.2%")),
                ]
            )
        )
    return html.Table(
        [html.Thead(html.Tr([html.Th(h) for h in head])), html.Tbody(body)],
        id="registry",
        style={"borderSpacing": "10px 2px"},
    )


def _num(value: Any, spec: str) -> str:
    return "n/a" if value is None else format(float(value), spec)


def create_app(warehouse: Warehouse) -> Dash:
    app = Dash(__name__, title="klinehouse", update_title="")
    app.layout = html.Div(
        style={"fontFamily": "sans-serif", "margin": "12px"},
        children=[
            dcc.Location(id="url"),
            html.Div(
                [
                    html.B("klinehouse "),
                    dcc.Link("Chart", href="/", id="nav-chart"),
                    " · ",
                    dcc.Link("Models", href="/models", id="nav-models"),
                ]
            ),
            _chart_page(),
            _models_page(),
        ],
    )

    @app.callback(
        Output("page-chart", "style"),
        Output("page-models", "style"),
        Input("url", "pathname"),
    )
    def show_page(path: str | None) -> tuple[dict[str, str], dict[str, str]]:
        return (HIDDEN, SHOWN) if path == "/models" else (SHOWN, HIDDEN)

    @app.callback(
        Output("series", "options"),
        Output("series", "value"),
        Input("url", "pathname"),
        State("series", "value"),
    )
    def load_series(_path: str | None, current: str | None) -> tuple[list[dict[str, str]], Any]:
        with warehouse.connection() as conn:
            keys = queries.series(conn)
        options = [{"label": k.label(), "value": k.encode()} for k in keys]
        values = {o["value"] for o in options}
        if current in values:
            return options, dash.no_update
        return options, options[0]["value"] if options else None

    @app.callback(
        Output("chart", "figure"),
        Output("summary", "children"),
        Input("series", "value"),
        Input("range", "value"),
        Input("start", "value"),
        Input("end", "value"),
        Input("feature", "value"),
        Input("new-bar", "data"),
    )
    def draw_chart(
        series: str | None,
        choice: str,
        start: str | None,
        end: str | None,
        feature: str | None,
        _newest: Any,
    ) -> tuple[Any, Any]:
        if not series:
            return dash.no_update, "no series in marts.candles yet: load and transform data first"
        key = SeriesKey.decode(series)
        try:
            return _chart(warehouse, key, choice, start, end, feature)
        except KlinehouseError as exc:
            return dash.no_update, html.Span(str(exc), id="input-error", style={"color": "#d62728"})

    @app.callback(
        Output("live", "children"),
        Output("newest-seen", "data"),
        Output("new-bar", "data"),
        Input("tick", "n_intervals"),
        Input("series", "value"),
        State("newest-seen", "data"),
    )
    def live(_n: int | None, series: str | None, seen: Any) -> tuple[Any, Any, Any]:
        if not series:
            return "", dash.no_update, dash.no_update
        key = SeriesKey.decode(series)
        with warehouse.connection() as conn:
            newest = queries.newest(conn, key)
        mark = [series, newest.bar.open_time.isoformat() if newest.bar else None]
        if mark == seen:
            return _live(warehouse, key, newest), dash.no_update, dash.no_update
        # a newer bar of the series on screen redraws the chart; a change of series does not
        # (the picker already did)
        newer = bool(seen) and seen[0] == series
        return _live(warehouse, key, newest), mark, (mark if newer else dash.no_update)

    @app.callback(
        Output("models-table", "children"),
        Output("model", "options"),
        Output("model", "value"),
        Input("url", "pathname"),
        State("model", "value"),
    )
    def load_models(path: str | None, current: str | None) -> tuple[Any, Any, Any]:
        if path != "/models":
            return dash.no_update, dash.no_update, dash.no_update
        with warehouse.connection() as conn:
            rows = queries.models(conn)
        if not rows:
            return "no model registered yet: run `klinehouse train`", [], None
        options = [{"label": f"{r.version} ({r.status})", "value": r.version} for r in rows]
        chosen = current if current in {r.version for r in rows} else rows[0].version
        return _table(rows), options, chosen

    @app.callback(
        Output("equity", "figure"),
        Output("calibration", "figure"),
        Input("model", "value"),
    )
    def model_curves(version: str | None) -> tuple[Any, Any]:
        if not version:
            return dash.no_update, dash.no_update
        with warehouse.connection() as conn:
            row = queries.model(conn, version)
        if row is None:
            return dash.no_update, dash.no_update
        return (
            charts.equity_figure(version, equity_curve(row.metrics or {})),
            charts.calibration_figure(version, calibration(row.artifact_uri, warehouse.settings)),
        )

    return app


def _chart(
    warehouse: Warehouse,
    key: SeriesKey,
    choice: str,
    start: str | None,
    end: str | None,
    feature: str | None,
) -> tuple[Any, Any]:
    with warehouse.connection() as conn:
        span = queries.bounds(conn, key)
        if span is None:
            raise DashboardInputError(f"no candles for {key.label()} in marts.candles")
        win = queries.plan(conn, key, resolve_window(key, span[0], span[1], choice, start, end))
        bars = queries.bars(conn, key, win)
        gaps = queries.gaps(conn, key, win)
        rows = queries.features(conn, key, win)
    predictions: list[Any] = []
    champion = warehouse.champion.get()
    if champion is None:
        note = "no champion model"
    elif champion.serves(key.market, key.interval):
        predictions = predict(champion.model, key.symbol, rows)
        note = f"champion {champion.model.version}: {len(predictions)} predictions"
    else:
        note = (
            f"champion {champion.model.version} serves {champion.market} "
            f"{champion.interval}, not this series"
        )
    figure = charts.candle_figure(key, win, bars, gaps, rows, feature, predictions)
    missing = sum(g.missing_bars for g in gaps)
    summary = html.Span(
        [
            html.Span(f"{len(bars)} candles", id="candle-count"),
            f" from {win.start:%Y-%m-%d %H:%M} to {win.end:%Y-%m-%d %H:%M} UTC, "
            f"bucket {win.bucket}{f' of {win.source} bars' if win.source else ''}; "
            f"{len(gaps)} gap(s), {missing} missing "
            f"{win.source if win.source_resampled else key.interval} bar(s); "
            f"{sum(b.resampled for b in bars)} resampled, {sum(b.zero_volume for b in bars)} "
            f"zero-volume, {sum(b.off_grid for b in bars)} off-grid; {note}",
        ]
    )
    return figure, summary


def _live(warehouse: Warehouse, key: SeriesKey, newest: queries.Newest) -> Any:
    parts: list[Any] = []
    if newest.bar is not None:
        b = newest.bar
        parts.append(
            html.Div(
                f"newest loaded bar: {b.open_time:%Y-%m-%d %H:%M} UTC "
                f"O {b.open:g} H {b.high:g} L {b.low:g} C {b.close:g} V {b.volume:g}",
                id="live-bar",
            )
        )
    if newest.features_open_time is not None:
        text = f"newest transformed bar: {newest.features_open_time:%Y-%m-%d %H:%M} UTC"
        champion = None
        try:
            champion = warehouse.champion.get()
        except KlinehouseError as exc:
            text += f"; champion unavailable: {exc}"
        if champion is not None and champion.serves(key.market, key.interval):
            t = newest.features_open_time
            row = queries.FeatureRow(t, t, newest.features, None, None)
            found = predict(champion.model, key.symbol, [row])
            if found:
                text += f"; P(up) {found[0].p_up:.3f} → {found[0].advice}"
        parts.append(html.Div(text, id="live-latest"))
    return parts or "no bars yet"
