"""Counts of a prompt set: per filter (evaluated / pass / fail / error), per cluster, per split, and the
filter funnel per script (``filters.script_of``: Latin, Han, Arabic, …)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from .filters import script_of
from .record import FILTER_ORDER, Prompt


def prompt_stats(prompts: Sequence[Prompt]) -> dict[str, Any]:
    """A JSON-able summary: totals, ``filters`` rows, ``clusters`` rows, ``splits`` counts and ``scripts``.

    ``scripts``: one row per script (most prompts first): ``prompts`` loaded, ``passed`` = for each filter
    that ran, how many of them passed it (the funnel, in filter order), and ``kept``.
    """
    filters = []
    for name in FILTER_ORDER:
        c = Counter(p.verdicts[name].verdict for p in prompts if name in p.verdicts)
        filters.append(
            {
                "filter": name,
                "evaluated": sum(c.values()),
                "pass": c["pass"],
                "fail": c["fail"],
                "error": c["error"],
            }
        )
    kept = [p for p in prompts if p.kept]
    clusters: dict[int, dict[str, Any]] = {}
    for p in kept:
        row = clusters.setdefault(
            p.cluster if p.cluster is not None else -1,
            {"cluster": p.cluster, "label": p.cluster_label, "train": 0, "held_out": 0},
        )
        if p.split in ("train", "held_out"):
            row[p.split] += 1
    splits = Counter(p.split for p in kept if p.split)
    by_script: dict[str, list[Prompt]] = {}
    for p in prompts:
        by_script.setdefault(script_of(p.text), []).append(p)
    ran = [f["filter"] for f in filters if f["evaluated"]]
    scripts = [
        {
            "script": name,
            "prompts": len(ps),
            "passed": {f: sum(1 for p in ps if f in p.verdicts and p.verdicts[f].passed) for f in ran},
            "kept": sum(1 for p in ps if p.kept),
        }
        for name, ps in sorted(by_script.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    ]
    return {
        "prompts": len(prompts),
        "kept": len(kept),
        "splits": {"train": splits["train"], "held_out": splits["held_out"]},
        "filters": filters,
        "scripts": scripts,
        "clusters": [dict(r, total=r["train"] + r["held_out"]) for _, r in sorted(clusters.items())],
    }
