"""generate_pairs: files, checkpoint resume (torn line, no duplicates), stats, CLI and bad input."""

from __future__ import annotations

import json
import shutil

import polars as pl
import pytest

from factories import make_persona
from persona_testbed.feedback import FeedbackConfig, PairCounts, read_pairs
from persona_testbed.feedback.io import CHECKPOINT_NAME
from persona_testbed.feedback.stats import feedback_stats
from persona_testbed.feedback.templates import TEMPLATE_VERSION
from persona_testbed.llm import LLMClient, MockBackend
from persona_testbed.llm.stub_server import StubServer
from persona_testbed.pipeline.stages.feedback import generate_pairs

CONFIG = FeedbackConfig(counts=PairCounts(train=2, test=1, held_out=1), seed=7)


def _content(pairs):
    return [p.model_dump(exclude={"call_ids"}) for p in pairs]


def test_generate_writes_sorted_artifacts_and_manifest(tmp_path, prompt_set, personas3, scripted):
    out = tmp_path / "fb"
    res = generate_pairs(
        personas3,
        prompt_set(6, 2),
        out_dir=out,
        client=LLMClient(backend=MockBackend(scripted)),
        config=CONFIG,
    )
    assert len(res.pairs) == 12 and res.stats["ok"] == 12 and res.reused == 0
    lines = (out / "pairs.jsonl").read_text().splitlines()
    ids = [json.loads(x)["id"] for x in lines]
    assert ids == sorted(ids) and len(set(ids)) == 12
    df = pl.read_parquet(out / "pairs.parquet")
    assert df["id"].to_list() == ids and {"chosen", "rejected", "critique", "split", "flagged"} <= set(
        df.columns
    )
    manifest = json.loads((out / "manifest.json").read_text())["stages"]["feedback"]["summary"]
    assert (
        manifest["template_version"] == TEMPLATE_VERSION and manifest["seed"] == 7 and manifest["pairs"] == 12
    )
    assert read_pairs(out) == res.pairs


def test_resume_from_torn_checkpoint_gives_same_pairs_without_duplicates(
    tmp_path, prompt_set, personas3, scripted
):
    prompts = prompt_set(6, 2)
    full = generate_pairs(
        personas3,
        prompts,
        out_dir=tmp_path / "a",
        client=LLMClient(backend=MockBackend(scripted)),
        config=CONFIG,
    )
    lines = (tmp_path / "a" / CHECKPOINT_NAME).read_text().splitlines(keepends=True)
    (tmp_path / "b").mkdir()
    # 5 finished pairs, one duplicate line, and a line torn by a kill
    (tmp_path / "b" / CHECKPOINT_NAME).write_text("".join(lines[:5]) + lines[0] + lines[5][:40])
    backend = MockBackend(scripted)
    resumed = generate_pairs(
        personas3, prompts, out_dir=tmp_path / "b", client=LLMClient(backend=backend), config=CONFIG
    )
    assert resumed.reused == 5
    assert _content(resumed.pairs) == _content(full.pairs)
    ids = [json.loads(x)["id"] for x in (tmp_path / "b" / "pairs.jsonl").read_text().splitlines()]
    assert len(ids) == len(set(ids)) == 12
    # only the 7 unfinished pairs were generated (5 calls each, rejected shared per prompt aside)
    assert 0 < len(backend.calls) <= 7 * 5
    # the checkpoint is valid JSONL again after the torn line was cut
    for line in (tmp_path / "b" / CHECKPOINT_NAME).read_text().splitlines():
        json.loads(line)


def test_checkpoint_from_another_config_is_not_reused(tmp_path, prompt_set, personas3, scripted):
    prompts = prompt_set(6, 2)
    out = tmp_path / "fb"
    generate_pairs(
        personas3, prompts, out_dir=out, client=LLMClient(backend=MockBackend(scripted)), config=CONFIG
    )
    same = CONFIG.model_copy(update={"concurrency": 1, "counts": PairCounts(train=2, test=1, held_out=0)})
    res = generate_pairs(
        personas3, prompts, out_dir=out, client=LLMClient(backend=MockBackend(scripted)), config=same
    )
    assert res.reused == 9 and len(res.pairs) == 9  # counts and concurrency do not change a pair's content
    other = CONFIG.model_copy(update={"max_tokens": 99})
    res = generate_pairs(
        personas3, prompts, out_dir=out, client=LLMClient(backend=MockBackend(scripted)), config=other
    )
    assert res.reused == 0 and len({p.config_key for p in res.pairs}) == 1


def test_failed_pairs_are_recorded_and_retried_on_rerun(tmp_path, prompt_set, personas3, scripted):
    prompts = prompt_set(6, 2)
    out = tmp_path / "fb"

    def flaky(messages):
        if "role-playing" in messages[0]["content"] and "25" in messages[0]["content"]:
            from persona_testbed.llm import PermanentError

            return PermanentError("persona p-0 refused")
        return scripted(messages)

    first = generate_pairs(
        personas3, prompts, out_dir=out, client=LLMClient(backend=MockBackend(flaky)), config=CONFIG
    )
    assert first.stats["failed"] == 4 and first.stats["failures_by_step"] == {"critique": 4}
    assert all(p.error and "refused" in p.error for p in first.pairs if p.status == "failed")
    second = generate_pairs(
        personas3, prompts, out_dir=out, client=LLMClient(backend=MockBackend(scripted)), config=CONFIG
    )
    assert second.reused == 8 and second.stats["ok"] == 12


