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
- ``predictors``: label accuracy of two content-blind predictors over the ok pairs. ``length_only``: "pick
  the shorter answer" (ties count 0.5), in characters (``accuracy``) and in words (``accuracy_words``):
  far from 0.5 means length gives the label away. ``position_only``: "pick the answer shown first" over the
  judge's presentations (0.5 when every pair is shown in both orders). ``judge_picks_shorter_rate`` /
  ``judge_picks_first_rate``: how often the persona-judge's picks agree with those predictors.
- ``length``: chosen / rejected word ratio (mean, median, 10th and 90th percentile) and, for pairs that
  record their target (``length_target``), how many chosen answers are inside it.
- ``truncation``: per step, calls cut off at max_tokens (``finish_reason`` "length"), pairs whose step was
  re-asked with a larger budget, and pairs still cut off (flag ``truncated:<step>``); ``unknown_calls``:
  calls without a finish reason (older files, failed calls).
- ``flags``: ok pairs per flag (``length_out_of_band``, ``truncated:<step>``, ``judge_prefers_rejected``) and
  ``flagged_pairs``, the pairs ``feedback export --drop-flagged`` leaves out.
- ``format``: per format check (``artefacts.py``), chosen and rejected answers that trip it (count, rate)
  and pairs where only one side does (``chosen_only``, ``rejected_only``, ``differ_rate``).
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from typing import Any

from ..llm.types import TRUNCATED_FINISH_REASONS
from .artefacts import CHECKS, format_features
from .leakage import LEAKAGE_VERSION
from .length import band_distance, count_words
from .record import SPLITS, TRUNCATED_STEPS, PreferencePair, truncated_flag


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
        "predictors": predictor_stats(pairs),
        "length": length_stats(pairs),
        "truncation": truncation_stats(pairs),
        "flags": flag_stats(pairs),
        "format": format_stats(pairs),
        "tokens": {
            "prompt": sum(p.prompt_tokens for p in pairs),
            "completion": sum(p.completion_tokens for p in pairs),
        },
    }


def leakage_stats(pairs: Sequence[PreferencePair]) -> dict[str, Any]:
    """Leakage rates of the ok pairs that were checked: chosen answers, and rejected answers as the control.

    ``by_field[f]`` counts pairs with at least one counted (not in-context) finding in field ``f``.
    """
    ok = [p for p in pairs if p.status == "ok"]
    checked = [p.leakage for p in ok if p.leakage is not None]
    out: dict[str, Any] = {
        "version": sorted({c.version for c in checked}) or [LEAKAGE_VERSION],
        "checked": len(checked),
        "unchecked": len(ok) - len(checked),
    }
    for side in ("chosen", "rejected"):
        answers = [getattr(c, side) for c in checked]
        fields = Counter(f for a in answers for f in a.fields)
        prefix = "" if side == "chosen" else "rejected_"
        out[f"{prefix}leaky"] = sum(a.leaky for a in answers)
        out[f"{prefix}leaky_rate"] = _rate(out[f"{prefix}leaky"], len(answers))
        out[f"{prefix}by_field"] = {
            f: {"pairs": n, "rate": _rate(n, len(answers))} for f, n in sorted(fields.items())
        }
        out[f"{prefix}in_context_findings"] = sum(f.in_context for a in answers for f in a.findings)
    return out


def _ok(pairs: Sequence[PreferencePair]) -> list[PreferencePair]:
    return [p for p in pairs if p.status == "ok" and p.chosen and p.rejected]


def _shorter_is_chosen(chosen: int, rejected: int) -> float:
    return 1.0 if chosen < rejected else 0.5 if chosen == rejected else 0.0


def predictor_stats(pairs: Sequence[PreferencePair]) -> dict[str, Any]:
    """Accuracy of "pick the shorter" and "pick the first shown", and how often the judge agrees with them."""
    ok = _ok(pairs)
    chars = [_shorter_is_chosen(len(p.chosen), len(p.rejected)) for p in ok]
    words = [_shorter_is_chosen(count_words(p.chosen), count_words(p.rejected)) for p in ok]
    shown = chosen_first = judged = picks_first = picks_shorter = decided = 0
    for p in ok:
        v = p.validation
        if v is None:
            continue
        shorter = (
            None
            if len(p.chosen) == len(p.rejected)
            else ("chosen" if len(p.chosen) < len(p.rejected) else "rejected")
        )
        for first, choice in (("chosen", v.choice_ab), ("rejected", v.choice_ba)):
            shown += 1
            chosen_first += first == "chosen"
            if choice is None:
                continue
            judged += 1
            picks_first += choice == "A"
            picked = first if choice == "A" else ("rejected" if first == "chosen" else "chosen")
            if shorter is not None:
                decided += 1
                picks_shorter += picked == shorter
    return {
        "pairs": len(ok),
        "length_only": {
            "accuracy": _mean(chars),
            "accuracy_words": _mean(words),
            "chosen_shorter": sum(x == 1.0 for x in chars),
            "ties": sum(x == 0.5 for x in chars),
            "chosen_longer": sum(x == 0.0 for x in chars),
        },
        "position_only": {"presentations": shown, "accuracy": _rate(chosen_first, shown)},
        "judge_picks_first_rate": _rate(picks_first, judged),
        "judge_picks_shorter_rate": _rate(picks_shorter, decided),
    }


