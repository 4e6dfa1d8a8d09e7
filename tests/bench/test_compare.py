"""Many candidates on one item set, ``bench compare``: paired differences, McNemar, leaderboard, refusals."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import polars as pl
import pytest

from factories import make_persona
from persona_testbed.bench.analysis import Stats
from persona_testbed.bench.compare import compare_runs, mcnemar_exact, paired_difference, unpaired_difference
from persona_testbed.bench.leaderboard import Comparison
from persona_testbed.core.errors import UserError
from persona_testbed.personas.io import write_personas

JUDGE = "scripted:p=1"
CANDS = ["scripted:p=0.8,c=0.6", "scripted:p=0.6,c=0.6", "scripted:p=0.4,c=0.6"]


@pytest.fixture
def world(tmp_path):
    crowd = [make_persona(f"c{i:02d}", age=str(20 + i), sex=("Female", "Male")[i % 2]) for i in range(30)]
    write_personas(crowd, tmp_path / "personas")
    q = tmp_path / "prompts.jsonl"
    q.write_text(
        "".join(
            json.dumps({"id": f"w{i}", "text": f"World question {i}?", "split": "held_out"}) + "\n"
            for i in range(8)
        )
    )
    return tmp_path


def _run(cli, world, out, *cands, n=60, judge=JUDGE, seed=0, extra=()):
    args = [
        "bench",
        "run",
        "main",
        "--judge",
        judge,
        "--personas",
        world / "personas",
        "--prompts",
        world / "prompts.jsonl",
        "--n",
        n,
        "--seed",
        seed,
        "--mode",
        "persona",
        "--mode",
        "baseline",
        "--resamples",
        500,
        "--out",
        out,
        *extra,
    ]
    for c in cands:
        args += ["--candidate", c]
    return cli(*args)


def test_mcnemar_matches_brute_force_enumeration():
    """Exact McNemar = share of sign assignments of the discordant items at least as extreme as observed."""
    for a_only, b_only in [(0, 0), (1, 0), (3, 1), (5, 5), (7, 2), (0, 9), (10, 3)]:
        n = a_only + b_only
        obs = abs(a_only - b_only)
        extreme = sum(1 for signs in itertools.product((0, 1), repeat=n) if abs(2 * sum(signs) - n) >= obs)
        assert math.isclose(mcnemar_exact(a_only, b_only), extreme / 2**n, rel_tol=1e-9, abs_tol=1e-12)


def test_paired_difference_matches_brute_force_cluster_resampling():
    """The paired interval equals resampling whole personas for both candidates at once, by hand."""
    rng = np.random.default_rng(3)
    personas = np.repeat(np.arange(12), 3)
    hard = rng.random(12)[personas]
    a = (rng.random(36) < 0.3 + 0.6 * hard).astype(float)
    b = (rng.random(36) < 0.2 + 0.6 * hard).astype(float)
    stats = Stats(seed=1, task="t", n_resamples=400)
    est = paired_difference(a, b, personas, stats, "m")
    assert est.estimate == pytest.approx(a.mean() - b.mean())
    # brute force: the same cluster draws (rng.integers per resample, as stats.resampled_totals draws them)
    r = stats.rng("m")
    draws = r.integers(0, 12, size=(400, 12))
    boot = []
    for d in draws:
        idx = np.concatenate([np.flatnonzero(personas == g) for g in d])
        boot.append(a[idx].mean() - b[idx].mean())
    lo, hi = np.percentile(boot, [2.5, 97.5])
    from persona_testbed.bench.stats import small_sample_factor

    k = small_sample_factor(12)
    d0 = a.mean() - b.mean()
    assert est.low == pytest.approx(max(-1, d0 - (d0 - lo) * k), abs=1e-9)
    assert est.high == pytest.approx(min(1, d0 + (hi - d0) * k), abs=1e-9)
    # correlated candidates: the unpaired interval is wider
    un = unpaired_difference(a, b, personas, stats, "u")
    assert (un.high - un.low) > (est.high - est.low)


def test_three_candidates_one_item_set_leaderboard(cli, world):
    out = world / "three"
    r = _run(cli, world, out, *CANDS, extra=["--json"])
    assert r.exit_code == 0, r.stderr
    c = Comparison.model_validate(json.loads(r.stdout))
    assert c.candidates == CANDS and c.items == 120  # 60 items x 2 modes, shared by all
    persona = [x for x in c.leaderboard if x.arm == "persona"]
    assert [x.candidate for x in persona] == CANDS and [x.rank for x in persona] == [1, 2, 3]
    assert all(x.tokens is not None and x.calls == 240 for x in c.leaderboard)
    assert len(c.differences) == 3 * 2  # 3 pairs x 2 modes
    d = next(x for x in c.differences if x.arm == "persona" and x.a == CANDS[0] and x.b == CANDS[2])
    assert d.difference.low > 0 and d.mcnemar_p < 0.01
    assert (d.unpaired.high - d.unpaired.low) > (d.difference.high - d.difference.low)
    # per-candidate results on disk, the same items for each
    subs = sorted((out / "candidates").iterdir())
    assert len(subs) == 3 and all((s / "results.json").is_file() for s in subs)
    items = [set(pl.read_parquet(s / "items.parquet")["item_id"].to_list()) for s in subs]
    assert len(items[0]) == 60 and items[0] == items[1] == items[2]
    assert json.loads((out / "comparison.json").read_text())["kind"] == "comparison"
    # bench compare on the finished multi-candidate run gives the same leaderboard
    r2 = cli("bench", "compare", out, "--json")
    assert r2.exit_code == 0, r2.stderr
    c2 = Comparison.model_validate(json.loads(r2.stdout))
    assert [(x.candidate, x.arm, x.accuracy.estimate) for x in c2.leaderboard] == [
        (x.candidate, x.arm, x.accuracy.estimate) for x in c.leaderboard
    ]
    table = cli("bench", "compare", out)
    assert table.exit_code == 0 and "leaderboard" in table.stdout and "paired differences" in table.stdout
    # bench plan on the pilot plans every candidate (their results are under candidates/)
    plan = cli("bench", "plan", out, "--json")
    assert plan.exit_code == 0, plan.stderr
    rows = json.loads(plan.stdout)
    assert {r["candidate"] for r in rows} == set(CANDS)
    assert {(r["candidate"], r["figure"]) for r in rows} == {
        (c, f"accuracy ({m})") for c in CANDS for m in ("persona", "baseline")
    }


def test_duplicate_candidates_one_line_nothing_written(cli, world):
    out = world / "dup"
    r = _run(cli, world, out, CANDS[0], CANDS[1], CANDS[0])
    assert r.exit_code == 2 and f"candidate {CANDS[0]!r} is listed twice" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not out.exists()


def test_compare_separate_runs_and_refusals(cli, world):
    a, b = world / "a", world / "b"
    assert _run(cli, world, a, CANDS[0], n=30).exit_code == 0
    assert _run(cli, world, b, CANDS[1], n=40).exit_code == 0  # a longer item list: shares the first 30
    r = cli("bench", "compare", a, b, "--json")
    assert r.exit_code == 0, r.stderr
    c = Comparison.model_validate(json.loads(r.stdout))
    assert c.items == 60 and any("not in every run" in w for w in c.warnings)
    # another judge
    j = world / "j"
    assert _run(cli, world, j, CANDS[2], n=30, judge="scripted:p=1,world=2").exit_code == 0
    r = cli("bench", "compare", a, j)
    assert r.exit_code == 2 and "runs differ in judge" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    # another seed: other items
    s = world / "s"
    assert _run(cli, world, s, CANDS[2], n=30, seed=9).exit_code == 0
    r = cli("bench", "compare", a, s)
    assert r.exit_code == 2 and "items differ" in r.stderr
    # an empty run, a single run
    empty = world / "empty"
    empty.mkdir()
    r = cli("bench", "compare", a, empty)
    assert r.exit_code == 2 and "no bench results" in r.stderr
    with pytest.raises(UserError, match="at least two candidates"):
        compare_runs([a])


def test_compare_refuses_different_templates(cli, world):
    a, b = world / "ta", world / "tb"
    assert _run(cli, world, a, CANDS[0], n=10).exit_code == 0
    assert _run(cli, world, b, CANDS[1], n=10).exit_code == 0
    import sqlite3

    db = b / "calls.db"
    con = sqlite3.connect(db)
    con.execute(
        "UPDATE calls SET messages = replace(messages, 'helpful assistant', 'HELPFUL ASSISTANT') "
        "WHERE purpose LIKE '%candidate%'"
    )
    con.commit()
    con.close()
    for side in (db.with_name("calls.db-wal"), db.with_name("calls.db-shm")):
        side.unlink(missing_ok=True)
    r = cli("bench", "compare", a, b)
    assert r.exit_code == 2 and "templates differ" in r.stderr


def test_config_candidates_duplicate_is_one_line():
    from persona_testbed.pipeline.config import BenchConfig

    assert BenchConfig(candidates=["mock", "embedded"]).candidates == ["mock", "embedded"]
    with pytest.raises(ValueError, match="listed twice"):
        BenchConfig(candidates=["mock", "mock"])


def test_config_candidates_reach_the_stage_nested(world, tmp_path):
    """`[bench] candidates` -> one spec with every candidate; the nested stage writes per-candidate results,
    comparison.json and the leaderboard in summary.json (what the report shows)."""
    from pathlib import Path

    from persona_testbed.llm.types import ChatParams
    from persona_testbed.pipeline.config import LLMConfig, RunConfig
    from persona_testbed.pipeline.session import Session
    from persona_testbed.pipeline.stages.bench import BenchTaskSpec, bench_specs, bench_stage

    cfg = RunConfig.model_validate({"bench": {"tasks": ["main"], "candidates": ["openai/a", "embedded"]}})
    (spec,) = bench_specs(cfg, Path("/r"), Path("/r/bench"))
    assert spec.candidates == ["openai/a", "embedded"] and spec.candidate is None
    one = RunConfig.model_validate({"bench": {"tasks": ["main"], "candidates": ["openai/a"]}})
    assert bench_specs(one, Path("/r"), Path("/r/bench"))[0].candidate == "openai/a"
    out = tmp_path / "stage"
    spec = BenchTaskSpec(
        task="main",
        candidates=CANDS[:2],
        judges=[JUDGE],
        personas=str(world / "personas"),
        prompts=str(world / "prompts.jsonl"),
        n=20,
        run_options={"n_resamples": 200},
        options={"modes": ["persona"]},
        judge_params=ChatParams(temperature=0, max_tokens=64),
    )
    with Session(out, kind="bench", inputs=[], llm=LLMConfig(concurrency=4), quiet=True) as session:
        outcome = session.run_stage(
            "bench", out, lambda ctx: bench_stage(ctx, [spec], nested=True), inputs=spec
        )
    assert outcome.failed == 0
    summary = json.loads((out / "summary.json").read_text())
    board = summary["leaderboards"]["main"]
    assert board["candidates"] == CANDS[:2] and len(board["differences"]) == 1
    assert summary["figures_candidate"]["main"] == CANDS[0] and "main" in summary
    assert (out / "main" / "comparison.json").is_file()
    assert len(list((out / "main" / "candidates").glob("*/results.json"))) == 2
