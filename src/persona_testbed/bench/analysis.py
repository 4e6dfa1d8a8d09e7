"""From judged rows to figures: the pure, vectorised half of every answer-then-judge task.

A task first produces ``ItemResult`` rows (LLM calls), then hands them, as columns (``Rows``), to the
functions here. The scripted world's simulator (``bench.validity``) feeds the same functions with rows
drawn directly from the world's probability model, so the coverage and power tests check exactly the
statistics a run reports.

Intent-to-treat (ITT) everywhere: an item whose candidate failed counts as "needs revision" (0), one
whose judge failed as "not passed" (0, reported apart); the answered-only figures sit next to them.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ..core.seeds import rng as seeded_rng
from .metrics import pass_at_k
from .records import ItemResult
from .results import (
    ArmAccuracy,
    AttributeEffect,
    Estimate,
    Gap,
    GroupAccuracy,
    IntersectionsFigures,
    LooFigures,
    MainFigures,
    PassKFigures,
)
from .stats import cluster_ci, kappa_features, kappa_from_totals, max_gap, mean_features, ratio

Cluster = Literal["persona", "prompt", "none"]


@dataclass
class Rows:
    """Judged rows as columns. ``stage`` is "" for ok rows, else the failed stage; ``leaky`` -1 = unchecked."""

    arm: np.ndarray
    item_id: np.ndarray
    persona_id: np.ndarray
    prompt_id: np.ndarray
    score: np.ndarray  # float, nan when not scored
    stage: np.ndarray
    sample_index: np.ndarray
    leaky: np.ndarray  # int8: 1 leaky, 0 clean, -1 not checked

    def __len__(self) -> int:
        return len(self.arm)

    def take(self, mask: np.ndarray) -> Rows:
        return Rows(**{k: v[mask] for k, v in self.__dict__.items()})

    @property
    def itt(self) -> np.ndarray:
        """0/1 intent-to-treat scores: a failure (any stage) is not a pass."""
        return np.where(self.stage == "", np.nan_to_num(self.score, nan=0.0), 0.0)

    @classmethod
    def build(
        cls,
        *,
        arm: Sequence[str],
        item_id: Sequence[str],
        persona_id: Sequence[str],
        prompt_id: Sequence[str] | None = None,
        score: Sequence[float],
        stage: Sequence[str],
        sample_index: Sequence[int] | None = None,
        leaky: Sequence[int] | None = None,
    ) -> Rows:
        n = len(arm)
        return cls(
            arm=np.asarray(arm, dtype=object),
            item_id=np.asarray(item_id, dtype=object),
            persona_id=np.asarray(persona_id, dtype=object),
            prompt_id=np.asarray(prompt_id if prompt_id is not None else [""] * n, dtype=object),
            score=np.asarray(score, dtype=float),
            stage=np.asarray(stage, dtype=object),
            sample_index=np.asarray(
                sample_index if sample_index is not None else np.zeros(n), dtype=np.int64
            ),
            leaky=np.asarray(leaky if leaky is not None else np.full(n, -1), dtype=np.int8),
        )

    @classmethod
    def of(cls, items: Sequence[ItemResult]) -> Rows:
        return cls.build(
            arm=[r.arm for r in items],
            item_id=[r.item_id for r in items],
            persona_id=[r.persona_id for r in items],
            prompt_id=[r.prompt_id for r in items],
            score=[np.nan if r.score is None else r.score for r in items],
            stage=["" if r.status == "ok" else (r.failed_stage or "unknown") for r in items],
            sample_index=[r.sample_index for r in items],
            leaky=[-1 if r.leaky is None else int(r.leaky) for r in items],
        )


@dataclass(frozen=True)
class Stats:
    """How intervals are computed: seed and task (each metric gets its own generator), resampling unit."""

    seed: int
    task: str
    cluster: Cluster = "persona"
    confidence: float = 0.95
    n_resamples: int = 2000
    method: Literal["percentile", "bca"] = "percentile"
    exclude_leaky: bool = False

    def rng(self, metric: str) -> np.random.Generator:
        return seeded_rng(self.seed, "bench.bootstrap", self.task, metric)

    def clusters(self, rows: Rows) -> np.ndarray | None:
        if self.cluster == "persona":
            return rows.persona_id
        if self.cluster == "prompt":
            return rows.prompt_id
        return None

    def estimate(
        self,
        features: np.ndarray,
        statistic: Any,
        clusters: Sequence[Hashable] | None,
        metric: str,
        strata: Sequence[Hashable] | None = None,
        cluster: str | None = None,
        bounds: tuple[float, float] = (-1.0, 1.0),
    ) -> Estimate:
        ci, g = cluster_ci(
            features,
            statistic,
            clusters=clusters,
            rng=self.rng(metric),
            confidence=self.confidence,
            n_resamples=self.n_resamples,
            method=self.method,
            strata=strata,
            bounds=bounds,
        )
        return Estimate.of(ci, clusters=g, cluster=cluster or self.cluster)

    def mean(
        self,
        x: np.ndarray,
        clusters: Sequence[Hashable] | None,
        metric: str,
        cluster: str | None = None,
        bounds: tuple[float, float] = (0.0, 1.0),
    ) -> Estimate:
        return self.estimate(mean_features(x), ratio(), clusters, metric, cluster=cluster, bounds=bounds)


def _share(num: int, den: int) -> float | None:
    return num / den if den else None


def arm_accuracy(
    rows: Rows, stats: Stats, metric: str, cls: type[ArmAccuracy] = ArmAccuracy, **extra: Any
) -> ArmAccuracy:
    """ITT and answered-only accuracy of one arm's rows, failure rates and leak rate."""
    excluded = 0
    if stats.exclude_leaky:
        leaky = rows.leaky == 1
        excluded = int(leaky.sum())
        rows = rows.take(~leaky)
    answered = rows.stage == ""
    cand_fail = int(np.sum(rows.stage == "candidate"))
    judge_fail = int(np.sum(rows.stage == "judge"))
    ok = rows.take(answered)
    checked = rows.leaky[rows.stage != "candidate"]
    n_leaky = int(np.sum(checked == 1)) if np.any(checked >= 0) else None
    answered_n = len(rows) - cand_fail
    return cls(
        accuracy=stats.mean(rows.itt, stats.clusters(rows), metric),
        answered_accuracy=stats.mean(ok.score, stats.clusters(ok), f"{metric}.answered"),
        items=len(rows),
        candidate_failures=cand_fail,
        judge_failures=judge_fail,
        failure_rate=_share(cand_fail, len(rows)),
        judge_failure_rate=_share(judge_fail, answered_n),
        leaky=n_leaky + excluded if n_leaky is not None else None,
        leak_rate=_share(n_leaky + excluded, answered_n + excluded) if n_leaky is not None else None,
        excluded_leaky=excluded,
        **extra,
    )


