"""`klinehouse train …` and `klinehouse models list|show|promote`."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING

import click

from klinehouse import times
from klinehouse.errors import KlinehouseError
from klinehouse.klines import MARKETS
from training.model_config import ModelConfig

if TYPE_CHECKING:
    from training.records import ModelRecord


def _when(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return times.parse_utc(value)
    except ValueError:
        raise KlinehouseError(f"not an ISO date or time: {value!r} (e.g. 2022-06-01)") from None


def _symbols(values: tuple[str, ...]) -> tuple[str, ...] | None:
    out = tuple(s.strip().upper() for v in values for s in v.split(",") if s.strip())
    return out or None


def _candidates(values: tuple[str, ...]) -> tuple[str, ...]:
    """The candidates given, else all (the evaluation checks the names)."""
    from training.candidates import DEFAULT_CANDIDATES

    names = tuple(s.strip() for v in values for s in v.split(",") if s.strip())
    return names or DEFAULT_CANDIDATES


@click.command()
@click.option("--market", type=click.Choice(MARKETS), default="spot", show_default=True)
@click.option(
    "--symbols", multiple=True, help="Symbols (comma-separated or repeated); default all."
)
@click.option("--interval", default="1h", show_default=True)
@click.option("--start", help="First open_time to use (ISO, UTC).")
@click.option("--end", help="Open_times before this (ISO, UTC).")
@click.option("--folds", default=4, show_default=True, help="Walk-forward folds.")
@click.option("--embargo", default=24, show_default=True, help="Embargo bars beyond the purge.")
@click.option(
    "--iterations",
    default=ModelConfig.iterations,
    show_default=True,
    help="CatBoost max iterations.",
)
@click.option("--seed", default=ModelConfig.seed, show_default=True)
@click.option(
    "--threads", default=ModelConfig.thread_count, show_default=True, help="CatBoost thread_count."
)
@click.option("--fee", default=0.001, show_default=True, help="Taker fee per side.")
@click.option("--allow-short", is_flag=True, help="Short (not flat) when P(up) <= sell threshold.")
@click.option("--no-register", is_flag=True, help="Report only: store nothing in the registry.")
@click.option(
    "--candidates",
    "candidate_names",
    multiple=True,
    help="Candidates to compare (comma-separated or repeated); default all"
    " (catboost_h1, catboost_h4, catboost_h24, catboost_fee_h4, logistic_h1).",
)
def train(
    market: str,
    symbols: tuple[str, ...],
    interval: str,
    start: str | None,
    end: str | None,
    folds: int,
    embargo: int,
    iterations: int,
    seed: int,
    threads: int,
    fee: float,
    allow_short: bool,
    no_register: bool,
    candidate_names: tuple[str, ...],
) -> None:
    """Train on the marts, evaluate walk-forward against baselines, report, register."""
    from training.dataset import DatasetSpec
    from training.evaluate import EvalConfig
    from training.pipeline import train as run_training
    from training.records import formatted

    if fee < 0 or folds < 1 or iterations < 1:
        raise KlinehouseError("--fee must be >= 0, --folds and --iterations >= 1")
    spec = DatasetSpec(market, interval, _symbols(symbols), _when(start), _when(end))
    result = run_training(
        spec,
        model_config=ModelConfig(iterations=iterations, seed=seed, thread_count=threads),
        eval_config=EvalConfig(
            n_folds=folds,
            embargo_bars=embargo,
            fee_rate=fee,
            allow_short=allow_short,
            candidates=_candidates(candidate_names),
        ),
        register=not no_register,
    )
    m = result.metrics
    bt = m.backtest
    click.echo(
        f"model {result.version}: {result.status}"
        + (f" ({result.reason})" if result.reason else "")
    )
    click.echo(
        f"  out of sample: AUC {formatted(m.classifier.auc, '.4f')},"
        f" log loss {m.classifier.log_loss:.5f} (majority {m.majority.log_loss:.5f}),"
        f" IC {formatted(m.regressor.ic if m.regressor else None, '.4f')}"
    )
    if m.leakage_check is not None:
        click.echo(f"  shuffled-label AUC {formatted(m.leakage_check.shuffled_label_auc, '.4f')}")
    click.echo(
        f"  net return {bt.model.net_return:+.2%} vs buy-and-hold "
        f"{bt.buy_and_hold.net_return:+.2%}, momentum {bt.momentum.net_return:+.2%}"
    )
    from training.report_candidates import console_lines

    for line in console_lines(result.metrics):
        click.echo(line)
    click.echo(f"  report: {result.report}")


@click.group()
def models() -> None:
    """The model registry (ml.model_registry)."""


@models.command("list")
@click.option("--limit", default=20, show_default=True, help="Models per (market, interval).")
@click.option("--market", default=None, help="Only this market.")
@click.option("--interval", default=None, help="Only this interval.")
def list_cmd(limit: int, market: str | None, interval: str | None) -> None:
    """Registered models per (market, interval): its champion, then newest first."""
    from training.registry import list_models

    rows = list_models(limit=limit, market=market, interval=interval)
    if not rows:
        click.echo("no models registered: run `klinehouse train`")
        return
    pairs: dict[tuple[str, str], list[ModelRecord]] = {}
    for r in rows:
        pairs.setdefault((r.market, r.interval), []).append(r)
    for (pair_market, pair_interval), models_of_pair in pairs.items():
        champion = next((r for r in models_of_pair if r.status == "champion"), None)
        served = (
            f"{champion.version}, predicting {champion.target} {champion.horizon_bars} bar(s)"
            f" ahead ({champion.candidate})"
            if champion
            else "none"
        )
        click.echo(f"{pair_market} {pair_interval}: champion {served}")
        for r in models_of_pair:
            click.echo(
                f"  {r.version}  {r.status:<10}  {len(r.symbols)} symbols"
                f"  {r.candidate} ({r.target}, {r.horizon_bars} bar{'s' * (r.horizon_bars > 1)})"
                f"  logloss {r.metrics.classifier.log_loss:.5f}"
                f"  net {r.metrics.backtest.model.net_return:+.2%}"
                f"  {r.status_reason[:80]}"
            )


@models.command("show")
@click.argument("version", required=False)
@click.option(
    "--market", default="spot", show_default=True, help="Whose champion, without VERSION."
)
@click.option(
    "--interval", default="1h", show_default=True, help="Whose champion, without VERSION."
)
def show_cmd(version: str | None, market: str, interval: str) -> None:
    """One model's registry row (default: the champion of --market/--interval) as JSON."""
    from training.registry import champion_version, get_model

    version = version or champion_version(url=None, market=market, interval=interval)
    if version is None:
        raise KlinehouseError(
            f"no champion for {market} {interval}: give a version (see `klinehouse models list`)"
        )
    row = get_model(version).to_json()
    row["metrics"].pop("folds", None)
    click.echo(json.dumps(row, indent=2, default=str))


@models.command("promote")
@click.argument("version")
@click.option("--force", is_flag=True, help="Promote even if the rule refuses (recorded as such).")
def promote_cmd(version: str, force: bool) -> None:
    """Make VERSION the champion if it beats the champion and the baselines."""
    from training.registry import promote

    outcome = promote(version, force=force)
    click.echo(f"{outcome.version}: {outcome.status} ({outcome.reason})")
    if outcome.status != "champion":
        raise SystemExit(1)
