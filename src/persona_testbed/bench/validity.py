"""Does the bench recover known truth? The scripted world's probability model, simulated fast.

``simulate_*`` draw judged rows straight from a ``WorldSpec`` (the model the ``scripted:`` backend
plays, see ``llm.backends.scripted``) without LLM calls, vectorised with numpy, and the *same* analysis
functions a run uses (``bench.analysis``) turn them into figures. Over many seeds that measures the
coverage of every interval and the power and size of every test: ``coverage_*`` below, used by the tests
(100 seeds in seconds) and by ``benchmarks/bench_validity.py`` (the tables in docs/bench.md).

The model per judged unit: the candidate fails with probability ``fail[mode]``; otherwise it
personalises when ``u < p`` where ``u`` is its persona's latent draw with probability ``c`` and a fresh
draw otherwise; an answer written without an attribute in ``uses`` never passes; the judge fails with
probability ``judge_fail``; a personalised, judged answer passes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..llm.world import WorldSpec, parse_world
from .analysis import Rows, Stats, arm_accuracy, compare_to_control, gap_test, passk_figures


@dataclass(frozen=True)
class Population:
    """The persona x prompt population items are drawn from."""

    personas: int = 50
    prompts: int = 20


def world(spec: str | WorldSpec) -> WorldSpec:
    return spec if isinstance(spec, WorldSpec) else parse_world(spec)


def true_accuracy(spec: WorldSpec, mode: str = "persona", delta: float = 0.0) -> tuple[float, float]:
    """(answered-only, intent-to-treat) accuracy the world implies for a mode (and a group shift)."""
    p = min(1.0, max(0.0, spec.p.get(mode, 0.0) + delta))
    return p, p * (1 - spec.fail.get(mode, 0.0)) * (1 - spec.judge_fail)


def true_pass_at_k(spec: WorldSpec, k: int, mode: str = "persona") -> float:
    """Closed-form pass@k of independent samples (c = 0): 1 - (1 - q)^k, q the per-sample ITT success."""
    _, q = true_accuracy(spec, mode)
    return 1 - (1 - q) ** k


def _items(g: np.random.Generator, n: int, pop: Population) -> tuple[np.ndarray, np.ndarray]:
    idx = g.choice(pop.personas * pop.prompts, size=n, replace=False)
    return idx // pop.prompts, idx % pop.prompts


def _outcomes(
    g: np.random.Generator,
    spec: WorldSpec,
    mode: str,
    persona: np.ndarray,
    latent: np.ndarray,
    p: np.ndarray | float,
    *,
    broken: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(score, stage, leaky) of one arm's judged units."""
    n = len(persona)
    fail = g.random(n) < spec.fail.get(mode, 0.0)
    u = np.where(g.random(n) < spec.c, latent[persona], g.random(n))
    personal = (u < p) & (not broken)
    jfail = g.random(n) < spec.judge_fail
    stage = np.where(fail, "candidate", np.where(jfail, "judge", "")).astype(object)
    score = np.where(stage == "", personal.astype(float), np.nan)
    leaky = (g.random(n) < spec.leak).astype(np.int8)
    return score, stage, leaky


def _rows(
    arm: str,
    persona: np.ndarray,
    prompt: np.ndarray,
    score: np.ndarray,
    stage: np.ndarray,
    leaky: np.ndarray,
    sample: np.ndarray | None = None,
    prefix: str = "p",
) -> Rows:
    pid = np.char.add(prefix, persona.astype(str)).astype(object)
    qid = np.char.add("q", prompt.astype(str)).astype(object)
    return Rows.build(
        arm=np.full(len(persona), arm, dtype=object),
        item_id=pid + ":" + qid,
        persona_id=pid,
        prompt_id=qid,
        score=score,
        stage=stage,
        sample_index=sample,
        leaky=leaky,
    )


def _concat(parts: Sequence[Rows]) -> Rows:
    return Rows(**{k: np.concatenate([getattr(r, k) for r in parts]) for k in Rows.__dataclass_fields__})


