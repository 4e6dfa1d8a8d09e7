"""Weighted sampling of whole person records (probability proportional to a weight), seeded.

With replacement: cumulative weights + ``searchsorted`` on seeded uniforms. Without replacement:
Efraimidis–Spirakis keys ``log(u) / w``, the ``n`` largest in key order (a valid sequential weighted draw).
Either way the first ``k`` draws of a run with ``n > k`` equal the draws of a run with ``n = k``.
Quotas split ``n`` equally over strata (the ``n mod k`` extra draws go to seeded-randomly chosen strata)
and draw inside each stratum with its weights renormalised; the final order is shuffled (seeded).

Only the weight/filter/quota columns are read for the whole source; the full records are then fetched
for the drawn rows only, file by file.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import polars as pl
from pydantic import BaseModel, model_validator

from ..errors import UserError
from ..seeds import rng
from .columns import canonical_name
from .source import CensusSource
from .states import STATES, parse_states

STAGE = "census.sample"
FETCH_BATCH = 8  # files decoded at once when fetching drawn records

#: age bands (inclusive lower, inclusive upper or None, label) used by the ``age_band`` quota key
AGE_BANDS: list[tuple[int, int | None, str]] = [
    (0, 17, "0-17"), (18, 24, "18-24"), (25, 34, "25-34"), (35, 44, "35-44"),
    (45, 54, "45-54"), (55, 64, "55-64"), (65, None, "65+"),
]


def age_band_expr(col: str = "AGEP") -> pl.Expr:
    """Polars expression: the :data:`AGE_BANDS` label of an age column."""
    expr = pl.when(pl.col(col).is_null()).then(None)
    for lo, hi, label in AGE_BANDS:
        cond = pl.col(col) >= lo if hi is None else pl.col(col).is_between(lo, hi)
        expr = expr.when(cond).then(pl.lit(label))
    return expr.otherwise(None).alias("age_band")


#: derived quota keys: name -> (columns needed, expression)
DERIVED_KEYS: dict[str, tuple[list[str], pl.Expr]] = {"age_band": (["AGEP"], age_band_expr())}


class Filters(BaseModel):
    """Which records may be drawn. States accept FIPS codes or postal abbreviations."""

    adults_only: bool = False
    min_age: int | None = None
    max_age: int | None = None
    states: list[str] | None = None

    @model_validator(mode="after")
    def _check(self) -> "Filters":
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


def sample_persons(source: CensusSource | pl.LazyFrame | pl.DataFrame, n: int, seed: int, *,
                   weight: str = "PWGTP", replace: bool = True, filters: Filters | None = None,
                   quota_by: str | Sequence[str] | None = None, columns: list[str] | None = None,
                   year: int | None = None, weights: np.ndarray | None = None) -> pl.DataFrame:
    """Draw ``n`` whole person records with probability proportional to ``weight``.

    ``source``: a :class:`CensusSource` (fast path) or a frame of person records (e.g. with raked
    weights). ``quota_by``: a column (``"STATE"``, ``"SEX"``) or derived key (``"age_band"``), or a list
    of them: equal counts per stratum. ``columns``: record columns to return (default all).
    ``weights``: per-record weights aligned with ``source.persons()`` rows (e.g. ``rake_source(...)
    .weights``), used instead of the ``weight`` column (CensusSource only).
    Returns the records in draw order plus ``_draw`` (0..n-1), ``_year``, ``_state`` (FIPS),
    ``_weight`` (the record's weight) and, with quotas, ``_stratum``.
    Raises ``UserError`` for n <= 0, zero records after filters, n above the population without
    replacement, unknown states or missing columns.
    """
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n <= 0:
        raise UserError(f"n must be a positive integer, got {n!r}")
    filters = filters or Filters()
    quota_keys = [quota_by] if isinstance(quota_by, str) else list(quota_by or [])
    if isinstance(source, CensusSource):
        return _sample_source(source, int(n), seed, weight, replace, filters, quota_keys, columns, weights)
    if weights is not None:
        raise UserError("weights= is for a CensusSource; put the weights in a column of the frame instead")
    lf = source.lazy() if isinstance(source, pl.DataFrame) else source
    return _sample_frame(lf, int(n), seed, weight, replace, filters, quota_keys, columns, year)


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


def _sample_source(src: CensusSource, n: int, seed: int, weight: str, replace: bool, filters: Filters,
                   quota_keys: list[str], columns: list[str] | None,
                   weights: np.ndarray | None) -> pl.DataFrame:
    if filters.states:
        missing = [s for s in filters.states if s not in src.states]
        if missing:
            raise UserError(f"state {', '.join(STATES[s][0] for s in missing)} not in source {src.name}")
    cols, qexprs = _needed(weight, filters, quota_keys)
    if weights is not None:
        cols = [c for c in cols if c != weight]
    frames = src.file_frames(cols)
    state_q = ["_q_STATE"] if "STATE" in quota_keys else []
    lfs = [lf.with_columns(*qexprs, *[pl.lit(info.state, dtype=pl.String).alias(q) for q in state_q],
                           pl.lit(i, dtype=pl.Int32).alias("_file"))
           for i, (info, lf) in enumerate(frames)]
    keys = pl.concat(pl.collect_all(lfs), how="vertical")
    state_of_file = np.array([info.state for info, _ in frames])
    if weights is not None:
        weights = np.asarray(weights, dtype=float)
        if weights.shape != (keys.height,):
            raise UserError(f"weights has {weights.shape[0] if weights.ndim else 0} entries, but source "
                            f"{src.name} has {keys.height} person records")
        keys = keys.with_columns(pl.Series(weight, weights))
    if filters.states:
        keys = keys.filter(pl.col("_file").is_in([i for i, st in enumerate(state_of_file)
                                                   if st in filters.states]))
    pos, strata = _draw(keys, n, seed, weight, replace, filters, quota_keys)

    files = keys["_file"].to_numpy()[pos]
    rows = keys["_row"].to_numpy()[pos]
    wanted = list(dict.fromkeys(canonical_name(c) for c in columns)) if columns else src.available_columns()
    by_file = {int(f): rows[files == f] for f in np.unique(files)}
    fetched = src.file_frames(wanted, rows=by_file)
    # fetch each file's distinct drawn rows once (one file at a time: bounded memory), then put every
    # draw in place with one gather: position = file offset + rank of its row among the file's rows
    uniq_parts, offsets, uniq_rows, total = [], {}, {}, 0
    file_ids = sorted(by_file)
    for start in range(0, len(file_ids), FETCH_BATCH):  # a few files at once: parallel, bounded memory
        batch = file_ids[start:start + FETCH_BATCH]
        dfs = pl.collect_all([lf for _info, lf in fetched[start:start + FETCH_BATCH]])
        for f, df in zip(batch, dfs):
            uniq_rows[f] = df["_row"].to_numpy()
            offsets[f] = total
            total += df.height
            uniq_parts.append(df.drop("_row"))
        del dfs
    unique = pl.concat(uniq_parts, how="vertical", rechunk=True)
    del uniq_parts
    at = np.empty(n, dtype=np.int64)
    for f in by_file:
        sel = files == f
        at[sel] = offsets[f] + np.searchsorted(uniq_rows[f], rows[sel])
    out = unique[at]
    del unique
    out = out.with_columns(pl.Series("_draw", np.arange(n)), pl.Series("_state", state_of_file[files]))
    w = keys[weight].to_numpy()[pos].astype(float)
    extra = [pl.lit(src.year, dtype=pl.Int32).alias("_year"), pl.Series("_weight", w)]
    if strata is not None:
        extra.append(pl.Series("_stratum", strata))
    return _finish(out.with_columns(extra), wanted, strata is not None)


def _sample_frame(lf: pl.LazyFrame, n: int, seed: int, weight: str, replace: bool, filters: Filters,
                  quota_keys: list[str], columns: list[str] | None, year: int | None) -> pl.DataFrame:
    schema = lf.collect_schema()
    cols, qexprs = _needed(weight, filters, quota_keys)
    if filters.states or "STATE" in quota_keys:
        cols.append("STATE")
    missing = [c for c in cols if c not in schema]
    if missing:
        raise UserError(f"missing required column {', '.join(missing)} in the person records")
    if "STATE" in quota_keys:
        qexprs.append(pl.col("STATE").cast(pl.String).alias("_q_STATE"))
    keys = lf.with_row_index("_row").select(["_row"] + list(dict.fromkeys(cols)) + qexprs).collect()
    if filters.states:
        keys = keys.filter(pl.col("STATE").cast(pl.String).str.zfill(2).is_in(filters.states))
    pos, strata = _draw(keys, n, seed, weight, replace, filters, quota_keys)
    rows = keys["_row"].to_numpy()[pos]
    wanted = columns or list(schema)
    fetched = (lf.with_row_index("_row").filter(pl.col("_row").is_in(pl.Series(np.unique(rows)).implode()))
               .select(["_row"] + [c for c in wanted if c != "_row"]).collect())
    draws = pl.DataFrame({"_row": rows, "_draw": np.arange(n)}).with_columns(
        pl.col("_row").cast(fetched.schema["_row"]))
    out = draws.join(fetched, on="_row", how="left").sort("_draw")
    yr = pl.lit(year, dtype=pl.Int32) if year is not None else (
        pl.col("SERIALNO").str.slice(0, 4).cast(pl.Int32, strict=False) if "SERIALNO" in out.columns
        else pl.lit(None, dtype=pl.Int32))
    st = (pl.col("STATE").cast(pl.String).str.zfill(2) if "STATE" in out.columns
          else pl.lit(None, dtype=pl.String))
    extra = [yr.alias("_year"), st.alias("_state"),
             pl.Series("_weight", keys[weight].to_numpy()[pos].astype(float))]
    if strata is not None:
        extra.append(pl.Series("_stratum", strata))
    return _finish(out.with_columns(extra), wanted, strata is not None)


def _finish(out: pl.DataFrame, wanted: list[str], has_strata: bool) -> pl.DataFrame:
    tail = ["_draw", "_year", "_state", "_weight"] + (["_stratum"] if has_strata else [])
    return out.select([c for c in wanted if c not in tail] + tail).with_columns(
        pl.col("_draw").cast(pl.Int64))


# ---- the draw ---------------------------------------------------------------------------------------
def _draw(keys: pl.DataFrame, n: int, seed: int, weight: str, replace: bool, filters: Filters,
          quota_keys: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
    """Positions (into ``keys``) of the ``n`` draws in draw order, and each draw's stratum label."""
    if keys.height == 0:
        raise UserError(f"zero person records after filters ({filters.describe()})")
    w = keys[weight].cast(pl.Float64).fill_null(0.0).to_numpy()
    if np.any(w < 0) or not np.all(np.isfinite(w)):
        raise UserError(f"weight column {weight} has negative or non-finite values")
    mask = _filter_mask(keys, filters) & (w > 0)
    if not mask.any():
        raise UserError(f"zero person records after filters ({filters.describe()})")
    if not quota_keys:
        idx = np.flatnonzero(mask)
        return idx[_draw_weighted(w[idx], n, replace, rng(seed, STAGE, "all"), "all")], None

    label_s = keys.select(pl.concat_str([pl.col(f"_q_{k}").cast(pl.String).fill_null("N/A")
                                         for k in quota_keys], separator="|")).to_series()
    idx_all = np.flatnonzero(mask)
    labels = label_s.gather(idx_all)
    strata = labels.unique().sort().to_list()
    codes = labels.cast(pl.Enum(strata)).to_physical().to_numpy()  # index into sorted strata
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(strata) + 1))
    members = (idx_all[order[bounds[j]:bounds[j + 1]]] for j in range(len(strata)))
    k = len(strata)
    counts = np.full(k, n // k)
    if n % k:
        counts[rng(seed, STAGE, "quota-remainder").choice(k, n % k, replace=False)] += 1
    pos_parts, lab_parts = [], []
    for label, m, idx in zip(strata, counts, members):
        if m == 0:
            continue
        pos_parts.append(idx[_draw_weighted(w[idx], int(m), replace, rng(seed, STAGE, "stratum", label),
                                            label)])
        lab_parts.append(np.full(m, label, dtype=object))
    pos = np.concatenate(pos_parts)
    labs = np.concatenate(lab_parts)
    order = rng(seed, STAGE, "quota-order").permutation(len(pos))
    return pos[order], labs[order].astype(str)


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
        raise UserError(f"cannot draw {m} records without replacement from {len(w)} "
                        f"(stratum {where}); lower n or allow replacement")
    keys = np.log(g.random(len(w))) / w
    top = np.argpartition(-keys, m - 1)[:m] if m < len(w) else np.arange(len(w))
    return top[np.argsort(-keys[top], kind="stable")]
