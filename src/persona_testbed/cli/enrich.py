"""CLI commands for LLM enrichment: ``personas enrich`` and ``personas stats`` (registered in ``personas/cli.py``).

Also ``run_enrichment``: the one function behind ``personas enrich`` and ``personas sample --enrich``
(build clients on ``OUT/calls.db``, enrich + judge + resample, write personas and ``enrich_report.json``).
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections import Counter
from pathlib import Path
from typing import Any, Optional

import typer

from ..core.errors import UserError
from ..core.output import console, emit, err_console, print_json, table
from ..pipeline.rundir import RunDir
from ..core.atomic import atomic_write_text
from ..core.seeds import derive_int
from ..personas.diversity import diversity_report, near_duplicates
from ..personas.enrich import (PAPER_JUDGE_REJECTION_RATE, EnrichOptions, EnrichResult, ResampleFn, enrich_personas)
from ..personas.io import JSONL_NAME, MANIFEST_NAME, read_personas, resolve_personas_path, write_personas
from ..personas.record import PERSONA_FIELDS, Persona

REPORT_NAME = "enrich_report.json"
RESAMPLE_STAGE = "personas.resample"
# Sampler reports (``personas sample`` / the run pipeline): rule rejections and sampling options.
SAMPLE_REPORT_NAMES = ("personas_report.json", "sample_report.json")


def find_sample_report(personas_file: Path) -> dict[str, Any] | None:
    """The sampler report next to a persona file, or in ``../personas/`` of a run directory."""
    for d in (personas_file.parent, personas_file.parent.parent / "personas"):
        for name in SAMPLE_REPORT_NAMES:
            data = _load_json(d / name)
            if data is not None:
                return data
    return None


def census_resampler(seed: int, **sample_kwargs: Any) -> ResampleFn:
    """A resampler drawing one new census persona per call with ``sample_personas`` and a derived seed.

    ``sample_kwargs`` are passed to ``sample_personas`` (source, states, adults_only, ...), so a
    replacement comes from the same population as the persona it replaces.
    """
    from ..personas.sample import sample_personas

    lock = threading.Lock()  # one census draw at a time (the sampler's caches are shared)

    def resample(original: Persona, attempt: int) -> Persona:
        with lock:
            result = sample_personas(1, derive_int(seed, RESAMPLE_STAGE, original.id, attempt), **sample_kwargs)
        return result.personas[0]

    async def resample_async(original: Persona, attempt: int) -> Persona:
        return await asyncio.to_thread(resample, original, attempt)

    return resample_async


def run_enrichment(personas: list[Persona], out: Path, *, model: str, judge_model: str | None, seed: int,
                   max_resamples: int = 3, concurrency: int = 4, options: EnrichOptions | None = None,
                   resample: ResampleFn | None = None, progress: bool = True,
                   extra_report: dict[str, Any] | None = None) -> EnrichResult:
    """Enrich ``personas`` into ``out``: personas.jsonl/.parquet, enrich_report.json; calls in out/calls.db.

    Re-running with the same inputs replays finished calls from ``out/calls.db`` (resume). Raises
    ``UserError`` when no persona could be enriched (the report is still written).
    """
    from ..llm import CallStore, LLMClient, parse_model

    if not personas:
        raise UserError("no personas to enrich")
    for m in (model, judge_model):  # a bad model string fails before OUT is created
        if m is not None:
            parse_model(m)
    run = RunDir(out)
    with run.locked():
        store = CallStore(run.calls_db)
        client = LLMClient(model, store=store, concurrency=concurrency)
        judge = LLMClient(judge_model, store=store, concurrency=concurrency) if judge_model else None

        async def go() -> EnrichResult:
            try:
                return await enrich_personas(personas, client, seed, judge_client=judge, resample=resample,
                                             max_resamples=max_resamples, progress=progress, options=options)
            finally:
                await client.aclose()
                if judge is not None:
                    await judge.aclose()

        try:
            result = asyncio.run(go())
        finally:
            store.close()  # the call log is write-behind: commit every row before the lock is released
        report = {**result.report, **(extra_report or {})}
        if result.personas:
            kept = {k: v for k, v in (_load_json(out / MANIFEST_NAME) or {}).items()
                    if k not in ("package_version", "schema_version", "count", "files", "enrich")}
            write_personas(result.personas, out, extra_manifest={**kept, "enrich": {
                "model": model, "judge_model": judge_model, "seed": seed, "report": REPORT_NAME}})
        atomic_write_text(out / REPORT_NAME, json.dumps(report, indent=2, ensure_ascii=False, default=str))
        result = result.model_copy(update={"report": report})
    if not result.personas:
        first = result.failures[0].error if result.failures else "unknown"
        raise UserError(f"all {len(personas)} personas failed enrichment (first: {first}); "
                        f"see {out / REPORT_NAME}")
    return result


def enrich_sampled(personas: list[Persona], out: Path, *, model: str, judge_model: str | None, seed: int,
                   sample_kwargs: dict[str, Any], rules: dict[str, Any] | None = None, max_resamples: int = 3,
                   concurrency: int = 4, progress: bool = True) -> dict[str, Any]:
    """``personas sample --enrich``: enrich freshly sampled personas in place in ``out``.

    Judge-rejected personas are resampled with the same sampler options (``sample_kwargs``); the rule
    rejection counts of the sample go into ``enrich_report.json`` next to the judge's. Returns a summary.
    """
    resampler = census_resampler(seed, **sample_kwargs) if judge_model else None
    result = run_enrichment(personas, out, model=model, judge_model=judge_model, seed=seed,
                            max_resamples=max_resamples, concurrency=concurrency, resample=resampler,
                            progress=progress, extra_report={"rules": rules})
    summary = dict(_summary_rows(result.report))
    if progress:
        err_console.print(f"enriched {summary['written']} of {summary['input personas']} personas "
                          f"({summary['failed']} failed); report: {out / REPORT_NAME}")
    return summary


def _summary_rows(report: dict[str, Any]) -> list[tuple[str, Any]]:
    c, calls, judge = report["counts"], report["calls"], report.get("judge") or {}
    div = report["diversity"]["overall"]
    return [
        ("input personas", c["input"]), ("written", c["output"]),
        ("accepted first try", c["accepted_first_try"]), ("resampled and accepted", c["resampled_and_accepted"]),
        ("failed", c["failed"]), ("calls per persona", calls["per_persona"]), ("cached calls", calls["cached"]),
        ("judge rejection rate", judge.get("rejection_rate")),
        ("paper rejection rate", judge.get("paper_reference_rate")),
        ("distinct-2", div["distinct_2"]), ("mean pairwise TF-IDF distance", div["mean_pairwise_tfidf_distance"]),
        ("near-duplicates", len(report["near_duplicates"])),
    ]


def enrich_command(
    input: Path = typer.Argument(..., help="Persona file (personas.jsonl / .parquet) or a directory holding one."),
    out: Path = typer.Argument(..., help="Output directory: personas.jsonl/.parquet, enrich_report.json, calls.db."),
    model: str = typer.Option("embedded", "--model", "-m", help="Model that writes the fields (embedded, "
                              "gguf:/path, openai/<model>)."),
    judge_model: Optional[str] = typer.Option(None, "--judge-model", help="Model for the consistency judge; "
                                              "omit to skip judging."),
    seed: int = typer.Option(0, "--seed", help="Seed for category picks, call seeds and resampling."),
    max_resamples: int = typer.Option(3, "--max-resamples", min=0, help="Resamples per persona the judge rejects."),
    concurrency: int = typer.Option(4, "--concurrency", min=1, help="Concurrent model calls."),
    max_chars: int = typer.Option(240, "--max-chars", min=20, help="Longest value per written field."),
    categories: int = typer.Option(3, "--categories", min=0, max=10,
                                   help="Idiosyncratic categories per persona."),
    resample: bool = typer.Option(True, "--resample/--no-resample",
                                  help="Replace judge-rejected personas with new census draws."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Data directory for census resampling "
                                            "(default: the tool's home)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report summary as JSON."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Write the pending / procedural persona fields with an LLM; optionally judge and resample.

    Census, derived, imputed and survey fields are never changed. Resumable: finished calls replay from
    OUT/calls.db.
    """
    personas = read_personas(input)
    in_file = resolve_personas_path(input)
    resampler = None
    if judge_model and resample:
        resampler = census_resampler(seed, **sample_kwargs_from_report(in_file), data_dir=data_dir)
    rules = (find_sample_report(in_file) or {}).get("rules")
    result = run_enrichment(personas, out, model=model, judge_model=judge_model, seed=seed,
                            max_resamples=max_resamples, concurrency=concurrency, resample=resampler,
                            options=EnrichOptions(max_chars=max_chars, categories_per_persona=categories),
                            progress=progress and not as_json, extra_report={"input": str(in_file), "rules": rules})
    rows = _summary_rows(result.report)
    emit({k: v for k, v in rows} | {"out": str(out)}, as_json, columns=("figure", "value"), rows=rows,
         title=f"enrichment -> {out}")


