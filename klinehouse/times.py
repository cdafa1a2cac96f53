"""The one reader of ISO dates and times given by users, DAG params and CLIs.

Naive times are UTC (Binance's clock and the warehouse's); callers wrap the
ValueError in their own error type (a click parameter error, a KlinehouseError).
"""

from __future__ import annotations

from datetime import UTC, datetime


def parse_iso(text: str) -> datetime:
    """`2024-01-01`, `2024-01-01T12:00`, `…Z`, `…+02:00` as a datetime (naive if given so).

    ValueError names the text when it is no ISO date or time.
    """
    try:
        return datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise ValueError(f"not an ISO date or time: {text!r}") from None


def assume_utc(moment: datetime) -> datetime:
    """A naive time as UTC; an aware one unchanged."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_utc(text: str) -> datetime:
    """An ISO date or time as an aware datetime, naive meaning UTC."""
    return assume_utc(parse_iso(text))
