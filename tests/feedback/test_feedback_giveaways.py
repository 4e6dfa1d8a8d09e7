"""Issue 12, pairs: length band in the stub world, giveaway predictors, truncation counts, format artefacts,
flags and --drop-flagged, duplicate pair ids (one reader, one rule), bad length bands."""

from __future__ import annotations

import asyncio
import json

import pytest

from factories import make_persona
from persona_testbed.bench.inputs import load_pairs
from persona_testbed.core.errors import ConfigError, UserError
from persona_testbed.feedback import FeedbackConfig, PairCounts, agenerate_pairs, read_pairs
from persona_testbed.feedback.artefacts import format_features
from persona_testbed.feedback.generate import validate_pair_config
from persona_testbed.feedback.io import pairs_to_frame, write_pairs
from persona_testbed.feedback.length import LengthBand, check_band, count_words
from persona_testbed.feedback.record import PairValidation, PreferencePair
from persona_testbed.feedback.stats import feedback_stats
from persona_testbed.llm import CallStore, ChatParams, LLMClient, MockBackend, Usage
from persona_testbed.llm.backends.base import BackendReply
from persona_testbed.llm.stub_server import StubServer, varied_responder
from persona_testbed.pipeline.config import parse_config


def _pair(i, chosen="a b c", rejected="a b c d", *, status="ok", validation=None, **kw) -> PreferencePair:
    return PreferencePair(
        id=f"pair-{i:03d}",
        persona_id="p",
        prompt_id=f"q{i}",
        split="train",
        question="q?",
        persona_text="x",
        model="m",
        template_version="v",
        seed=0,
        config_key="k",
        chosen=chosen,
        rejected=rejected,
        status=status,
        validation=validation,
        **kw,
    )


# -- the stub world --------------------------------------------------------------------------------------


class _StubWorld(MockBackend):
    """The stub server's ``varied_responder`` in-process (no HTTP): the same request dict, seeded replies of
    varied lengths that follow length requests, cut off at max_tokens with finish_reason "length"."""

    def __init__(self, **kw):
        super().__init__()
        self._respond = varied_responder(**kw)

    async def complete(self, messages, params, structured):
        request = {
            "messages": messages,
            "seed": params.seed,
            "temperature": params.temperature,
            "max_tokens": params.max_tokens,
        }
        if structured is not None:
            request["response_format"] = {"type": "json_object", "schema": structured.schema}
        text, finish = self._respond(request)
        return BackendReply(text=text, usage=Usage(completion_tokens=len(text.split())), finish_reason=finish)


def test_stub_world_length_does_not_give_the_label_away(prompt_set):
    """Stub-world replies of varied lengths: "pick the shorter" is a coin flip (goal 0.5 +- 0.05 on thousands
    of pairs, see docs/feedback.md; this run of 300 allows +- 0.08), and cut-off replies are re-asked and counted."""
    personas = [make_persona(f"p-{i}", serialno=f"2024HU{i:07d}", age=str(20 + 5 * i)) for i in range(10)]
    prompts = prompt_set(150, 2)
    config = FeedbackConfig(
        counts=PairCounts(train=30, test=0, held_out=0), seed=3, concurrency=8, critique_max_tokens=120
    )
    client = LLMClient(backend=_StubWorld(seed=1, max_words=300))
    pairs, _ = asyncio.run(agenerate_pairs(personas, prompts, client, config))
    stats = feedback_stats(pairs)
    assert stats["ok"] == 300
    lo = stats["predictors"]["length_only"]
    assert abs(lo["accuracy"] - 0.5) <= 0.08 and abs(lo["accuracy_words"] - 0.5) <= 0.08, lo
    assert lo["chosen_longer"] > 100 and lo["chosen_shorter"] > 100  # both sides of the band are used
    assert stats["predictors"]["position_only"]["accuracy"] == 0.5
    assert stats["length"]["in_band_rate"] >= 0.95
    assert set(stats["length_action"]) <= {"ok", "retried", "trimmed", "out_of_band"}
    tr = stats["truncation"]["by_step"]
    assert tr["critique"]["truncated_calls"] > 0 and tr["critique"]["pairs_reasked"] > 0  # 300 words > 120
    assert stats["truncation"]["unknown_calls"] == 0
    assert stats["flags"]["by_flag"].get("truncated:critique", 0) == tr["critique"]["flagged"] > 0
    for p in pairs:
        assert set(p.finish_reasons) == set(p.call_ids)
        assert [len(v) for v in p.finish_reasons.values()] == [len(v) for v in p.call_ids.values()]
        if "truncated:critique" not in p.flags:
            assert p.finish_reasons["critique"][-1] == "stop"


