"""The bench library run by inspect_ai: a model backend, one solver, one scorer and one metric.

Nothing here re-implements the bench. The bench's own ``Role`` / ``LLMClient`` (derived seeds, sample
seeds, structured output with re-asks, failures as data) talk to inspect models through
``InspectBackend``; the candidate step is the bench's ``ModelSolver`` (or the fidelity persona-judge), the
judge step is ``solve_and_judge`` (critic + leak check), and the metric feeds the rows to the same
``bench.analysis`` / fidelity functions as ``bench run``, so a task's figures are those of ``results.json``.

A *job* is one inspect sample: an item in one arm (mode, ablation, group, sample index, pair order). Its
rows (``ItemResult``, one per judged unit) travel in the score's metadata; the metric puts them back in
``bench run``'s order before computing figures. Requires ``inspect-ai`` (extra ``inspect``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from inspect_ai.model import (
    ChatMessageAssistant,
    ChatMessageSystem,
    ChatMessageUser,
    GenerateConfig,
    Model,
    ModelOutput,
    ResponseSchema,
    get_model,
)
from inspect_ai.scorer import CORRECT, INCORRECT, NOANSWER, Metric, SampleScore, Score, Target, metric, scorer
from inspect_ai.solver import Generate, Solver, TaskState, solver

from ..core.errors import UserError
from ..llm import LLMClient
from ..llm.backends.base import BackendReply, PermanentError, StructuredRequest
from ..llm.types import ChatParams, Message, Usage
from ..personas.record import Persona
from .context import BenchContext
from .fewshot import ShotBank, solve_fewshot
from .records import BenchItem, BenchPair, ItemResult
from .roles import Role
from .scorers import PreferenceJudge
from .solvers import Solution
from .tasks.common import solve_and_judge
from .tasks.fidelity import judge_pair
from .tasks.loo import rejudge
from .templates import SHOT_MODES

SOLUTION_KEY = "persona_bench:solution"
ROWS_KEY = "persona_bench:rows"
# Many calls in flight per role: inspect's own per-model connection limit (``--max-connections``) governs.
_CONCURRENCY = 10_000


class InspectBackend:
    """A bench backend whose replies come from an inspect model.

    ``model``: a model string or ``Model``; None = the model being evaluated, or the model bound to
    ``role`` (``--model-role judge=...``) when there is one. Inspect retries transient provider errors
    itself; an error it gives up on is a permanent failure here (recorded as data by ``LLMClient``).
    """

    kind = "inspect"

    def __init__(self, model: str | Model | None = None, role: str | None = None):
        self._spec = model
        self._role = role
        self._resolved: Model | None = model if isinstance(model, Model) else None
        self.model_string = str(model) if model is not None else f"inspect:{role or 'model'}"

    def resolve(self) -> Model:
        """The inspect model (a string is resolved once: mockllm models are never memoized by inspect)."""
        if self._resolved is not None:
            return self._resolved
        if isinstance(self._spec, str):
            self._resolved = get_model(self._spec)
            return self._resolved
        return get_model(role=self._role) if self._role else get_model()

    @property
    def model_id(self) -> str:
        return str(self.resolve())

    async def complete(
        self, messages: list[Message], params: ChatParams, structured: StructuredRequest | None
    ) -> BackendReply:
        config = GenerateConfig(
            temperature=params.temperature,
            top_p=params.top_p,
            max_tokens=params.max_tokens,
            seed=params.seed,
            stop_seqs=params.stop,
            response_schema=ResponseSchema(name=structured.name, json_schema=structured.schema)
            if structured is not None
            else None,
        )
        out = await self.resolve().generate(inspect_messages(messages), config=config)
        if out.error:
            raise PermanentError(out.error)
        usage = (
            Usage(prompt_tokens=out.usage.input_tokens, completion_tokens=out.usage.output_tokens)
            if out.usage is not None
            else Usage()
        )
        return BackendReply(text=out.completion, usage=usage, finish_reason=out.stop_reason)

    async def aclose(self) -> None:
        return None


def inspect_messages(messages: Sequence[Message]) -> list[Any]:
    """Bench messages (role + content dicts) as inspect chat messages."""
    kinds = {"system": ChatMessageSystem, "user": ChatMessageUser, "assistant": ChatMessageAssistant}
    return [kinds[m["role"]](content=m["content"]) for m in messages]


def inspect_role(
    name: str, model: str | Model | None, params: ChatParams, seed: int, model_role: str | None = None
) -> Role:
    """A bench ``Role`` (seeded calls, re-asks) whose client talks to an inspect model."""
    client = LLMClient(backend=InspectBackend(model, model_role), concurrency=_CONCURRENCY)
    return Role(name, client, params, seed)


@dataclass(frozen=True)
class Job:
    """One inspect sample: a bench work unit.

    Answer-then-judge tasks set ``item``: the candidate answers it in ``mode`` (``candidate_without``
    removed from the persona it sees, ``candidate_tag`` for an independent control sample), then the critic
    judges (``judge_without``). ``rejudge``: further arms that re-judge the same answer (loo with
    ``ablate="judge"``). Fidelity sets ``pair`` and ``persona``: the candidate as the persona picks.
    """

    id: str
    arm: str
    mode: str = ""
    item: BenchItem | None = None
    sample_index: int = 0
    candidate_without: tuple[str, ...] = ()
    candidate_tag: str = ""
    judge_without: tuple[str, ...] = ()
    rejudge: tuple[tuple[str, tuple[str, ...]], ...] = ()
    pair: BenchPair | None = None
    persona: Persona | None = None

    def metadata(self) -> dict[str, Any]:
        if self.pair is not None:
            return {
                "arm": self.arm,
                "pair_id": self.pair.id,
                "persona_id": self.pair.persona_id,
                "prompt_id": self.pair.prompt_id,
                "question": self.pair.question,
            }
        assert self.item is not None
        return {
            "arm": self.arm,
            "mode": self.mode,
            "item_id": self.item.id,
            "persona_id": self.item.persona.id,
            "prompt_id": self.item.prompt_id,
            "question": self.item.question,
            "sample_index": self.sample_index,
            "candidate_without": list(self.candidate_without),
        }


@dataclass
class BenchPlan:
    """A task's jobs and row order, and how its figures are computed (the same function as ``bench run``)."""

    ctx: BenchContext
    jobs: list[Job]
    row_order: list[tuple[str, str, int]]  # (arm, item_id, sample_index) in bench run's row order
    figures: Callable[[list[ItemResult]], Any]
    shots: ShotBank | None = None  # task main's few-shot modes
    by_id: dict[str, Job] = field(init=False)

    def __post_init__(self) -> None:
        self.by_id = {j.id: j for j in self.jobs}
        if len(self.by_id) != len(self.jobs):
            raise ValueError("duplicate job ids")

    def job(self, state: TaskState) -> Job:
        return self.by_id[str(state.sample_id)]

    def complete(self, rows: list[ItemResult]) -> bool:
        """Every row ``bench run`` would have is there (false while inspect shows running metrics)."""
        return set(self.row_order) <= {(r.arm, r.item_id, r.sample_index) for r in rows}

    def ordered(self, rows: list[ItemResult]) -> list[ItemResult]:
        rank = {key: i for i, key in enumerate(self.row_order)}
        return sorted(rows, key=lambda r: rank.get((r.arm, r.item_id, r.sample_index), len(rank)))


