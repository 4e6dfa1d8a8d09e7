"""Per-seed max per-field TVD at n = 1,586 (issue 3 goal <= 0.03) for the default sampling design vs the
previous one (systematic PPS along a nested sort, van der Corput points) and iid draws.

    .venv/bin/python benchmarks/bench_design_tvd.py [--data-dir /work/shared/data] [--seeds 11-30]
        [--n 1586] [--big 100000] [--big-seeds 3] [--confirm 3]

The fast figures compute the fidelity metric (``personas.fidelity.frame_tvds``: census-coded fields, age
and income in bands, OCCP/INDP by 3-letter group, states that have the variable, against the
PWGTP-weighted adults) straight from the drawn census columns: each CODED field's code is the census
code for records from states that have it, so no persona mapping is needed. ``--confirm k`` re-measures
the first k seeds of the default design with the real metric (``frame_tvds(map_frame(draws, ctx), src)``).
The draws are exactly ``sample_persons(src, n, seed, filters=Filters(adults_only=True))``.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import polars as pl


def seeds_arg(text: str) -> list[int]:
    lo, _, hi = text.partition("-")
    return list(range(int(lo), int(hi or lo) + 1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default="/work/shared/data")
    ap.add_argument("--source", default="acs2024")
    ap.add_argument("--seeds", type=seeds_arg, default=seeds_arg("11-30"))
    ap.add_argument("--n", type=int, default=1586)
    ap.add_argument("--big", type=int, default=100_000)
    ap.add_argument("--big-seeds", type=int, default=3)
    ap.add_argument("--confirm", type=int, default=0, help="seeds re-measured with the real mapped metric")
    args = ap.parse_args()

    from persona_testbed.census import sampling as S
    from persona_testbed.census.source import open_source
    from persona_testbed.personas.fidelity import CODED, _key_expr
    from persona_testbed.core.seeds import rng

    print(
        f"load average {os.getloadavg()[0]:.1f}; source {args.source}; n = {args.n:,}; seeds "
        f"{args.seeds[0]}-{args.seeds[-1]}"
    )
    src = open_source(args.source, data_dir=args.data_dir)
    have = set(src.available_columns())
    cols = ["PWGTP", "STATE"] + [v for v in CODED.values() if v in have]
    pop = src.persons(list(dict.fromkeys(cols))).collect()
    w_all = pop["PWGTP"].cast(pl.Float64).fill_null(0.0).to_numpy()
    eligible = (pop["AGEP"].to_numpy() >= 18) & (w_all > 0)
    fields = {}
    for name, var in CODED.items():
        if var not in pop.columns:
            continue
        lab = (
            {c: (src.dictionary.label(var, c) or "") for c in pop[var].drop_nulls().unique().to_list()}
            if var in ("OCCP", "INDP")
            else {}
        )
        key = pop.select(k=_key_expr(var, pl.col(var), lab))["k"]
        cats = key.unique().sort().to_list()
        code = key.cast(pl.Enum(cats)).to_physical().to_numpy().astype(np.int64)
        has = pop["STATE"].is_in([st for st in src.states if var in src.available_columns(st)]).to_numpy()
        m = eligible & has
        share = np.bincount(code[m], weights=w_all[m], minlength=len(cats))
        fields[name] = (code, has, len(cats), share / share.sum())

    def tvds(pos: np.ndarray) -> dict[str, float]:
        out = {}
        for name, (code, has, k, share) in fields.items():
            p = pos[has[pos]]
            out[name] = 0.5 * float(np.abs(np.bincount(code[p], minlength=k) / len(p) - share).sum())
        return out

    # the default design, exactly as sample_persons runs it (no quotas, no state filter)
    t = time.perf_counter()
    rank, _spos, order, dlev, depth = S.source_design_rank(src)
    print(f"design rank (cached after the first call): {time.perf_counter() - t:.2f} s")
    sel = order[eligible[order]]

    def new(n: int, seed: int) -> np.ndarray:
        return sel[S._draw_systematic(w_all[sel], rank[sel], dlev, depth, n, rng(seed, S.STAGE, "all"))]

    # the previous default: one systematic pass, points (U + vdc(i)) mod 1, along INDP/100, OCCP/100,
    # income band, SCHL (nested sort, nulls last), iid pick among ties
    old_keys = [
        ("INDP", 100),
        ("OCCP", 100),
        ("PINCP", (1, 10_000, 25_000, 50_000, 75_000, 100_000, 150_000)),
        ("SCHL", 1),
    ]
    saved = S.DESIGN_KEYS
    try:
        S.DESIGN_KEYS = tuple(old_keys)
        old_rank, _ = S.design_rank(pop.select(S.design_code_exprs([c for c, _ in old_keys if c in have])))
    finally:
        S.DESIGN_KEYS = saved
    old_sel = np.flatnonzero(eligible)
    old_sel = old_sel[np.argsort(old_rank[old_sel], kind="stable")]

    def old(n: int, seed: int) -> np.ndarray:
        g = rng(seed, S.STAGE, "all")
        w, r = w_all[old_sel], old_rank[old_sel]
        start, inner = g.random(), g.random(n)
        cum = np.cumsum(w)
        first = np.flatnonzero(np.r_[True, r[1:] != r[:-1]])
        last = np.r_[first[1:] - 1, len(w) - 1]
        hi = cum[last]
        lo = hi - (cum[last] - cum[first] + w[first])
        u = np.mod(start + S.van_der_corput(n), 1.0) * cum[-1]
        run = np.minimum(np.searchsorted(hi, u, side="right"), len(hi) - 1)
        at = np.searchsorted(cum, lo[run] + inner * (hi[run] - lo[run]), side="right")
        return old_sel[np.clip(at, first[run], last[run])]

    iid_sel = np.flatnonzero(eligible)
    iid_cum = np.cumsum(w_all[iid_sel])

    def independent(n: int, seed: int) -> np.ndarray:
        u = rng(seed, S.STAGE, "all").random(n) * iid_cum[-1]
        return iid_sel[np.minimum(np.searchsorted(iid_cum, u, side="right"), len(iid_sel) - 1)]

    designs = {"default (Sobol' walk)": new, "previous (nested sort)": old, "independent": independent}
    table = {name: [tvds(fn(args.n, s)) for s in args.seeds] for name, fn in designs.items()}
    print(f"\nmax per-field TVD at n = {args.n:,} by seed (field)")
    print("seed  " + "  ".join(f"{name:>32}" for name in designs))
    for i, s in enumerate(args.seeds):
        cells = []
        for name in designs:
            tv = table[name][i]
            worst = max(tv, key=tv.get)
            cells.append(f"{tv[worst]:.4f} ({worst[:22]})".rjust(32))
        print(f"{s:<5} " + "  ".join(cells))
    print()
    for name in designs:
        mx = np.array([max(tv.values()) for tv in table[name]])
        mean_f = {f: np.mean([tv[f] for tv in table[name]]) for f in fields}
        top = sorted(mean_f, key=mean_f.get, reverse=True)[:4]
        print(
            f"{name:<24} median {np.median(mx):.4f}  mean {mx.mean():.4f}  max {mx.max():.4f}  "
            f"> 0.03: {(mx > 0.03).sum()}/{len(mx)}   worst fields (mean TVD): "
            + ", ".join(f"{f} {mean_f[f]:.4f}" for f in top)
        )

    if args.big:
        for name, fn in designs.items():
            if name == "independent":
                continue
            mx = [max(tvds(fn(args.big, s)).values()) for s in args.seeds[: args.big_seeds]]
            print(
                f"n = {args.big:,} {name:<24} max per-field TVD by seed: "
                + ", ".join(f"{v:.4f}" for v in mx)
                + " (goal <= 0.005)"
            )

    if args.confirm:
        from persona_testbed.census.sampling import Filters, sample_persons
        from persona_testbed.personas.build import MappingContext, MapStats, map_frame
        from persona_testbed.personas.fidelity import frame_tvds

        ctx = MappingContext(src, 0, args.data_dir, args.source)
        for s in args.seeds[: args.confirm]:
            draws = sample_persons(
                src, args.n, s, filters=Filters(adults_only=True), columns=ctx.person_columns()
            )
            tv = frame_tvds(map_frame(draws, ctx, MapStats()), src, 18)
            worst = max(tv, key=tv.get)
            fast = max(table["default (Sobol' walk)"][args.seeds.index(s)].values())
            print(f"confirm seed {s}: real metric max {tv[worst]:.4f} ({worst}); fast {fast:.4f}")


if __name__ == "__main__":
    main()
