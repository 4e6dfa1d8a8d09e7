"""Typed results (round trip, legacy files), bench plan, judge calibration (Rogan-Gladen) from human labels."""

from __future__ import annotations

import csv
import hashlib
import json
import math

import polars as pl
import pytest

from factories import make_persona
from persona_testbed.bench import TASKS, read_results, run_task
from persona_testbed.bench.plan import plan
from persona_testbed.bench.records import BenchPrompt
from persona_testbed.bench.results import BenchResults
from persona_testbed.bench.stats import rogan_gladen
from persona_testbed.core.errors import UserError
from persona_testbed.personas.io import write_personas

WORLD = "scripted:p=0.6,fail=0.1,uses=age+sex,c=0.3"


@pytest.fixture
def crowd():
    return [make_persona(f"c{i:02d}", age=str(20 + i), sex=("Female", "Male")[i % 2]) for i in range(30)]


@pytest.fixture
def questions():
    return [BenchPrompt(id=f"w{i}", text=f"World question {i}?", split="held_out") for i in range(10)]


@pytest.mark.parametrize(
    "task,opts",
    [
        ("main", {"modes": ["persona", "cot"]}),
        ("passk", {"k": 2}),
        ("loo", {"attributes": ["age", "religion"]}),
        ("intersections", {"groups": ["sex=Female", "sex=Male"]}),
    ],
)
def test_results_round_trip_typed(tmp_path, crowd, questions, task, opts):
    res = run_task(
        task,
        candidate=WORLD,
        judge=WORLD,
        personas=crowd,
        prompts=questions,
        n=20,
        seed=1,
        out_dir=tmp_path,
        **opts,
    )
    back = read_results(tmp_path / "results.json")
    assert isinstance(back, BenchResults) and back.figures.kind == task and back.schema_version == 2
    on_disk = json.loads((tmp_path / "results.json").read_text())
    assert back.model_dump(mode="json", exclude={"paths"}) == on_disk
    assert {k: v for k, v in res.items() if k != "paths"} == on_disk
    assert back.config.cluster == "persona" and back.models.candidate == WORLD


def test_every_results_field_is_documented():
    """inspect_ai style: a docstring under every field of every record users read."""
    import ast
    import inspect

    from persona_testbed.bench import results as mod

    tree = ast.parse(inspect.getsource(mod))
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef) and n.name not in ("Record",)):
        body = cls.body
        for i, node in enumerate(body):
            if isinstance(node, ast.AnnAssign):
                nxt = body[i + 1] if i + 1 < len(body) else None
                assert isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant), (
                    f"{cls.name}.{node.target.id} has no docstring"
                )  # type: ignore[attr-defined]


def test_task_registry_is_the_one_source(cli):
    r = cli("bench", "tasks", "list", "--json")
    assert [t["task"] for t in json.loads(r.stdout)] == list(TASKS)
    assert all(t["description"] == TASKS[t["task"]].help for t in json.loads(r.stdout))


def test_legacy_results_read_and_plan_refuses(tmp_path):
    legacy = {
        "schema_version": 1,
        "package_version": "0.1.0",
        "task": "main",
        "seed": 0,
        "models": {"candidate": "m", "judge": "j"},
        "config": {"n": 5, "split": "held_out", "modes": ["persona"], "items": 5},
        "figures": {"accuracy": {"persona": {"estimate": 0.5}}},
        "counts": {
            "rows": 5,
            "ok": 5,
            "failed": 0,
            "failed_by_stage": {},
            "llm_calls": {},
            "llm_calls_total": 10,
            "llm_calls_per_row": 2.0,
        },
        "failures": [],
        "table": {"columns": ["mode"], "rows": [["persona"]]},
    }
    (tmp_path / "results.json").write_text(json.dumps(legacy))
    back = read_results(tmp_path)
    assert back.figures.kind == "legacy" and back.figures.data["accuracy"]["persona"]["estimate"] == 0.5
    assert back.config.task == {"modes": ["persona"], "items": 5}
    with pytest.raises(UserError, match="written before schema 2"):
        plan(back, 0.05)
    (tmp_path / "results.json").write_text("{not json")
    with pytest.raises(UserError, match="not JSON"):
        read_results(tmp_path)
    (tmp_path / "results.json").write_text('{"task": "main"}')
    with pytest.raises(UserError, match="not a bench results file"):
        read_results(tmp_path)


