"""Compare candidates on the items they share: leaderboard, paired differences, McNemar.

Two sources of candidates: ``bench run --candidate A --candidate B`` (one item set, one judge, by
construction) and ``bench compare RUN_A RUN_B`` (finished runs; checked to share items, judge and
templates before anything is computed).

Statistics (every interval resamples clusters, by persona unless the runs said otherwise):

- ``paired_difference``: accuracy(a) - accuracy(b) from per-item rows ``[a, b, 1]``; one resample draws
  clusters once for both candidates, so what the candidates share (hard personas, hard questions) cancels.
- ``unpaired_difference``: the same difference with each candidate's clusters drawn independently — the
  interval two separate runs would give; reported beside the paired one to show what pairing buys.
- ``mcnemar_exact``: exact two-sided McNemar test on the discordant items (binomial, p = 1/2); it treats
  items as independent, so with strongly clustered items prefer the paired interval.
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from scipy.special import bdtr

from ..core.errors import UserError
from ..llm.store import connect_readonly
from .analysis import Rows, Stats, arm_accuracy
from .leaderboard import COMPARISON_NAME, Comparison, LeaderboardRow, PairedDifference
from .results import BenchResults, Estimate, read_results
from .stats import cluster_ci, cluster_sums, codes, interval, resampled_totals

CANDIDATES_DIR = "candidates"
TEMPLATE_CHECK_ITEMS = 20  # shared items whose logged prompts are compared between runs


def mcnemar_exact(a_only: int, b_only: int) -> float:
    """Exact two-sided McNemar p-value: 2 P(X <= min(a_only, b_only)), X ~ Binomial(a_only + b_only, 1/2)."""
    n = a_only + b_only
    if n == 0:
        return 1.0
    return float(min(1.0, 2.0 * bdtr(min(a_only, b_only), n, 0.5)))


def _diff(t: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(
            t[..., 2] > 0, (t[..., 0] - t[..., 1]) / np.where(t[..., 2] > 0, t[..., 2], 1), np.nan
        )


def paired_difference(
    a: Sequence[float],
    b: Sequence[float],
    clusters: Sequence[Hashable] | None,
    stats: Stats,
    metric: str,
    cluster: str | None = None,
) -> Estimate:
    """mean(a) - mean(b) over aligned items, clusters resampled together for both (interval in [-1, 1])."""
    a_, b_ = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    feats = np.stack([a_, b_, np.ones_like(a_)], axis=1)
    ci, g = cluster_ci(
        feats,
        _diff,
        clusters=clusters,
        rng=stats.rng(metric),
        confidence=stats.confidence,
        n_resamples=stats.n_resamples,
        method=stats.method,
        bounds=(-1.0, 1.0),
    )
    return Estimate.of(ci, clusters=g, cluster=cluster or stats.cluster)


def unpaired_difference(
    a: Sequence[float],
    b: Sequence[float],
    clusters: Sequence[Hashable] | None,
    stats: Stats,
    metric: str,
    cluster: str | None = None,
) -> Estimate:
    """mean(a) - mean(b), each candidate's clusters drawn independently (percentile interval, widened)."""
    a_, b_ = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    n = len(a_)
    nan = float("nan")
    if n == 0:
        return Estimate(n=0, cluster=cluster or stats.cluster, n_resamples=stats.n_resamples)
    cl, g = codes(clusters, n)
    rng = stats.rng(metric)
    reps = []
    for x in (a_, b_):
        sums = cluster_sums(np.stack([x, np.ones_like(x)], axis=1), cl, g)
        t = resampled_totals(sums, rng, stats.n_resamples)
        with np.errstate(invalid="ignore", divide="ignore"):
            reps.append(np.where(t[:, 1] > 0, t[:, 0] / np.where(t[:, 1] > 0, t[:, 1], 1), nan))
    est = float(a_.mean() - b_.mean())
    ci = interval(
        est,
        reps[0] - reps[1],
        confidence=stats.confidence,
        method="percentile",
        n=n,
        n_resamples=stats.n_resamples,
        n_clusters=g,
        bounds=(-1.0, 1.0),
    )
    return Estimate.of(ci, clusters=g, cluster=cluster or stats.cluster)


