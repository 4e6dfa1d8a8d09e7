"""Resampling statistics of the bench: cluster bootstrap, the max-gap test, judge calibration, planning.

Every statistic here is a function of *totals* of per-item feature vectors (sums of 0/1 scores, counts,
label indicators), so a bootstrap resample is a matrix product: the multiplicity of each cluster in the
resample times the per-cluster sums. This makes the cluster bootstrap as cheap as
the item bootstrap, exact for every cluster structure, and vectorised over resamples.

- ``cluster_ci``: percentile or BCa interval (BCa's acceleration from the leave-one-cluster-out
  jackknife); a percentile interval is widened by ``small_sample_factor`` (sqrt(G/(G-1)) t_{G-1}/z), since
  the plain percentile bootstrap under-covers with few clusters (94% instead of 95% with ~50 personas).
  Clusters are whatever the caller groups by (persona, prompt, pair); ``None`` = one cluster
  per item, which is the ordinary paired bootstrap (agrees with ``scipy.stats.bootstrap``).
  ``strata`` resample clusters within each stratum (independent groups keep their own sizes).
- ``max_gap``: the largest difference between group accuracies with a *simultaneous* interval: the
  bootstrap recomputes every pairwise difference in each resample, ``c`` is the quantile of the largest
  deviation, and the range lies in ``[max(0, gap - c), gap + c]``; plus a permutation p-value for "no gap
  at all" (group labels permuted across persona clusters).
- ``rogan_gladen``: judge-corrected accuracy from the judge's sensitivity and specificity against human
  labels, with a bootstrap interval over both the bench items and the labelled items, and
  ``labels_needed`` for a target interval half-width.
- ``n_for_half_width``: items needed for a target half-width, scaled by the design effect a pilot shows.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.special import ndtr, ndtri, stdtrit

from .metrics import CI

Method = Literal["percentile", "bca"]
CLUSTER_CHOICES = ("persona", "prompt", "none")
_CHUNK_CELLS = 4_000_000  # resamples x clusters held in memory at once


def codes(ids: Sequence[Hashable] | None, n: int) -> tuple[np.ndarray, int]:
    """Integer codes 0..G-1 for cluster ids in order of first appearance (``None``: one per item)."""
    if ids is None:
        return np.arange(n), n
    index: dict[Hashable, int] = {}
    out = np.fromiter((index.setdefault(x, len(index)) for x in ids), dtype=np.int64, count=len(ids))
    return out, len(index)


def cluster_sums(features: np.ndarray, cl: np.ndarray, n_clusters: int) -> np.ndarray:
    """Per-cluster sums of per-item feature rows: ``(n, k)`` -> ``(G, k)``."""
    f = np.asarray(features, dtype=float).reshape(len(cl), -1)
    return np.stack(
        [np.bincount(cl, weights=f[:, j], minlength=n_clusters) for j in range(f.shape[1])], axis=1
    )


def _strata_sizes(strata: np.ndarray | None, n_clusters: int) -> list[np.ndarray]:
    """Cluster indices per stratum (clusters must be nested in strata)."""
    if strata is None:
        return [np.arange(n_clusters)]
    return [np.flatnonzero(strata == s) for s in np.unique(strata)]


def resampled_totals(
    sums: np.ndarray, rng: np.random.Generator, n_resamples: int, strata: np.ndarray | None = None
) -> np.ndarray:
    """Totals of ``n_resamples`` cluster-bootstrap resamples: ``(R, k)``.

    Each resample draws every stratum's clusters with replacement (as many as it has): indices as
    ``rng.integers`` draws them (for one stratum of single-item clusters exactly the draws of the classic
    item bootstrap), turned into multiplicities, so the totals are ``counts @ sums``.
    """
    g, k = sums.shape
    out = np.zeros((n_resamples, k))
    groups = _strata_sizes(strata, g)
    step = max(1, _CHUNK_CELLS // max(1, g))
    for lo in range(0, n_resamples, step):
        r = min(step, n_resamples - lo)
        for idx in groups:
            m = len(idx)
            draws = rng.integers(0, m, size=(r, m))
            counts = np.bincount((draws + m * np.arange(r)[:, None]).ravel(), minlength=r * m).reshape(r, m)
            # einsum, not BLAS: small products, and a threaded BLAS on a busy machine is 100x slower here
            out[lo : lo + r] += np.einsum("rm,mk->rk", counts.astype(float), sums[idx])
    return out


def small_sample_factor(n_clusters: int, confidence: float = 0.95) -> float:
    """Widening of a percentile interval resampled from ``G`` clusters: sqrt(G/(G-1)) t_{G-1} / z.

    The bootstrap variance of a mean over G clusters is (G-1)/G of the unbiased one, and with few clusters
    the normal quantile is too small (the CR1 + t(G-1) convention of cluster-robust standard errors);
    tends to 1 as G grows (1.035 at G = 50, 1.007 at G = 500).
    """
    if n_clusters < 3:
        return 1.0
    g = float(n_clusters)
    q = 0.5 + confidence / 2
    return math.sqrt(g / (g - 1)) * float(stdtrit(g - 1, q)) / float(ndtri(q))


def interval(
    estimate: float,
    boot: np.ndarray,
    *,
    confidence: float,
    method: Method,
    n: int,
    n_resamples: int,
    jackknife: np.ndarray | None = None,
    n_clusters: int | None = None,
    bounds: tuple[float, float] | None = None,
) -> CI:
    """Percentile or BCa interval from bootstrap replicates (nan replicates left out).

    With ``n_clusters`` a percentile interval is widened around the estimate by ``small_sample_factor``
    (and clipped to ``bounds``, the statistic's range, e.g. [0, 1] for an accuracy).
    """
    boot = np.asarray(boot, dtype=float)
    boot = boot[~np.isnan(boot)]
    alpha = (1.0 - confidence) / 2.0
    nan = float("nan")
    if n == 0 or math.isnan(estimate) or len(boot) == 0:
        return CI(estimate, nan, nan, confidence, method, n, n_resamples)
    if np.all(boot == boot[0]):
        return CI(estimate, float(boot[0]), float(boot[0]), confidence, method, n, n_resamples)
    levels = [alpha, 1 - alpha]
    if method == "bca":
        z0 = ndtri(((boot < estimate).sum() + (boot <= estimate).sum()) / (2 * len(boot)))
        accel = 0.0
        if jackknife is not None:
            jk = np.asarray(jackknife, dtype=float)
            jk = jk[~np.isnan(jk)]
            if len(jk) > 1:
                d = jk.mean() - jk
                denom = 6.0 * (np.sum(d**2) ** 1.5)
                accel = float(np.sum(d**3) / denom) if denom > 0 else 0.0
        levels = [
            float(ndtr(z0 + (z0 + za) / (1 - accel * (z0 + za)))) for za in (ndtri(alpha), ndtri(1 - alpha))
        ]
        if not all(np.isfinite(levels)):
            return CI(estimate, nan, nan, confidence, method, n, n_resamples)
    low, high = np.percentile(boot, [100 * levels[0], 100 * levels[1]])
    if method == "percentile" and n_clusters:
        k = small_sample_factor(n_clusters, confidence)
        low, high = estimate - (estimate - low) * k, estimate + (high - estimate) * k
        if bounds is not None:
            low, high = max(bounds[0], low), min(bounds[1], high)
    return CI(estimate, float(low), float(high), confidence, method, n, n_resamples)


def cluster_ci(
    features: np.ndarray,
    statistic: Callable[[np.ndarray], np.ndarray],
    *,
    clusters: Sequence[Hashable] | None,
    rng: np.random.Generator,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    method: Method = "percentile",
    strata: Sequence[Hashable] | None = None,
    bounds: tuple[float, float] | None = None,
) -> tuple[CI, int]:
    """Interval of ``statistic(totals)`` under the cluster bootstrap; returns ``(CI, number of clusters)``.

    ``features``: ``(n, k)`` per-item rows; ``statistic`` maps totals ``(..., k)`` to ``(...)``.
    ``strata``: per-item stratum ids (each cluster inside one stratum), resampled separately.
    ``bounds``: the statistic's range (the small-sample widening never leaves it).
    """
    f = np.asarray(features, dtype=float)
    n = f.shape[0]
    if n == 0:
        return CI(float("nan"), float("nan"), float("nan"), confidence, method, 0, n_resamples), 0
    cl, g = codes(clusters, n)
    sums = cluster_sums(f.reshape(n, -1), cl, g)
    st = None
    if strata is not None:
        scodes, _ = codes(strata, n)
        st = np.zeros(g, dtype=np.int64)
        st[cl] = scodes
    with np.errstate(invalid="ignore", divide="ignore"):
        total = sums.sum(0)
        estimate = float(statistic(total))
        boot = statistic(resampled_totals(sums, rng, n_resamples, st))
        jk = statistic(total[None, :] - sums) if method == "bca" and g > 1 else None
    return interval(
        estimate,
        boot,
        confidence=confidence,
        method=method,
        n=n,
        n_resamples=n_resamples,
        jackknife=jk,
        n_clusters=g,
        bounds=bounds,
    ), g


# -- statistics as functions of totals ----------------------------------------------------------------


def ratio(num: int = 0, den: int = 1) -> Callable[[np.ndarray], np.ndarray]:
    """``totals[num] / totals[den]`` (nan when the denominator is 0)."""

    def stat(t: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(t[..., den] > 0, t[..., num] / np.where(t[..., den] > 0, t[..., den], 1), np.nan)

    return stat


def mean_features(x: Sequence[float]) -> np.ndarray:
    """Feature rows ``[x, 1]`` of a mean."""
    x = np.asarray(x, dtype=float)
    return np.stack([x, np.ones_like(x)], axis=1)


def kappa_features(a: np.ndarray, b: np.ndarray, n_labels: int) -> np.ndarray:
    """Feature rows ``[1, a == b, onehot(a), onehot(b)]`` of Cohen's kappa (integer-coded labels)."""
    n = len(a)
    eye = np.eye(n_labels)
    return np.concatenate([np.ones((n, 1)), (a == b)[:, None].astype(float), eye[a], eye[b]], axis=1)


def kappa_from_totals(n_labels: int, offset: int = 0) -> Callable[[np.ndarray], np.ndarray]:
    """Cohen's kappa from totals of ``kappa_features`` (starting at column ``offset``); nan when undefined."""

    def stat(t: np.ndarray) -> np.ndarray:
        t = t[..., offset : offset + 2 + 2 * n_labels]
        with np.errstate(invalid="ignore", divide="ignore"):
            n = t[..., 0]
            po = t[..., 1] / n
            pe = np.sum(t[..., 2 : 2 + n_labels] * t[..., 2 + n_labels :], axis=-1) / n**2
            denom = 1.0 - pe
            return np.where(
                np.isclose(denom, 0.0) | (n == 0), np.nan, (po - pe) / np.where(denom == 0, 1.0, denom)
            )

    return stat


def label_codes(a: Sequence[Hashable], b: Sequence[Hashable]) -> tuple[np.ndarray, np.ndarray, int]:
    """Integer codes of two raters' labels over their joint vocabulary."""
    vocab = sorted(set(a) | set(b), key=lambda x: (str(type(x)), x))
    index = {v: i for i, v in enumerate(vocab)}
    return (
        np.array([index[x] for x in a], dtype=np.int64),
        np.array([index[x] for x in b], dtype=np.int64),
        max(1, len(vocab)),
    )


# -- largest gap between groups ------------------------------------------------------------------------


@dataclass(frozen=True)
class GapTest:
    """The largest gap between group means, its simultaneous interval and a permutation p-value."""

    estimate: float
    low: float
    high: float
    highest: str
    lowest: str
    p_value: float
    critical: float  # the bootstrap quantile c of max |(d*_ij - d_ij)|
    n_permutations: int


def _group_means(t: np.ndarray, n_groups: int) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return t[..., :n_groups] / t[..., n_groups:]


def max_gap(
    scores: Sequence[float],
    groups: Sequence[str],
    clusters: Sequence[Hashable] | None,
    *,
    rng: np.random.Generator,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    n_permutations: int = 2000,
) -> GapTest | None:
    """Largest gap between the groups' mean scores, re-selected in every resample; ``None`` for < 2 groups.

    Interval: the bootstrap (clusters resampled within each group) gives the distribution of the largest
    deviation of any pairwise difference from its estimate; its ``confidence`` quantile ``c`` makes
    simultaneous intervals ``d_ij +- c``, so the true range lies in ``[max(0, gap - c), gap + c]``; ``c`` is
    widened by ``small_sample_factor`` of the smallest group's cluster count.
    p-value: group labels of (group, cluster) units are permuted; share of permutations whose largest
    gap reaches the observed one ((1 + hits) / (1 + permutations)).
    """
    x = np.asarray(scores, dtype=float)
    names = list(dict.fromkeys(groups))
    if len(names) < 2 or len(x) == 0:
        return None
    gi = np.array([names.index(g) for g in groups], dtype=np.int64)
    m = len(names)
    onehot = np.eye(m)[gi]
    feats = np.concatenate([onehot * x[:, None], onehot], axis=1)
    unit_ids = list(zip(groups, clusters)) if clusters is not None else None
    cl, g = codes(unit_ids, len(x))
    sums = cluster_sums(feats, cl, g)
    unit_group = np.zeros(g, dtype=np.int64)
    unit_group[cl] = gi
    means = _group_means(sums.sum(0), m)
    hi, lo = int(np.nanargmax(means)), int(np.nanargmin(means))
    gap = float(means[hi] - means[lo])
    with np.errstate(invalid="ignore"):
        boot = _group_means(resampled_totals(sums, rng, n_resamples, unit_group), m)
        dev = (boot[:, :, None] - boot[:, None, :]) - (means[:, None] - means[None, :])
        worst = np.nanmax(np.abs(dev).reshape(n_resamples, -1), axis=1)
    smallest = int(np.bincount(unit_group, minlength=m).min())  # clusters of the smallest group
    c = float(np.quantile(worst[~np.isnan(worst)], confidence)) * small_sample_factor(smallest, confidence)
    # permutation test: shuffle group labels across units, keep each unit's (sum, count)
    unit_sum, unit_n = sums[np.arange(g), unit_group], sums[np.arange(g), m + unit_group]
    labels = rng.permuted(np.broadcast_to(unit_group, (n_permutations, g)), axis=1)
    offs = (labels + m * np.arange(n_permutations)[:, None]).ravel()
    ps = np.bincount(offs, weights=np.tile(unit_sum, n_permutations), minlength=m * n_permutations)
    pn = np.bincount(offs, weights=np.tile(unit_n, n_permutations), minlength=m * n_permutations)
    with np.errstate(invalid="ignore", divide="ignore"):
        pm = (ps / pn).reshape(n_permutations, m)
    pgap = np.nanmax(pm, axis=1) - np.nanmin(pm, axis=1)
    p = float((1 + np.sum(pgap >= gap - 1e-12)) / (1 + n_permutations))
    return GapTest(
        estimate=gap,
        low=max(0.0, gap - c),
        high=gap + c,
        highest=names[hi],
        lowest=names[lo],
        p_value=p,
        critical=c,
        n_permutations=n_permutations,
    )


# -- judge calibration (Rogan-Gladen) ---------------------------------------------------------------------


@dataclass(frozen=True)
class Calibration:
    """Judge sensitivity/specificity against human labels and the corrected accuracy."""

    observed: float  # the judge's pass rate on the bench items
    sensitivity: float  # P(judge passes | human passes)
    specificity: float  # P(judge fails | human fails)
    corrected: float  # Rogan-Gladen (observed + Sp - 1) / (Se + Sp - 1), clipped to [0, 1]
    low: float
    high: float
    n_items: int
    n_positive: int  # labelled items the humans passed
    n_negative: int  # labelled items the humans failed
    youden: float  # Se + Sp - 1 (0 = the judge carries no information)


def rogan_gladen(observed: float, sensitivity: float, specificity: float) -> float:
    """Prevalence corrected for misclassification: ``(observed + Sp - 1) / (Se + Sp - 1)`` in [0, 1]."""
    j = sensitivity + specificity - 1.0
    if j <= 0:
        return float("nan")
    return float(min(1.0, max(0.0, (observed + specificity - 1.0) / j)))


def calibrate(
    judge_scores: Sequence[float],
    human: Sequence[int],
    judged: Sequence[int],
    *,
    rng: np.random.Generator,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    clusters: Sequence[Hashable] | None = None,
) -> Calibration:
    """Rogan-Gladen corrected accuracy with a bootstrap CI over bench items and labelled items together.

    ``judge_scores``: the judge's 0/1 verdicts on the bench items (the observed accuracy);
    ``human``/``judged``: the human majority (1 = pass) and the judge's verdict on each labelled item.
    Each resample redraws the bench items (by ``clusters``) and, independently, the labelled positives
    and negatives (stratified by the human label), and recomputes Se, Sp and the corrected accuracy.
    """
    a = np.asarray(judge_scores, dtype=float)
    h = np.asarray(human, dtype=int)
    j = np.asarray(judged, dtype=float)
    pos, neg = j[h == 1], j[h == 0]
    se, sp = float(pos.mean()), float(1 - neg.mean())
    obs = float(a.mean())
    est = rogan_gladen(obs, se, sp)
    cl, g = codes(clusters, len(a))
    sums = cluster_sums(mean_features(a), cl, g)
    with np.errstate(invalid="ignore", divide="ignore"):
        a_star = ratio()(resampled_totals(sums, rng, n_resamples))
        se_star = rng.binomial(len(pos), se, n_resamples) / len(pos)  # resampling 0/1 labels = binomial
        sp_star = rng.binomial(len(neg), sp, n_resamples) / len(neg)
        yj = se_star + sp_star - 1
        th = np.clip((a_star + sp_star - 1) / np.where(yj > 0, yj, np.nan), 0.0, 1.0)
    ci = interval(est, th, confidence=confidence, method="percentile", n=len(a), n_resamples=n_resamples)
    return Calibration(
        observed=obs,
        sensitivity=se,
        specificity=sp,
        corrected=est,
        low=ci.low,
        high=ci.high,
        n_items=len(a),
        n_positive=len(pos),
        n_negative=len(neg),
        youden=se + sp - 1,
    )


def labels_needed(
    half_width: float,
    *,
    observed: float,
    sensitivity: float,
    specificity: float,
    n_items: int,
    positive_share: float | None = None,
    confidence: float = 0.95,
) -> int | None:
    """Human-labelled items for a corrected-accuracy CI of ``+- half_width`` (delta method).

    Var(theta) = [a(1-a)/n + theta^2 Se(1-Se)/(m pi) + (1-theta)^2 Sp(1-Sp)/(m (1-pi))] / J^2 with J = Se + Sp
    - 1 and pi the share of labelled items humans pass (default: the corrected accuracy). ``None`` when even
    infinitely many labels cannot reach the width with ``n_items`` bench items (then more items are needed).
    """
    j = sensitivity + specificity - 1.0
    if j <= 0 or half_width <= 0:
        return None
    theta = rogan_gladen(observed, sensitivity, specificity)
    pi = min(0.95, max(0.05, theta if positive_share is None else positive_share))
    z = float(ndtri(0.5 + confidence / 2))
    budget = (half_width * j / z) ** 2 - observed * (1 - observed) / max(1, n_items)
    if budget <= 0:
        return None
    need = (
        theta**2 * max(sensitivity * (1 - sensitivity), 0.01) / pi
        + (1 - theta) ** 2 * max(specificity * (1 - specificity), 0.01) / (1 - pi)
    ) / budget
    return int(math.ceil(need))


# -- planning ------------------------------------------------------------------------------------------------


def n_for_half_width(
    p: float, half_width: float, *, confidence: float = 0.95, design_effect: float = 1.0
) -> int:
    """Items for a CI of ``p +- half_width`` (normal approximation x design effect; p clipped to [0.05, 0.95])."""
    z = float(ndtri(0.5 + confidence / 2))
    q = min(0.95, max(0.05, p))
    return int(math.ceil(z * z * q * (1 - q) / half_width**2 * max(1.0, design_effect)))


def design_effect(p: float, n: int, low: float | None, high: float | None, confidence: float = 0.95) -> float:
    """(observed half-width / iid binomial half-width)^2 of a pilot interval; 1 when not measurable."""
    if low is None or high is None or n < 2 or not (0 < p < 1):
        return 1.0
    z = float(ndtri(0.5 + confidence / 2))
    iid = z * math.sqrt(p * (1 - p) / n)
    return max(1.0, ((high - low) / 2 / iid) ** 2) if iid > 0 else 1.0


__all__ = [
    "CLUSTER_CHOICES",
    "Calibration",
    "GapTest",
    "calibrate",
    "cluster_ci",
    "cluster_sums",
    "codes",
    "design_effect",
    "interval",
    "kappa_features",
    "kappa_from_totals",
    "label_codes",
    "labels_needed",
    "max_gap",
    "mean_features",
    "n_for_half_width",
    "ratio",
    "resampled_totals",
    "rogan_gladen",
    "small_sample_factor",
]
