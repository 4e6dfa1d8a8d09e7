"""Human-evaluation kit: annotation sheets out (CSV + self-contained HTML form), filled sheets back in.

``export_sheets`` groups feedback pairs into sheets of one persona and ``questions`` pairs each, gives
each sheet to ``raters`` annotators (round robin) and shows the two answers of every pair in a seeded
random order per annotator. Annotators write A, B or tie in the ``choice`` column (or use the HTML form,
which downloads the same CSV). ``key.csv`` (keep it from annotators) maps A/B back to chosen/rejected;
``import_sheets`` uses it to write the canonical labels CSV read by task ``agreement``:
``persona_id,pair_id,annotator_id,choice`` with choice in chosen|rejected|tie.
"""

from __future__ import annotations

import csv
import html
import io
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..core.atomic import atomic_write_text
from ..core.errors import UserError
from ..core.outputs import check_out, staged_dir
from ..core.seeds import rng
from ..personas.record import Persona
from ..personas.render import render_full
from .records import BenchPair

SHEET_COLUMNS = [
    "annotator_id",
    "sheet",
    "persona_id",
    "pair_id",
    "question",
    "answer_a",
    "answer_b",
    "choice",
]
LABEL_COLUMNS = ["persona_id", "pair_id", "annotator_id", "choice"]
KEY_COLUMNS = ["annotator_id", "sheet", "persona_id", "pair_id", "answer_a_is"]
CHOICES = ("chosen", "rejected", "tie")
#: the marker kind of a sheets directory
HUMAN_KIND = "human-sheets"


@dataclass(frozen=True)
class LabelRow:
    line: int
    persona_id: str
    pair_id: str
    annotator_id: str
    choice: str


def _csv_text(columns: Sequence[str], rows: Sequence[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({c: r.get(c, "") for c in columns})
    return buf.getvalue()


def read_csv_rows(path: Path, required: Sequence[str]) -> list[tuple[int, dict[str, str]]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror})") from None
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in required if c not in (reader.fieldnames or [])]
    if missing:
        raise UserError(f"{path}: missing column {missing[0]!r} (need {', '.join(required)})")
    return [(i, {k: (v or "").strip() for k, v in row.items() if k}) for i, row in enumerate(reader, 2)]


def read_labels(path: str | Path) -> list[LabelRow]:
    """The canonical labels CSV (persona_id, pair_id, annotator_id, choice in chosen|rejected|tie)."""
    p = Path(path)
    out: list[LabelRow] = []
    seen: set[tuple[str, str]] = set()
    for line, row in read_csv_rows(p, LABEL_COLUMNS):
        for c in LABEL_COLUMNS:
            if not row.get(c):
                raise UserError(f"{p}:{line}: empty field {c!r}")
        choice = row["choice"].lower()
        if choice not in CHOICES:
            raise UserError(f"{p}:{line}: choice {row['choice']!r} must be one of {', '.join(CHOICES)}")
        key = (row["pair_id"], row["annotator_id"])
        if key in seen:
            raise UserError(f"{p}:{line}: annotator {key[1]} labelled pair {key[0]} twice")
        seen.add(key)
        out.append(LabelRow(line, row["persona_id"], row["pair_id"], row["annotator_id"], choice))
    if not out:
        raise UserError(f"{p}: no labels in file")
    return out


def plan_sheets(pairs: Sequence[BenchPair], n: int, questions: int, seed: int) -> list[list[BenchPair]]:
    """Seeded sheets of one persona each, up to ``questions`` pairs per sheet, ``n`` pairs in all."""
    if n < 1 or questions < 1:
        raise UserError("--n and --questions must be at least 1")
    by_persona: dict[str, list[BenchPair]] = {}
    for p in pairs:
        by_persona.setdefault(p.persona_id, []).append(p)
    ids = sorted(by_persona)
    sheets: list[list[BenchPair]] = []
    total = 0
    for i in rng(seed, "bench.human.personas").permutation(len(ids)):
        own = sorted(by_persona[ids[int(i)]], key=lambda p: p.id)
        order = rng(seed, "bench.human.pairs", ids[int(i)]).permutation(len(own))
        take = [own[int(j)] for j in order[: min(questions, n - total)]]
        sheets.append(take)
        total += len(take)
        if total >= n:
            break
    if total < n:
        raise UserError(f"--n {n} exceeds the {len(pairs)} pairs available")
    return sheets