@dataclass
class Candidate:
    """One candidate's finished task: its record, its judged rows, where they came from."""

    label: str
    results: BenchResults
    items: pl.DataFrame
    source: str = ""
    call_log: Path | None = None
    tokens: int | None = None
    calls: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _key_frame(c: Candidate) -> pl.DataFrame:
    df = c.items
    need = {"item_id", "arm", "persona_id", "status", "score"}
    missing = sorted(need - set(df.columns))
    if missing:
        raise UserError(f"{c.source or c.label}: items.parquet lacks column {missing[0]!r}")
    cols = {
        "sample_index": pl.lit(0, dtype=pl.Int64),
        "prompt_id": pl.lit(""),
        "question": pl.lit(""),
        "failed_stage": pl.lit(None, dtype=pl.Utf8),
        "candidate_call_id": pl.lit(None, dtype=pl.Utf8),
        "judge_call_id": pl.lit(None, dtype=pl.Utf8),
        "leaky": pl.lit(None, dtype=pl.Boolean),
    }
    df = df.with_columns([v.alias(k) for k, v in cols.items() if k not in df.columns])
    return df.with_columns(
        pl.col("sample_index").cast(pl.Int64).fill_null(0),
        pl.col("prompt_id").cast(pl.Utf8).fill_null(""),
        pl.col("question").cast(pl.Utf8).fill_null(""),
    )


def _settings(c: Candidate) -> dict[str, Any]:
    cfg = c.results.config
    return {
        "cluster": cfg.cluster,
        "confidence": cfg.confidence,
        "n_resamples": cfg.n_resamples,
        "ci_method": cfg.ci_method,
        "exclude_leaky": cfg.exclude_leaky,
    }


def _judge_of(c: Candidate) -> tuple[Any, Any, Any]:
    j = c.results.counts.llm_calls.get("judge")
    return (c.results.models.judge, j.temperature if j else None, j.max_tokens if j else None)


def _logged_messages(db: Path | None, ids: list[str]) -> dict[str, Any]:
    if db is None or not ids:
        return {}
    out: dict[str, Any] = {}
    try:
        conn = connect_readonly(db)
        try:
            for lo in range(0, len(ids), 500):
                chunk = ids[lo : lo + 500]
                q = f"SELECT id, messages FROM calls WHERE id IN ({','.join('?' * len(chunk))})"
                for cid, msgs in conn.execute(q, chunk):
                    out[cid] = json.loads(msgs)
        finally:
            conn.close()
    except Exception:  # an unreadable log only disables the template check (a warning says so)
        return {}
    return out


def _check_templates(cands: list[Candidate], frames: list[pl.DataFrame], warnings: list[str]) -> None:
    """Same item, same request: the logged candidate prompts and judge instructions must agree."""
    base = frames[0].filter(pl.col("status") == "ok").head(TEMPLATE_CHECK_ITEMS)
    if base.is_empty():
        return
    keys = base.select("item_id", "arm", "sample_index").rows()
    per: list[dict[tuple, tuple[Any, Any]]] = []
    for c, df in zip(cands, frames):
        sub = df.join(base.select("item_id", "arm", "sample_index"), on=["item_id", "arm", "sample_index"])
        rows = sub.select("item_id", "arm", "sample_index", "candidate_call_id", "judge_call_id").rows()
        msgs = _logged_messages(c.call_log, [x for r in rows for x in r[3:] if x])
        if not msgs:
            per.append({})
            continue
        per.append(
            {
                tuple(r[:3]): (
                    msgs.get(r[3]) if r[3] else None,
                    (msgs.get(r[4]) or [None])[0] if r[4] else None,
                )
                for r in rows
            }
        )
    checked = [i for i, p in enumerate(per) if p]
    unchecked = [cands[i].label for i, p in enumerate(per) if not p]
    if unchecked and len(cands) > 1:
        warnings.append(
            f"templates not checked for {', '.join(unchecked)} (no readable call log with their prompts)"
        )
    for i, j in combinations(checked, 2):
        for key in keys:
            x, y = per[i].get(key), per[j].get(key)
            if x is None or y is None:
                continue
            if x[0] is not None and y[0] is not None and x[0] != y[0]:
                raise UserError(
                    f"templates differ: the candidate prompt of item {key[0]} ({key[1]}) is not the same "
                    f"in {cands[i].label} and {cands[j].label}"
                )
            if x[1] is not None and y[1] is not None and x[1] != y[1]:
                raise UserError(
                    f"templates differ: the judge instructions for item {key[0]} ({key[1]}) are not the "
                    f"same in {cands[i].label} and {cands[j].label}"
                )


