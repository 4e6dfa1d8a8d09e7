"""The few-shot baseline (bench task main, modes fewshot / fewshot-retrieved)."""

from __future__ import annotations

import json

import polars as pl
import pytest

from factories import make_persona
from persona_testbed.bench import run_task
from persona_testbed.bench.fewshot import ShotBank
from persona_testbed.bench.records import BenchItem, BenchPair, BenchPrompt
from persona_testbed.bench.templates import EXAMPLES_TITLE, candidate_messages
from persona_testbed.core.errors import ConfigError, UserError
from persona_testbed.llm import world
from persona_testbed.personas.io import write_personas
from persona_testbed.pipeline.config import parse_config
from persona_testbed.pipeline.stages.bench import bench_specs


def verdict(needs_revision: bool) -> str:
    return json.dumps({"reasoning": "because", "needs_revision": needs_revision})


TOPICS = [
    "gardening tomatoes soil",
    "retirement savings pension",
    "church attendance faith",
    "electric cars charging",
    "school homework children",
    "vegan diet protein",
]


def _pairs(personas, n_train=6):
    """Per persona: n_train train pairs (one per topic), 2 test and 2 held-out pairs with marked answers."""
    out = []
    for p in personas:
        for i in range(n_train):
            out.append(
                BenchPair(
                    id=f"{p.id}-train{i}",
                    persona_id=p.id,
                    prompt_id=f"t{i}",
                    question=f"How should I think about {TOPICS[i % len(TOPICS)]}?",
                    chosen=f"TRAIN-{p.id}-{i}",
                    rejected="r",
                    split="train",
                )
            )
        for split in ("test", "held_out"):
            for i in range(2):
                out.append(
                    BenchPair(
                        id=f"{p.id}-{split}{i}",
                        persona_id=p.id,
                        prompt_id=f"{split}{i}",
                        question=f"{split} question {i}?",
                        chosen=f"SECRET-{split}-{p.id}-{i}",
                        rejected="r",
                        split=split,
                    )
                )
    return out


@pytest.fixture
def questions():
    return [
        BenchPrompt(id=f"h{i}", text=f"What about {TOPICS[i % len(TOPICS)]} for me?", split="held_out")
        for i in range(6)
    ]


def test_fewshot_shows_only_train_pairs(personas, questions, scripted, tmp_path):
    cand, cand_backend = scripted(lambda m, p: "an answer", "cand")
    judge, _ = scripted(lambda m, p: verdict(False), "judge")
    res = run_task(
        "main",
        candidate=cand,
        judge=judge,
        personas=personas,
        prompts=questions,
        pairs=_pairs(personas),
        n=12,
        seed=3,
        out_dir=tmp_path,
        modes=["fewshot", "fewshot-retrieved"],
        shots=3,
    )
    assert res["config"]["task"]["shots"] == 3 and set(res["figures"]["modes"]) == {
        "fewshot",
        "fewshot-retrieved",
    }
    systems = [msgs[0]["content"] for msgs, _ in cand_backend.calls]
    assert len(systems) == 24 and all(EXAMPLES_TITLE in s for s in systems)
    assert not any("SECRET" in s for s in systems)  # no test or held-out pair ever reaches the prompt
    assert all(s.count("Preferred answer: TRAIN-") == 3 for s in systems)
    items = pl.read_parquet(tmp_path / "items.parquet")
    for row in items.iter_rows(named=True):
        shots = json.loads(row["extra"])["parts"]["shots"]
        assert len(shots) == 3 and all(s.startswith(f"{row['persona_id']}-train") for s in shots)


def test_retrieved_picks_nearest_questions_and_fixed_pick_is_stable(personas):
    bank = ShotBank(_pairs(personas), k=2, seed=0)
    item = BenchItem(
        persona=personas[0], prompt_id="h1", question="Is my pension enough for retirement savings?"
    )
    near = bank.shots(item, "fewshot-retrieved")
    assert near[0].id == "p-f1-train1"  # the retirement-savings question
    other = BenchItem(persona=personas[0], prompt_id="h2", question="Anything else?")
    assert [p.id for p in bank.shots(item, "fewshot")] == [p.id for p in bank.shots(other, "fewshot")]
    # a train pair about the question being answered is never its own example
    same = BenchItem(
        persona=personas[0], prompt_id="t1", question="How should I think about retirement savings pension?"
    )
    assert "p-f1-train1" not in [p.id for p in bank.shots(same, "fewshot-retrieved")]


