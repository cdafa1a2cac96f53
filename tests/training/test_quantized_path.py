"""The memory-lean training path: marts streamed into a float32 `TrainingMatrix`, fitted
through quantized CatBoost pools, gives the same rows and the same models as the
polars path (real PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl
import pytest

from klinehouse.errors import KlinehouseError
from klinehouse.features import LABEL_CLASS, LABEL_RETURN, NUMERIC_FEATURES
from training import synthetic
from training.dataset import DatasetSpec, labelled, load_dataset
from training.matrix import TrainingMatrix, load_matrix
from training.models import ModelConfig, fit_classifier, fit_regressor, predict_return, predict_up
from training.pools import fit_classifier_quantized, fit_regressor_quantized

CONFIG = ModelConfig(iterations=40, depth=3, learning_rate=0.1, early_stopping_rounds=10)


def _marts(new_database: Callable[[], str]) -> tuple[str, pl.DataFrame]:
    url = new_database()
    rows = synthetic.frame(bars=400, symbols=("SOLUSDT", "BTCUSDT", "ETHUSDT"), signal=1.0)
    # a NULL feature and an unlabelled last bar, as the marts have them
    rows = rows.with_columns(
        pl.when(pl.int_range(pl.len()) == 7)
        .then(None)
        .otherwise(pl.col("volume_zscore_24"))
        .alias("volume_zscore_24"),
        pl.when(pl.col("open_time") == pl.col("open_time").max())
        .then(None)
        .otherwise(pl.col(LABEL_RETURN))
        .alias(LABEL_RETURN),
    )
    synthetic.write_marts(rows, url=url)
    return url, rows


def test_the_matrix_holds_the_labelled_rows_in_order(new_database: Callable[[], str]) -> None:
    url, _ = _marts(new_database)
    frame = labelled(load_dataset(DatasetSpec(), url=url))
    matrix = load_matrix(DatasetSpec(), url=url, workers=2)
    assert matrix.rows == frame.height == 3 * 399
    assert matrix.numeric.dtype == np.float32 and matrix.numeric.flags.c_contiguous
    assert matrix.symbols == ("BTCUSDT", "ETHUSDT", "SOLUSDT")
    np.testing.assert_array_equal(
        matrix.open_time_us, frame.get_column("open_time").dt.epoch("us").to_numpy()
    )
    names = np.array(matrix.symbols)[matrix.symbol]
    assert names.tolist() == frame.get_column("symbol").to_list()
    expected = frame.select(pl.col(NUMERIC_FEATURES).cast(pl.Float32)).to_numpy()
    np.testing.assert_array_equal(matrix.numeric, expected)  # NaN where NULL, in place
    assert np.isnan(matrix.numeric).sum() == 1
    np.testing.assert_array_equal(matrix.up, frame.get_column(LABEL_CLASS).cast(pl.Float32))
    reference = TrainingMatrix.from_frame(frame)
    np.testing.assert_array_equal(reference.numeric, matrix.numeric)
    np.testing.assert_array_equal(reference.symbol, matrix.symbol)


def test_quantized_fits_equal_the_polars_fits(new_database: Callable[[], str]) -> None:
    from training.folds import holdout

    url, _ = _marts(new_database)
    frame = labelled(load_dataset(DatasetSpec(), url=url))
    matrix = load_matrix(DatasetSpec(), url=url)
    fit_rows, val_rows = holdout(frame, fraction=0.2, gap_bars=5)
    fit, val = matrix.holdout(fraction=0.2, gap_bars=5)
    assert (fit.stop, matrix.rows - val.start) == (fit_rows.height, val_rows.height)

    classifier = fit_classifier_quantized(matrix, fit, val, CONFIG)
    reference = fit_classifier(fit_rows, val_rows, CONFIG)
    assert classifier.tree_count_ == reference.tree_count_
    np.testing.assert_allclose(
        predict_up(classifier, frame), predict_up(reference, frame), atol=1e-6
    )
    regressor = fit_regressor_quantized(matrix, fit, val, CONFIG)
    np.testing.assert_allclose(
        predict_return(regressor, frame),
        predict_return(fit_regressor(fit_rows, val_rows, CONFIG), frame),
        atol=1e-6,
    )


def test_an_empty_slice_is_a_clear_error(new_database: Callable[[], str]) -> None:
    url, _ = _marts(new_database)
    with pytest.raises(KlinehouseError, match="no labelled rows in the marts for spot 4h"):
        load_matrix(DatasetSpec(interval="4h"), url=url)


def test_saved_pools_fit_the_same_models_after_the_features_are_dropped(
    new_database: Callable[[], str],
) -> None:
    from training import pools

    url, _ = _marts(new_database)
    frame = labelled(load_dataset(DatasetSpec(), url=url))
    matrix = load_matrix(DatasetSpec(), url=url)
    fit, val = matrix.holdout(fraction=0.2, gap_bars=5)
    expected_c = fit_classifier_quantized(matrix, fit, val, CONFIG)
    expected_r = fit_regressor_quantized(matrix, fit, val, CONFIG)
    with pools.quantized_files(matrix, fit, val, [matrix.up, matrix.log_return]) as (c, r):
        matrix.drop_features()
        assert not matrix.has_features and matrix.numeric.nbytes == 0
        classifier, regressor = pools.classifier(CONFIG), pools.regressor(CONFIG)
        pools.fit_from_files(classifier, c, CONFIG)
        pools.fit_from_files(regressor, r, CONFIG)  # on the classifier's fit pool's borders
    assert classifier.tree_count_ == expected_c.tree_count_
    np.testing.assert_allclose(predict_up(classifier, frame), predict_up(expected_c, frame))
    np.testing.assert_allclose(
        predict_return(regressor, frame), predict_return(expected_r, frame), atol=1e-9
    )
    with pytest.raises(RuntimeError, match="features were dropped"):
        pools.fit_pools(matrix, fit, val, matrix.up)


def test_fit_frame_gives_the_frame_models_of_every_label() -> None:
    """What the folds and the final fit use: one matrix, every label's pools on the same
    borders, the models `fit_regressor` / `fit_classifier` fit on `holdout`'s frames."""
    from training.folds import holdout
    from training.pools import fit_frame

    frame = labelled(
        synthetic.frame(bars=300, symbols=("ETHUSDT", "BTCUSDT"), signal=1.0),
        (LABEL_CLASS, LABEL_RETURN, "target_up_4"),
    )
    fits = fit_frame(frame, [LABEL_CLASS, "target_up_4"], CONFIG, fraction=0.2, gap_bars=5)
    fit_rows, val_rows = holdout(frame, fraction=0.2, gap_bars=5)
    assert (fits.fit.stop, frame.height - fits.validation.start) == (
        fit_rows.height,
        val_rows.height,
    )
    for label in (LABEL_CLASS, "target_up_4"):
        reference = fit_classifier(fit_rows, val_rows, CONFIG, label=label)
        assert fits.classifiers[label].tree_count_ == reference.tree_count_
        np.testing.assert_allclose(
            predict_up(fits.classifiers[label], frame), predict_up(reference, frame), atol=1e-6
        )
    np.testing.assert_allclose(
        predict_return(fits.regressor, frame),
        predict_return(fit_regressor(fit_rows, val_rows, CONFIG), frame),
        atol=1e-6,
    )
