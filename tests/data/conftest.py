"""A real HTTP server on 127.0.0.1 serving fixture files (``origin_fixtures``), no real origin reachable."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from origin_fixtures import file_server_running

_MIRROR_ENV = os.environ.get("PERSONA_TESTBED_MIRROR")


@pytest.fixture(autouse=True)
def _no_mirror_env(monkeypatch):
    """Data tests choose their mirror explicitly; a PERSONA_TESTBED_MIRROR set for CI must not leak in.
    No test reaches a real origin: every official host points at a closed port on 127.0.0.1 unless the
    test moves it to its own loopback server."""
    monkeypatch.delenv("PERSONA_TESTBED_MIRROR", raising=False)
    for var in (
        "PERSONA_TESTBED_CENSUS_URL",
        "PERSONA_TESTBED_HF_URL",
        "HF_ENDPOINT",
        "PERSONA_TESTBED_GSS_URL",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PERSONA_TESTBED_ORIGINS_URL", "http://127.0.0.1:9")


@pytest.fixture
def mirror() -> Path:
    """The offline mirror (as the root fixture), found from the environment captured at import."""
    here = Path(__file__).resolve().parents[2]
    for c in (_MIRROR_ENV, here.parent / "shared" / "data", Path("/work/shared/data")):
        if c and (Path(c) / "SHA256SUMS").exists():
            return Path(c)
    pytest.skip("offline data mirror (../shared/data) not available")


@pytest.fixture
def file_server():
    with file_server_running() as state:
        yield state
