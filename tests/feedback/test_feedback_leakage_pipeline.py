"""Leakage in the pipeline: pairs get a check when made, stats report rates, export --drop-leaky, old files."""

from __future__ import annotations

import json

import pytest

from persona_testbed.feedback import (
    FeedbackConfig,
    PairCounts,
    export_pairs,
    feedback_stats,
    read_pairs,
    templates,
)
from persona_testbed.feedback.io import CHECKPOINT_NAME
from persona_testbed.feedback.leakage import AnswerLeakage, LeakageFinding, PairLeakage
from persona_testbed.feedback.record import PreferencePair
from persona_testbed.llm import LLMClient, MockBackend
from persona_testbed.pipeline.stages.feedback import generate_pairs

COUNTS = PairCounts(train=2, test=1, held_out=1)  # 3 personas x 4 = 12 pairs


def leaky_reply(scripted):
    """The persona aged 35 gets a revision that names its age; the others get the scripted one."""

    def reply(messages):
        if messages[0]["content"] == templates.REVISE_SYSTEM and "Age 35" in messages[-1]["content"]:
            return "As a 35-year-old, a plainer answer."
        return scripted(messages)

    return reply


@pytest.fixture
def leaky_run(tmp_path, prompt_set, personas3, scripted):
    out = tmp_path / "fb"
    res = generate_pairs(
        personas3,
        prompt_set(6, 2),
        out_dir=out,
        client=LLMClient(backend=MockBackend(leaky_reply(scripted))),
        config=FeedbackConfig(counts=COUNTS, seed=3),
    )
    return out, res


def test_pairs_are_checked_when_made_and_stats_report_rates(leaky_run):
    out, res = leaky_run
    assert all(p.leakage is not None for p in res.pairs)
    leaky = [p for p in res.pairs if p.leaky]
    assert len(leaky) == 4 and {p.persona_id for p in leaky} == {"p-1"}  # age 35 = persona p-1
    f = leaky[0].leakage.chosen.findings[0]
    assert (f.field, f.text, f.in_context) == ("age", "As a 35-year-old", False)
    assert leaky[0].chosen[f.start : f.end] == f.text
    lk = res.stats["leakage"]
    assert lk["checked"] == 12 and lk["unchecked"] == 0 and lk["leaky"] == 4
    assert lk["leaky_rate"] == pytest.approx(4 / 12) and lk["by_field"] == {
        "age": {"pairs": 4, "rate": pytest.approx(1 / 3)}
    }
    assert lk["rejected_leaky"] == 0 and lk["rejected_leaky_rate"] == 0.0 and lk["rejected_by_field"] == {}
    # written to pairs.jsonl / parquet and the manifest
    assert sum(p.leaky for p in read_pairs(out)) == 4
    import polars as pl

    assert pl.read_parquet(out / "pairs.parquet")["leaky"].sum() == 4
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["stages"]["feedback"]["summary"]["leaky"] == 4


def test_stats_per_field_and_rejected_control():
    def pair(i, chosen_fields, rejected_fields, in_context=(), status="ok", checked=True):
        def answer(fields, ctx=()):
            fs = [LeakageFinding(field=f, mode="label", term=f, text=f, start=0, end=len(f)) for f in fields]
            fs += [
                LeakageFinding(field=f, mode="label", term=f, text=f, start=0, end=len(f), in_context=True)
                for f in ctx
            ]
            return AnswerLeakage(leaky=bool(fields), findings=fs)

        leak = (
            PairLeakage(
                leaky=bool(chosen_fields),
                chosen=answer(chosen_fields, in_context),
                rejected=answer(rejected_fields),
            )
            if checked
            else None
        )
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
            leakage=leak,
        )

    pairs = [
        pair(0, ["age", "religion"], []),
        pair(1, ["religion"], ["religion"]),
        pair(2, [], [], ["sex"]),
        pair(3, [], []),
        pair(4, [], [], checked=False),
        pair(5, ["age"], [], status="failed"),
    ]
    lk = feedback_stats(pairs)["leakage"]
    assert lk["checked"] == 4 and lk["unchecked"] == 1  # failed pairs are not counted at all
    assert lk["leaky"] == 2 and lk["leaky_rate"] == pytest.approx(0.5)
    assert lk["by_field"] == {"age": {"pairs": 1, "rate": 0.25}, "religion": {"pairs": 2, "rate": 0.5}}
    assert lk["rejected_leaky"] == 1 and lk["rejected_by_field"] == {"religion": {"pairs": 1, "rate": 0.25}}
    assert lk["in_context_findings"] == 1
    empty = feedback_stats([pair(0, [], [], checked=False)])["leakage"]
    assert empty["checked"] == 0 and empty["leaky_rate"] is None


