"""Assemble the HTML report: load artifacts, draw plots, render one self-contained page.

The page is rendered from a run view (``pipeline.view.load_run``): this package never reads a run directory.
Jinja2 with autoescape on: every string from personas, prompts and models is escaped; the page's only
script is the small inline filter code in the template, which reads text via ``textContent``.
"""

from __future__ import annotations

import time
from typing import Any

import jinja2

from .. import __version__
from . import plots


def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("persona_testbed.report", "templates"),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["fmt"] = _fmt
    return env


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _fidelity_figures(fid: dict[str, Any]) -> list[dict[str, Any]]:
    """One chart (TVD per attribute); the per-attribute distributions are HTML bar tables (fast, searchable)."""
    fields = [f for f in fid.get("fields", []) if f.get("tvd") is not None]
    if not fields:
        return []
    return [{"field": "TVD per attribute",
             "img": plots.bars([f.get("field") for f in fields], [f.get("tvd") for f in fields],
                               title="total-variation distance, personas vs census", ylabel="TVD",
                               horizontal=True)}]


def _distribution_rows(fid: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for f in fid.get("fields", []):
        src, smp = f.get("source") or {}, f.get("sample") or {}
        cats = sorted(set(src) | set(smp), key=lambda c: -(src.get(c, 0.0) + smp.get(c, 0.0)))
        out.append({"field": f.get("field", ""), "tvd": f.get("tvd"),
                    "rows": [{"label": c, "census": float(src.get(c, 0.0)), "personas": float(smp.get(c, 0.0))}
                             for c in cats]})
    return out


def _bench_figures(bench: dict[str, Any]) -> dict[str, str]:
    figs: dict[str, str] = {}
    main = bench.get("main") or {}
    modes = main.get("modes") or []
    if modes:
        figs["main"] = plots.bars([m.get("mode") for m in modes], [m.get("accuracy") for m in modes],
                                  lo=[m.get("ci_low") for m in modes], hi=[m.get("ci_high") for m in modes],
                                  title="accuracy per mode (95% CI)", ylabel="accuracy", ylim=(0, 1.05))
    passk = bench.get("passk") or {}
    if passk.get("k") and passk.get("pass_at_k"):
        figs["passk"] = plots.curve(passk["k"], passk["pass_at_k"], title="pass@k", xlabel="k", ylabel="pass@k")
    loo = (bench.get("loo") or {}).get("attributes") or []
    if loo:
        figs["loo"] = plots.bars([a.get("attribute") for a in loo], [a.get("kappa") for a in loo],
                                 lo=[a.get("ci_low") for a in loo], hi=[a.get("ci_high") for a in loo],
                                 title="Cohen's κ, full persona vs attribute removed", ylabel="κ",
                                 ylim=(-1.05, 1.05), horizontal=True)
    groups = (bench.get("intersections") or {}).get("groups") or []
    if groups:
        figs["intersections"] = plots.bars(
            [g.get("group") for g in groups], [g.get("accuracy") for g in groups],
            lo=[g.get("ci_low") for g in groups], hi=[g.get("ci_high") for g in groups],
            title="accuracy per group (95% CI)", ylabel="accuracy", ylim=(0, 1.05), horizontal=True)
    fid = bench.get("fidelity") or {}
    if fid.get("matrix"):
        labels = fid.get("labels") or [str(i) for i in range(len(fid["matrix"]))]
        figs["discrimination"] = plots.heatmap(fid["matrix"], labels, title="discrimination matrix")
    return figs


def _prompt_figures(prompts: dict[str, Any]) -> dict[str, str]:
    figs: dict[str, str] = {}
    funnel = prompts.get("funnel") or []
    if funnel:
        figs["funnel"] = plots.bars([s.get("step") for s in funnel], [s.get("count") for s in funnel],
                                    title="prompt filter funnel", ylabel="prompts", horizontal=True)
    clusters = prompts.get("clusters") or []
    if clusters:
        figs["clusters"] = plots.bars([f"{c.get('cluster')}: {c.get('label', '')}" for c in clusters],
                                      [c.get("size") for c in clusters], title="cluster sizes",
                                      ylabel="prompts", horizontal=True)
    return figs


def render_html(data: dict[str, Any]) -> str:
    """The report of a run view (``pipeline.view.load_run``) as one self-contained HTML string."""
    figs: dict[str, Any] = {
        "fidelity": _fidelity_figures(data["fidelity"]) if data["fidelity"] else [],
        "distributions": _distribution_rows(data["fidelity"]) if data["fidelity"] else [],
        "bench": _bench_figures(data["bench"]) if data["bench"] else {},
        "prompts": _prompt_figures(data["prompts"]) if data["prompts"] else {},
    }
    stage_status = {s["stage"]: s["status"] for s in data["status"]["stages"]}
    filters: dict[str, list[str]] = {"provenance": [], "sex": [], "split": []}
    if data["personas"]:
        filters["provenance"] = sorted({p for row in data["personas"] for p in row["provenances"]})
        filters["sex"] = sorted({row["headline"].get("sex", "") for row in data["personas"]} - {""})
    if data["pairs"]:
        filters["split"] = sorted({p["split"] for p in data["pairs"]} - {""})
    html = _env().get_template("report.html.j2").render(
        d=data, figs=figs, stage_status=stage_status, filters=filters, version=__version__,
        generated=time.strftime("%Y-%m-%d %H:%M:%S %Z"))
    return html