def simulate_main(
    spec: str | WorldSpec,
    seed: int,
    n: int,
    modes: Sequence[str] = ("persona",),
    pop: Population = Population(),
) -> Rows:
    """Task main's rows: ``n`` items, every mode on the same items."""
    w = world(spec)
    g = np.random.default_rng([seed, 11])
    persona, prompt = _items(g, n, pop)
    latent = g.random(pop.personas)
    out = []
    for m in modes:
        p = 0.0 if m == "baseline" else w.p.get(m, 0.0)
        out.append(_rows(m, persona, prompt, *_outcomes(g, w, m, persona, latent, p)))
    return _concat(out)


def simulate_passk(
    spec: str | WorldSpec, seed: int, n: int, samples: int, pop: Population = Population()
) -> Rows:
    """Task passk's rows: ``samples`` independent samples of ``n`` items (persona mode)."""
    w = world(spec)
    g = np.random.default_rng([seed, 12])
    persona, prompt = _items(g, n, pop)
    latent = g.random(pop.personas)
    rp, rq = np.repeat(persona, samples), np.repeat(prompt, samples)
    return _rows(
        "persona",
        rp,
        rq,
        *_outcomes(g, w, "persona", rp, latent, w.p["persona"]),
        sample=np.tile(np.arange(samples), n),
    )


def simulate_loo(
    spec: str | WorldSpec, seed: int, n: int, attributes: Sequence[str], pop: Population = Population()
) -> Rows:
    """Task loo's rows (candidate ablation): full, control and one arm per attribute."""
    w = world(spec)
    g = np.random.default_rng([seed, 13])
    persona, prompt = _items(g, n, pop)
    latent = g.random(pop.personas)
    p = w.p["persona"]
    arms = [("full", False), ("control", False)] + [(f"without:{a}", a in w.uses) for a in attributes]
    return _concat(
        [
            _rows(arm, persona, prompt, *_outcomes(g, w, "persona", persona, latent, p, broken=broken))
            for arm, broken in arms
        ]
    )


def simulate_intersections(
    spec: str | WorldSpec,
    seed: int,
    n_per_group: int,
    deltas: Sequence[float],
    pop: Population = Population(personas=30),
) -> Rows:
    """Task intersections' rows: one group per entry of ``deltas`` (its shift of p), disjoint personas."""
    w = world(spec)
    g = np.random.default_rng([seed, 14])
    out = []
    for k, d in enumerate(deltas):
        persona, prompt = _items(g, n_per_group, pop)
        latent = g.random(pop.personas)
        p = min(1.0, max(0.0, w.p["persona"] + d))
        out.append(
            _rows(f"g{k}", persona, prompt, *_outcomes(g, w, "persona", persona, latent, p), prefix=f"g{k}p")
        )
    return _concat(out)


# -- coverage and power over seeds ------------------------------------------------------------------------


def _covers(e, truth: float) -> bool:
    return e.low is not None and e.low <= truth <= e.high


@dataclass(frozen=True)
class Rates:
    """Shares of seeds (out of ``seeds``) for which a statement held."""

    seeds: int
    rates: dict[str, float]


def coverage_main(
    spec: str | WorldSpec,
    seeds: int = 100,
    n: int = 200,
    *,
    cluster: str = "persona",
    n_resamples: int = 1000,
    pop: Population = Population(),
) -> Rates:
    """Coverage of the ITT and answered-only intervals of the persona mode."""
    w = world(spec)
    p, itt = true_accuracy(w)
    hits = {"answered covers p": 0, "ITT covers p(1-f)(1-jf)": 0}
    for s in range(seeds):
        f = arm_accuracy(
            simulate_main(w, s, n, pop=pop),
            Stats(
                seed=s,
                task="main",
                cluster=cluster,  # type: ignore[arg-type]
                n_resamples=n_resamples,
            ),
            "accuracy.persona",
        )
        hits["answered covers p"] += _covers(f.answered_accuracy, p)
        hits["ITT covers p(1-f)(1-jf)"] += _covers(f.accuracy, itt)
    return Rates(seeds, {k: v / seeds for k, v in hits.items()})


