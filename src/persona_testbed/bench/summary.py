"""The report's view of the bench (``bench/summary.json``), built from each task's ``results.json``.

Written by the bench stage of ``persona-testbed run``; read by the report.
"""

from __future__ import annotations

from typing import Any


def _ci(d: dict[str, Any] | None) -> dict[str, Any]:
    d = d or {}
    return {"accuracy": d.get("estimate"), "ci_low": d.get("low"), "ci_high": d.get("high"), "n": d.get("n"),
            "failed": d.get("failures", 0)}


def bench_summary(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The report's view of the bench (``bench/summary.json``) from each task's ``results.json``."""
    out: dict[str, Any] = {}
    for name, res in results.items():
        fig = res.get("figures") or {}
        if name == "main":
            out["main"] = {"modes": [{"mode": m, **_ci(ci)} for m, ci in (fig.get("accuracy") or {}).items()]}
        elif name == "passk":
            ks = sorted((fig.get("pass_at_k") or {}), key=int)
            out["passk"] = {"k": [int(k) for k in ks], "pass_at_k": [fig["pass_at_k"][k].get("estimate") for k in ks],
                            "ci_low": [fig["pass_at_k"][k].get("low") for k in ks],
                            "ci_high": [fig["pass_at_k"][k].get("high") for k in ks]}
        elif name == "loo":
            out["loo"] = {"full_accuracy": (fig.get("full_accuracy") or {}).get("estimate"), "attributes": [
                {"attribute": a, "kappa": v["kappa"].get("estimate"), "ci_low": v["kappa"].get("low"),
                 "ci_high": v["kappa"].get("high"), "n": v.get("paired_items")}
                for a, v in (fig.get("attributes") or {}).items()]}
        elif name == "intersections":
            out["intersections"] = {"max_gap": (fig.get("largest_gap") or {}).get("estimate"), "groups": [
                {"group": g, **_ci(ci)} for g, ci in (fig.get("groups") or {}).items()]}
        elif name == "fidelity":
            matrix = fig.get("matrix") or {}
            out["fidelity"] = {"accuracy": (fig.get("accuracy") or {}).get("estimate"),
                               "kappa": (fig.get("kappa") or {}).get("estimate"),
                               "position_bias": fig.get("position_bias"),
                               "n": (fig.get("accuracy") or {}).get("n"),
                               "labels": matrix.get("personas"), "matrix": matrix.get("win_rate"),
                               "mean_diagonal_rank": matrix.get("mean_diagonal_rank")}
        else:
            out[name] = fig
    return out