def compare_candidates(cands: list[Candidate], *, check_templates: bool = True) -> Comparison:
    """Leaderboard and pairwise paired differences of ``cands`` on the units (item, arm, sample) all share.

    Refuses (``UserError``, one line) fewer than two candidates, duplicate labels, different tasks,
    judges or judge settings, no shared items, a shared item id that means different (persona, question)
    in two runs, and different logged prompts for the same item.
    """
    if len(cands) < 2:
        raise UserError(f"a comparison needs at least two candidates (got {len(cands)})")
    labels = [c.label for c in cands]
    dup = next((x for x in labels if labels.count(x) > 1), None)
    if dup is not None:
        raise UserError(f"candidate {dup!r} appears twice; compare each candidate once")
    first = cands[0]
    for c in cands[1:]:
        if c.results.task != first.results.task:
            raise UserError(
                f"runs differ in task: {first.label} ran {first.results.task}, {c.label} ran {c.results.task}"
            )
        if c.results.seed != first.results.seed:
            raise UserError(
                f"items differ: {first.label} drew its items with seed {first.results.seed}, {c.label} "
                f"with seed {c.results.seed}"
            )
        if _judge_of(c) != _judge_of(first):
            raise UserError(
                f"runs differ in judge: {first.label} was judged by {_judge_of(first)[0]} "
                f"(temperature {_judge_of(first)[1]}, max tokens {_judge_of(first)[2]}), {c.label} by "
                f"{_judge_of(c)[0]} (temperature {_judge_of(c)[1]}, max tokens {_judge_of(c)[2]})"
            )
    if first.results.task == "agreement":
        raise UserError("task agreement has no candidate to compare (it compares judges with human labels)")
    warnings: list[str] = []
    for c in cands[1:]:
        diff = {k: (v, _settings(c)[k]) for k, v in _settings(first).items() if _settings(c)[k] != v}
        if diff:
            k, (v1, v2) = next(iter(diff.items()))
            warnings.append(
                f"{c.label} was run with {k} = {v2} ({first.label}: {v1}); the comparison uses "
                f"{first.label}'s settings"
            )
    frames = [_key_frame(c) for c in cands]
    key = ["item_id", "arm", "sample_index"]
    empty = next((c for c, f in zip(cands, frames) if f.is_empty()), None)
    if empty is not None:
        raise UserError(f"{empty.source or empty.label}: an empty run (no judged items)")
    shared = frames[0].select(key + ["persona_id", "prompt_id", "question"])
    for c, f in zip(cands[1:], frames[1:]):
        joined = shared.join(f.select(key + ["persona_id", "prompt_id", "question"]), on=key, suffix="_other")
        bad = joined.filter(
            (pl.col("persona_id") != pl.col("persona_id_other"))
            | (pl.col("prompt_id") != pl.col("prompt_id_other"))
            | (pl.col("question") != pl.col("question_other"))
        )
        if not bad.is_empty():
            r = bad.row(0, named=True)
            what = (
                "persona"
                if r["persona_id"] != r["persona_id_other"]
                else "prompt"
                if r["prompt_id"] != r["prompt_id_other"]
                else "question"
            )
            raise UserError(
                f"items differ: item {r['item_id']} ({r['arm']}) has a different {what} in "
                f"{first.label} and {c.label}"
            )
        shared = joined.select(key + ["persona_id", "prompt_id", "question"])
    if shared.is_empty():
        sizes = ", ".join(f"{c.label}: {len(f)}" for c, f in zip(cands, frames))
        raise UserError(
            f"items differ: the runs share no items ({sizes} rows; different seeds, splits or inputs?)"
        )
    for c, f in zip(cands, frames):
        if len(f) > len(shared):
            warnings.append(
                f"{c.label}: {len(f) - len(shared)} of {len(f)} rows are not in every run and are left out"
            )
    if check_templates:
        _check_templates(cands, frames, warnings)
    s = _settings(first)
    stats = Stats(
        seed=first.results.seed,
        task=f"{first.results.task}.compare",
        cluster=s["cluster"],
        confidence=s["confidence"],
        n_resamples=s["n_resamples"],
        method=s["ci_method"],
        exclude_leaky=s["exclude_leaky"],
    )
    order = shared.with_row_index("_order").select(key + ["_order"])
    aligned = [order.join(f, on=key).sort("_order") for f in frames]
    arms = list(dict.fromkeys(aligned[0]["arm"].to_list()))
    rows_by: list[Rows] = []
    for df in aligned:
        stage = [
            ("" if st == "ok" else (fs or "unknown")) for st, fs in zip(df["status"], df["failed_stage"])
        ]
        rows_by.append(
            Rows.build(
                arm=df["arm"].to_list(),
                item_id=df["item_id"].to_list(),
                persona_id=df["persona_id"].to_list(),
                prompt_id=df["prompt_id"].to_list(),
                score=[np.nan if x is None else float(x) for x in df["score"].to_list()],
                stage=stage,
                sample_index=df["sample_index"].to_list(),
                leaky=[-1 if x is None else int(x) for x in df["leaky"].to_list()],
            )
        )
    board: list[LeaderboardRow] = []
    diffs: list[PairedDifference] = []
    for arm in arms:
        mask = rows_by[0].arm == arm
        arm_rows = [r.take(mask) for r in rows_by]
        accs = [arm_accuracy(r, stats, f"accuracy.{arm}") for r in arm_rows]
        ranked = sorted(
            range(len(cands)),
            key=lambda i: -(accs[i].accuracy.estimate if accs[i].accuracy.estimate is not None else -1),
        )
        for rank, i in enumerate(ranked, 1):
            a = accs[i]
            board.append(
                LeaderboardRow(
                    candidate=cands[i].label,
                    arm=arm,
                    accuracy=a.accuracy,
                    answered_accuracy=a.answered_accuracy.estimate,
                    failure_rate=a.failure_rate,
                    items=a.items,
                    rank=rank,
                    calls=cands[i].calls,
                    tokens=cands[i].tokens,
                )
            )
        clusters = stats.clusters(arm_rows[0])
        for i, j in combinations(range(len(cands)), 2):
            x, y = arm_rows[i].itt, arm_rows[j].itt
            metric = f"difference.{arm}.{i}.{j}"
            diffs.append(
                PairedDifference(
                    a=cands[i].label,
                    b=cands[j].label,
                    arm=arm,
                    difference=paired_difference(x, y, clusters, stats, metric),
                    unpaired=unpaired_difference(x, y, clusters, stats, f"{metric}.unpaired"),
                    items=len(x),
                    a_only=int(np.sum((x == 1) & (y == 0))),
                    b_only=int(np.sum((x == 0) & (y == 1))),
                    mcnemar_p=mcnemar_exact(
                        int(np.sum((x == 1) & (y == 0))), int(np.sum((x == 0) & (y == 1)))
                    ),
                )
            )
    return Comparison(
        task=first.results.task,
        seed=first.results.seed,
        judge=first.results.models.judge,
        cluster=s["cluster"],
        n_resamples=s["n_resamples"],
        candidates=labels,
        sources={c.label: c.source for c in cands if c.source},
        items=len(shared),
        leaderboard=board,
        differences=diffs,
        warnings=warnings,
    )


