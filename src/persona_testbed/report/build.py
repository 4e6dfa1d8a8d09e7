"""Assemble the HTML report: load artifacts, draw plots, render one self-contained page.

The page is rendered from a run view (``pipeline.view.load_run``): this package never reads a run directory.
Jinja2 with autoescape on: every string from personas, prompts and models is escaped. The persona and pair
browsers are drawn in the page from one embedded data block (``browser_data``: every string stored once in
a table, rows of indices; gzip + base64, decompressed by the browser's ``DecompressionStream``); the page's
only script builds the cards with ``textContent`` (never markup from data), pages them and filters them.

A plot whose figures are all zero or undefined becomes a one-line note (``{"note": ...}``) instead of empty axes.
"""

from __future__ import annotations

import base64
import gzip
import json
import math
import time
from typing import Any

import jinja2
import numpy as np

from .. import __version__
from . import plots


def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("persona_testbed.report", "templates"),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
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


NOISE_DRAWS = 400  # multinomial draws behind each expected sampling-noise TVD


def _blank(values: Any) -> bool:
    """All values zero, missing or undefined: nothing to plot."""
    vals = [v for v in values]
    return all(v is None or (isinstance(v, float) and math.isnan(v)) or v == 0 for v in vals)


def _figure(title: str, values: Any, draw: Any) -> dict[str, str]:
    """``{"img": data-URI}``, or ``{"note": one line}`` when every value is zero or undefined."""
    if _blank(values):
        return {"note": f"{title}: every value is zero or undefined; nothing to plot."}
    return {"img": draw()}


def noise_tvd(shares: dict[str, float], n: int, *, draws: int = NOISE_DRAWS, seed: int = 0) -> float | None:
    """Expected TVD between ``n`` draws from ``shares`` and ``shares`` itself: what sampling noise alone gives.

    Monte Carlo over ``draws`` multinomial samples (seeded, so the report is reproducible); None without
    shares or n.
    """
    p = np.array([max(0.0, float(v)) for v in shares.values()], dtype=float)
    if n <= 0 or p.size == 0 or p.sum() <= 0:
        return None
    p = p / p.sum()
    counts = np.random.default_rng(seed).multinomial(int(n), p, size=draws)
    return float(np.mean(0.5 * np.abs(counts / n - p).sum(axis=1)))


def _fidelity_figures(fid: dict[str, Any]) -> list[dict[str, Any]]:
    """One chart: measured TVD per attribute beside the TVD sampling noise alone would give at this n."""
    fields = [f for f in fid.get("fields", []) if f.get("tvd") is not None]
    if not fields:
        return []
    names = [f.get("field") for f in fields]
    measured = [f.get("tvd") for f in fields]
    noise = [f.get("noise_tvd") for f in fields]
    title = "TVD per attribute: personas vs census, and sampling noise alone"
    fig = _figure(
        title,
        measured + noise,
        lambda: plots.paired_bars(
            names,
            {"measured TVD": measured, f"expected from sampling noise (n = {fid.get('n')})": noise},
            title=title,
            xlabel="TVD",
        ),
    )
    return [{"field": "TVD per attribute", **fig}]


def _with_noise(fid: dict[str, Any]) -> dict[str, Any]:
    n = int(fid.get("n") or 0)
    fields = [
        {**f, "noise_tvd": noise_tvd(f.get("source") or {}, n, seed=i)}
        for i, f in enumerate(fid.get("fields", []))
    ]
    return {**fid, "fields": fields}


