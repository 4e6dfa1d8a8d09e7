"""build_prompts end to end with a mock classifier; files, stats and the CLI."""

from __future__ import annotations

import asyncio
import json

import polars as pl
import pytest

from persona_testbed.llm import LLMClient, MockBackend, PermanentError
from persona_testbed.pipeline.stages.prompts import build_prompts
from persona_testbed.prompts import PromptBuildConfig, abuild_prompts, read_prompts
from persona_testbed.prompts.stats import prompt_stats

QUESTIONS = [
    f"Should the state fund {topic} programme number {i} for everyone?"
    for i, topic in enumerate(["religious", "sports", "abortion", "gun", "school", "art"] * 5)
]
EXTRA = ["Hello", "What is two plus two today?", "Short one?", QUESTIONS[0], QUESTIONS[1].upper()]


def classifier(messages):
    question = messages[-1]["content"].split("\n")[0]
    if "sports" in question or "plus" in question:
        return '{"controversial": false, "reason": "people agree"}'
    if "art" in question:
        return PermanentError("model refused")
    return '{"controversial": true, "reason": "values differ"}'


def _items():
    return list(enumerate(QUESTIONS + EXTRA, 1))


def test_every_prompt_keeps_its_verdicts():
    backend = MockBackend(classifier)
    prompts = asyncio.run(abuild_prompts(_items(), LLMClient(backend=backend), PromptBuildConfig(seed=3)))
    assert len(prompts) == len(QUESTIONS) + len(EXTRA)  # nothing dropped
    by_text = {p.text: p for p in prompts}
    assert by_text["Hello"].first_failure()[0] == "question_mark"
    assert by_text["Short one?"].first_failure()[0] == "min_words"
    assert prompts[-2].first_failure()[0] == "exact_duplicate"
    assert prompts[-1].first_failure()[0] == "near_duplicate"
    sports = [p for p in prompts if "sports" in p.text]
    assert all(p.verdicts["controversy"].verdict == "fail" and not p.kept for p in sports)
    art = [p for p in prompts if " art " in p.text]
    assert all(
        p.verdicts["controversy"].verdict == "error" and "model refused" in p.verdicts["controversy"].reason
        for p in art
    )
    assert all(not p.kept and p.split is None for p in art)
    kept = [p for p in prompts if p.kept]
    assert len(kept) == 20 and all(p.split and p.cluster is not None and p.cluster_label for p in kept)
    assert all("call_id" in p.verdicts["controversy"].detail for p in sports)
    # the classifier only saw prompts that passed the cheap filters
    assert len(backend.calls) == 31
    stats = prompt_stats(prompts)
    row = {f["filter"]: f for f in stats["filters"]}
    assert row["controversy"] == {"filter": "controversy", "evaluated": 31, "pass": 20, "fail": 6, "error": 5}
    assert stats["splits"]["held_out"] == round(20 * 868 / 3868)


def test_limit_is_seeded_and_applied_before_the_classifier():
    backend = MockBackend(classifier)
    config = PromptBuildConfig(seed=1, limit=7)
    prompts = asyncio.run(abuild_prompts(_items(), LLMClient(backend=backend), config))
    assert len(backend.calls) == 7
    chosen = [p.id for p in prompts if p.verdicts.get("limit") and p.verdicts["limit"].passed]
    again = asyncio.run(abuild_prompts(_items(), LLMClient(backend=MockBackend(classifier)), config))
    assert chosen == [p.id for p in again if p.verdicts.get("limit") and p.verdicts["limit"].passed]
    other = asyncio.run(
        abuild_prompts(
            _items(), LLMClient(backend=MockBackend(classifier)), PromptBuildConfig(seed=2, limit=7)
        )
    )
    assert chosen != [p.id for p in other if p.verdicts.get("limit") and p.verdicts["limit"].passed]


def test_build_writes_parquet_and_jsonl_that_read_back(tmp_path):
    src = tmp_path / "mine.txt"
    src.write_text("\n".join(QUESTIONS + EXTRA) + "\n")
    out = tmp_path / "run"
    prompts = build_prompts(
        src, client=LLMClient(backend=MockBackend(classifier)), out_dir=out, config=PromptBuildConfig(seed=0)
    )
    df = pl.read_parquet(out / "prompts.parquet")
    assert df.height == len(prompts)
    assert {"text", "cluster", "split", "kept", "controversy", "controversy_reason", "verdicts"} <= set(
        df.columns
    )
    assert read_prompts(out) == prompts == read_prompts(out / "prompts.parquet")
    manifest = json.loads((out / "prompts_manifest.json").read_text())
    assert manifest["controversy_template_version"] and manifest["config"]["seed"] == 0
    record = json.loads((out / "manifest.json").read_text())["stages"]["prompts"]
    assert record["status"] == "done" and record["summary"]["source"] == "mine.txt"
    assert "prompts.jsonl" in record["artifacts"]


