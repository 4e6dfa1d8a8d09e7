"""Bench CLI, input files, answers files, approach functions, item export."""

from __future__ import annotations

import json
import sys

import polars as pl
import pytest

from persona_testbed.bench import run_task
from persona_testbed.bench.inputs import load_pairs, load_prompts
from persona_testbed.core.errors import UserError
from persona_testbed.personas.io import write_personas


@pytest.fixture
def files(tmp_path, personas, prompts, pairs):
    pdir = tmp_path / "personas"
    write_personas(personas, pdir)
    qfile = tmp_path / "prompts.jsonl"
    rows = [p.model_dump() for p in prompts] + [
        {"id": "gone", "text": "filtered?", "kept": False, "split": None}
    ]
    qfile.write_text("".join(json.dumps(r) + "\n" for r in rows))
    pfile = tmp_path / "pairs.jsonl"
    prow = [p.model_dump() for p in pairs] + [
        {
            "id": "f",
            "persona_id": "p-f1",
            "prompt_id": "q0",
            "question": "?",
            "chosen": "",
            "rejected": "",
            "split": "held_out",
            "status": "failed",
        }
    ]
    pfile.write_text("".join(json.dumps(r) + "\n" for r in prow))
    return {"personas": pdir, "prompts": qfile, "pairs": pfile, "dir": tmp_path}


def test_loaders(files, tmp_path):
    qs = load_prompts(files["prompts"])
    assert [q.id for q in qs] == [f"q{i}" for i in range(5)]
    assert len(load_prompts(files["prompts"], "all")) == 6  # the filtered-out prompt never appears
    ps = load_pairs(files["pairs"])
    assert len(ps) == 12 and ps.skipped_failed == 1
    nosplit = tmp_path / "ns.jsonl"
    nosplit.write_text('{"id": "a", "text": "t?"}\n')
    with pytest.raises(UserError, match="no 'split' field"):
        load_prompts(nosplit)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "text": "t?", "split": "held_out"}\n{"id": "b"}\n')
    with pytest.raises(UserError, match="bad.jsonl:2: missing field 'text'"):
        load_prompts(bad)


def test_cli_main_on_scripted_world_records_judge_failures(cli, files):
    out = files["dir"] / "out"
    world = "scripted:p=1,judge_fail=0.5,uses=age"
    r = cli(
        "bench",
        "run",
        "main",
        "--candidate",
        world,
        "--judge",
        world,
        "--personas",
        files["personas"],
        "--prompts",
        files["prompts"],
        "--n",
        "10",
        "--mode",
        "persona",
        "--out",
        out,
        "--json",
    )
    assert r.exit_code == 0, r.stderr
    res = json.loads(r.stdout)
    failed = res["counts"]["failed"]
    assert 0 < failed < 10 and res["counts"]["failed_by_stage"] == {"judge": failed}
    fig = res["figures"]["modes"]["persona"]
    assert fig["judge_failures"] == failed and fig["candidate_failures"] == 0
    assert fig["answered_accuracy"]["estimate"] == 1.0  # p = 1: every judged answer passes
    assert fig["accuracy"]["estimate"] == pytest.approx(1 - failed / 10)  # judge failures are never passes
    assert (out / "results.json").exists() and pl.read_parquet(out / "items.parquet").height == 10
    r2 = cli(
        "bench",
        "run",
        "main",
        "--candidate",
        world,
        "--judge",
        world,
        "--personas",
        files["personas"],
        "--prompts",
        files["prompts"],
        "--n",
        "10",
        "--mode",
        "persona",
        "--out",
        files["dir"] / "out2",
    )
    assert r2.exit_code == 0 and "ITT" in r2.stdout and "main: candidate scripted:" in r2.stdout


