"""The one read of the features marts: columns, schema and SELECT list agree, and carry
every model feature; training and serving both read through it."""

from __future__ import annotations

import pytest

from klinehouse.feature_read import feature_columns, feature_schema, feature_select
from klinehouse.features import FEATURES


@pytest.mark.parametrize("keys", [("symbol",), ("market", "symbol", "interval")])
def test_columns_schema_and_select_agree(keys: tuple[str, ...]) -> None:
    columns = feature_columns(keys)
    assert tuple(feature_schema(keys)) == columns
    assert set(FEATURES) <= set(columns)
    assert len(set(columns)) == len(columns)  # a categorical key is not selected twice
    text = feature_select(keys, table="f").as_string(None)
    assert text.count(" AS ") == len(columns) - len(keys)
    for name in columns[len(keys) :]:
        assert f'AS "{name}"' in text


def test_training_and_serving_read_the_same_features() -> None:
    from inference.store import FEATURE_COLUMNS
    from training.dataset import _schema

    assert set(FEATURE_COLUMNS) - {"open_time_us"} >= set(FEATURES)
    assert [c for c in _schema() if c in FEATURES] == [c for c in FEATURE_COLUMNS if c in FEATURES]


def test_an_unknown_key_is_refused() -> None:
    with pytest.raises(ValueError, match="not key columns"):
        feature_columns(("open",))


def test_label_columns_of_every_horizon_are_read() -> None:
    from klinehouse.feature_read import is_class_label, label_schema, label_select
    from klinehouse.features import LABEL_HORIZONS, LABELS, label_class, label_return
    from training.dataset import _schema

    assert tuple(label_schema()) == LABELS
    for h in LABEL_HORIZONS:
        assert label_return(h) in LABELS and label_class(h) in LABELS
        assert is_class_label(label_class(h)) and not is_class_label(label_return(h))
    text = label_select(table="l").as_string(None)
    assert text.count(" AS ") == len(LABELS)
    assert '"l"."target_up_24"::boolean::int AS "target_up_24"' in text
    assert list(_schema())[-len(LABELS) :] == list(LABELS)