def test_export_drop_leaky_counts_and_card(leaky_run, tmp_path):
    out, _ = leaky_run
    kept = export_pairs(out, "trl", tmp_path / "trl_all")
    assert kept["dropped_leaky"] == 0 and sum(kept["counts"].values()) == 12
    dropped = export_pairs(out, "trl", tmp_path / "trl", drop_leaky=True)
    assert dropped["dropped_leaky"] == 4 and sum(dropped["counts"].values()) == 8
    rows = [json.loads(x) for f in (tmp_path / "trl").glob("*.jsonl") for x in f.read_text().splitlines()]
    assert len(rows) == 8 and not any("35-year-old" in r["chosen"][0]["content"] for r in rows)
    res = export_pairs(out, "jsonl", tmp_path / "x.jsonl", drop_leaky=True)
    assert res["counts"] == {"pairs": 8} and res["dropped_leaky"] == 4
    res = export_pairs(out, "hf", tmp_path / "hf", drop_leaky=True)
    card = (tmp_path / "hf" / "README.md").read_text()
    assert res["dropped_leaky"] == 4 and "**4 leaky pairs were dropped from this export**" in card
    assert "4 of 12 checked chosen answers (33.3%)" in card  # rates before dropping
    export_pairs(out, "hf", tmp_path / "hf_all")
    assert "Leaky pairs are kept (column `leaky`)" in (tmp_path / "hf_all" / "README.md").read_text()


def test_cli_stats_and_export_drop_leaky(cli, leaky_run, tmp_path):
    out, _ = leaky_run
    r = cli("feedback", "stats", out, "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["leakage"]["leaky"] == 4
    r = cli("feedback", "stats", out)
    assert r.exit_code == 0 and "attribute leakage" in r.stdout and "age" in r.stdout
    r = cli("feedback", "export", out, "--format", "trl", "--out", tmp_path / "t", "--drop-leaky", "--json")
    assert r.exit_code == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["dropped_leaky"] == 4 and sum(res["counts"].values()) == 8
    r = cli("feedback", "export", out, "--format", "trl", "--out", tmp_path / "t2")
    assert r.exit_code == 0 and "dropped leaky" in r.stdout


def _strip_leakage(path):
    lines = []
    for line in path.read_text().splitlines():
        obj = json.loads(line)
        obj.pop("leakage")
        lines.append(json.dumps(obj))
    path.write_text("\n".join(lines) + "\n")


def test_old_pair_records_without_leakage_still_load(leaky_run, tmp_path):
    out, _ = leaky_run
    _strip_leakage(out / "pairs.jsonl")
    pairs = read_pairs(out)
    assert len(pairs) == 12 and all(p.leakage is None and p.leaky is None for p in pairs)
    lk = feedback_stats(pairs)["leakage"]
    assert lk["checked"] == 0 and lk["unchecked"] == 12 and lk["leaky"] == 0
    res = export_pairs(out, "trl", tmp_path / "trl", drop_leaky=True)  # unchecked pairs are kept, and counted
    assert res["dropped_leaky"] == 0 and res["unchecked_leakage"] == 12 and sum(res["counts"].values()) == 12


def test_rerun_checks_checkpointed_pairs_that_lack_leakage(leaky_run, prompt_set, personas3, scripted):
    out, first = leaky_run
    _strip_leakage(out / CHECKPOINT_NAME)
    backend = MockBackend(leaky_reply(scripted))
    again = generate_pairs(
        personas3,
        prompt_set(6, 2),
        out_dir=out,
        client=LLMClient(backend=backend),
        config=FeedbackConfig(counts=COUNTS, seed=3),
    )
    assert again.reused == 12 and backend.calls == []
    assert [p.leakage for p in again.pairs] == [p.leakage for p in first.pairs]
