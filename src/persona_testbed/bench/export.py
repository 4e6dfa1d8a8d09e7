"""``bench tasks export``: the bench items as JSONL so anyone can answer them with their own stack.

Each line holds the item id, persona id, prompt id, mode, the exact system and user prompts the
candidate would get, the persona fields and the question. The items are the ones ``main`` selects for
the same personas, prompts, ``n`` and seed, so the answers file (``persona_id, prompt_id, answer``)
can be scored with ``bench run main --answers FILE``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from ..core.errors import UserError
from ..personas.record import Persona
from ..core.atomic import atomic_write_text
from .inputs import select_items
from .records import BenchPrompt
from .templates import MODES, candidate_messages


def export_items(personas: Sequence[Persona], prompts: Sequence[BenchPrompt], out: str | Path, *, n: int,
                 seed: int, mode: str = "persona") -> int:
    """Write ``n`` items (seeded, as task main selects them) to ``out`` as JSONL; returns the count."""
    if mode not in MODES:
        raise UserError(f"unknown mode {mode!r} (choose from {', '.join(MODES)})")
    lines = []
    for item in select_items(personas, prompts, n, seed):
        msgs = candidate_messages(mode, item.persona, item.question)
        lines.append(json.dumps({
            "item_id": item.id, "persona_id": item.persona.id, "prompt_id": item.prompt_id, "mode": mode,
            "system": msgs[0]["content"], "user": msgs[1]["content"], "messages": msgs,
            "persona": item.persona.values(), "question": item.question,
        }, ensure_ascii=False))
    atomic_write_text(Path(out), "\n".join(lines) + "\n")
    return len(lines)


__all__ = ["export_items"]
