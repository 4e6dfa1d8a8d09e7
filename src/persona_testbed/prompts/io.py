"""Reading and writing prompt sets: ``prompts.jsonl`` (full records) and ``prompts.parquet`` (flat).

The Parquet file has one row per source prompt: id, text, source, source_index, kept, cluster,
cluster_label, split, one ``<filter>`` column (pass / fail / error / null = not evaluated) and one
``<filter>_reason`` column per filter, and ``verdicts`` (the full verdicts as JSON).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl
from pydantic import ValidationError

from .. import __version__
from ..core.atomic import atomic_path, atomic_write_text
from ..core.errors import UserError
from ..core.hashing import canonical_json, file_sha256
from ..core.paths import resolve_artifact
from ..core.records import read_jsonl
from .record import FILTER_ORDER, SCHEMA_VERSION, Prompt

JSONL_NAME = "prompts.jsonl"
PARQUET_NAME = "prompts.parquet"
MANIFEST_NAME = "prompts_manifest.json"


def prompts_to_frame(prompts: Sequence[Prompt]) -> pl.DataFrame:
    rows: list[dict[str, Any]] = []
    for p in prompts:
        row: dict[str, Any] = {
            "id": p.id,
            "text": p.text,
            "source": p.source,
            "source_index": p.source_index,
            "kept": p.kept,
            "cluster": p.cluster,
            "cluster_label": p.cluster_label,
            "split": p.split,
        }
        for name in FILTER_ORDER:
            v = p.verdicts.get(name)
            row[name] = v.verdict if v else None
            row[f"{name}_reason"] = v.reason if v else None
        row["verdicts"] = canonical_json({k: v.model_dump(mode="json") for k, v in p.verdicts.items()})
        rows.append(row)
    schema: dict[str, Any] = {
        "id": pl.Utf8,
        "text": pl.Utf8,
        "source": pl.Utf8,
        "source_index": pl.Int64,
        "kept": pl.Boolean,
        "cluster": pl.Int64,
        "cluster_label": pl.Utf8,
        "split": pl.Utf8,
    }
    for name in FILTER_ORDER:
        schema[name] = pl.Utf8
        schema[f"{name}_reason"] = pl.Utf8
    schema["verdicts"] = pl.Utf8
    return pl.DataFrame(rows, schema=schema)


def write_prompts(
    prompts: Sequence[Prompt], out_dir: str | Path, manifest: dict[str, Any] | None = None
) -> dict[str, Path]:
    """Write ``prompts.parquet``, ``prompts.jsonl`` and ``prompts_manifest.json`` atomically into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"parquet": out / PARQUET_NAME, "jsonl": out / JSONL_NAME, "manifest": out / MANIFEST_NAME}
    with atomic_path(paths["parquet"]) as tmp:
        prompts_to_frame(prompts).write_parquet(tmp, compression="zstd")
    atomic_write_text(
        paths["jsonl"],
        "".join(json.dumps(p.model_dump(mode="json"), ensure_ascii=False) + "\n" for p in prompts),
    )
    full = {
        "package_version": __version__,
        "schema_version": SCHEMA_VERSION,
        "count": len(prompts),
        "kept": sum(p.kept for p in prompts),
    }
    full.update(manifest or {})
    full["files"] = {JSONL_NAME: file_sha256(paths["jsonl"]), PARQUET_NAME: file_sha256(paths["parquet"])}
    atomic_write_text(paths["manifest"], json.dumps(full, indent=2, sort_keys=True, default=str))
    return paths


def _validate(obj: Any, where: str) -> Prompt:
    if not isinstance(obj, dict):
        raise UserError(f"{where}: expected a JSON object")
    if obj.get("schema_version", SCHEMA_VERSION) != SCHEMA_VERSION:
        raise UserError(
            f"{where}: schema_version {obj.get('schema_version')!r} is not supported "
            f"(expected {SCHEMA_VERSION})"
        )
    try:
        return Prompt.model_validate(obj)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(x) for x in err.get("loc", ()))
        raise UserError(f"{where}: {loc}: {err.get('msg')}") from None


def resolve_prompts_path(path: str | Path) -> Path:
    return resolve_artifact(path, (JSONL_NAME, PARQUET_NAME), "prompts", "run `prompts build` first")


def read_prompts(path: str | Path) -> list[Prompt]:
    """Read a built prompt set (``prompts.jsonl``, ``prompts.parquet`` or their directory)."""
    p = resolve_prompts_path(path)
    out: list[Prompt] = []
    if p.suffix == ".parquet":
        try:
            df = pl.read_parquet(p)
        except Exception as exc:
            raise UserError(f"{p}: not a readable Parquet file ({type(exc).__name__})") from None
        need = (
            "id",
            "text",
            "source",
            "source_index",
            "kept",
            "cluster",
            "cluster_label",
            "split",
            "verdicts",
        )
        missing = [c for c in need if c not in df.columns]
        if missing:
            raise UserError(
                f"{p}: missing column {missing[0]!r} (not a prompts.parquet written by prompts build)"
            )
        for i, row in enumerate(df.iter_rows(named=True), 1):
            try:
                verdicts = json.loads(row["verdicts"] or "{}")
            except json.JSONDecodeError:
                raise UserError(f"{p}: row {i}: verdicts is not valid JSON") from None
            obj = {k: row[k] for k in need if k != "verdicts"}
            obj["verdicts"] = verdicts
            out.append(_validate(obj, f"{p}: row {i}"))
    else:
        for lineno, obj in read_jsonl(p):
            out.append(_validate(obj, f"{p}:{lineno}"))
    if not out:
        raise UserError(f"{p}: no prompts in file")
    return out
