"""Persona figures: sampling speed (1,586 and 1,000,000), peak RSS, per-field TVD at n = 1,586 / 100,000.

Usage: python benchmarks/bench_personas.py [--data-dir /work/shared/data] [--source acs2024] [--big 1000000]
       [--tvd-seeds 5] [--cli-n 1000000] [--part small|big|tvd|cli]

Each part runs in its own fresh Python process, so every peak RSS figure is that part's own (a
``--part`` runs just one, in this process):

* ``small``: ``sample_personas(1586)`` twice in one process (the first call loads the donor / survey /
  sort-order caches; the second is the warm figure).
* ``big``: ``PersonaSampler`` for ``--big`` personas: open the source and plan the draws, then fetch,
  map to the 33 fields (imputation, household, survey, Big Five, tags) and check the rules (breakers
  resampled), ``build.MAP_CHUNK_ROWS`` draws at a time (the next chunk mapped on a second thread); each
  checked chunk is dropped. Building pydantic ``Persona`` objects is a separate, linear cost (reported
  per 10,000) that ``personas sample`` avoids by streaming; writing the files is the ``cli`` part.
* ``tvd``: max per-field TVD against the weighted source at n = 1,586 and ``--tvd-n`` for seeds 11...
* ``cli``: ``persona-testbed personas sample --n`` ``--cli-n`` end to end in a child process: draw, map,
  rules, and both files written chunk by chunk (the JSON Lines file is about 6 KB per persona).

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
            draws = sample_persons(
                src, n, seed, filters=Filters(adults_only=True), columns=cols, design=args.design
            )
            tv = frame_tvds(map_frame(draws, ctx, MapStats()), src, 18)
            worst = max(tv, key=tv.get)
            runs.append({"seed": seed, "max": tv[worst], "field": worst, "all": tv})
        out[key] = (
            runs[0] if len(runs) == 1 else {"max_by_seed": [(r["seed"], r["max"], r["field"]) for r in runs]}
        )
    return out


def part_big(args: argparse.Namespace) -> dict[str, object]:
    from persona_testbed.personas.build import MAP_CHUNK_ROWS, MapStats, frame_to_personas, map_frame
    from persona_testbed.personas.sample import PersonaSampler

    out: dict[str, object] = {"chunk_rows": MAP_CHUNK_ROWS}
    t, c = time.perf_counter(), time.process_time()
    sampler = PersonaSampler(args.big, 5, source=args.source, data_dir=args.data_dir, design=args.design)
    t_draw, c_draw = time.perf_counter() - t, time.process_time() - c
    rows = 0
    for chunk in sampler.frames():  # each checked chunk is dropped: the figure is generation, not I/O
        rows += chunk.height
        del chunk
    assert rows == args.big
    out[f"n{args.big}_draw_s"] = round(t_draw, 2)
    out[f"n{args.big}_draw_cpu_s"] = round(c_draw, 2)
    out[f"n{args.big}_draw_map_rules_s"] = round(time.perf_counter() - t, 2)
    out[f"n{args.big}_draw_map_rules_cpu_s"] = round(time.process_time() - c, 2)
    out[f"n{args.big}_rule_rejections"] = sum(sampler.report()["rules"]["rejections"].values())
    out[f"n{args.big}_peak_rss_mb"] = _peak_rss_mb()
    head = map_frame(sampler.plan.fetch(0, 10_000), sampler.ctx, MapStats())
    t = time.perf_counter()
    frame_to_personas(head)
    out["persona_objects_per_10k_s"] = round(time.perf_counter() - t, 2)
    return out


def part_cli(args: argparse.Namespace) -> dict[str, object]:
    """``persona-testbed personas sample --n N`` end to end (draw, map, rules, JSONL + Parquet written)."""
    import resource

    with tempfile.TemporaryDirectory(prefix="bench-personas-cli-") as tmp:
        exe = Path(sys.executable).parent / "persona-testbed"
        cmd = [
            str(exe),
            "personas",
            "sample",
            "--n",
            str(args.cli_n),
            "--seed",
            "5",
            "--out",
            tmp,
            "--data-dir",
            args.data_dir,
            "--source",
            args.source,
            "--design",
            args.design,
            "--json",
        ]
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, text=True)
        wall = time.perf_counter() - t
        sizes = {f.name: round(f.stat().st_size / 2**20) for f in Path(tmp).iterdir() if f.suffix != ".json"}
    return {
        f"cli_n{args.cli_n}_s": round(wall, 2),
        f"cli_n{args.cli_n}_peak_rss_mb": round(
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1
        ),
        f"cli_n{args.cli_n}_files_mb": sizes,
    }


PARTS = {"small": part_small, "big": part_big, "tvd": part_tvd, "cli": part_cli}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", default="/work/shared/data")
    ap.add_argument("--source", default="acs2024")
    ap.add_argument("--big", type=int, default=1_000_000)
    ap.add_argument("--tvd-n", type=int, default=100_000)
    ap.add_argument("--cli-n", type=int, default=1_000_000, help="personas written by the `cli` part")
    ap.add_argument("--design", default="systematic", choices=["systematic", "independent"])
    ap.add_argument("--tvd-seeds", type=int, default=1, help="seeds 11.. for the TVD figures (max reported)")
    ap.add_argument("--part", choices=sorted(PARTS), help="run one part in this process (JSON on stdout)")
    args = ap.parse_args()
    if args.part:
        print(json.dumps(PARTS[args.part](args)))
        return
    figures: dict[str, object] = {"design": args.design, "load_average_start": round(os.getloadavg()[0], 1)}
    for name in ("small", "big", "tvd", "cli"):
        cmd = [sys.executable, __file__, "--part", name] + [a for a in sys.argv[1:]]
        res = subprocess.run(cmd, check=True, capture_output=True, text=True)
        figures.update(json.loads(res.stdout.strip().splitlines()[-1]))
    figures["load_average_end"] = round(os.getloadavg()[0], 1)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