def test_plan_scales_the_pilot_interval(tmp_path, crowd, questions, cli):
    run_task(
        "main",
        candidate=WORLD,
        judge=WORLD,
        personas=crowd,
        prompts=questions,
        n=60,
        seed=2,
        out_dir=tmp_path / "main",
        modes=["persona", "baseline"],
    )
    run_task(
        "passk",
        candidate=WORLD,
        judge=WORLD,
        personas=crowd,
        prompts=questions,
        n=30,
        seed=2,
        out_dir=tmp_path / "passk",
        k=2,
    )
    res = read_results(tmp_path / "main")
    rows = {r.figure: r for r in plan(res, 0.05)}
    e = res.figures.modes["persona"].accuracy
    half = (e.high - e.low) / 2
    assert rows["accuracy (persona)"].n_needed == math.ceil(60 * (half / 0.05) ** 2)
    assert (
        rows["accuracy (persona)"].basis == "pilot-scaled" and rows["accuracy (persona)"].design_effect >= 1
    )
    assert rows["accuracy (baseline)"].basis == "binomial"  # 0.0 exactly: a degenerate pilot interval
    assert rows["accuracy (baseline)"].n_needed == math.ceil(1.959963984540054**2 * 0.05 * 0.95 / 0.0025)
    r = cli("bench", "plan", tmp_path, "--half-width", "0.1", "--json")
    assert r.exit_code == 0, r.stderr
    got = json.loads(r.stdout)
    assert {g["task"] for g in got} == {"main", "passk"} and any(g["figure"] == "pass@2" for g in got)
    r = cli("bench", "plan", tmp_path / "main", "--half-width", "0.7")
    assert r.exit_code == 2 and "--half-width must lie in (0, 0.5)" in r.stderr
    r = cli("bench", "plan", tmp_path / "nothing")
    assert r.exit_code == 2 and "cannot read" in r.stderr and len(r.stderr.strip().splitlines()) == 1


# -- calibration ------------------------------------------------------------------------------------------


def _u(*parts) -> float:
    return int(hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:8], 16) / 16**8


def _noisy_world(scripted, helpers, se=0.85, sp=0.75):
    """Candidate: good or bad by its seed; judge: passes good answers w.p. se, bad ones w.p. 1 - sp."""
    cand, _ = scripted(lambda m, p: "good answer" if _u(p.seed, "c") < 0.5 else "bad answer", "cand")

    def judge_fn(messages, params):
        good = "good answer" in helpers.section(messages, "Answer to review:\n")
        passes = _u(params.seed, "j") < (se if good else 1 - sp)
        return helpers.verdict(needs_revision=not passes)

    judge, _ = scripted(judge_fn, "judge")
    return cand, judge


def _labels(path, items, n, *, votes=("pass", "pass", "fail")):
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["item_id", "arm", "annotator_id", "label"])
        for row in items.head(n).iter_rows(named=True):
            truth = "good" in row["answer"]
            for k, v in enumerate(votes):  # majority = truth
                w.writerow(
                    [row["item_id"], row["arm"], f"a{k}", v if truth else {"pass": "fail", "fail": "pass"}[v]]
                )


