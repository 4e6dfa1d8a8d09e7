"""The bench as inspect_ai tasks (skipped without inspect-ai).

In process: each task on inspect's mockllm gives the rows and figures of ``run_task`` with the same scripted
replies. In a subprocess: the real ``inspect eval`` command finds the tasks by entry point (from any
directory) and by file path, and the ``.eval`` log holds the bench's rows and figures.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

inspect_ai = pytest.importorskip("inspect_ai")

from inspect_ai import eval as inspect_eval  # noqa: E402
from inspect_ai.log import read_eval_log  # noqa: E402
from inspect_ai.model import ModelOutput, ModelUsage, get_model  # noqa: E402

from persona_testbed.bench import inspect_tasks  # noqa: E402
from persona_testbed.bench.inspect_bridge import flatten_figures  # noqa: E402
from persona_testbed.bench.runner import read_items, run_task  # noqa: E402
from persona_testbed.core.errors import UserError  # noqa: E402
from persona_testbed.llm import LLMClient, MockBackend  # noqa: E402
from persona_testbed.personas.io import write_personas  # noqa: E402

# inspect's own retry setup warns about a tenacity argument on every model: not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore:The 'initial' parameter is deprecated:DeprecationWarning")

INSPECT = Path(sys.executable).with_name("inspect")
TASK_FILE = Path(inspect_tasks.__file__)


def reply(system: str, user: str) -> str:
    """One scripted world for every role: the critic passes tailored answers for women only."""
    if system.startswith("You are a critic"):
        answer = user.split("Answer to review:\n", 1)[1].split("\n\n", 1)[0]
        ok = "sex: Female" in user and answer.startswith("tailored")
        return json.dumps({"reasoning": "r", "needs_revision": not ok})
    if system.startswith("You are role-playing"):
        first = user.split("Answer B:", 1)[0]
        return json.dumps({"reasoning": "me", "preferred": "A" if "CHOSEN" in first else "B"})
    answer = "tailored answer" if "sex: Female" in system else "plain answer"
    if '"reasoning": "...", "answer"' in system:
        return json.dumps({"reasoning": "think", "answer": answer})
    if '"summary": "...", "answer"' in system:
        return json.dumps({"summary": "s", "answer": answer})
    return answer


def _inspect_reply(messages, tools, tool_choice, config) -> ModelOutput:
    system = next((m.text for m in messages if m.role == "system"), "")
    out = ModelOutput.from_content("mockllm", reply(system, messages[-1].text))
    out.usage = ModelUsage(
        input_tokens=1, output_tokens=1, total_tokens=2
    )  # else mockllm needs tiktoken (download)
    return out


def _mock() -> object:
    return get_model("mockllm/model", custom_outputs=_inspect_reply, memoize=False)


def _bench_client() -> LLMClient:
    def fn(messages):
        system = next((m["content"] for m in messages if m["role"] == "system"), "")
        return reply(system, messages[-1]["content"])

    return LLMClient(backend=MockBackend(fn))


def _inspect_run(tmp_path, task_fn, **args):
    [log] = inspect_eval(task_fn(**args), model=_mock(), log_dir=str(tmp_path / "logs"), display="none")
    assert log.status == "success", log.error
    rows = [r for s in log.samples for r in next(iter(s.scores.values())).metadata["rows"]]
    metrics = {name: m.value for sc in log.results.scores for name, m in sc.metrics.items()}
    return log, rows, metrics


def _key(row: dict) -> tuple:
    return row["arm"], row["item_id"], row["sample_index"]


def _same_as_bench(tmp_path, name, task_fn, bench_options, **args):
    """inspect rows and metrics == run_task's rows and figures (call ids aside)."""
    log, rows, metrics = _inspect_run(tmp_path, task_fn, **args)
    common = {k: v for k, v in args.items() if k in ("personas", "prompts", "pairs", "n", "seed", "split")}
    res = run_task(
        name,
        candidate=_bench_client(),
        judge=_bench_client(),
        out_dir=tmp_path / "bench",
        **common,
        **bench_options,
    )
    fields = (
        "status",
        "failed_stage",
        "score",
        "label",
        "answer",
        "judge_raw",
        "candidate_raw",
        "persona_id",
        "prompt_id",
        "pair_id",
        "leaky",
        "error",
    )
    got = {_key(r): {k: r[k] for k in fields} for r in rows}
    bench = {
        _key(r): {k: r[k] for k in fields}
        for r in read_items(tmp_path / "bench" / "items.parquet").to_dicts()
    }
    assert got == bench and len(rows) == len(got)
    assert metrics == flatten_figures(res["figures"])
    return log, got, res


@pytest.fixture
def held(prompts):
    return [p for p in prompts if p.split == "held_out"]


def test_main_matches_bench_run(tmp_path, personas, held):
    log, got, res = _same_as_bench(
        tmp_path,
        "main",
        inspect_tasks.persona_main,
        {"modes": ["persona", "cot"]},
        personas=personas,
        prompts=held,
        n=8,
        seed=1,
        modes="persona,cot",
    )
    assert len(log.samples) == 16 and len(got) == 16
    assert {a for a, _, _ in got} == {"persona", "cot"}
    for row in got.values():  # women get tailored answers that pass; only the answer reaches the judge
        assert row["score"] == (1.0 if row["persona_id"].startswith("p-f") else 0.0)
        assert "think" not in row["judge_raw"]
    assert res["figures"]["modes"]["persona"]["items"] == 8