def test_too_many_shots_is_one_line_error(personas, questions, scripted):
    cand, backend = scripted(lambda m, p: "x", "cand")
    judge, _ = scripted(lambda m, p: verdict(False), "judge")
    with pytest.raises(UserError, match=r"--shots 7: persona p-\w+ has 6 usable train pairs"):
        run_task(
            "main",
            candidate=cand,
            judge=judge,
            personas=personas,
            prompts=questions,
            pairs=_pairs(personas),
            n=4,
            modes=["fewshot"],
            shots=7,
        )
    assert backend.calls == []  # checked before any call
    with pytest.raises(UserError, match="need the persona's train pairs"):
        run_task(
            "main", candidate=cand, judge=judge, personas=personas, prompts=questions, n=4, modes=["fewshot"]
        )
    with pytest.raises(UserError, match="available in task main only"):
        run_task(
            "passk",
            candidate=cand,
            judge=judge,
            personas=personas,
            prompts=questions,
            n=2,
            k=1,
            mode="fewshot",
        )
    with pytest.raises(UserError, match="--shots applies"):
        run_task(
            "main",
            candidate=cand,
            judge=judge,
            personas=personas,
            prompts=questions,
            n=2,
            modes=["persona"],
            shots=2,
        )


def test_cli_fewshot_and_too_many_shots(cli, tmp_path, personas, questions):
    write_personas(personas, tmp_path / "personas")
    (tmp_path / "prompts.jsonl").write_text("".join(q.model_dump_json() + "\n" for q in questions))
    (tmp_path / "pairs.jsonl").write_text("".join(p.model_dump_json() + "\n" for p in _pairs(personas)))
    base = [
        "bench",
        "run",
        "main",
        "--candidate",
        "scripted:p=0.5,p.fewshot=0.9",
        "--judge",
        "scripted",
        "--personas",
        tmp_path / "personas",
        "--prompts",
        tmp_path / "prompts.jsonl",
        "--pairs",
        tmp_path / "pairs.jsonl",
        "--mode",
        "fewshot",
        "--mode",
        "persona",
        "--n",
        "8",
    ]
    bad = tmp_path / "bad"
    r = cli(*base, "--shots", "9", "--out", bad)
    assert r.exit_code == 2 and len(r.stderr.strip().splitlines()) == 1 and "--shots 9" in r.stderr
    assert not bad.exists()
    out = tmp_path / "ok"
    r = cli(*base, "--shots", "2", "--out", out, "--json")
    assert r.exit_code == 0, r.stderr
    res = json.loads(r.stdout)
    assert set(res["figures"]["modes"]) == {"fewshot", "persona"} and res["config"]["task"]["shots"] == 2


def test_scripted_world_fewshot_vs_persona(personas, tmp_path):
    crowd = [make_persona(f"c{i:02d}", age=str(20 + i)) for i in range(30)]
    qs = [BenchPrompt(id=f"w{i}", text=f"World question {i}?", split="held_out") for i in range(10)]
    spec = "scripted:p=0.4,p.fewshot=0.8"
    res = run_task(
        "main",
        candidate=spec,
        judge=spec,
        personas=crowd,
        prompts=qs,
        pairs=_pairs(crowd),
        n=300,
        seed=1,
        out_dir=tmp_path,
        modes=["persona", "fewshot", "fewshot-retrieved"],
    )
    m = res["figures"]["modes"]
    for mode, p in (("persona", 0.4), ("fewshot", 0.8), ("fewshot-retrieved", 0.8)):
        assert m[mode]["accuracy"]["low"] <= p <= m[mode]["accuracy"]["high"], (mode, m[mode]["accuracy"])
    assert world.EXAMPLES_TITLE == EXAMPLES_TITLE  # the world recognises the bench's prompt


def test_config_modes_shots_and_specs(tmp_path):
    cfg = parse_config(
        {
            "feedback": {"pairs": {"train": 5}},
            "bench": {"main": {"modes": ["persona", "fewshot-retrieved"], "shots": 5}},
        }
    )
    main = next(s for s in bench_specs(cfg, tmp_path, tmp_path / "bench") if s.task == "main")
    assert main.pairs == str(tmp_path / "feedback") and main.options["shots"] == 5
    plain = next(s for s in bench_specs(parse_config({}), tmp_path, tmp_path / "bench") if s.task == "main")
    assert plain.pairs is None and "shots" not in plain.options
    with pytest.raises(ConfigError, match=r"bench.main.shots: 4 is more than the 1 train pairs"):
        parse_config({"bench": {"main": {"modes": ["fewshot"]}}})
    with pytest.raises(ConfigError, match="bench.main.modes"):
        parse_config({"bench": {"main": {"modes": ["fewshot-random"]}}})


def test_messages_need_shots_exactly_in_fewshot_modes(personas):
    with pytest.raises(ValueError):
        candidate_messages("fewshot", personas[0], "Q?")
    with pytest.raises(ValueError):
        candidate_messages("persona", personas[0], "Q?", shots=[("a", "b")])