def plan_solver(plan: BenchPlan) -> Solver:
    """The candidate step: the bench's model solver (or, for fidelity, the candidate's persona pick)."""

    @solver(name="persona_bench_candidate")
    def persona_bench_candidate() -> Solver:
        async def solve(state: TaskState, generate: Generate) -> TaskState:
            job = plan.job(state)
            ctx = plan.ctx
            if job.pair is not None:
                assert job.persona is not None and ctx.candidate is not None
                row = await judge_pair(ctx, PreferenceJudge(ctx.candidate), job.persona, job.pair, job.arm)
                state.store.set(ROWS_KEY, [row.model_dump(mode="json")])
                raw = row.judge_raw or ""
            else:
                assert job.item is not None
                if job.mode in SHOT_MODES:
                    assert plan.shots is not None and ctx.candidate is not None
                    sol = await solve_fewshot(ctx.candidate, plan.shots, job.item, job.mode)
                else:
                    sol = await ctx.require_solver().solve(
                        job.item,
                        mode=job.mode,
                        sample_index=job.sample_index,
                        without=job.candidate_without,
                        tag=job.candidate_tag,
                    )
                state.store.set(SOLUTION_KEY, asdict(sol))
                raw = sol.raw or ""
            state.messages.append(ChatMessageAssistant(content=raw))
            state.output = ModelOutput.from_content(str(state.model), raw)
            return state

        return solve

    return persona_bench_candidate()