def test_calibration_corrects_a_noisy_judge(tmp_path, crowd, questions, scripted, helpers):
    cand, judge = _noisy_world(scripted, helpers)
    kw = dict(
        candidate=cand, judge=judge, personas=crowd, prompts=questions, n=300, seed=4, modes=["persona"]
    )
    run_task("main", out_dir=tmp_path / "pilot", **kw)
    items = pl.read_parquet(tmp_path / "pilot" / "items.parquet")
    _labels(tmp_path / "labels.csv", items, 150)
    res = run_task("main", out_dir=tmp_path / "cal", calibration=tmp_path / "labels.csv", **kw)
    cal = res["figures"]["modes"]["persona"]["calibrated"]
    lab = items.head(150)
    good = lab["answer"].str.contains("good")
    se = lab.filter(good)["score"].mean()
    sp = 1 - lab.filter(~good)["score"].mean()
    assert cal["sensitivity"] == pytest.approx(se) and cal["specificity"] == pytest.approx(sp)
    assert cal["labelled_positive"] == good.sum() and cal["labelled_negative"] == 150 - good.sum()
    observed = items["score"].mean()
    assert cal["observed"] == pytest.approx(observed)
    assert cal["corrected"]["estimate"] == pytest.approx(rogan_gladen(observed, se, sp))
    truth = items["answer"].str.contains("good").mean()  # the share of good answers, what the judge blurs
    assert abs(observed - truth) > 0.05  # the raw judge is biased ...
    assert cal["corrected"]["low"] <= truth <= cal["corrected"]["high"]  # ... the corrected interval is not
    # 300 bench items cannot give +-0.05 through a judge this noisy, whatever the labels: None says so
    assert cal["labels_needed"] is None and cal["target_half_width"] == 0.05
    assert any("judge-corrected" in str(r[0]) for r in res["table"]["rows"])


def test_calibration_with_too_few_labels_says_how_many(tmp_path, crowd, questions, scripted, helpers, cli):
    cand, judge = _noisy_world(scripted, helpers)
    kw = dict(candidate=cand, judge=judge, personas=crowd, prompts=questions, n=40, seed=4, modes=["persona"])
    run_task("main", out_dir=tmp_path / "pilot", **kw)
    _labels(tmp_path / "few.csv", pl.read_parquet(tmp_path / "pilot" / "items.parquet"), 8)
    with pytest.raises(
        UserError,
        match=r"at least 10 answers the annotators pass and 10 they fail .* about \d+ "
        r"labelled answers give a \+-0.05",
    ):
        run_task("main", out_dir=tmp_path / "x", calibration=tmp_path / "few.csv", **kw)
    assert not (tmp_path / "x").exists()
    write_personas(crowd, tmp_path / "personas")
    (tmp_path / "q.jsonl").write_text("".join(json.dumps(q.model_dump()) + "\n" for q in questions))
    out = tmp_path / "cli-out"
    r = cli(
        "bench",
        "run",
        "main",
        "--candidate",
        "scripted",
        "--judge",
        "scripted",
        "--personas",
        tmp_path / "personas",
        "--prompts",
        tmp_path / "q.jsonl",
        "--calibration",
        tmp_path / "few.csv",
        "--out",
        out,
    )
    assert r.exit_code == 2 and "calibration needs at least 10" in r.stderr and not out.exists()
    assert len(r.stderr.strip().splitlines()) == 1
    bad = tmp_path / "bad.csv"
    bad.write_text("item_id,annotator_id,label\nc00:w1,a1,maybe\n")
    with pytest.raises(UserError, match="bad.csv:2: label 'maybe' must be pass or fail"):
        run_task("main", out_dir=tmp_path / "y", calibration=bad, **kw)


def test_report_summary_carries_itt_control_and_gap_test(tmp_path, crowd, questions):
    from persona_testbed.bench.summary import bench_summary

    kw = dict(candidate=WORLD, judge=WORLD, personas=crowd, prompts=questions, n=20, seed=1)
    results = {
        "main": run_task("main", modes=["persona"], **kw),
        "loo": run_task("loo", attributes=["age"], **kw),
        "intersections": run_task("intersections", groups=["sex=Female", "sex=Male"], **kw),
    }
    s = bench_summary(results)
    m = s["main"]["modes"][0]
    assert m["mode"] == "persona" and {
        "accuracy",
        "ci_low",
        "ci_high",
        "answered_accuracy",
        "failure_rate",
        "leak_rate",
    } <= set(m)
    assert m["accuracy"] == results["main"]["figures"]["modes"]["persona"]["accuracy"]["estimate"]
    a = s["loo"]["attributes"][0]
    assert a["attribute"] == "age" and a["matters"] is not None and "control_changed_share" in s["loo"]
    assert s["intersections"]["p_value"] == results["intersections"]["figures"]["largest_gap"]["p_value"]
