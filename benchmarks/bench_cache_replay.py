"""Cache replay: N calls (default 10,000) already in the call log, replayed through LLMClient.

Fills a fresh store through the mock backend, then replays every call with a new client on the same
database and checks each result is ``cached``. Goal: replay <= 5 s.

    python benchmarks/bench_cache_replay.py [--calls 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

from persona_testbed.llm import CallStore, ChatParams, LLMClient, MockBackend


def _messages(i: int) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": "You are persona P-%05d, a 43-year-old teacher from Ohio." % (i % 500)},
        {"role": "user", "content": f"Prompt {i}: what do you think about question number {i}?"},
    ]


async def run(db: Path, n: int, backend: MockBackend) -> tuple[float, int]:
    store = CallStore(db)
    params = ChatParams(temperature=0.7, max_tokens=200, seed=1)
    async with LLMClient(backend=backend, store=store, concurrency=64) as client:
        t0 = time.perf_counter()
        rs = await asyncio.gather(
            *[client.chat(_messages(i), params=params, purpose="bench") for i in range(n)]
        )
        dt = time.perf_counter() - t0
    assert all(r.ok for r in rs)
    store.close()
    return dt, sum(r.cached for r in rs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=10_000)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "calls.db"
        fill_s, cached0 = asyncio.run(run(db, a.calls, MockBackend(lambda m: "reply to " + m[-1]["content"])))
        replay_backend = MockBackend([])  # any backend call would fail: everything must come from the cache
        replay_s, cached = asyncio.run(run(db, a.calls, replay_backend))
    assert cached0 == 0 and cached == a.calls and replay_backend.calls == []
    res = {
        "calls": a.calls,
        "fill_s": round(fill_s, 2),
        "replay_s": round(replay_s, 2),
        "replay_calls_per_s": round(a.calls / replay_s, 1),
        "goal": "replay <= 5 s",
    }
    print(json.dumps(res) if a.json else "\n".join(f"{k:>18}: {v}" for k, v in res.items()))


if __name__ == "__main__":
    main()
