"""``persona-testbed personas ...``: sample census-grounded personas, show one.

Other stages add commands to ``app`` (e.g. ``personas enrich``) with ``@app.command``.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import typer
import typer.main
from typer.core import TyperGroup

from ..core.errors import UserError
from ..core.output import emit, err_console
from ..llm.models import parse_model
from ..personas.bigfive import REFERENCES
from ..personas.io import FORMATS, read_personas
from ..personas.record import PERSONA_FIELDS
from ..personas.render import RENDERERS, render
from ..personas.resample import REPORT_NAME as ENRICH_REPORT
from ..personas.stats import enrich_summary_rows
from ..personas.survey import MIN_CELL
from ..pipeline.session import Session
from ..pipeline.stages.personas import EnrichSpec, SampleSpec, enrich_stage, personas_stage

#: issue 4's LLM enrichment commands, loaded on first use: their module imports the LLM client stack,
#: which ``personas sample`` does not need (name -> (module, attribute))
_LAZY: dict[str, tuple[str, str]] = {
    "enrich": ("persona_testbed.cli.enrich", "enrich_command"),
    "stats": ("persona_testbed.cli.enrich", "stats_command"),
}


class _Group(TyperGroup):
    """The ``personas`` group: ``enrich`` and ``stats`` are imported when named (or listed in help)."""

    def list_commands(self, ctx):  # type: ignore[no-untyped-def]
        return [*super().list_commands(ctx), *(n for n in _LAZY if n not in self.commands)]

    def get_command(self, ctx, name):  # type: ignore[no-untyped-def]
        if name not in self.commands and name in _LAZY:
            module, attr = _LAZY[name]
            single = typer.Typer()
            single.command(name)(getattr(importlib.import_module(module), attr))
            cmd = typer.main.get_command(single)
            cmd.name = name
            self.commands[name] = cmd
        return super().get_command(ctx, name)


app = typer.Typer(
    cls=_Group, no_args_is_help=True, help="Personas: sample census-grounded personas, show one."
)

REPORT_NAME = "personas_report.json"


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: exists and is not a directory")


@app.command("sample")
def sample_cmd(
    n: int = typer.Option(1586, "--n", help="Number of personas (the paper used 1,586)."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed: one seed gives identical personas."),
    out: Path = typer.Option(
        ..., "--out", help="Output directory (personas.parquet, personas.jsonl, report)."
    ),
    source: str = typer.Option(
        "acs2024", "--source", help="acs2024 (national), acs2018, or a directory of PUMS files."
    ),
    states: str | None = typer.Option(None, "--states", help="Comma-separated states (CA,TX or 06,48)."),
    adults_only: bool = typer.Option(
        True, "--adults-only/--all-ages", help="Only persons aged 18+ (default)."
    ),
    min_age: int | None = typer.Option(None, "--min-age", help="Lowest age drawn."),
    max_age: int | None = typer.Option(None, "--max-age", help="Highest age drawn."),
    quota_by: str | None = typer.Option(None, "--quota-by", help="Equal counts per STATE or age_band."),
    rake: str | None = typer.Option(
        None,
        "--rake",
        help="Rake weights to published targets first (acs2018-us, acs2024-s0101 or a targets file).",
    ),
    replace: bool = typer.Option(True, "--replace/--no-replace", help="Draw with replacement (default)."),
    design: str = typer.Option(
        "systematic",
        "--design",
        help="Draw design with replacement: systematic (balanced PPS, default) or independent (iid PPS draws).",
    ),
    big_five_reference: str = typer.Option(
        "pooled",
        "--big-five-reference",
        help="Big Five levels relative to all US adults (pooled norms, default) or to the persona's own "
        "sex x age group (group).",
    ),
    gss_min_cell: int = typer.Option(
        MIN_CELL,
        "--gss-min-cell",
        help="Fewest GSS respondents in the cell religion, party and ideology are drawn from; smaller cells "
        "back off to coarser ones (default 20).",
    ),
    national_donors: str | None = typer.Option(
        None,
        "--national-donors",
        help="A national PUMS source (acs<YEAR> or a directory) with ANC1P / POBP: ancestry and place of "
        "birth the sampled source lacks are imputed from it; without one they are 'not recorded in this "
        "census source'.",
    ),
    data_dir: Path | None = typer.Option(
        None, "--data-dir", help="Data directory (default: the tool's home)."
    ),
    formats: str = typer.Option(
        "jsonl,parquet",
        "--formats",
        help="Files to write: jsonl, parquet or both (a million personas: ~6 GB of JSON Lines, ~0.2 GB of Parquet).",
    ),
    fidelity: bool = typer.Option(
        False,
        "--fidelity/--no-fidelity",
        help="Also write fidelity.json (census fidelity of the sample, as `run` does).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    enrich: bool = typer.Option(
        False, "--enrich", help="Then write the open-ended fields with an LLM (see personas enrich)."
    ),
    model: str = typer.Option("embedded", "--model", help="Model for --enrich."),
    judge_model: str | None = typer.Option(
        None, "--judge-model", help="Consistency judge for --enrich (omit: no judge)."
    ),
) -> None:
    """Draw N personas from census records and write them to OUT.

    Runs the same stage function as ``persona-testbed run`` (streamed to disk chunk by chunk, the stage
    recorded in OUT/manifest.json); ``--enrich`` then runs the enrichment stage on OUT in place.
    """
    _check_out(out)
    if n <= 0:
        raise UserError(f"--n must be a positive integer, got {n}")
    if quota_by is not None and quota_by not in ("STATE", "age_band") and not quota_by.isupper():
        raise UserError(f"--quota-by {quota_by!r}: use STATE, age_band or a PUMS column name")
    if design not in ("systematic", "independent"):
        raise UserError(f"--design {design!r}: use systematic or independent")
    if big_five_reference not in REFERENCES:
        raise UserError(f"--big-five-reference {big_five_reference!r}: use {' or '.join(REFERENCES)}")
    if gss_min_cell < 1:
        raise UserError(f"--gss-min-cell must be at least 1 (got {gss_min_cell})")
    kinds = [f.strip() for f in formats.split(",") if f.strip()]
    if not kinds or any(k not in FORMATS for k in kinds):
        raise UserError(f"--formats {formats!r}: use jsonl, parquet or jsonl,parquet")
    if enrich:
        if "jsonl" not in kinds:
            raise UserError("--enrich reads the sampled personas.jsonl: keep jsonl in --formats")
        for m in (model, judge_model):
            if m is not None:
                parse_model(m)
    spec = SampleSpec(
        n=n,
        seed=seed,
        source=source,
        states=[s.strip() for s in states.split(",") if s.strip()] if states else None,
        adults_only=adults_only,
        min_age=min_age,
        max_age=max_age,
        quota_by=quota_by,
        rake=rake,
        replace=replace,
        design=design,
        big_five_reference=big_five_reference,
        gss_min_cell=gss_min_cell,
        national_donors=national_donors,
        data_dir=str(data_dir) if data_dir else None,
        formats=kinds,
        fidelity=fidelity,
    )
    with Session(out, kind="personas", quiet=as_json) as session:
        outcome = session.run_stage("personas", out, lambda ctx: personas_stage(ctx, spec), inputs=spec)
        report, paths = outcome.detail["report"], outcome.detail["paths"]
        if enrich:  # issue 4: enrich in place; judge-rejected personas are resampled with the same options
            espec = EnrichSpec(
                personas=str(paths["jsonl"]),
                model=model,
                judge_model=judge_model,
                seed=seed,
                data_dir=spec.data_dir,
            )
            enriched = session.run_stage("enrich", out, lambda ctx: enrich_stage(ctx, espec), inputs=espec)
            report["enrich"] = dict(enrich_summary_rows(enriched.detail))
            if not as_json:
                err_console.print(
                    f"enriched {report['enrich']['written']} of {report['enrich']['input personas']} "
                    f"personas ({report['enrich']['failed']} failed); report: {out / ENRICH_REPORT}"
                )
    if as_json:
        emit({"out": str(out), "files": {k: str(v) for k, v in paths.items()}, "report": report}, True)
        return
    rules = report["rules"]["rejections"]
    rows = [
        ("personas", report["n"]),
        ("source", f"{report['source']} ({report['year']})"),
        ("states", len(report["states"])),
        ("filters", report["filters"]),
        ("rule rejections", sum(rules.values())),
    ]
    rows += [(f"  {k}", v) for k, v in rules.items() if v]
    rows += [
        ("imputed records", report["imputation"]["rows"]),
        ("ancestry", report["ancestry"]["method"]),
        ("survey", report["survey"]["source"]),
        ("survey back-off levels", json.dumps(report["survey"]["backoff_levels"])),
        ("survey min cell", report["survey"].get("min_cell")),
        ("big five reference", (report.get("big_five") or {}).get("reference")),
        ("seconds", report["seconds"]),
        ("written", ", ".join(str(paths[k]) for k in kinds)),
    ]
    emit(report, False, columns=("item", "value"), rows=rows, title="personas sample")


@app.command("show")
def show_cmd(
    persona_id: str = typer.Argument(..., help="Persona id (p-...)."),
    personas: Path = typer.Option(
        ..., "--personas", help="personas.jsonl / .parquet or a directory holding it."
    ),
    fmt: str = typer.Option("full", "--format", help="full, list, summary or json."),
) -> None:
    """Print one persona."""
    if fmt not in (*RENDERERS, "json"):
        raise UserError(f"--format {fmt!r}: choose full, list, summary or json")
    found = [p for p in read_personas(personas) if p.id == persona_id]
    if not found:
        raise UserError(f"{personas}: no persona with id {persona_id}")
    p = found[0]
    if fmt == "json":
        typer.echo(json.dumps(p.model_dump(mode="json"), indent=2, ensure_ascii=False))
    else:
        typer.echo(render(p, fmt))


__all__ = ["app", "PERSONA_FIELDS"]
