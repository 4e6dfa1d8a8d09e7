"""Persona figures: sampling speed (1,586 and 1,000,000), peak RSS, per-field TVD at n = 1,586 / 100,000.

Usage: python benchmarks/bench_personas.py [--data-dir /work/shared/data] [--source acs2024] [--big 1000000]
       [--tvd-seeds 5] [--in-memory] [--part small|big|tvd]

Each part runs in its own fresh Python process, so every peak RSS figure is that part's own (a
``--part`` runs just one, in this process):

* ``small``: ``sample_personas(1586)`` twice in one process (the first call loads the donor / survey /
  sort-order caches; the second is the warm figure).
* ``big``: draw ``--big`` records and map them to the 33 fields (``build.iter_map_chunks``: imputation,
  household, survey, Big Five, tags), 100,000 draws at a time, each chunk written to lz4 Parquet on a
  writer thread and dropped (at most two chunks held; ``--in-memory`` keeps the whole mapped frame
  instead). It stops at the mapped frames: building a million pydantic ``Persona`` objects is a separate,
  linear cost (reported per 10,000) that pipelines avoid by streaming. Rules run in ``small`` only.
* ``tvd``: max per-field TVD against the weighted source at n = 1,586 and ``--tvd-n`` for seeds 11...

Cold-start CLI figures are in ``bench_personas_start.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def _peak_rss_mb() -> float:
    """This process's peak resident set size (VmHWM), in MB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _context(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from persona_testbed.personas.build import MappingContext
    from persona_testbed.personas.sample import _open

    src = _open(args.source, None, args.data_dir)
    ctx = MappingContext(src, 0, args.data_dir, args.source)
    return src, ctx, ctx.person_columns()


def part_small(args: argparse.Namespace) -> dict[str, object]:
    from persona_testbed.personas.sample import sample_personas

    out: dict[str, object] = {}
    t, c = time.perf_counter(), time.process_time()
    sample_personas(1586, 0, source=args.source, data_dir=args.data_dir, design=args.design)  # warms caches
    out["n1586_first_call_s"] = round(time.perf_counter() - t, 2)
    out["n1586_first_call_cpu_s"] = round(time.process_time() - c, 2)
    t, c = time.perf_counter(), time.process_time()
    res = sample_personas(1586, 1, source=args.source, data_dir=args.data_dir, design=args.design)
    out["n1586_cached_s"] = round(time.perf_counter() - t, 2)
    out["n1586_cached_cpu_s"] = round(time.process_time() - c, 2)
    out["n1586_rejections"] = {k: v for k, v in res.report["rules"]["rejections"].items() if v}
    out["n1586_peak_rss_mb"] = _peak_rss_mb()
    return out


def part_tvd(args: argparse.Namespace) -> dict[str, object]:
    from persona_testbed.census.sampling import Filters, sample_persons
    from persona_testbed.personas.build import MapStats, map_frame
    from persona_testbed.personas.fidelity import frame_tvds

    src, ctx, cols = _context(args)
    out: dict[str, object] = {}
    for n, key in ((1586, "tvd_n1586"), (args.tvd_n, f"tvd_n{args.tvd_n}")):
        runs = []
        for seed in range(11, 11 + args.tvd_seeds):
            draws = sample_persons(src, n, seed, filters=Filters(adults_only=True), columns=cols, design=args.design)
            tv = frame_tvds(map_frame(draws, ctx, MapStats()), src, 18)
            worst = max(tv, key=tv.get)
            runs.append({"seed": seed, "max": tv[worst], "field": worst, "all": tv})
        out[key] = runs[0] if len(runs) == 1 else {"max_by_seed": [(r["seed"], r["max"], r["field"]) for r in runs]}
    return out


def part_big(args: argparse.Namespace) -> dict[str, object]:
    from persona_testbed.census.sampling import Filters, sample_persons
    from persona_testbed.personas.build import MapStats, frame_to_personas, iter_map_chunks, map_frame

    out: dict[str, object] = {}
    t, c = time.perf_counter(), time.process_time()
    src, ctx, cols = _context(args)
    draws = sample_persons(src, args.big, 5, filters=Filters(adults_only=True), columns=cols, design=args.design)
    t_draw, c_draw = time.perf_counter() - t, time.process_time() - c
    out["mapping"] = "in memory" if args.in_memory else "streamed to Parquet per 100,000-row chunk"
    with tempfile.TemporaryDirectory(prefix="bench-personas-") as tmp:
        if args.in_memory:
            mapped = map_frame(draws, ctx, MapStats())
            del mapped
        else:
            rows, pending = 0, None
            with ThreadPoolExecutor(max_workers=1) as writer:  # writes chunk i while chunk i+1 is mapped
                for i, chunk in enumerate(iter_map_chunks(draws, ctx, MapStats())):
                    if pending is not None:
                        pending.result()  # at most one chunk waits to be written
                    pending = writer.submit(chunk.write_parquet, Path(tmp) / f"part-{i:05d}.parquet",
                                            compression="lz4")
                    rows += chunk.height
                    del chunk
                if pending is not None:
                    pending.result()
            assert rows == draws.height
        out[f"n{args.big}_draw_s"] = round(t_draw, 2)
        out[f"n{args.big}_draw_cpu_s"] = round(c_draw, 2)
        out[f"n{args.big}_draw_and_map_s"] = round(time.perf_counter() - t, 2)
        out[f"n{args.big}_draw_and_map_cpu_s"] = round(time.process_time() - c, 2)
        if not args.in_memory:
            out[f"n{args.big}_parquet_mb"] = round(sum(f.stat().st_size for f in Path(tmp).iterdir()) / 2**20)
    out[f"n{args.big}_peak_rss_mb"] = _peak_rss_mb()
    head = map_frame(draws.head(10_000), ctx, MapStats())
    t = time.perf_counter()
    frame_to_personas(head)
    out["persona_objects_per_10k_s"] = round(time.perf_counter() - t, 2)
    return out


PARTS = {"small": part_small, "big": part_big, "tvd": part_tvd}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", default="/work/shared/data")
    ap.add_argument("--source", default="acs2024")
    ap.add_argument("--big", type=int, default=1_000_000)
    ap.add_argument("--tvd-n", type=int, default=100_000)
    ap.add_argument("--design", default="systematic", choices=["systematic", "independent"])
    ap.add_argument("--tvd-seeds", type=int, default=1, help="seeds 11.. for the TVD figures (max reported)")
    ap.add_argument("--in-memory", action="store_true", help="keep the whole mapped frame instead of streaming")
    ap.add_argument("--part", choices=sorted(PARTS), help="run one part in this process (JSON on stdout)")
    args = ap.parse_args()
    if args.part:
        print(json.dumps(PARTS[args.part](args)))
        return
    figures: dict[str, object] = {"design": args.design, "load_average_start": round(os.getloadavg()[0], 1)}
    for name in ("small", "big", "tvd"):
        cmd = [sys.executable, __file__, "--part", name] + [a for a in sys.argv[1:]]
        res = subprocess.run(cmd, check=True, capture_output=True, text=True)
        figures.update(json.loads(res.stdout.strip().splitlines()[-1]))
    figures["load_average_end"] = round(os.getloadavg()[0], 1)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
