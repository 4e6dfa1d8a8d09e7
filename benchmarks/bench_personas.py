"""Persona figures: sampling speed (1,586 and 1,000,000), peak RSS, per-field TVD at n = 1,586 / 100,000.

Usage: python benchmarks/bench_personas.py [--data-dir /work/shared/data] [--source acs2024] [--big 1000000]

The 1,000,000 figure times draw + the vectorised paper-schema mapping (``build.map_frame``: imputation,
household, survey, Big Five, tags) and stops at the mapped DataFrame: building a million pydantic
``Persona`` objects is a separate, linear cost (measured per 1,000 at n = 1,586) that pipelines avoid by
streaming. Rules run on the 1,586 sample only.
"""

from __future__ import annotations

import argparse
import json
import resource
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", default="/work/shared/data")
    ap.add_argument("--source", default="acs2024")
    ap.add_argument("--big", type=int, default=1_000_000)
    ap.add_argument("--tvd-n", type=int, default=100_000)
    args = ap.parse_args()

    from persona_testbed.census.sampling import Filters, sample_persons
    from persona_testbed.personas.build import MappingContext, MapStats, frame_to_personas, map_frame
    from persona_testbed.personas.fidelity import frame_tvds
    from persona_testbed.personas.sample import _open, sample_personas

    figures: dict[str, object] = {}
    t = time.perf_counter()
    sample_personas(1586, 0, source=args.source, data_dir=args.data_dir)  # warms decode/donor caches
    figures["n1586_first_call_s"] = round(time.perf_counter() - t, 2)
    t = time.perf_counter()
    res = sample_personas(1586, 1, source=args.source, data_dir=args.data_dir)
    figures["n1586_cached_s"] = round(time.perf_counter() - t, 2)
    figures["n1586_rejections"] = {k: v for k, v in res.report["rules"]["rejections"].items() if v}

    src = _open(args.source, None, args.data_dir)
    ctx = MappingContext(src, 0, args.data_dir, args.source)
    cols = ctx.person_columns()
    for n, key in ((1586, "tvd_n1586"), (args.tvd_n, f"tvd_n{args.tvd_n}")):
        draws = sample_persons(src, n, 11, filters=Filters(adults_only=True), columns=cols)
        mapped = map_frame(draws, ctx, MapStats())
        tv = frame_tvds(mapped, src, 18)
        worst = max(tv, key=tv.get)
        figures[key] = {"max": tv[worst], "field": worst, "all": tv}

    t = time.perf_counter()
    draws = sample_persons(src, args.big, 5, filters=Filters(adults_only=True), columns=cols)
    t_draw = time.perf_counter() - t
    mapped = map_frame(draws, ctx, MapStats())
    figures[f"n{args.big}_draw_s"] = round(t_draw, 2)
    figures[f"n{args.big}_draw_and_map_s"] = round(time.perf_counter() - t, 2)
    t = time.perf_counter()
    frame_to_personas(mapped.head(10_000))
    figures["persona_objects_per_10k_s"] = round(time.perf_counter() - t, 2)
    figures["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