def test_stub_server_reports_finish_reason_end_to_end(tmp_path):
    """Over HTTP: the stub's finish_reason reaches ChatResult and the call log."""
    with StubServer(responder=varied_responder(seed=0, min_words=50, max_words=60)) as srv:

        async def go():
            async with LLMClient(
                "openai/stub",
                base_url=srv.base_url,
                api_key="sk-test",
                store=CallStore(tmp_path / "calls.db"),
            ) as client:
                cut = await client.chat(
                    [{"role": "user", "content": "Tell me."}], params=ChatParams(max_tokens=10)
                )
                whole = await client.chat(
                    [{"role": "user", "content": "Tell me."}], params=ChatParams(max_tokens=100)
                )
                return cut, whole, client.store

        cut, whole, store = asyncio.run(go())
    assert cut.finish_reason == "length" and cut.truncated and len(cut.text.split()) == 10
    assert whole.finish_reason == "stop" and not whole.truncated
    assert [r["finish_reason"] for r in store.recent(2)] == ["stop", "length"]
    store.close()


def test_varied_responder_follows_length_requests_and_cuts_at_max_tokens():
    r = varied_responder(seed=0, in_range_share=1.0)
    for s in range(20):
        text, finish = r(
            {"messages": [{"role": "user", "content": "Keep it between 30 and 40 words."}], "seed": s}
        )
        assert 30 <= len(text.split()) <= 40 and finish == "stop"
    text, finish = r(
        {
            "messages": [{"role": "user", "content": "Keep it between 30 and 40 words."}],
            "seed": 0,
            "max_tokens": 10,
        }
    )
    assert len(text.split()) == 10 and finish == "length"
    fmt = {"type": "json_schema", "json_schema": {"schema": {"properties": {"choice": {"enum": ["A", "B"]}}}}}
    assert json.loads(r({"messages": [], "response_format": fmt})[0])["choice"] in ("A", "B")


# -- statistics ------------------------------------------------------------------------------------------


def test_length_and_position_predictors():
    v = PairValidation(choice_ab="A", choice_ba="A")  # the judge always picks the first shown
    pairs = [
        _pair(0, "short", "much longer answer", validation=v),  # chosen shorter: 1
        _pair(1, "a longer chosen one", "short", validation=v),  # chosen longer: 0
        _pair(2, "same", "same", validation=v),  # tie: 0.5
        _pair(3, "x", "y", status="failed"),
    ]  # failed pairs do not count
    pr = feedback_stats(pairs)["predictors"]
    assert pr["pairs"] == 3 and pr["length_only"]["accuracy"] == pytest.approx(1.5 / 3)
    assert (
        pr["length_only"]["chosen_shorter"],
        pr["length_only"]["ties"],
        pr["length_only"]["chosen_longer"],
    ) == (1, 1, 1)
    assert pr["position_only"] == {"presentations": 6, "accuracy": 0.5}
    assert pr["judge_picks_first_rate"] == 1.0
    # pair 0: picks chosen (ab, shorter) and rejected (ba, longer); pair 1 the reverse; the tie is left out
    assert pr["judge_picks_shorter_rate"] == 0.5


def test_truncation_counts_by_step_and_flags():
    pairs = [
        _pair(0, finish_reasons={"rejected": ["length", "stop"], "critique": ["stop"], "chosen": ["stop"]}),
        _pair(
            1,
            finish_reasons={
                "rejected": ["stop"],
                "critique": ["length", "length"],
                "chosen": ["stop"],
                "judge_ab": ["length"],
            },
            flags=["truncated:critique"],
        ),
        _pair(2, finish_reasons={"rejected": [None]}),
        _pair(3),  # an older file: no finish reasons
    ]
    st = feedback_stats(pairs)
    tr = st["truncation"]
    assert tr["by_step"]["rejected"] == {"truncated_calls": 1, "pairs_reasked": 1, "flagged": 0}
    assert tr["by_step"]["critique"] == {"truncated_calls": 2, "pairs_reasked": 1, "flagged": 1}
    assert tr["by_step"]["judge_ab"] == {"truncated_calls": 1}
    assert tr["unknown_calls"] == 1 and tr["pairs_without_finish_reasons"] == 1
    assert st["flags"] == {"by_flag": {"truncated:critique": 1}, "flagged_pairs": 1, "flagged_rate": 0.25}


