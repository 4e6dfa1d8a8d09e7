"""Wall time of the bench as an inspect_ai task: ``inspect eval persona_testbed/persona_main`` on mockllm.

Two figures for ``--n`` items (default 50) in persona mode:

- ``cli``: the real ``inspect eval`` command in a subprocess (process start, entry-point lookup, task
  build, eval, log write) with mockllm's default reply, which is no valid verdict: every item ends as a
  recorded judge failure after the bench's 2 re-asks (4 model calls per item);
- ``in-process``: ``inspect_ai.eval`` of the same task with scripted valid replies (2 calls per item:
  candidate + critic), i.e. the bridge's own cost without process start.

mockllm counts tokens with tiktoken, whose encoding is a download; offline, a ``sitecustomize`` stand-in
is put on the subprocess's PYTHONPATH. Needs the ``inspect`` extra.

    python benchmarks/bench_inspect.py [--n 50] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from inspect_ai import eval as inspect_eval
from inspect_ai.log import read_eval_log
from inspect_ai.model import ModelOutput, ModelUsage, get_model

from persona_testbed.bench.inspect_tasks import persona_main
from persona_testbed.bench.records import BenchPrompt
from persona_testbed.personas.io import write_personas
from persona_testbed.personas.record import PERSONA_FIELDS, FieldValue, Persona, SourceKey

SHIM = (
    "import tiktoken\n\nclass _Enc:\n    def encode(self, text, **kw):\n        return text.split()\n\n"
    "tiktoken.get_encoding = lambda name: _Enc()\n"
)


def persona(i: int) -> Persona:
    values = {f: f"value {i % 3}" for f in PERSONA_FIELDS}
    values.update(sex="Female" if i % 2 else "Male", age=str(20 + i))
    return Persona(
        id=f"p-{i:03d}",
        source=SourceKey(year=2024, state="39", serialno=f"S{i}", sporder=1),
        fields={f: FieldValue(value=v, provenance="census") for f, v in values.items()},
    )


def scripted(messages, tools, tool_choice, config) -> ModelOutput:
    system = next((m.text for m in messages if m.role == "system"), "")
    text = (
        json.dumps({"reasoning": "fits", "needs_revision": "sex: Male" in messages[-1].text})
        if system.startswith("You are a critic")
        else "a tailored answer"
    )
    out = ModelOutput.from_content("mockllm", text)
    out.usage = ModelUsage(input_tokens=1, output_tokens=1, total_tokens=2)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=50, help="bench items")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    personas = [persona(i) for i in range(20)]
    prompts = [
        BenchPrompt(id=f"q{i}", text=f"Should policy {i} change?", split="held_out") for i in range(20)
    ]
    out: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_personas(personas, root / "personas")
        (root / "prompts.jsonl").write_text(
            "".join(p.model_dump_json() + "\n" for p in prompts), encoding="utf-8"
        )
        (root / "shim").mkdir()
        (root / "shim" / "sitecustomize.py").write_text(SHIM, encoding="utf-8")
        cmd = [
            str(Path(sys.executable).with_name("inspect")),
            "eval",
            "persona_testbed/persona_main",
            "--model",
            "mockllm/model",
            "-T",
            "personas=personas",
            "-T",
            "prompts=prompts.jsonl",
            "-T",
            f"n={args.n}",
            "-T",
            "modes=persona",
            "--display",
            "none",
            "--log-dir",
            "logs",
        ]
        t0 = time.perf_counter()
        proc = subprocess.run(
            cmd, cwd=root, env=dict(os.environ, PYTHONPATH=str(root / "shim")), capture_output=True, text=True
        )
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(proc.stderr[-2000:])
        log = read_eval_log(str(next((root / "logs").glob("*.eval"))))
        out["cli"] = {
            "items": len(log.samples),
            "status": log.status,
            "wall_s": round(wall, 2),
            "judge_failures": sum(
                1 for s in log.samples if s.scores["persona_bench_judge"].metadata["failed_stage"] == "judge"
            ),
        }
        task = persona_main(personas=personas, prompts=prompts, n=args.n, modes="persona")
        model = get_model("mockllm/model", custom_outputs=scripted, memoize=False)
        t0 = time.perf_counter()
        [log] = inspect_eval(task, model=model, log_dir=str(root / "logs2"), display="none")
        wall = time.perf_counter() - t0
        acc = {n: m.value for sc in log.results.scores for n, m in sc.metrics.items()}[
            "modes.persona.accuracy"
        ]
        out["in-process"] = {
            "items": len(log.samples),
            "status": log.status,
            "wall_s": round(wall, 2),
            "accuracy": acc,
        }
    if args.json:
        print(json.dumps(out, indent=2))
        return
    for name, row in out.items():
        print(f"{name:11s} " + "  ".join(f"{k}={v}" for k, v in row.items()))


if __name__ == "__main__":
    main()
