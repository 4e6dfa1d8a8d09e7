"""Ray vs local executor on the loopback stub: N calls (default 10,000) at the same concurrency.

The stub runs in its own process. ``local``: one ``LLMClient`` sends the N calls (asyncio, ``--concurrency``
in flight) and logs them. ``ray``: a local Ray instance (``--cpus``) is started (timed apart: the overhead of
starting Ray), then the same N requests run as one wave through ``RayExecutor.run_wave`` (``--workers`` Ray
tasks, each with ``--concurrency`` in flight) and are saved to a batch store, then replayed through the
client into the call log, as a stage does. Driver peak RSS is ``ru_maxrss`` of this process. Needs the
``ray`` extra.

    python benchmarks/bench_ray.py [--calls 10000] [--concurrency 64] [--workers 2] [--cpus 2]

Measured on 2 shared cores (the stub, the driver and the Ray workers share them), 10,000 calls at
concurrency 64, one Ray task per block of 64 saved as it arrives: local 18.3 s (546 calls/s, driver peak RSS
171 MB); Ray start 3.3 s; Ray 18.2 s from the deferring pass to the replayed call log (549 calls/s; the wave
itself 15.6 s on 2 workers), driver peak RSS 359 MB (Ray and Ray Data imported into the driver).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import resource
import tempfile
import time
from pathlib import Path

from persona_testbed.llm import CallStore, ChatParams, LLMClient
from persona_testbed.llm.deferred import BatchBackend, BatchStore, WaveRecorder
from persona_testbed.llm.stub_server import StubServer
from persona_testbed.pipeline.config import LLMConfig, RayConfig
from persona_testbed.pipeline.ray_executor import RayExecutor

PARAMS = ChatParams(temperature=0.7, top_p=1.0, max_tokens=64)


def _serve(port_q: multiprocessing.Queue) -> None:
    srv = StubServer(port=0)
    port_q.put(srv.port)
    srv.serve_forever()


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def _send(client: LLMClient, n: int) -> list:
    try:
        return await asyncio.gather(
            *[
                client.chat([{"role": "user", "content": f"question {i}"}], params=PARAMS, purpose="bench")
                for i in range(n)
            ]
        )
    finally:
        await client.backend.aclose()  # the HTTP client bound to this loop


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=10_000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--cpus", type=int, default=2)
    args = ap.parse_args()
    n = args.calls
    q: multiprocessing.Queue = multiprocessing.Queue()
    proc = multiprocessing.Process(target=_serve, args=(q,), daemon=True)
    proc.start()
    base_url = f"http://127.0.0.1:{q.get(timeout=30)}/v1"
    out: dict = {"calls": n, "concurrency": args.concurrency, "workers": args.workers, "cpus": args.cpus}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            store = CallStore(Path(tmp) / "local.db")
            client = LLMClient("openai/stub", base_url=base_url, store=store, concurrency=args.concurrency)
            t0 = time.perf_counter()
            rs = asyncio.run(_send(client, n))
            dt = time.perf_counter() - t0
            assert all(r.ok for r in rs)
            client.close()
            store.close()
            out["local"] = {
                "seconds": round(dt, 2),
                "calls_per_s": round(n / dt, 1),
                "driver_peak_rss_mb": round(_rss_mb(), 1),
            }

            import ray

            t0 = time.perf_counter()
            ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
            out["ray_start_s"] = round(time.perf_counter() - t0, 2)
            run = Path(tmp) / "run"
            batch = BatchStore(run)
            waves = WaveRecorder(batch)
            calls = CallStore(run / "calls.db")
            client = LLMClient(
                backend=BatchBackend("openai/stub", waves), store=calls, concurrency=args.concurrency
            )
            t0 = time.perf_counter()
            asyncio.run(_send(client, n))  # the pass that defers every request
            pending = dict(waves.pending)
            waves.reset()
            ex = RayExecutor(
                RayConfig(workers=args.workers, batch_size=max(1, n // (4 * args.workers))),
                LLMConfig(base_url=base_url, concurrency=args.concurrency),
            )
            t1 = time.perf_counter()
            done = ex.run_wave(batch, "bench", pending)
            t2 = time.perf_counter()
            rs = asyncio.run(_send(client, n))  # the pass that replays them into the call log
            t3 = time.perf_counter()
            assert done == n and all(r.ok for r in rs), (done, sum(r.ok for r in rs))
            client.close()
            calls.close()
            batch.close()
            ray.shutdown()
            out["ray"] = {
                "seconds": round(t3 - t0, 2),
                "wave_on_ray_s": round(t2 - t1, 2),
                "calls_per_s": round(n / (t3 - t0), 1),
                "driver_peak_rss_mb": round(_rss_mb(), 1),
            }
    finally:
        proc.terminate()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