def _rows_score(rows: list[ItemResult]) -> Score:
    first = rows[0]
    value = NOANSWER if first.status != "ok" else (CORRECT if first.score == 1.0 else INCORRECT)
    explanation = first.error if first.status != "ok" else first.judge_reasoning
    return Score(
        value=value,
        answer=first.answer or first.label,
        explanation=explanation,
        metadata={"failed_stage": first.failed_stage, "rows": [r.model_dump(mode="json") for r in rows]},
    )


def plan_scorer(plan: BenchPlan, name: str) -> Any:
    """The judge step (bench critic + leak check); metric ``name`` = the task's ``bench run`` figures."""

    @metric(name=name)
    def figures_metric() -> Metric:
        def compute(scores: list[SampleScore]) -> dict[str, float]:
            rows = [
                ItemResult.model_validate(r) for s in scores for r in (s.score.metadata or {}).get("rows", [])
            ]
            if not plan.complete(rows):  # inspect's live display: some figures (pass@k) need whole items
                try:
                    return flatten_figures(plan.figures(plan.ordered(rows)).model_dump(mode="json"))
                except (ValueError, UserError):
                    return {}
            return flatten_figures(plan.figures(plan.ordered(rows)).model_dump(mode="json"))

        return compute

    @scorer(metrics=[figures_metric()], name="persona_bench_judge")
    def persona_bench_judge() -> Any:
        async def score(state: TaskState, target: Target) -> Score:
            job = plan.job(state)
            ctx = plan.ctx
            if job.pair is not None:
                return _rows_score([ItemResult.model_validate(r) for r in state.store.get(ROWS_KEY)])
            assert job.item is not None
            sol = Solution(**state.store.get(SOLUTION_KEY))
            first = await solve_and_judge(
                ctx,
                job.item,
                arm=job.arm,
                mode=job.mode,
                sample_index=job.sample_index,
                judge_without=job.judge_without,
                solution=sol,
            )
            rows = [first] + [
                await rejudge(ctx, job.item, first, arm, list(drop), job.mode) for arm, drop in job.rejudge
            ]
            return _rows_score(rows)

        return score

    return persona_bench_judge()


_SKIP = {"kind", "n", "clusters", "cluster", "confidence", "method", "n_resamples"}


def flatten_figures(figures: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Numeric leaves of a figures record: ``modes.persona.accuracy`` (an estimate) with ``..._low``/``_high``.

    Interval settings, counts of resampled units and lists (matrices) stay in the per-sample rows' world;
    None values (undefined statistics) are left out.
    """
    out: dict[str, float] = {}
    for key, value in figures.items():
        name = f"{prefix}{key}"
        if key in _SKIP or value is None or isinstance(value, (str, list)):
            continue
        if isinstance(value, dict) and "estimate" in value and "low" in value:
            for suffix, part in (("", "estimate"), ("_low", "low"), ("_high", "high")):
                if value.get(part) is not None:
                    out[name + suffix] = float(value[part])
        elif isinstance(value, dict):
            out.update(flatten_figures(value, name + "."))
        elif isinstance(value, (bool, int, float)):
            out[name] = float(value)
    return out


def as_names(value: Any, *, split: bool = True) -> list[str] | None:
    """A ``-T`` value as a list of names: a YAML list, or one string (comma-separated when ``split``)."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return [str(v).strip() for v in value]
    if split:
        return [v.strip() for v in str(value).split(",") if v.strip()]
    return [str(value)]


__all__ = [
    "BenchPlan",
    "InspectBackend",
    "Job",
    "ROWS_KEY",
    "SOLUTION_KEY",
    "as_names",
    "flatten_figures",
    "inspect_messages",
    "inspect_role",
    "plan_scorer",
    "plan_solver",
]
