"""Personas and their enrichment: ``personas sample`` / ``personas enrich`` and ``run``'s personas and enrich stages."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import Field
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from ...census.source import open_source
from ...core.errors import UserError
from ...core.output import err_console
from ...core.seeds import derive_int
from ...personas.enrich import EnrichOptions, enrich_personas
from ...personas.fidelity import CODED, HOUSING, fidelity
from ...personas.fidelity_document import fidelity_document, from_personas_fidelity
from ...personas.io import (
    FORMATS,
    MANIFEST_NAME,
    read_personas,
    resolve_personas_path,
    write_persona_frames,
    write_personas,
)
from ...personas.record import require_structured
from ...personas.resample import REPORT_NAME as ENRICH_REPORT_NAME
from ...personas.resample import _load_json, census_resampler, find_sample_report, sample_kwargs_from_report
from ...personas.sample import PersonaSampler, sample_personas
from ...personas.survey import MIN_CELL
from ..config import RunConfig
from ..session import ItemFailure, StageContext, StageOutcome
from .base import Spec, write_json

SAMPLE_REPORT_NAME = "personas_report.json"

# -- personas -------------------------------------------------------------------------------------------


class SampleSpec(Spec):
    """What ``personas sample`` / the personas stage draws."""

    n: int = Field(ge=1)
    seed: int = Field(0, ge=0)
    source: str = "acs2024"
    states: list[str] | None = None
    adults_only: bool = True
    min_age: int | None = None
    max_age: int | None = None
    quota_by: str | list[str] | None = None
    rake: str | None = None
    replace: bool = True
    design: Literal["systematic", "independent"] = "systematic"
    big_five_reference: Literal["pooled", "group"] = "pooled"
    """Big Five levels relative to all adults (``pooled``) or to the persona's own sex x age group."""
    gss_min_cell: int = Field(MIN_CELL, ge=1)
    """Fewest GSS respondents in the cell a persona's survey fields are drawn from (else back off)."""
    national_donors: str | None = None
    """A national PUMS source with ANC1P / POBP for the origins the sampled source lacks (else unavailable)."""
    data_dir: str | None = None
    formats: list[str] = Field(default_factory=lambda: list(FORMATS))
    fidelity: bool = False
    """Also write ``fidelity.json`` (census fidelity of the sample; the report shows it)."""
    fidelity_reference: int = 2000
    """Reference draw size when the full-source comparison is unavailable."""


def sample_spec(cfg: RunConfig) -> SampleSpec:
    c = cfg.census
    return SampleSpec(
        n=cfg.personas.n,
        seed=cfg.seed,
        source=c.source,
        states=c.states or None,
        adults_only=c.adults_only,
        min_age=c.min_age,
        max_age=c.max_age,
        quota_by=c.quota_by or None,
        rake=c.rake,
        replace=c.replacement,
        data_dir=cfg.data.dir,
        big_five_reference=cfg.personas.big_five_reference,
        gss_min_cell=cfg.personas.gss_min_cell,
        national_donors=c.national_donors,
        fidelity=True,
        fidelity_reference=c.fidelity_reference,
    )


def _sampler_kwargs(spec: SampleSpec) -> dict[str, Any]:
    return dict(
        source=spec.source,
        states=spec.states,
        adults_only=spec.adults_only,
        min_age=spec.min_age,
        max_age=spec.max_age,
        quota_by=spec.quota_by,
        rake=spec.rake,
        replace=spec.replace,
        data_dir=spec.data_dir,
        design=spec.design,
        big_five_reference=spec.big_five_reference,
        gss_min_cell=spec.gss_min_cell,
        national_donors=spec.national_donors,
    )


def _fidelity_doc(spec: SampleSpec, personas_file: Path) -> dict[str, Any]:
    """Census fidelity in the report's format: the full weighted source, else a reference draw."""
    try:
        rep = fidelity(personas_file, data_dir=spec.data_dir)
    except UserError as exc:  # e.g. a source the comparison cannot read: fall back to a reference draw
        ref_spec = spec.model_copy(
            update={"n": spec.fidelity_reference, "seed": derive_int(spec.seed, "fidelity.reference")}
        )
        reference = sample_personas(ref_spec.n, ref_spec.seed, **_sampler_kwargs(ref_spec)).personas
        return fidelity_document(
            read_personas(personas_file),
            reference,
            f"reference draw of {len(reference)} census records (full-source comparison unavailable: {exc})",
        )
    dictionary = open_source(spec.source, states=spec.states, data_dir=spec.data_dir).dictionary
    variables = {**CODED, **HOUSING}

    def label(field: str, code: str) -> str | None:
        var = variables.get(field)
        return dictionary.label(var, code) if var else None

    return from_personas_fidelity(rep, label)