def _html_form(annotator: str, sheets: list[tuple[int, Persona, list[dict]]]) -> str:
    e = html.escape
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>PERSONA annotation: {e(annotator)}</title>",
        "<style>body{font-family:sans-serif;max-width:60em;margin:auto;padding:1em}"
        "pre{white-space:pre-wrap;background:#f4f4f4;padding:.5em}.ans{display:flex;gap:1em}"
        ".ans div{flex:1;border:1px solid #ccc;padding:.5em;white-space:pre-wrap}"
        "fieldset{margin:1em 0}</style></head><body>",
        f"<h1>Annotation sheet for {e(annotator)}</h1>",
        "<p>Read the profile, then for each question pick the answer <b>this person</b> would prefer "
        "(or <i>tie</i>). When done, press <b>Download CSV</b> and send the file back.</p>",
        "<form id='f'>",
    ]
    rows_js = []
    for sheet_no, persona, rows in sheets:
        parts.append(
            f"<h2>Sheet {sheet_no}: persona {e(persona.id)}</h2><pre>{e(render_full(persona))}</pre>"
        )
        for r in rows:
            name = f"c{len(rows_js)}"
            rows_js.append(dict(r, field=name))
            parts.append(
                f"<fieldset><legend>{e(r['question'])}</legend><div class='ans'>"
                f"<div><b>A</b><br>{e(r['answer_a'])}</div><div><b>B</b><br>{e(r['answer_b'])}</div></div>"
                + "".join(
                    f"<label><input type='radio' name='{name}' value='{v}'> {v}</label> "
                    for v in ("A", "B", "tie")
                )
                + "</fieldset>"
            )
    data = json.dumps({"columns": SHEET_COLUMNS, "rows": rows_js}, ensure_ascii=True).replace("<", "\\u003c")
    parts += [
        "</form><button id='dl'>Download CSV</button>",
        f"<script type='application/json' id='data'>{data}</script>",
        "<script>const D=JSON.parse(document.getElementById('data').textContent);"
        "function q(v){v=String(v);return /[\",\\n]/.test(v)?'\"'+v.replace(/\"/g,'\"\"')+'\"':v}"
        "document.getElementById('dl').onclick=function(){const f=document.getElementById('f');"
        "const lines=[D.columns.join(',')];for(const r of D.rows){const c=f.querySelector("
        "'input[name='+r.field+']:checked');r.choice=c?c.value:'';"
        "lines.push(D.columns.map(k=>q(r[k]??'')).join(','))}"
        "const a=document.createElement('a');a.href=URL.createObjectURL(new Blob([lines.join('\\n')+'\\n'],"
        "{type:'text/csv'}));a.download='" + e(annotator) + ".csv';a.click()};</script>",
        "</body></html>",
    ]
    return "\n".join(parts)


