"""Shared fixtures: an isolated home directory, the offline data mirror, and an in-process CLI runner."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

REPO_ROOT = Path(__file__).resolve().parents[1]


def find_mirror() -> Path | None:
    """The offline data mirror: $PERSONA_TESTBED_MIRROR, ../shared/data next to the repo, or /work/shared/data."""
    candidates = [
        os.environ.get("PERSONA_TESTBED_MIRROR"),
        REPO_ROOT.parent / "shared" / "data",
        Path("/work/shared/data"),
    ]
    for c in candidates:
        if c and (Path(c) / "SHA256SUMS").exists():
            return Path(c)
    return None


@pytest.fixture(autouse=True)
def tmp_home(tmp_path_factory, monkeypatch) -> Path:
    """Every test gets its own PERSONA_TESTBED_HOME; no test touches the user's cache."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("PERSONA_TESTBED_HOME", str(home))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    return home


@pytest.fixture
def mirror() -> Path:
    m = find_mirror()
    if m is None:
        pytest.skip("offline data mirror (../shared/data) not available")
    return m


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def cli():
    """Run the CLI in-process: ``cli("data", "list", "--json")`` -> CliResult."""
    from persona_testbed.cli.root import app

    def run(*args: str, input: str | None = None) -> CliResult:
        result = CliRunner().invoke(app, [str(a) for a in args], input=input, catch_exceptions=False)
        return CliResult(result.exit_code, result.stdout, result.stderr)

    return run
