"""Bench inputs: prompt sets, feedback pairs, precomputed answers, approach functions, item selection.

Prompt and pair files are what the prompts and feedback stages write (``prompts.parquet`` /
``pairs.parquet``, or JSONL with one record per line, or a directory holding one of them). Readers are
tolerant about column names (``id``/``prompt_id``, ``text``/``prompt``/``question``) and strict about
content: a missing field or unknown id is a ``UserError`` naming the file and line.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from ..core.errors import UserError
from ..core.hashing import content_hash
from ..core.records import read_jsonl
from ..core.seeds import rng
from ..feedback.io import PairIds
from ..personas.record import Persona
from .records import BenchItem, BenchPair, BenchPrompt

SPLIT_ALL = "all"


def _rows(path: str | Path, default_names: Sequence[str], what: str) -> tuple[Path, list[tuple[str, dict]]]:
    """Read JSONL or Parquet rows as ``(where, dict)``; a directory means its default file."""
    p = Path(path)
    if p.is_dir():
        for name in default_names:
            if (p / name).exists():
                p = p / name
                break
        else:
            raise UserError(f"{p}: directory has none of {', '.join(default_names)}")
    if not p.exists():
        raise UserError(f"{p}: no such {what} file")
    out: list[tuple[str, dict]] = []
    if p.suffix == ".parquet":
        try:
            df = pl.read_parquet(p)
        except Exception as exc:  # polars raises several error types for corrupt files
            raise UserError(f"{p}: not a readable Parquet file ({type(exc).__name__})") from None
        out = [(f"{p}: row {i}", row) for i, row in enumerate(df.iter_rows(named=True), 1)]
    else:
        try:
            rows = read_jsonl(p)
        except OSError as exc:
            raise UserError(f"{p}: cannot read ({exc})") from None
        for lineno, obj in rows:
            if not isinstance(obj, dict):
                raise UserError(f"{p}:{lineno}: expected a JSON object")
            out.append((f"{p}:{lineno}", obj))
    if not out:
        raise UserError(f"{p}: no {what} in file")
    return p, out


def _pick(obj: dict, names: Sequence[str], where: str, required: bool = True) -> Any:
    for n in names:
        v = obj.get(n)
        if v is not None and v != "":
            return v
    if required:
        raise UserError(f"{where}: missing field {names[0]!r}")
    return None


def load_prompts(path: str | Path, split: str = "held_out") -> list[BenchPrompt]:
    """Prompts of one split (``split="all"`` for every prompt); ``UserError`` when none are left."""
    p, rows = _rows(path, ("prompts.parquet", "prompts.jsonl"), "prompts")
    prompts: list[BenchPrompt] = []
    seen: set[str] = set()
    for where, obj in rows:
        if obj.get("kept") is False:  # filtered out by the prompts stage: never a bench question
            continue
        pid = str(_pick(obj, ("id", "prompt_id"), where))
        text = str(_pick(obj, ("text", "prompt", "question"), where))
        if pid in seen:
            raise UserError(f"{where}: duplicate prompt id {pid}")
        seen.add(pid)
        s = obj.get("split")
        prompts.append(BenchPrompt(id=pid, text=text, split=None if s is None else str(s)))
    if split == SPLIT_ALL:
        return prompts
    if all(x.split is None for x in prompts):
        raise UserError(f"{p}: prompts have no 'split' field; pass --split all to use every prompt")
    chosen = [x for x in prompts if x.split == split]
    if not chosen:
        splits = sorted({str(x.split) for x in prompts})
        raise UserError(f"{p}: no prompts in split {split!r} (splits present: {', '.join(splits)})")
    return chosen


class PairList(list):
    """Loaded pairs; ``skipped_failed`` counts pairs the feedback stage recorded as failed (not usable)."""

    skipped_failed: int = 0


def load_pairs(path: str | Path, split: str = SPLIT_ALL) -> PairList:
    """Feedback pairs (optionally of one split); ids are derived from content when the file has none.

    Pairs with ``status == "failed"`` (no chosen/rejected text) are skipped and counted. A repeated pair id
    (failed pairs included) is a ``UserError`` by the feedback reader's rule (``feedback.io.PairIds``:
    ``<file>:<line>: duplicate pair id <id> (first at line N)``; ``row`` for Parquet).
    """
    p, rows = _rows(path, ("pairs.parquet", "pairs.jsonl"), "pairs")
    parquet = p.suffix == ".parquet"
    ids = PairIds(p, "row" if parquet else "line")
    pairs = PairList()
    for where, obj in rows:
        position = int(where.rsplit(" " if parquet else ":", 1)[-1])
        pid = _pick(obj, ("id", "pair_id"), where, required=False)
        if pid is not None:
            ids.add(str(pid), position)
        if obj.get("status") == "failed":
            pairs.skipped_failed += 1
            continue
        persona_id = str(_pick(obj, ("persona_id",), where))
        prompt_id = str(_pick(obj, ("prompt_id",), where))
        question = str(_pick(obj, ("question", "prompt", "text"), where))
        chosen = str(_pick(obj, ("chosen",), where))
        rejected = str(_pick(obj, ("rejected",), where))
        if pid is None:
            pid = "pair-" + content_hash(
                {"persona_id": persona_id, "prompt_id": prompt_id, "chosen": chosen, "rejected": rejected}, 12
            )
            ids.add(pid, position)
        pid = str(pid)
        s = obj.get("split")
        pairs.append(
            BenchPair(
                id=pid,
                persona_id=persona_id,
                prompt_id=prompt_id,
                question=question,
                chosen=chosen,
                rejected=rejected,
                split=None if s is None else str(s),
                critique=obj.get("critique"),
            )
        )
    if split == SPLIT_ALL:
        return pairs
    chosen_pairs = PairList(x for x in pairs if x.split == split)
    chosen_pairs.skipped_failed = pairs.skipped_failed
    if not chosen_pairs:
        raise UserError(f"{p}: no pairs in split {split!r}; pass --split all to use every pair")
    return chosen_pairs


def load_answers(
    path: str | Path, personas: Sequence[Persona], prompts: Sequence[BenchPrompt]
) -> dict[tuple[str, str], list[str]]:
    """Precomputed answers: JSONL lines ``{"persona_id", "prompt_id", "answer"[, "sample_index"]}``.

    Returns ``(persona_id, prompt_id) -> answers`` ordered by ``sample_index`` (file order without it).
    Unknown ids, missing fields or duplicate samples raise ``UserError`` naming the line.
    """
    p = Path(path)
    if p.suffix == ".parquet":
        raise UserError(f"{p}: answers must be a JSONL file")
    _, rows = _rows(p, (), "answers")
    persona_ids = {x.id for x in personas}
    prompt_ids = {x.id for x in prompts}
    grouped: dict[tuple[str, str], list[tuple[int, str]]] = {}
    for where, obj in rows:
        for name in ("persona_id", "prompt_id", "answer"):
            if name not in obj or obj[name] is None:
                raise UserError(f"{where}: missing field {name!r}")
        persona_id, prompt_id, answer = str(obj["persona_id"]), str(obj["prompt_id"]), obj["answer"]
        if not isinstance(answer, str):
            raise UserError(f"{where}: field 'answer' must be a string")
        if persona_id not in persona_ids:
            raise UserError(f"{where}: unknown persona_id {persona_id!r} (not in the persona set)")
        if prompt_id not in prompt_ids:
            raise UserError(f"{where}: unknown prompt_id {prompt_id!r} (not in the prompt set/split)")
        group = grouped.setdefault((persona_id, prompt_id), [])
        si = obj.get("sample_index", len(group))
        if not isinstance(si, int) or si < 0:
            raise UserError(f"{where}: sample_index must be a non-negative integer")
        if any(s == si for s, _ in group):
            raise UserError(f"{where}: duplicate answer for {persona_id}/{prompt_id} sample {si}")
        group.append((si, answer))
    return {key: [a for _, a in sorted(v)] for key, v in grouped.items()}


def load_approach(spec: str) -> Callable[..., Any]:
    """Import ``package.module:function`` (called as ``fn(persona, question)``, sync or async)."""
    if ":" not in spec:
        raise UserError(f"--approach {spec!r}: expected 'package.module:function'")
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UserError(f"--approach {spec!r}: cannot import {module_name} ({exc})") from None
    fn = module
    for part in attr.split("."):
        fn = getattr(fn, part, None)
        if fn is None:
            raise UserError(f"--approach {spec!r}: {module_name} has no attribute {attr!r}")
    if not callable(fn):
        raise UserError(f"--approach {spec!r}: {attr} is not callable")
    try:
        inspect.signature(fn).bind(None, "")
    except TypeError:
        raise UserError(f"--approach {spec!r}: must accept (persona, question)") from None
    except ValueError:
        pass  # builtins without a signature: try at call time
    return fn


def select_items(
    personas: Sequence[Persona], prompts: Sequence[BenchPrompt], n: int, seed: int, *key: object
) -> list[BenchItem]:
    """``n`` distinct (persona, prompt) items in a seeded order over the full product.

    The order depends only on the seed, the key and the two sets, so raising ``n`` extends the list.
    """
    total = len(personas) * len(prompts)
    if n < 1:
        raise UserError(f"--n must be at least 1 (got {n})")
    if n > total:
        raise UserError(
            f"--n {n} exceeds the {len(personas)} personas x {len(prompts)} prompts = {total} items"
        )
    order = rng(seed, "bench.items", *key).permutation(total)[:n]
    q = len(prompts)
    return [
        BenchItem(
            persona=personas[int(i) // q], prompt_id=prompts[int(i) % q].id, question=prompts[int(i) % q].text
        )
        for i in order
    ]


def items_from_answers(
    answers: dict[tuple[str, str], list[str]],
    personas: Sequence[Persona],
    prompts: Sequence[BenchPrompt],
    n: int | None,
    seed: int,
) -> list[BenchItem]:
    """The items of an answers file (in a seeded order, the first ``n`` when given)."""
    by_persona = {p.id: p for p in personas}
    by_prompt = {p.id: p for p in prompts}
    keys = sorted(answers)
    order = rng(seed, "bench.answers").permutation(len(keys))
    if n is not None:
        order = order[:n]
    return [
        BenchItem(persona=by_persona[keys[i][0]], prompt_id=keys[i][1], question=by_prompt[keys[i][1]].text)
        for i in order
    ]


__all__ = [
    "SPLIT_ALL",
    "items_from_answers",
    "load_answers",
    "load_approach",
    "load_pairs",
    "load_prompts",
    "select_items",
]
