"""Orchestration overhead of LLMClient vs a bare openai.AsyncOpenAI loop.

A loopback OpenAI-compatible stub with fixed latency (default 50 ms); N calls (default 2,000) at
concurrency C (default 64). Prints both throughputs and their ratio (goal: ours / bare >= 0.8).

    python benchmarks/bench_llm_overhead.py [--calls 2000] [--concurrency 64] [--latency-ms 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import tempfile
import time
from pathlib import Path

import openai

from persona_testbed.llm import CallStore, ChatParams, LLMClient
from persona_testbed.llm.stub_server import StubServer


async def bare(base_url: str, n: int, conc: int) -> float:
    client = openai.AsyncOpenAI(base_url=base_url, api_key="sk-bench", max_retries=0, timeout=60)
    sem = asyncio.Semaphore(conc)

    async def one(i: int) -> str:
        async with sem:
            r = await client.chat.completions.create(
                model="stub",
                messages=[{"role": "user", "content": f"question {i}"}],
                temperature=0.7,
                top_p=1.0,
                max_tokens=64,
            )
            return r.choices[0].message.content or ""

    t0 = time.perf_counter()
    out = await asyncio.gather(*[one(i) for i in range(n)])
    dt = time.perf_counter() - t0
    await client.close()
    assert len(out) == n and all(out)
    return dt


async def ours(base_url: str, n: int, conc: int, db: Path) -> float:
    store = CallStore(db)
    async with LLMClient(
        "openai/stub", base_url=base_url, api_key="sk-bench", store=store, concurrency=conc
    ) as client:
        params = ChatParams(temperature=0.7, top_p=1.0, max_tokens=64)
        t0 = time.perf_counter()
        rs = await asyncio.gather(
            *[
                client.chat([{"role": "user", "content": f"question {i}"}], params=params, purpose="bench")
                for i in range(n)
            ]
        )
        dt = time.perf_counter() - t0
    failed = [r.error for r in rs if not r.ok]
    if failed:
        raise SystemExit(f"{len(failed)} of {n} calls failed, e.g.: {sorted(set(failed))[:3]}")
    assert store.count("ok") == n
    store.close()
    return dt


def _serve(latency_s: float, port_q: "multiprocessing.Queue[int]") -> None:
    srv = StubServer(latency_s=latency_s)
    port_q.put(srv.port)
    srv.serve_forever()


def start_stub_process(latency_s: float) -> tuple[str, multiprocessing.Process]:
    """The stub in its own process, so its threads do not compete with the client for the GIL."""
    q: multiprocessing.Queue[int] = multiprocessing.Queue()
    proc = multiprocessing.Process(target=_serve, args=(latency_s, q), daemon=True)
    proc.start()
    return f"http://127.0.0.1:{q.get(timeout=30)}/v1", proc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--latency-ms", type=float, default=50.0)
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds; the best of each is reported")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    best_bare, best_ours = float("inf"), float("inf")
    base_url, proc = start_stub_process(a.latency_ms / 1000.0)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for r in range(a.rounds):
                best_bare = min(best_bare, asyncio.run(bare(base_url, a.calls, a.concurrency)))
                best_ours = min(
                    best_ours, asyncio.run(ours(base_url, a.calls, a.concurrency, Path(tmp) / f"calls{r}.db"))
                )
    finally:
        proc.terminate()
        proc.join(10)
    res = {
        "calls": a.calls,
        "concurrency": a.concurrency,
        "latency_ms": a.latency_ms,
        "bare_calls_per_s": round(a.calls / best_bare, 1),
        "ours_calls_per_s": round(a.calls / best_ours, 1),
        "ideal_calls_per_s": round(a.concurrency / (a.latency_ms / 1000.0), 1) if a.latency_ms else None,
        "ratio": round(best_bare / best_ours, 3),
        "goal": ">= 0.8",
    }
    print(json.dumps(res) if a.json else "\n".join(f"{k:>18}: {v}" for k, v in res.items()))


if __name__ == "__main__":
    main()
