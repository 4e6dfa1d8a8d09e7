"""Personas as columns: the *mapped frame* layout and the file encodings built from it.

A mapped frame (``build.map_frame`` output, or :func:`personas_frame` of ``Persona`` records) has one row
per persona: ``_draw``, ``_year``, ``_state``, ``SERIALNO``, ``SPORDER``, ``_weight`` (or an ``id``
column), then per field ``v:<field>`` (value), ``p:<field>`` (provenance), ``d:<field>`` (detail, compact
JSON text), and ``t:<kind>`` tag lists. The functions here turn such frames into persona ids, JSON Lines
and the flat Parquet layout without building a Python object per persona, so a million personas stream to
disk in bounded memory (``io.write_persona_frames``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

import polars as pl

from .record import PERSONA_FIELDS, SCHEMA_VERSION, Persona
from .tags import TAG_KINDS

#: flat Parquet key columns (``io``'s layout), in order
KEY_COLUMNS = (
    "id",
    "schema_version",
    "source_year",
    "source_state",
    "source_serialno",
    "source_sporder",
    "weight",
)
#: the text of text-only personas (``Persona.text``): a column only in frames and files that hold one
TEXT_COLUMN = "text"


def _compact(obj: object) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def personas_frame(personas: Sequence[Persona]) -> pl.DataFrame:
    """The mapped-frame layout of ``Persona`` records (their ids in an ``id`` column)."""
    src = [p.source for p in personas]  # None for text-only personas: null key columns
    data: dict[str, pl.Series] = {
        "id": pl.Series([p.id for p in personas], dtype=pl.Utf8),
        "_year": pl.Series([s.year if s else None for s in src], dtype=pl.Int64),
        "_state": pl.Series([s.state if s else None for s in src], dtype=pl.Utf8),
        "SERIALNO": pl.Series([s.serialno if s else None for s in src], dtype=pl.Utf8),
        "SPORDER": pl.Series([s.sporder if s else None for s in src], dtype=pl.Int64),
        "_weight": pl.Series([float(p.weight) for p in personas], dtype=pl.Float64),
    }
    for name in PERSONA_FIELDS:
        data[f"v:{name}"] = pl.Series([p.fields[name].value for p in personas], dtype=pl.Utf8)
        data[f"p:{name}"] = pl.Series([p.fields[name].provenance for p in personas], dtype=pl.Utf8)
        data[f"d:{name}"] = pl.Series([_compact(p.fields[name].detail) for p in personas], dtype=pl.Utf8)
    kinds = list(dict.fromkeys([*TAG_KINDS, *(k for p in personas for k in p.tags)]))
    for kind in kinds:
        data[f"t:{kind}"] = pl.Series([p.tags.get(kind) for p in personas], dtype=pl.List(pl.Utf8))
    if any(p.text is not None for p in personas):  # text-only personas (census frames have no such column)
        data[TEXT_COLUMN] = pl.Series([p.text for p in personas], dtype=pl.Utf8)
    return pl.DataFrame(data)


def persona_ids(frame: pl.DataFrame) -> pl.Series:
    """Each row's persona id: the frame's ``id`` column, else ``Persona.make_id`` of its source key and
    draw index (the same sha256 of the same canonical JSON, built column-wise)."""
    if "id" in frame.columns:
        return frame["id"]
    text = frame.select(
        pl.concat_str(
            [
                pl.lit('{"draw":'),
                pl.col("_draw").cast(pl.Utf8),
                pl.lit(',"source":{"serialno":'),
                _json_text("SERIALNO"),
                pl.lit(',"sporder":'),
                pl.col("SPORDER").cast(pl.Int64).cast(pl.Utf8),
                pl.lit(',"state":'),
                _json_text("_state"),
                pl.lit(',"year":'),
                pl.col("_year").cast(pl.Int64).cast(pl.Utf8),
                pl.lit("}}"),
            ]
        )
    )
    sha = hashlib.sha256
    return pl.Series(
        "id",
        ["p-" + sha(t.encode("utf-8")).hexdigest()[:12] for t in text.to_series().to_list()],
        dtype=pl.Utf8,
    )


_NEEDS_ESCAPE = r'["\\\x00-\x1f]'


def _json_text(col: str, frame: pl.DataFrame | None = None) -> pl.Expr:
    """A text column as JSON string literals (escaped as ``json.dumps(..., ensure_ascii=False)`` does).

    With ``frame``, a column none of whose values needs escaping (the common case: census labels) is just
    quoted, which is several times faster than encoding every value."""
    expr = pl.col(col).cast(pl.Utf8)
    if frame is not None and not frame[col].cast(pl.Utf8).str.contains(_NEEDS_ESCAPE).any():
        return pl.concat_str([pl.lit('"'), expr, pl.lit('"')])
    return pl.struct(expr.alias("s")).struct.json_encode().str.slice(5).str.head(-1)


def _tag_kinds(frame: pl.DataFrame) -> list[str]:
    return [c[2:] for c in frame.columns if c.startswith("t:")]


def _tags_json(frame: pl.DataFrame) -> pl.Expr:
    """The ``tags`` object (kinds with a list; a kind whose list is null is left out)."""
    parts = []
    for kind in _tag_kinds(frame):
        col = pl.col(f"t:{kind}")
        if frame[f"t:{kind}"].explode().str.contains(_NEEDS_ESCAPE).any():
            items = col.list.eval(
                pl.struct(pl.element().alias("s")).struct.json_encode().str.slice(5).str.head(-1)
            )
            listed = pl.concat_str([pl.lit("["), items.list.join(","), pl.lit("]")])
        else:  # vocabulary entries: quoted as they are
            listed = (
                pl.when(col.list.len() > 0)
                .then(pl.concat_str([pl.lit('["'), col.list.join('","'), pl.lit('"]')]))
                .otherwise(pl.lit("[]"))
            )
        body = pl.concat_str([pl.lit(f"{_compact(kind)}:"), listed])
        parts.append(pl.when(col.is_not_null()).then(body))
    if not parts:
        return pl.lit("{}")
    return pl.concat_str(
        [pl.lit("{"), pl.concat_str(parts, separator=",", ignore_nulls=True).fill_null(""), pl.lit("}")]
    )


def jsonl_lines(frame: pl.DataFrame) -> pl.Series:
    """One compact JSON object per persona (``Persona.model_dump`` order), as text without newline."""
    fields = []
    for i, name in enumerate(PERSONA_FIELDS):
        fields += [
            pl.lit(("{" if i == 0 else ",") + f'{_compact(name)}:{{"value":'),
            _json_text(f"v:{name}", frame),
            pl.lit(',"provenance":'),
            _json_text(f"p:{name}", frame),
            pl.lit(',"detail":'),
            pl.col(f"d:{name}"),
            pl.lit("}"),
        ]
    source = pl.concat_str(
        [
            pl.lit('{"year":'),
            pl.col("_year").cast(pl.Int64).cast(pl.Utf8),
            pl.lit(',"state":'),
            _json_text("_state", frame),
            pl.lit(',"serialno":'),
            _json_text("SERIALNO", frame),
            pl.lit(',"sporder":'),
            pl.col("SPORDER").cast(pl.Int64).cast(pl.Utf8),
            pl.lit("}"),
        ]
    )
    if frame["_year"].null_count():  # text-only personas have no census source
        source = pl.when(pl.col("_year").is_null()).then(pl.lit("null")).otherwise(source)
    text = pl.lit("")
    if TEXT_COLUMN in frame.columns:  # only text-only personas carry "text" (census lines stay as they were)
        text = (
            pl.when(pl.col(TEXT_COLUMN).is_not_null())
            .then(pl.concat_str([pl.lit(',"text":'), _json_text(TEXT_COLUMN)]))
            .otherwise(pl.lit(""))
        )
    return frame.with_columns(id=persona_ids(frame)).select(
        pl.concat_str(
            [
                pl.lit(f'{{"schema_version":{SCHEMA_VERSION},"id":'),
                pl.concat_str([pl.lit('"'), pl.col("id"), pl.lit('"')]),
                pl.lit(',"source":'),
                source,
                pl.lit(',"fields":'),
                *fields,
                pl.lit('},"tags":'),
                _tags_json(frame),
                pl.lit(',"weight":'),
                _float_text("_weight"),
                text,
                pl.lit("}"),
            ]
        ).alias("line")
    )["line"]


def _float_text(col: str) -> pl.Expr:
    """A float column as JSON numbers (always with a decimal point or exponent, like Python's repr)."""
    text = pl.col(col).cast(pl.Float64).cast(pl.Utf8)
    return pl.when(text.str.contains(r"^-?\d+$")).then(pl.concat_str([text, pl.lit(".0")])).otherwise(text)


def flat_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """The flat Parquet layout: key columns, one value column per field (named exactly as the field),
    ``provenance:<field>`` and ``detail:<field>`` (JSON text) per field, the ``tags`` JSON object, and
    ``text`` when the frame holds text-only personas."""
    return frame.with_columns(id=persona_ids(frame)).select(
        "id",
        pl.lit(SCHEMA_VERSION, dtype=pl.Int64).alias("schema_version"),
        pl.col("_year").cast(pl.Int64).alias("source_year"),
        pl.col("_state").cast(pl.Utf8).alias("source_state"),
        pl.col("SERIALNO").cast(pl.Utf8).alias("source_serialno"),
        pl.col("SPORDER").cast(pl.Int64).alias("source_sporder"),
        pl.col("_weight").cast(pl.Float64).alias("weight"),
        *[pl.col(f"v:{name}").alias(name) for name in PERSONA_FIELDS],
        *[pl.col(f"p:{name}").alias(f"provenance:{name}") for name in PERSONA_FIELDS],
        *[pl.col(f"d:{name}").alias(f"detail:{name}") for name in PERSONA_FIELDS],
        _tags_json(frame).alias("tags"),
        *([pl.col(TEXT_COLUMN).cast(pl.Utf8)] if TEXT_COLUMN in frame.columns else []),
    )
