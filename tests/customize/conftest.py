"""Fixtures for customize tests."""

from __future__ import annotations

import pandas as pd
import pytest
from customize_helpers import staples_frame


@pytest.fixture
def staples() -> pd.DataFrame:
    return staples_frame()
