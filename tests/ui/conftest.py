"""Fixtures of the Recsys page tests: a migrated data database holding the rows of uidata.seed."""

from __future__ import annotations

import pytest

from recsys.config import Settings
from uidata import seed


@pytest.fixture
def ui_settings(settings: Settings) -> Settings:
    seed(settings)
    return settings
