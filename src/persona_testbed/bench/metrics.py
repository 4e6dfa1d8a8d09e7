"""Bench metrics: Cohen's kappa, bootstrap confidence intervals, unbiased pass@k, majority vote.

Pure functions over numpy arrays, each checked in the tests against an oracle:

- ``cohen_kappa`` equals ``sklearn.metrics.cohen_kappa_score``. Degenerate case: when both raters use
  one and the same label for every item, chance agreement is 1 and kappa is 0/0; like sklearn we
  return ``nan`` ("undefined"), never a made-up 1.0. Raters that agree on nothing beyond chance give 0.
- ``bootstrap_ci`` (percentile or BCa, paired resampling over items) agrees with
  ``scipy.stats.bootstrap`` within Monte-Carlo error.
- ``pass_at_k`` is the unbiased estimator of Chen et al. (2021) in its numerically stable product
  form, equal to brute-force enumeration of all k-subsets.
- ``majority_vote`` reports ties explicitly instead of picking a winner.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from scipy.special import ndtr, ndtri

# ---------------------------------------------------------------------------------------------------
# Cohen's kappa


def _encode(
    a: Sequence[Hashable], b: Sequence[Hashable], labels: Sequence[Hashable] | None = None
) -> tuple[np.ndarray, np.ndarray, int]:
    if len(a) != len(b):
        raise ValueError(f"rater label lists differ in length ({len(a)} vs {len(b)})")
    if labels is None:
        labels = sorted(set(a) | set(b), key=lambda x: (str(type(x)), x))
    index = {lab: i for i, lab in enumerate(labels)}
    # Items whose labels are outside ``labels`` are ignored, as in sklearn.
    keep = [i for i in range(len(a)) if a[i] in index and b[i] in index]
    ca = np.array([index[a[i]] for i in keep], dtype=np.int64)
    cb = np.array([index[b[i]] for i in keep], dtype=np.int64)
    return ca, cb, len(labels)


def _kappa_codes(ca: np.ndarray, cb: np.ndarray, n_labels: int) -> np.ndarray:
    """Kappa along the last axis of integer-coded label arrays (vectorised over leading axes)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        po = np.mean(ca == cb, axis=-1)
        pe = np.zeros(po.shape, dtype=float)
        for lab in range(n_labels):
            pe = pe + np.mean(ca == lab, axis=-1) * np.mean(cb == lab, axis=-1)
        denom = 1.0 - pe
        kappa = np.where(np.isclose(denom, 0.0), np.nan, (po - pe) / np.where(denom == 0, 1.0, denom))
    return kappa


def cohen_kappa(
    a: Sequence[Hashable], b: Sequence[Hashable], labels: Sequence[Hashable] | None = None
) -> float:
    """Cohen's kappa between two raters' labels for the same items (== sklearn's cohen_kappa_score).

    Returns ``nan`` when kappa is undefined (no items, or both raters give every item one same label).
    """
    ca, cb, n_labels = _encode(a, b, labels)
    if len(ca) == 0:
        return float("nan")
    return float(_kappa_codes(ca, cb, n_labels))


# ---------------------------------------------------------------------------------------------------
# Bootstrap


@dataclass(frozen=True)
class CI:
    """A point estimate with a confidence interval."""

    estimate: float
    low: float
    high: float
    confidence: float
    method: str
    n: int
    n_resamples: int

    def as_dict(self) -> dict[str, Any]:
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(self).items()}


def _percentile_of_score(values: np.ndarray, score: float) -> float:
    # Same convention as scipy.stats.bootstrap (mean of strict and weak ranks).
    return float(((values < score).sum() + (values <= score).sum()) / (2 * len(values)))


