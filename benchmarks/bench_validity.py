"""Coverage, size and power of the bench's statistics on the scripted world (the tables in docs/bench.md).

Every row draws judged rows from a ``scripted:`` world's probability model for ``--seeds`` seeds
(``bench.validity``) and runs the same analysis code a bench run uses; rates are shares of seeds. The
Monte-Carlo standard error of a rate r over S seeds is sqrt(r (1 - r) / S) (0.5 points for 95% at 2000).

    python benchmarks/bench_validity.py [--seeds 2000] [--resamples 1000] [--json]
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from persona_testbed.bench.analysis import Stats
from persona_testbed.bench.validity import (
    Population,
    coverage_gap,
    coverage_loo,
    coverage_main,
    coverage_passk,
    simulate_intersections,
    world,
)

MAIN = "scripted:p=0.6,fail=0.15,judge_fail=0.05,c=0.5"
PASSK = "scripted:p=0.4,fail=0.1,judge_fail=0.05"
LOO = "scripted:p=0.6,fail=0.1,c=0.7,uses=age+sex"
GAP = "scripted:p=0.6,fail=0.1,c=0.3"


def naive_gap(seeds: int) -> float:
    """The interval before this change: top and bottom group picked on the data, resampled as if fixed."""
    w, hits = world(GAP), 0
    for s in range(seeds):
        rows = simulate_intersections(w, s, 200, [0.0] * 6, pop=Population(personas=30))
        sc = {g: rows.itt[rows.arm == g] for g in dict.fromkeys(rows.arm)}
        hi, lo = max(sc, key=lambda g: sc[g].mean()), min(sc, key=lambda g: sc[g].mean())
        g = Stats(seed=s, task="x").rng("gap")
        a, b = sc[hi], sc[lo]
        d = a[g.integers(0, len(a), (1000, len(a)))].mean(1) - b[g.integers(0, len(b), (1000, len(b)))].mean(
            1
        )
        hits += np.percentile(d, 2.5) > 0
    return hits / seeds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=2000)
    ap.add_argument("--resamples", type=int, default=1000)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    s, r = a.seeds, a.resamples
    rows: list[tuple[str, str, str, str, float]] = []
    cm = {cl: coverage_main(MAIN, s, 200, cluster=cl, n_resamples=r).rates for cl in ("persona", "none")}
    rows += [
        (
            f"main accuracy, answered, --cluster {cl}",
            f"{MAIN}, n=200, 50 personas",
            "CI covers p = 0.6",
            ">= 0.93",
            cm[cl]["answered covers p"],
        )
        for cl in cm
    ]
    rows += [
        (
            f"main accuracy, ITT, --cluster {cl}",
            f"{MAIN}, n=200, 50 personas",
            "CI covers 0.6 x 0.85 x 0.95",
            ">= 0.93",
            cm[cl]["ITT covers p(1-f)(1-jf)"],
        )
        for cl in cm
    ]
    pk = coverage_passk(PASSK, s, 100, 3, n_resamples=r).rates
    rows += [
        ("pass@3", f"{PASSK}, n=100, k=3", "CI covers 1 - (1 - q)^3", ">= 0.93", pk["covers pass@3"]),
        (
            "pass@3",
            f"{PASSK}, n=100, k=3",
            "mean estimate - closed form",
            "~ 0",
            pk["mean estimate - closed form"],
        ),
    ]
    lo = coverage_loo(LOO, s, 200, used="age", ignored="religion", n_resamples=r).rates
    rows += [
        (
            "loo, ignored attribute",
            f"{LOO}, n=200",
            "kappa - control: CI includes 0",
            ">= 0.93",
            lo["ignored: kappa diff CI includes 0"],
        ),
        (
            "loo, ignored attribute",
            f"{LOO}, n=200",
            "changed - control: CI includes 0",
            ">= 0.93",
            lo["ignored: changed diff CI includes 0"],
        ),
        (
            "loo, ignored attribute",
            f"{LOO}, n=200",
            "OLD raw kappa CI excludes 1 ('influential')",
            "-",
            lo["ignored: raw kappa CI excludes 1"],
        ),
        (
            "loo, used attribute",
            f"{LOO}, n=200",
            "kappa - control: CI below 0",
            ">= 0.80",
            lo["used: kappa diff CI below 0"],
        ),
        (
            "loo, used attribute",
            f"{LOO}, n=200",
            "matters (changed - control CI > 0)",
            ">= 0.80",
            lo["used: matters"],
        ),
    ]
    g0 = coverage_gap(GAP, [0.0] * 6, s, 200, n_resamples=r).rates
    g2 = coverage_gap(GAP, [0.0] * 5 + [0.2], s, 200, n_resamples=r).rates
    rows += [
        (
            "largest gap, 6 equal groups",
            f"{GAP}, 200/group",
            "permutation p < 0.05",
            "<= 0.07",
            g0["permutation p < alpha"],
        ),
        (
            "largest gap, 6 equal groups",
            f"{GAP}, 200/group",
            "simultaneous CI excludes 0",
            "<= 0.07",
            g0["CI lower bound > 0"],
        ),
        (
            "largest gap, 6 equal groups",
            f"{GAP}, 200/group",
            f"OLD CI excludes 0 ({min(s, 500)} seeds)",
            "-",
            naive_gap(min(s, 500)),
        ),
        (
            "largest gap, one group +0.2",
            f"{GAP}, 200/group",
            "permutation p < 0.05",
            ">= 0.80",
            g2["permutation p < alpha"],
        ),
        (
            "largest gap, one group +0.2",
            f"{GAP}, 200/group",
            "simultaneous CI excludes 0",
            ">= 0.80",
            g2["CI lower bound > 0"],
        ),
        (
            "largest gap, one group +0.2",
            f"{GAP}, 200/group",
            "CI covers the true gap 0.18",
            ">= 0.93",
            g2["CI covers true gap"],
        ),
    ]
    if a.json:
        print(
            json.dumps(
                [dict(zip(("figure", "scenario", "statement", "target", "rate"), x)) for x in rows], indent=2
            )
        )
        return
    print(f"{s} seeds, {r} resamples; MC standard error of a rate near 0.95: {np.sqrt(0.0475 / s):.3f}\n")
    print("| figure | statement | target | rate |\n|---|---|---|---|")
    for fig, _scen, stmt, tgt, val in rows:
        print(f"| {fig} | {stmt} | {tgt} | {val:.3f} |")
    print("\nscenarios:")
    for fig, scen in dict.fromkeys((x[0], x[1]) for x in rows):
        print(f"  {fig}: {scen}")


if __name__ == "__main__":
    main()
