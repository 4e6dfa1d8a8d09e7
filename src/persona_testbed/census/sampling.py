"""Weighted sampling of whole person records (probability proportional to a weight), seeded.

With replacement, two designs (``design=``):

* ``"systematic"`` (default): balanced PPS on an implicit stratification, by a randomised quasi-Monte
  Carlo (QMC) version of the conditional-distribution (Rosenblatt) method. Records are sorted by the
  ``d`` keys of :data:`DESIGN_KEYS` (occupation and industry code bands, education, income bands, age
  bands, marital status, race, class of worker, employment status, sex), their weights laid end to end.
  Draw ``i`` takes point ``i`` of a ``d + 1``-dimensional Sobol' sequence (Joe–Kuo direction numbers),
  randomised by a random digital shift and a uniform jitter below the last bit (so every point is
  exactly uniform on the unit cube and the nets are kept), and walks down the key
  hierarchy: coordinate ``k`` picks, inside the cell of keys ``0..k-1`` already chosen, the sub-cell of
  key ``k`` at that fraction of the cell's weight; the last coordinate picks the record inside the
  final cell of equal keys ∝ weight. The product of these conditional picks is ``w / W``, so every
  record is expected ``n * w / W`` times exactly as with iid draws. Because the Sobol' points are
  evenly spread in every coordinate (the first is the shifted van der Corput sequence: with one key
  this is systematic PPS along the sort, for ``n = 2^k`` exactly one point per ``1/n`` of the total
  weight) and in low-dimensional projections, the sample is balanced on the first key and, through
  its own coordinate, on each later key too, not only on the outermost keys as with one systematic
  pass along a nested sort. Point ``i`` does not depend on ``n``, so raising ``n`` still extends the
  sample. References: Sobol' (1967); Joe & Kuo (2008) "Constructing Sobol' sequences with better
  two-dimensional projections"; Dick & Pillichshammer (2010) "Digital Nets and Sequences" (random
  digital shifts); Rosenblatt (1952) for the conditional-distribution transform; Chromy (1979) and
  Stevens & Olsen (2004, GRTS) for systematic sampling along an implicitly stratified / hierarchical order.
* ``"independent"``: iid draws (cumulative weights + ``searchsorted`` on seeded uniforms).

Without replacement (either design): Efraimidis–Spirakis keys ``log(u) / w``, the ``n`` largest in key
order (a valid sequential weighted draw). In every case the first ``k`` draws of a run with ``n > k``
equal the draws of a run with ``n = k``.
Quotas split ``n`` equally over strata (the ``n mod k`` extra draws go to seeded-randomly chosen strata)
and draw inside each stratum with its weights renormalised; the final order is shuffled (seeded).

Only the weight/filter/quota columns are read for the whole source; the full records are then fetched
for the drawn rows only, file by file.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import polars as pl
from pydantic import BaseModel, model_validator

from ..core import settings
from ..core.atomic import atomic_path
from ..core.errors import UserError
from ..core.hashing import content_hash
from ..core.seeds import rng
from .columns import canonical_name
from .source import CensusSource, return_free_heap
from .states import STATES, parse_states

STAGE = "census.sample"
FETCH_BATCH = 8  # files decoded at once when fetching drawn records

#: age bands (inclusive lower, inclusive upper or None, label) used by the ``age_band`` quota key
AGE_BANDS: list[tuple[int, int | None, str]] = [
    (0, 17, "0-17"),
    (18, 24, "18-24"),
    (25, 34, "25-34"),
    (35, 44, "35-44"),
    (45, 54, "45-54"),
    (55, 64, "55-64"),
    (65, None, "65+"),
]


def age_band_expr(col: str = "AGEP") -> pl.Expr:
    """Polars expression: the :data:`AGE_BANDS` label of an age column."""
    expr = pl.when(pl.col(col).is_null()).then(None)
    for lo, hi, label in AGE_BANDS:
        cond = pl.col(col) >= lo if hi is None else pl.col(col).is_between(lo, hi)
        expr = expr.when(cond).then(pl.lit(label))
    return expr.otherwise(None).alias("age_band")


#: sampling designs for draws with replacement (see the module docstring)
DESIGNS: tuple[str, ...] = ("systematic", "independent")
Design = Literal["systematic", "independent"]
#: implicit stratification of the systematic design, in hierarchy order: (column, banding). Codes are
#: read as integers; banding is a divisor (OCCP / INDP code bands of 100 nest in the dictionary's 3-letter
#: groups) or a tuple of band lower bounds (the fidelity report's income and adult age bands).
#: Chosen on the 2024 national extract (max per-field TVD at n = 1,586, benchmarks/bench_design_tvd.py):
#: the many-category work fields first (a key deep in the hierarchy is balanced less, as its sub-cells
#: follow the cells above it), then education, income, age, and the few-category demographics; putting
#: the demographic keys first made occupation and industry as noisy as iid draws.
DESIGN_KEYS: tuple[tuple[str, int | tuple[int, ...]], ...] = (
    ("OCCP", 100),
    ("INDP", 100),
    ("SCHL", 1),
    ("PINCP", (1, 10_000, 25_000, 50_000, 75_000, 100_000, 150_000)),
    ("AGEP", (18, 25, 35, 45, 55, 65)),
    ("MAR", 1),
    ("RAC1P", 1),
    ("COW", 1),
    ("ESR", 1),
    ("SEX", 1),
)
DESIGN_CACHE_VERSION = 3
SOBOL_BITS = 32
#: Joe & Kuo (2008, new-joe-kuo-6.21201) Sobol' parameters for dimensions 2..: (degree s, coefficients a,
#: initial direction numbers m_1..m_s); dimension 1 is the van der Corput sequence
SOBOL_PARAMS: tuple[tuple[int, int, tuple[int, ...]], ...] = (
    (1, 0, (1,)),
    (2, 1, (1, 3)),
    (3, 1, (1, 3, 1)),
    (3, 2, (1, 1, 1)),
    (4, 1, (1, 1, 3, 3)),
    (4, 4, (1, 3, 5, 13)),
    (5, 2, (1, 1, 5, 5, 17)),
    (5, 4, (1, 1, 5, 5, 5)),
    (5, 7, (1, 1, 7, 11, 19)),
    (5, 11, (1, 1, 5, 1, 1)),
    (5, 13, (1, 1, 1, 3, 11)),
    (5, 14, (1, 3, 5, 5, 31)),
    (6, 1, (1, 3, 3, 9, 7, 49)),
    (6, 13, (1, 1, 1, 15, 21, 21)),
    (6, 16, (1, 3, 1, 13, 27, 49)),
    (6, 19, (1, 1, 1, 15, 7, 5)),
    (6, 22, (1, 3, 1, 15, 13, 25)),
    (6, 25, (1, 1, 5, 5, 19, 61)),
    (7, 1, (1, 3, 7, 11, 23, 15, 103)),
    (7, 4, (1, 3, 7, 13, 13, 15, 69)),
)
_RANK_MEMO: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}
_KEYS_MEMO: dict[tuple, pl.DataFrame] = {}


#: derived quota keys: name -> (columns needed, expression)
DERIVED_KEYS: dict[str, tuple[list[str], pl.Expr]] = {"age_band": (["AGEP"], age_band_expr())}


class Filters(BaseModel):
    """Which records may be drawn. States accept FIPS codes or postal abbreviations."""

    adults_only: bool = False
    min_age: int | None = None
    max_age: int | None = None
    states: list[str] | None = None

    @model_validator(mode="after")
    def _check(self) -> Filters:
        if self.min_age is not None and self.max_age is not None and self.min_age > self.max_age:
            raise UserError(f"min_age {self.min_age} is above max_age {self.max_age}")
        self.states = parse_states(self.states)
        return self

    def age_bounds(self) -> tuple[int | None, int | None]:
        lo = self.min_age
        if self.adults_only:
            lo = 18 if lo is None else max(lo, 18)
        return lo, self.max_age

    def describe(self) -> str:
        parts = []
        lo, hi = self.age_bounds()
        if lo is not None or hi is not None:
            parts.append(f"age {lo if lo is not None else 0}-{hi if hi is not None else '∞'}")
        if self.states:
            parts.append("states " + ",".join(STATES[s][0] for s in self.states))
        return ", ".join(parts) or "none"


def sample_persons(
    source: CensusSource | pl.LazyFrame | pl.DataFrame,
    n: int,
    seed: int,
    *,
    weight: str = "PWGTP",
    replace: bool = True,
    filters: Filters | None = None,
    quota_by: str | Sequence[str] | None = None,
    columns: list[str] | None = None,
    year: int | None = None,
    weights: np.ndarray | None = None,
    design: Design = "systematic",
) -> pl.DataFrame:
    """Draw ``n`` whole person records with probability proportional to ``weight``.

    ``source``: a :class:`CensusSource` (fast path) or a frame of person records (e.g. with raked
    weights). ``quota_by``: a column (``"STATE"``, ``"SEX"``) or derived key (``"age_band"``), or a list
    of them: equal counts per stratum. ``columns``: record columns to return (default all).
    ``weights``: per-record weights aligned with ``source.persons()`` rows (e.g. ``rake_source(...)
    .weights``), used instead of the ``weight`` column (CensusSource only).
    ``design``: ``"systematic"`` (default; balanced PPS, see the module docstring) or ``"independent"``
    (iid PPS draws); draws without replacement ignore it.
    Returns the records in draw order plus ``_draw`` (0..n-1), ``_year``, ``_state`` (FIPS),
    ``_weight`` (the record's weight) and, with quotas, ``_stratum``.
    Raises ``UserError`` for n <= 0, zero records after filters, n above the population without
    replacement, unknown states or missing columns.
    """
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n <= 0:
        raise UserError(f"n must be a positive integer, got {n!r}")
    if design not in DESIGNS:
        raise UserError(f"design must be one of {', '.join(DESIGNS)}, got {design!r}")
    filters = filters or Filters()
    quota_keys = [quota_by] if isinstance(quota_by, str) else list(quota_by or [])
    if isinstance(source, CensusSource):
        return _plan_source(
            source, int(n), seed, weight, replace, filters, quota_keys, columns, weights, design
        ).fetch()
    if weights is not None:
        raise UserError("weights= is for a CensusSource; put the weights in a column of the frame instead")
    lf = source.lazy() if isinstance(source, pl.DataFrame) else source
    return _sample_frame(lf, int(n), seed, weight, replace, filters, quota_keys, columns, year, design)


def plan_draws(
    source: CensusSource,
    n: int,
    seed: int,
    *,
    weight: str = "PWGTP",
    replace: bool = True,
    filters: Filters | None = None,
    quota_by: str | Sequence[str] | None = None,
    columns: list[str] | None = None,
    weights: np.ndarray | None = None,
    design: Design = "systematic",
) -> DrawPlan:
    """:func:`sample_persons` for a :class:`CensusSource`, without fetching the records yet: the returned
    plan holds which record each draw picked and fetches the records of any range of draws on demand
    (``plan.fetch(start, stop)``), so a million draws can be processed in bounded memory. The frames it
    fetches, concatenated, equal ``sample_persons(...)`` with the same arguments."""
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n <= 0:
        raise UserError(f"n must be a positive integer, got {n!r}")
    if design not in DESIGNS:
        raise UserError(f"design must be one of {', '.join(DESIGNS)}, got {design!r}")
    quota_keys = [quota_by] if isinstance(quota_by, str) else list(quota_by or [])
    plan = _plan_source(
        source, int(n), seed, weight, replace, filters or Filters(), quota_keys, columns, weights, design
    )
    return_free_heap()  # the planning temporaries (and a first run's ranking) are gone: give them back
    return plan


class DrawPlan:
    """The draws of :func:`plan_draws`: per draw the source file, row, weight (and quota stratum)."""

    def __init__(
        self,
        src: CensusSource,
        files: np.ndarray,
        rows: np.ndarray,
        weights: np.ndarray,
        strata: np.ndarray | None,
        state_of_file: np.ndarray,
        wanted: list[str],
    ):
        self.src, self.files, self.rows, self.weights = src, files, rows, weights
        self.strata, self.state_of_file, self.wanted = strata, state_of_file, wanted
        self.n = len(files)

    def fetch(self, start: int = 0, stop: int | None = None) -> pl.DataFrame:
        """The drawn records of draws ``start``..``stop`` (``sample_persons`` columns, ``_draw`` from
        ``start``)."""
        stop = self.n if stop is None else min(stop, self.n)
        files, rows = self.files[start:stop], self.rows[start:stop]
        m = len(files)
        by_file = {int(f): np.unique(rows[files == f]) for f in np.unique(files)}
        fetched = self.src.file_frames(self.wanted, rows=by_file)
        # fetch each file's distinct drawn rows once (a few files at a time: bounded memory), then put every
        # draw in place with one gather: position = file offset + rank of its row among the file's rows
        uniq_parts, offsets, uniq_rows, total = [], {}, {}, 0
        file_ids = sorted(by_file)
        for first in range(0, len(file_ids), FETCH_BATCH):
            batch = file_ids[first : first + FETCH_BATCH]
            dfs = pl.collect_all([lf for _info, lf in fetched[first : first + FETCH_BATCH]])
            for f, df in zip(batch, dfs):
                uniq_rows[f] = df["_row"].to_numpy()
                offsets[f] = total
                total += df.height
                uniq_parts.append(df.drop("_row"))
            del dfs
        unique = pl.concat(uniq_parts, how="vertical", rechunk=True)
        del uniq_parts
        at = np.empty(m, dtype=np.int64)
        for f in by_file:
            sel = files == f
            at[sel] = offsets[f] + np.searchsorted(uniq_rows[f], rows[sel])
        out = unique[at]
        del unique
        out = out.with_columns(
            pl.Series("_draw", np.arange(start, stop)), pl.Series("_state", self.state_of_file[files])
        )
        extra = [
            pl.lit(self.src.year, dtype=pl.Int32).alias("_year"),
            pl.Series("_weight", self.weights[start:stop]),
        ]
        if self.strata is not None:
            extra.append(pl.Series("_stratum", self.strata[start:stop]))
        return _finish(out.with_columns(extra), self.wanted, self.strata is not None)


# ---- key frames -------------------------------------------------------------------------------------
def _needed(weight: str, filters: Filters, quota_keys: list[str]) -> tuple[list[str], list[pl.Expr]]:
    cols = [weight]
    lo, hi = filters.age_bounds()
    if lo is not None or hi is not None:
        cols.append("AGEP")
    exprs = []
    for key in quota_keys:
        if key in DERIVED_KEYS:
            need, expr = DERIVED_KEYS[key]
            cols += need
            exprs.append(expr.alias(f"_q_{key}"))
        elif key != "STATE":
            cols.append(key)
            exprs.append(pl.col(key).cast(pl.String).alias(f"_q_{key}"))
    return list(dict.fromkeys(cols)), exprs


def _filter_mask(keys: pl.DataFrame, filters: Filters) -> np.ndarray:
    mask = np.ones(keys.height, dtype=bool)
    lo, hi = filters.age_bounds()
    if lo is not None or hi is not None:
        age = keys["AGEP"].to_numpy().astype(float)
        if lo is not None:
            mask &= age >= lo
        if hi is not None:
            mask &= age <= hi
    return mask


def _plan_source(
    src: CensusSource,
    n: int,
    seed: int,
    weight: str,
    replace: bool,
    filters: Filters,
    quota_keys: list[str],
    columns: list[str] | None,
    weights: np.ndarray | None,
    design: str,
) -> DrawPlan:
    if filters.states:
        missing = [s for s in filters.states if s not in src.states]
        if missing:
            raise UserError(f"state {', '.join(STATES[s][0] for s in missing)} not in source {src.name}")
    cols, qexprs = _needed(weight, filters, quota_keys)
    if weights is not None:
        cols = [c for c in cols if c != weight]
    frames = src.file_frames(cols)
    state_q = ["_q_STATE"] if "STATE" in quota_keys else []
    lfs = [
        lf.with_columns(
            *qexprs,
            *[pl.lit(info.state, dtype=pl.String).alias(q) for q in state_q],
            pl.lit(i, dtype=pl.Int32).alias("_file"),
        )
        for i, (info, lf) in enumerate(frames)
    ]
    memo_key = (src.checksum, tuple(cols), tuple(quota_keys))
    keys = _KEYS_MEMO.get(memo_key)
    if keys is None:  # the whole-source key columns, kept for the next call in this process
        keys = pl.concat(pl.collect_all(lfs), how="vertical")
        _KEYS_MEMO.clear()
        _KEYS_MEMO[memo_key] = keys
    state_of_file = np.array([info.state for info, _ in frames])
    if weights is not None:
        weights = np.asarray(weights, dtype=float)
        if weights.shape != (keys.height,):
            raise UserError(
                f"weights has {weights.shape[0] if weights.ndim else 0} entries, but source "
                f"{src.name} has {keys.height} person records"
            )
        keys = keys.with_columns(pl.Series(weight, weights))
    sorted_rows, hierarchy = None, None
    if replace and design == "systematic":
        rank, spos, order, dlev, depth = source_design_rank(src)
        hierarchy = (dlev, depth)
        keys = keys.with_columns(pl.Series("_rank", rank), pl.Series("_spos", spos))
        if not filters.states:  # rows unfiltered: the cached sort order applies to the key rows as they are
            sorted_rows = order

    if filters.states:
        keys = keys.filter(
            pl.col("_file").is_in([i for i, st in enumerate(state_of_file) if st in filters.states])
        )
    pos, strata = _draw(keys, n, seed, weight, replace, filters, quota_keys, design, sorted_rows, hierarchy)

    files = keys["_file"].to_numpy()[pos]
    rows = keys["_row"].to_numpy()[pos]
    wanted = list(dict.fromkeys(canonical_name(c) for c in columns)) if columns else src.available_columns()
    w = keys[weight].to_numpy()[pos].astype(float)
    return DrawPlan(src, files, rows, w, strata, state_of_file, wanted)


def _sample_frame(
    lf: pl.LazyFrame,
    n: int,
    seed: int,
    weight: str,
    replace: bool,
    filters: Filters,
    quota_keys: list[str],
    columns: list[str] | None,
    year: int | None,
    design: str,
) -> pl.DataFrame:
    schema = lf.collect_schema()
    cols, qexprs = _needed(weight, filters, quota_keys)
    if filters.states or "STATE" in quota_keys:
        cols.append("STATE")
    missing = [c for c in cols if c not in schema]
    if missing:
        raise UserError(f"missing required column {', '.join(missing)} in the person records")
    if "STATE" in quota_keys:
        qexprs.append(pl.col("STATE").cast(pl.String).alias("_q_STATE"))
    code_exprs, hierarchy = [], None
    if replace and design == "systematic":
        code_exprs = design_code_exprs([c for c, _ in DESIGN_KEYS if c in schema])
    keys = (
        lf.with_row_index("_row").select(["_row"] + list(dict.fromkeys(cols)) + qexprs + code_exprs).collect()
    )
    if code_exprs:
        codes = [e.meta.output_name() for e in code_exprs]
        rank, dlev = design_rank(keys.select(codes))
        keys, hierarchy = keys.drop(codes).with_columns(pl.Series("_rank", rank)), (dlev, len(codes))
    if filters.states:
        keys = keys.filter(pl.col("STATE").cast(pl.String).str.zfill(2).is_in(filters.states))
    pos, strata = _draw(keys, n, seed, weight, replace, filters, quota_keys, design, hierarchy=hierarchy)
    rows = keys["_row"].to_numpy()[pos]
    wanted = columns or list(schema)
    fetched = (
        lf.with_row_index("_row")
        .filter(pl.col("_row").is_in(pl.Series(np.unique(rows)).implode()))
        .select(["_row"] + [c for c in wanted if c != "_row"])
        .collect()
    )
    draws = pl.DataFrame({"_row": rows, "_draw": np.arange(n)}).with_columns(
        pl.col("_row").cast(fetched.schema["_row"])
    )
    out = draws.join(fetched, on="_row", how="left").sort("_draw")
    yr = (
        pl.lit(year, dtype=pl.Int32)
        if year is not None
        else (
            pl.col("SERIALNO").str.slice(0, 4).cast(pl.Int32, strict=False)
            if "SERIALNO" in out.columns
            else pl.lit(None, dtype=pl.Int32)
        )
    )
    st = (
        pl.col("STATE").cast(pl.String).str.zfill(2)
        if "STATE" in out.columns
        else pl.lit(None, dtype=pl.String)
    )
    extra = [
        yr.alias("_year"),
        st.alias("_state"),
        pl.Series("_weight", keys[weight].to_numpy()[pos].astype(float)),
    ]
    if strata is not None:
        extra.append(pl.Series("_stratum", strata))
    return _finish(out.with_columns(extra), wanted, strata is not None)


def _finish(out: pl.DataFrame, wanted: list[str], has_strata: bool) -> pl.DataFrame:
    tail = ["_draw", "_year", "_state", "_weight"] + (["_stratum"] if has_strata else [])
    return out.select([c for c in wanted if c not in tail] + tail).with_columns(
        pl.col("_draw").cast(pl.Int64)
    )


# ---- the draw ---------------------------------------------------------------------------------------
def design_code_exprs(present: list[str]) -> list[pl.Expr]:
    """Banded integer codes of the :data:`DESIGN_KEYS` in ``present`` (hierarchy order), as ``_k0``,
    ``_k1``, …; nulls (and non-numeric codes) become a code above every other, so they sort last.

    Codes are read as integers (``"0170"`` -> 170) and divided by the key's divisor or counted against its
    band lower bounds.
    """
    parts = []
    for c, band in DESIGN_KEYS:
        if c not in present:
            continue
        code = pl.col(c).cast(pl.String).str.strip_chars().cast(pl.Int64, strict=False)
        banded = (
            code // band
            if isinstance(band, int)
            else pl.sum_horizontal([(code >= b).cast(pl.Int64) for b in band])
        )
        parts.append(pl.when(code.is_null()).then(1 << 40).otherwise(banded).alias(f"_k{len(parts)}"))
    return parts


def design_rank(codes: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Dense rank of the rows of ``codes`` (the :func:`design_code_exprs` columns, lexicographic order) and,
    for every rank value ``r > 0``, the index of the first key in which cell ``r`` differs from cell ``r - 1``
    (``int8``; entry 0 is 0). Without columns: the row number (the list order) and an empty hierarchy."""
    if codes.width == 0:
        return np.arange(codes.height, dtype=np.int64), np.zeros(codes.height, dtype=np.int8)
    # each key densely coded, then all keys packed into one mixed-radix integer (lexicographic order kept)
    dense = []
    for c in codes.columns:
        x = codes[c].to_numpy()
        null = x == 1 << 40
        top = int(x[~null].max()) + 1 if (~null).any() else 0
        x = np.where(null, top, x)
        dense.append(x - (int(x.min()) if len(x) else 0))
    radix = [int(x.max()) + 1 if len(x) else 1 for x in dense]
    if float(np.prod(np.array(radix, dtype=np.float64))) < 2.0**62:
        packed = np.zeros(codes.height, dtype=np.int64)
        for x, r in zip(dense, radix):
            packed = packed * r + x
        cells_packed, rank = np.unique(packed, return_inverse=True)
        digits = np.empty((len(cells_packed), len(dense)), dtype=np.int64)
        rest = cells_packed
        for k in range(len(dense) - 1, -1, -1):
            digits[:, k] = rest % radix[k]
            rest = rest // radix[k]
    else:  # too many combinations for one integer: rank the struct of keys
        cols = codes.columns
        rank = codes.select(pl.struct(cols).rank("dense").cast(pl.Int64) - 1)[cols[0]].to_numpy()
        digits = codes.unique().sort(cols).to_numpy()
    dlev = np.zeros(len(digits), dtype=np.int8)
    if len(digits) > 1:
        dlev[1:] = (digits[1:] != digits[:-1]).argmax(axis=1)
    return rank.astype(np.int64), dlev


def source_design_rank(src: CensusSource) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """:func:`design_rank` for every person record of ``src`` (rows of ``src.persons()``): the rank, each
    record's position in the stable sort by it, the sorted order, the per-cell first differing key and the
    number of keys; computed once per source, cached under ``<home>/cache/census`` keyed by the source
    checksum and :data:`DESIGN_CACHE_VERSION` (and in memory for the process)."""
    present = [c for c, _ in DESIGN_KEYS if c in set(src.available_columns())]
    key = content_hash(
        {"v": DESIGN_CACHE_VERSION, "src": src.checksum, "keys": DESIGN_KEYS, "present": present}, 24
    )
    path = settings.cache_dir() / "census" / f"design-rank-{key}.npz"
    if str(path) in _RANK_MEMO:
        return _RANK_MEMO[str(path)]
    rank = dlev = order = None
    if path.exists():
        try:
            with np.load(path) as z:
                rank, dlev, order = z["rank"], z["dlev"], z["order"]
            if order.shape != rank.shape:
                rank = None
        except (OSError, ValueError, KeyError):
            rank = None  # unreadable (or older) cache entry: recompute and overwrite
    if rank is None or dlev is None or order is None:
        rank, dlev, order = _compute_source_rank(src, present, path)
    spos = np.empty(len(rank), dtype=np.int32)
    spos[order] = np.arange(len(rank), dtype=np.int32)
    _RANK_MEMO.clear()
    _RANK_MEMO[str(path)] = (rank, spos, order, dlev, len(present))
    return _RANK_MEMO[str(path)]


def _compute_source_rank(
    src: CensusSource,
    present: list[str],  # type: ignore[no-untyped-def]
    path,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rank, per-cell first differing key and the stable sort order by rank (saved together: sorting
    3.4 M ranks again in every process cost 0.3 s)."""
    if present:
        frames = src.file_frames(present)
        parts = pl.collect_all([lf.select(design_code_exprs(present)) for _info, lf in frames])
        rank, dlev = design_rank(pl.concat(parts, how="vertical"))
    else:
        rank, dlev = np.arange(sum(src.row_count(s) for s in src.states)), np.zeros(1, dtype=np.int8)
    rank = rank.astype(np.int32)
    order = np.argsort(rank, kind="stable").astype(np.int32)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, rank=rank, dlev=dlev, order=order)
    return rank, dlev, order


def van_der_corput(m: int) -> np.ndarray:
    """The first ``m`` points of the base-2 van der Corput sequence (0, 1/2, 1/4, 3/4, 1/8, ...)."""
    i = np.arange(m, dtype=np.uint64)
    out = np.zeros(m, dtype=np.float64)
    scale = 0.5
    while i.any():
        out += (i & np.uint64(1)).astype(np.float64) * scale
        i >>= np.uint64(1)
        scale /= 2
    return out


def sobol_directions(d: int) -> np.ndarray:
    """Direction numbers (``d`` x :data:`SOBOL_BITS`, as ``uint64`` integers of SOBOL_BITS bits) of the
    first ``d`` dimensions of the Joe–Kuo Sobol' sequence."""
    if d > len(SOBOL_PARAMS) + 1:
        raise UserError(f"at most {len(SOBOL_PARAMS) + 1} Sobol' dimensions, got {d}")
    nb = SOBOL_BITS
    v = np.zeros((d, nb), dtype=np.uint64)
    if d:
        v[0] = [1 << (nb - 1 - k) for k in range(nb)]
    for j in range(1, d):
        s, a, m0 = SOBOL_PARAMS[j - 1]
        m = list(m0)
        for k in range(s, nb):
            x = m[k - s] ^ (m[k - s] << s)
            for t in range(1, s):
                if (a >> (s - 1 - t)) & 1:
                    x ^= m[k - t] << t
            m.append(x)
        v[j] = [m[k] << (nb - 1 - k) for k in range(nb)]
    return v


def sobol_points(m: int, d: int, g: np.random.Generator) -> list[np.ndarray]:
    """The first ``m`` points of a randomised ``d``-dimensional Sobol' sequence, one array per coordinate.

    Randomisation (all from ``g``, in an order that does not depend on ``m``): a random digital shift (the
    integer coordinates XOR one uniform :data:`SOBOL_BITS`-bit integer per coordinate) and a uniform
    jitter below the last bit, so each point is exactly uniform on the unit cube while the net structure
    is kept (the first coordinate of the first ``2^k`` points stays a shifted grid ``(j + δ) / 2^k``).
    Point ``i`` does not depend on ``m``.
    """
    nb = SOBOL_BITS
    if m > 1 << nb:
        raise UserError(f"at most 2^{nb} systematic draws at once, got {m}")
    v = sobol_directions(d)
    shifts = g.integers(0, 1 << nb, size=d, dtype=np.uint64)
    jitter_g = g.spawn(d)
    out = []
    for j in range(d):
        x = np.zeros(max(m, 1), dtype=np.uint64)
        filled, k = 1, 0
        while filled < m:  # x[i] = XOR of the directions of i's set bits, by doubling
            step = min(filled, m - filled)
            x[filled : filled + step] = x[:step] ^ v[j, k]
            filled, k = filled + step, k + 1
        x = x[:m] ^ shifts[j]
        out.append((x.astype(np.float64) + jitter_g[j].random(m)) / float(1 << nb))
    return out


def _draw(
    keys: pl.DataFrame,
    n: int,
    seed: int,
    weight: str,
    replace: bool,
    filters: Filters,
    quota_keys: list[str],
    design: str = "independent",
    sorted_rows: np.ndarray | None = None,
    hierarchy: tuple[np.ndarray, int] | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Positions (into ``keys``) of the ``n`` draws in draw order, and each draw's stratum label.

    ``hierarchy``: the :func:`design_rank` first-differing-key array of ``keys["_rank"]`` and the number of
    keys (None: no keys, the systematic design runs along ``_rank`` or the row order)."""
    if keys.height == 0:
        raise UserError(f"zero person records after filters ({filters.describe()})")
    w = keys[weight].cast(pl.Float64).fill_null(0.0).to_numpy()
    if np.any(w < 0) or not np.all(np.isfinite(w)):
        raise UserError(f"weight column {weight} has negative or non-finite values")
    mask = _filter_mask(keys, filters) & (w > 0)
    if not mask.any():
        raise UserError(f"zero person records after filters ({filters.describe()})")
    systematic = replace and design == "systematic"
    rank = keys["_rank"].to_numpy() if systematic and "_rank" in keys.columns else None
    if systematic and rank is None:
        rank = np.arange(keys.height, dtype=np.int64)
    dlev, depth = hierarchy if hierarchy is not None else (np.zeros(1, dtype=np.int8), 0)

    spos = keys["_spos"].to_numpy() if systematic and "_spos" in keys.columns else None

    def by_rank(idx: np.ndarray) -> np.ndarray:
        """``idx`` in (stable) rank order."""
        if spos is not None:  # sort positions known: order idx by rank without sorting
            inv = np.full(int(spos.max()) + 1, -1, dtype=np.int64)
            inv[spos[idx]] = idx
            return inv[inv >= 0]
        return idx[np.argsort(rank[idx], kind="stable")]

    def pick(
        idx: np.ndarray, m: int, g: np.random.Generator, where: str, presorted: bool = False
    ) -> np.ndarray:
        if systematic:
            srt = idx if presorted else by_rank(idx)
            return srt[_draw_systematic(w[srt], rank[srt], dlev, depth, m, g)]
        return idx[_draw_weighted(w[idx], m, replace, g, where)]

    if not quota_keys:
        if systematic and sorted_rows is not None and len(sorted_rows) == keys.height:
            sel = sorted_rows[mask[sorted_rows]]  # eligible rows in sort order, without sorting
            return sel[_draw_systematic(w[sel], rank[sel], dlev, depth, n, rng(seed, STAGE, "all"))], None
        idx = np.flatnonzero(mask)
        return pick(idx, n, rng(seed, STAGE, "all"), "all"), None

    label_s = keys.select(
        pl.concat_str([pl.col(f"_q_{k}").cast(pl.String).fill_null("N/A") for k in quota_keys], separator="|")
    ).to_series()
    idx_all = np.flatnonzero(mask)
    if systematic:  # rank order once; the stable split by stratum below keeps it inside every stratum
        idx_all = by_rank(idx_all)
    labels = label_s.gather(idx_all)
    strata = labels.unique().sort().to_list()
    codes = labels.cast(pl.Enum(strata)).to_physical().to_numpy()  # index into sorted strata
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(strata) + 1))
    members = (idx_all[order[bounds[j] : bounds[j + 1]]] for j in range(len(strata)))
    k = len(strata)
    counts = np.full(k, n // k)
    if n % k:
        counts[rng(seed, STAGE, "quota-remainder").choice(k, n % k, replace=False)] += 1
    pos_parts, lab_parts = [], []
    for label, m, idx in zip(strata, counts, members):
        if m == 0:
            continue
        pos_parts.append(pick(idx, int(m), rng(seed, STAGE, "stratum", label), label, presorted=systematic))
        lab_parts.append(np.full(m, label, dtype=object))
    pos = np.concatenate(pos_parts)
    labs = np.concatenate(lab_parts)
    order = rng(seed, STAGE, "quota-order").permutation(len(pos))
    return pos[order], labs[order].astype(str)


def _draw_systematic(
    w: np.ndarray, rank: np.ndarray, dlev: np.ndarray, depth: int, m: int, g: np.random.Generator
) -> np.ndarray:
    """``m`` indices into ``w`` (records sorted by ``rank``; all ``w > 0``) by the balanced PPS design.

    ``dlev[r]``: first key in which rank cell ``r`` differs from cell ``r - 1``; ``depth``: number of keys.
    Point ``i`` of a randomised Sobol' sequence (``depth + 1`` coordinates) walks down the key hierarchy:
    coordinate ``k`` picks the level-``k`` sub-cell at that fraction of the current cell's weight, the
    last one the record inside the final cell (runs of equal ``rank``). Each point is uniform, so every
    record is hit ``m * w / W`` times on average (see the module docstring).
    """
    pts = sobol_points(m, depth + 1, g)
    n_rec = len(w)
    cum = np.cumsum(w)
    lo, hi = np.zeros(m), np.full(m, cum[-1])
    if depth:
        # boundary level of each record vs the previous eligible one: the smallest dlev over the cells
        # between their ranks (keys above it agree), depth when both are in the same cell, -1 for the first
        starts = np.flatnonzero(np.r_[True, rank[1:] != rank[:-1]])
        level = np.full(n_rec, depth, dtype=np.int16)
        level[0] = -1
        if len(starts) > 1:
            u = rank[starts]
            level[starts[1:]] = np.minimum.reduceat(dlev[: int(u[-1]) + 1], u[:-1] + 1)
        for k in range(depth):
            first = np.flatnonzero(level <= k)
            ends = cum[np.r_[first[1:], n_rec] - 1]
            target = np.minimum(lo + pts[k] * (hi - lo), np.nextafter(hi, 0.0))
            cell = _sorted_search(ends, target)
            hi = ends[cell]
            lo = np.where(first[cell] > 0, cum[first[cell] - 1], 0.0)
    target = np.minimum(lo + pts[depth] * (hi - lo), np.nextafter(hi, 0.0))
    return _sorted_search(cum, target)


def _sorted_search(edges: np.ndarray, needles: np.ndarray) -> np.ndarray:
    """``searchsorted(edges, needles, side="right")`` clipped to the last index; large needle sets are
    searched in sorted order (cache-friendly: about 3x faster for a million needles)."""
    if len(needles) < 4096:
        out = np.searchsorted(edges, needles, side="right")
    else:
        order = np.argsort(needles, kind="stable")
        out = np.empty(len(needles), dtype=np.int64)
        out[order] = np.searchsorted(edges, needles[order], side="right")
    return np.minimum(out, len(edges) - 1)


def _draw_weighted(w: np.ndarray, m: int, replace: bool, g: np.random.Generator, where: str) -> np.ndarray:
    """``m`` indices into ``w`` drawn with probability proportional to ``w`` (all ``w > 0``)."""
    if replace:
        cum = np.cumsum(w)
        u = g.random(m) * cum[-1]
        order = np.argsort(u, kind="stable")  # sorted needles: cache-friendly searchsorted
        idx = np.empty(m, dtype=np.int64)
        idx[order] = np.searchsorted(cum, u[order], side="right")
        return np.minimum(idx, len(w) - 1)
    if m > len(w):
        raise UserError(
            f"cannot draw {m} records without replacement from {len(w)} "
            f"(stratum {where}); lower n or allow replacement"
        )
    keys = np.log(g.random(len(w))) / w
    top = np.argpartition(-keys, m - 1)[:m] if m < len(w) else np.arange(len(w))
    return top[np.argsort(-keys[top], kind="stable")]
