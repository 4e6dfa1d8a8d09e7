"""Reading and writing persona files: ``personas.jsonl`` (one Persona per line) and ``personas.parquet``.

The Parquet file is flat for analysis: source key columns, weight, one column per field value (named
exactly as the field), ``provenance:<field>`` and ``detail:<field>`` (JSON text) per field, and ``tags``
(JSON), and ``text`` when the file holds text-only personas (``Persona.text``; their source columns are
null); it round-trips to the same records as the JSONL file. Files of the first layout (JSON objects
``provenance`` and ``detail`` over all fields) are still read.

Both files are written from the mapped-frame layout (``frames.py``) chunk by chunk, so a million
personas stream to disk without a Python object per persona (:func:`write_persona_frames`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import polars as pl
from pydantic import ValidationError

from .. import __version__
from ..core.atomic import atomic_path, atomic_write_text
from ..core.errors import UserError
from ..core.hashing import file_sha256
from ..core.paths import resolve_artifact
from .frames import KEY_COLUMNS as _KEY_COLUMNS
from .frames import TEXT_COLUMN, flat_frame, jsonl_lines, persona_ids, personas_frame
from .record import PERSONA_FIELDS, SCHEMA_VERSION, Persona

JSONL_NAME = "personas.jsonl"
PARQUET_NAME = "personas.parquet"
MANIFEST_NAME = "personas_manifest.json"


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(x) for x in err.get("loc", ()))
    return f"{loc}: {err.get('msg', 'invalid')}" if loc else str(err.get("msg", "invalid"))


def _check_version(obj: dict[str, Any], where: str) -> None:
    version = obj.get("schema_version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        raise UserError(f"{where}: schema_version {version!r} is not supported (expected {SCHEMA_VERSION})")


def persona_from_obj(obj: Any, where: str) -> Persona:
    """Validate one decoded JSON object as a Persona; ``UserError`` naming ``where`` and the field."""
    if not isinstance(obj, dict):
        raise UserError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    _check_version(obj, where)
    fields = obj.get("fields")
    if isinstance(fields, dict):
        missing = [f for f in PERSONA_FIELDS if f not in fields]
        extra = [f for f in fields if f not in PERSONA_FIELDS]
        if missing:
            raise UserError(
                f"{where}: missing persona field {missing[0]!r}"
                + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
            )
        if extra:
            raise UserError(f"{where}: unknown persona field {extra[0]!r}")
    try:
        return Persona.model_validate(obj)
    except ValidationError as exc:
        raise UserError(f"{where}: {_first_error(exc)}") from None


def _read_jsonl(path: Path) -> list[Persona]:
    out: list[Persona] = []
    seen: dict[str, int] = {}
    try:
        fh = path.open(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror})") from None
    with fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UserError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
            p = persona_from_obj(obj, f"{path}:{lineno}")
            if p.id in seen:
                raise UserError(f"{path}:{lineno}: duplicate persona id {p.id} (first on line {seen[p.id]})")
            seen[p.id] = lineno
            out.append(p)
    return out


def personas_to_frame(personas: Sequence[Persona]) -> pl.DataFrame:
    """The flat Parquet layout of ``Persona`` records (see the module docstring)."""
    return flat_frame(personas_frame(personas))


def _read_parquet(path: Path) -> list[Persona]:
    try:
        df = pl.read_parquet(path)
    except Exception as exc:  # polars raises several error types for corrupt files
        raise UserError(f"{path}: not a readable Parquet file ({type(exc).__name__})") from None
    per_field = "detail" not in df.columns  # the current layout: provenance:<field>, detail:<field>
    meta = (
        [f"{kind}:{name}" for kind in ("provenance", "detail") for name in PERSONA_FIELDS]
        if per_field
        else ["provenance", "detail"]
    )
    missing = [c for c in (*_KEY_COLUMNS, *PERSONA_FIELDS, *meta, "tags") if c not in df.columns]
    if missing:
        raise UserError(f"{path}: missing column {missing[0]!r}")
    out: list[Persona] = []
    for i, row in enumerate(df.iter_rows(named=True), 1):
        where = f"{path}: row {i}"
        try:
            if per_field:
                prov = {n: row[f"provenance:{n}"] for n in PERSONA_FIELDS}
                detail = {n: json.loads(row[f"detail:{n}"]) for n in PERSONA_FIELDS}
            else:
                prov = json.loads(row["provenance"])
                detail = json.loads(row["detail"])
            tags = json.loads(row["tags"])
        except (TypeError, json.JSONDecodeError):
            raise UserError(f"{where}: provenance/detail/tags are not valid JSON") from None
        obj = {
            "schema_version": row["schema_version"],
            "id": row["id"],
            "source": None
            if row["source_year"] is None
            else {
                "year": row["source_year"],
                "state": row["source_state"],
                "serialno": row["source_serialno"],
                "sporder": row["source_sporder"],
            },
            "weight": row["weight"],
            "tags": tags,
            "fields": {
                n: {"value": row[n], "provenance": prov.get(n), "detail": detail.get(n, {})}
                for n in PERSONA_FIELDS
            },
        }
        if row.get(TEXT_COLUMN) is not None:  # a text-only persona
            obj["text"] = row[TEXT_COLUMN]
        out.append(persona_from_obj(obj, where))
    return out


def resolve_personas_path(path: str | Path) -> Path:
    """A persona file, or a directory holding ``personas.jsonl`` (or ``personas.parquet``)."""
    return resolve_artifact(path, (JSONL_NAME, PARQUET_NAME), "personas")


def read_personas(path: str | Path) -> list[Persona]:
    """Read personas from JSONL, Parquet, or a directory holding ``personas.jsonl``.

    Validates ``schema_version`` and all 33 fields; raises ``UserError`` naming the file and the line
    (or row) and field on bad input, and on an empty file.
    """
    p = resolve_personas_path(path)
    if p.suffix == ".parquet":
        personas = _read_parquet(p)
    else:
        personas = _read_jsonl(p)
    if not personas:
        raise UserError(f"{p}: no personas in file")
    return personas


def write_personas(
    personas: Iterable[Persona], out_dir: str | Path, extra_manifest: dict[str, Any] | None = None
) -> dict[str, Path]:
    """Write ``personas.jsonl``, ``personas.parquet`` and ``personas_manifest.json`` into ``out_dir``.

    Each file goes through a temp file + rename, so a crash leaves either the old file or the new one.
    Returns the written paths by kind (``jsonl``, ``parquet``, ``manifest``).
    """
    personas = list(personas)
    if not personas:
        raise UserError("no personas to write")
    return write_persona_frames([personas_frame(personas)], out_dir, extra_manifest)


#: personas encoded at once (bounds the memory of the encoded JSON Lines text and Arrow tables)
SLICE_ROWS = 10_000


#: the persona file formats :func:`write_persona_frames` can write
FORMATS: tuple[str, ...] = ("jsonl", "parquet")


def write_persona_frames(
    frames: Iterable[pl.DataFrame],
    out_dir: str | Path,
    extra_manifest: dict[str, Any] | None = None,
    formats: Sequence[str] = FORMATS,
) -> dict[str, Path]:
    """:func:`write_personas` for personas in the mapped-frame layout, one chunk at a time: each chunk is
    encoded and appended to the files and then dropped, so memory stays bounded at any count.

    ``formats``: ``jsonl`` and/or ``parquet`` (a million personas make ~6 GB of JSON Lines but ~0.2 GB of
    Parquet). A file of a format not written that an earlier run left in ``out_dir`` is removed, so a
    reader never picks up stale personas. Returns the written paths by kind (and ``manifest``).
    """
    import pyarrow.parquet as pq

    formats = tuple(dict.fromkeys(formats))
    if not formats or any(f not in FORMATS for f in formats):
        raise UserError(
            f"formats {', '.join(formats) or '(none)'}: choose one or both of {', '.join(FORMATS)}"
        )
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    paths = {"jsonl": out / JSONL_NAME, "parquet": out / PARQUET_NAME, "manifest": out / MANIFEST_NAME}
    count = 0
    with ExitStack() as stack:
        tmp = {kind: stack.enter_context(atomic_path(paths[kind])) for kind in formats}
        writer = None
        fh = open(tmp["jsonl"], "wb") if "jsonl" in tmp else None  # noqa: SIM115 - closed below
        try:
            for frame in frames:
                if frame.height == 0:
                    continue
                for part in frame.iter_slices(SLICE_ROWS):  # ~6 KB of JSON per persona: encode in slices
                    part = part.with_columns(id=persona_ids(part))  # hashed once for both files
                    if fh is not None:
                        pl.DataFrame({"line": jsonl_lines(part)}).write_csv(
                            fh, include_header=False, quote_style="never"
                        )
                    if "parquet" in tmp:
                        table = flat_frame(part).to_arrow()  # one Parquet row group per slice
                        if writer is None:
                            writer = pq.ParquetWriter(tmp["parquet"], table.schema, compression="zstd")
                        writer.write_table(table)
                count += frame.height
        finally:
            if fh is not None:
                fh.close()
            if writer is not None:
                writer.close()
        if not count:
            raise UserError("no personas to write")
    for kind in FORMATS:
        if kind not in formats:
            paths[kind].unlink(missing_ok=True)
    manifest: dict[str, Any] = {
        "package_version": __version__,
        "schema_version": SCHEMA_VERSION,
        "count": count,
        "files": {paths[kind].name: file_sha256(paths[kind]) for kind in formats},
    }
    manifest.update(extra_manifest or {})
    atomic_write_text(paths["manifest"], json.dumps(manifest, indent=2, sort_keys=True, default=str))
    return {kind: paths[kind] for kind in (*formats, "manifest")}


__all__ = [
    "JSONL_NAME",
    "MANIFEST_NAME",
    "PARQUET_NAME",
    "persona_from_obj",
    "personas_to_frame",
    "read_personas",
    "resolve_personas_path",
    "write_persona_frames",
    "write_personas",
]
