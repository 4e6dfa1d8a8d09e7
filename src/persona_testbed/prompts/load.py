"""Reading prompts: the PRISM opening prompts (data mirror) or any user file (JSONL, CSV, TXT, JSON list).

Every loader returns ``(index, text)`` items, ``index`` being the 1-based line (TXT, JSONL), row (CSV)
or list position (JSON). Malformed, empty or non-UTF-8 input raises ``UserError`` naming the file and,
where it applies, the line.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from ..core.errors import UserError
from ..data import resolve

PRISM_RELPATH = "prompts/prism/prism_opening_prompts.json"
PRISM_ATTRIBUTION = (
    'PRISM opening prompts: Kirk, H. R., et al. (2024), "The PRISM Alignment Project" '
    "(arXiv 2404.16019), dataset HannahRoseKirk/prism-alignment, licensed CC-BY-4.0."
)
TEXT_KEYS = ("text", "prompt")


def _read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path}: no such prompts file") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a directory, expected a prompts file") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise UserError(f"{path}:{line}: not valid UTF-8 (byte {exc.start})") from None
    return text


def _pick_text(obj: object, where: str) -> str:
    if isinstance(obj, str):
        return obj
    if isinstance(obj, dict):
        for key in TEXT_KEYS:
            if key in obj:
                value = obj[key]
                if not isinstance(value, str):
                    raise UserError(f"{where}: field {key!r} is {type(value).__name__}, expected a string")
                return value
        raise UserError(f"{where}: object has no 'text' or 'prompt' field")
    raise UserError(f"{where}: expected a string or an object with a 'text'/'prompt' field")


def _load_jsonl(path: Path, content: str) -> list[tuple[int, str]]:
    out = []
    for lineno, line in enumerate(content.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
        out.append((lineno, _pick_text(obj, f"{path}:{lineno}")))
    return out


def _load_json(path: Path, content: str) -> list[tuple[int, str]]:
    try:
        data = json.loads(content)
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    if not isinstance(data, list):
        raise UserError(f"{path}: expected a JSON list of prompts")
    return [(i, _pick_text(obj, f"{path}: item {i}")) for i, obj in enumerate(data, 1)]


def _load_csv(path: Path, content: str) -> list[tuple[int, str]]:
    reader = csv.DictReader(io.StringIO(content, newline=""))
    header = reader.fieldnames or []
    column = next((c for c in header if c and c.strip().lower() in TEXT_KEYS), None)
    if column is None:
        raise UserError(
            f"{path}:1: CSV has no 'text' or 'prompt' column (columns: {', '.join(header) or 'none'})"
        )
    out = []
    try:
        for row in reader:
            value = row.get(column)
            if value is None:
                raise UserError(f"{path}:{reader.line_num}: row has no value in column {column!r}")
            out.append((reader.line_num, value))
    except csv.Error as exc:
        raise UserError(f"{path}:{reader.line_num}: malformed CSV ({exc})") from None
    return out


def _load_txt(content: str) -> list[tuple[int, str]]:
    return [(i, line) for i, line in enumerate(content.splitlines(), 1) if line.strip()]


def load_prompt_file(path: str | Path) -> list[tuple[int, str]]:
    """Read prompts from ``path`` by extension: ``.jsonl``, ``.json`` (a list), ``.csv``, else one per line.

    Texts are stripped; items whose text is empty raise ``UserError`` (they are not prompts), and a file
    with no prompts at all raises ``UserError``.
    """
    p = Path(path)
    content = _read_text(p)
    suffix = p.suffix.lower()
    if suffix == ".jsonl":
        items = _load_jsonl(p, content)
    elif suffix == ".json":
        items = _load_json(p, content)
    elif suffix == ".csv":
        items = _load_csv(p, content)
    else:
        items = _load_txt(content)
    out = []
    for index, text in items:
        stripped = text.strip()
        if not stripped:
            where = f"{p}: item {index}" if suffix == ".json" else f"{p}:{index}"
            raise UserError(f"{where}: empty prompt text")
        out.append((index, stripped))
    if not out:
        raise UserError(f"{p}: no prompts in file")
    return out


def prism_path(data_dir: str | Path | None = None) -> Path:
    """The PRISM opening prompts in the data directory (``DataMissingError`` when absent)."""
    return Path(resolve(PRISM_RELPATH, data_dir))


def load_source(
    source: str | Path | None, data_dir: str | Path | None = None
) -> tuple[str, list[tuple[int, str]]]:
    """``(source name, items)`` for a user file, or for PRISM (from the data directory) when ``source`` is None."""
    path = prism_path(data_dir) if source is None else Path(source)
    return path.name, load_prompt_file(path)
