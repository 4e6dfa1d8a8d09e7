"""Big Five scores: a correlated draw from IPIP-NEO-120 norms (sex x age group) with NEO-PI-R
domain intercorrelations, rendered as levels by percentile band.

The paper drew levels from BFI-2 probabilities; BFI-2 norm tables are not available offline, so we use
the IPIP-NEO-120 norms (Johnson) and the NEO-PI-R domain correlations from ``norms/bigfive``.
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
DOMAIN_NAMES = {"O": "Openness", "C": "Conscientiousness", "E": "Extraversion", "A": "Agreeableness",
                "N": "Neuroticism"}
NORMS_FILE = "norms/bigfive/ipipneo120_norms_by_sex_age.csv"
CORR_FILE = "norms/bigfive/neo_pi_r_domain_correlations.csv"

# (upper percentile bound, level): a percentile below the bound gets the level.
LEVELS: tuple[tuple[float, str], ...] = (
    (2.5, "Extremely Low"), (10.0, "Very Low"), (30.0, "Low"), (70.0, "Average"),
    (90.0, "High"), (97.5, "Very High"), (100.01, "Extremely High"),
)
AGE_GROUPS = ("<21", "21-40", "41-60", ">60")


def age_group(age: np.ndarray) -> np.ndarray:
    """Norm age group index (0: <21, 1: 21-40, 2: 41-60, 3: >60)."""
    age = np.asarray(age)
    return np.select([age < 21, age <= 40, age <= 60], [0, 1, 2], 3)


def level_of(percentile: np.ndarray) -> np.ndarray:
    """Level names for percentiles (0-100)."""
    bounds = np.array([b for b, _ in LEVELS])
    names = np.array([n for _, n in LEVELS], dtype=object)
    return names[np.searchsorted(bounds, np.asarray(percentile), side="right")]


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


def draw_bigfive(norms: Norms, sex_is_female: np.ndarray, age: np.ndarray, seed: int,
                 keys: np.ndarray) -> dict[str, np.ndarray]:
    """Correlated draw per persona: returns ``z`` (n,5), ``score`` (n,5 sum scores 24-120),
    ``percentile`` (n,5, within the sex x age norm group), ``level`` (n,5 names), ``group`` (n,)."""
    z = normals(seed, "personas.bigfive", keys, 5) @ norms.chol.T
    s = np.asarray(sex_is_female, dtype=np.int64)
    g = age_group(age)
    mu = norms.means[s, g]
    sd = norms.sds[s, g]
    score = np.clip(mu + z * sd, 24, 120)
    pct = ndtr((score - mu) / sd) * 100.0
    return {"z": z, "score": score, "percentile": pct, "level": level_of(pct), "group": g}


def render_levels(levels_row) -> str:  # noqa: ANN001 - a row of 5 level names
    """``Openness: High, Conscientiousness: Average, ...``"""
    return ", ".join(f"{DOMAIN_NAMES[d]}: {lvl}" for d, lvl in zip(DOMAINS, levels_row))
