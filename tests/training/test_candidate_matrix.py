"""Every candidate trains from the `TrainingMatrix` as from the frame (real PostgreSQL):
the matrix carries the 4- and 24-bar labels, each candidate's target on it is the one
`known_targets` gives the frame, and the logistic challenger fits the same model."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl

from training import candidates as cand
from training.dataset import DatasetSpec, labelled, load_dataset
from training.matrix import LONGER_LABELS, load_matrix

from .test_quantized_path import _marts

FEE = 0.001


def test_each_candidates_target_on_the_matrix_is_the_frames(
    new_database: Callable[[], str],
) -> None:
    url, _ = _marts(new_database)
    frame = labelled(load_dataset(DatasetSpec(), url=url))
    matrix = load_matrix(DatasetSpec(), url=url)
    assert set(matrix.longer) == set(LONGER_LABELS) and "target_up_24" in LONGER_LABELS
    for name in LONGER_LABELS:
        expected = frame.get_column(name).cast(pl.Float32).to_numpy()
        assert np.isnan(expected).sum() > 0  # the last bars of each series are unknown
        np.testing.assert_array_equal(matrix.label(name), expected)
    every = list(cand.CANDIDATES.values())
    targets = cand.add_targets(frame, every, FEE)
    for c in every:
        expected = targets.get_column(c.target()).cast(pl.Float32).to_numpy()
        np.testing.assert_array_equal(cand.matrix_target(matrix, c, FEE), expected)


def test_the_logistic_challenger_fits_the_same_model_from_the_matrix(
    new_database: Callable[[], str],
) -> None:
    url, _ = _marts(new_database)
    frame = labelled(load_dataset(DatasetSpec(), url=url))
    matrix = load_matrix(DatasetSpec(), url=url)
    linear = cand.CANDIDATES["logistic_h1"]
    rows = slice(0, 900)
    target = cand.matrix_target(matrix, linear, FEE)
    got = cand.fit_logistic_matrix(matrix, rows, target, label=linear.target())
    want = cand.fit_logistic(frame.head(900), linear.target())
    assert got.symbols == want.symbols
    np.testing.assert_allclose(got.means, want.means, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got.coefficients, want.coefficients, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(got.predict(frame), want.predict(frame), atol=1e-4)
