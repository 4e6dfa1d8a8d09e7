"""Shared helpers for feedback tests: a scripted DPF model and tiny prompt / persona sets."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from factories import make_persona
from persona_testbed.personas import write_personas
from persona_testbed.prompts.build import PromptBuildConfig, assign_clusters_and_split, make_prompts
from persona_testbed.prompts.io import write_prompts
from persona_testbed.prompts.record import FilterVerdict

REJECTED = "Here is a plain and generic answer to the question you asked."


def scripted_reply(messages) -> str:
    """Deterministic replies keyed on the DPF templates; the judge always says "A" (position bias); revisions
    land in the requested word range."""
    system, user = messages[0]["content"], messages[-1]["content"]
    if "Which answer do you prefer" in user:
        return json.dumps({"choice": "A"})
    if system.startswith("You are a helpful assistant"):
        return REJECTED + " " + user[:20]
    if "role-playing" in system:
        return "As this person, I find 'plain and generic' too vague."
    return revision_in_band(user)


def revision_in_band(user: str) -> str:
    """ "A plainer fitting answer ..." with as many words as the low end of the requested range."""
    m = re.search(r"between (\d+) and (\d+) words", user)
    n = int(m.group(1)) if m else 4
    words = ["A", "plainer", "fitting", "answer"] + ["indeed"] * max(0, n - 4)
    return " ".join(words[:n]) + "."


def make_prompt_set(n_train: int, n_held: int):
    """Kept prompts with a fixed split (n_train train, n_held held-out)."""
    items = [(i, f"Contested question number {i} about values?") for i in range(1, n_train + n_held + 1)]
    prompts = make_prompts(items, "test")
    for p in prompts:
        p.verdicts["question_mark"] = FilterVerdict(verdict="pass")
    assign_clusters_and_split(prompts, PromptBuildConfig(clusters=1, held_out_fraction=0.0))
    for p in prompts[n_train:]:
        p.split = "held_out"
    return prompts


@pytest.fixture
def prompt_set():
    return make_prompt_set


@pytest.fixture
def personas3():
    return [make_persona(f"p-{i}", serialno=f"2024HU{i:07d}", age=str(25 + 10 * i)) for i in range(3)]


@pytest.fixture
def input_files(tmp_path, personas3):
    """(personas dir, prompts dir) on disk: 3 personas, 6 train + 2 held-out prompts."""
    pdir, qdir = tmp_path / "personas", tmp_path / "prompts"
    write_personas(personas3, pdir)
    write_prompts(make_prompt_set(6, 2), qdir)
    return Path(pdir), Path(qdir)


@pytest.fixture
def scripted():
    return scripted_reply
