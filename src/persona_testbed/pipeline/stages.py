"""The pipeline's stages: thin adapters from a ``RunConfig`` to each stage's library function.

Each adapter reads its inputs from the run directory, calls the stage library (census, personas,
enrichment, prompts, feedback, bench, report), writes artifacts under ``RUN/<stage>/`` and returns a
``StageOutcome`` (counts, recorded failures, artifact paths). LLM calls go through clients whose call
log is the run's ``calls.db``, so a re-run replays every finished call.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .config import RunConfig
from ..core.errors import UserError
from .engine import ItemFailure, Stage, StageContext, StageOutcome
from ..core.atomic import atomic_write_text


def _write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, default=str))


def personas_path(run_path: Path, cfg: RunConfig) -> Path:
    """The personas later stages use: the enriched set when enrichment is on, else the sampled set."""
    if cfg.personas.enrich.enabled:
        return run_path / "enrich" / "personas.jsonl"
    return run_path / "personas" / "personas.jsonl"


# -- census ---------------------------------------------------------------------------------------------

def _open_source(cfg: RunConfig) -> Any:
    from ..census.source import open_source

    return open_source(cfg.census.source, states=cfg.census.states or None, data_dir=cfg.data.dir)


def run_census(ctx: StageContext) -> StageOutcome:
    """Open and check the census source (files, checksums, dictionary year, record counts)."""
    src = _open_source(ctx.config)
    inputs = [i.model_dump(mode="json") for i in src.inputs]
    rows = src.row_count()
    doc = {"source": src.name, "year": src.year, "states": list(src.states), "persons": rows,
           "checksum": src.checksum, "inputs": inputs,
           "dictionary": getattr(src.dictionary, "year", None)}
    out = ctx.dir / "source.json"
    _write_json(out, doc)
    return StageOutcome(items=len(inputs), ok=len(inputs), artifacts=[ctx.rel(out)],
                        summary={"source": src.name, "year": src.year, "persons": rows,
                                 "states": len(doc["states"])})


# -- personas -------------------------------------------------------------------------------------------

def _sample(cfg: RunConfig, n: int, seed: int) -> Any:
    from ..personas import sample_personas

    c = cfg.census
    return sample_personas(n, seed, source=c.source, states=c.states or None, adults_only=c.adults_only,
                           min_age=c.min_age, max_age=c.max_age, quota_by=c.quota_by or None, rake=c.rake,
                           replace=c.replacement, data_dir=cfg.data.dir)


def _fidelity(ctx: StageContext, personas: list[Any], personas_file: Path) -> dict[str, Any]:
    """Census fidelity in the report's format: the personas module's report (full weighted source)."""
    from ..personas.fidelity import CODED, HOUSING, fidelity
    from ..personas.fidelity_document import from_personas_fidelity

    cfg = ctx.config
    try:
        rep = fidelity(personas_file, data_dir=cfg.data.dir)
    except UserError as exc:  # e.g. a source the comparison cannot read: fall back to a reference draw
        from ..core.seeds import derive_int
        from ..personas.fidelity_document import fidelity_document

        reference = _sample(cfg, cfg.census.fidelity_reference, derive_int(cfg.seed, "fidelity.reference")).personas
        doc = fidelity_document(personas, reference, f"reference draw of {len(reference)} census records "
                                                     f"(full-source comparison unavailable: {exc})")
        return doc
    dictionary = _open_source(cfg).dictionary
    variables = {**CODED, **HOUSING}

    def label(field: str, code: str) -> str | None:
        var = variables.get(field)
        return dictionary.label(var, code) if var else None

    return from_personas_fidelity(rep, label)


def run_personas(ctx: StageContext) -> StageOutcome:
    """Census-grounded personas (33 fields with provenance) and their census fidelity."""
    from ..personas import write_personas

    cfg = ctx.config
    res = _sample(cfg, cfg.personas.n, cfg.seed)
    # the sampler's report sits next to the personas (the fidelity comparison reads its filters from it)
    _write_json(ctx.dir / "personas_report.json", res.report)
    paths = write_personas(res.personas, ctx.dir, extra_manifest={"report": res.report})
    fid = ctx.dir / "fidelity.json"
    _write_json(fid, _fidelity(ctx, res.personas, paths["jsonl"]))
    arts = [ctx.rel(paths["jsonl"]), ctx.rel(paths["parquet"]), ctx.rel(fid)]
    rules = res.report.get("rules", {})
    return StageOutcome(items=len(res.personas), ok=len(res.personas), artifacts=arts,
                        summary={"rule_checks": rules.get("checked"), "seconds": res.report.get("seconds")})


def run_enrich(ctx: StageContext) -> StageOutcome:
    """LLM enrichment of the open-ended fields, consistency judge, resampling of rejected personas."""
    from ..personas import read_personas, write_personas
    from ..personas.enrich import enrich_personas
    from ..core.seeds import derive_int

    cfg = ctx.config
    personas = read_personas(ctx.run.path / "personas" / "personas.jsonl")
    client = ctx.client("enrich")
    judge = ctx.client("judge") if cfg.personas.enrich.judge else None

    def resample(original: Any, attempt: int) -> Any:
        return _sample(cfg, 1, derive_int(cfg.seed, "enrich.resample", original.id, attempt)).personas[0]

    res = ctx.run_async(lambda: enrich_personas(personas, client, cfg.seed, judge_client=judge, resample=resample,
                                                max_resamples=cfg.personas.enrich.max_resamples,
                                                progress=not ctx.quiet))
    failures = [ItemFailure(item=f.persona_id, reason=f"{f.stage}: {f.error}") for f in res.failures]
    if not res.personas:
        raise UserError(f"enrichment: no persona was enriched ({failures[0].reason if failures else 'no input'})")
    paths = write_personas(res.personas, ctx.dir, extra_manifest={"enrich_report": {
        k: v for k, v in res.report.items() if k not in ("outcomes",)}})
    _write_json(ctx.dir / "enrich_report.json", res.report)
    return StageOutcome(items=len(personas), ok=len(personas) - len(failures), failed=len(failures),
                        failures=failures, artifacts=[ctx.rel(paths["jsonl"]), ctx.rel(paths["parquet"])],
                        summary={"accepted": len(res.personas)})


# -- prompts --------------------------------------------------------------------------------------------

def _prompt_items(cfg: RunConfig) -> tuple[str, list[tuple[int, str]], bool]:
    from ..prompts.load import load_prompt_file

    if cfg.prompts.source == "prism":
        from ..data import resolve
        from ..prompts.load import PRISM_RELPATH

        path = resolve(PRISM_RELPATH, data_dir=cfg.data.dir)
        return path.name, load_prompt_file(path), True
    return Path(cfg.prompts.source).name, load_prompt_file(cfg.prompts.source), False


def run_prompts(ctx: StageContext) -> StageOutcome:
    """PRISM (or a user file) → filters (+ LLM controversy classifier) → clusters → train/held-out split."""
    from ..prompts import PRISM_ATTRIBUTION, PromptBuildConfig, abuild_prompts, prompt_stats, write_prompts
    from ..prompts.controversy import CONTROVERSY_TEMPLATE_VERSION
    from ..prompts.record import FILTER_ORDER

    cfg = ctx.config
    name, items, is_prism = _prompt_items(cfg)
    pbc = PromptBuildConfig(seed=cfg.seed, limit=cfg.prompts.limit, held_out_fraction=cfg.prompts.held_out_fraction,
                            clusters=cfg.prompts.clusters, controversy=cfg.prompts.classify,
                            concurrency=cfg.llm.concurrency)
    client = ctx.client("prompts") if cfg.prompts.classify else None
    prompts = ctx.run_async(lambda: abuild_prompts(items, client, pbc, name))
    kept = [p for p in prompts if p.kept]
    if not kept:
        raise UserError(f"prompts: no prompt of {name} passed the filters (nothing to ask)")
    write_prompts(prompts, ctx.dir, {"source": name, "model": cfg.models.for_role("prompts") if client else None,
                                     "config": pbc.model_dump(), "filter_order": list(FILTER_ORDER),
                                     "controversy_template_version": CONTROVERSY_TEMPLATE_VERSION,
                                     "attribution": PRISM_ATTRIBUTION if is_prism else None})
    stats = prompt_stats(prompts)
    funnel = [{"step": f"loaded from {name}", "count": stats["prompts"]}]
    for row in stats["filters"]:
        if row["evaluated"]:
            funnel.append({"step": f"passed {row['filter']}", "count": row["pass"]})
    clusters = [{"cluster": c["cluster"], "label": c["label"], "size": c["total"], "train": c["train"],
                 "held_out": c["held_out"]} for c in stats["clusters"]]
    _write_json(ctx.dir / "summary.json", {"funnel": funnel, "clusters": clusters, "stats": stats})
    failures = []
    for p in prompts:
        for fname, verdict in p.verdicts.items():
            if verdict.verdict == "error":
                failures.append(ItemFailure(item=p.id, reason=f"{fname}: {verdict.reason}"))
    artifacts = [ctx.rel(ctx.dir / n) for n in ("prompts.jsonl", "prompts.parquet", "summary.json")
                 if (ctx.dir / n).exists()]
    return StageOutcome(items=len(prompts), ok=len(prompts) - len(failures), failed=len(failures),
                        failures=failures, artifacts=artifacts,
                        summary={"kept": len(kept), "splits": stats["splits"]})


# -- feedback -------------------------------------------------------------------------------------------

def feedback_config(cfg: RunConfig) -> Any:
    """The ``FeedbackConfig`` a run's feedback stage uses (also read by ``status`` for its checkpoint key)."""
    from ..feedback.generate import FeedbackConfig
    from ..feedback.plan import PairCounts

    return FeedbackConfig(seed=cfg.seed, persona_format=cfg.personas.render, temperature=cfg.llm.temperature,
                          max_tokens=cfg.llm.max_tokens, validate_pairs=cfg.feedback.validate_pairs,
                          counts=PairCounts(**cfg.feedback.pairs.model_dump()), concurrency=cfg.llm.concurrency)