def sample_kwargs_from_report(personas_path: Path) -> dict[str, Any]:
    """Sampler options recorded by ``personas sample`` next to a persona file (``personas_report.json``),
    so a judge-rejected persona is replaced from the same population (source, states, age range)."""
    report = find_sample_report(personas_path) or {}
    kwargs: dict[str, Any] = {}
    if isinstance(report.get("source"), str):
        kwargs["source"] = report["source"]
    if report.get("states"):
        kwargs["states"] = list(report["states"])
    m = re.search(r"age (\d+)-(\d+|∞)", str(report.get("filters", "")))
    if m:
        kwargs["adults_only"] = False
        kwargs["min_age"] = int(m.group(1))
        kwargs["max_age"] = None if m.group(2) == "∞" else int(m.group(2))
    if "replace" in report:
        kwargs["replace"] = bool(report["replace"])
    return kwargs


# -- stats ----------------------------------------------------------------------------------------------------

def _load_json(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError:
        raise UserError(f"{path}: not valid JSON") from None
    return data if isinstance(data, dict) else None


def persona_stats(path: str | Path) -> dict[str, Any]:
    """Provenance counts per field, rejection rates by reason (rules + judge), diversity, near-duplicates."""
    file = resolve_personas_path(path)
    personas = read_personas(file)
    prov = {name: dict(Counter(p.fields[name].provenance for p in personas)) for name in PERSONA_FIELDS}
    enrich_report = _load_json(file.parent / REPORT_NAME)
    rules = (enrich_report or {}).get("rules") or (find_sample_report(file) or {}).get("rules")
    judge = (enrich_report or {}).get("judge")
    rejections: list[dict[str, Any]] = []
    if isinstance(rules, dict) and isinstance(rules.get("rejections"), dict):
        checked = int(rules.get("checked") or 0)
        by_rule = {k: int(v) for k, v in rules["rejections"].items()}
        for rule, n in sorted(by_rule.items(), key=lambda kv: (-kv[1], kv[0])):
            if n:
                rejections.append({"source": "rules", "reason": rule, "rejected": n, "checked": checked,
                                   "rate": n / checked if checked else None})
        total = sum(by_rule.values())
        rejections.append({"source": "rules", "reason": "(all rules, breaches)", "rejected": total,
                           "checked": checked, "rate": total / checked if checked else None})
    if judge:
        for fname, n in judge.get("by_field", {}).items():
            rejections.append({"source": "llm judge", "reason": f"conflict: {fname}", "rejected": n,
                               "checked": judge["judged"], "rate": n / judge["judged"] if judge["judged"] else None})
        rejections.append({"source": "llm judge", "reason": "(inconsistent)", "rejected": judge["rejected"],
                           "checked": judge["judged"], "rate": judge["rejection_rate"]})
    return {
        "file": str(file),
        "personas": len(personas),
        "provenance": prov,
        "rejections": rejections,
        "paper_judge_rejection_rate": PAPER_JUDGE_REJECTION_RATE,
        "diversity": diversity_report(personas),
        "near_duplicates": near_duplicates(personas),
        "enrich_failures": len((enrich_report or {}).get("failures", [])),
    }


def stats_command(
    path: Path = typer.Argument(..., help="Persona file or a directory holding personas.jsonl."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
) -> None:
    """Provenance counts per field, rejection rates by reason (rules and LLM judge), diversity figure."""
    stats = persona_stats(path)
    if as_json:
        print_json(stats)
        return
    provs = ["census", "derived", "imputed", "survey", "procedural", "llm", "pending"]
    console.print(table(f"provenance per field ({stats['personas']} personas)", ["field", *provs],
                        [[name, *[stats["provenance"][name].get(k, 0) for k in provs]] for name in PERSONA_FIELDS]))
    console.print(table("rejection rates", ["source", "reason", "rejected", "checked", "rate"],
                        [[r["source"], r["reason"], r["rejected"], r["checked"], r["rate"]]
                         for r in stats["rejections"]] or [["-", "no rule or judge report found", "", "", ""]]))
    div = stats["diversity"]["overall"]
    console.print(table("diversity of LLM-written fields", ["figure", "value"], [
        ("enriched personas", stats["diversity"]["personas"]), ("distinct-1", div["distinct_1"]),
        ("distinct-2", div["distinct_2"]), ("distinct-3", div["distinct_3"]),
        ("mean pairwise TF-IDF distance", div["mean_pairwise_tfidf_distance"]),
        ("near-duplicate pairs", len(stats["near_duplicates"])),
        ("paper judge rejection rate", stats["paper_judge_rejection_rate"]),
    ]))


__all__ = ["enrich_command", "stats_command", "run_enrichment", "enrich_sampled", "census_resampler", "persona_stats",
           "sample_kwargs_from_report", "REPORT_NAME", "JSONL_NAME"]
