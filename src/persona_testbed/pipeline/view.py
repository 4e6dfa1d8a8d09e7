"""Read a run directory's artifacts into plain data for the report (each section may be absent).

The report reads files, never stage code, so it can be built (and tested) from synthetic artifacts:

- ``manifest.json``, ``config.toml``, ``calls.db``        run summary (via ``runs.status``)
- ``personas/fidelity.json`` ``{"n", "fields": [{"field", "tvd", "p_value", "source": {label: share},
                              "sample": {label: share}, "provenance": {kind: count}}], "intersections": [...]}``
- ``enrich/personas.jsonl`` or ``personas/personas.jsonl``  Persona records (one JSON object per line)
- ``prompts/summary.json``   ``{"funnel": [{"step", "count"}], "clusters": [{"cluster", "label", "size",
                              "train", "held_out"}]}``
- ``feedback/pairs.jsonl``   ``{"persona_id", "prompt_id", "question", "split", "rejected", "critique",
                              "chosen", "status", "error", "flags", "leaky"}`` per line
- ``bench/summary.json``     ``{"main": {"modes": [{"mode", "accuracy", "ci_low", "ci_high", "n"}]},
                              "passk": {"k": [...], "pass_at_k": [...]}, "loo": {"full_accuracy",
                              "attributes": [{"attribute", "kappa", "ci_low", "ci_high", "n"}]},
                              "intersections": {"groups": [{"group", "accuracy", "ci_low", "ci_high", "n"}],
                              "max_gap"}, "fidelity": {"accuracy", "kappa", "position_bias",
                              "labels": [...], "matrix": [[...]], "mean_diagonal_rank"}, "leaderboards":
                              {task: {"candidates", "leaderboard": [...], "differences": [...]}}}``

Limits: ``max_personas`` / ``max_pairs`` records (evenly spread over the file when there are more); each
pair text is cut at ``TEXT_CHARS`` (the JSONL file keeps it whole). The report embeds them once, compactly,
and pages and filters them in the browser.
"""

from __future__ import annotations

import json
import time
import tomllib
from pathlib import Path
from typing import Any

from ..core.atomic import atomic_write_text
from ..core.errors import UserError
from ..core.outputs import translate_os_errors
from ..report.build import render_html
from .rundir import RunDir
from .status import run_status

DETAIL_CHARS = 400  # provenance details shown on hover; long ones are cut (the JSONL file has them all)
TEXT_CHARS = 2000  # a pair's answers and critique in the report; longer ones are cut (pairs.jsonl has them)
MAX_PERSONAS = 2000  # default limits of a report (config [report] max_personas / max_pairs)
MAX_PAIRS = 10000


