"""``persona-testbed census``: census sources, decoding cache, raking to published totals."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import polars as pl
import typer
from rich.progress import Progress

from ..census.locate import available_specs
from ..census.raking import rake
from ..census.source import CensusSource, open_source
from ..census.states import STATES
from ..census.targets import load_targets
from ..core.atomic import atomic_path
from ..core.errors import UserError
from ..core.output import emit, err_console
from ..personas.fidelity import fidelity

app = typer.Typer(
    no_args_is_help=True,
    help="Census sources (ACS PUMS): what is available, decode cache, raking to published totals.",
)

DATA_DIR_HELP = "Data directory (default: $PERSONA_TESTBED_HOME/data or the user cache dir)."
SOURCE_HELP = (
    "acs2024 (2024 national extract, default), acs2018 (official zips), any acs<YEAR> in the "
    "data directory, or a directory of csv_pXX.zip / p_NN.parquet files."
)
STATES_HELP = "Comma-separated states (FIPS codes or abbreviations, e.g. CA,TX); default all in the source."


def _open(source: str, states: str | None, data_dir: str | None) -> CensusSource:
    if Path(source).expanduser().is_dir():
        return open_source(None, states, data_dir=data_dir, path=source)
    return open_source(source, states, data_dir=data_dir)


def _describe(src: CensusSource) -> dict:
    cached = src.is_cached()  # before anything reads the files (reading decodes zips into the cache)
    person_cols = src.available_columns() if cached else []
    narrow = {}
    for st in src.states if cached else []:
        n = len(src.available_columns(st))
        if n < len(person_cols):
            narrow[STATES[st][0]] = n
    return {
        "source": src.name,
        "year": src.year,
        "dictionary_year": src.dictionary.year,
        "directory": str(src.directory),
        "states": [STATES[s][0] for s in src.states],
        "person_records": src.row_count() if cached else None,
        "person_columns": len(person_cols) if cached else None,
        "states_with_fewer_columns": narrow,
        "housing_files": sum(i.kind == "housing" for i in src.inputs),
        "formats": sorted({i.format for i in src.inputs}),
        "cache": "ready" if cached else "not decoded yet (run `persona-testbed census prepare`)",
        "checksum": src.checksum,
    }


@app.command("sources")
def sources_cmd(
    path: list[str] | None = typer.Option(None, "--path", help="Also describe this directory of PUMS files."),
    data_dir: str | None = typer.Option(None, "--data-dir", help=DATA_DIR_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON."),
) -> None:
    """List the census sources in the data directory: year, states, records, columns, cache status."""
    out = []
    for spec in available_specs(data_dir) + list(path or []):
        try:
            out.append(_describe(_open(spec, None, data_dir)))
        except UserError as exc:
            out.append({"source": spec, "error": str(exc)})
    if not out:
        raise UserError(
            "no census sources found in the data directory; run `persona-testbed data fetch "
            "census-2024` or pass --data-dir / --path"
        )
    rows = []
    for d in out:
        if "error" in d:
            rows.append((d["source"], "", "", "", "", "", d["error"]))
            continue
        narrow = ", ".join(f"{k}: {v}" for k, v in d["states_with_fewer_columns"].items())
        rows.append(
            (
                d["source"],
                d["year"],
                f"{len(d['states'])} ({','.join(d['states'][:6])}{'…' if len(d['states']) > 6 else ''})",
                d["person_records"] if d["person_records"] is not None else "?",
                f"{d['person_columns'] if d['person_columns'] is not None else '?'}"
                + (f" ({narrow})" if narrow else ""),
                d["housing_files"],
                d["cache"],
            )
        )
    emit(
        out,
        as_json,
        columns=("source", "year", "states", "persons", "columns", "housing files", "cache"),
        rows=rows,
        title="census sources",
    )


@app.command("prepare")
def prepare_cmd(
    source: str = typer.Option("acs2024", "--source", help=SOURCE_HELP),
    states: str | None = typer.Option(None, "--states", help=STATES_HELP),
    data_dir: str | None = typer.Option(None, "--data-dir", help=DATA_DIR_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON."),
) -> None:
    """Decode a source's CSV/zip files into the Parquet cache (later loads are instant); checks every file."""
    src = _open(source, states, data_dir)
    rows = []
    with Progress(console=err_console, transient=True) as progress:
        task = progress.add_task(f"decoding {src.name}", total=len(src.states))
        for st in src.states:
            t0 = time.perf_counter()
            was_cached = src.is_cached(st)
            n = src.row_count(st)
            cols = len(src.available_columns(st))
            rows.append(
                {
                    "state": STATES[st][0],
                    "fips": st,
                    "records": n,
                    "columns": cols,
                    "seconds": round(time.perf_counter() - t0, 3),
                    "status": "cached" if was_cached else "decoded",
                }
            )
            progress.advance(task)
    emit(
        {"source": src.name, "year": src.year, "files": rows},
        as_json,
        columns=("state", "fips", "records", "columns", "seconds", "status"),
        rows=[tuple(r.values()) for r in rows],
        title=f"{src.name}: {sum(r['records'] for r in rows):,} persons",
    )