def test_stats_rates():
    from persona_testbed.feedback.record import PairValidation, PreferencePair

    def pair(i, ab, ba, status="ok"):
        return PreferencePair(
            id=f"pair-{i}",
            persona_id="p",
            prompt_id=f"q{i}",
            split="train",
            question="q?",
            persona_text="x",
            model="m",
            template_version="v",
            seed=0,
            config_key="k",
            status=status,
            validation=PairValidation(choice_ab=ab, choice_ba=ba),
        )

    pairs = [pair(0, "A", "B"), pair(1, "A", "B"), pair(2, "A", "A"), pair(3, "B", "A"), pair(4, "A", None)]
    v = feedback_stats(pairs)["validation"]
    # votes for chosen: 1+1, 1+1, 1+0, 0+0, 1 -> 6 of 9 judgements
    assert v["chosen_preferred_rate"] == pytest.approx(6 / 9)
    assert v["both_orders_chosen_rate"] == pytest.approx(2 / 4)
    assert v["position_bias_rate"] == pytest.approx(1 / 4)
    assert v["flagged"] == 1 and v["complete_pairs"] == 4


@pytest.fixture
def stub(monkeypatch, scripted):
    with StubServer(responder=lambda req: scripted(req["messages"])) as srv:
        monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        yield srv


def test_cli_generate_stats_export(cli, tmp_path, input_files, stub):
    personas, prompts = input_files
    out = tmp_path / "fb"
    r = cli(
        "feedback",
        "generate",
        "--personas",
        personas,
        "--prompts",
        prompts,
        "--model",
        "openai/stub",
        "--out",
        out,
        "--train",
        "2",
        "--test",
        "1",
        "--held-out",
        "1",
        "--json",
    )
    assert r.exit_code == 0, r.stderr
    stats = json.loads(r.stdout)
    assert stats["pairs"] == 12 and stats["ok"] == 12
    assert stats["validation"]["position_bias_rate"] == 1.0  # the stub judge always answers "A"
    assert (out / "calls.db").exists()
    r = cli("feedback", "stats", out, "--json")
    assert json.loads(r.stdout)["splits"] == stats["splits"]
    r = cli("feedback", "stats", out)
    assert r.exit_code == 0 and "position bias" in r.stdout
    # a re-run replays everything from the checkpoint and writes identical artifacts
    before = (out / "pairs.jsonl").read_bytes()
    requests = stub.stats["requests"]
    r = cli(
        "feedback",
        "generate",
        "--personas",
        personas,
        "--prompts",
        prompts,
        "--model",
        "openai/stub",
        "--out",
        out,
        "--train",
        "2",
        "--test",
        "1",
        "--held-out",
        "1",
        "--json",
    )
    assert r.exit_code == 0 and stub.stats["requests"] == requests
    assert (out / "pairs.jsonl").read_bytes() == before


def _write(path, text):
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "case",
    ["empty_prompts", "malformed_prompts", "schema_version", "zero_personas", "counts_too_big", "bad_model"],
)
def test_cli_bad_input_exit_2_one_line_nothing_written(cli, tmp_path, input_files, case):
    personas, prompts = input_files
    args = {"--train": "2", "--test": "1", "--held-out": "1", "--model": "openai/stub"}
    if case == "empty_prompts":
        prompts = _write(tmp_path / "empty.jsonl", "")
    elif case == "malformed_prompts":
        prompts = _write(tmp_path / "bad.jsonl", '{"id": "q-1", "text": \n')
    elif case == "schema_version":
        line = (personas / "personas.jsonl").read_text().splitlines()[0]
        obj = json.loads(line)
        obj["schema_version"] = 99
        personas = _write(tmp_path / "old.jsonl", json.dumps(obj) + "\n")
    elif case == "zero_personas":
        personas = _write(tmp_path / "none.jsonl", "\n")
    elif case == "counts_too_big":
        args["--train"] = "6"
    elif case == "bad_model":
        args["--model"] = "nonsense-model"
    out = tmp_path / "never"
    flat = [x for kv in args.items() for x in kv]
    r = cli("feedback", "generate", "--personas", personas, "--prompts", prompts, "--out", out, *flat)
    assert r.exit_code == 2, (case, r.stdout, r.stderr)
    assert len(r.stderr.strip().splitlines()) == 1 and r.stderr.startswith("error:")
    assert not out.exists()


def test_persona_with_same_id_different_file_order_same_pairs(tmp_path, prompt_set, scripted):
    prompts = prompt_set(6, 2)
    ps = [make_persona("p-a"), make_persona("p-b", serialno="X2")]
    a = generate_pairs(
        ps, prompts, out_dir=tmp_path / "a", client=LLMClient(backend=MockBackend(scripted)), config=CONFIG
    )
    b = generate_pairs(
        list(reversed(ps)),
        prompts,
        out_dir=tmp_path / "b",
        client=LLMClient(backend=MockBackend(scripted)),
        config=CONFIG,
    )
    assert _content(a.pairs) == _content(b.pairs)
    shutil.rmtree(tmp_path / "a")
