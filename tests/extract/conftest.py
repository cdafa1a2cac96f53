"""Fixtures of the extract tests: settings pointing at a fresh database and a fresh lake bucket."""

from __future__ import annotations

import pytest

from klinehouse.settings import Settings, get_settings


@pytest.fixture
def warehouse(
    database_url: str, lake_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    """get_settings() sees a fresh migrated database and an empty lake bucket."""
    monkeypatch.setenv("KLINEHOUSE_DATABASE_URL", database_url)
    return get_settings(fresh=True)
