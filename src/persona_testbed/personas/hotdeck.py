"""Weighted hot-deck picks by cell, vectorised: used for census imputation and survey draws.

Each recipient has a cell key (a string built from its matching columns) and a uniform number ``u``;
it gets the donor of its cell found where ``u`` falls in the cell's cumulative weight, i.e. a donor drawn
with probability proportional to its weight. Recipients whose cell has no donor get -1, so callers can
back off to a coarser cell.
"""

from __future__ import annotations

import numpy as np
import polars as pl


def cell_key(cols: list[str], schema: dict[str, pl.DataType] | None = None) -> pl.Expr:
    """A cell key from ``cols``: an Int64 packing of small integer codes when every column is numeric
    or boolean (fast joins/sorts on millions of donors), else a string (nulls spelled ``_``)."""
    if not cols:
        return pl.lit(0, dtype=pl.Int64)
    if schema is not None and all(schema[c].is_integer() or schema[c] == pl.Boolean for c in cols):
        key = pl.lit(0, dtype=pl.Int64)
        for c in cols:
            key = key * 256 + (pl.col(c).cast(pl.Int64).fill_null(-1) + 1).clip(0, 255)
        return key
    return pl.concat_str([pl.col(c).cast(pl.Utf8).fill_null("_") for c in cols], separator="|")


def pick_by_cell(recipient_keys: pl.Series, u: np.ndarray, donor_keys: pl.Series,
                 donor_weights: np.ndarray) -> np.ndarray:
    """Donor row index (into the donor arrays) for each recipient, or -1 where its cell has no donor."""
    donors = pl.DataFrame({"key": donor_keys, "w": np.asarray(donor_weights, dtype=np.float64),
                           "row": np.arange(len(donor_keys))})
    # only the cells some recipient needs
    donors = donors.filter(pl.col("key").is_in(recipient_keys.unique().implode()) & (pl.col("w") > 0))
    if donors.height == 0:
        return np.full(len(recipient_keys), -1, dtype=np.int64)
    donors = donors.sort(["key", "row"])
    cum = donors["w"].cum_sum().to_numpy()
    donors = donors.with_columns(cum=pl.Series(cum))
    cells = donors.group_by("key").agg(start=(pl.col("cum") - pl.col("w")).min(), total=pl.col("w").sum())
    rec = pl.DataFrame({"key": recipient_keys, "i": np.arange(len(recipient_keys))}).join(
        cells, on="key", how="left").sort("i")
    start = rec["start"].to_numpy()
    total = rec["total"].to_numpy()
    found = ~np.isnan(start.astype(np.float64))
    out = np.full(len(recipient_keys), -1, dtype=np.int64)
    if found.any():
        target = start[found] + np.asarray(u, dtype=np.float64)[found] * total[found]
        pos = np.searchsorted(cum, target, side="right")
        pos = np.clip(pos, 0, len(cum) - 1)
        # float round-off at a cell's upper edge: step back into the cell
        rk = rec["key"].to_numpy()[found]
        bad = donors["key"].to_numpy()[pos] != rk
        pos[bad] = np.searchsorted(cum, target[bad], side="left")
        out[found] = donors["row"].to_numpy()[pos]
    return out


def pick_with_backoff(recipients: pl.DataFrame, donors: pl.DataFrame, levels: list[list[str]],
                      u: np.ndarray, weight_col: str) -> tuple[np.ndarray, np.ndarray]:
    """Try each cell definition in ``levels`` (finest first); returns (donor row, level used).

    The last level may be ``[]`` (every donor in one cell). Recipients with no donor at any level get
    row -1 and level -1.
    """
    n = recipients.height
    rows = np.full(n, -1, dtype=np.int64)
    used = np.full(n, -1, dtype=np.int64)
    weights = donors[weight_col].to_numpy()
    for level, cols in enumerate(levels):
        todo = np.flatnonzero(rows < 0)
        if len(todo) == 0:
            break
        schema = dict(donors.schema)
        if not all(c in recipients.columns and recipients.schema[c] == schema[c] for c in cols):
            schema = None  # mixed types: string keys
        rkeys = recipients[todo].select(cell_key(cols, schema).alias("k"))["k"]
        dkeys = donors.select(cell_key(cols, schema).alias("k"))["k"]
        got = pick_by_cell(rkeys, u[todo], dkeys, weights)
        ok = got >= 0
        rows[todo[ok]] = got[ok]
        used[todo[ok]] = level
    return rows, used
