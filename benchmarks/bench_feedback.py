"""Benchmark: DPF pair generation speed — pairs per minute and LLM calls per pair.

Two back-ends:
- ``stub``: the loopback OpenAI-compatible stub server (fixed latency per call, scripted replies), so the
  figure measures the orchestration (cache, call log, checkpoint, concurrency), not a model;
- ``embedded``: the in-process SmolLM2-135M model with tiny token limits (mechanics only).

Usage: ``python benchmarks/bench_feedback.py [--stub-personas 40] [--latency 0.05] [--concurrency 16]
[--embedded-personas 2] [--skip-embedded]``. Prints one line per backend and a JSON summary.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from persona_testbed.feedback import FeedbackConfig, PairCounts
from persona_testbed.pipeline.stages.feedback import generate_pairs
from persona_testbed.personas.record import PERSONA_FIELDS, FieldValue, Persona, SourceKey
from persona_testbed.prompts.build import PromptBuildConfig, assign_clusters_and_split, make_prompts
from persona_testbed.prompts.record import FilterVerdict

TOPICS = [
    "taxes",
    "religion in schools",
    "gun control",
    "immigration",
    "abortion",
    "free speech",
    "climate policy",
    "the death penalty",
    "drug legalisation",
    "military spending",
    "welfare",
    "zoos",
    "meat eating",
    "homeschooling",
    "nuclear power",
    "social media",
    "monarchy",
    "lotteries",
    "tipping",
    "curfews",
]


def personas(n: int) -> list[Persona]:
    out = []
    for i in range(n):
        fields = {f: FieldValue(value=f"{f} value {i % 7}", provenance="procedural") for f in PERSONA_FIELDS}
        fields["age"] = FieldValue(value=str(20 + i % 60), provenance="census")
        out.append(
            Persona(
                id=f"p-bench{i:04d}",
                source=SourceKey(year=2024, state="10", serialno=f"B{i}", sporder=1),
                fields=fields,
            )
        )
    return out


def prompts(n_train: int, n_held: int):
    items = [
        (i, f"What should be done about {TOPICS[i % len(TOPICS)]}, case {i}?")
        for i in range(n_train + n_held)
    ]
    ps = make_prompts(items, "bench")
    for p in ps:
        p.verdicts["question_mark"] = FilterVerdict(verdict="pass")
    assign_clusters_and_split(ps, PromptBuildConfig(clusters=1, held_out_fraction=0.0))
    for p in ps[n_train:]:
        p.split = "held_out"
    return ps


def scripted(messages) -> str:
    system, user = messages[0]["content"], messages[-1]["content"]
    if "Which answer do you prefer" in user:
        return '{"choice": "A"}'
    if system.startswith("You are a helpful assistant"):
        return "A general answer that weighs both sides of the question and suggests a balanced view."
    if "role-playing" in system:
        return "The answer 'weighs both sides' is too vague for me; say what matters to someone like me."
    return "A balanced view that fits you."


def _serve(port: int, latency: float) -> None:
    from persona_testbed.llm.stub_server import StubServer

    StubServer(port=port, latency_s=latency, responder=lambda req: scripted(req["messages"])).serve_forever()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure(label: str, ps, qs, counts: PairCounts, model: str, config: FeedbackConfig) -> dict:
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "fb"
        t0 = time.perf_counter()
        res = generate_pairs(ps, qs, out_dir=out, model=model, config=config)
        secs = time.perf_counter() - t0
        with sqlite3.connect(out / "calls.db") as db:
            calls = db.execute("SELECT COUNT(*) FROM calls").fetchone()[0]
        t1 = time.perf_counter()
        generate_pairs(ps, qs, out_dir=out, model=model, config=config)  # resume of a finished run
        replay = time.perf_counter() - t1
    n = len(res.pairs)
    row = {
        "backend": label,
        "pairs": n,
        "ok": res.stats["ok"],
        "seconds": round(secs, 2),
        "pairs_per_min": round(60 * n / secs, 1),
        "llm_calls": calls,
        "calls_per_pair": round(calls / n, 2),
        "rerun_finished_s": round(replay, 2),
        "concurrency": config.concurrency,
    }
    print(
        f"{label:9s} {n:5d} pairs in {secs:7.2f}s = {row['pairs_per_min']:8.1f} pairs/min, "
        f"{row['calls_per_pair']:.2f} LLM calls/pair (re-run of finished run: {replay:.2f}s)",
        flush=True,
    )
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stub-personas", type=int, default=40)
    ap.add_argument("--latency", type=float, default=0.05)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--embedded-personas", type=int, default=2)
    ap.add_argument("--skip-embedded", action="store_true")
    args = ap.parse_args()
    import multiprocessing
    import urllib.request

    rows = []
    counts = PairCounts(train=6, test=2, held_out=2)
    port = _free_port()  # the stub runs in its own process so it does not share our GIL
    server = multiprocessing.get_context("spawn").Process(
        target=_serve, args=(port, args.latency), daemon=True
    )
    server.start()
    try:
        base = f"http://127.0.0.1:{port}/v1"
        for _ in range(200):
            try:
                urllib.request.urlopen(base + "/models", timeout=1).read()
                break
            except OSError:
                time.sleep(0.05)
        os.environ["OPENAI_BASE_URL"], os.environ["OPENAI_API_KEY"] = base, "sk-bench"
        rows.append(
            measure(
                f"stub({int(args.latency * 1000)}ms)",
                personas(args.stub_personas),
                prompts(40, 10),
                counts,
                "openai/stub",
                FeedbackConfig(counts=counts, concurrency=args.concurrency),
            )
        )
    finally:
        server.terminate()
        server.join(5)
    if not args.skip_embedded:
        ecounts = PairCounts(train=2, test=0, held_out=1)
        rows.append(
            measure(
                "embedded",
                personas(args.embedded_personas),
                prompts(4, 2),
                ecounts,
                "embedded",
                FeedbackConfig(
                    counts=ecounts,
                    concurrency=1,
                    max_tokens=48,
                    critique_max_tokens=48,
                    judge_max_tokens=12,
                    max_revision_attempts=2,
                ),
            )
        )
    print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    sys.exit(main())
