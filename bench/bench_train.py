"""Benchmark of training: our paths from the warehouse against CatBoost's fit alone,
at several sizes in one run, with peak memory per million rows.

    .venv/bin/python bench/bench_train.py [--rows 1000000,10000000] [--symbols 10]
        [--iterations 100] [--repeat 1] [--candidates] [--skip-frame-path]

Starts its own private stack (PostgreSQL + moto S3 in a temporary KLINEHOUSE_HOME).
For each `--rows` size it writes that many synthetic feature rows (with labels) into
tables shaped like marts.candle_features and marts.candle_labels (in chunks), then
runs, each in a fresh process so that peak memory (ru_maxrss) is its own:

1. baseline: the same rows generated in memory, the CatBoost Pool built untimed,
   then `CatBoostClassifier.fit` alone (thread_count=2);
2. frame path (issue 7's): `training.dataset.load_dataset` (COPY into polars) +
   `labelled` + `training.models.fit_classifier` (Pool from the frame, then fit);
3. quantized path (`pipeline.train`'s final fits of the registered models):
   `training.matrix.load_matrix` (COPY chunks into float32 arrays), every pool
   quantized to a file (`training.pools.quantized_files`), the float features dropped,
   then each fit on its label's pools alone (`training.pools.fit_from_files`).

With `--candidates`, (1) and (3) train every candidate of `training.candidates.CANDIDATES`
(the CatBoost pair, CatBoost on 4 and 24 bars, the fee-aware target, the logistic
regression) on the same rows (where all their labels are known): the sum of each one's
fit alone on its prebuilt pool (or design matrix) against reading the matrix once and
fitting every candidate from it, CatBoost through quantized pools (goal <= 1.3 x); each
fit's time is printed beside its fit alone.

Prints, per size, wall time, CPU seconds and peak RSS, and for the quantized path the
peak RSS of each step (read, quantize, each fit: VmHWM reset between steps); then the
peak RSS fitted as fixed base + slope per million rows over the sizes, for each path
and each of its steps (goal: slope <= 0.1 GB).
"""

from __future__ import annotations

import argparse
import io
import multiprocessing as mp
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def _fits(candidates: bool) -> list[tuple[str, str, Any]]:
    """What `--candidates` trains, as (name, kind, candidate): every candidate of
    `training.candidates.CANDIDATES` (kind "classifier" or "logistic"), and the reference
    pair's regressor (kind "regressor", candidate None); without it the classifier of
    the reference only. The baselines (majority, momentum) are two means: not timed."""
    from training import candidates as cand

    chosen = list(cand.CANDIDATES.values()) if candidates else [cand.CANDIDATES[cand.REFERENCE]]
    fits: list[tuple[str, str, Any]] = [
        (c.name, "logistic" if c.family == "logistic" else "classifier", c) for c in chosen
    ]
    if candidates:
        fits.insert(1, (f"{cand.REFERENCE} regressor", "regressor", None))
    return fits


def _fee_rate() -> float:
    from training.evaluate import EvalConfig

    return float(EvalConfig().fee_rate)


def _config(iterations: int) -> Any:
    from training.models import ModelConfig

    # the production configuration (training.models.ModelConfig), early stopping aside
    return ModelConfig(iterations=iterations, thread_count=2)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


class _Steps:
    """Peak RSS of each step of a path: /proc/self/status's VmHWM read after the step,
    then reset (/proc/self/clear_refs 5), so the next step's peak is its own."""

    def __init__(self) -> None:
        self.peaks: list[tuple[str, float]] = []
        self._reset()

    @staticmethod
    def _reset() -> None:
        Path("/proc/self/clear_refs").write_text("5")

    def done(self, name: str) -> None:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                self.peaks.append((name, int(line.split()[1]) / 1024.0))
        self._reset()

    def result(self) -> dict[str, Any]:
        # resetting VmHWM also lowers ru_maxrss: the path's peak is its steps' highest
        return {"steps": self.peaks, "peak_mb": max(mb for _, mb in self.peaks)}


