"""``bench tasks export``: the bench items as JSONL so anyone can answer them with their own stack.

Each line holds the item id, persona id, prompt id, mode, the exact system and user prompts the
candidate would get, the persona fields and the question (and ``persona_text`` for a text-only persona,
whose fields are empty). The items are the ones ``main`` selects for
the same personas, prompts, ``n`` and seed, so the answers file (``persona_id, prompt_id, answer``)
can be scored with ``bench run main --answers FILE``.

``out`` is one file, written through a temp file + rename; it may not be a directory, one of ``inputs``
(the personas / prompts paths) or inside an input directory (``core/outputs.py``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from ..core.errors import UserError
from ..core.outputs import check_out, staged_file
from ..personas.record import Persona
from .inputs import select_items
from .records import BenchPrompt
from .templates import MODES, SHOT_MODES, candidate_messages


def export_items(
    personas: Sequence[Persona],
    prompts: Sequence[BenchPrompt],
    out: str | Path,
    *,
    n: int,
    seed: int,
    mode: str = "persona",
    inputs: Iterable[str | os.PathLike[str]] = (),
) -> int:
    """Write ``n`` items (seeded, as task main selects them) to ``out`` as JSONL; returns the count.

    ``inputs``: the files or directories the personas and prompts came from (``out`` must not touch them).
    """
    if mode not in MODES or mode in SHOT_MODES:
        plain = [m for m in MODES if m not in SHOT_MODES]
        raise UserError(
            f"unknown mode {mode!r} for exported items (choose from {', '.join(plain)}; the few-shot "
            "modes run in bench run main)"
        )
    inputs = list(inputs)
    check_out(out, "bench items", inputs=inputs, file=True)
    lines = []
    for item in select_items(personas, prompts, n, seed):
        msgs = candidate_messages(mode, item.persona, item.question)
        row = {
            "item_id": item.id,
            "persona_id": item.persona.id,
            "prompt_id": item.prompt_id,
            "mode": mode,
            "system": msgs[0]["content"],
            "user": msgs[1]["content"],
            "messages": msgs,
            "persona": item.persona.values(),
            "question": item.question,
        }
        if item.persona.text_only:  # its fields are empty: the text is the persona
            row["persona_text"] = item.persona.text
        lines.append(json.dumps(row, ensure_ascii=False))
    with staged_file(out, "bench items", inputs=inputs) as tmp:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(lines)


__all__ = ["export_items"]