def export_sheets(
    pairs: Sequence[BenchPair],
    personas: Sequence[Persona],
    out_dir: str | Path,
    *,
    n: int = 20,
    annotators: int = 4,
    questions: int = 10,
    raters: int = 3,
    seed: int = 0,
    inputs: Iterable[str | os.PathLike[str]] = (),
    force: bool = False,
) -> dict:
    """Write ``annotator-XX.csv`` + ``annotator-XX.html`` per annotator, ``key.csv`` and ``README.txt``.

    ``out_dir`` is built in a temp sibling and renamed into place (marker kind ``human-sheets``); it may not
    be one of ``inputs`` (the pairs / personas paths), contain one or lie inside one; an existing non-empty
    directory is replaced only when it is a previous kit and ``force`` is given (``core/outputs.py``).
    """
    if annotators < 1 or raters < 1:
        raise UserError("--annotators and --raters must be at least 1")
    if raters > annotators:
        raise UserError(f"--raters {raters} exceeds --annotators {annotators}")
    inputs = list(inputs)
    check_out(out_dir, HUMAN_KIND, inputs=inputs, force=force)
    by_id = {p.id: p for p in personas}
    for pair in pairs:
        if pair.persona_id not in by_id:
            raise UserError(f"pair {pair.id}: persona_id {pair.persona_id!r} is not in the persona set")
    sheets = plan_sheets(pairs, n, questions, seed)
    names = [f"a{i + 1:02d}" for i in range(annotators)]
    assigned: dict[str, list[int]] = {a: [] for a in names}
    for s in range(len(sheets)):
        for r in range(raters):
            assigned[names[(s * raters + r) % annotators]].append(s)
    key_rows: list[dict] = []
    files = []
    texts: dict[str, str] = {}
    for a in names:
        rows_all, html_sheets = [], []
        for s in assigned[a]:
            rows = []
            for pair in sheets[s]:
                chosen_first = bool(rng(seed, "bench.human.order", pair.id, a).integers(0, 2))
                ans_a, ans_b = (pair.chosen, pair.rejected) if chosen_first else (pair.rejected, pair.chosen)
                row = dict(
                    annotator_id=a,
                    sheet=s + 1,
                    persona_id=pair.persona_id,
                    pair_id=pair.id,
                    question=pair.question,
                    answer_a=ans_a,
                    answer_b=ans_b,
                    choice="",
                )
                rows.append(row)
                key_rows.append(
                    dict(
                        annotator_id=a,
                        sheet=s + 1,
                        persona_id=pair.persona_id,
                        pair_id=pair.id,
                        answer_a_is="chosen" if chosen_first else "rejected",
                    )
                )
            rows_all += rows
            html_sheets.append((s + 1, by_id[sheets[s][0].persona_id], rows))
        if not rows_all:
            continue
        texts[f"annotator-{a}.csv"] = _csv_text(SHEET_COLUMNS, rows_all)
        texts[f"annotator-{a}.html"] = _html_form(a, html_sheets)
        files.append(a)
    texts["key.csv"] = _csv_text(KEY_COLUMNS, key_rows)
    texts["README.txt"] = (
        "PERSONA human evaluation kit\n\n"
        "Give each annotator their annotator-XX.html (or .csv). For each question they pick the answer the\n"
        "persona would prefer: A, B or tie (column 'choice'). Keep key.csv away from annotators.\n"
        "Read the filled sheets back with:\n"
        "  persona-testbed bench human import FILLED_DIR --key key.csv --out labels.csv\n"
    )
    with staged_dir(out_dir, HUMAN_KIND, inputs=inputs, force=force) as build:
        for name, text in texts.items():
            (build / name).write_bytes(text.encode("utf-8"))
    return {
        "sheets": len(sheets),
        "pairs": sum(len(s) for s in sheets),
        "annotators": files,
        "rows": len(key_rows),
        "out_dir": str(out_dir),
    }


def import_sheets(
    paths: Sequence[str | Path], key: str | Path, out: str | Path | None = None
) -> list[LabelRow]:
    """Filled sheets (files or directories of ``annotator-*.csv``) + key -> canonical labels (written to ``out``)."""
    key_p = Path(key)
    keymap: dict[tuple[str, str], dict[str, str]] = {}
    for _, row in read_csv_rows(key_p, KEY_COLUMNS):
        keymap[(row["annotator_id"], row["pair_id"])] = row
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(p.glob("annotator-*.csv"))
        elif p.exists():
            files.append(p)
        else:
            raise UserError(f"{p}: no such sheet file or directory")
    if not files:
        raise UserError("no filled sheets found (annotator-*.csv)")
    labels: list[LabelRow] = []
    seen: set[tuple[str, str]] = set()
    for f in files:
        for line, row in read_csv_rows(f, SHEET_COLUMNS):
            k = (row["annotator_id"], row["pair_id"])
            if k not in keymap:
                raise UserError(f"{f}:{line}: annotator {k[0]} / pair {k[1]} is not in {key_p}")
            if k in seen:
                raise UserError(f"{f}:{line}: annotator {k[0]} labelled pair {k[1]} twice")
            seen.add(k)
            choice = row["choice"].strip()
            if choice.lower() == "tie":
                label = "tie"
            elif choice.upper() in ("A", "B"):
                a_is = keymap[k]["answer_a_is"]
                other = "rejected" if a_is == "chosen" else "chosen"
                label = a_is if choice.upper() == "A" else other
            else:
                raise UserError(f"{f}:{line}: choice {choice!r} must be A, B or tie")
            labels.append(LabelRow(line, keymap[k]["persona_id"], k[1], k[0], label))
    if out is not None:
        atomic_write_text(
            Path(out),
            _csv_text(
                LABEL_COLUMNS,
                [
                    {
                        "persona_id": r.persona_id,
                        "pair_id": r.pair_id,
                        "annotator_id": r.annotator_id,
                        "choice": r.choice,
                    }
                    for r in labels
                ],
            ),
        )
    return labels


__all__ = ["LabelRow", "export_sheets", "import_sheets", "plan_sheets", "read_labels"]
