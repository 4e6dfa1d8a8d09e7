"""Distribution helpers for fidelity checks: weighted shares, total-variation distance, chi-square GOF.

``scipy.stats`` is imported on first use (by :func:`chi2_gof`): importing it costs ~0.4-0.8 s, which every
``import persona_testbed.census`` (e.g. ``personas sample``) would otherwise pay.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

MISSING = "N/A"


def weighted_shares(values: Iterable[Any], weights: Iterable[float] | None = None) -> dict[Any, float]:
    """Share of total weight per distinct value (``None`` counted as ``"N/A"``), largest first."""
    vals = [MISSING if v is None else v for v in values]
    w = np.ones(len(vals)) if weights is None else np.asarray(list(weights), dtype=float)
    if len(w) != len(vals):
        raise ValueError(f"{len(vals)} values but {len(w)} weights")
    if len(vals) == 0 or w.sum() <= 0:
        return {}
    totals: dict[Any, float] = {}
    for v, wi in zip(vals, w):
        totals[v] = totals.get(v, 0.0) + float(wi)
    s = sum(totals.values())
    return dict(sorted(((k, t / s) for k, t in totals.items()), key=lambda kv: (-kv[1], str(kv[0]))))


def tvd(p: Mapping[Any, float], q: Mapping[Any, float]) -> float:
    """Total-variation distance ½·Σ|p−q| over the union of categories (inputs renormalised to sum 1)."""
    sp, sq = sum(p.values()) or 1.0, sum(q.values()) or 1.0
    keys = set(p) | set(q)
    return 0.5 * float(sum(abs(p.get(k, 0.0) / sp - q.get(k, 0.0) / sq) for k in keys))


def chi2_gof(
    observed_counts: Mapping[Any, float], expected_shares: Mapping[Any, float], min_expected: float = 5.0
) -> tuple[float, float, int]:
    """Chi-square goodness of fit of counts against shares: ``(statistic, p_value, dof)``.

    Categories with expected count below ``min_expected`` are pooled into one cell (kept only if it
    reaches ``min_expected`` after pooling; otherwise merged into the smallest remaining cell). Observed
    categories with no expected share pool into that cell too. Fewer than two cells -> ``(0, 1, 0)``.
    """
    total = float(sum(observed_counts.values()))
    s = float(sum(expected_shares.values())) or 1.0
    keys = list(dict.fromkeys(list(expected_shares) + list(observed_counts)))
    obs = np.array([float(observed_counts.get(k, 0.0)) for k in keys])
    exp = np.array([total * expected_shares.get(k, 0.0) / s for k in keys])
    small = exp < min_expected
    o_cells, e_cells = list(obs[~small]), list(exp[~small])
    if small.any():
        po, pe = obs[small].sum(), exp[small].sum()
        if pe >= min_expected or not e_cells:
            o_cells.append(po)
            e_cells.append(pe)
        else:
            j = int(np.argmin(e_cells))
            o_cells[j] += po
            e_cells[j] += pe
    if len(e_cells) < 2 or total <= 0:
        return 0.0, 1.0, 0
    o, e = np.array(o_cells), np.array(e_cells)
    e = e * (o.sum() / e.sum())  # guard float drift: scipy requires equal sums
    from scipy import stats  # lazy: see the module docstring

    res = stats.chisquare(o, e)
    return float(res.statistic), float(res.pvalue), len(o) - 1


def chi2_gof_pvalue(
    observed_counts: Mapping[Any, float], expected_shares: Mapping[Any, float], min_expected: float = 5.0
) -> float:
    """p-value of :func:`chi2_gof` (``scipy.stats.chisquare`` with tiny cells pooled)."""
    return chi2_gof(observed_counts, expected_shares, min_expected)[1]


def kish_ess(weights: Iterable[float]) -> float:
    """Kish effective sample size (Σw)² / Σw²."""
    w = np.asarray(list(weights) if not isinstance(weights, np.ndarray) else weights, dtype=float)
    s2 = float((w * w).sum())
    return float(w.sum() ** 2 / s2) if s2 > 0 else 0.0
