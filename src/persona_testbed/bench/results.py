"""The typed, versioned record of a bench run (``results.json``): ``BenchResults`` and its parts.

``BenchResults.model_dump(mode="json")`` is what ``results.json`` holds and what ``run_task`` returns;
``read_results(path)`` reads it back (schema 1 files, written before the record was typed, load with
their figures kept as ``LegacyFigures``). Every figure that carries uncertainty is an ``Estimate``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..core.errors import UserError
from .metrics import CI

RESULTS_SCHEMA_VERSION = 2


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _num(x: Any) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


class Estimate(Record):
    """A point estimate with a bootstrap confidence interval."""

    estimate: float | None = None
    """The statistic on all units (None when undefined, e.g. no units or kappa of constant labels)."""
    low: float | None = None
    """Lower end of the interval."""
    high: float | None = None
    """Upper end of the interval."""
    n: int = 0
    """Units the statistic is computed over (items, samples' items, judgements, pairs)."""
    clusters: int | None = None
    """Independent clusters resampled (personas, prompts, pairs; = n when unclustered)."""
    cluster: str | None = None
    """What was resampled as one unit: persona, prompt, pair or none (every unit on its own)."""
    confidence: float = 0.95
    """Nominal coverage of the interval."""
    method: str = "percentile"
    """Bootstrap interval method: percentile or bca."""
    n_resamples: int = 0
    """Bootstrap resamples."""

    @classmethod
    def of(cls, ci: CI, *, clusters: int | None = None, cluster: str | None = None) -> Estimate:
        return cls(
            estimate=_num(ci.estimate),
            low=_num(ci.low),
            high=_num(ci.high),
            n=ci.n,
            clusters=clusters,
            cluster=cluster,
            confidence=ci.confidence,
            method=ci.method,
            n_resamples=ci.n_resamples,
        )


class Calibrated(Record):
    """Judge-corrected accuracy (Rogan-Gladen) from human labels of this run's answers."""

    observed: float
    """The judge's pass rate on the answered items."""
    sensitivity: float
    """P(judge passes | human majority passes), on the labelled items."""
    specificity: float
    """P(judge fails | human majority fails), on the labelled items."""
    youden: float
    """Sensitivity + specificity - 1: 0 means the judge carries no information and nothing can be corrected."""
    corrected: Estimate
    """Corrected accuracy among answered items; its interval resamples bench items and labelled items."""
    corrected_itt: float | None = None
    """Corrected accuracy x answered share: the intent-to-treat counterpart (failures stay failures)."""
    labelled_positive: int
    """Labelled items the human majority passed."""
    labelled_negative: int
    """Labelled items the human majority failed."""
    labels_needed: int | None = None
    """Labelled items needed for the ``target_half_width`` interval (None: more bench items needed first)."""
    target_half_width: float = 0.05
    """Half-width ``labels_needed`` is computed for."""


class ArmAccuracy(Record):
    """Accuracy of one arm (a mode, a group, an ablation): intent-to-treat headline and answered-only."""

    accuracy: Estimate
    """Headline, intent-to-treat: passes / all items; a candidate or judge failure is never a pass."""
    answered_accuracy: Estimate
    """Passes / items the candidate answered and the judge scored."""
    items: int
    """Items of the arm (the intent-to-treat denominator)."""
    candidate_failures: int
    """Items whose candidate call failed (counted as 'needs revision')."""
    judge_failures: int
    """Answered items whose judge call or output failed (counted as not passed, reported apart)."""
    failure_rate: float | None = None
    """Candidate failures / items."""
    judge_failure_rate: float | None = None
    """Judge failures / answered items."""
    leaky: int | None = None
    """Answers that name a persona attribute explicitly (None: not checked)."""
    leak_rate: float | None = None
    """Leaky answers / answered items."""
    excluded_leaky: int = 0
    """Leaky answers left out of both accuracies (``--exclude-leaky``)."""
    calibrated: Calibrated | None = None
    """Judge-corrected accuracy when human labels were given."""


class MainFigures(Record):
    """Task main: accuracy per candidate mode."""

    kind: Literal["main"] = "main"
    """Discriminator: the task these figures belong to."""
    modes: dict[str, ArmAccuracy]
    """Per mode (baseline, persona, cot, summary, custom)."""


class PassKFigures(Record):
    """Task passk: unbiased pass@k per k."""

    kind: Literal["passk"] = "passk"
    """Discriminator: the task these figures belong to."""
    pass_at_k: dict[str, Estimate]
    """Intent-to-treat pass@k per k: every drawn sample counts, a failed sample is incorrect."""
    answered_pass_at_k: dict[str, Estimate]
    """pass@k over judged samples only; items with fewer than k judged samples are left out."""
    items_excluded: dict[str, int]
    """Per k, items left out of ``answered_pass_at_k`` (fewer than k judged samples)."""
    samples_per_item: list[int]
    """Distinct numbers of samples drawn per item."""
    samples: int
    """Samples drawn in all."""
    candidate_failures: int
    """Samples whose candidate call failed."""
    judge_failures: int
    """Answered samples whose judge call or output failed."""
    failure_rate: float | None = None
    """Candidate failures / samples."""
    judge_failure_rate: float | None = None
    """Judge failures / answered samples."""
    mean_sample_accuracy: float | None = None
    """Passes / samples (intent-to-treat)."""


class AttributeEffect(Record):
    """Effect of removing one attribute, against the control arm's sampling noise."""

    accuracy: ArmAccuracy
    """Accuracy with the attribute removed."""
    kappa: Estimate
    """Cohen's kappa between full-persona and ablated judgements (lower = judgements changed more)."""
    kappa_difference: Estimate
    """kappa(full, ablated) - kappa(full, control), paired over items; below 0 = more change than noise."""
    changed_share: Estimate
    """Share of items whose judgement differs between the full and the ablated arm."""
    changed_share_difference: Estimate
    """changed_share(ablated) - changed_share(control), paired over items."""
    matters: bool
    """The changed-share difference's interval lies above 0: the attribute changes judgements beyond noise."""
    changed: int
    """Items whose judgement changed (full vs ablated)."""
    paired_items: int
    """Items in the comparison (all items: failures count as 'not passed')."""
    distinct_values: int
    """Distinct values of the attribute among the items' personas."""
    nearly_constant: bool
    """One value covers at least 95% of the items' personas: removing it can hardly matter."""


class LooFigures(Record):
    """Task loo: leave-one-out attribute ablation with a control arm."""

    kind: Literal["loo"] = "loo"
    """Discriminator: the task these figures belong to."""
    full_accuracy: ArmAccuracy
    """Accuracy with the full persona."""
    control_accuracy: ArmAccuracy
    """Accuracy of the control arm: full persona again, an independent sample (or re-judgement)."""
    control_kappa: Estimate
    """kappa(full, control): the agreement sampling noise alone leaves."""
    control_changed_share: Estimate
    """Share of items whose judgement differs between two full-persona runs: the noise floor."""
    attributes: dict[str, AttributeEffect]
    """Per removed attribute."""


class GroupAccuracy(ArmAccuracy):
    """Accuracy of one intersectional group."""

    personas: int = 0
    """Personas in the set that match the group."""
    filters: dict[str, list[str]] = Field(default_factory=dict)
    """The group's filters: field -> accepted values."""


class Gap(Record):
    """Largest gap between group accuracies (intent-to-treat), re-selected in every resample."""

    estimate: float
    """Highest minus lowest group accuracy."""
    low: float
    """Lower end of the simultaneous interval (clipped at 0)."""
    high: float
    """Upper end of the simultaneous interval."""
    highest: str
    """Group with the highest accuracy."""
    lowest: str
    """Group with the lowest accuracy."""
    p_value: float
    """Permutation p-value of 'no gap at all' (group labels permuted across persona clusters)."""
    critical: float
    """Bootstrap quantile of the largest deviation of any pairwise difference (half-width of each)."""
    n_permutations: int
    """Permutations behind the p-value."""
    confidence: float = 0.95
    """Nominal simultaneous coverage."""


class IntersectionsFigures(Record):
    """Task intersections: accuracy per group and the largest gap."""

    kind: Literal["intersections"] = "intersections"
    """Discriminator: the task these figures belong to."""
    groups: dict[str, GroupAccuracy]
    """Per group, in the order given."""
    largest_gap: Gap | None = None
    """Largest gap between groups (None with fewer than two scored groups)."""


class Matrix(Record):
    """Discrimination matrix of task fidelity."""

    personas: list[str]
    """Persona ids, rows (judging persona) and columns (persona the answer was tailored to)."""
    questions: list[str]
    """Prompt ids used."""
    win_rate: list[list[float | None]]
    """win_rate[i][j]: share of comparisons persona i won for the answer tailored to j."""
    diagonal_ranks: list[float]
    """Per persona, the rank of its own answer among all (1 = always preferred)."""
    mean_diagonal_rank: float | None = None
    """Mean of the diagonal ranks."""
    chance_rank: float
    """(m + 1) / 2: the mean diagonal rank of a judge that ignores the persona."""
    writer: str
    """Model that wrote the tailored answers."""


class FidelityFigures(Record):
    """Task fidelity: the candidate as the pair's persona picks chosen vs rejected, in both orders."""

    kind: Literal["fidelity"] = "fidelity"
    """Discriminator: the task these figures belong to."""
    accuracy: Estimate
    """Share of judgements picking the labelled-chosen answer (intent-to-treat; failed picks count as wrong);
    interval resamples whole pairs (or personas/prompts)."""
    answered_accuracy: Estimate
    """The same over judgements that returned a pick."""
    kappa: Estimate
    """Cohen's kappa between the chosen answer's position and the picked position."""
    position_bias: float | None = None
    """P(pick A) - 0.5 over answered judgements."""
    share_picked_A: float | None = None
    """P(pick A) over answered judgements."""
    pairs_both_orders: int = 0
    """Pairs answered in both orders."""
    consistent_share: float | None = None
    """Of those, the share with the same answer picked in both orders."""
    both_orders_correct_share: float | None = None
    """Of those, the share with the chosen answer picked in both orders."""
    failures: int = 0
    """Failed judgements."""
    matrix: Matrix | None = None
    """Discrimination matrix (None when off)."""


class JudgeAgreement(Record):
    """One model judge against the human majority."""

    kappa: Estimate
    """Cohen's kappa between the human majority and the judge (both orders; inconsistent = tie)."""
    raw_agreement: float | None = None
    """Share of pairs where judge and human majority agree."""
    pairs: int
    """Pairs with a human majority and a judge label."""
    model_ties: int
    """Pairs the judge answered inconsistently across orders."""
    failures: int
    """Failed judge calls."""


class AnnotatorKappa(Record):
    """Agreement of two annotators on their shared pairs."""

    kappa: float | None = None
    """Cohen's kappa (None when undefined)."""
    pairs: int
    """Shared pairs."""


class AgreementFigures(Record):
    """Task agreement: human labels vs model judges."""

    kind: Literal["agreement"] = "agreement"
    """Discriminator: the task these figures belong to."""
    pairs: int
    """Labelled pairs used."""
    human_ties: list[str]
    """Pairs without a strict human majority (never broken)."""
    pairs_without_3_votes: int
    """Pairs whose number of votes is not 3."""
    judges: dict[str, JudgeAgreement]
    """Per model judge."""
    annotators: dict[str, AnnotatorKappa]
    """Per annotator pair ``a|b``."""
    mean_annotator_kappa: float | None = None
    """Mean of the defined annotator kappas."""


class LegacyFigures(Record):
    """Figures of a schema-1 ``results.json`` (untyped nested dicts), kept as read."""

    kind: Literal["legacy"] = "legacy"
    """Discriminator."""
    data: dict[str, Any]
    """The figures as written."""


Figures = Annotated[
    MainFigures
    | PassKFigures
    | LooFigures
    | IntersectionsFigures
    | FidelityFigures
    | AgreementFigures
    | LegacyFigures,
    Field(discriminator="kind"),
]


class RoleCalls(Record):
    """LLM calls made by one role."""

    model: str
    """Model string."""
    calls: int
    """Logical calls (a cached replay counts)."""
    cached: int
    """Calls answered from the call log."""
    failed: int
    """Calls that failed (after retries and re-asks)."""
    temperature: float | None = None
    """Sampling temperature."""
    max_tokens: int | None = None
    """Token limit."""


class Counts(Record):
    """Rows and calls."""

    rows: int
    """Rows of items.parquet (judged units, failures included)."""
    ok: int
    """Rows with status ok."""
    failed: int
    """Rows with status failed."""
    failed_by_stage: dict[str, int]
    """Failed rows per failed stage (candidate, judge, writer, ...)."""
    llm_calls: dict[str, RoleCalls]
    """Per role (candidate, judge, judge#2, ...)."""
    llm_calls_total: int
    """All logical calls."""
    llm_calls_per_row: float | None = None
    """Calls / rows."""


class Failure(Record):
    """One failed row."""

    item_id: str
    """Item id (persona:prompt, pair:order, ...)."""
    arm: str
    """Arm of the row (mode, ablation, group, order)."""
    sample_index: int = 0
    """Sample index (pass@k)."""
    stage: str | None = None
    """Stage that failed: candidate, judge, writer."""
    error: str | None = None
    """The error as recorded."""


class Models(Record):
    """Models of the run."""

    candidate: str | None = None
    """Candidate: model string, ``answers:FILE`` or ``approach:SPEC``."""
    judge: str | list[str] | None = None
    """Judge model string (a list for several judges)."""


class RunSettings(Record):
    """Settings of the run."""

    n: int | None = None
    """--n as given (None = task default)."""
    split: str = "held_out"
    """Prompt / pair split."""
    confidence: float = 0.95
    """Interval coverage."""
    n_resamples: int = 2000
    """Bootstrap resamples (and permutations)."""
    ci_method: str = "percentile"
    """Bootstrap interval method."""
    cluster: str = "persona"
    """Resampling unit: persona, prompt or none (fidelity: pairs are always kept whole)."""
    exclude_leaky: bool = False
    """Leaky answers left out of the accuracies."""
    personas: int = 0
    """Personas in the input set."""
    prompts: int = 0
    """Prompts in the split used."""
    pairs: int | None = None
    """Pairs in the split used (None: no pairs file)."""
    pairs_skipped_failed: int = 0
    """Pairs the feedback stage recorded as failed (skipped)."""
    options: dict[str, Any] = Field(default_factory=dict)
    """The task options as given."""
    task: dict[str, Any] = Field(default_factory=dict)
    """What the task resolved (modes, attributes, items, group sizes, ...)."""


class Table(Record):
    """The figures as the CLI prints them."""

    columns: list[str]
    """Column names."""
    rows: list[list[Any]]
    """Rows."""


class BenchResults(Record):
    """``results.json`` of one bench task."""

    schema_version: int = RESULTS_SCHEMA_VERSION
    """Version of this record's layout (2: typed figures, intent-to-treat accuracies)."""
    package_version: str
    """persona-testbed version that wrote it."""
    task: str
    """Task name."""
    seed: int
    """Seed of every random choice."""
    models: Models
    """Candidate and judge."""
    config: RunSettings
    """Settings and resolved task configuration."""
    figures: Figures
    """The task's figures."""
    counts: Counts
    """Rows and LLM calls."""
    failures: list[Failure] = Field(default_factory=list)
    """Every failed row."""
    warnings: list[str] = Field(default_factory=list)
    """Things to know before trusting the figures (e.g. a nearly constant ablated attribute)."""
    table: Table
    """The CLI table."""
    paths: dict[str, str] | None = None
    """Where results.json and items.parquet were written (not stored in the file itself)."""


def read_results(path: str | Path) -> BenchResults:
    """Read a ``results.json`` (or a directory holding one); ``UserError`` naming the file when it does not fit."""
    p = Path(path)
    if p.is_dir():
        p = p / "results.json"
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"{p}: cannot read ({exc.strerror or exc})") from None
    except ValueError as exc:
        raise UserError(f"{p}: not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise UserError(f"{p}: not a bench results file")
    if data.get("schema_version") == 1:
        data = _upgrade_v1(data)
    try:
        return BenchResults.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        raise UserError(f"{p}: not a bench results file ({where}: {first['msg']})") from None


def _upgrade_v1(data: dict[str, Any]) -> dict[str, Any]:
    out = dict(data)
    out["figures"] = {"kind": "legacy", "data": data.get("figures") or {}}
    cfg = dict(data.get("config") or {})
    known = set(RunSettings.model_fields)
    out["config"] = {k: v for k, v in cfg.items() if k in known} | {
        "task": {k: v for k, v in cfg.items() if k not in known}
    }
    out["failures"] = [
        {k: v for k, v in f.items() if k in Failure.model_fields} for f in data.get("failures") or []
    ]
    return out


__all__ = [
    "AgreementFigures",
    "AnnotatorKappa",
    "ArmAccuracy",
    "AttributeEffect",
    "BenchResults",
    "Calibrated",
    "Counts",
    "Estimate",
    "Failure",
    "FidelityFigures",
    "Gap",
    "GroupAccuracy",
    "IntersectionsFigures",
    "JudgeAgreement",
    "LegacyFigures",
    "LooFigures",
    "MainFigures",
    "Matrix",
    "Models",
    "PassKFigures",
    "RESULTS_SCHEMA_VERSION",
    "RoleCalls",
    "RunSettings",
    "Table",
    "read_results",
]
