"""The bench tasks: ONE registry of names, run functions and one-line descriptions.

Each task is ``async run(ctx, **options) -> TaskOutput``; the CLI's task help and ``bench tasks list``
come from ``TASKS``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from . import agreement, fidelity, intersections, loo, main, passk


@dataclass(frozen=True)
class Task:
    """A registered bench task."""

    name: str
    run: Callable[..., Awaitable[Any]]
    help: str


TASKS: dict[str, Task] = {
    t.name: t
    for t in (
        Task(
            "main",
            main.run,
            "candidate answers for a persona, critic judge; accuracy per mode "
            "(intent-to-treat + answered-only + failure and leak rates)",
        ),
        Task(
            "passk",
            passk.run,
            "n >= k independent samples per item, each judged; unbiased pass@k for k = 1..K",
        ),
        Task(
            "loo",
            loo.run,
            "leave-one-out attribute ablation against a control arm; kappa and changed share "
            "per attribute minus the noise floor",
        ),
        Task(
            "intersections",
            intersections.run,
            "accuracy per attribute-filter group; largest gap with a simultaneous CI and permutation p-value",
        ),
        Task(
            "fidelity",
            fidelity.run,
            "candidate as persona picks chosen vs rejected in both orders; discrimination matrix",
        ),
        Task(
            "agreement",
            agreement.run,
            "human labels (majority of 3) vs model judges; kappa between annotators",
        ),
    )
}

__all__ = ["TASKS", "Task"]