def _cut(text: str, limit: int = TEXT_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _json(path: Path) -> Any | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not valid JSON ({exc})") from None


def _jsonl(path: Path, limit: int | None = None) -> tuple[list[dict[str, Any]], int]:
    """Up to ``limit`` records (evenly spread over the file) and the total count.

    Two passes: count the records, then parse only the chosen lines (a paper-scale pairs file has
    hundreds of thousands of lines; the report shows a few hundred).
    """
    if not path.is_file():
        return [], 0
    with path.open("rb") as fh:
        total = sum(1 for line in fh if line.strip())
    chosen: set[int] | None = None
    if limit is not None and total > limit:
        step = total / limit
        chosen = {int(i * step) for i in range(limit)}
    rows: list[dict[str, Any]] = []
    k = -1
    with path.open(encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            k += 1
            if chosen is not None and k not in chosen:
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                raise UserError(f"{path}:{lineno}: not valid JSON") from None
            if isinstance(obj, dict):
                rows.append(obj)
    return rows, total


def personas_file(run: RunDir, manifest: dict[str, Any] | None = None) -> Path | None:
    """The personas the run used: the enriched set when the run's stages include enrichment."""
    order = (manifest or {}).get("stage_order")
    rels = ["enrich/personas.jsonl", "personas/personas.jsonl"]
    if order is not None and "enrich" not in order:
        rels = rels[1:]  # a stale enrich/ from an earlier configuration is not this run's persona set
    for rel in rels:
        if (run.path / rel).is_file():
            return run.path / rel
    return None


def _persona_rows(path: Path | None, limit: int) -> tuple[list[dict[str, Any]], int]:
    if path is None:
        return [], 0
    raw, total = _jsonl(path, limit)
    out = []
    for obj in raw:
        fields = obj.get("fields") or {}
        rows = []
        for name, fv in fields.items():
            if isinstance(fv, dict):
                detail = json.dumps(fv.get("detail") or {}, ensure_ascii=False, sort_keys=True)
                rows.append(
                    {
                        "name": name,
                        "value": str(fv.get("value", "")),
                        "provenance": str(fv.get("provenance", "")),
                        "detail": detail if len(detail) <= DETAIL_CHARS else detail[: DETAIL_CHARS - 1] + "…",
                    }
                )
        src = obj.get("source") or {}
        out.append(
            {
                "id": str(obj.get("id", "")),
                "source": src,
                "fields": rows,
                "provenances": sorted({r["provenance"] for r in rows}),
                "flagged": any(r["provenance"] == "pending" or not r["value"] for r in rows),
                "headline": {
                    r["name"]: r["value"]
                    for r in rows
                    if r["name"] in ("age", "sex", "race", "education", "religion")
                },
            }
        )
    return out, total


def _pairs(path: Path, limit: int) -> tuple[list[dict[str, Any]], int]:
    raw, total = _jsonl(path, limit)
    pairs = []
    for obj in raw:
        pairs.append(
            {
                "persona_id": str(obj.get("persona_id", "")),
                "prompt_id": str(obj.get("prompt_id", "")),
                "question": str(obj.get("question") or obj.get("prompt") or obj.get("prompt_text") or ""),
                "split": str(obj.get("split", "")),
                "rejected": _cut(str(obj.get("rejected") or "")),
                "critique": _cut(str(obj.get("critique") or "")),
                "chosen": _cut(str(obj.get("chosen") or "")),
                "status": str(obj.get("status") or "ok"),
                "error": str(obj.get("error") or ""),
                "flags": [str(f) for f in (obj.get("flags") or [])] + (["leaky"] if obj.get("leaky") else []),
            }
        )
    return pairs, total


def load_run(
    path: str | Path, max_personas: int = MAX_PERSONAS, max_pairs: int = MAX_PAIRS, writer: str | None = None
) -> dict[str, Any]:
    """Everything the report shows, as plain data; a section is ``None`` when its stage did not run."""

    run = RunDir(path)
    if not run.path.is_dir():
        raise UserError(f"{run.path}: no such run directory")
    if not run.manifest_path.is_file():
        raise UserError(f"{run.path}: not a run directory (no manifest.json)")
    status = run_status(run.path, writer=writer)
    manifest = run.read_manifest()
    config_text = (
        run.config_path.read_text(encoding="utf-8", errors="replace") if run.config_path.is_file() else ""
    )
    try:
        config = tomllib.loads(config_text) if config_text else {}
    except tomllib.TOMLDecodeError:
        config = {}
    personas, n_personas = _persona_rows(personas_file(run, manifest), max_personas)
    pairs, n_pairs = _pairs(run.path / "feedback" / "pairs.jsonl", max_pairs)
    return {
        "run_dir": str(run.path),
        "manifest": manifest,
        "status": status,
        "config_text": config_text,
        "config": config,
        "fidelity": _json(run.path / "personas" / "fidelity.json"),
        "personas": personas if n_personas else None,
        "n_personas": n_personas,
        "prompts": _json(run.path / "prompts" / "summary.json"),
        "pairs": pairs if n_pairs else None,
        "n_pairs": n_pairs,
        "pair_stats": _json(run.path / "feedback" / "stats.json"),
        "bench": _json(run.path / "bench" / "summary.json"),
    }


#: how a report this tool wrote starts (``report.html.j2``); any other existing file is never overwritten
REPORT_SIGNATURE = b'<meta name="generator" content="persona-testbed'


def _check_report_target(target: Path) -> None:
    """Refuse to overwrite a file that is not a report this tool wrote (one line naming it)."""
    if target.is_dir():
        raise UserError(f"{target}: is a directory; choose an .html file for --out")
    if target.exists():
        with target.open("rb") as fh:
            head = fh.read(4096)
        if REPORT_SIGNATURE not in head:
            raise UserError(f"{target}: exists and is not a persona-testbed report; choose another --out")


def write_report(
    path: str | Path, out: str | Path | None = None, writer: str | None = None
) -> dict[str, Any]:
    """Write the report of the run at ``path`` (default ``RUN/report/index.html``) atomically.

    Returns the path written, its size and the render time in seconds.
    """
    run = RunDir(path)
    if not run.path.is_dir():
        raise UserError(f"{run.path}: no such run directory")
    try:
        cfg = (
            tomllib.loads(run.config_path.read_text(encoding="utf-8")).get("report", {})
            if run.config_path.is_file()
            else {}
        )
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        cfg = {}
    start = time.perf_counter()
    data = load_run(
        run.path,
        max_personas=int(cfg.get("max_personas", MAX_PERSONAS)),
        max_pairs=int(cfg.get("max_pairs", MAX_PAIRS)),
        writer=writer,
    )
    html = render_html(data)
    target = Path(out) if out else run.path / "report" / "index.html"
    if target.is_dir():
        target = target / "index.html"
    _check_report_target(target)
    with translate_os_errors(target):
        atomic_write_text(target, html)
    return {
        "report": str(target),
        "bytes": target.stat().st_size,
        "render_s": round(time.perf_counter() - start, 3),
    }
