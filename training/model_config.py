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
    # ordered target statistics of the symbol follow the rows' time order instead of
    # random permutations: no later bar informs an earlier one's encoding, and CatBoost
    # keeps no per-permutation copies (~0.15 GB less per million rows at fit)
    has_time: bool = True

    def as_dict(self) -> dict[str, object]:
        return asdict(self)
