"""``sample_personas``: draw census records, map them to the 33 fields, validate, resample breakers."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from ..census.sampling import Filters, plan_draws, sample_persons
from ..census.source import open_source
from ..census.targets import rake_source
from ..core.errors import UserError
from ..core.seeds import derive_int
from . import build
from .bigfive import REFERENCE_LABELS, check_reference
from .build import MappingContext, MapStats, frame_to_personas, map_frame
from .frames import persona_ids
from .record import Persona
from .reports import SampleReport
from .rules import RULE_NAMES, broken_matrix
from .survey import MIN_CELL, check_min_cell

MAX_ATTEMPTS = 5


class SampleResult(BaseModel):
    """Personas plus a report: rule rejections, imputation / survey back-off, source checksums."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    personas: list[Persona]
    report: dict[str, Any] = Field(default_factory=dict)


def _open(source: str | Path, states: Any, data_dir: Any) -> Any:
    src = str(source)
    if Path(src).expanduser().is_dir():
        return open_source(None, states, data_dir=data_dir, path=src)
    return open_source(src, states, data_dir=data_dir)


def _rake_weights(
    src: Any, rake: Any, columns: list[str], data_dir: Any
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Person records whose ``PWGTP`` holds weights raked to the ``rake`` targets, and the raking summary."""
    res = rake_source(src, rake, data_dir=data_dir)
    frame = src.persons(columns).collect().with_columns(pl.Series("PWGTP", res.weights))
    summary = res.summary()
    summary.pop("cells", None)
    return frame, {"targets": str(rake), **summary}


def _draw(
    src: Any,
    n: int,
    seed: int,
    *,
    replace: bool,
    filters: Any,
    quota_by: Any,
    columns: list[str],
    raked: pl.DataFrame | None,
    design: str = "systematic",
) -> pl.DataFrame:
    if raked is not None:
        return sample_persons(
            raked,
            n,
            seed,
            replace=replace,
            filters=filters,
            quota_by=quota_by,
            columns=columns,
            year=src.year,
            design=design,
        )
    return sample_persons(
        src, n, seed, replace=replace, filters=filters, quota_by=quota_by, columns=columns, design=design
    )


class PersonaSampler:
    """Draw ``n`` census-grounded personas (seeded) with the paper's 33 fields and provenance, as mapped
    frames (see ``frames.py``), one chunk of ``build.MAP_CHUNK_ROWS`` at a time.

    Records are drawn with probability proportional to PWGTP (or raked weights with ``rake``), mapped,
    and checked against the consistency rules; a persona that breaks a rule is replaced by a fresh draw
    (up to ``max_attempts`` rounds, within its chunk). ``design``: ``"systematic"`` (balanced PPS,
    default) or ``"independent"`` (iid PPS draws), see :func:`persona_testbed.census.sample_persons`.
    :meth:`frames` yields the chunks; :meth:`report` then counts rejections per rule, imputation / survey
    back-off levels, undecodable codes and the source checksums. A chunk whose breakers survive every
    round raises ``UserError`` (nothing is written by ``io.write_persona_frames`` then).
    """

    def __init__(
        self,
        n: int,
        seed: int,
        source: str | Path = "acs2024",
        states: str | Sequence[str] | None = None,
        adults_only: bool = True,
        min_age: int | None = None,
        max_age: int | None = None,
        quota_by: str | Sequence[str] | None = None,
        rake: Any = None,
        replace: bool = True,
        data_dir: str | Path | None = None,
        max_attempts: int = MAX_ATTEMPTS,
        design: str = "systematic",
        big_five_reference: str = "pooled",
        gss_min_cell: int = MIN_CELL,
        national_donors: str | Path | None = None,
    ):
        self.t0 = time.perf_counter()
        if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
            raise UserError(f"n must be a positive integer, got {n!r}")
        check_reference(big_five_reference)
        check_min_cell(gss_min_cell)
        self.n, self.seed, self.quota_by, self.replace = n, seed, quota_by, replace
        self.max_attempts, self.design = max_attempts, design
        self.src = _open(source, states, data_dir)
        self.filters = Filters(adults_only=adults_only, min_age=min_age, max_age=max_age)
        self.ctx = MappingContext(
            self.src,
            seed,
            data_dir,
            str(source),
            big_five_reference=big_five_reference,
            gss_min_cell=gss_min_cell,
            national_donors=national_donors,
        )
        self.ctx.national_source()  # a bad or regional donor source fails before anything is drawn
        self.columns = self.ctx.person_columns()
        self.raked, self.rake_report = (None, None)
        if rake:
            self.raked, self.rake_report = _rake_weights(self.src, rake, self.columns, data_dir)
        self.stats = MapStats()
        self.rejections = {name: 0 for name in RULE_NAMES}
        self.checked = 0
        if self.raked is None:  # which record each draw takes; the records are fetched chunk by chunk
            self.plan: Any = plan_draws(
                self.src,
                n,
                seed,
                replace=replace,
                filters=self.filters,
                quota_by=quota_by,
                columns=self.columns,
                design=design,
            )
        else:
            self.plan = _FetchedPlan(
                _draw(
                    self.src,
                    n,
                    seed,
                    replace=replace,
                    filters=self.filters,
                    quota_by=quota_by,
                    columns=self.columns,
                    raked=self.raked,
                    design=design,
                )
            )
        strata = getattr(self.plan, "strata", None)
        self.strata = pl.DataFrame({"_stratum": strata}) if strata is not None else pl.DataFrame()

    def frames(self) -> Iterator[pl.DataFrame]:
        """The checked personas, ``MAP_CHUNK_ROWS`` at a time, in draw order.

        The next chunk is fetched and mapped on a second thread while this one is checked and consumed
        (polars and numpy release the GIL, so the two overlap on two cores); each chunk keeps its own
        ``MapStats``, merged in order, so the report does not depend on the timing."""
        starts = list(range(0, self.n, build.MAP_CHUNK_ROWS))
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="persona-map") as pool:
            ahead = pool.submit(self._mapped, starts[0]) if starts else None
            for index, _start in enumerate(starts):
                mapped, stats = ahead.result()  # type: ignore[union-attr]
                ahead = pool.submit(self._mapped, starts[index + 1]) if index + 1 < len(starts) else None
                self.stats.merge(stats)
                yield self._checked(mapped, index).drop("_slot")
                del mapped

    def _mapped(self, start: int) -> tuple[pl.DataFrame, MapStats]:
        """Chunk ``start``: fetched, mapped, with its slot numbers."""
        draws = self.plan.fetch(start, start + build.MAP_CHUNK_ROWS)
        stats = MapStats()
        mapped = map_frame(draws, self.ctx, stats, chunk_rows=draws.height)
        return mapped.with_columns(_slot=pl.int_range(start, start + draws.height, dtype=pl.Int64)), stats

    def _checked(self, mapped: pl.DataFrame, index: int) -> pl.DataFrame:
        """``mapped`` with every rule breaker replaced by a fresh draw that passes (rounds of redraws)."""
        todo = mapped
        for attempt in range(1, self.max_attempts + 2):
            matrix = broken_matrix(todo)
            self.checked += todo.height
            for name in RULE_NAMES:
                self.rejections[name] += int(matrix[name].sum())
            is_bad = matrix.select(pl.any_horizontal(pl.all()).alias("bad"))["bad"]
            if not is_bad.any():
                break
            bad = [
                (slot, [name for name in RULE_NAMES if row[name]])
                for slot, row in zip(
                    todo["_slot"].filter(is_bad).to_list(), matrix.filter(is_bad).iter_rows(named=True)
                )
            ]
            if attempt > self.max_attempts:
                ids = persona_ids(todo.filter(is_bad)).to_list()
                failures = [{"slot": i, "id": pid, "rules": names} for (i, names), pid in zip(bad, ids)]
                raise UserError(
                    f"{len(failures)} persona(s) still break consistency rules after "
                    f"{self.max_attempts} resampling rounds: {failures[:3]}"
                )
            slots = [i for i, _ in bad]
            if (
                self.quota_by
            ):  # keep each slot in its stratum: redraw inside the stratum of the rejected persona
                fresh = _redraw_in_strata(
                    self.src,
                    self.strata,
                    bad,
                    attempt,
                    self.n,
                    self.seed,
                    self.replace,
                    self.filters,
                    self.quota_by,
                    self.columns,
                    self.raked,
                )
            else:
                fresh = _draw(
                    self.src,
                    len(bad),
                    derive_int(self.seed, "personas.resample", attempt, index),
                    replace=self.replace,
                    filters=self.filters,
                    quota_by=None,
                    columns=self.columns,
                    raked=self.raked,
                    design=self.design,
                )
                fresh = fresh.with_columns(
                    _draw=pl.Series([attempt * self.n + i for i in slots], dtype=pl.Int64)
                )
            todo = map_frame(fresh, self.ctx, self.stats).with_columns(_slot=pl.Series(slots, dtype=pl.Int64))
            mapped = pl.concat(
                [mapped.filter(~pl.col("_slot").is_in(slots)), todo], how="vertical_relaxed"
            ).sort("_slot")
        return mapped

    def report(self, count: int | None = None) -> dict[str, Any]:
        """:meth:`report_record` as JSON-ready data (``personas_report.json``)."""
        return self.report_record(count).model_dump(mode="json")

    def report_record(self, count: int | None = None) -> SampleReport:
        """What happened, typed (call after :meth:`frames` is exhausted)."""
        src, checked = self.src, self.checked
        return SampleReport.model_validate(
            {
                "n": self.n if count is None else count,
                "seed": self.seed,
                "source": src.name,
                "year": src.year,
                "states": src.states,
                "filters": self.filters.describe(),
                "quota_by": self.quota_by,
                "replace": self.replace,
                "design": self.design if self.replace else "without replacement (Efraimidis-Spirakis)",
                "source_checksum": src.checksum,
                "inputs": [{"path": i.path, "sha256": i.sha256} for i in src.inputs],
                "rules": {
                    "checked": checked,
                    "rejections": self.rejections,
                    "rejection_rate": {
                        k: (v / checked if checked else 0.0) for k, v in self.rejections.items()
                    },
                },
                **self.stats.as_dict(),
                "national_donors": self.ctx.national_donors,
                "big_five": {
                    "reference": self.ctx.big_five_reference,
                    "reference_label": REFERENCE_LABELS[self.ctx.big_five_reference],
                },
                "raking": self.rake_report,
                "gss_sha256": self.ctx.pool.sha256_file,
                "seconds": round(time.perf_counter() - self.t0, 3),
            }
        )


class _FetchedPlan:
    """Draws already fetched (raked weights: drawn from an in-memory frame), served like a ``DrawPlan``."""

    def __init__(self, draws: pl.DataFrame):
        self.draws, self.n = draws, draws.height
        self.strata = draws["_stratum"].to_numpy() if "_stratum" in draws.columns else None

    def fetch(self, start: int, stop: int) -> pl.DataFrame:
        return self.draws.slice(start, stop - start)


def sample_personas(
    n: int,
    seed: int,
    source: str | Path = "acs2024",
    states: str | Sequence[str] | None = None,
    adults_only: bool = True,
    min_age: int | None = None,
    max_age: int | None = None,
    quota_by: str | Sequence[str] | None = None,
    rake: Any = None,
    replace: bool = True,
    data_dir: str | Path | None = None,
    max_attempts: int = MAX_ATTEMPTS,
    design: str = "systematic",
    big_five_reference: str = "pooled",
    gss_min_cell: int = MIN_CELL,
    national_donors: str | Path | None = None,
) -> SampleResult:
    """:class:`PersonaSampler` as ``Persona`` records (for counts that fit in memory; ``personas sample``
    streams the frames to disk instead)."""
    sampler = PersonaSampler(
        n,
        seed,
        source=source,
        states=states,
        adults_only=adults_only,
        min_age=min_age,
        max_age=max_age,
        quota_by=quota_by,
        rake=rake,
        replace=replace,
        data_dir=data_dir,
        max_attempts=max_attempts,
        design=design,
        big_five_reference=big_five_reference,
        gss_min_cell=gss_min_cell,
        national_donors=national_donors,
    )
    personas = [p for frame in sampler.frames() for p in frame_to_personas(frame)]
    return SampleResult(personas=personas, report=sampler.report())


def _redraw_in_strata(
    src: Any,
    draws: pl.DataFrame,
    bad: list,
    attempt: int,
    n: int,
    seed: int,
    replace: bool,
    filters: Any,
    quota_by: Any,
    columns: list[str],
    raked: Any,
) -> pl.DataFrame:
    """One replacement per rejected slot, drawn inside that slot's quota stratum."""
    parts = []
    strata = draws["_stratum"].to_list() if "_stratum" in draws.columns else [None] * draws.height
    keys = [quota_by] if isinstance(quota_by, str) else list(quota_by)
    for i, _ in bad:
        label = strata[i] if i < len(strata) else None
        f = filters
        sub_seed = derive_int(seed, "personas.resample", attempt, i)
        if label is not None and keys == ["STATE"]:
            f = Filters(
                adults_only=filters.adults_only,
                min_age=filters.min_age,
                max_age=filters.max_age,
                states=[label],
            )
            one = _draw(
                src, 1, sub_seed, replace=replace, filters=f, quota_by=None, columns=columns, raked=raked
            )
        elif label is not None and keys == ["age_band"] and label[:1].isdigit():
            lo_s, _, hi_s = label.rstrip("+").partition("-")
            lo = max(int(lo_s), filters.age_bounds()[0] or 0)
            hi = int(hi_s) if hi_s else filters.max_age
            f = Filters(min_age=lo, max_age=hi, states=filters.states)
            one = _draw(
                src, 1, sub_seed, replace=replace, filters=f, quota_by=None, columns=columns, raked=raked
            )
        else:
            one = _draw(
                src, 1, sub_seed, replace=replace, filters=f, quota_by=quota_by, columns=columns, raked=raked
            )
        parts.append(
            one.drop([c for c in ("_stratum",) if c in one.columns]).with_columns(
                _draw=pl.lit(attempt * n + i, dtype=pl.Int64)
            )
        )
    return pl.concat(parts, how="vertical_relaxed")
