"""Summary of a pair set: pairs per split, failures, length policy, and the persona-judge validation.

- ``chosen_preferred_rate``: share of completed judgements (two per pair) that picked the chosen answer
  (the paper reports 96%).
- ``both_orders_chosen_rate``: share of fully judged pairs where chosen won in both orders.
- ``position_bias_rate``: share of fully judged pairs where the judge picked the same letter in both
  orders (so the position, not the content, decided).
- ``flagged``: pairs where the judge preferred rejected in both orders (kept, marked ``flagged``).
- ``leakage``: of the ok pairs with a leakage check (``checked``; older files have none), how many chosen
  answers name a persona attribute (``leaky``, ``leaky_rate``, ``by_field``), and the same for the rejected
  answers as a control (``rejected_leaky``, ...; they never saw the persona, so this rate estimates the
  detector's false positives). ``in_context_findings``: mentions explained by the question / rejected answer.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from .leakage import LEAKAGE_VERSION
from .record import SPLITS, PreferencePair


def _rate(num: int, den: int) -> float | None:
    return num / den if den else None


def feedback_stats(pairs: Sequence[PreferencePair]) -> dict[str, Any]:
    splits = {s: {"ok": 0, "failed": 0} for s in SPLITS}
    for p in pairs:
        splits[p.split][p.status] += 1
    judged = [p.validation for p in pairs if p.status == "ok" and p.validation is not None]
    complete = [v for v in judged if v.complete]
    votes = [vote for v in judged for vote in v.chosen_votes]
    errors = Counter((p.error or "").split(":")[0] for p in pairs if p.status == "failed")
    return {
        "pairs": len(pairs),
        "ok": sum(p.status == "ok" for p in pairs),
        "failed": sum(p.status == "failed" for p in pairs),
        "personas": len({p.persona_id for p in pairs}),
        "splits": splits,
        "failures_by_step": dict(sorted(errors.items())),
        "length_action": dict(sorted(Counter(p.length_action for p in pairs if p.status == "ok").items())),
        "models": sorted({p.model for p in pairs}),
        "template_versions": sorted({p.template_version for p in pairs}),
        "validation": {
            "judged_pairs": len(judged),
            "complete_pairs": len(complete),
            "judgements": len(votes),
            "judge_errors": sum(1 for v in judged if v.error),
            "chosen_preferred_rate": _rate(sum(votes), len(votes)),
            "both_orders_chosen_rate": _rate(sum(v.chosen_both for v in complete), len(complete)),
            "position_bias_rate": _rate(sum(bool(v.position_bias) for v in complete), len(complete)),
            "flagged": sum(v.flagged for v in complete),
        },
        "leakage": leakage_stats(pairs),
        "tokens": {"prompt": sum(p.prompt_tokens for p in pairs),
                   "completion": sum(p.completion_tokens for p in pairs)},
    }


def leakage_stats(pairs: Sequence[PreferencePair]) -> dict[str, Any]:
    """Leakage rates of the ok pairs that were checked: chosen answers, and rejected answers as the control.

    ``by_field[f]`` counts pairs with at least one counted (not in-context) finding in field ``f``.
    """
    ok = [p for p in pairs if p.status == "ok"]
    checked = [p.leakage for p in ok if p.leakage is not None]
    out: dict[str, Any] = {"version": sorted({c.version for c in checked}) or [LEAKAGE_VERSION],
                           "checked": len(checked), "unchecked": len(ok) - len(checked)}
    for side in ("chosen", "rejected"):
        answers = [getattr(c, side) for c in checked]
        fields = Counter(f for a in answers for f in a.fields)
        prefix = "" if side == "chosen" else "rejected_"
        out[f"{prefix}leaky"] = sum(a.leaky for a in answers)
        out[f"{prefix}leaky_rate"] = _rate(out[f"{prefix}leaky"], len(answers))
        out[f"{prefix}by_field"] = {f: {"pairs": n, "rate": _rate(n, len(answers))} for f, n in sorted(fields.items())}
        out[f"{prefix}in_context_findings"] = sum(f.in_context for a in answers for f in a.findings)
    return out
