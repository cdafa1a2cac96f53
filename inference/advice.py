"""The advice of a prediction and the ranking GetAdvice answers with.

The rule itself (buy at P(up) >= buy threshold, sell at <= sell threshold, else
hold) is the backtest's, `training.backtest.Advice.signal`, with the champion's
registered thresholds: the service advises what was backtested.
"""

from __future__ import annotations

from collections.abc import Sequence

from inference.champion import ChampionModel
from klinehouse.v1 import prediction_service_pb2 as pb
from training.backtest import Advice, Signal

_ADVICE: dict[Signal, int] = {
    "buy": pb.ADVICE_BUY,
    "sell": pb.ADVICE_SELL,
    "hold": pb.ADVICE_HOLD,
}


def advice_of(p_up: float, model: ChampionModel) -> int:
    """The proto Advice for one probability under the champion's thresholds."""
    return _ADVICE[Advice(model.buy_threshold, model.sell_threshold).signal(p_up)]


def ranked_advice(preds: Sequence[pb.Prediction], model_version: str) -> pb.GetAdviceResponse:
    """Predictions by expected return, best first; the best buy and the worst sell."""
    ranked = sorted(preds, key=lambda p: p.expected_log_return, reverse=True)
    response = pb.GetAdviceResponse(ranked=ranked, model_version=model_version)
    buys = [p for p in ranked if p.advice == pb.ADVICE_BUY]
    sells = [p for p in ranked if p.advice == pb.ADVICE_SELL]
    if buys:
        response.best_buy.CopyFrom(buys[0])
    if sells:
        response.worst_sell.CopyFrom(sells[-1])
    return response
