"""Fixtures for report tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from report_fixtures import write_synthetic_run


@pytest.fixture
def synthetic_run(tmp_path) -> Path:
    return write_synthetic_run(tmp_path / "run")