def coverage_passk(
    spec: str | WorldSpec,
    seeds: int = 100,
    n: int = 100,
    k: int = 3,
    *,
    n_resamples: int = 1000,
    pop: Population = Population(),
) -> Rates:
    """Coverage of pass@k's interval of the closed form, and the mean estimate's distance from it."""
    w = world(spec)
    hits, est = 0, []
    truth = true_pass_at_k(w, k)
    for s in range(seeds):
        f = passk_figures(
            simulate_passk(w, s, n, k, pop=pop), k, Stats(seed=s, task="passk", n_resamples=n_resamples)
        )
        e = f.pass_at_k[str(k)]
        hits += _covers(e, truth)
        est.append(e.estimate)
    return Rates(
        seeds, {f"covers pass@{k}": hits / seeds, "mean estimate - closed form": float(np.mean(est)) - truth}
    )


def coverage_loo(
    spec: str | WorldSpec,
    seeds: int = 100,
    n: int = 200,
    *,
    used: str,
    ignored: str,
    cluster: str = "persona",
    n_resamples: int = 1000,
    pop: Population = Population(),
) -> Rates:
    """Size and power of the LOO comparisons against the control arm (``analysis.compare_to_control``)."""
    w = world(spec)
    hits = {
        "ignored: kappa diff CI includes 0": 0,
        "ignored: changed diff CI includes 0": 0,
        "used: kappa diff CI below 0": 0,
        "used: matters": 0,
        "ignored: raw kappa CI excludes 1": 0,
    }
    for s in range(seeds):
        rows = simulate_loo(w, s, n, [used, ignored], pop=pop)
        stats = Stats(seed=s, task="loo", cluster=cluster, n_resamples=n_resamples)  # type: ignore[arg-type]
        full = rows.take(rows.arm == "full")
        arm = {a: rows.take(rows.arm == a).itt for a in ("control", f"without:{used}", f"without:{ignored}")}
        cl = stats.clusters(full)
        ig = compare_to_control(full.itt, arm[f"without:{ignored}"], arm["control"], cl, stats, ignored)
        us = compare_to_control(full.itt, arm[f"without:{used}"], arm["control"], cl, stats, used)
        hits["ignored: kappa diff CI includes 0"] += _covers(ig.kappa_difference, 0.0)
        hits["ignored: changed diff CI includes 0"] += _covers(ig.changed_share_difference, 0.0)
        hits["used: kappa diff CI below 0"] += (
            us.kappa_difference.high is not None and us.kappa_difference.high < 0
        )
        hits["used: matters"] += us.matters
        hits["ignored: raw kappa CI excludes 1"] += ig.kappa.high is not None and ig.kappa.high < 1
    return Rates(seeds, {k: v / seeds for k, v in hits.items()})


def coverage_gap(
    spec: str | WorldSpec,
    deltas: Sequence[float],
    seeds: int = 100,
    n_per_group: int = 200,
    *,
    alpha: float = 0.05,
    cluster: str = "persona",
    n_resamples: int = 1000,
    pop: Population = Population(personas=30),
) -> Rates:
    """Rejection rate of the max-gap permutation test, and of the simultaneous interval's lower bound > 0."""
    w = world(spec)
    names = [f"g{k}" for k in range(len(deltas))]
    true_gap = max(deltas) - min(deltas)
    hits = {"permutation p < alpha": 0, "CI lower bound > 0": 0, "CI covers true gap": 0}
    for s in range(seeds):
        gap = gap_test(
            simulate_intersections(w, s, n_per_group, deltas, pop=pop),
            names,
            Stats(seed=s, task="intersections", cluster=cluster, n_resamples=n_resamples),
        )  # type: ignore[arg-type]
        assert gap is not None
        hits["permutation p < alpha"] += gap.p_value < alpha
        hits["CI lower bound > 0"] += gap.low > 0
        itt_gap = true_gap * (1 - w.fail["persona"]) * (1 - w.judge_fail)
        hits["CI covers true gap"] += gap.low <= itt_gap <= gap.high
    return Rates(seeds, {k: v / seeds for k, v in hits.items()})


__all__ = [
    "Population",
    "Rates",
    "coverage_gap",
    "coverage_loo",
    "coverage_main",
    "coverage_passk",
    "simulate_intersections",
    "simulate_loo",
    "simulate_main",
    "simulate_passk",
    "true_accuracy",
    "true_pass_at_k",
]
