"""Fixtures for end-to-end drills: a shared home (census decode cache), a schema-aware stub server."""

from __future__ import annotations

from pathlib import Path

import pytest

from e2e_tools import schema_responder


@pytest.fixture(scope="session")
def shared_home(tmp_path_factory) -> Path:
    """One PERSONA_TESTBED_HOME for the e2e tests: the decoded census cache is built once."""
    return tmp_path_factory.mktemp("e2e-home")


@pytest.fixture
def e2e_env(shared_home, monkeypatch) -> Path:
    monkeypatch.setenv("PERSONA_TESTBED_HOME", str(shared_home))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-SECRET-4242-do-not-leak")
    return shared_home


@pytest.fixture
def stub():
    from persona_testbed.llm.stub_server import StubServer

    with StubServer(responder=schema_responder, seed=11) as srv:
        yield srv