def test_cli_main_every_item_failed_exits_3(cli, files):
    r = cli(
        "bench",
        "run",
        "main",
        "--candidate",
        "mock",
        "--judge",
        "mock",
        "--personas",
        files["personas"],
        "--prompts",
        files["prompts"],
        "--n",
        "3",
        "--mode",
        "persona",
        "--out",
        files["dir"] / "o",
    )
    assert r.exit_code == 3 and "every one of 3 items failed" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "args,needle",
    [
        (["loo", "--attribute", "shoe size"], "unknown persona attribute 'shoe size'"),
        (["intersections", "--group", "sex=Female,race=Asian alone"], "is empty"),
        (["intersections", "--group", "education=Bachelors degree"], "did you mean"),
        (["passk", "--k", "5", "--samples", "2"], "need n >= k"),
        (["main", "--mode", "poetry"], "unknown mode"),
        (["nope"], "unknown bench task"),
    ],
)
def test_cli_bad_input_exit_2_one_line(cli, files, args, needle):
    r = cli(
        "bench",
        "run",
        *args,
        "--candidate",
        "mock",
        "--judge",
        "mock",
        "--personas",
        files["personas"],
        "--prompts",
        files["prompts"],
        "--n",
        "2",
        "--out",
        files["dir"] / "o",
    )
    assert r.exit_code == 2
    assert needle in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


@pytest.mark.parametrize(
    "line,needle",
    [
        ('{"persona_id": "p-f1", "prompt_id": "q0"}', "answers.jsonl:2: missing field 'answer'"),
        (
            '{"persona_id": "ghost", "prompt_id": "q0", "answer": "x"}',
            "answers.jsonl:2: unknown persona_id 'ghost'",
        ),
        (
            '{"persona_id": "p-f1", "prompt_id": "t0", "answer": "x"}',
            "answers.jsonl:2: unknown prompt_id 't0'",
        ),
        ("not json", "answers.jsonl:2: not valid JSON"),
    ],
)
def test_cli_bad_answers_file(cli, files, line, needle):
    f = files["dir"] / "answers.jsonl"
    f.write_text('{"persona_id": "p-f1", "prompt_id": "q1", "answer": "fine"}\n' + line + "\n")
    r = cli(
        "bench",
        "run",
        "main",
        "--answers",
        f,
        "--judge",
        "mock",
        "--personas",
        files["personas"],
        "--prompts",
        files["prompts"],
        "--out",
        files["dir"] / "o",
    )
    assert r.exit_code == 2 and needle in r.stderr, r.stderr


def test_export_items_then_score_answers_offline(cli, files, personas, prompts, scripted, helpers):
    out = files["dir"] / "items.jsonl"
    r = cli(
        "bench",
        "tasks",
        "export",
        "--personas",
        files["personas"],
        "--prompts",
        files["prompts"],
        "--n",
        "5",
        "--seed",
        "2",
        "--out",
        out,
        "--json",
    )
    assert r.exit_code == 0, r.stderr
    items = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(items) == 5 and all(
        i["question"] in i["user"] and "User profile:" in i["system"] for i in items
    )
    assert all(set(i["persona"]) and i["messages"][0]["content"] == i["system"] for i in items)
    answers = files["dir"] / "answers.jsonl"
    answers.write_text(
        "".join(
            json.dumps(
                {
                    "persona_id": i["persona_id"],
                    "prompt_id": i["prompt_id"],
                    "answer": f"my answer to {i['prompt_id']} "
                    + ("good" if i["persona_id"].startswith("p-f") else "bad"),
                }
            )
            + "\n"
            for i in items
        )
    )
    judge, jb = scripted(
        lambda m, p: helpers.verdict("bad" in helpers.section(m, "Answer to review:\n")), "j"
    )
    res = run_task(
        "main",
        judge=judge,
        answers=answers,
        personas=files["personas"],
        prompts=files["prompts"],
        seed=2,
        out_dir=files["dir"] / "ans",
    )
    expect = sum(i["persona_id"].startswith("p-f") for i in items) / 5
    assert res["figures"]["modes"]["custom"]["accuracy"]["estimate"] == pytest.approx(expect)
    assert len(jb.calls) == 5 and res["models"]["candidate"].startswith("answers:")
    # same seed -> export picks the same items as task main
    cand, _ = scripted(lambda m, p: "x", "cand")
    res2 = run_task(
        "main",
        candidate=cand,
        judge=judge,
        personas=files["personas"],
        prompts=files["prompts"],
        n=5,
        seed=2,
        out_dir=files["dir"] / "m",
        modes=["persona"],
    )
    ids = pl.read_parquet(files["dir"] / "m" / "items.parquet")["item_id"].to_list()
    assert ids == [i["item_id"] for i in items] and res2["counts"]["ok"] == 5