def _mean(xs: Sequence[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def _quantile(xs: Sequence[float], q: float) -> float | None:
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(q * (len(xs) - 1))))]


def length_stats(pairs: Sequence[PreferencePair]) -> dict[str, Any]:
    """Chosen / rejected word ratios, and chosen answers inside their recorded word range."""
    ok = _ok(pairs)
    ratios = [count_words(p.chosen) / max(1, count_words(p.rejected)) for p in ok]
    targeted = [p for p in ok if p.length_target is not None]
    in_band = sum(
        band_distance(count_words(p.chosen), tuple(p.length_target)) == 0  # type: ignore[arg-type]
        for p in targeted
    )
    return {
        "pairs": len(ok),
        "ratio_words": {
            "mean": _mean(ratios),
            "median": statistics.median(ratios) if ratios else None,
            "p10": _quantile(ratios, 0.1),
            "p90": _quantile(ratios, 0.9),
        },
        "with_target": len(targeted),
        "in_band": in_band,
        "out_of_band": len(targeted) - in_band,
        "in_band_rate": _rate(in_band, len(targeted)),
    }


def truncation_stats(pairs: Sequence[PreferencePair]) -> dict[str, Any]:
    """Per step: calls cut off at max_tokens, pairs re-asked for it, pairs still cut off (flagged)."""
    by_step: dict[str, dict[str, int]] = {}
    steps = list(TRUNCATED_STEPS) + sorted(
        {s for p in pairs for s in p.finish_reasons} - set(TRUNCATED_STEPS)
    )
    for step in steps:
        cut = [sum(r in TRUNCATED_FINISH_REASONS for r in p.finish_reasons.get(step, [])) for p in pairs]
        row = {"truncated_calls": sum(cut), "pairs_reasked": sum(c > 0 for c in cut)}
        if step in TRUNCATED_STEPS:
            row["flagged"] = sum(truncated_flag(step) in p.flags for p in pairs if p.status == "ok")
        else:  # judge calls: structured and short, never re-asked for length
            row.pop("pairs_reasked")
        by_step[step] = row
    unknown = sum(r is None for p in pairs for rs in p.finish_reasons.values() for r in rs)
    calls = sum(len(rs) for p in pairs for rs in p.finish_reasons.values())
    return {
        "by_step": by_step,
        "calls": calls,
        "unknown_calls": unknown,
        "pairs_without_finish_reasons": sum(not p.finish_reasons for p in pairs),
    }


def flag_stats(pairs: Sequence[PreferencePair]) -> dict[str, Any]:
    """Ok pairs per flag and in all (those ``--drop-flagged`` leaves out)."""
    ok = [p for p in pairs if p.status == "ok"]
    counts = Counter(f for p in ok for f in p.flags)
    flagged = sum(bool(p.flags) for p in ok)
    return {
        "by_flag": dict(sorted(counts.items())),
        "flagged_pairs": flagged,
        "flagged_rate": _rate(flagged, len(ok)),
    }


def format_stats(pairs: Sequence[PreferencePair]) -> dict[str, Any]:
    """Per format check: chosen / rejected answers that trip it and pairs where only one side does."""
    ok = _ok(pairs)
    feats = [(format_features(p.chosen), format_features(p.rejected)) for p in ok]
    checks = {}
    for name in CHECKS:
        c = sum(name in f[0] for f in feats)
        r = sum(name in f[1] for f in feats)
        c_only = sum(name in f[0] and name not in f[1] for f in feats)
        r_only = sum(name in f[1] and name not in f[0] for f in feats)
        checks[name] = {
            "chosen": c,
            "chosen_rate": _rate(c, len(ok)),
            "rejected": r,
            "rejected_rate": _rate(r, len(ok)),
            "chosen_only": c_only,
            "rejected_only": r_only,
            "differ_rate": _rate(c_only + r_only, len(ok)),
        }
    return {"pairs": len(ok), "checks": checks}
