"""One seed derives every random choice.

``rng(seed, "stage", "item-key")`` gives an independent generator per (stage, item): adding items
(raising ``n``) extends a run instead of reshuffling it, and two runs with one seed are identical.
"""

from __future__ import annotations

import hashlib

import numpy as np


def _key_words(parts: tuple[object, ...]) -> list[int]:
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return [int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4)]


def seed_sequence(seed: int, *parts: object) -> np.random.SeedSequence:
    return np.random.SeedSequence(entropy=int(seed), spawn_key=tuple(_key_words(parts)))


def rng(seed: int, *parts: object) -> np.random.Generator:
    """A numpy Generator for this seed and these key parts (stage name, item id, ...)."""
    return np.random.default_rng(seed_sequence(seed, *parts))


def derive_int(seed: int, *parts: object, bits: int = 31) -> int:
    """A derived integer seed (e.g. for an LLM call's ``seed`` parameter)."""
    return int(seed_sequence(seed, *parts).generate_state(1, dtype=np.uint64)[0] % (1 << bits))
