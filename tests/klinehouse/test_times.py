"""The one ISO time reader: naive means UTC, an offset is kept, junk is a named error."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from klinehouse import times


def test_naive_is_utc_and_offsets_are_kept() -> None:
    assert times.parse_utc("2024-01-01") == datetime(2024, 1, 1, tzinfo=UTC)
    assert times.parse_utc("2024-01-01T12:30Z") == datetime(2024, 1, 1, 12, 30, tzinfo=UTC)
    east = times.parse_utc("2024-01-01T12:00+02:00")
    assert east.utcoffset() == timedelta(hours=2)
    assert east == datetime(2024, 1, 1, 10, tzinfo=UTC)
    assert times.parse_iso("2024-01-01T12:00").tzinfo is None
    moment = datetime(2024, 5, 1, tzinfo=timezone(timedelta(hours=-5)))
    assert times.assume_utc(moment) is moment


def test_junk_names_the_text() -> None:
    with pytest.raises(ValueError, match="not an ISO date or time: 'yesterday'"):
        times.parse_utc("yesterday")
