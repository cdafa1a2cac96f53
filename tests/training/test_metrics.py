"""The numpy metrics against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from training import metrics


def test_auc_counts_pairs_and_ties() -> None:
    # positives scored 0.8, 0.4; negatives 0.4, 0.1: pairs (0.8>0.4, 0.8>0.1, 0.4=0.4 -> 1/2, 0.4>0.1)
    assert metrics.auc([1, 1, 0, 0], [0.8, 0.4, 0.4, 0.1]) == pytest.approx(3.5 / 4)
    assert metrics.auc([1, 0, 1, 0], [0.5, 0.5, 0.5, 0.5]) == 0.5
    assert metrics.auc([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1]) == 0.0
    assert math.isnan(metrics.auc([1, 1], [0.1, 0.2]))


def test_log_loss_brier_accuracy() -> None:
    y, p = [1, 0, 1], [0.9, 0.2, 0.4]
    expected = -(math.log(0.9) + math.log(0.8) + math.log(0.4)) / 3
    assert metrics.log_loss(y, p) == pytest.approx(expected)
    assert metrics.brier(y, p) == pytest.approx((0.01 + 0.04 + 0.36) / 3)
    assert metrics.accuracy(y, p) == pytest.approx(2 / 3)
    assert math.isfinite(metrics.log_loss([1], [0.0]))  # clipped, not inf


def test_information_coefficient_is_spearman() -> None:
    truth = np.array([0.1, 0.2, 0.3, 0.4])
    assert metrics.information_coefficient(truth, truth**3) == pytest.approx(1.0)
    assert metrics.information_coefficient(truth, -truth) == pytest.approx(-1.0)
    assert math.isnan(metrics.information_coefficient(truth, np.zeros(4)))
    assert metrics.mae([1.0, -1.0], [0.5, 0.0]) == pytest.approx(0.75)


def test_calibration_bins_are_equal_count() -> None:
    p = np.linspace(0.0, 1.0, 100)
    y = (p > 0.5).astype(float)
    curve = metrics.calibration_curve(y, p, bins=4)
    assert [c["n"] for c in curve] == [25, 25, 25, 25]
    assert curve[0]["observed"] == 0.0 and curve[-1]["observed"] == 1.0
