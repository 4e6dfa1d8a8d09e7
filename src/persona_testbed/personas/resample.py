"""Replacing a persona the consistency judge rejects: a fresh census draw from the same population.

The sampler's options are read back from the report ``personas sample`` (or the run's personas stage)
wrote next to the persona file, so ``run`` and ``personas enrich`` resample from one population with one
seed key.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from pathlib import Path
from typing import Any

from ..core.errors import UserError
from ..core.seeds import derive_int
from .enrich import ResampleFn
from .record import Persona
from .sample import sample_personas

REPORT_NAME = "enrich_report.json"
RESAMPLE_STAGE = "personas.resample"
# Sampler reports (``personas sample`` / the run pipeline): rule rejections and sampling options.
SAMPLE_REPORT_NAMES = ("personas_report.json", "sample_report.json")


def find_sample_report(personas_file: Path) -> dict[str, Any] | None:
    """The sampler report next to a persona file, or in ``../personas/`` of a run directory."""
    for d in (personas_file.parent, personas_file.parent.parent / "personas"):
        for name in SAMPLE_REPORT_NAMES:
            data = _load_json(d / name)
            if data is not None:
                return data
    return None


def census_resampler(seed: int, **sample_kwargs: Any) -> ResampleFn:
    """A resampler drawing one new census persona per call with ``sample_personas`` and a derived seed.

    ``sample_kwargs`` are passed to ``sample_personas`` (source, states, adults_only, ...), so a
    replacement comes from the same population as the persona it replaces.
    """
    lock = threading.Lock()  # one census draw at a time (the sampler's caches are shared)

    def resample(original: Persona, attempt: int) -> Persona:
        with lock:
            result = sample_personas(
                1, derive_int(seed, RESAMPLE_STAGE, original.id, attempt), **sample_kwargs
            )
        return result.personas[0]

    async def resample_async(original: Persona, attempt: int) -> Persona:
        return await asyncio.to_thread(resample, original, attempt)

    return resample_async


def sample_kwargs_from_report(personas_path: Path) -> dict[str, Any]:
    """Sampler options recorded by ``personas sample`` next to a persona file (``personas_report.json``),
    so a judge-rejected persona is replaced from the same population (source, states, age range)."""
    report = find_sample_report(personas_path) or {}
    kwargs: dict[str, Any] = {}
    if isinstance(report.get("source"), str):
        kwargs["source"] = report["source"]
    if report.get("states"):
        kwargs["states"] = list(report["states"])
    m = re.search(r"age (\d+)-(\d+|∞)", str(report.get("filters", "")))
    if m:
        kwargs["adults_only"] = False
        kwargs["min_age"] = int(m.group(1))
        kwargs["max_age"] = None if m.group(2) == "∞" else int(m.group(2))
    if "replace" in report:
        kwargs["replace"] = bool(report["replace"])
    reference = (report.get("big_five") or {}).get("reference")
    if isinstance(reference, str):
        kwargs["big_five_reference"] = reference
    if isinstance(report.get("national_donors"), str):
        kwargs["national_donors"] = report["national_donors"]
    min_cell = (report.get("survey") or {}).get("min_cell")
    if isinstance(min_cell, int) and min_cell >= 1:
        kwargs["gss_min_cell"] = min_cell
    return kwargs


def _load_json(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError:
        raise UserError(f"{path}: not valid JSON") from None
    return data if isinstance(data, dict) else None