def test_approach_sync_and_async(tmp_path, monkeypatch, personas, prompts, scripted, helpers):
    mod = tmp_path / "my_approach_mod.py"
    mod.write_text(
        "import asyncio\n"
        "def answer(persona, question):\n    return f'sync good for {persona.value(\"sex\")}'\n"
        "async def aanswer(persona, question):\n    await asyncio.sleep(0)\n    return 'async bad'\n"
        "def broken(persona, question):\n    raise RuntimeError('boom')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    judge, _ = scripted(lambda m, p: helpers.verdict("bad" in helpers.section(m, "Answer to review:\n")), "j")
    r1 = run_task(
        "main", judge=judge, approach="my_approach_mod:answer", personas=personas, prompts=prompts, n=4
    )
    r2 = run_task(
        "main", judge=judge, approach="my_approach_mod:aanswer", personas=personas, prompts=prompts, n=4
    )
    r3 = run_task(
        "main", judge=judge, approach="my_approach_mod:broken", personas=personas, prompts=prompts, n=2
    )
    assert r1["figures"]["modes"]["custom"]["accuracy"]["estimate"] == 1.0
    assert r2["figures"]["modes"]["custom"]["accuracy"]["estimate"] == 0.0
    assert r3["counts"]["failed_by_stage"] == {"candidate": 2} and "boom" in r3["failures"][0]["error"]
    with pytest.raises(UserError, match="no attribute"):
        run_task(
            "main", judge=judge, approach="my_approach_mod:nothing", personas=personas, prompts=prompts, n=2
        )
    with pytest.raises(UserError, match="cannot import"):
        run_task("main", judge=judge, approach="no_such_mod_xyz:f", personas=personas, prompts=prompts, n=2)
    sys.modules.pop("my_approach_mod", None)


def test_cli_human_kit_and_tasks_list(cli, files):
    kit = files["dir"] / "kit"
    r = cli(
        "bench",
        "human",
        "export",
        "--pairs",
        files["pairs"],
        "--personas",
        files["personas"],
        "--n",
        "6",
        "--questions",
        "3",
        "--annotators",
        "3",
        "--out",
        kit,
        "--json",
    )
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["rows"] == 18
    for sheet in kit.glob("annotator-*.csv"):
        text = sheet.read_text().splitlines()
        sheet.write_text("\n".join([text[0]] + [ln + "tie" for ln in text[1:]]) + "\n")
    r = cli(
        "bench",
        "human",
        "import",
        kit,
        "--key",
        kit / "key.csv",
        "--out",
        files["dir"] / "labels.csv",
        "--json",
    )
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["tie"] == 18
    r = cli("bench", "tasks", "list", "--json")
    assert {t["task"] for t in json.loads(r.stdout)} == {
        "main",
        "passk",
        "loo",
        "intersections",
        "fidelity",
        "agreement",
    }


def test_passk_on_answers_file_with_samples(tmp_path, personas, prompts, scripted, helpers):
    f = tmp_path / "answers.jsonl"
    lines = []
    for pid in ("p-f1", "p-m1"):
        for s, word in enumerate(["good", "bad", "good"]):
            lines.append({"persona_id": pid, "prompt_id": "q0", "answer": f"{word} {s}", "sample_index": s})
    f.write_text("".join(json.dumps(x) + "\n" for x in lines))
    judge, jb = scripted(
        lambda m, p: helpers.verdict("bad" in helpers.section(m, "Answer to review:\n")), "j"
    )
    res = run_task("passk", judge=judge, answers=f, personas=personas, prompts=prompts, k=3)
    assert len(jb.calls) == 6
    assert res["figures"]["pass_at_k"]["1"]["estimate"] == pytest.approx(2 / 3)
    assert res["figures"]["pass_at_k"]["3"]["estimate"] == 1.0
    with pytest.raises(UserError, match="need n >= k"):
        run_task("passk", judge=judge, answers=f, personas=personas, prompts=prompts, k=4)