def main_figures(rows: Rows, modes: Sequence[str], stats: Stats) -> MainFigures:
    """Accuracy per mode."""
    return MainFigures(
        modes={m: arm_accuracy(rows.take(rows.arm == m), stats, f"accuracy.{m}") for m in modes}
    )


def passk_figures(rows: Rows, k: int, stats: Stats) -> PassKFigures:
    """pass@1..k: ITT (every sample counts; failures are incorrect) and answered-only."""
    items = list(dict.fromkeys(rows.item_id))
    index = {it: i for i, it in enumerate(items)}
    ii = np.fromiter((index[x] for x in rows.item_id), dtype=np.int64, count=len(rows))
    m = len(items)
    n_all = np.bincount(ii, minlength=m)
    ok = rows.stage == ""
    n_ok = np.bincount(ii, weights=ok, minlength=m).astype(int)
    c = np.bincount(ii, weights=rows.itt, minlength=m).astype(int)
    first = np.zeros(m, dtype=np.int64)
    first[ii[::-1]] = np.arange(len(rows))[::-1]  # first row of each item: its persona / prompt
    heads = rows.take(first)
    cl = stats.clusters(heads)
    itt, answered, excluded = {}, {}, {}
    for kk in range(1, k + 1):
        v = np.array([pass_at_k(int(n), int(cc), kk) for n, cc in zip(n_all, c)])
        itt[str(kk)] = stats.mean(v, cl, f"pass@{kk}")
        keep = n_ok >= kk
        va = np.array([pass_at_k(int(n), int(cc), kk) for n, cc in zip(n_ok[keep], c[keep])])
        answered[str(kk)] = stats.mean(va, cl[keep] if cl is not None else None, f"pass@{kk}.answered")
        excluded[str(kk)] = int((~keep).sum())
    cand_fail = int(np.sum(rows.stage == "candidate"))
    judge_fail = int(np.sum(rows.stage == "judge"))
    return PassKFigures(
        pass_at_k=itt,
        answered_pass_at_k=answered,
        items_excluded=excluded,
        samples_per_item=sorted({int(x) for x in n_all}),
        samples=len(rows),
        candidate_failures=cand_fail,
        judge_failures=judge_fail,
        failure_rate=_share(cand_fail, len(rows)),
        judge_failure_rate=_share(judge_fail, len(rows) - cand_fail),
        mean_sample_accuracy=float(rows.itt.mean()) if len(rows) else None,
    )


def _aligned(rows: Rows, arm: str, order: dict[str, int]) -> np.ndarray:
    """ITT scores of ``arm`` in the order of ``order`` (item id -> position)."""
    sub = rows.take(rows.arm == arm)
    out = np.zeros(len(order))
    out[[order[x] for x in sub.item_id]] = sub.itt
    return out


def _kappa_diff(t: np.ndarray) -> np.ndarray:
    k = kappa_from_totals(2)
    return k(t[..., :6]) - k(t[..., 6:])


@dataclass(frozen=True)
class Comparison:
    """One ablated arm against the full arm, next to the control arm (all paired over items)."""

    kappa: Estimate
    kappa_difference: Estimate
    changed_share: Estimate
    changed_share_difference: Estimate
    changed: int

    @property
    def matters(self) -> bool:
        d = self.changed_share_difference
        return d.low is not None and d.low > 0


