"""Every bench task end to end on the embedded SmolLM2 model at tiny n (mechanics, not quality).

One shared in-process client (one model load, no re-asks) and few tokens keep the file short. Each
task must finish with results.json + items.parquet where every row is a result or a recorded failure.
"""

from __future__ import annotations

import csv
import json

import polars as pl
import pytest

from persona_testbed.bench import run_task
from persona_testbed.llm import CallStore, ChatParams, LLMClient

pytestmark = pytest.mark.embedded

CAND = ChatParams(temperature=0.7, max_tokens=24)
JUDGE = ChatParams(temperature=0.0, max_tokens=40)


@pytest.fixture(scope="module")
def model():
    pytest.importorskip("llama_cpp")
    client = LLMClient("embedded", max_reasks=0, concurrency=1)
    yield client
    client.close()


def _run(task, model, tmp_path, **kw):
    out = tmp_path / task
    kw.setdefault("candidate", model)
    res = run_task(
        task,
        judge=model,
        out_dir=out,
        store=CallStore(out / "calls.db"),
        candidate_params=CAND,
        judge_params=JUDGE,
        n_resamples=200,
        **kw,
    )
    items = pl.read_parquet(out / "items.parquet")
    assert json.loads((out / "results.json").read_text())["task"] == task
    assert items.height == res["counts"]["rows"] > 0
    ok = items.filter(pl.col("status") == "ok")
    failed = items.filter(pl.col("status") == "failed")
    assert ok.height + failed.height == items.height
    assert failed["error"].null_count() == 0  # every failure says why
    return res, items


def test_embedded_main_and_determinism(model, tmp_path, personas, prompts):
    res, items = _run(
        "main", model, tmp_path / "a", personas=personas, prompts=prompts, n=1, seed=1, modes=["cot"]
    )
    assert res["counts"]["llm_calls"]["candidate"]["model"] == "embedded"
    assert res["counts"]["llm_calls_total"] == 2
    res2, items2 = _run(
        "main", model, tmp_path / "b", personas=personas, prompts=prompts, n=1, seed=1, modes=["cot"]
    )
    cols = ["item_id", "arm", "answer", "score", "status", "judge_raw", "candidate_raw"]
    assert items.select(cols).equals(items2.select(cols))  # fresh call logs, same seed: same outputs
    assert res["figures"] == res2["figures"]


def test_embedded_passk_loo_intersections(model, tmp_path, personas, prompts):
    res, items = _run("passk", model, tmp_path, personas=personas, prompts=prompts, n=1, seed=2, k=2)
    assert items.height == 2 and sorted(items["sample_index"]) == [0, 1]
    assert set(res["figures"]["pass_at_k"]) == {"1", "2"}
    res, items = _run(
        "loo",
        model,
        tmp_path,
        personas=personas,
        prompts=prompts,
        n=1,
        seed=2,
        attributes=["religion"],
        ablate="judge",
    )
    assert set(items["arm"]) == {"full", "control", "without:religion"}
    res, items = _run(
        "intersections",
        model,
        tmp_path,
        personas=personas,
        prompts=prompts,
        n=1,
        seed=2,
        groups=["sex=Female,race=White alone"],
    )
    assert res["figures"]["groups"]["sex=Female,race=White alone"]["personas"] == 1


def test_embedded_fidelity_and_agreement(model, tmp_path, personas, prompts, pairs):
    res, items = _run(
        "fidelity",
        model,
        tmp_path,
        personas=personas,
        prompts=prompts,
        pairs=pairs,
        n=1,
        seed=3,
        matrix_personas=2,
        matrix_questions=1,
    )
    assert set(items["arm"]) == {"AB", "BA", "matrix"}
    assert res["figures"]["matrix"]["chance_rank"] == 1.5
    labels = tmp_path / "labels.csv"
    with labels.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["persona_id", "pair_id", "annotator_id", "choice"])
        for a, c in (("h1", "chosen"), ("h2", "chosen"), ("h3", "rejected")):
            w.writerow([pairs[0].persona_id, pairs[0].id, a, c])
    res, items = _run(
        "agreement", model, tmp_path, candidate=None, personas=personas, pairs=pairs, labels=labels
    )
    assert res["figures"]["pairs"] == 1 and items.height == 2