@app.command("rake")
def rake_cmd(
    source: str = typer.Option("acs2018", "--source", help=SOURCE_HELP),
    targets: str = typer.Option(
        "acs2018-us",
        "--targets",
        help="acs2018-us, acs2024-s0101, acs2024-s0101:CA,TX (state sums) or a path.",
    ),
    margins: str | None = typer.Option(
        None, "--margins", help="Comma-separated dimensions of the targets (default: all non-redundant ones)."
    ),
    states: str | None = typer.Option(None, "--states", help=STATES_HELP),
    max_iter: int = typer.Option(100, "--max-iter", help="Most IPF sweeps."),
    tol: float = typer.Option(1e-6, "--tol", help="Converged when every cell is within this relative error."),
    out: Path | None = typer.Option(
        None,
        "--out",
        help="Write SERIALNO, SPORDER, STATE, PWGTP and the raked weight RAKED_WEIGHT to this Parquet file.",
    ),
    data_dir: str | None = typer.Option(None, "--data-dir", help=DATA_DIR_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON."),
) -> None:
    """Rake the source's person weights to published totals; report convergence, ESS and fit per margin."""

    src = _open(source, states, data_dir)
    ms = load_targets(
        targets,
        data_dir=data_dir,
        dictionary=src.dictionary,
        margins=[m.strip() for m in margins.split(",") if m.strip()] if margins else None,
        columns=src.available_columns(),
    )
    cols = list(dict.fromkeys(["SERIALNO", "SPORDER", "STATE", "PWGTP"] + [c for m in ms for c in m.columns]))
    df = src.persons(cols).collect()
    res = rake(df, ms, weight="PWGTP", max_iter=max_iter, tol=tol)
    if out is not None:
        frame = df.select("SERIALNO", "SPORDER", "STATE", "PWGTP").with_columns(
            pl.Series("RAKED_WEIGHT", np.asarray(res.weights))
        )
        with atomic_path(out) as tmp:
            frame.write_parquet(tmp)
    summary = res.summary()
    summary.update(
        {
            "source": src.name,
            "targets": targets,
            "notes": {m.name: m.note for m in ms if m.note},
            "out": str(out) if out else None,
        }
    )
    if not as_json:
        state = "converged" if res.converged else "NOT converged"
        err_console.print(
            f"{src.name} → {targets}: {state} after "
            f"{res.iterations} sweeps, max relative error {res.max_rel_error:.2e}; "
            f"ESS {res.ess_before:,.0f} → {res.ess:,.0f} of {res.n_records:,} records",
            highlight=False,
        )
    emit(
        summary,
        as_json,
        columns=("margin", "cells", "target total", "before", "after", "max rel error"),
        rows=[
            (
                m.margin,
                m.cells,
                f"{m.target_total:,.0f}",
                f"{m.before_total:,.0f}",
                f"{m.after_total:,.0f}",
                f"{m.max_rel_error:.2e}",
            )
            for m in res.margins
        ],
        title="fit per margin",
    )


@app.command("fidelity")
def fidelity_command(
    personas: Path = typer.Option(
        ..., "--personas", help="personas.jsonl / .parquet or a directory holding it."
    ),
    data_dir: Path | None = typer.Option(
        None, "--data-dir", help="Data directory (default: the tool's home)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the full report as JSON."),
) -> None:
    """Compare a persona sample with its census, GSS and Big Five sources, field by field."""
    res = fidelity(personas, data_dir=data_dir)
    if as_json:
        emit(res, True)
        return
    rows = [
        (
            name,
            f.get("compare_on", "-"),
            f.get("tvd"),
            f.get("chi2_p"),
            ", ".join(f"{k} {v}" for k, v in f["provenance"].items()),
        )
        for name, f in res["fields"].items()
    ]
    rows += [
        (f"∩ {name}", "intersection", f["tvd"], f["chi2_p"], f"{f['categories']} cells")
        for name, f in res["intersections"].items()
    ]
    emit(
        res,
        False,
        columns=("field", "compared on", "TVD", "chi2 p", "provenance"),
        rows=rows,
        title=f"fidelity of {res['n']} personas vs {res['source']} (max TVD {res['max_tvd']} "
        f"in {res['max_tvd_field']})",
    )
    cells = res.get("survey_cells") or {}
    if cells.get("personas"):
        eff, cnt = cells["cell_effective_respondents"], cells["cell_respondents"]
        rows = [
            ("minimum cell size (k)", cells["min_cell"] if cells["min_cell"] is not None else "not recorded"),
            ("respondents used", f"{cells['respondents']} for {cells['personas']} personas"),
            ("max reuse of one respondent", f"{cells['max_reuse']} ({cells['max_reuse_respondent']})"),
            (
                "respondents per cell (min / p10 / median)",
                f"{cnt['min']:g} / {cnt['p10']:g} / {cnt['median']:g}",
            ),
            (
                "effective respondents per cell (Kish; min / p10 / median)",
                f"{eff['min']:g} / {eff['p10']:g} / {eff['median']:g}",
            ),
            ("personas from cells under 5 respondents", f"{cells['share_in_cells_under_5']:.1%}"),
        ]
        rows += [
            (f"back-off level {b['level']} ({b['cell']})", f"{b['personas']} ({b['share']:.1%})")
            for b in cells["backoff_levels"]
        ]
        emit(
            None,
            False,
            columns=("survey cells", "value"),
            rows=rows,
            title=f"GSS respondents ({cells['source']})",
        )
    hh = res.get("household_consistency") or {}
    rows = [
        (
            prov,
            r["personas"],
            f"{r['married_living_alone']:.2%}",
            f"{r['unmarried_35plus_in_married_couple_household']:.2%}",
        )
        for prov, r in hh.items()
        if r["personas"]
    ]
    if rows:
        emit(
            None,
            False,
            columns=(
                "marital status",
                "personas",
                "married, living alone",
                "unmarried 35+ in married-couple household",
            ),
            rows=rows,
            title="marital status vs household (imputed should match census-coded)",
        )