@pytest.mark.parametrize(
    "text,features",
    [
        ("Plain prose. Nothing else.", set()),
        ("Points:\n- one\n- two", {"markdown_list"}),
        ("1. first\n2) second", {"markdown_list"}),
        ("## Heading\nBody", {"heading"}),
        ("**Summary**\nBody with **bold** words", {"heading", "bold"}),
        ("Sure! Here you go.", {"leading_sure"}),
        ("Certainly, the answer is yes.", {"leading_sure"}),
        ("Here is the revised answer: be kind.", {"preamble"}),
        ("Revised answer: be kind.", {"preamble"}),
        ('"Be kind to others."', {"quoted"}),
        ("“Be kind.”", {"quoted"}),
        ("Line one  \nline two", {"trailing_whitespace"}),
        ("Surely not - 3 - 4 in a line.", set()),
    ],
)
def test_format_checks(text, features):
    assert format_features(text) == features


def test_format_rates_per_side():
    pairs = [
        _pair(0, "- a\n- b", "Plain."),
        _pair(1, "Sure, plain.", "Sure, also plain."),
        _pair(2, "x", "y"),
    ]
    f = feedback_stats(pairs)["format"]["checks"]
    assert f["markdown_list"] == {
        "chosen": 1,
        "chosen_rate": 1 / 3,
        "rejected": 0,
        "rejected_rate": 0.0,
        "chosen_only": 1,
        "rejected_only": 0,
        "differ_rate": 1 / 3,
    }
    assert (
        f["leading_sure"]["chosen"] == f["leading_sure"]["rejected"] == 1
        and f["leading_sure"]["differ_rate"] == 0
    )


def test_stats_cli_prints_giveaways_truncation_and_format(cli, tmp_path):
    write_pairs(
        [
            _pair(0, finish_reasons={"rejected": ["length", "stop"]}, flags=["length_out_of_band"]),
            _pair(1, "- a\n- b c d e", "a b"),
        ],
        tmp_path,
    )
    r = cli("feedback", "stats", tmp_path)
    assert r.exit_code == 0, r.stderr
    for text in (
        "length-only accuracy",
        "position-only accuracy",
        "truncation at max_tokens",
        "format artefacts",
        "markdown_list",
        "length_out_of_band",
    ):
        assert text in r.stdout, text
    st = json.loads(cli("feedback", "stats", tmp_path, "--json").stdout)
    assert st["predictors"]["length_only"]["accuracy"] == 0.5
    assert st["truncation"]["by_step"]["rejected"]["pairs_reasked"] == 1


# -- records, flags, export ------------------------------------------------------------------------------


def test_older_pair_files_still_load():
    old = _pair(0).model_dump(exclude={"flags", "finish_reasons", "length_target"})
    old.update(flagged=True, length_action="truncated")
    pair = PreferencePair.model_validate(old)
    assert (
        pair.flags == ["judge_prefers_rejected"] and pair.finish_reasons == {} and pair.length_target is None
    )
    frame = pairs_to_frame([pair, _pair(1, flags=["length_out_of_band"], length_target=(2, 4))])
    assert frame["flags"].to_list() == [["judge_prefers_rejected"], ["length_out_of_band"]]
    assert frame["length_target_low"].to_list() == [None, 2]


def test_export_drop_flagged(cli, tmp_path):
    src = tmp_path / "fb"
    write_pairs(
        [
            _pair(0),
            _pair(1, flags=["length_out_of_band"]),
            _pair(2, flags=["truncated:rejected"]),
            _pair(3, flagged=True),
        ],
        src,
    )
    r = cli(
        "feedback", "export", src, "--format", "trl", "--out", tmp_path / "trl", "--drop-flagged", "--json"
    )
    assert r.exit_code == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["dropped_flagged"] == 3 and res["counts"] == {"train": 1}
    rows = (tmp_path / "trl" / "train.jsonl").read_text().splitlines()
    assert [json.loads(x)["id"] for x in rows] == ["pair-000"]
    r = cli("feedback", "export", src, "--format", "jsonl", "--out", tmp_path / "all.jsonl", "--json")
    assert (
        json.loads(r.stdout)["dropped_flagged"] == 0
        and len((tmp_path / "all.jsonl").read_text().splitlines()) == 4
    )