# -- finished runs ----------------------------------------------------------------------------------------


def find_call_log(d: Path, levels: int = 3) -> Path | None:
    """The ``calls.db`` of a task directory: in it or in one of its ``levels`` parents."""
    p = d
    for _ in range(levels + 1):
        if (p / "calls.db").is_file():
            return p / "calls.db"
        if p.parent == p:
            break
        p = p.parent
    return None


def call_totals(db: Path | None, ids: Sequence[str]) -> tuple[int | None, int | None]:
    """(calls, prompt + completion tokens) of the logged calls with these ids; (None, None) without a log."""
    if db is None:
        return None, None
    ids = sorted({x for x in ids if x})
    calls = tokens = 0
    try:
        conn = connect_readonly(db)
        try:
            for lo in range(0, len(ids), 500):
                chunk = ids[lo : lo + 500]
                q = (
                    f"SELECT COUNT(*), SUM(prompt_tokens + completion_tokens) FROM calls WHERE id IN "
                    f"({','.join('?' * len(chunk))})"
                )
                n, t = conn.execute(q, chunk).fetchone()
                calls += int(n or 0)
                tokens += int(t or 0)
        finally:
            conn.close()
    except Exception:  # no readable log: the leaderboard leaves the columns empty
        return None, None
    return calls, tokens


