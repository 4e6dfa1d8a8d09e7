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
from .analysis import Rows, Stats
from .inputs import items_from_answers, select_items
from .records import BenchItem, BenchPair, BenchPrompt, ItemResult
from .results import Estimate
from .roles import Role
from .scorers import CriticScorer, PreferenceJudge
from .solvers import AnswersSolver, Solver
from .stats import kappa_features, kappa_from_totals, label_codes

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
    cluster: str = "persona"  # resampling unit of the intervals: persona, prompt or none
    exclude_leaky: bool = False  # leave answers that name a persona attribute out of the accuracies
    check_leaks: bool = True  # run the attribute-leak detector on candidate answers
    warnings: list[str] = field(default_factory=list)  # copied into results.json

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
            raise UserError(
                f"task {self.task} needs a model candidate (--candidate MODEL) to play the persona"
            )
        return PreferenceJudge(self.candidate)

    def require_pairs(self) -> list[BenchPair]:
        if not self.pairs:
            raise UserError(f"task {self.task} needs feedback pairs (--pairs FILE)")
        return self.pairs

    def items(
        self, *key: object, personas: Sequence[Persona] | None = None, n: int | None = None
    ) -> list[BenchItem]:
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

    # -- figures ---------------------------------------------------------------------------------------
    @property
    def stats(self) -> Stats:
        return Stats(
            seed=self.seed,
            task=self.task,
            cluster=self.cluster,
            confidence=self.confidence,  # type: ignore[arg-type]
            n_resamples=self.n_resamples,
            method=self.ci_method,
            exclude_leaky=self.exclude_leaky,
        )  # type: ignore[arg-type]

    def rows(self, results: Iterable[ItemResult]) -> Rows:
        return Rows.of(list(results))

    def kappa(
        self,
        a: Sequence[Any],
        b: Sequence[Any],
        metric: str,
        clusters: Sequence[Any] | None = None,
        cluster: str | None = None,
    ) -> Estimate:
        """Cohen's kappa of two label lists with a (cluster) bootstrap interval."""
        ca, cb, n_labels = label_codes(list(a), list(b))
        return self.stats.estimate(
            kappa_features(ca, cb, n_labels), kappa_from_totals(n_labels), clusters, metric, cluster=cluster
        )

    # -- execution ---------------------------------------------------------------------------------
    async def gather(self, label: str, jobs: Sequence[Callable[[], Awaitable[T]]]) -> list[T]:
        """Run jobs concurrently (the LLM clients bound concurrency), results in job order, with a bar."""
        if not jobs:
            return []
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=err_console,
            transient=True,
            disable=not (self.show_progress and err_console.is_terminal),
        ) as progress:
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
