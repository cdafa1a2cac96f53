"""`klinehouse train` shows and uses ModelConfig's defaults, not copies of them."""

from __future__ import annotations

import click

from training.cli import train
from training.model_config import ModelConfig


def test_train_option_defaults_are_model_configs() -> None:
    defaults = {p.name: p.default for p in train.params if isinstance(p, click.Option)}
    config = ModelConfig()
    assert (defaults["iterations"], defaults["seed"], defaults["threads"]) == (
        config.iterations,
        config.seed,
        config.thread_count,
    )


def test_train_candidates_option_and_unknown_names() -> None:
    from training.candidates import DEFAULT_CANDIDATES
    from training.cli import _candidates

    assert _candidates(()) == DEFAULT_CANDIDATES
    assert _candidates(("catboost_h1, logistic_h1", "catboost_h4")) == (
        "catboost_h1",
        "logistic_h1",
        "catboost_h4",
    )