def load_task_dir(d: Path, label: str | None = None) -> Candidate:
    """One candidate from a directory holding ``results.json`` and ``items.parquet``."""
    if not (d / "results.json").is_file():
        raise UserError(f"{d}: no bench results (results.json) in it")
    res = read_results(d)
    items_path = d / "items.parquet"
    if not items_path.is_file():
        raise UserError(f"{d}: no items.parquet next to results.json (an empty or unfinished run)")
    try:
        items = pl.read_parquet(items_path)
    except Exception as exc:  # polars raises several types for a damaged file
        raise UserError(f"{items_path}: not a readable items table ({str(exc).splitlines()[0]})") from None
    if items.is_empty():
        raise UserError(f"{d}: an empty run (no judged items)")
    log = find_call_log(d)
    ids = [
        x
        for col in ("candidate_call_id", "judge_call_id")
        if col in items.columns
        for x in items[col].to_list()
        if x
    ]
    calls, tokens = call_totals(log, ids)
    name = label or res.models.candidate or d.name
    return Candidate(
        label=name,
        results=res,
        items=items,
        source=str(d),
        call_log=log,
        calls=calls if calls is not None else res.counts.llm_calls_total,
        tokens=tokens,
    )


def load_runs(paths: Sequence[str | Path]) -> list[Candidate]:
    """Candidates from finished runs: task directories, ``results.json`` files, or multi-candidate task
    directories (their ``candidates/*``). Labels are model strings; two runs of one model get their path."""
    cands: list[Candidate] = []
    for raw in paths:
        p = Path(raw)
        if p.is_file() and p.name == "results.json":
            p = p.parent
        if not p.is_dir():
            raise UserError(f"{p}: no such run directory")
        if (p / COMPARISON_NAME).is_file() and (p / CANDIDATES_DIR).is_dir():
            subs = sorted(x for x in (p / CANDIDATES_DIR).iterdir() if (x / "results.json").is_file())
            if not subs:
                raise UserError(f"{p}: an empty run (no candidate results in {CANDIDATES_DIR}/)")
            cands += [load_task_dir(x) for x in subs]
        else:
            cands.append(load_task_dir(p))
    labels = [c.label for c in cands]
    for c in cands:
        if labels.count(c.label) > 1:
            c.label = f"{c.label} ({c.source})"
    return cands


def compare_runs(paths: Sequence[str | Path]) -> Comparison:
    """``bench compare``: the comparison of finished runs on the items they share."""
    if not paths:
        raise UserError("bench compare needs at least two runs")
    return compare_candidates(load_runs(paths))


__all__ = [
    "CANDIDATES_DIR",
    "Candidate",
    "call_totals",
    "compare_candidates",
    "compare_runs",
    "find_call_log",
    "load_runs",
    "load_task_dir",
    "mcnemar_exact",
    "paired_difference",
    "unpaired_difference",
]
