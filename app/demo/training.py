"""The demo's training step: train on the loaded marts, show the verdict and the report."""

from __future__ import annotations

from app.demo.output import say
from training import registry
from training.dataset import DatasetSpec
from training.pipeline import train
from training.records import formatted


def step() -> None:
    result = train(DatasetSpec("spot", "1h"))
    m, bt = result.metrics, result.metrics.backtest
    shuffled = m.leakage_check.shuffled_label_auc if m.leakage_check else None
    say(
        f"  out of sample: AUC {formatted(m.classifier.auc, '.4f')},"
        f" log loss {m.classifier.log_loss:.5f}"
        f" (majority {m.majority.log_loss:.5f}, momentum {m.momentum.log_loss:.5f}),"
        f" shuffled-label AUC {formatted(shuffled, '.4f')}"
    )
    say(
        f"  net of fees: model {bt.model.net_return:+.2%}, buy-and-hold"
        f" {bt.buy_and_hold.net_return:+.2%}, momentum {bt.momentum.net_return:+.2%}"
    )
    say(f"  model {result.version}: {result.status} ({result.reason})")
    if result.status != "champion" and registry.champion_version(url=None) is None:
        # The service needs some model to serve. Say loudly that this one did not earn it;
        # the registry records the hand promotion and the rule's reason beside it.
        outcome = registry.promote(result.version, force=True)
        say(
            f"  no model passed the promotion rule: {result.version} promoted BY HAND for the demo"
            " (recorded in ml.model_registry)",
            fg="yellow",
        )
        assert outcome.status == "champion"
    say(f"  report: {result.report}")
    say(f"  (also in the lake under {result.artifact_uri}report/)")