def personas_stage(ctx: StageContext, spec: SampleSpec) -> StageOutcome:
    """Draw census-grounded personas chunk by chunk, streaming them to disk (bounded memory at any n)."""
    if any(f not in FORMATS for f in spec.formats) or not spec.formats:
        raise UserError(f"formats {','.join(spec.formats)!r}: use jsonl, parquet or jsonl,parquet")
    if ctx.quiet:
        sampler = PersonaSampler(spec.n, spec.seed, **_sampler_kwargs(spec))
    else:
        with err_console.status("loading census data..."):
            sampler = PersonaSampler(spec.n, spec.seed, **_sampler_kwargs(spec))
    with Progress(
        TextColumn("personas"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
        disable=ctx.quiet,
    ) as bar:
        task = bar.add_task("personas", total=spec.n)

        def frames() -> Iterator[Any]:
            for frame in sampler.frames():
                yield frame
                bar.advance(task, frame.height)

        paths = write_persona_frames(
            frames(),
            ctx.dir,
            extra_manifest={
                "seed": spec.seed,
                "source": sampler.src.name,
                "source_checksum": sampler.src.checksum,
            },
            formats=spec.formats,
        )
    report = sampler.report()
    write_json(ctx.dir / SAMPLE_REPORT_NAME, report)
    artifacts = [ctx.rel(paths[k]) for k in spec.formats] + [ctx.rel(ctx.dir / SAMPLE_REPORT_NAME)]
    if spec.fidelity:
        fid = ctx.dir / "fidelity.json"
        write_json(fid, _fidelity_doc(spec, paths.get("jsonl") or paths["parquet"]))
        artifacts.append(ctx.rel(fid))
    rules = report.get("rules", {})
    return StageOutcome(
        items=spec.n,
        ok=spec.n,
        artifacts=artifacts,
        summary={"rule_checks": rules.get("checked"), "seconds": report.get("seconds")},
        detail={"report": report, "paths": paths},
    )


# -- enrichment -----------------------------------------------------------------------------------------


class EnrichSpec(Spec):
    """What ``personas enrich`` / the enrich stage writes (open-ended fields, judge, resampling)."""

    personas: str
    """Input persona file or directory."""
    model: str
    judge_model: str | None = None
    seed: int = Field(0, ge=0)
    max_resamples: int = Field(3, ge=0)
    max_chars: int = Field(240, ge=20)
    categories: int = Field(3, ge=0, le=10)
    resample: bool = True
    data_dir: str | None = None


def enrich_spec(cfg: RunConfig, run_path: Path) -> EnrichSpec:
    e = cfg.personas.enrich
    return EnrichSpec(
        personas=str(run_path / "personas" / "personas.jsonl"),
        model=cfg.models.for_role("enrich"),
        judge_model=cfg.models.for_role("judge") if e.judge else None,
        seed=cfg.seed,
        max_resamples=e.max_resamples,
        data_dir=cfg.data.dir,
    )


def enrich_stage(ctx: StageContext, spec: EnrichSpec) -> StageOutcome:
    """LLM enrichment of the open-ended fields, consistency judge, census resampling of rejected personas.

    Resumable: finished calls replay from the session's call log. Raises ``UserError`` when no persona
    could be enriched (the report is still written).
    """
    in_file = resolve_personas_path(spec.personas)
    personas = read_personas(in_file)
    require_structured(personas, "enrichment")  # writes fields from the census ones; text-only have none
    sample_report = find_sample_report(in_file) or {}
    client = ctx.client(spec.model)
    judge = ctx.client(spec.judge_model) if spec.judge_model else None
    resampler = None
    if judge is not None and spec.resample:
        resampler = census_resampler(spec.seed, **sample_kwargs_from_report(in_file), data_dir=spec.data_dir)
    options = EnrichOptions(max_chars=spec.max_chars, categories_per_persona=spec.categories)
    result = ctx.run_async(
        lambda: enrich_personas(
            personas,
            client,
            spec.seed,
            judge_client=judge,
            resample=resampler,
            max_resamples=spec.max_resamples,
            progress=not ctx.quiet,
            options=options,
        )
    )
    report = {**result.report, "input": in_file.name, "rules": sample_report.get("rules")}
    artifacts = []
    if result.personas:
        kept = {
            k: v
            for k, v in (_load_json(in_file.parent / MANIFEST_NAME) or {}).items()
            if k not in ("package_version", "schema_version", "count", "files", "enrich")
        }
        paths = write_personas(
            result.personas,
            ctx.dir,
            extra_manifest={
                **kept,
                "enrich": {
                    "model": spec.model,
                    "judge_model": spec.judge_model,
                    "seed": spec.seed,
                    "report": ENRICH_REPORT_NAME,
                },
            },
        )
        artifacts = [ctx.rel(paths["jsonl"]), ctx.rel(paths["parquet"])]
    write_json(ctx.dir / ENRICH_REPORT_NAME, report)
    artifacts.append(ctx.rel(ctx.dir / ENRICH_REPORT_NAME))
    failures = [ItemFailure(item=f.persona_id, reason=f"{f.stage}: {f.error}") for f in result.failures]
    if not result.personas:
        first = failures[0].reason if failures else "no input"
        raise UserError(
            f"all {len(personas)} personas failed enrichment (first: {first}); "
            f"see {ctx.dir / ENRICH_REPORT_NAME}"
        )
    return StageOutcome(
        items=len(personas),
        ok=len(personas) - len(failures),
        failed=len(failures),
        failures=failures,
        artifacts=artifacts,
        summary={"accepted": len(result.personas)},
        detail=report,
    )