def compare_to_control(
    full: np.ndarray,
    ablated: np.ndarray,
    control: np.ndarray,
    clusters: np.ndarray | None,
    stats: Stats,
    name: str,
) -> Comparison:
    """kappa(full, ablated), its difference from kappa(full, control), the changed shares and their difference."""
    f, a, c = (np.asarray(x, dtype=np.int64) for x in (full, ablated, control))
    changed, changed_ctl = (f != a).astype(float), (f != c).astype(float)
    both = np.concatenate([kappa_features(f, a, 2), kappa_features(f, c, 2)], axis=1)
    return Comparison(
        kappa=stats.estimate(kappa_features(f, a, 2), kappa_from_totals(2), clusters, f"kappa.{name}"),
        kappa_difference=stats.estimate(
            both, _kappa_diff, clusters, f"kappa.diff.{name}", bounds=(-2.0, 2.0)
        ),
        changed_share=stats.mean(changed, clusters, f"changed.{name}"),
        changed_share_difference=stats.mean(
            changed - changed_ctl, clusters, f"changed.diff.{name}", bounds=(-1.0, 1.0)
        ),
        changed=int(changed.sum()),
    )


def loo_figures(
    rows: Rows, attributes: Sequence[str], stats: Stats, values: dict[str, Sequence[str]] | None = None
) -> LooFigures:
    """Per attribute: kappa and changed share vs the full arm, each against the control arm (paired)."""
    full = rows.take(rows.arm == "full")
    order = {x: i for i, x in enumerate(full.item_id)}
    cl = stats.clusters(full)
    f = full.itt
    ctl = _aligned(rows, "control", order)
    out: dict[str, AttributeEffect] = {}
    for a in attributes:
        arm = f"without:{a}"
        cmp = compare_to_control(f, _aligned(rows, arm, order), ctl, cl, stats, a)
        vals = list(values.get(a, [])) if values else []
        top = max((vals.count(v) for v in set(vals)), default=0)
        out[a] = AttributeEffect(
            accuracy=arm_accuracy(rows.take(rows.arm == arm), stats, f"accuracy.without.{a}"),
            kappa=cmp.kappa,
            kappa_difference=cmp.kappa_difference,
            changed_share=cmp.changed_share,
            changed_share_difference=cmp.changed_share_difference,
            matters=cmp.matters,
            changed=cmp.changed,
            paired_items=len(f),
            distinct_values=len(set(vals)),
            nearly_constant=bool(vals) and top >= 0.95 * len(vals),
        )
    fi, ci = f.astype(np.int64), ctl.astype(np.int64)
    return LooFigures(
        full_accuracy=arm_accuracy(full, stats, "accuracy.full"),
        control_accuracy=arm_accuracy(rows.take(rows.arm == "control"), stats, "accuracy.control"),
        control_kappa=stats.estimate(kappa_features(fi, ci, 2), kappa_from_totals(2), cl, "kappa.control"),
        control_changed_share=stats.mean((fi != ci).astype(float), cl, "changed.control"),
        attributes=out,
    )


def gap_test(rows: Rows, groups: Sequence[str], stats: Stats) -> Gap | None:
    """The largest gap between the groups' ITT accuracies (``stats.max_gap`` on the rows of ``groups``)."""
    keep = np.isin(rows.arm, list(groups))
    if stats.exclude_leaky:
        keep &= rows.leaky != 1
    sub = rows.take(keep)
    test = max_gap(
        sub.itt,
        list(sub.arm),
        stats.clusters(sub),
        rng=stats.rng("gap"),
        confidence=stats.confidence,
        n_resamples=stats.n_resamples,
        n_permutations=stats.n_resamples,
    )
    return (
        None
        if test is None
        else Gap(
            estimate=test.estimate,
            low=test.low,
            high=test.high,
            highest=test.highest,
            lowest=test.lowest,
            p_value=test.p_value,
            critical=test.critical,
            n_permutations=test.n_permutations,
            confidence=stats.confidence,
        )
    )


def intersections_figures(
    rows: Rows, groups: Sequence[str], stats: Stats, extra: dict[str, dict[str, Any]] | None = None
) -> IntersectionsFigures:
    """Accuracy per group and the largest gap (simultaneous interval + permutation p-value)."""
    accs = {
        g: arm_accuracy(
            rows.take(rows.arm == g), stats, f"accuracy.{g}", GroupAccuracy, **((extra or {}).get(g, {}))
        )
        for g in groups
    }
    return IntersectionsFigures(
        groups=accs, largest_gap=gap_test(rows, [g for g in groups if accs[g].items > 0], stats)
    )


__all__ = [
    "Comparison",
    "Rows",
    "Stats",
    "arm_accuracy",
    "compare_to_control",
    "gap_test",
    "intersections_figures",
    "loo_figures",
    "main_figures",
    "passk_figures",
]