def test_cli_build_and_stats(cli, tmp_path):
    src = tmp_path / "mine.jsonl"
    src.write_text("".join(json.dumps({"text": q}) + "\n" for q in QUESTIONS))
    out = tmp_path / "p"
    r = cli(
        "prompts", "build", "--no-controversy", "--source", src, "--out", out, "--clusters", "2", "--json"
    )
    assert r.exit_code == 0, r.stderr
    stats = json.loads(r.stdout)
    assert stats["kept"] == 30 and len(stats["clusters"]) == 2
    assert stats["splits"] == {"train": 23, "held_out": 7}
    r = cli("prompts", "stats", out / "prompts.parquet", "--json")
    assert json.loads(r.stdout) == stats
    r = cli("prompts", "stats", out)
    assert r.exit_code == 0 and "held_out" in r.stdout


@pytest.mark.parametrize("content", ["", "{not json\n"])
def test_cli_bad_prompt_file_exit_2_nothing_written(cli, tmp_path, content):
    src = tmp_path / "bad.jsonl"
    src.write_text(content)
    out = tmp_path / "never"
    r = cli("prompts", "build", "--no-controversy", "--source", src, "--out", out)
    assert r.exit_code == 2 and "bad.jsonl" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_cli_needs_model_for_classifier(cli, tmp_path):
    src = tmp_path / "q.txt"
    src.write_text("Is this contested enough to ask?\n")
    r = cli("prompts", "build", "--source", src, "--out", tmp_path / "o")
    assert r.exit_code == 2 and "--model" in r.stderr


def test_cli_bad_model_exit_2_nothing_written(cli, tmp_path):
    src = tmp_path / "q.txt"
    src.write_text("Is this contested enough to ask?\n")
    r = cli("prompts", "build", "--source", src, "--model", "not-a-model", "--out", tmp_path / "o")
    assert r.exit_code == 2 and "not-a-model" in r.stderr and not (tmp_path / "o").exists()


def test_cli_build_with_classifier_over_stub_server(cli, tmp_path, monkeypatch):
    from persona_testbed.llm.stub_server import StubServer

    src = tmp_path / "q.csv"
    src.write_text("prompt\n" + "".join(f'"{q}"\n' for q in QUESTIONS[:12]))
    with StubServer(
        responder=lambda req: (
            classifier(req["messages"])
            if "art" not in req["messages"][-1]["content"].split("\n")[0]
            else '{"controversial": true, "reason": "r"}'
        )
    ) as srv:
        monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        out = tmp_path / "p"
        r = cli("prompts", "build", "--model", "openai/stub", "--source", src, "--out", out, "--json")
        assert r.exit_code == 0, r.stderr
        stats = json.loads(r.stdout)
        n = srv.stats["requests"]
        assert {f["filter"]: f["pass"] for f in stats["filters"]}[
            "controversy"
        ] == 10  # 2 sports prompts fail
        r = cli("prompts", "build", "--model", "openai/stub", "--source", src, "--out", out, "--json")
        assert srv.stats["requests"] == n  # replayed from out/calls.db
    assert (out / "calls.db").exists()


@pytest.mark.shared_data
def test_cli_prism_from_data_dir(cli, mirror, tmp_path):
    out = tmp_path / "p"
    r = cli(
        "prompts", "build", "--no-controversy", "--limit", "50", "--data-dir", mirror, "--out", out, "--json"
    )
    assert r.exit_code == 0, r.stderr
    stats = json.loads(r.stdout)
    rows = {f["filter"]: f for f in stats["filters"]}
    assert rows["question_mark"] == {
        "filter": "question_mark",
        "evaluated": 8011,
        "pass": 5007,
        "fail": 3004,
        "error": 0,
    }
    assert rows["min_words"]["pass"] == 4652 and rows["limit"]["pass"] == 50 and stats["kept"] == 50
    assert stats["splits"]["held_out"] == round(50 * 868 / 3868)
    assert "CC-BY-4.0" in json.loads((out / "prompts_manifest.json").read_text())["attribution"]
