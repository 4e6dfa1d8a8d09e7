"""The bench tasks by name; each is ``async run(ctx, **options) -> TaskOutput``."""

from __future__ import annotations

from . import agreement, fidelity, intersections, loo, main, passk

TASKS = {
    "main": main.run,
    "passk": passk.run,
    "loo": loo.run,
    "intersections": intersections.run,
    "fidelity": fidelity.run,
    "agreement": agreement.run,
}

__all__ = ["TASKS"]
