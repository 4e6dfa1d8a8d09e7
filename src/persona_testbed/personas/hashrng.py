"""Vectorised, per-item random numbers derived from one seed.

``uniforms(seed, stage, keys, k)`` gives ``k`` uniforms in (0, 1) for each integer key (a persona's draw
index), computed by a counter-based hash (splitmix64) of ``derive_int(seed, stage)`` and the key. Like
``seeds.rng(seed, stage, item)`` each item's numbers depend only on the seed, the stage and the item, so
raising ``n`` extends a sample instead of reshuffling it — but a million items take milliseconds.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtri

from ..core.seeds import derive_int

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        z = x + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        return z ^ (z >> np.uint64(31))


def uniforms(seed: int, stage: str, keys: np.ndarray, k: int = 1) -> np.ndarray:
    """Array of shape (len(keys), k): uniforms in (0, 1), a pure function of (seed, stage, key, column)."""
    keys = np.asarray(keys, dtype=np.int64).astype(np.uint64)
    base = np.uint64(derive_int(seed, stage, bits=63))
    with np.errstate(over="ignore"):
        x = _splitmix64(keys * _GOLDEN ^ base)
        cols = [_splitmix64(x + np.uint64(j + 1) * _M1) for j in range(k)]
    z = np.stack(cols, axis=1) if cols else np.empty((len(keys), 0), dtype=np.uint64)
    return ((z >> np.uint64(11)).astype(np.float64) + 0.5) * (1.0 / (1 << 53))


def normals(seed: int, stage: str, keys: np.ndarray, k: int = 1) -> np.ndarray:
    """Standard normals of shape (len(keys), k) (inverse CDF of ``uniforms``)."""
    return ndtri(uniforms(seed, stage, keys, k))