def _symbol_rows(bars: int, k: int) -> Any:
    from training import synthetic

    return synthetic.frame(bars=bars, symbols=(f"SYM{k:02d}USDT",), signal=0.3, seed=11 + k)


def _in_memory(rows: int, symbols: int) -> Any:
    import polars as pl

    return pl.concat([_symbol_rows(rows // symbols, k) for k in range(symbols)]).sort(
        "open_time", "symbol"
    )


def write_marts(rows: int, symbols: int) -> None:
    """The synthetic rows into fresh marts tables, one symbol at a time."""
    from psycopg import sql

    from klinehouse.db import connect
    from klinehouse.features import LABELS, NUMERIC_FEATURES
    from training import synthetic

    with connect() as conn:
        conn.execute("DROP TABLE IF EXISTS marts.candle_features, marts.candle_labels")
        conn.commit()
    synthetic.write_marts(_symbol_rows(rows // symbols, 0))
    keys = ["market", "symbol", "interval", "open_time"]
    with connect() as conn:
        for k in range(1, symbols):
            part = _symbol_rows(rows // symbols, k)
            for table, columns in (
                ("candle_features", list(NUMERIC_FEATURES)),
                ("candle_labels", list(LABELS)),
            ):
                buffer = io.BytesIO()
                part.select(*keys, *columns).write_csv(buffer, include_header=False)
                copy_sql = sql.SQL("COPY marts.{} FROM STDIN (FORMAT csv)").format(
                    sql.Identifier(table)
                )
                with conn.cursor() as cur, cur.copy(copy_sql) as copy:
                    copy.write(buffer.getvalue())
            conn.commit()
        conn.execute("ANALYZE marts.candle_features")
        conn.execute("ANALYZE marts.candle_labels")
        conn.commit()


def _estimator(kind: str, config: Any) -> Any:
    from catboost import CatBoostClassifier, CatBoostRegressor

    from training.models import _params

    if kind == "classifier":
        return CatBoostClassifier(loss_function="Logloss", **_params(config))
    return CatBoostRegressor(loss_function="RMSE", **_params(config))


def baseline(rows: int, symbols: int, iterations: int, candidates: bool, out: Any) -> None:
    from klinehouse.features import CATEGORICAL_FEATURES, LABEL_RETURN, NUMERIC_FEATURES
    from training import candidates as cand
    from training.models import pool

    fits = _fits(candidates)
    config = _config(iterations)
    chosen = [c for _, _, c in fits if c is not None]
    # every candidate on the same rows (those where all their labels are known)
    data = cand.known_targets(_in_memory(rows, symbols), chosen, _fee_rate())
    fit_seconds = cpu = 0.0
    each: dict[str, float] = {}
    for name, kind, c in fits:
        label = LABEL_RETURN if c is None else c.target()
        if kind == "logistic":  # its standardised design matrix in memory: not timed
            x = data.select(NUMERIC_FEATURES).to_numpy()
            symbol = data.get_column(CATEGORICAL_FEATURES[0]).to_numpy()
            design = cand.logistic_shell(x, symbol).design_of(x, symbol)
            y = data.get_column(label).to_numpy().astype("int8")
            model = cand.logistic_estimator(seed=config.seed)
            t0, c0 = time.perf_counter(), time.process_time()
            model.fit(design, y)
        else:
            train_pool = pool(data, label)  # the matrix already in memory: not timed
            model = _estimator(kind, config)
            t0, c0 = time.perf_counter(), time.process_time()
            model.fit(train_pool)
        each[name] = time.perf_counter() - t0
        fit_seconds += each[name]
        cpu += time.process_time() - c0
        del model
    out.put(
        {"total": fit_seconds, "cpu": cpu, "peak_mb": _peak_mb(), "rows": data.height, "each": each}
    )


def _timings(t0: float, t1: float, t2: float, c0: float, rows: int) -> dict[str, Any]:
    """A path's figures: read t0..t1, fit t1..t2 (perf_counter), CPU since c0."""
    return {
        "read": t1 - t0,
        "fit": t2 - t1,
        "total": t2 - t0,
        # this process only: PostgreSQL's side of the COPY runs in its backend
        "cpu": time.process_time() - c0,
        "rows": rows,
        "peak_mb": _peak_mb(),
    }


def frame_path(home: str, iterations: int, out: Any) -> None:
    os.environ["KLINEHOUSE_HOME"] = home
    from training.dataset import DatasetSpec, labelled, load_dataset
    from training.models import fit_classifier

    t0, c0 = time.perf_counter(), time.process_time()
    frame = load_dataset(DatasetSpec("spot", "1h"))
    t1 = time.perf_counter()
    data = labelled(frame)
    fit_classifier(data, None, _config(iterations))  # builds the Pool, then fits
    t2 = time.perf_counter()
    out.put(_timings(t0, t1, t2, c0, frame.height))


def _known_rows(matrix: Any, targets: list[Any]) -> slice:
    """The rows where every target is known. The synthetic series all end at the same
    bar, so in (open_time, symbol) order those are a leading range of the matrix."""
    import numpy as np

    unknown = np.zeros(matrix.rows, dtype=bool)
    for target in targets:
        unknown |= np.isnan(target)
    stop = int(np.argmax(unknown)) if unknown.any() else matrix.rows
    if unknown[stop:].sum() != matrix.rows - stop:
        raise SystemExit("unknown labels before the last bars: not the synthetic marts")
    return slice(0, stop)


def quantized_path(home: str, iterations: int, candidates: bool, out: Any) -> None:
    os.environ["KLINEHOUSE_HOME"] = home
    from training import candidates as cand
    from training import pools
    from training.dataset import DatasetSpec
    from training.matrix import load_matrix

    fits = _fits(candidates)
    config = _config(iterations)
    cand.logistic_estimator()  # imports scikit-learn, as the baseline has before its timing
    steps = _Steps()
    t0, c0 = time.perf_counter(), time.process_time()
    matrix = load_matrix(DatasetSpec("spot", "1h"))  # read once for every candidate
    steps.done("read: load_matrix")
    t1 = time.perf_counter()
    targets = {
        name: matrix.log_return if c is None else cand.matrix_target(matrix, c, _fee_rate())
        for name, _, c in fits
    }
    rows = _known_rows(matrix, list(targets.values()))
    each: dict[str, float] = {}
    # the logistic challenger reads the float features; then every CatBoost pool is
    # quantized to a file, the features dropped, and one label's pools held per fit
    # (pipeline.train's final fits do the same)
    for name, kind, c in fits:
        if kind == "logistic":
            f0 = time.perf_counter()
            cand.fit_logistic_matrix(
                matrix, rows, targets[name], label=c.target(), seed=config.seed
            )
            each[name] = time.perf_counter() - f0
            steps.done(f"fit {name}")
    boosted = [(name, kind) for name, kind, _ in fits if kind != "logistic"]
    q0 = time.perf_counter()
    with pools.quantized_files(matrix, rows, None, [targets[n] for n, _ in boosted]) as files:
        each["quantize (shared)"] = time.perf_counter() - q0
        steps.done("quantize to files")
        matrix.drop_features()
        for (name, kind), saved in zip(boosted, files, strict=True):
            f0 = time.perf_counter()
            pools.fit_from_files(_estimator(kind, config), saved, config)
            each[name] = time.perf_counter() - f0
            steps.done(f"fit {name}")
    t2 = time.perf_counter()
    out.put({**_timings(t0, t1, t2, c0, rows.stop), "each": each, **steps.result()})


def _in_child(target: Any, *args: Any) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(*args, queue))
    proc.start()
    result = queue.get()
    proc.join()
    if proc.exitcode:
        raise SystemExit(f"{target.__name__} failed with exit code {proc.exitcode}")
    return dict(result)


def _fit_line(sizes: list[int], peaks: list[float]) -> tuple[float, float]:
    """Peak RSS as base + slope x rows (least squares): (base GB, GB per million rows)."""
    import numpy as np

    millions = np.asarray(sizes, dtype=float) / 1e6
    gb = np.asarray(peaks, dtype=float) / 1024.0
    if len(sizes) < 2:
        return float("nan"), float(gb[0] / millions[0])
    slope, base = np.polyfit(millions, gb, 1)
    return float(base), float(slope)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", default="1000000,10000000", help="Comma-separated sizes.")
    parser.add_argument("--symbols", type=int, default=10)
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=1, help="Alternating runs of each; min kept.")
    parser.add_argument("--candidates", action="store_true", help="Train every candidate.")
    parser.add_argument("--skip-frame-path", action="store_true", help="Only baseline and ours.")
    args = parser.parse_args()
    sizes = [int(r) for r in args.rows.split(",") if r.strip()]

    from devstack.stack.private import private_stack
    from klinehouse import paths

    paths_run: dict[str, list[dict[str, Any]]] = {"baseline": [], "frame": [], "quantized": []}
    with private_stack("bench-train-"):
        home = str(paths.home())
        for rows in sizes:
            t0 = time.perf_counter()
            write_marts(rows, args.symbols)
            print(f"setup: {rows:,} synthetic rows in the marts in {time.perf_counter() - t0:.0f}s")
            runs: dict[str, list[dict[str, Any]]] = {k: [] for k in paths_run}
            for _ in range(max(1, args.repeat)):
                runs["baseline"].append(
                    _in_child(baseline, rows, args.symbols, args.iterations, args.candidates)
                )
                if not args.skip_frame_path and not args.candidates:
                    runs["frame"].append(_in_child(frame_path, home, args.iterations))
                runs["quantized"].append(
                    _in_child(quantized_path, home, args.iterations, args.candidates)
                )
            for name, results in runs.items():
                if results:
                    paths_run[name].append(min(results, key=lambda r: r["total"]))
            _print_size(rows, {k: v[-1] for k, v in paths_run.items() if v}, args)

    print("\npeak RSS = base + slope x million rows, over", ", ".join(f"{s:,}" for s in sizes))
    for name, results in paths_run.items():
        if results:
            base, slope = _fit_line(sizes, [r["peak_mb"] for r in results])
            print(f"  {name:<10} base {base:5.2f} GB  slope {slope:5.3f} GB per million rows")
            for k, (step, _mb) in enumerate(results[0].get("steps", [])):
                base, slope = _fit_line(sizes, [r["steps"][k][1] for r in results])
                print(f"{'':13}{step:<20} base {base:5.2f} GB  slope {slope:5.3f} GB per M rows")
    print("  goal: slope <= 0.1 GB per million rows above the fixed base (quantized path)")


def _print_size(rows: int, best: dict[str, dict[str, Any]], args: Any) -> None:
    what = "all candidates" if args.candidates else "the classifier"
    base = best["baseline"]
    print(
        f"\n{rows:,} rows, {what}, {args.iterations} iterations, thread_count=2:"
        f"\n  baseline   CatBoost fit(s) alone (Pools in memory): {base['total']:7.2f}s"
        f"  CPU {base['cpu']:6.1f}s  peak RSS {base['peak_mb']:6.0f} MB"
    )
    for name in ("frame", "quantized"):
        if name not in best:
            continue
        r = best[name]
        if "each" in r and args.candidates:
            print("  " + ", ".join(
                f"{k} {base['each'][k]:.1f}s -> {v:.1f}s" if k in base["each"] else f"{k} {v:.1f}s"
                for k, v in r["each"].items()
            ))  # fmt: skip
        print(
            f"  {name:<10} read {r['read']:6.2f}s + fit(s) {r['fit']:7.2f}s = {r['total']:7.2f}s"
            f"  CPU {r['cpu']:6.1f}s  peak RSS {r['peak_mb']:6.0f} MB"
            f"  ratio to fit alone {r['total'] / base['total']:.2f} (goal <= 1.3),"
            f" CPU ratio {r['cpu'] / base['cpu']:.2f}"
        )
        for step, mb in r.get("steps", []):
            print(f"{'':13}peak RSS during {step:<20} {mb:6.0f} MB")


if __name__ == "__main__":
    main()