def run_feedback(ctx: StageContext) -> StageOutcome:
    """DPF pairs (rejected → critique → chosen, judged in both orders), checkpointed, resumable."""
    from ..feedback.generate import FeedbackResult, agenerate_pairs
    from ..feedback.io import CHECKPOINT_NAME, Checkpoint, write_pairs
    from ..feedback.plan import plan_pairs
    from ..feedback.progress import PairProgress
    from ..feedback.stats import feedback_stats
    from ..personas import read_personas
    from ..prompts import read_prompts

    cfg = ctx.config
    personas = read_personas(personas_path(ctx.run.path, cfg))
    prompts = read_prompts(ctx.run.path / "prompts")
    fc = feedback_config(cfg)
    client = ctx.client("feedback")
    planned = plan_pairs(personas, prompts, fc.counts, fc.seed)  # UserError: counts larger than a pool
    checkpoint = Checkpoint(ctx.dir / CHECKPOINT_NAME).open()

    async def generate() -> tuple[list[Any], int]:
        if ctx.quiet:
            return await agenerate_pairs(personas, prompts, client, fc, checkpoint=checkpoint, planned=planned)
        with PairProgress(total=len(planned)) as bar:
            return await agenerate_pairs(personas, prompts, client, fc, checkpoint=checkpoint, planned=planned,
                                         on_pair=bar.update)

    try:
        pairs, _reused = ctx.run_async(generate)
    finally:
        checkpoint.close()
    write_pairs(pairs, ctx.dir)
    res = FeedbackResult(pairs=pairs, stats=feedback_stats(pairs))
    failures = [ItemFailure(item=p.id, reason=p.error or "failed") for p in res.pairs if p.status != "ok"]
    artifacts = [ctx.rel(ctx.dir / n) for n in ("pairs.jsonl", "pairs.parquet") if (ctx.dir / n).exists()]
    _write_json(ctx.dir / "stats.json", res.stats)
    artifacts.append(ctx.rel(ctx.dir / "stats.json"))
    return StageOutcome(items=len(res.pairs), ok=len(res.pairs) - len(failures), failed=len(failures),
                        failures=failures, artifacts=artifacts,
                        summary={k: v for k, v in res.stats.items() if not isinstance(v, (list, dict))})


