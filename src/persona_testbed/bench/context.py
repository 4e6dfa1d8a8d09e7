"""What a task runs with: inputs, the candidate solver, the judges, the seed, CIs and a progress bar."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ..core.errors import UserError
from ..core.output import err_console
from ..personas.record import Persona
from ..core.seeds import rng
from .inputs import items_from_answers, select_items
from .metrics import kappa_ci, mean_ci
from .records import BenchItem, BenchPair, BenchPrompt, ItemResult
from .roles import Role
from .scorers import CriticScorer, PreferenceJudge
from .solvers import AnswersSolver, Solver

T = TypeVar("T")


@dataclass
class BenchContext:
    task: str
    seed: int
    n: int | None
    personas: list[Persona]
    prompts: list[BenchPrompt]
    pairs: list[BenchPair] | None
    solver: Solver | None
    candidate: Role | None  # set when the candidate is a model
    judge: Role | None
    confidence: float = 0.95
    n_resamples: int = 2000
    ci_method: str = "percentile"
    show_progress: bool = True
    extra_roles: list[Role] = field(default_factory=list)

    # -- inputs ------------------------------------------------------------------------------------
    def require_solver(self) -> Solver:
        if self.solver is None:
            raise UserError(f"task {self.task} needs a candidate (--candidate, --answers or --approach)")
        return self.solver

    def require_critic(self) -> CriticScorer:
        if self.judge is None:
            raise UserError(f"task {self.task} needs a judge model (--judge)")
        return CriticScorer(self.judge)

    def require_persona_judge(self) -> PreferenceJudge:
        if self.candidate is None:
            raise UserError(f"task {self.task} needs a model candidate (--candidate MODEL) to play the persona")
        return PreferenceJudge(self.candidate)

    def require_pairs(self) -> list[BenchPair]:
        if not self.pairs:
            raise UserError(f"task {self.task} needs feedback pairs (--pairs FILE)")
        return self.pairs

    def items(self, *key: object, personas: Sequence[Persona] | None = None, n: int | None = None) -> list[BenchItem]:
        """The task's items: from the answers file when scoring answers, else a seeded selection."""
        personas = list(self.personas if personas is None else personas)
        n = self.n if n is None else n
        if isinstance(self.solver, AnswersSolver):
            ids = {p.id for p in personas}
            answers = {k: v for k, v in self.solver.answers.items() if k[0] in ids}
            if not answers:
                raise UserError(f"answers file has no answers for the personas of {key or 'this task'}")
            return items_from_answers(answers, personas, self.prompts, n, self.seed)
        if not self.prompts:
            raise UserError(f"task {self.task} needs a prompt set (--prompts FILE)")
        return select_items(personas, self.prompts, n if n is not None else 20, self.seed, *key)

    # -- figures -----------------------------------------------------------------------------------
    def accuracy(self, results: Iterable[ItemResult], metric: str) -> dict[str, Any]:
        results = list(results)
        scores = [r.score for r in results if r.status == "ok" and r.score is not None]
        ci = mean_ci(scores, rng=rng(self.seed, "bench.bootstrap", self.task, metric),
                     confidence=self.confidence, n_resamples=self.n_resamples, method=self.ci_method)  # type: ignore[arg-type]
        out = ci.as_dict()
        out["failures"] = sum(1 for r in results if r.status != "ok")
        return out

    def kappa(self, a: Sequence[Any], b: Sequence[Any], metric: str) -> dict[str, Any]:
        ci = kappa_ci(list(a), list(b), rng=rng(self.seed, "bench.bootstrap", self.task, metric),
                      confidence=self.confidence, n_resamples=self.n_resamples, method=self.ci_method)  # type: ignore[arg-type]
        return ci.as_dict()

    # -- execution ---------------------------------------------------------------------------------
    async def gather(self, label: str, jobs: Sequence[Callable[[], Awaitable[T]]]) -> list[T]:
        """Run jobs concurrently (the LLM clients bound concurrency), results in job order, with a bar."""
        if not jobs:
            return []
        with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeRemainingColumn(), console=err_console, transient=True,
                      disable=not (self.show_progress and err_console.is_terminal)) as progress:
            bar = progress.add_task(f"{self.task}: {label}", total=len(jobs))

            async def one(job: Callable[[], Awaitable[T]]) -> T:
                out = await job()
                progress.advance(bar)
                return out

            return list(await asyncio.gather(*(one(j) for j in jobs)))

    def roles(self) -> list[Role]:
        out = [r for r in (self.candidate, self.judge) if r is not None]
        return out + [r for r in self.extra_roles if r not in out]


__all__ = ["BenchContext"]