def _distribution_rows(fid: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for f in fid.get("fields", []):
        src, smp = f.get("source") or {}, f.get("sample") or {}
        cats = sorted(set(src) | set(smp), key=lambda c: -(src.get(c, 0.0) + smp.get(c, 0.0)))
        out.append(
            {
                "field": f.get("field", ""),
                "tvd": f.get("tvd"),
                "rows": [
                    {"label": c, "census": float(src.get(c, 0.0)), "personas": float(smp.get(c, 0.0))}
                    for c in cats
                ],
            }
        )
    return out


def _bench_figures(bench: dict[str, Any]) -> dict[str, Any]:
    figs: dict[str, Any] = {}
    main = bench.get("main") or {}
    modes = main.get("modes") or []
    if modes:
        figs["main"] = _figure(
            "accuracy per mode",
            [m.get("accuracy") for m in modes],
            lambda: plots.bars(
                [m.get("mode") for m in modes],
                [m.get("accuracy") for m in modes],
                lo=[m.get("ci_low") for m in modes],
                hi=[m.get("ci_high") for m in modes],
                title="accuracy per mode (95% CI)",
                ylabel="accuracy",
                ylim=(0, 1.05),
            ),
        )
    passk = bench.get("passk") or {}
    if passk.get("k") and passk.get("pass_at_k"):
        figs["passk"] = _figure(
            "pass@k",
            passk["pass_at_k"],
            lambda: plots.curve(passk["k"], passk["pass_at_k"], title="pass@k", xlabel="k", ylabel="pass@k"),
        )
    loo = (bench.get("loo") or {}).get("attributes") or []
    if loo:
        figs["loo"] = _loo_figure(loo)
    groups = (bench.get("intersections") or {}).get("groups") or []
    if groups:
        figs["intersections"] = _figure(
            "accuracy per group",
            [g.get("accuracy") for g in groups],
            lambda: plots.bars(
                [g.get("group") for g in groups],
                [g.get("accuracy") for g in groups],
                lo=[g.get("ci_low") for g in groups],
                hi=[g.get("ci_high") for g in groups],
                title="accuracy per group (95% CI)",
                ylabel="accuracy",
                ylim=(0, 1.05),
                horizontal=True,
            ),
        )
    fid = bench.get("fidelity") or {}
    if fid.get("matrix"):
        labels = fid.get("labels") or [str(i) for i in range(len(fid["matrix"]))]
        figs["discrimination"] = {"img": plots.heatmap(fid["matrix"], labels, title="discrimination matrix")}
    for task, board in (bench.get("leaderboards") or {}).items():
        figs[f"leaderboard:{task}"] = _leaderboard_figure(task, board)
    return figs


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not math.isnan(x)


def _loo_figure(loo: list[dict[str, Any]]) -> dict[str, str]:
    """κ(full, ablated) − κ(full, control) per attribute with its paired CI: the control arm's κ is the
    agreement sampling noise alone leaves, so 0 means "no effect" and below 0 "the attribute matters".
    Results written before the control arm (no difference) fall back to the raw κ."""
    adjusted = any(_finite(a.get("kappa_difference")) for a in loo)
    key, lo, hi = ("kappa_difference", "kd_low", "kd_high") if adjusted else ("kappa", "ci_low", "ci_high")
    values = [a.get(key) for a in loo]
    if not any(_finite(v) for v in values):
        return {
            "note": "Cohen's κ per attribute: undefined for every attribute (constant judgements); nothing to plot."
        }
    ends = [x for a in loo for x in (a.get(lo), a.get(hi), a.get(key)) if _finite(x)]
    span = max(1.05, *(abs(x) * 1.05 for x in ends))
    return {
        "img": plots.bars(
            [a.get("attribute") for a in loo],
            values,
            lo=[a.get(lo) for a in loo],
            hi=[a.get(hi) for a in loo],
            title=(
                "κ(full, attribute removed) − κ(full, control), 95% CI: below 0 = the attribute matters"
                if adjusted
                else "Cohen's κ, full persona vs attribute removed (no control arm in these results)"
            ),
            ylabel="κ − control κ" if adjusted else "κ",
            ylim=(-span, span if adjusted else 1.05),
            horizontal=True,
        )
    }


def _leaderboard_figure(task: str, board: dict[str, Any]) -> dict[str, str]:
    """ITT accuracy per arm (mode), one bar per candidate, with 95% CIs."""
    rows = board.get("leaderboard") or []
    arms = list(dict.fromkeys(r["arm"] for r in rows))
    cands = list(board.get("candidates") or dict.fromkeys(r["candidate"] for r in rows))
    cell = {(r["candidate"], r["arm"]): r["accuracy"] for r in rows}

    def col(c: str, key: str) -> list[Any]:
        return [(cell.get((c, a)) or {}).get(key) for a in arms]

    title = f"{task} leaderboard: accuracy (ITT) per mode, 95% CI"
    return _figure(
        title,
        [r["accuracy"].get("estimate") for r in rows],
        lambda: plots.paired_bars(
            arms,
            {c: col(c, "estimate") for c in cands},
            lo={c: col(c, "low") for c in cands},
            hi={c: col(c, "high") for c in cands},
            title=title,
            xlabel="accuracy",
            xlim=(0, 1.05),
        ),
    )


# -- the persona and pair browsers: one compact, compressed data block --------------------------------------


class _Strings:
    """A string table: each distinct string stored once, records refer to it by index."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.items: list[str] = []

    def __call__(self, s: Any) -> int:
        s = "" if s is None else str(s)
        i = self.index.get(s)
        if i is None:
            i = self.index[s] = len(self.items)
            self.items.append(s)
        return i


def _source_label(src: dict[str, Any]) -> str:
    if not src:
        return ""
    return (
        f"census {src.get('year')} state {src.get('state')} SERIALNO {src.get('serialno')} "
        f"SPORDER {src.get('sporder')}"
    )


PAIR_TEXT_BUDGET = (
    13_000_000  # characters of answers + critiques embedded (~6 MB once compressed and encoded)
)


def text_cap(lengths: list[int], budget: int = PAIR_TEXT_BUDGET) -> int | None:
    """The largest per-text length cut that keeps the sum of ``min(length, cut)`` within ``budget``.

    None when every text fits whole. Keeps the report of a paper-scale run (10,000 pairs) under 8 MB
    whatever the answers' lengths; the page says where texts were cut (pairs.jsonl keeps them whole).
    """
    if sum(lengths) <= budget:
        return None
    lo, hi = 0, max(lengths)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if sum(min(n, mid) for n in lengths) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return max(lo, 1)


def _cap(text: str, cap: int | None) -> str:
    return text if cap is None or len(text) <= cap else text[: max(1, cap - 1)] + "…"


def browser_data(data: dict[str, Any]) -> dict[str, Any]:
    """Personas and pairs as a string table plus rows of indices (the form the page embeds).

    ``personas.rows``: ``[id, source, flagged, values..., provenances..., details...]`` (one index per
    field in ``personas.fields``); ``pairs.rows``: ``[persona_id, prompt_id, question, split, status,
    error, flags, rejected, chosen, critique]``.
    """
    st = _Strings()
    out: dict[str, Any] = {"personas": None, "pairs": None}
    personas = data.get("personas") or []
    if personas:
        names = list(dict.fromkeys(f["name"] for p in personas for f in p["fields"]))
        rows = []
        for p in personas:
            by = {f["name"]: f for f in p["fields"]}
            get = [by.get(n) or {} for n in names]
            rows.append(
                [
                    st(p["id"]),
                    st(_source_label(p.get("source") or {})),
                    int(bool(p.get("flagged"))),
                    *(st(f.get("value")) for f in get),
                    *(st(f.get("provenance")) for f in get),
                    *(st(f.get("detail")) for f in get),
                ]
            )
        out["personas"] = {
            "fields": names,
            "rows": rows,
            "total": data.get("n_personas", len(personas)),
            "headline": [
                n
                for n in ("age", "sex", "race", "education", "religion", "occupation category")
                if n in names
            ],
        }
    pairs = data.get("pairs") or []
    if pairs:
        cap = text_cap([len(p[k]) for p in pairs for k in ("rejected", "chosen", "critique")])
        out["pairs"] = {
            "rows": [
                [
                    st(p["persona_id"]),
                    st(p["prompt_id"]),
                    st(p["question"]),
                    st(p["split"]),
                    st(p["status"]),
                    st(p["error"]),
                    st(" ".join(p.get("flags") or [])),
                    st(_cap(p["rejected"], cap)),
                    st(_cap(p["chosen"], cap)),
                    st(_cap(p["critique"], cap)),
                ]
                for p in pairs
            ],
            "total": data.get("n_pairs", len(pairs)),
            "text_cap": cap,
        }
    out["strings"] = st.items
    return out


def encode_browser_data(payload: dict[str, Any]) -> str:
    """Compact JSON, gzip (no timestamp: the same run gives the same bytes), base64."""
    raw = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return base64.b64encode(gzip.compress(raw, compresslevel=9, mtime=0)).decode("ascii")


def decode_browser_data(blob: str) -> dict[str, Any]:
    """The inverse of ``encode_browser_data`` (tests and tools read a report's data with it)."""
    return json.loads(gzip.decompress(base64.b64decode(blob)).decode("utf-8"))


def _prompt_figures(prompts: dict[str, Any]) -> dict[str, Any]:
    figs: dict[str, Any] = {}
    funnel = prompts.get("funnel") or []
    if funnel:
        figs["funnel"] = _figure(
            "prompt filter funnel",
            [s.get("count") for s in funnel],
            lambda: plots.bars(
                [s.get("step") for s in funnel],
                [s.get("count") for s in funnel],
                title="prompt filter funnel",
                ylabel="prompts",
                horizontal=True,
            ),
        )
    clusters = prompts.get("clusters") or []
    if clusters:
        figs["clusters"] = _figure(
            "cluster sizes",
            [c.get("size") for c in clusters],
            lambda: plots.bars(
                [f"{c.get('cluster')}: {c.get('label', '')}" for c in clusters],
                [c.get("size") for c in clusters],
                title="cluster sizes",
                ylabel="prompts",
                horizontal=True,
            ),
        )
    return figs


def _stage_times(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    calls = status.get("calls") or {}
    return {name: {"model_s": c.get("model_s"), "queue_s": c.get("queue_s")} for name, c in calls.items()}


def render_html(data: dict[str, Any]) -> str:
    """The report of a run view (``pipeline.view.load_run``) as one self-contained HTML string."""
    fidelity = _with_noise(data["fidelity"]) if data["fidelity"] else None
    figs: dict[str, Any] = {
        "fidelity": _fidelity_figures(fidelity) if fidelity else [],
        "distributions": _distribution_rows(fidelity) if fidelity else [],
        "bench": _bench_figures(data["bench"]) if data["bench"] else {},
        "prompts": _prompt_figures(data["prompts"]) if data["prompts"] else {},
    }
    stage_status = {s["stage"]: s["status"] for s in data["status"]["stages"]}
    browser = browser_data(data)
    html = (
        _env()
        .get_template("report.html.j2")
        .render(
            d=data,
            fidelity=fidelity,
            figs=figs,
            stage_status=stage_status,
            version=__version__,
            pair_text_cap=(browser.get("pairs") or {}).get("text_cap"),
            browser_blob=encode_browser_data(browser),
            stage_times=_stage_times(data["status"]),
            generated=time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        )
    )
    return html
