"""The one read of the features marts: the SELECT list and the polars schema of
`marts.candle_features` / `marts.candle_features_latest`, shared by training
(`training.dataset`) and serving (`inference.store`).

A read names the key columns it wants (`keys`); then come `open_time_us` (epoch
microseconds: the session time zone cannot change it), the numeric features as
float8 and the categorical features that are not keys as text, in the order of
`klinehouse.features.FEATURES`. No feature name is written here.

Training also reads `marts.candle_labels`: `label_select` / `label_schema` give the
label columns of every horizon (`klinehouse.features.LABELS`), returns as float8 and
directions as 0/1.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl
from psycopg import sql

from klinehouse.features import CATEGORICAL_FEATURES, LABEL_CLASS, LABELS, NUMERIC_FEATURES

KEY_COLUMNS = ("market", "symbol", "interval")
OPEN_TIME_US = "open_time_us"


def _categorical(keys: Sequence[str]) -> tuple[str, ...]:
    return tuple(c for c in CATEGORICAL_FEATURES if c not in keys)


def _check(keys: Sequence[str]) -> None:
    unknown = [k for k in keys if k not in KEY_COLUMNS]
    if unknown:
        raise ValueError(f"not key columns of the features marts: {unknown}")


def feature_columns(keys: Sequence[str]) -> tuple[str, ...]:
    """The names of the columns `feature_select(keys)` returns, in order."""
    _check(keys)
    return (*keys, OPEN_TIME_US, *NUMERIC_FEATURES, *_categorical(keys))


def feature_select(keys: Sequence[str], *, table: str | None = None) -> sql.Composed:
    """The SELECT list of a features read (`table`: an alias to qualify the columns with)."""
    _check(keys)

    def col(name: str) -> sql.Composable:
        return sql.Identifier(table, name) if table else sql.Identifier(name)

    items: list[sql.Composable] = [col(k) for k in keys]
    items.append(
        sql.SQL("(extract(epoch FROM {}) * 1000000)::bigint AS {}").format(
            col("open_time"), sql.Identifier(OPEN_TIME_US)
        )
    )
    items += [
        sql.SQL("{}::float8 AS {}").format(col(c), sql.Identifier(c)) for c in NUMERIC_FEATURES
    ]
    items += [
        sql.SQL("{}::text AS {}").format(col(c), sql.Identifier(c)) for c in _categorical(keys)
    ]
    return sql.SQL(", ").join(items)


def feature_schema(keys: Sequence[str]) -> dict[str, pl.DataType]:
    """The polars schema of the rows of `feature_select(keys)`."""
    schema: dict[str, pl.DataType] = {k: pl.String() for k in keys}
    schema[OPEN_TIME_US] = pl.Int64()
    schema.update({c: pl.Float64() for c in NUMERIC_FEATURES})
    schema.update({c: pl.String() for c in _categorical(keys)})
    return schema


def is_class_label(label: str) -> bool:
    """Whether a label of `LABELS` is a direction (boolean) rather than a log return."""
    return label.startswith(LABEL_CLASS)


def label_select(*, table: str | None = None) -> sql.Composed:
    """The SELECT list of every label column of `marts.candle_labels`, in `LABELS` order."""

    def col(name: str) -> sql.Composable:
        return sql.Identifier(table, name) if table else sql.Identifier(name)

    return sql.SQL(", ").join(
        # COPY writes booleans as t/f; as 0/1 they parse natively
        sql.SQL("{}::boolean::int AS {}" if is_class_label(c) else "{}::float8 AS {}").format(
            col(c), sql.Identifier(c)
        )
        for c in LABELS
    )


def label_schema() -> dict[str, pl.DataType]:
    """The polars schema of the rows of `label_select()`."""
    return {c: pl.Int8() if is_class_label(c) else pl.Float64() for c in LABELS}
