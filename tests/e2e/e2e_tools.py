"""Helpers for end-to-end drills: a schema-aware deterministic stub responder, tiny run configs."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

QUESTIONS = [
    "Should the government raise taxes on the very rich?",
    "Is it ever right to break the law to protest?",
    "Should parents be allowed to homeschool their children freely?",
    "Do you think religion makes society better or worse?",
    "Should abortion be legal in most cases, in your view?",
    "Is it fair that college admissions consider family legacy?",
    "Should people be allowed to own assault style rifles?",
    "Is eating meat morally wrong in the modern world?",
    "Should the voting age be lowered to sixteen years old?",
    "Is nuclear power a good answer to climate change?",
    "Should immigration to this country be reduced a lot?",
    "Is it wrong for companies to track their workers online?",
]


def find_mirror() -> Path | None:
    """The offline data mirror, looked up like tests/conftest.py does (env, ../shared/data, /work/shared/data)."""
    import os

    repo = Path(__file__).resolve().parents[2]
    for c in (
        os.environ.get("PERSONA_TESTBED_MIRROR"),
        repo.parent / "shared" / "data",
        Path("/work/shared/data"),
    ):
        if c and (Path(c) / "SHA256SUMS").exists():
            return Path(c)
    return None


def _digest(request: dict[str, Any]) -> int:
    return int(
        hashlib.sha256(json.dumps(request.get("messages", []), sort_keys=True).encode()).hexdigest()[:8], 16
    )


def _fill(schema: dict[str, Any], defs: dict[str, Any], h: int) -> Any:
    if "$ref" in schema:
        return _fill(defs[schema["$ref"].split("/")[-1]], defs, h)
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            options = [s for s in schema[key] if s.get("type") != "null"] or schema[key]
            return _fill(options[0], defs, h)
    if "enum" in schema:
        return schema["enum"][h % len(schema["enum"])]
    if "const" in schema:
        return schema["const"]
    t = schema.get("type")
    if isinstance(t, list):
        t = next((x for x in t if x != "null"), "string")
    if t == "object" or "properties" in schema:
        props = schema.get("properties", {})
        return {k: _fill(v, defs, h // (i + 2) + i) for i, (k, v) in enumerate(props.items())}
    if t == "array":
        return [
            _fill(schema.get("items", {"type": "string"}), defs, h + i)
            for i in range(schema.get("minItems", 0))
        ]
    if t == "boolean":
        return True  # e.g. "is this prompt contested?": keep every prompt in play
    if t == "integer":
        return max(int(schema.get("minimum", 0)), 1)
    if t == "number":
        return float(schema.get("minimum", 0.5))
    limit = schema.get("maxLength", 60)
    return f"stub text {h % 997}"[: max(1, limit)]


def schema_responder(request: dict[str, Any]) -> str:
    """Deterministic replies: schema-valid JSON when a JSON schema is requested, short text otherwise."""
    h = _digest(request)
    fmt = request.get("response_format") or {}
    if fmt.get("type") == "json_schema":
        schema = fmt.get("json_schema", {}).get("schema", {})
        return json.dumps(_fill(schema, schema.get("$defs", {}), h))
    if fmt.get("type") == "json_object":
        return "{}"
    return f"Stub answer {h % 10007}: it depends on values."


def write_prompts_file(path: Path) -> Path:
    path.write_text("\n".join(QUESTIONS) + "\n", encoding="utf-8")
    return path


def stub_config(
    tmp: Path,
    mirror: Path,
    base_url: str,
    *,
    name: str = "drill",
    bench: bool = True,
    max_retries: int = 4,
    timeout_s: float = 5.0,
    pairs: tuple[int, int, int] = (1, 1, 1),
    concurrency: int = 4,
    classify: bool = True,
    enrich: bool = False,
) -> Path:
    """A tiny run config against the stub server (``openai/stub``), 2018 Wyoming census, 12 prompts."""
    prompts = write_prompts_file(tmp / "questions.txt")
    bench_toml = (
        """
[bench]
tasks = ["main", "passk", "loo", "intersections", "fidelity"]
[bench.main]
n = 2
modes = ["baseline", "persona"]
[bench.passk]
n = 1
samples = 2
k = 2
[bench.loo]
n = 1
attributes = ["age"]
[bench.intersections]
n = 1
[bench.intersections.groups.adults]
age = "18..120"
[bench.fidelity]
n = 2
discrimination_personas = 2
"""
        if bench
        else "\n[bench]\ntasks = []\n"
    )
    text = f"""name = "{name}"
seed = 3
[models]
default = "openai/stub"
[llm]
base_url = "{base_url}"
concurrency = {concurrency}
max_retries = {max_retries}
timeout_s = {timeout_s}
max_tokens = 48
[data]
dir = "{mirror}"
[census]
source = "acs2018"
states = ["WY"]
fidelity_reference = 100
[personas]
n = 3
render = "summary"
[personas.enrich]
enabled = {"true" if enrich else "false"}
[prompts]
source = "{prompts}"
clusters = 2
classify = {"true" if classify else "false"}
held_out_fraction = 0.34
[feedback.pairs]
train = {pairs[0]}
test = {pairs[1]}
held_out = {pairs[2]}
{bench_toml}
[report]
enabled = true
"""
    cfg = tmp / f"{name}.toml"
    cfg.write_text(text, encoding="utf-8")
    return cfg


# -- fixtures (imported by the test modules; no conftest.py here, so no module-name clash) -------------


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
