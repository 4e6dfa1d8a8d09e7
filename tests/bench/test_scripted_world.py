"""The scripted world (``scripted:...`` model string) end to end: the bench recovers its known truth."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import polars as pl
import pytest

from factories import make_persona
from persona_testbed.bench import run_task
from persona_testbed.bench.validity import true_accuracy, true_pass_at_k
from persona_testbed.core.errors import UserError
from persona_testbed.llm import LLMClient
from persona_testbed.llm.backends.scripted import ScriptedBackend
from persona_testbed.llm.models import parse_model
from persona_testbed.llm.types import ChatParams
from persona_testbed.llm.world import parse_world
from persona_testbed.personas.io import write_personas

SEXES = ("Female", "Male")
RELIGIONS = ("Catholic", "Protestant", "Jewish", "Muslim", "None")


@pytest.fixture
def crowd():
    """40 personas: distinct ages, both sexes, five religions."""
    return [
        make_persona(f"c{i:02d}", age=str(20 + i), sex=SEXES[i % 2], religion=RELIGIONS[i % 5])
        for i in range(40)
    ]


@pytest.fixture
def questions(prompts):
    from persona_testbed.bench.records import BenchPrompt

    return [BenchPrompt(id=f"w{i}", text=f"World question {i}?", split="held_out") for i in range(15)]


def _run(task, world, crowd, questions, **kw):
    return run_task(task, candidate=world, judge=world, personas=crowd, prompts=questions, **kw)


def test_world_spec_parsing_and_errors():
    w = parse_world(
        "scripted:p=0.5,p.cot=0.7,fail.summary=0.3,judge_fail=0.1,uses=age+political_views,c=0.4,"
        "gap=sex=Female:-0.2,leak=0.05,world=3"
    )
    assert (
        w.p == {"persona": 0.5, "cot": 0.7, "summary": 0.5}
        and w.fail["summary"] == 0.3
        and w.fail["cot"] == 0
    )
    assert w.uses == ("age", "political views") and w.gap == ("sex", "Female", -0.2) and w.world == 3
    assert parse_world("scripted") == parse_world("scripted:")
    for bad, needle in [
        ("scripted:p=1.5", "must lie in"),
        ("scripted:q=1", "unknown key 'q'"),
        ("scripted:p.poem=0.1", "unknown mode"),
        ("scripted:p", "expected key=value"),
        ("scripted:gap=sex:0.2", "gap must be"),
        ("scripted:world=x", "not an integer"),
        ("scripted:uses=age+3d", "not a persona field"),
    ]:
        with pytest.raises(UserError, match=needle):
            parse_model(bad)


def test_cli_malformed_world_exit_2_nothing_written(cli, tmp_path, crowd):
    write_personas(crowd, tmp_path / "personas")
    out = tmp_path / "out"
    r = cli(
        "bench",
        "run",
        "main",
        "--candidate",
        "scripted:p=2",
        "--judge",
        "scripted",
        "--personas",
        tmp_path / "personas",
        "--out",
        out,
    )
    assert r.exit_code == 2 and "scripted world 'scripted:p=2': p=2 must lie in [0, 1]" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not out.exists()
    r = cli(
        "bench",
        "run",
        "main",
        "--candidate",
        "scripted",
        "--judge",
        "scripted",
        "--cluster",
        "item",
        "--personas",
        tmp_path / "personas",
        "--out",
        out,
    )
    assert (
        r.exit_code == 2 and "--cluster must be one of persona, prompt, none" in r.stderr and not out.exists()
    )


def test_backend_rates_match_the_spec(crowd):
    """Direct backend calls: personalisation and failure shares are the spec's, per mode."""
    backend = ScriptedBackend("scripted:p=0.3,p.cot=0.8,fail=0.2,uses=age")
    client = LLMClient(backend=backend, max_retries=0)
    from persona_testbed.bench.records import CotAnswer
    from persona_testbed.bench.templates import candidate_messages

    async def draw(mode, n):
        out = []
        for s in range(n):
            msgs = candidate_messages(mode, crowd[s % 40], "Q?")
            res = await client.chat(
                msgs, params=ChatParams(seed=s), schema=CotAnswer if mode == "cot" else None
            )
            out.append(res)
        return out

    persona = asyncio.run(draw("persona", 1500))
    cot = asyncio.run(draw("cot", 1500))
    for got, p in ((persona, 0.3), (cot, 0.8)):
        ok = [r for r in got if r.ok]
        assert abs(1 - len(ok) / len(got) - 0.2) < 4 * np.sqrt(0.2 * 0.8 / len(got))
        text = [(r.parsed or {}).get("answer", r.text) for r in ok]
        share = np.mean(["<<persona" in t for t in text])
        assert abs(share - p) < 4 * np.sqrt(p * (1 - p) / len(ok))
    assert json.loads(cot[0].text if cot[0].ok else cot[1].text).keys() == {"reasoning", "answer"}


