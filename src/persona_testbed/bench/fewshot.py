"""The few-shot baseline: a persona's own train pairs (question + chosen answer) shown in context.

Two candidate modes of task ``main``:

- ``fewshot``: k of the persona's train pairs, a seeded choice per persona (``rng(seed, "bench.fewshot",
  persona_id)``), the same examples for every question of that persona;
- ``fewshot-retrieved``: the k train pairs whose questions are nearest to the test question (TF-IDF
  cosine over the persona's train questions; ties broken by pair id).

Only pairs whose ``split`` is ``train`` are ever shown: test and held-out pairs (and pairs without a
split) are dropped when the bank is built, and a train pair about the very question being answered is
skipped. A persona with fewer usable train pairs than k is a ``UserError`` raised before any call.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from ..core.errors import UserError
from ..core.seeds import rng
from .records import BenchItem, BenchPair
from .roles import Role
from .solvers import Solution
from .templates import SHOT_MODES, candidate_messages

FEWSHOT_MODES = SHOT_MODES
DEFAULT_SHOTS = 4
SHOT_SPLIT = "train"


class ShotBank:
    """Each persona's train pairs, and the k of them a few-shot candidate sees for an item."""

    def __init__(self, pairs: Iterable[BenchPair], *, k: int, seed: int):
        if k < 1:
            raise UserError(f"--shots must be at least 1 (got {k})")
        self.k = k
        self.seed = seed
        self.by_persona: dict[str, list[BenchPair]] = {}
        for p in pairs:
            if p.split == SHOT_SPLIT:
                self.by_persona.setdefault(p.persona_id, []).append(p)
        for v in self.by_persona.values():
            v.sort(key=lambda p: p.id)
        self._vectors: dict[str, tuple[object, object]] = {}

    def usable(self, item: BenchItem) -> list[BenchPair]:
        """The persona's train pairs that are not about the item's own question."""
        return [
            p
            for p in self.by_persona.get(item.persona.id, [])
            if p.prompt_id != item.prompt_id and p.question.strip() != item.question.strip()
        ]

    def check(self, items: Sequence[BenchItem]) -> None:
        """``UserError`` naming the first persona with fewer than k usable train pairs."""
        for it in items:
            have = len(self.usable(it))
            if have < self.k:
                total = len(self.by_persona.get(it.persona.id, []))
                raise UserError(
                    f"--shots {self.k}: persona {it.persona.id} has {have} usable train pairs "
                    f"({total} in split 'train'; pairs of the test and held-out splits are never "
                    "shown); lower --shots or generate more train pairs"
                )

    def shots(self, item: BenchItem, mode: str) -> list[BenchPair]:
        """The k examples for ``item`` in ``mode`` (``fewshot`` or ``fewshot-retrieved``)."""
        pool = self.usable(item)
        if len(pool) < self.k:
            self.check([item])
        if mode == "fewshot":
            order = rng(self.seed, "bench.fewshot", item.persona.id).permutation(
                len(self.by_persona[item.persona.id])
            )
            rank = {p.id: i for i, p in zip(order, self.by_persona[item.persona.id])}
            return sorted(pool, key=lambda p: rank[p.id])[: self.k]
        if mode == "fewshot-retrieved":
            sims = self._similarities(item.persona.id, item.question)
            scored = {p.id: s for p, s in zip(self.by_persona[item.persona.id], sims)}
            return sorted(pool, key=lambda p: (-scored[p.id], p.id))[: self.k]
        raise ValueError(f"not a few-shot mode: {mode!r}")

    def _similarities(self, persona_id: str, question: str) -> np.ndarray:
        from sklearn.feature_extraction.text import TfidfVectorizer  # heavy: loaded on first retrieval

        if persona_id not in self._vectors:
            vec = TfidfVectorizer(lowercase=True, ngram_range=(1, 2), sublinear_tf=True)
            try:
                matrix = vec.fit_transform([p.question for p in self.by_persona[persona_id]])
            except ValueError:  # no usable terms at all (e.g. empty questions): every pair is equally near
                vec, matrix = None, None
            self._vectors[persona_id] = (vec, matrix)
        vec, matrix = self._vectors[persona_id]
        n = len(self.by_persona[persona_id])
        if vec is None:
            return np.zeros(n)
        q = vec.transform([question])  # type: ignore[attr-defined]
        return np.asarray((matrix @ q.T).toarray()).ravel()  # type: ignore[operator]  # rows are l2-normalised


async def solve_fewshot(role: Role, bank: ShotBank, item: BenchItem, mode: str) -> Solution:
    """The candidate answers ``item`` with the persona's k train examples in context."""
    shots = bank.shots(item, mode)
    res = await role.chat(
        candidate_messages(mode, item.persona, item.question, shots=[(p.question, p.chosen) for p in shots]),
        key=(item.id, mode, bank.k),
        purpose=f"bench.{mode}.candidate",
    )
    if not res.ok:
        return Solution(False, raw=res.text or None, call_id=res.call_id, error=res.error)
    return Solution(
        True,
        answer=res.text.strip(),
        raw=res.text,
        call_id=res.call_id,
        parts={"shots": [p.id for p in shots]},
    )


__all__ = ["DEFAULT_SHOTS", "FEWSHOT_MODES", "SHOT_SPLIT", "ShotBank", "solve_fewshot"]
