"""Task main with scripted mock models: scores, CIs, structured parts, failures, outputs."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from persona_testbed.bench import run_task
from persona_testbed.bench.results import read_results
from persona_testbed.bench.stats import cluster_ci, mean_features, ratio
from persona_testbed.core.errors import UserError
from persona_testbed.core.seeds import rng


def _candidate(messages, params):
    system = messages[0]["content"]
    if "reply with a json object" in system.lower() and '"reasoning"' in system:
        return json.dumps({"reasoning": "SECRET-REASONING bad bad", "answer": "good structured answer"})
    if '"summary"' in system:
        return json.dumps({"summary": "SECRET-SUMMARY", "answer": "good summary answer"})
    return "good tailored answer" if "User profile:" in system else "bad generic answer"


def _judge(helpers):
    def fn(messages, params):
        answer = helpers.section(messages, "Answer to review:\n")
        female = "sex: Female" in messages[-1]["content"]
        return helpers.verdict(needs_revision=("bad" in answer) or not female)

    return fn


def test_main_modes_scores_and_cis(tmp_path, personas, prompts, scripted, helpers):
    cand, cb = scripted(_candidate, "cand")
    judge, jb = scripted(_judge(helpers), "judge")
    res = run_task(
        "main",
        candidate=cand,
        judge=judge,
        personas=personas,
        prompts=prompts,
        n=12,
        seed=3,
        out_dir=tmp_path,
        store=None,
        modes=["baseline", "persona", "cot", "summary"],
    )
    acc = res["figures"]["modes"]
    assert acc["baseline"]["accuracy"]["estimate"] == 0.0
    items = pl.read_parquet(tmp_path / "items.parquet")
    assert set(items["prompt_id"]) <= {f"q{i}" for i in range(5)}  # held_out split only
    for mode in ("persona", "cot", "summary"):
        rows = items.filter(pl.col("arm") == mode)
        expected = [1.0 if pid.startswith("p-f") else 0.0 for pid in rows["persona_id"]]
        assert rows["score"].to_list() == expected
        # the interval resamples personas (clusters), one generator per metric
        ref, g = cluster_ci(
            mean_features(expected),
            ratio(),
            clusters=rows["persona_id"].to_list(),
            rng=rng(3, "bench.bootstrap", "main", f"accuracy.{mode}"),
            bounds=(0.0, 1.0),
        )
        a = acc[mode]["accuracy"]
        assert (a["estimate"], a["low"], a["high"], a["clusters"]) == (ref.estimate, ref.low, ref.high, g)
        assert a["cluster"] == "persona" and g == rows["persona_id"].n_unique()
        assert acc[mode]["answered_accuracy"]["estimate"] == a["estimate"]  # nothing failed
        assert acc[mode]["failure_rate"] == 0.0 and acc[mode]["leak_rate"] == 0.0
    # 2 calls per item and mode, reported
    assert len(cb.calls) == 48 and len(jb.calls) == 48
    assert res["counts"]["llm_calls"]["candidate"]["calls"] == 48
    assert res["counts"]["llm_calls_per_row"] == 2.0
    # only the answer part reaches the judge; the parts are kept in the item row
    judge_texts = [m[-1]["content"] for m, _ in jb.calls]
    assert not any("SECRET" in t for t in judge_texts)
    cot = items.filter(pl.col("arm") == "cot")
    assert all(a == "good structured answer" for a in cot["answer"])
    assert "SECRET-REASONING" in json.loads(cot["extra"][0])["parts"]["reasoning"]
    assert items["judge_call_id"].null_count() == 0 and items["judge_raw"].null_count() == 0
    on_disk = json.loads((tmp_path / "results.json").read_text())
    assert on_disk["figures"] == json.loads(json.dumps(res["figures"]))
    assert (
        on_disk["seed"] == 3
        and on_disk["models"]["candidate"] == "cand"
        and on_disk["models"]["judge"] == "judge"
    )
    # the typed record reads back and dumps to the same JSON
    back = read_results(tmp_path)
    assert back.schema_version == 2 and back.figures.kind == "main"
    assert back.model_dump(mode="json", exclude={"paths"}) == on_disk


def test_main_judge_never_validates_is_recorded_failure(tmp_path, personas, prompts, scripted):
    cand, _ = scripted(lambda m, p: "an answer", "cand")
    judge, jb = scripted(lambda m, p: "I refuse to answer in JSON", "judge")
    res = run_task(
        "main",
        candidate=cand,
        judge=judge,
        personas=personas,
        prompts=prompts,
        n=3,
        seed=0,
        out_dir=tmp_path,
        modes=["persona"],
    )
    assert res["counts"]["failed"] == 3 and res["counts"]["failed_by_stage"] == {"judge": 3}
    persona = res["figures"]["modes"]["persona"]
    assert persona["judge_failures"] == 3 and persona["candidate_failures"] == 0
    assert persona["judge_failure_rate"] == 1.0
    assert persona["accuracy"]["estimate"] == 0.0  # a judge failure is never a pass
    assert persona["answered_accuracy"]["estimate"] is None  # nothing was scored
    assert all("invalid structured output" in f["error"] for f in res["failures"])
    items = pl.read_parquet(tmp_path / "items.parquet")
    assert items["status"].to_list() == ["failed"] * 3
    assert items["judge_raw"].to_list() == ["I refuse to answer in JSON"] * 3
    assert len(jb.calls) == 6  # one re-ask each (max_reasks=1), never silent


def test_main_is_deterministic_and_n_extends(tmp_path, personas, prompts, scripted, helpers):
    def once(n, out):
        cand, _ = scripted(lambda m, p: f"answer seeded {p.seed}", "cand")
        judge, _ = scripted(lambda m, p: helpers.verdict(p.seed % 2 == 0), "judge")
        run_task(
            "main",
            candidate=cand,
            judge=judge,
            personas=personas,
            prompts=prompts,
            n=n,
            seed=11,
            out_dir=out,
            modes=["persona"],
        )
        return pl.read_parquet(out / "items.parquet").drop("candidate_call_id", "judge_call_id")

    a, b = once(6, tmp_path / "a"), once(6, tmp_path / "b")
    assert a.equals(b)
    c = once(9, tmp_path / "c")
    assert c.head(6).equals(a)
    ra = json.loads((tmp_path / "a" / "results.json").read_text())
    rb = json.loads((tmp_path / "b" / "results.json").read_text())
    assert ra["figures"] == rb["figures"] and np.isfinite(
        ra["figures"]["modes"]["persona"]["accuracy"]["estimate"]
    )


def test_main_bad_inputs(tmp_path, personas, prompts, scripted):
    cand, _ = scripted(lambda m, p: "x", "cand")
    with pytest.raises(UserError, match="unknown mode"):
        run_task("main", candidate=cand, judge=cand, personas=personas, prompts=prompts, n=2, modes=["nope"])
    with pytest.raises(UserError, match="exceeds"):
        run_task("main", candidate=cand, judge=cand, personas=personas, prompts=prompts, n=999)
    with pytest.raises(UserError, match="no option"):
        run_task("main", candidate=cand, judge=cand, personas=personas, prompts=prompts, n=2, k=3)
    with pytest.raises(UserError, match="unknown bench task"):
        run_task("nope", candidate=cand, judge=cand, personas=personas, prompts=prompts, n=2)


def test_main_headline_is_intent_to_treat(tmp_path, personas, prompts, scripted, helpers):
    """Regression: a mode that fails on its bad half used to look perfect (failures left the denominator)."""

    def cand(messages, params):
        system = messages[0]["content"]
        good = params.seed % 2 == 0
        if '"reasoning"' in system:  # cot: fails exactly when it would have been bad
            return json.dumps({"reasoning": "r", "answer": "good"}) if good else "not json at all"
        return "good" if good else "bad"

    c, _ = scripted(cand, "cand")
    j, _ = scripted(lambda m, p: helpers.verdict("bad" in helpers.section(m, "Answer to review:\n")), "judge")
    res = run_task(
        "main",
        candidate=c,
        judge=j,
        personas=personas,
        prompts=prompts,
        n=20,
        seed=4,
        out_dir=tmp_path,
        modes=["persona", "cot"],
    )
    cot, persona = res["figures"]["modes"]["cot"], res["figures"]["modes"]["persona"]
    items = pl.read_parquet(tmp_path / "items.parquet")
    cot_rows = items.filter(pl.col("arm") == "cot")
    failed = cot_rows.filter(pl.col("status") == "failed").height
    assert failed > 0 and cot["candidate_failures"] == failed and cot["failure_rate"] == failed / 20
    assert cot["answered_accuracy"]["estimate"] == 1.0  # the selected survivors look perfect ...
    assert cot["accuracy"]["estimate"] == pytest.approx((20 - failed) / 20)  # ... the headline does not
    assert cot["accuracy"]["n"] == 20 and cot["answered_accuracy"]["n"] == 20 - failed
    assert persona["failure_rate"] == 0.0
    assert persona["accuracy"]["estimate"] == persona["answered_accuracy"]["estimate"]
    header = res["table"]["columns"]
    assert header[:2] == ["mode", "accuracy (ITT)"] and "answered acc." in header and "failure rate" in header


def test_main_flags_leaky_answers_and_can_exclude_them(tmp_path, personas, prompts, scripted, helpers):
    def cand(messages, params):
        return "Given your faith, pray on it." if params.seed % 3 == 0 else "Consider the costs carefully."

    c, _ = scripted(cand, "cand")
    j, _ = scripted(
        lambda m, p: helpers.verdict("faith" not in helpers.section(m, "Answer to review:\n")), "judge"
    )
    kw = dict(candidate=c, judge=j, personas=personas, prompts=prompts, n=15, seed=2, modes=["persona"])
    res = run_task("main", out_dir=tmp_path / "a", **kw)
    items = pl.read_parquet(tmp_path / "a" / "items.parquet")
    leaky = items.filter(pl.col("leaky"))
    assert leaky.height > 0 and all("faith" in a for a in leaky["answer"])
    assert json.loads(leaky["extra"][0])["leak"]["fields"] == ["religion"]
    fig = res["figures"]["modes"]["persona"]
    assert fig["leaky"] == leaky.height and fig["leak_rate"] == pytest.approx(leaky.height / 15)
    assert fig["accuracy"]["estimate"] == pytest.approx(leaky.height / 15)  # the judge likes the leaks
    ex = run_task("main", out_dir=tmp_path / "b", exclude_leaky=True, **kw)["figures"]["modes"]["persona"]
    assert ex["excluded_leaky"] == leaky.height and ex["items"] == 15 - leaky.height
    assert ex["accuracy"]["estimate"] == 0.0  # only the clean (rejected) answers remain
    assert ex["leak_rate"] == fig["leak_rate"]


def test_main_cluster_option(tmp_path, personas, prompts, scripted, helpers):
    c, _ = scripted(lambda m, p: "good" if p.seed % 2 else "bad", "cand")
    j, _ = scripted(lambda m, p: helpers.verdict("bad" in helpers.section(m, "Answer to review:\n")), "judge")
    kw = dict(candidate=c, judge=j, personas=personas, prompts=prompts, n=20, seed=1, modes=["persona"])
    by = {
        cl: run_task("main", cluster=cl, **kw)["figures"]["modes"]["persona"]["accuracy"]
        for cl in ("persona", "prompt", "none")
    }
    assert by["persona"]["clusters"] == 4 and by["prompt"]["clusters"] == 5 and by["none"]["clusters"] == 20
    assert len({b["estimate"] for b in by.values()}) == 1
    with pytest.raises(UserError, match="--cluster must be one of persona, prompt, none"):
        run_task("main", cluster="item", out_dir=tmp_path / "x", **kw)
    assert not (tmp_path / "x").exists()  # checked before anything is written
