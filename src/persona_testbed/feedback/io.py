"""Pair files: the append-only checkpoint, and the final ``pairs.jsonl`` / ``pairs.parquet``."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl
from pydantic import ValidationError

from ..core.atomic import atomic_path, atomic_write_text
from ..core.errors import UserError
from ..core.hashing import canonical_json
from ..core.paths import resolve_artifact
from ..core.records import read_jsonl
from .record import SCHEMA_VERSION, PreferencePair

JSONL_NAME = "pairs.jsonl"
PARQUET_NAME = "pairs.parquet"
CHECKPOINT_NAME = "pairs.checkpoint.jsonl"


class Checkpoint:
    """Pairs appended one JSON line at a time as they finish; a killed run leaves at most a partial last
    line, which ``open`` cuts off. Later lines win over earlier ones with the same id."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._fh = None

    def load(self) -> dict[str, PreferencePair]:
        out: dict[str, PreferencePair] = {}
        if not self.path.exists():
            return out
        for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                pair = PreferencePair.model_validate_json(line)
            except ValidationError:
                continue  # a torn line from a killed run
            out[pair.id] = pair
        return out

    def open(self) -> Checkpoint:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            data = self.path.read_bytes()
            if data and not data.endswith(b"\n"):
                cut = data.rfind(b"\n") + 1
                with self.path.open("r+b") as f:
                    f.truncate(cut)
        self._fh = self.path.open("a", encoding="utf-8")
        return self

    def append(self, pair: PreferencePair) -> None:
        assert self._fh is not None, "Checkpoint.open() first"
        self._fh.write(pair.model_dump_json() + "\n")
        self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()
            self._fh = None


def pairs_to_frame(pairs: Sequence[PreferencePair]) -> pl.DataFrame:
    """Flat table: one row per pair; judge picks as columns, call ids, finish reasons and the leakage check as
    JSON strings (``leaky``: null when the pair was not checked), ``flags`` as a list of strings."""
    rows: list[dict[str, Any]] = []
    for p in pairs:
        v = p.validation
        rows.append(
            {
                "id": p.id,
                "persona_id": p.persona_id,
                "prompt_id": p.prompt_id,
                "split": p.split,
                "question": p.question,
                "persona_text": p.persona_text,
                "rejected": p.rejected,
                "critique": p.critique,
                "chosen": p.chosen,
                "model": p.model,
                "template_version": p.template_version,
                "seed": p.seed,
                "config_key": p.config_key,
                "revision_attempts": p.revision_attempts,
                "length_action": p.length_action,
                "judge_choice_ab": v.choice_ab if v else None,
                "judge_choice_ba": v.choice_ba if v else None,
                "judge_error": v.error if v else None,
                "position_bias": v.position_bias if v else None,
                "flagged": p.flagged,
                "flags": list(p.flags),
                "leaky": p.leaky,
                "leakage": p.leakage.model_dump_json() if p.leakage is not None else None,
                "prompt_tokens": p.prompt_tokens,
                "completion_tokens": p.completion_tokens,
                "status": p.status,
                "error": p.error,
                "call_ids": canonical_json(p.call_ids),
                "finish_reasons": canonical_json(p.finish_reasons),
                "length_target_low": p.length_target[0] if p.length_target else None,
                "length_target_high": p.length_target[1] if p.length_target else None,
            }
        )
    schema = {
        k: pl.Utf8
        for k in (
            "id",
            "persona_id",
            "prompt_id",
            "split",
            "question",
            "persona_text",
            "rejected",
            "critique",
            "chosen",
            "model",
            "template_version",
            "config_key",
            "length_action",
            "judge_choice_ab",
            "judge_choice_ba",
            "judge_error",
            "status",
            "error",
            "call_ids",
            "leakage",
            "finish_reasons",
        )
    }
    schema.update(
        seed=pl.Int64,
        revision_attempts=pl.Int64,
        position_bias=pl.Boolean,
        flagged=pl.Boolean,
        leaky=pl.Boolean,
        prompt_tokens=pl.Int64,
        completion_tokens=pl.Int64,
        flags=pl.List(pl.Utf8),
        length_target_low=pl.Int64,
        length_target_high=pl.Int64,
    )
    order = list(rows[0]) if rows else list(schema)
    return pl.DataFrame(rows, schema={k: schema[k] for k in order})


def write_pairs(pairs: Sequence[PreferencePair], out_dir: str | Path) -> dict[str, Path]:
    """Write ``pairs.jsonl`` and ``pairs.parquet`` (sorted by id) atomically."""
    out = Path(out_dir)
    pairs = sorted(pairs, key=lambda p: p.id)
    paths = {"jsonl": out / JSONL_NAME, "parquet": out / PARQUET_NAME}
    atomic_write_text(paths["jsonl"], "".join(p.model_dump_json() + "\n" for p in pairs))
    with atomic_path(paths["parquet"]) as tmp:
        pairs_to_frame(pairs).write_parquet(tmp, compression="zstd")
    return paths


def resolve_pairs_path(path: str | Path) -> Path:
    return resolve_artifact(path, (JSONL_NAME,), "pairs", "run `feedback generate` first")


class PairIds:
    """The one rule for pair ids in a pair file (``read_pairs`` and bench's ``load_pairs``): each id occurs
    once. ``add(id, lineno)`` raises ``UserError("<file>:<line>: duplicate pair id <id> (first at line N)")``;
    ``unit="row"`` for Parquet rows (``<file>: row N: ... (first at row M)``)."""

    def __init__(self, path: str | Path, unit: str = "line"):
        self.path, self.unit = path, unit
        self._first: dict[str, int] = {}

    def add(self, pair_id: str, position: int) -> None:
        first = self._first.setdefault(pair_id, position)
        if first != position:
            where = (
                f"{self.path}:{position}" if self.unit == "line" else f"{self.path}: {self.unit} {position}"
            )
            raise UserError(f"{where}: duplicate pair id {pair_id} (first at {self.unit} {first})")


def read_pairs(path: str | Path) -> list[PreferencePair]:
    """Read ``pairs.jsonl`` (or the feedback directory holding it); a repeated pair id is a ``UserError``."""
    p = resolve_pairs_path(path)
    out = []
    ids = PairIds(p)
    for lineno, obj in read_jsonl(p):
        if isinstance(obj, dict) and obj.get("schema_version", SCHEMA_VERSION) != SCHEMA_VERSION:
            raise UserError(f"{p}:{lineno}: schema_version {obj.get('schema_version')!r} is not supported")
        try:
            pair = PreferencePair.model_validate(obj)
        except ValidationError as exc:
            err = exc.errors()[0]
            raise UserError(f"{p}:{lineno}: {'.'.join(str(x) for x in err['loc'])}: {err['msg']}") from None
        ids.add(pair.id, lineno)
        out.append(pair)
    if not out:
        raise UserError(f"{p}: no pairs in file")
    return out
