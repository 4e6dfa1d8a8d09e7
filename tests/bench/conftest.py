"""Bench test fixtures: tiny personas / prompts / pairs and scripted mock models."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from factories import make_persona
from persona_testbed.bench.records import BenchPair, BenchPrompt
from persona_testbed.llm import LLMClient
from persona_testbed.llm.backends.base import BackendReply
from persona_testbed.llm.types import Usage


@pytest.fixture
def personas():
    return [
        make_persona(
            "p-f1", sex="Female", race="Black or African American alone", defining_quirks="quirk-f1"
        ),
        make_persona(
            "p-f2", sex="Female", race="White alone", education="Master's degree", defining_quirks="quirk-f2"
        ),
        make_persona(
            "p-m1",
            sex="Male",
            race="Black or African American alone",
            defining_quirks="quirk-m1",
            employment_status="Civilian employed, at work",
        ),
        make_persona("p-m2", sex="Male", race="Asian alone", age="67", defining_quirks="quirk-m2"),
    ]


@pytest.fixture
def prompts():
    held = [
        BenchPrompt(id=f"q{i}", text=f"Question number {i}: should taxes rise?", split="held_out")
        for i in range(5)
    ]
    return held + [BenchPrompt(id="t0", text="A training question?", split="train")]


@pytest.fixture
def pairs(personas):
    out = []
    for p in personas:
        for i in range(3):
            out.append(
                BenchPair(
                    id=f"{p.id}-pair{i}",
                    persona_id=p.id,
                    prompt_id=f"q{i}",
                    question=f"Question number {i}: should taxes rise?",
                    chosen=f"CHOSEN answer {i} for {p.id}",
                    rejected=f"REJECTED answer {i} for {p.id}",
                    split="held_out",
                )
            )
    return out


class ScriptedBackend:
    """A mock backend whose reply is ``fn(messages, params)`` (params carry the derived seed)."""

    kind = "mock"

    def __init__(self, fn: Callable, model_id: str):
        self.fn = fn
        self.model_id = model_id
        self.model_string = model_id
        self.calls: list[tuple[list[dict], object]] = []

    async def complete(self, messages, params, structured):
        self.calls.append(([dict(m) for m in messages], params))
        text = self.fn(messages, params)
        return BackendReply(text=text, usage=Usage(prompt_tokens=1, completion_tokens=1))

    async def aclose(self):
        return None


@pytest.fixture
def scripted():
    """``scripted(fn, "name") -> (LLMClient, backend)``; fn(messages, params) -> reply text."""

    def make(fn: Callable, name: str):
        backend = ScriptedBackend(fn, name)
        return LLMClient(backend=backend, max_reasks=1), backend

    return make


def verdict(needs_revision: bool, reasoning: str = "because") -> str:
    return json.dumps({"reasoning": reasoning, "needs_revision": needs_revision})


def pick(choice: str) -> str:
    return json.dumps({"reasoning": "as this person", "preferred": choice})


def section(messages, title: str) -> str:
    """The text after ``title`` up to the next blank line, in the user message."""
    user = messages[-1]["content"] if messages[-1]["role"] == "user" else messages[1]["content"]
    rest = user.split(title, 1)[1]
    return rest.split("\n\n", 1)[0]


@pytest.fixture
def helpers():
    class H:
        pass

    h = H()
    h.verdict, h.pick, h.section = verdict, pick, section
    return h