# -- one reader, one rule: duplicate pair ids ------------------------------------------------------------


def _dup_file(tmp_path):
    lines = [_pair(0).model_dump_json(), _pair(1).model_dump_json(), _pair(0, "other").model_dump_json()]
    path = tmp_path / "fb" / "pairs.jsonl"
    path.parent.mkdir()
    path.write_text("\n".join(lines) + "\n")
    return path


def test_read_pairs_rejects_a_duplicate_id_with_both_lines(tmp_path):
    path = _dup_file(tmp_path)
    with pytest.raises(UserError) as e:
        read_pairs(path)
    assert str(e.value) == f"{path}:3: duplicate pair id pair-000 (first at line 1)"


@pytest.mark.parametrize("command", [("stats",), ("export", "--format", "trl", "--out", "{tmp}/trl")])
def test_stats_and_export_reject_duplicate_ids_exit_2(cli, tmp_path, command):
    path = _dup_file(tmp_path)
    args = [a.replace("{tmp}", str(tmp_path)) for a in command]
    r = cli("feedback", args[0], path, *args[1:])
    assert r.exit_code == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "duplicate pair id pair-000 (first at line 1)" in r.stderr
    assert not (tmp_path / "trl").exists()


def test_bench_pair_loader_uses_the_same_rule(tmp_path):
    path = _dup_file(tmp_path)
    with pytest.raises(UserError) as e:
        load_pairs(path)
    assert str(e.value) == f"{path}:3: duplicate pair id pair-000 (first at line 1)"
    frame = pairs_to_frame([_pair(0), _pair(1), _pair(0, "other")])
    pq = tmp_path / "pairs.parquet"
    frame.write_parquet(pq)
    with pytest.raises(UserError) as e:
        load_pairs(pq)
    assert str(e.value) == f"{pq}: row 3: duplicate pair id pair-000 (first at row 1)"
    # a failed pair's id counts too (the feedback reader sees every line)
    failed = tmp_path / "failed.jsonl"
    failed.write_text(_pair(0).model_dump_json() + "\n" + _pair(0, status="failed").model_dump_json() + "\n")
    with pytest.raises(UserError, match="duplicate pair id pair-000"):
        load_pairs(failed)
    frame.head(2).write_parquet(tmp_path / "ok.parquet")
    assert [p.id for p in load_pairs(tmp_path / "ok.parquet")] == ["pair-000", "pair-001"]


# -- bad length bands ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "low,high,msg",
    [
        (1.2, 0.9, "low end is above the high end"),
        (0.0, 1.1, "positive"),
        (-0.5, 1.1, "positive"),
        (0.9, float("nan"), "positive"),
    ],
)
def test_bad_length_band_is_a_one_line_user_error_before_any_work(low, high, msg, tmp_path):
    with pytest.raises(UserError, match=msg) as e:
        check_band(low, high)
    assert "\n" not in str(e.value)
    config = FeedbackConfig(length_band=LengthBand(low=low, high=high))
    with pytest.raises(UserError, match=msg):
        validate_pair_config(config)
    with pytest.raises(UserError, match=msg):  # the library core checks too, before any call
        asyncio.run(agenerate_pairs([], [], client=None, config=config))


@pytest.mark.parametrize(
    "band,msg",
    [([1.2, 0.9], "low 1.2 is above high 0.9"), ([0, 1], "must be positive"), ([0.9], "two numbers")],
)
def test_bad_length_band_in_run_config(band, msg):
    with pytest.raises(ConfigError, match=f"feedback.length_band: .*{msg}"):
        parse_config({"feedback": {"length_band": band}})
    assert parse_config({"feedback": {"length_band": [0.8, 1]}}).feedback.length_band == [0.8, 1.0]


def test_count_words_matches_the_band_default():
    assert count_words("one two three") == 3
    assert LengthBand().bounds(20) == (17, 23)
