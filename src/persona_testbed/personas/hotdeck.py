"""Weighted hot-deck picks by cell, vectorised: used for census imputation and survey draws.

Each recipient has a cell key (a string built from its matching columns) and a uniform number ``u``;
it gets the donor of its cell found where ``u`` falls in the cell's cumulative weight, i.e. a donor drawn
with probability proportional to its weight. Recipients whose cell has no donor get -1, so callers can
back off to a coarser cell.
"""

from __future__ import annotations

import numpy as np
import polars as pl


def cell_key(cols: list[str], bits: dict[str, int] | None = None) -> pl.Expr:
    """A cell key from ``cols``: with ``bits`` (column -> bit width of its non-negative integer codes,
    summing to at most 62) an Int64 packing, exact and fast on millions of donors; else a string
    (nulls spelled ``_``)."""
    if not cols:  # one cell for everyone (a full-length column, not a scalar)
        return (pl.int_range(pl.len(), dtype=pl.Int64) * 0)
    if bits is not None:
        key = pl.lit(0, dtype=pl.Int64)
        for c in cols:
            key = key * (1 << bits[c]) + (pl.col(c).cast(pl.Int64).fill_null(-1) + 1)
        return key
    return pl.concat_str([pl.col(c).cast(pl.Utf8).fill_null("_") for c in cols], separator="|")


#: donor-side work reused across calls on the same (cached) donor frame: column ranges and cell indexes,
#: keyed by id(donors) and holding the frame itself so a recycled id is never mistaken for it
_DONOR_MEMO: dict[tuple, tuple[pl.DataFrame, object]] = {}
_MEMO_MAX = 64


def _memo(donors: pl.DataFrame, key: tuple, make):  # type: ignore[no-untyped-def]
    full = (id(donors), *key)
    hit = _DONOR_MEMO.get(full)
    if hit is not None and hit[0] is donors:
        return hit[1]
    value = make()
    if len(_DONOR_MEMO) >= _MEMO_MAX:
        _DONOR_MEMO.pop(next(iter(_DONOR_MEMO)))
    _DONOR_MEMO[full] = (donors, value)
    return value


def _packing(recipients: pl.DataFrame, donors: pl.DataFrame, cols: list[str]) -> dict[str, int] | None:
    """Bit widths for an exact integer packing of ``cols`` (from the donors' value range, so the donor
    index is built once per donor frame), or None (non-integer, negative or too wide). Recipient values
    outside the donors' range match no donor (see :func:`_recipient_keys`)."""
    bits = {}
    for c in cols:
        dt = donors.schema[c]
        if c not in recipients.columns or recipients.schema[c] != dt or not (dt.is_integer() or dt == pl.Boolean):
            return None
        dlo, dhi = _memo(donors, ("range", c), lambda c=c: (donors[c].cast(pl.Int64).min(),
                                                           donors[c].cast(pl.Int64).max()))
        if dlo is not None and dlo < 0:
            return None
        bits[c] = int(max(dhi or 0, 0) + 2).bit_length()
    return bits if sum(bits.values()) <= 62 else None


def _recipient_keys(recipients: pl.DataFrame, cols: list[str], bits: dict[str, int] | None) -> pl.Series:
    """Recipients' cell keys; with a packing, null where a value lies outside the donors' range."""
    key = cell_key(cols, bits)
    if bits:
        oob = pl.any_horizontal([(pl.col(c).cast(pl.Int64) < 0) | (pl.col(c).cast(pl.Int64) + 2 >= (1 << bits[c]))
                                 for c in cols])
        key = pl.when(oob).then(None).otherwise(key)
    return recipients.select(key.alias("k"))["k"]


class _CellIndex:
    """Donors of one cell definition sorted by (cell key, row) with cumulative weights and cell bounds."""

    def __init__(self, donor_keys: pl.Series, donor_weights: np.ndarray):
        donors = pl.DataFrame({"key": donor_keys, "w": np.asarray(donor_weights, dtype=np.float64),
                               "row": np.arange(len(donor_keys))}).filter(pl.col("w") > 0)
        donors = donors.sort("key", maintain_order=True)  # stable: rows stay ascending inside a cell
        self.cum = donors["w"].cum_sum().to_numpy()
        self.keys = donors["key"]
        self.rows = donors["row"].to_numpy()
        self.cells = (donors.with_columns(cum=pl.Series(self.cum))
                      .group_by("key").agg(start=(pl.col("cum") - pl.col("w")).min(), total=pl.col("w").sum()))

    def pick(self, recipient_keys: pl.Series, u: np.ndarray) -> np.ndarray:
        out = np.full(len(recipient_keys), -1, dtype=np.int64)
        if len(self.cum) == 0:
            return out
        rec = pl.DataFrame({"key": recipient_keys.cast(self.keys.dtype), "i": np.arange(len(recipient_keys))}).join(
            self.cells, on="key", how="left").sort("i")
        start = rec["start"].to_numpy()
        total = rec["total"].to_numpy()
        found = ~np.isnan(start.astype(np.float64))
        if found.any():
            target = start[found] + np.asarray(u, dtype=np.float64)[found] * total[found]
            pos = np.clip(np.searchsorted(self.cum, target, side="right"), 0, len(self.cum) - 1)
            # float round-off at a cell's upper edge: step back into the cell
            rk = rec["key"].to_numpy()[found]
            bad = self.keys.gather(pos).to_numpy() != rk
            pos[bad] = np.searchsorted(self.cum, target[bad], side="left")
            out[found] = self.rows[pos]
        return out


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
        bits = _packing(recipients, donors, cols)
        rkeys = _recipient_keys(recipients[todo], cols, bits)
        bits_key = tuple(sorted(bits.items())) if bits is not None else None
        index = _memo(donors, ("cells", weight_col, tuple(cols), bits_key),
                      lambda cols=cols, bits=bits: _CellIndex(donors.select(cell_key(cols, bits).alias("k"))["k"],
                                                              weights))
        got = index.pick(rkeys, u[todo])
        ok = got >= 0
        rows[todo[ok]] = got[ok]
        used[todo[ok]] = level
    return rows, used
