"""The report's candidates sections: the table, the guards and the never-trading sentence."""

from __future__ import annotations

from typing import Any

from training import report_candidates
from training.records import Metrics


def _candidate(net: float, never: list[int]) -> dict[str, Any]:
    return {
        "target": "target_up",
        "target_rate": 0.5,
        "forecast": {"auc": 0.52, "log_loss": 0.69},
        "majority_log_loss": 0.6931,
        "ic": 0.01,
        "backtest": {
            "net_return": net,
            "gross_return": net + 0.01,
            "sharpe": 0.5,
            "max_drawdown": 0.1,
            "turnover": 0.02,
        },
        "deflated_sharpe": 0.4,
        "validation_sharpe": 0.3,
        "never_trades_in_folds": never,
    }


def _fold(number: int, never_trades: bool) -> dict[str, Any]:
    return {
        "number": number,
        "never_trades": never_trades,
        "train_end": "2022-12-31T00:00:00+00:00",
        "test_start": "2023-01-01T00:00:00+00:00",
        "test_end": "2023-02-01T00:00:00+00:00",
        "buy_threshold": 0.7 if never_trades else 0.55,
        "sell_threshold": 0.7 if never_trades else 0.5,
        "scores": _SCORES,
        "backtest": _BACKTESTS,
    }


_HOLD = {"net_return": 0.05, "gross_return": 0.05, "sharpe": 0.4, "max_drawdown": 0.2}
_BACKTESTS = {
    "model": {"net_return": 0.02},
    "buy_and_hold": {**_HOLD, "turnover": 0.0},
    "momentum": {"net_return": -0.01},
}
_SCORES = {
    "classifier": {"log_loss": 0.69},
    "majority": {"log_loss": 0.6931},
    "momentum": {"log_loss": 0.7},
}


def _doc() -> dict[str, Any]:
    return {
        **_SCORES,
        "chosen": "catboost_h4",
        "candidates": {"catboost_h1": _candidate(0.01, []), "catboost_h4": _candidate(0.02, [2])},
        "backtest": _BACKTESTS,
        "guards": {
            "deflated_sharpe": {
                "probability": 0.42,
                "sharpe": 0.01,
                "expected_max_sharpe": 0.02,
                "trials": 60,
                "trial_sharpe_variance": 1e-4,
                "skew": 0.1,
                "kurtosis": 5.0,
                "bars": 1000,
            },
            "bootstrap": {
                "difference": -0.03,
                "lower": -0.1,
                "confidence": 0.95,
                "block_bars": 10,
                "resamples": 100,
            },
            "pbo": {
                "probability": 0.6,
                "splits": 16,
                "combinations": 12870,
                "columns": 2,
                "median_logit": -0.2,
            },
            "trials": {"candidates": 2, "threshold_settings": 30},
        },
        "folds": [
            _fold(1, False),
            {
                **_fold(2, True),
                "candidates": {
                    "catboost_h4": {
                        "buy_threshold": 0.7,
                        "sell_threshold": 0.7,
                        "validation_net_return": -0.01,
                    }
                },
            },
        ],
    }


def _metrics() -> Metrics:
    return Metrics.of(_doc())


def test_candidates_side_by_side_and_the_guards() -> None:
    text = report_candidates.markdown(_metrics())
    assert "| **catboost_h4** (chosen) |" in text and "| catboost_h1 |" in text
    assert "| buy and hold |" in text
    assert "N = 60 unskilled trials (2 candidates x 30 threshold settings" in text
    assert "probability of backtest overfitting" in text and ": 0.60 (" in text
    assert "95% lower bound on the log growth difference -0.1000" in text


def test_a_fold_that_never_trades_is_explained() -> None:
    (sentence,) = report_candidates.never_trading_sentences(_metrics())
    assert sentence.startswith("Fold 2 never trades: on its validation window no threshold")
    assert "buy at ≥ 0.70 and sell at ≤ 0.70" in sentence and "pays no fee" in sentence
    doc = _doc()
    doc["folds"][1]["never_trades"] = False
    quiet = Metrics.of(doc)
    assert report_candidates.never_trading_sentences(quiet) == []
    assert "never trades" not in report_candidates.markdown(quiet).split("## Selection")[1]


def test_console_lines_mark_the_chosen_candidate() -> None:
    lines = report_candidates.console_lines(_metrics())
    assert lines[2].startswith(" *catboost_h4")
    assert "deflated Sharpe 0.420 (N = 60), PBO 0.60" in lines[-1]
    before = {k: v for k, v in _doc().items() if k not in {"chosen", "candidates", "guards"}}
    assert report_candidates.console_lines(Metrics.of(before)) == []  # a row stored before
    assert report_candidates.markdown(Metrics.of(before)) == ""
