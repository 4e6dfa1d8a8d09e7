"""The report's view of the bench (``bench/summary.json``), built from each task's ``results.json``.

Written by the bench stage of ``persona-testbed run``; read by the report. Accuracies are the
intent-to-treat headline (``accuracy``, ``ci_low``, ``ci_high``) with the answered-only figure, the failure
rate and the leak rate beside them; LOO rows carry the comparison with the control arm; the largest gap
carries its simultaneous interval and permutation p-value.
"""

from __future__ import annotations

from typing import Any


def _e(d: dict[str, Any] | None) -> dict[str, Any]:
    d = d or {}
    return {"estimate": d.get("estimate"), "low": d.get("low"), "high": d.get("high"), "n": d.get("n")}


def _arm(d: dict[str, Any] | None) -> dict[str, Any]:
    d = d or {}
    acc = _e(d.get("accuracy"))
    cal = d.get("calibrated") or {}
    return {
        "accuracy": acc["estimate"],
        "ci_low": acc["low"],
        "ci_high": acc["high"],
        "n": d.get("items"),
        "answered_accuracy": (d.get("answered_accuracy") or {}).get("estimate"),
        "failure_rate": d.get("failure_rate"),
        "failed": d.get("candidate_failures", 0),
        "judge_failures": d.get("judge_failures", 0),
        "leak_rate": d.get("leak_rate"),
        "corrected": (cal.get("corrected") or {}).get("estimate") if cal else None,
    }


def bench_summary(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The report's view of the bench (``bench/summary.json``) from each task's ``results.json`` dict."""
    out: dict[str, Any] = {}
    for name, res in results.items():
        fig = res.get("figures") or {}
        if name == "main":
            out["main"] = {"modes": [{"mode": m, **_arm(a)} for m, a in (fig.get("modes") or {}).items()]}
        elif name == "passk":
            ks = sorted((fig.get("pass_at_k") or {}), key=int)
            pk, ans = fig.get("pass_at_k") or {}, fig.get("answered_pass_at_k") or {}
            out["passk"] = {
                "k": [int(k) for k in ks],
                "pass_at_k": [pk[k].get("estimate") for k in ks],
                "ci_low": [pk[k].get("low") for k in ks],
                "ci_high": [pk[k].get("high") for k in ks],
                "answered_pass_at_k": [(ans.get(k) or {}).get("estimate") for k in ks],
                "failure_rate": fig.get("failure_rate"),
            }
        elif name == "loo":
            attrs = []
            for a, v in (fig.get("attributes") or {}).items():
                k, d = _e(v.get("kappa")), _e(v.get("changed_share_difference"))
                attrs.append(
                    {
                        "attribute": a,
                        "kappa": k["estimate"],
                        "ci_low": k["low"],
                        "ci_high": k["high"],
                        "n": v.get("paired_items"),
                        "kappa_difference": (v.get("kappa_difference") or {}).get("estimate"),
                        "kd_low": (v.get("kappa_difference") or {}).get("low"),
                        "kd_high": (v.get("kappa_difference") or {}).get("high"),
                        "changed_share": (v.get("changed_share") or {}).get("estimate"),
                        "changed_difference": d["estimate"],
                        "diff_low": d["low"],
                        "diff_high": d["high"],
                        "matters": v.get("matters"),
                        "nearly_constant": v.get("nearly_constant"),
                    }
                )
            out["loo"] = {
                "full_accuracy": ((fig.get("full_accuracy") or {}).get("accuracy") or {}).get("estimate"),
                "control_kappa": (fig.get("control_kappa") or {}).get("estimate"),
                "control_changed_share": (fig.get("control_changed_share") or {}).get("estimate"),
                "attributes": attrs,
            }
        elif name == "intersections":
            gap = fig.get("largest_gap") or {}
            out["intersections"] = {
                "max_gap": gap.get("estimate"),
                "gap_low": gap.get("low"),
                "gap_high": gap.get("high"),
                "p_value": gap.get("p_value"),
                "highest": gap.get("highest"),
                "lowest": gap.get("lowest"),
                "groups": [{"group": g, **_arm(a)} for g, a in (fig.get("groups") or {}).items()],
            }
        elif name == "fidelity":
            matrix = fig.get("matrix") or {}
            acc = _e(fig.get("accuracy"))
            out["fidelity"] = {
                "accuracy": acc["estimate"],
                "ci_low": acc["low"],
                "ci_high": acc["high"],
                "answered_accuracy": (fig.get("answered_accuracy") or {}).get("estimate"),
                "kappa": (fig.get("kappa") or {}).get("estimate"),
                "position_bias": fig.get("position_bias"),
                "n": acc["n"],
                "failures": fig.get("failures"),
                "labels": matrix.get("personas"),
                "matrix": matrix.get("win_rate"),
                "mean_diagonal_rank": matrix.get("mean_diagonal_rank"),
            }
        else:
            out[name] = {k: v for k, v in fig.items() if k != "kind"}
        if res.get("warnings"):
            out.setdefault("warnings", []).extend(f"{name}: {w}" for w in res["warnings"])
    return out


__all__ = ["bench_summary"]
