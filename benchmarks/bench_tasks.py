"""Bench task throughput: items per minute and LLM calls per item, every task against a loopback stub.

Starts the OpenAI-compatible stub server on 127.0.0.1 with a fixed latency (default 20 ms) and a
scripted responder (valid structured replies for each schema), then runs each bench task through the
real ``openai/`` backend, a fresh call log and the default bootstrap. Prints a table (or ``--json``).

    python benchmarks/bench_tasks.py [--latency 0.02] [--concurrency 16] [--scale 1.0]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from persona_testbed.bench import run_task
from persona_testbed.bench.records import BenchPair, BenchPrompt
from persona_testbed.llm.stub_server import StubServer
from persona_testbed.personas.record import PERSONA_FIELDS, FieldValue, Persona, SourceKey


def responder(request: dict[str, Any]) -> str:
    """Valid replies per requested schema; a content hash decides verdicts so scores vary."""
    fmt = request.get("response_format") or {}
    name = (fmt.get("json_schema") or {}).get("name") or ""
    schema_text = json.dumps(fmt)
    h = hash(json.dumps(request.get("messages"), sort_keys=True)) % 7
    if "CriticVerdict" in name or "needs_revision" in schema_text:
        return json.dumps({"reasoning": "fits the user", "needs_revision": h < 3})
    if "PreferenceChoice" in name or "preferred" in schema_text:
        return json.dumps({"reasoning": "closer to my views", "preferred": "A" if h < 4 else "B"})
    if "CotAnswer" in name or ("reasoning" in schema_text and "answer" in schema_text):
        return json.dumps({"reasoning": "think", "answer": f"answer {h}"})
    if "SummaryAnswer" in name or "summary" in schema_text:
        return json.dumps({"summary": "relevant", "answer": f"answer {h}"})
    return f"a tailored answer ({h})"


def persona(i: int) -> Persona:
    values = {f: f"value {i % 3}" for f in PERSONA_FIELDS}
    values.update(
        sex="Female" if i % 2 else "Male", age=str(20 + i), religion="Catholic" if i % 3 else "None"
    )
    return Persona(
        id=f"p-{i:03d}",
        source=SourceKey(year=2024, state="39", serialno=f"S{i}", sporder=1),
        fields={f: FieldValue(value=v, provenance="census") for f, v in values.items()},
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--latency", type=float, default=0.02, help="stub latency per call (s)")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--scale", type=float, default=1.0, help="multiply item counts")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    s = lambda x: max(1, int(x * args.scale))  # noqa: E731
    personas = [persona(i) for i in range(20)]
    prompts = [
        BenchPrompt(id=f"q{i}", text=f"Should policy {i} change?", split="held_out") for i in range(40)
    ]
    pairs = [
        BenchPair(
            id=f"pair{i}",
            persona_id=personas[i % 20].id,
            prompt_id=f"q{i % 40}",
            question=f"Should policy {i % 40} change?",
            chosen=f"tailored {i}",
            rejected=f"generic {i}",
            split="held_out",
        )
        for i in range(200)
    ]
    tmp = Path(tempfile.mkdtemp(prefix="bench-tasks-"))
    labels = tmp / "labels.csv"
    with labels.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["persona_id", "pair_id", "annotator_id", "choice"])
        for p in pairs[: s(60)]:
            for a in ("h1", "h2", "h3"):
                w.writerow([p.persona_id, p.id, a, "chosen" if hash((p.id, a)) % 4 else "rejected"])
    runs = [
        ("main (persona)", "main", dict(n=s(200), modes=["persona"]), "items"),
        ("main (cot)", "main", dict(n=s(200), modes=["cot"]), "items"),
        ("passk (k=3)", "passk", dict(n=s(60), k=3), "samples"),
        ("loo (3 attributes)", "loo", dict(n=s(60), attributes=["age", "sex", "religion"]), "judgements"),
        (
            "intersections (2 groups)",
            "intersections",
            dict(n=s(100), groups=["sex=Female", "sex=Male"]),
            "items",
        ),
        (
            "fidelity (pairs, no matrix)",
            "fidelity",
            dict(pairs=pairs, n=s(100), matrix_personas=0),
            "judgements",
        ),
        ("agreement (1 judge)", "agreement", dict(pairs=pairs, labels=labels), "judgements"),
    ]
    rows = []
    with StubServer(latency_s=args.latency, responder=responder) as srv:
        os.environ["OPENAI_BASE_URL"] = srv.base_url
        os.environ["OPENAI_API_KEY"] = "stub-key"
        for label, task, kw, unit in runs:
            out = tmp / label.split()[0] / str(len(rows))
            t0 = time.perf_counter()
            res = run_task(
                task,
                candidate="openai/stub" if task != "agreement" else None,
                judge="openai/stub",
                personas=personas,
                prompts=prompts,
                seed=0,
                out_dir=out,
                concurrency=args.concurrency,
                **kw,
            )
            dt = time.perf_counter() - t0
            units = res["counts"]["rows"]
            calls = res["counts"]["llm_calls_total"]
            rows.append(
                {
                    "task": label,
                    "unit": unit,
                    "units": units,
                    "seconds": round(dt, 2),
                    "units_per_min": round(units / dt * 60),
                    "llm_calls": calls,
                    "calls_per_unit": round(calls / units, 3),
                    "failures": res["counts"]["failed"],
                }
            )
    if args.json:
        print(
            json.dumps({"latency_s": args.latency, "concurrency": args.concurrency, "runs": rows}, indent=2)
        )
        return
    print(f"stub latency {args.latency * 1000:.0f} ms, concurrency {args.concurrency} per model")
    print(
        f"{'task':30} {'unit':>10} {'n':>6} {'s':>7} {'per min':>9} {'calls':>7} {'calls/unit':>10} {'fail':>5}"
    )
    for r in rows:
        print(
            f"{r['task']:30} {r['unit']:>10} {r['units']:>6} {r['seconds']:>7} {r['units_per_min']:>9} "
            f"{r['llm_calls']:>7} {r['calls_per_unit']:>10} {r['failures']:>5}"
        )


if __name__ == "__main__":
    main()
