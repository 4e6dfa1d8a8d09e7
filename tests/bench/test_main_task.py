"""Task main with scripted mock models: scores, CIs, structured parts, failures, outputs."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from persona_testbed.bench import run_task
from persona_testbed.bench.metrics import mean_ci
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
    res = run_task("main", candidate=cand, judge=judge, personas=personas, prompts=prompts, n=12, seed=3,
                   out_dir=tmp_path, store=None, modes=["baseline", "persona", "cot", "summary"])
    acc = res["figures"]["accuracy"]
    assert acc["baseline"]["estimate"] == 0.0
    items = pl.read_parquet(tmp_path / "items.parquet")
    assert set(items["prompt_id"]) <= {f"q{i}" for i in range(5)}  # held_out split only
    for mode in ("persona", "cot", "summary"):
        rows = items.filter(pl.col("arm") == mode)
        expected = [1.0 if pid.startswith("p-f") else 0.0 for pid in rows["persona_id"]]
        assert rows["score"].to_list() == expected
        ref = mean_ci(expected, rng=rng(3, "bench.bootstrap", "main", f"accuracy.{mode}"))
        assert (acc[mode]["estimate"], acc[mode]["low"], acc[mode]["high"]) == (ref.estimate, ref.low, ref.high)
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
    assert on_disk["seed"] == 3 and on_disk["models"]["candidate"] == "cand" and on_disk["models"]["judge"] == "judge"


def test_main_judge_never_validates_is_recorded_failure(tmp_path, personas, prompts, scripted):
    cand, _ = scripted(lambda m, p: "an answer", "cand")
    judge, jb = scripted(lambda m, p: "I refuse to answer in JSON", "judge")
    res = run_task("main", candidate=cand, judge=judge, personas=personas, prompts=prompts, n=3, seed=0,
                   out_dir=tmp_path, modes=["persona"])
    assert res["counts"]["failed"] == 3 and res["counts"]["failed_by_stage"] == {"judge": 3}
    assert res["figures"]["accuracy"]["persona"]["failures"] == 3
    assert res["figures"]["accuracy"]["persona"]["estimate"] is None
    assert all("invalid structured output" in f["error"] for f in res["failures"])
    items = pl.read_parquet(tmp_path / "items.parquet")
    assert items["status"].to_list() == ["failed"] * 3
    assert items["judge_raw"].to_list() == ["I refuse to answer in JSON"] * 3
    assert len(jb.calls) == 6  # one re-ask each (max_reasks=1), never silent


def test_main_is_deterministic_and_n_extends(tmp_path, personas, prompts, scripted, helpers):
    def once(n, out):
        cand, _ = scripted(lambda m, p: f"answer seeded {p.seed}", "cand")
        judge, _ = scripted(lambda m, p: helpers.verdict(p.seed % 2 == 0), "judge")
        run_task("main", candidate=cand, judge=judge, personas=personas, prompts=prompts, n=n, seed=11,
                 out_dir=out, modes=["persona"])
        return pl.read_parquet(out / "items.parquet").drop("candidate_call_id", "judge_call_id")

    a, b = once(6, tmp_path / "a"), once(6, tmp_path / "b")
    assert a.equals(b)
    c = once(9, tmp_path / "c")
    assert c.head(6).equals(a)
    ra = json.loads((tmp_path / "a" / "results.json").read_text())
    rb = json.loads((tmp_path / "b" / "results.json").read_text())
    assert ra["figures"] == rb["figures"] and np.isfinite(ra["figures"]["accuracy"]["persona"]["estimate"])


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