def test_passk_loo_intersections_fidelity_match_bench_run(tmp_path, personas, held, pairs):
    _, got, _ = _same_as_bench(
        tmp_path / "k",
        "passk",
        inspect_tasks.persona_passk,
        {"k": 2, "samples": 3},
        personas=personas,
        prompts=held,
        n=3,
        seed=0,
        k=2,
        samples=3,
    )
    assert sorted({s for _, _, s in got}) == [0, 1, 2]
    for ablate in ("candidate", "judge"):
        _, got, res = _same_as_bench(
            tmp_path / ablate,
            "loo",
            inspect_tasks.persona_loo,
            {"attributes": ["sex", "age"], "ablate": ablate},
            personas=personas,
            prompts=held,
            n=6,
            seed=2,
            attributes="sex,age",
            ablate=ablate,
        )
        assert {a for a, _, _ in got} == {"full", "control", "without:sex", "without:age"}
        if ablate == "candidate":  # the candidate stops tailoring without sex: judgements change
            assert res["figures"]["attributes"]["sex"]["changed_share"]["estimate"] > 0
    groups = ["sex=Female", "sex=Male"]
    _, got, res = _same_as_bench(
        tmp_path / "x",
        "intersections",
        inspect_tasks.persona_intersections,
        {"groups": groups},
        personas=personas,
        prompts=held,
        n=4,
        seed=0,
        groups=groups,
    )
    assert res["figures"]["largest_gap"]["estimate"] == 1.0
    _, got, res = _same_as_bench(
        tmp_path / "f",
        "fidelity",
        inspect_tasks.persona_fidelity,
        {"matrix_personas": 0},
        personas=personas,
        pairs=pairs,
        n=5,
        seed=0,
    )
    assert len(got) == 10 and {a for a, _, _ in got} == {"AB", "BA"}
    assert res["figures"]["accuracy"]["estimate"] == 1.0


def test_bad_options_are_one_line_user_errors(personas, held, pairs):
    with pytest.raises(UserError, match="need n >= k"):
        inspect_tasks.persona_passk(personas=personas, prompts=held, n=2, k=3, samples=2)
    with pytest.raises(UserError, match="unknown mode 'poetry'"):
        inspect_tasks.persona_main(personas=personas, prompts=held, modes="persona,poetry")
    with pytest.raises(UserError, match="unknown persona attribute 'shoe size'"):
        inspect_tasks.persona_loo(personas=personas, prompts=held, attributes="shoe size")
    with pytest.raises(UserError, match="cluster"):
        inspect_tasks.persona_fidelity(personas=personas, pairs=pairs, cluster="planet")


# -- the real `inspect eval` command ---------------------------------------------------------------------


def _inputs(tmp_path: Path, personas, held) -> Path:
    data = tmp_path / "data"
    write_personas(personas, data / "personas")
    (data / "prompts.jsonl").write_text(
        "".join(json.dumps(p.model_dump()) + "\n" for p in held), encoding="utf-8"
    )
    # mockllm counts tokens with tiktoken, whose encoding is a download: an offline stand-in for the subprocess
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(
        "import tiktoken\n\nclass _Enc:\n    def encode(self, text, **kw):\n        return text.split()\n\n"
        "tiktoken.get_encoding = lambda name: _Enc()\n",
        encoding="utf-8",
    )
    return data


def _inspect_eval(cwd: Path, *args: str) -> list[Path]:
    env = dict(os.environ, PYTHONPATH=str(cwd.parent / "shim"), NO_COLOR="1")
    proc = subprocess.run(
        [str(INSPECT), "eval", *args, "--model", "mockllm/model", "--display", "none", "--log-dir", "logs"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return sorted((cwd / "logs").glob("*.eval"))


def _metrics(log) -> dict[str, float]:
    return {n: m.value for sc in log.results.scores for n, m in sc.metrics.items()}


@pytest.mark.skipif(not INSPECT.exists(), reason="no inspect command next to this python")
def test_inspect_eval_command_by_entry_point_and_by_file(tmp_path, personas, held):
    """``persona_testbed/persona_main`` (entry point, from a directory outside the project) and the task file
    copied out of the package (absolute imports only) in one ``inspect eval`` run."""
    data = _inputs(tmp_path, personas, held)
    task_file = shutil.copy(TASK_FILE, data / "bench_tasks.py")
    logs = _inspect_eval(
        data,
        "persona_testbed/persona_main",
        f"{task_file}@persona_passk",
        "-T",
        "personas=personas",
        "-T",
        "prompts=prompts.jsonl",
        "-T",
        "n=2",
    )
    main, passk = (read_eval_log(str(p)) for p in sorted(logs, key=lambda p: "passk" in p.name))
    assert main.status == passk.status == "success"
    assert main.eval.task == "persona_main" and len(main.samples) == 8  # 2 items x the 4 default modes
    for s in main.samples:  # mockllm's default reply is no verdict / no JSON answer: recorded failures
        score = s.scores["persona_bench_judge"]
        [row] = score.metadata["rows"]
        structured = row["arm"] in ("cot", "summary")
        assert score.value == "N" and row["failed_stage"] == ("candidate" if structured else "judge")
        assert "invalid structured output" in row["error"]
        assert structured or row["answer"] == "Default output from mockllm/model"
    m = _metrics(main)
    assert m["modes.persona.accuracy"] == 0.0 and m["modes.persona.judge_failures"] == 2.0
    assert m["modes.cot.candidate_failures"] == 2.0
    assert passk.eval.task == "persona_passk" and len(passk.samples) == 6  # 2 items x 3 samples (k=3)
    assert {s.metadata["sample_index"] for s in passk.samples} == {0, 1, 2}
    assert _metrics(passk)["pass_at_k.3"] == 0.0
