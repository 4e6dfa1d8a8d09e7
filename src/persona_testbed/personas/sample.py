"""``sample_personas``: draw census records, map them to the 33 fields, validate, resample breakers."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Sequence

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from ..errors import UserError
from ..seeds import derive_int
from .build import MappingContext, MapStats, frame_to_personas, map_frame
from .record import Persona
from .rules import RULE_NAMES, violations

MAX_ATTEMPTS = 5


class SampleResult(BaseModel):
    """Personas plus a report: rule rejections, imputation / survey back-off, source checksums."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    personas: list[Persona]
    report: dict[str, Any] = Field(default_factory=dict)


def _open(source: str | Path, states: Any, data_dir: Any) -> Any:
    from ..census.source import open_source

    src = str(source)
    if Path(src).expanduser().is_dir():
        return open_source(None, states, data_dir=data_dir, path=src)
    return open_source(src, states, data_dir=data_dir)


def _rake_weights(src: Any, rake: Any, columns: list[str], data_dir: Any) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Person records whose ``PWGTP`` holds weights raked to the ``rake`` targets, and the raking summary."""
    from ..census.raking import rake_source

    res = rake_source(src, rake, data_dir=data_dir)
    frame = src.persons(columns).collect().with_columns(pl.Series("PWGTP", res.weights))
    summary = res.summary()
    summary.pop("cells", None)
    return frame, {"targets": str(rake), **summary}


def _draw(src: Any, n: int, seed: int, *, replace: bool, filters: Any, quota_by: Any, columns: list[str],
          raked: pl.DataFrame | None, design: str = "systematic") -> pl.DataFrame:
    from ..census.sampling import sample_persons

    if raked is not None:
        return sample_persons(raked, n, seed, replace=replace, filters=filters, quota_by=quota_by,
                              columns=columns, year=src.year, design=design)
    return sample_persons(src, n, seed, replace=replace, filters=filters, quota_by=quota_by, columns=columns,
                          design=design)


def sample_personas(n: int, seed: int, source: str | Path = "acs2024", states: str | Sequence[str] | None = None,
                    adults_only: bool = True, min_age: int | None = None, max_age: int | None = None,
                    quota_by: str | Sequence[str] | None = None, rake: Any = None, replace: bool = True,
                    data_dir: str | Path | None = None, max_attempts: int = MAX_ATTEMPTS,
                    design: str = "systematic") -> SampleResult:
    """Draw ``n`` census-grounded personas (seeded) with the paper's 33 fields and provenance.

    Records are drawn with probability proportional to PWGTP (or raked weights with ``rake``), mapped,
    and checked against the consistency rules; a persona that breaks a rule is replaced by a fresh draw
    (up to ``max_attempts`` rounds). ``design``: ``"systematic"`` (balanced PPS, default) or
    ``"independent"`` (iid PPS draws), see :func:`persona_testbed.census.sample_persons`. ``report`` counts rejections per rule, imputation / survey back-off
    levels, undecodable codes and the source checksums.
    """
    from ..census.sampling import Filters

    t0 = time.perf_counter()
    if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
        raise UserError(f"n must be a positive integer, got {n!r}")
    src = _open(source, states, data_dir)
    filters = Filters(adults_only=adults_only, min_age=min_age, max_age=max_age)
    ctx = MappingContext(src, seed, data_dir, str(source))
    columns = ctx.person_columns()
    raked, rake_report = (None, None)
    if rake:
        raked, rake_report = _rake_weights(src, rake, columns, data_dir)
    stats = MapStats()
    draws = _draw(src, n, seed, replace=replace, filters=filters, quota_by=quota_by, columns=columns, raked=raked,
                  design=design)
    personas = frame_to_personas(map_frame(draws, ctx, stats))

    rejections = {name: 0 for name in RULE_NAMES}
    checked = 0
    failures: list[dict[str, Any]] = []
    todo = list(range(len(personas)))
    for attempt in range(1, max_attempts + 2):
        bad = []
        for i in todo:
            checked += 1
            broken = violations(personas[i])
            for name, _reason in broken:
                rejections[name] += 1
            if broken:
                bad.append((i, broken))
        if not bad:
            break
        if attempt > max_attempts:
            failures = [{"slot": i, "id": personas[i].id, "rules": [b[0] for b in br]} for i, br in bad]
            break
        k = len(bad)
        if quota_by:  # keep each slot in its stratum: redraw inside the stratum of the rejected persona
            fresh = _redraw_in_strata(src, draws, bad, attempt, n, seed, replace, filters, quota_by, columns, raked)
        else:
            fresh = _draw(src, k, derive_int(seed, "personas.resample", attempt), replace=replace,
                          filters=filters, quota_by=None, columns=columns, raked=raked, design=design)
            fresh = fresh.with_columns(_draw=pl.Series([attempt * n + i for i, _ in bad], dtype=pl.Int64))
        new = frame_to_personas(map_frame(fresh, ctx, stats))
        for (i, _), p in zip(bad, new):
            personas[i] = p
        todo = [i for i, _ in bad]
    if failures:
        raise UserError(f"{len(failures)} persona(s) still break consistency rules after {max_attempts} "
                        f"resampling rounds: {failures[:3]}")

    report = {
        "n": len(personas), "seed": seed, "source": src.name, "year": src.year, "states": src.states,
        "filters": filters.describe(), "quota_by": quota_by, "replace": replace,
        "design": design if replace else "without replacement (Efraimidis-Spirakis)",
        "source_checksum": src.checksum,
        "inputs": [{"path": i.path, "sha256": i.sha256} for i in src.inputs],
        "rules": {"checked": checked, "rejections": rejections,
                  "rejection_rate": {k: (v / checked if checked else 0.0) for k, v in rejections.items()}},
        **stats.as_dict(),
        "raking": rake_report,
        "gss_sha256": ctx.pool.sha256_file,
        "seconds": round(time.perf_counter() - t0, 3),
    }
    return SampleResult(personas=personas, report=report)


def _redraw_in_strata(src: Any, draws: pl.DataFrame, bad: list, attempt: int, n: int, seed: int, replace: bool,
                      filters: Any, quota_by: Any, columns: list[str], raked: Any) -> pl.DataFrame:
    """One replacement per rejected slot, drawn inside that slot's quota stratum."""
    from ..census.sampling import Filters

    parts = []
    strata = draws["_stratum"].to_list() if "_stratum" in draws.columns else [None] * draws.height
    keys = [quota_by] if isinstance(quota_by, str) else list(quota_by)
    for i, _ in bad:
        label = strata[i] if i < len(strata) else None
        f = filters
        sub_seed = derive_int(seed, "personas.resample", attempt, i)
        if label is not None and keys == ["STATE"]:
            f = Filters(adults_only=filters.adults_only, min_age=filters.min_age, max_age=filters.max_age,
                        states=[label])
            one = _draw(src, 1, sub_seed, replace=replace, filters=f, quota_by=None, columns=columns, raked=raked)
        elif label is not None and keys == ["age_band"] and label[:1].isdigit():
            lo_s, _, hi_s = label.rstrip("+").partition("-")
            lo = max(int(lo_s), filters.age_bounds()[0] or 0)
            hi = int(hi_s) if hi_s else filters.max_age
            f = Filters(min_age=lo, max_age=hi, states=filters.states)
            one = _draw(src, 1, sub_seed, replace=replace, filters=f, quota_by=None, columns=columns, raked=raked)
        else:
            one = _draw(src, 1, sub_seed, replace=replace, filters=f, quota_by=quota_by, columns=columns,
                        raked=raked)
        parts.append(one.drop([c for c in ("_stratum",) if c in one.columns])
                     .with_columns(_draw=pl.lit(attempt * n + i, dtype=pl.Int64)))
    return pl.concat(parts, how="vertical_relaxed")
