"""Which prompts each persona gets: seeded by the persona id only (no demographic–topic coupling).

Per persona, train-split prompts are permuted with ``rng(seed, "feedback.sample.train", persona_id)``;
the first ``train`` become train pairs and the next ``test`` test pairs (without replacement, so the two
sets never share a prompt). Held-out prompts are permuted with their own generator and the first
``held_out`` become held-out pairs. Counts larger than a pool raise ``UserError``.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel

from ..core.errors import UserError
from ..core.seeds import rng
from ..personas import Persona
from ..prompts import Prompt
from .record import PreferencePair


class PairCounts(BaseModel):
    """Pairs per persona; the paper: 100 train + 50 test (train prompts) + 50 held-out."""

    train: int = 100
    test: int = 50
    held_out: int = 50


class PlannedPair(BaseModel):
    id: str
    persona_id: str
    prompt_id: str
    split: str


def prompt_pools(prompts: Sequence[Prompt]) -> tuple[list[Prompt], list[Prompt]]:
    """Kept prompts of the train and held-out splits, each sorted by id (order-independent input)."""
    kept = [p for p in prompts if p.kept and p.split is not None]
    train = sorted((p for p in kept if p.split == "train"), key=lambda p: p.id)
    held = sorted((p for p in kept if p.split == "held_out"), key=lambda p: p.id)
    return train, held


def check_counts(counts: PairCounts, n_train_pool: int, n_held_pool: int) -> None:
    for name in ("train", "test", "held_out"):
        if getattr(counts, name) < 0:
            raise UserError(f"--{name.replace('_', '-')} must be >= 0 (got {getattr(counts, name)})")
    if counts.train + counts.test + counts.held_out == 0:
        raise UserError("all pair counts are 0: nothing to generate")
    if counts.train + counts.test > n_train_pool:
        raise UserError(
            f"--train {counts.train} + --test {counts.test} = {counts.train + counts.test} pairs per "
            f"persona exceed the {n_train_pool} train-split prompts (prompts are drawn without replacement)"
        )
    if counts.held_out > n_held_pool:
        raise UserError(
            f"--held-out {counts.held_out} pairs per persona exceed the {n_held_pool} held-out prompts "
            "(prompts are drawn without replacement)"
        )


def plan_pairs(
    personas: Sequence[Persona], prompts: Sequence[Prompt], counts: PairCounts, seed: int
) -> list[PlannedPair]:
    """Every (persona, prompt, split) to generate, sorted by pair id."""
    if not personas:
        raise UserError("no personas: nothing to generate")
    ids = [p.id for p in personas]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise UserError(f"duplicate persona id {dup}")
    train_pool, held_pool = prompt_pools(prompts)
    check_counts(counts, len(train_pool), len(held_pool))
    out: list[PlannedPair] = []
    for persona in personas:
        chosen: list[tuple[Prompt, str]] = []
        if counts.train + counts.test:
            perm = rng(seed, "feedback.sample.train", persona.id).permutation(len(train_pool))
            chosen += [(train_pool[i], "train") for i in perm[: counts.train]]
            chosen += [(train_pool[i], "test") for i in perm[counts.train : counts.train + counts.test]]
        if counts.held_out:
            perm = rng(seed, "feedback.sample.held_out", persona.id).permutation(len(held_pool))
            chosen += [(held_pool[i], "held_out") for i in perm[: counts.held_out]]
        for prompt, split in chosen:
            out.append(
                PlannedPair(
                    id=PreferencePair.make_id(persona.id, prompt.id, split),
                    persona_id=persona.id,
                    prompt_id=prompt.id,
                    split=split,
                )
            )
    out.sort(key=lambda p: p.id)
    return out
