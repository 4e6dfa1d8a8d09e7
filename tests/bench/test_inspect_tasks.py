"""The bench as inspect_ai tasks, driven by inspect's mockllm provider (skipped without inspect-ai)."""

from __future__ import annotations

import json

import pytest

inspect_ai = pytest.importorskip("inspect_ai")

from inspect_ai import eval as inspect_eval  # noqa: E402
from inspect_ai.model import ModelOutput, ModelUsage, get_model  # noqa: E402

from persona_testbed.bench.inspect_tasks import persona_main, persona_passk  # noqa: E402


def _out(text: str) -> ModelOutput:
    """A mock output with usage set (else mockllm counts tokens with tiktoken, which downloads)."""
    out = ModelOutput.from_content("mockllm", text)
    out.usage = ModelUsage(input_tokens=1, output_tokens=1, total_tokens=2)
    return out


def _judge_model(log):
    def fn(messages, tools, tool_choice, config):
        user = messages[-1].text
        log.append(user)
        answer = user.split("Answer to review:\n", 1)[1].split("\n\n", 1)[0]
        female = "sex: Female" in user
        return _out(json.dumps({"reasoning": "r", "needs_revision": ("bad" in answer) or not female}))
    return get_model("mockllm/model", custom_outputs=fn, memoize=False)


def test_inspect_main_scores_like_the_bench(tmp_path, personas, prompts):
    cand = get_model("mockllm/model", memoize=False, custom_outputs=lambda *a: _out(
        json.dumps({"reasoning": "bad thoughts", "answer": "good answer"})))
    seen: list[str] = []
    task = persona_main(personas=personas, prompts=[p for p in prompts if p.split == "held_out"], n=8, seed=1,
                        mode="cot", judge=_judge_model(seen))
    [log] = inspect_eval(task, model=cand, log_dir=str(tmp_path), display="none")
    assert log.status == "success"
    samples = log.samples
    expect = [1.0 if s.metadata["persona_id"].startswith("p-f") else 0.0 for s in samples]
    got = [1.0 if list(s.scores.values())[0].value == "C" else 0.0 for s in samples]
    assert got == expect
    assert len(seen) == 8 and not any("bad thoughts" in u for u in seen)  # only the answer is judged


def test_inspect_passk_epochs_and_validation(tmp_path, personas, prompts):
    seen: list[str] = []
    cand = get_model("mockllm/model", memoize=False,
                     custom_outputs=lambda *a: _out("a good answer"))
    task = persona_passk(personas=personas, prompts=[p for p in prompts if p.split == "held_out"], n=3, seed=0, k=2,
                         judge=_judge_model(seen))
    [log] = inspect_eval(task, model=cand, log_dir=str(tmp_path), display="none")
    assert log.status == "success" and len(seen) == 6  # every epoch judged
    reducers = {s.reducer: s.metrics["accuracy"].value for s in log.results.scores}
    # judge: Female -> pass; the 3 held-out items' personas decide pass@1 == pass@2 (deterministic answers)
    assert set(reducers) == {"pass_at_1", "pass_at_2"} and reducers["pass_at_1"] == reducers["pass_at_2"]
    with pytest.raises(ValueError, match="need n >= k"):
        persona_passk(personas=personas, prompts=prompts, n=2, k=3, samples=2)