def bootstrap_ci(
    samples: Sequence[Sequence[Any]] | Sequence[np.ndarray],
    statistic: Callable[..., np.ndarray],
    *,
    rng: np.random.Generator,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    method: Literal["percentile", "bca"] = "percentile",
) -> CI:
    """Paired bootstrap CI of ``statistic`` over items.

    ``samples`` are equal-length arrays (one per variable, e.g. two raters' labels); each resample
    draws item indices with replacement and applies them to every array. ``statistic(*arrays)`` must
    reduce along the last axis (it is called with shape ``(n,)``, ``(n_resamples, n)`` and, for BCa,
    the jackknife ``(n, n-1)``). Resamples where the statistic is undefined (nan) are left out.
    An interval of a constant statistic is the point itself; no items gives nan.
    """
    arrays = [np.asarray(s) for s in samples]
    n = len(arrays[0])
    if any(len(x) != n for x in arrays):
        raise ValueError("bootstrap samples must have equal length (paired)")
    if method not in ("percentile", "bca"):
        raise ValueError(f"unknown bootstrap method {method!r}")
    if n == 0:
        return CI(float("nan"), float("nan"), float("nan"), confidence, method, 0, n_resamples)
    estimate = float(statistic(*arrays))
    idx = rng.integers(0, n, size=(n_resamples, n))
    boot = np.asarray(statistic(*[x[idx] for x in arrays]), dtype=float)
    boot = boot[~np.isnan(boot)]
    alpha = (1.0 - confidence) / 2.0
    if len(boot) == 0 or math.isnan(estimate):
        return CI(estimate, float("nan"), float("nan"), confidence, method, n, n_resamples)
    if np.all(boot == boot[0]):
        return CI(estimate, float(boot[0]), float(boot[0]), confidence, method, n, n_resamples)
    if method == "percentile":
        low, high = np.percentile(boot, [100 * alpha, 100 * (1 - alpha)])
        return CI(estimate, float(low), float(high), confidence, method, n, n_resamples)
    # BCa: bias correction from the bootstrap distribution, acceleration from the jackknife.
    z0 = ndtri(_percentile_of_score(boot, estimate))
    jk_idx = np.array([np.delete(np.arange(n), i) for i in range(n)]) if n > 1 else None
    accel = 0.0
    if jk_idx is not None:
        jk = np.asarray(statistic(*[x[jk_idx] for x in arrays]), dtype=float)
        jk = jk[~np.isnan(jk)]
        d = jk.mean() - jk
        denom = 6.0 * (np.sum(d**2) ** 1.5)
        accel = float(np.sum(d**3) / denom) if denom > 0 else 0.0
    levels = []
    for a in (alpha, 1 - alpha):
        za = ndtri(a)
        levels.append(float(ndtr(z0 + (z0 + za) / (1 - accel * (z0 + za)))))
    if not all(np.isfinite(levels)):
        return CI(estimate, float("nan"), float("nan"), confidence, method, n, n_resamples)
    low, high = np.percentile(boot, [100 * levels[0], 100 * levels[1]])
    return CI(estimate, float(low), float(high), confidence, method, n, n_resamples)


def _mean_last(x: np.ndarray) -> np.ndarray:
    return np.mean(x, axis=-1)


def mean_ci(
    values: Sequence[float],
    *,
    rng: np.random.Generator,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    method: Literal["percentile", "bca"] = "percentile",
) -> CI:
    """Bootstrap CI of the mean (accuracy of 0/1 scores)."""
    return bootstrap_ci(
        [np.asarray(values, dtype=float)],
        _mean_last,
        rng=rng,
        confidence=confidence,
        n_resamples=n_resamples,
        method=method,
    )


def kappa_ci(
    a: Sequence[Hashable],
    b: Sequence[Hashable],
    *,
    rng: np.random.Generator,
    labels: Sequence[Hashable] | None = None,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    method: Literal["percentile", "bca"] = "percentile",
) -> CI:
    """Cohen's kappa with a paired bootstrap CI (resamples with undefined kappa are left out)."""
    ca, cb, n_labels = _encode(a, b, labels)

    def stat(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return _kappa_codes(x, y, n_labels)

    return bootstrap_ci(
        [ca, cb], stat, rng=rng, confidence=confidence, n_resamples=n_resamples, method=method
    )


# ---------------------------------------------------------------------------------------------------
# pass@k


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k (Chen et al. 2021): 1 - C(n-c, k) / C(n, k), as a stable product.

    ``n`` samples, ``c`` of them correct. Requires ``0 <= c <= n`` and ``1 <= k <= n``.
    """
    if not (0 <= c <= n):
        raise ValueError(f"need 0 <= c <= n (c={c}, n={n})")
    if not (1 <= k <= n):
        raise ValueError(f"need 1 <= k <= n (k={k}, n={n})")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


# ---------------------------------------------------------------------------------------------------
# Majority vote


@dataclass(frozen=True)
class Majority:
    """Outcome of a vote: the winning label, or ``None`` with ``tie=True`` when no strict majority."""

    label: Hashable | None
    tie: bool
    counts: dict[Hashable, int]
    n_votes: int


def majority_vote(votes: Sequence[Hashable]) -> Majority:
    """Strict-majority vote (more than half of the votes). No strict majority -> tie, label None.

    With 3 binary votes there is always a winner; ties arise with an abstention label (e.g. "tie"
    as one of three different answers), an even number of votes split evenly, or no votes.
    """
    counts = Counter(votes)
    n = len(votes)
    if n == 0:
        return Majority(None, True, {}, 0)
    label, top = max(counts.items(), key=lambda kv: kv[1])
    if top * 2 > n:
        return Majority(label, False, dict(counts), n)
    return Majority(None, True, dict(counts), n)


__all__ = [
    "CI",
    "Majority",
    "bootstrap_ci",
    "cohen_kappa",
    "kappa_ci",
    "majority_vote",
    "mean_ci",
    "pass_at_k",
]
