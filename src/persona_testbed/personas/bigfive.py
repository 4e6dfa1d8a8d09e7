"""Big Five scores: a correlated draw from IPIP-NEO-120 norms (sex x age group) with NEO-PI-R
domain intercorrelations, rendered as levels by percentile band.

The paper drew levels from BFI-2 probabilities; BFI-2 norm tables are not available offline, so we use
the IPIP-NEO-120 norms (Johnson) and the NEO-PI-R domain correlations from ``norms/bigfive``.

A score is always drawn from the persona's own sex x age norm group (so an older woman tends to score
higher on Agreeableness than a young man); the *reference* says against whom its percentile, and so
its level, is computed:

- ``pooled`` (default): the whole adult population -- the mixture of the eight sex x age norm groups
  weighted by their share of US adults (``POOLED_WEIGHTS``, ACS 2024). Group differences then show in
  the levels a model reads ("Agreeableness: High" is more common for women over 60).
- ``group``: the persona's own sex x age group (the behaviour before the option existed): every group
  has the same level distribution, so the norms never change the text.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.special import ndtr

from ..core.errors import DataMissingError, UserError
from .hashrng import normals

DOMAINS = ("O", "C", "E", "A", "N")  # rendering order (OCEAN)
DOMAIN_NAMES = {
    "O": "Openness",
    "C": "Conscientiousness",
    "E": "Extraversion",
    "A": "Agreeableness",
    "N": "Neuroticism",
}
NORMS_FILE = "norms/bigfive/ipipneo120_norms_by_sex_age.csv"
CORR_FILE = "norms/bigfive/neo_pi_r_domain_correlations.csv"

# (upper percentile bound, level): a percentile below the bound gets the level.
LEVELS: tuple[tuple[float, str], ...] = (
    (2.5, "Extremely Low"),
    (10.0, "Very Low"),
    (30.0, "Low"),
    (70.0, "Average"),
    (90.0, "High"),
    (97.5, "Very High"),
    (100.01, "Extremely High"),
)
AGE_GROUPS = ("<21", "21-40", "41-60", ">60")
#: what a Big Five percentile is relative to (see the module docstring); the first is the default
REFERENCES = ("pooled", "group")
#: share of US adults (18+) in each norm group [sex 0=M 1=F, age group]: ACS 2024 1-year PUMS, all 50
#: states + DC, PWGTP-weighted (18-20 stands for "<21"); sums to 1
_WEIGHTS = np.array([[0.025840, 0.174412, 0.154713, 0.134984], [0.024524, 0.169982, 0.156676, 0.158868]])
POOLED_WEIGHTS = _WEIGHTS / _WEIGHTS.sum()
REFERENCE_LABELS = {
    "pooled": "US adults 18+ (IPIP-NEO-120 sex x age norms pooled with ACS 2024 population weights)",
    "group": "own sex x age norm group",
}


def check_reference(reference: str) -> str:
    """``reference`` if it is one of :data:`REFERENCES`, else a one-line ``UserError``."""
    if reference not in REFERENCES:
        raise UserError(f"unknown Big Five reference {reference!r}: use {' or '.join(REFERENCES)}")
    return reference


def age_group(age: np.ndarray) -> np.ndarray:
    """Norm age group index (0: <21, 1: 21-40, 2: 41-60, 3: >60)."""
    age = np.asarray(age)
    return np.select([age < 21, age <= 40, age <= 60], [0, 1, 2], 3)


def level_index(percentile: np.ndarray) -> np.ndarray:
    """Index into :data:`LEVELS` of each percentile (0-100)."""
    return np.searchsorted(np.array([b for b, _ in LEVELS]), np.asarray(percentile), side="right")


def level_of(percentile: np.ndarray) -> np.ndarray:
    """Level names for percentiles (0-100)."""
    names = np.array([n for _, n in LEVELS], dtype=object)
    return names[level_index(percentile)]


@dataclass(frozen=True)
class Norms:
    """means/sds[sex 0=M 1=F, age group 0..3, domain in DOMAINS order], corr in DOMAINS order."""

    means: np.ndarray
    sds: np.ndarray
    corr: np.ndarray

    @property
    def chol(self) -> np.ndarray:
        return np.linalg.cholesky(self.corr)


def load_norms(data_dir: Path) -> Norms:
    """Read the IPIP-NEO-120 sum-score norms and the domain correlation matrix from ``data_dir``."""
    npath, cpath = Path(data_dir) / NORMS_FILE, Path(data_dir) / CORR_FILE
    for p in (npath, cpath):
        if not p.exists():
            raise DataMissingError(f"{p}: Big Five norms file missing (run `persona-testbed data fetch`)")
    means = np.full((2, 4, 5), np.nan)
    sds = np.full((2, 4, 5), np.nan)
    with npath.open(newline="") as f:
        for row in csv.DictReader(f):
            if row["version"] != "IPIP-NEO-120":
                continue
            s = {"M": 0, "F": 1}[row["sex"]]
            a = AGE_GROUPS.index(row["age_group"])
            d = DOMAINS.index(row["domain"])
            means[s, a, d] = float(row["mean_sum"])
            sds[s, a, d] = float(row["sd_sum"])
    if np.isnan(means).any():
        raise UserError(f"{npath}: IPIP-NEO-120 norms incomplete (need sex M/F x 4 age groups x 5 domains)")
    with cpath.open(newline="") as f:
        rows = list(csv.reader(f))
    header = rows[0][1:]
    raw = {r[0]: dict(zip(header, map(float, r[1:]))) for r in rows[1:]}
    corr = np.array([[raw[a][b] for b in DOMAINS] for a in DOMAINS])
    if not np.allclose(corr, corr.T) or np.any(np.linalg.eigvalsh(corr) <= 0):
        raise UserError(f"{cpath}: correlation matrix is not symmetric positive definite")
    return Norms(means, sds, corr)


def pooled_percentile(norms: Norms, score: np.ndarray) -> np.ndarray:
    """Percentile (0-100) of sum scores (n,5) in the pooled adult population: the mixture over the eight
    sex x age norm groups of normal distributions, weighted by :data:`POOLED_WEIGHTS`."""
    score = np.asarray(score, dtype=np.float64)
    out = np.zeros_like(score)
    term = np.empty_like(score)  # one scratch array: the same arithmetic as w * ndtr((score - m) / sd)
    for s in range(2):
        for g in range(len(AGE_GROUPS)):
            np.subtract(score, norms.means[s, g], out=term)
            np.divide(term, norms.sds[s, g], out=term)
            ndtr(term, out=term)
            np.multiply(POOLED_WEIGHTS[s, g], term, out=term)
            out += term
    return out * 100.0


def pooled_quantiles(norms: Norms, percentiles: np.ndarray) -> np.ndarray:
    """Sum scores (k,5) at the given pooled percentiles (k,), per domain (bisection on the mixture CDF)."""
    p = np.asarray(percentiles, dtype=np.float64)
    lo = np.full((len(p), len(DOMAINS)), -1000.0)
    hi = np.full((len(p), len(DOMAINS)), 1000.0)
    for _ in range(80):
        mid = (lo + hi) / 2
        below = pooled_percentile(norms, mid) < p[:, None]
        lo = np.where(below, mid, lo)
        hi = np.where(below, hi, mid)
    return (lo + hi) / 2


def level_probabilities(norms: Norms | None, reference: str, female: int, group: int) -> np.ndarray:
    """Probability (5 domains x len(LEVELS)) of each level for a persona of one norm group under
    ``reference`` (score clipping at 24/120 ignored: it moves less than 1e-4 of the mass). ``group``
    needs no norms: the percentile bands themselves."""
    bounds = np.array([min(b, 100.0) for b, _ in LEVELS])
    if check_reference(reference) == "group":
        cdf = np.tile(bounds / 100.0, (len(DOMAINS), 1))
    else:
        if norms is None:
            raise ValueError("pooled level probabilities need the norms")
        q = pooled_quantiles(norms, bounds[:-1])  # (levels-1, 5)
        cdf = np.ones((len(DOMAINS), len(bounds)))
        cdf[:, :-1] = ndtr((q.T - norms.means[female, group][:, None]) / norms.sds[female, group][:, None])
    return np.diff(np.concatenate([np.zeros((len(DOMAINS), 1)), cdf], axis=1), axis=1)


def draw_bigfive(
    norms: Norms,
    sex_is_female: np.ndarray,
    age: np.ndarray,
    seed: int,
    keys: np.ndarray,
    reference: str = "pooled",
    level_names: bool = True,
) -> dict[str, np.ndarray]:
    """Correlated draw per persona from its sex x age norm group: returns ``z`` (n,5), ``score`` (n,5 sum
    scores 24-120), ``percentile`` (n,5, relative to ``reference``: the pooled adult population or the
    persona's own norm group), ``level_index`` (n,5 indexes into :data:`LEVELS`), ``level`` (n,5 names;
    left out with ``level_names=False``, which builds no per-row object array), ``group`` (n,). The
    scores do not depend on ``reference``; only the percentiles and levels do."""
    check_reference(reference)
    z = normals(seed, "personas.bigfive", keys, 5) @ norms.chol.T
    s = np.asarray(sex_is_female, dtype=np.int64)
    g = age_group(age)
    mu = norms.means[s, g]
    sd = norms.sds[s, g]
    score = np.clip(mu + z * sd, 24, 120)
    pct = ndtr((score - mu) / sd) * 100.0 if reference == "group" else pooled_percentile(norms, score)
    idx = level_index(pct)
    out = {"z": z, "score": score, "percentile": pct, "level_index": idx, "group": g}
    if level_names:
        out["level"] = np.array([n for _, n in LEVELS], dtype=object)[idx]
    return out


def render_levels(levels_row) -> str:  # noqa: ANN001 - a row of 5 level names
    """``Openness: High, Conscientiousness: Average, ...``"""
    return ", ".join(f"{DOMAIN_NAMES[d]}: {lvl}" for d, lvl in zip(DOMAINS, levels_row))