def test_main_recovers_itt_and_answered_accuracy(tmp_path, crowd, questions):
    spec = "scripted:p=0.6,fail=0.2,judge_fail=0.1,c=0.5,leak=0.1"
    res = _run("main", spec, crowd, questions, n=400, seed=5, out_dir=tmp_path, modes=["persona", "baseline"])
    w = parse_world(spec)
    p, itt = true_accuracy(w)
    f = res["figures"]["modes"]["persona"]
    assert f["answered_accuracy"]["low"] <= p <= f["answered_accuracy"]["high"]
    assert f["accuracy"]["low"] <= itt <= f["accuracy"]["high"]
    assert abs(f["failure_rate"] - 0.2) < 4 * np.sqrt(0.2 * 0.8 / 400)
    assert abs(f["judge_failure_rate"] - 0.1) < 4 * np.sqrt(0.1 * 0.9 / f["items"])
    assert abs(f["leak_rate"] - 0.1) < 4 * np.sqrt(0.1 * 0.9 / 300)  # "As a 45-year-old" is caught
    assert f["accuracy"]["cluster"] == "persona" and f["accuracy"]["clusters"] == 40
    base = res["figures"]["modes"]["baseline"]
    assert base["answered_accuracy"]["estimate"] == 0.0  # no profile, no marker
    items = pl.read_parquet(tmp_path / "items.parquet")
    assert set(items.filter(pl.col("status") == "failed")["failed_stage"]) == {"candidate", "judge"}


def test_passk_equals_closed_form(crowd, questions):
    spec = "scripted:p=0.35,fail=0.1"
    res = _run("passk", spec, crowd, questions, n=300, seed=2, k=3)
    w = parse_world(spec)
    for k in (1, 2, 3):
        e = res["figures"]["pass_at_k"][str(k)]
        assert e["low"] <= true_pass_at_k(w, k) <= e["high"], (k, e)
    assert res["figures"]["failure_rate"] == pytest.approx(0.1, abs=0.04)


def test_loo_detects_used_attribute_not_ignored_one(crowd, questions):
    res = _run(
        "loo",
        "scripted:p=0.6,c=0.7,uses=age+sex",
        crowd,
        questions,
        n=200,
        seed=1,
        attributes=["age", "religion"],
    )
    att = res["figures"]["attributes"]
    assert att["age"]["matters"] and att["age"]["kappa_difference"]["high"] < 0
    assert att["age"]["accuracy"]["accuracy"]["estimate"] == 0.0  # a wrong marker never passes
    assert not att["religion"]["matters"]
    assert att["religion"]["kappa_difference"]["low"] <= 0 <= att["religion"]["kappa_difference"]["high"]
    assert att["religion"]["distinct_values"] == 5 and not att["religion"]["nearly_constant"]


def test_intersections_find_a_true_gap_not_a_false_one(crowd, questions):
    groups = ["sex=Female", "sex=Male"]
    gap = _run(
        "intersections", "scripted:p=0.5,gap=sex=Female:0.3", crowd, questions, n=200, seed=3, groups=groups
    )["figures"]["largest_gap"]
    assert gap["highest"] == "sex=Female" and gap["p_value"] < 0.05 and gap["low"] > 0
    assert gap["low"] <= 0.3 <= gap["high"]
    none = _run("intersections", "scripted:p=0.5", crowd, questions, n=200, seed=3, groups=groups)["figures"][
        "largest_gap"
    ]
    assert none["p_value"] > 0.05 and none["low"] == 0.0


def test_fidelity_matrix_on_the_world(crowd, pairs):
    """The persona judge prefers the answer tailored to itself: diagonal rank 1."""
    res = run_task(
        "fidelity",
        candidate="scripted:p=1",
        judge="scripted:p=1",
        personas=crowd[:4],
        pairs=[p.model_copy(update={"persona_id": crowd[i % 4].id}) for i, p in enumerate(pairs)],
        prompts=[],
        matrix_personas=3,
        matrix_questions=1,
        split="all",
    )
    assert res["figures"]["matrix"]["mean_diagonal_rank"] == 1.0
    assert res["figures"]["accuracy"]["cluster"] == "persona"


def test_cli_confidence_sets_every_interval(cli, tmp_path, crowd, questions):
    write_personas(crowd, tmp_path / "personas")
    q = tmp_path / "prompts.jsonl"
    q.write_text("".join(p.model_dump_json() + "\n" for p in questions))
    base = ["bench", "run", "main", "--candidate", "scripted:p=0.5", "--judge", "scripted", "--personas",
            tmp_path / "personas", "--prompts", q, "--n", "40", "--mode", "persona", "--json"]  # fmt: skip
    r = cli(*base, "--confidence", "1.2", "--out", tmp_path / "bad")
    assert r.exit_code == 2 and "--confidence must lie strictly between 0 and 1 (got 1.2)" in r.stderr
    assert not (tmp_path / "bad").exists()
    widths = {}
    for c in ("0.8", "0.99"):
        r = cli(*base, "--confidence", c, "--out", tmp_path / c)
        assert r.exit_code == 0, r.stderr
        acc = json.loads((tmp_path / c / "results.json").read_text())["figures"]["modes"]["persona"][
            "accuracy"
        ]
        assert acc["confidence"] == float(c)
        widths[c] = acc["high"] - acc["low"]
    assert widths["0.8"] < widths["0.99"]
