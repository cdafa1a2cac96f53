"""The CatBoost settings of a training, and their one set of defaults.

A module of its own, without CatBoost, so that the train CLI shows these defaults
in `--help` and the DAG's task falls back to them without importing the models.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class ModelConfig:
    iterations: int = 400
    depth: int = 4
    learning_rate: float = 0.03
    l2_leaf_reg: float = 10.0
    early_stopping_rounds: int = 50
    seed: int = 42
    thread_count: int = 2

    def as_dict(self) -> dict[str, object]:
        return asdict(self)