# -- bench ----------------------------------------------------------------------------------------------

def _ci(d: dict[str, Any] | None) -> dict[str, Any]:
    d = d or {}
    return {"accuracy": d.get("estimate"), "ci_low": d.get("low"), "ci_high": d.get("high"), "n": d.get("n"),
            "failed": d.get("failures", 0)}


def bench_summary(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The report's view of the bench (``bench/summary.json``) from each task's ``results.json``."""
    out: dict[str, Any] = {}
    for name, res in results.items():
        fig = res.get("figures") or {}
        if name == "main":
            out["main"] = {"modes": [{"mode": m, **_ci(ci)} for m, ci in (fig.get("accuracy") or {}).items()]}
        elif name == "passk":
            ks = sorted((fig.get("pass_at_k") or {}), key=int)
            out["passk"] = {"k": [int(k) for k in ks], "pass_at_k": [fig["pass_at_k"][k].get("estimate") for k in ks],
                            "ci_low": [fig["pass_at_k"][k].get("low") for k in ks],
                            "ci_high": [fig["pass_at_k"][k].get("high") for k in ks]}
        elif name == "loo":
            out["loo"] = {"full_accuracy": (fig.get("full_accuracy") or {}).get("estimate"), "attributes": [
                {"attribute": a, "kappa": v["kappa"].get("estimate"), "ci_low": v["kappa"].get("low"),
                 "ci_high": v["kappa"].get("high"), "n": v.get("paired_items")}
                for a, v in (fig.get("attributes") or {}).items()]}
        elif name == "intersections":
            out["intersections"] = {"max_gap": (fig.get("largest_gap") or {}).get("estimate"), "groups": [
                {"group": g, **_ci(ci)} for g, ci in (fig.get("groups") or {}).items()]}
        elif name == "fidelity":
            matrix = fig.get("matrix") or {}
            out["fidelity"] = {"accuracy": (fig.get("accuracy") or {}).get("estimate"),
                               "kappa": (fig.get("kappa") or {}).get("estimate"),
                               "position_bias": fig.get("position_bias"),
                               "n": (fig.get("accuracy") or {}).get("n"),
                               "labels": matrix.get("personas"), "matrix": matrix.get("win_rate"),
                               "mean_diagonal_rank": matrix.get("mean_diagonal_rank")}
        else:
            out[name] = fig
    return out


def run_bench(ctx: StageContext) -> StageOutcome:
    """Every configured PERSONA Bench task; per-item failures and task-level input problems are recorded."""
    import tomli_w

    from ..bench.runner import arun_task
    from ..llm import CallStore, ChatParams
    from ..personas import read_personas

    cfg = ctx.config
    b = cfg.bench
    personas = read_personas(personas_path(ctx.run.path, cfg))
    candidate = ctx.client("candidate")
    judge = ctx.client("judge")
    cand_params = ChatParams(temperature=cfg.llm.temperature, max_tokens=cfg.llm.max_tokens)
    judge_params = ChatParams(temperature=0.0, max_tokens=b.judge_max_tokens)
    pairs_dir = ctx.run.path / "feedback"
    options: dict[str, dict[str, Any]] = {
        "main": {"n": b.main.n, "modes": list(b.main.modes)},
        "passk": {"n": b.passk.n, "k": b.passk.k, "samples": b.passk.samples},
        "loo": {"n": b.loo.n, "attributes": list(b.loo.attributes)},
        "intersections": {"n": b.intersections.n},
        "fidelity": {"n": b.fidelity.n, "pairs": pairs_dir, "matrix_personas": b.fidelity.discrimination_personas,
                     "matrix_questions": b.fidelity.discrimination_questions},
        "agreement": {"pairs": pairs_dir, "labels": b.agreement.labels, "pairs_split": "all"},
    }
    if "intersections" in b.tasks:
        groups_file = ctx.dir / "groups.toml"
        atomic_write_text(groups_file, tomli_w.dumps({"groups": b.intersections.groups}))
        options["intersections"]["groups_file"] = groups_file
    store = CallStore(ctx.run.calls_db)
    results: dict[str, dict[str, Any]] = {}
    failures: list[ItemFailure] = []
    items = ok = 0

    async def run_all() -> None:
        nonlocal items, ok
        for name in b.tasks:
            if not ctx.quiet:
                from ..core.output import err_console

                err_console.print(f"  bench task {name}", highlight=False)
            try:
                res = await arun_task(name, candidate=candidate, judge=judge, personas=personas,
                                      prompts=ctx.run.path / "prompts", seed=cfg.seed, out_dir=ctx.dir / name,
                                      store=store, split=b.split, candidate_params=cand_params,
                                      judge_params=judge_params, concurrency=cfg.llm.concurrency,
                                      show_progress=not ctx.quiet, **options[name])
            except UserError as exc:  # a task whose inputs do not fit this run (e.g. an empty group)
                failures.append(ItemFailure(item=f"task:{name}", reason=str(exc)))
                items += 1
                continue
            results[name] = res
            counts = res.get("counts", {})
            items += counts.get("rows", 0)
            ok += counts.get("ok", 0)
            for f in res.get("failures", []):
                failures.append(ItemFailure(item=f"{name}:{f.get('item_id')}:{f.get('arm')}:{f.get('sample_index', 0)}",
                                            reason=f"{f.get('stage')}: {f.get('error')}"))

    try:
        ctx.run_async(run_all)
    finally:
        store.close()
    summary_path = ctx.dir / "summary.json"
    _write_json(summary_path, bench_summary(results))
    artifacts = [ctx.rel(summary_path)]
    for name in results:
        for fname in ("results.json", "items.parquet"):
            if (ctx.dir / name / fname).exists():
                artifacts.append(ctx.rel(ctx.dir / name / fname))
    return StageOutcome(items=items, ok=ok, failed=len(failures), failures=failures, artifacts=artifacts,
                        summary={"tasks": list(results), "failed_tasks": [f.item for f in failures
                                                                          if f.item.startswith("task:")]})


# -- report ---------------------------------------------------------------------------------------------

def run_report(ctx: StageContext) -> StageOutcome:
    """The static HTML report of everything above."""
    from ..report.build import write_report

    info = write_report(ctx.run.path, writer="report")
    return StageOutcome(items=1, ok=1, artifacts=[ctx.rel(Path(info["report"]))],
                        summary={"bytes": info["bytes"], "render_s": info["render_s"]})


def _census_inputs(c: RunConfig) -> dict[str, Any]:
    return {"census": c.census.model_dump(mode="json")}


def _check_models(cfg: RunConfig, *roles: str) -> None:
    """Model strings resolve to a backend (known kind, model file present, API key set) — no call made."""
    from ..llm.backends import make_backend

    for role in roles:
        make_backend(cfg.models.for_role(role), base_url=cfg.llm.base_url, timeout_s=cfg.llm.timeout_s)


def preflight_enrich(cfg: RunConfig) -> None:
    _check_models(cfg, "enrich", *(["judge"] if cfg.personas.enrich.judge else []))


def preflight_feedback(cfg: RunConfig) -> None:
    _check_models(cfg, "feedback")


def preflight_census(cfg: RunConfig) -> None:
    """The census source opens: files present and readable, states present, dictionary of the right year."""
    _open_source(cfg)


def preflight_prompts(cfg: RunConfig) -> None:
    """The prompt source reads: present, UTF-8, well-formed, not empty; the classifier's model resolves."""
    _prompt_items(cfg)
    if cfg.prompts.classify:
        _check_models(cfg, "prompts")


def preflight_bench(cfg: RunConfig) -> None:
    _check_models(cfg, "candidate", "judge")
    if "agreement" in cfg.bench.tasks and cfg.bench.agreement.labels:
        from ..bench.human import read_labels

        read_labels(cfg.bench.agreement.labels)


STAGES: list[Stage] = [
    Stage("census", (), _census_inputs, run_census, uses_data=True,
          description="open and check the census source", preflight=preflight_census),
    Stage("personas", ("census",), lambda c: {**_census_inputs(c), "n": c.personas.n}, run_personas,
          uses_data=True, description="census-grounded personas + fidelity"),
    Stage("enrich", ("personas",), lambda c: {"enrich": c.personas.enrich.model_dump(mode="json"),
                                             "model": c.models.for_role("enrich"), "judge": c.models.for_role("judge")},
          run_enrich, enabled=lambda c: c.personas.enrich.enabled, description="LLM enrichment + judge",
          preflight=preflight_enrich),
    Stage("prompts", (), lambda c: {"prompts": c.prompts.model_dump(mode="json"), "model": c.models.for_role("prompts"),
                                    "llm": c.llm.model_dump(mode="json", exclude={"concurrency", "timeout_s", "max_retries"})},
          run_prompts, uses_data=True, description="PRISM → contested questions", preflight=preflight_prompts),
    Stage("feedback", ("personas", "enrich", "prompts"),
          lambda c: {"feedback": c.feedback.model_dump(mode="json"), "render": c.personas.render,
                     "model": c.models.for_role("feedback"),
                     "llm": c.llm.model_dump(mode="json", exclude={"concurrency", "timeout_s", "max_retries"})},
          run_feedback, description="DPF preference pairs", preflight=preflight_feedback),
    Stage("bench", ("personas", "enrich", "prompts", "feedback"),
          lambda c: {"bench": c.bench.model_dump(mode="json"), "render": c.personas.render,
                     "candidate": c.models.for_role("candidate"), "judge": c.models.for_role("judge"),
                     "llm": c.llm.model_dump(mode="json", exclude={"concurrency", "timeout_s", "max_retries"})},
          run_bench, enabled=lambda c: bool(c.bench.tasks), description="PERSONA Bench tasks",
          preflight=preflight_bench),
    Stage("report", ("census", "personas", "enrich", "prompts", "feedback", "bench"),
          lambda c: {"report": c.report.model_dump(mode="json")}, run_report,
          enabled=lambda c: c.report.enabled, description="HTML report"),
]
