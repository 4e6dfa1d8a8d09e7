"""Weighted hot-deck picks by cell, vectorised: used for census imputation and survey draws.

Each recipient has a cell key (a string built from its matching columns) and a uniform number ``u``;
it gets the donor of its cell found where ``u`` falls in the cell's cumulative weight, i.e. a donor drawn
with probability proportional to its weight. Recipients whose cell has no donor get -1, so callers can
back off to a coarser cell.

Cell indexes over a large donor frame (the imputation donors: millions of records) cost about a second to
build, so a frame marked with :func:`set_cache_token` (a string naming its content exactly, e.g. the key of
the donor Parquet cache) gets its integer-keyed cell indexes and column ranges cached on disk under
``<home>/cache/personas`` (``cells-*.npy``, memory-mapped on load; ``ranges-*.json``). A missing, corrupt
or mismatched entry is rebuilt; picks are identical with or without the cache.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl

from ..core import settings
from ..core.atomic import atomic_path, atomic_write_text
from ..core.hashing import content_hash

#: bump when the on-disk layout of cell indexes or ranges changes
CELL_CACHE_VERSION = 1
_MAGIC = 0x43454C4C53  # "CELLS"


def cell_key(cols: list[str], bits: dict[str, int] | None = None) -> pl.Expr:
    """A cell key from ``cols``: with ``bits`` (column -> bit width of its non-negative integer codes,
    summing to at most 62) an Int64 packing, exact and fast on millions of donors; else a string
    (nulls spelled ``_``)."""
    if not cols:  # one cell for everyone (a full-length column, not a scalar)
        return pl.int_range(pl.len(), dtype=pl.Int64) * 0
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


#: id(frame) -> (frame, token): frames whose content a token names (see set_cache_token)
_TOKENS: dict[int, tuple[pl.DataFrame, str]] = {}
_TOKENS_MAX = 32


def set_cache_token(frame: pl.DataFrame, token: str) -> None:
    """Mark ``frame`` as having exactly the content named by ``token`` (e.g. the content-hash key of the
    cache file it was read from), so hot-deck cell indexes built on it are cached on disk. The disk key
    also holds the frame's height and schema, so a token reused for other content misses the cache."""
    if len(_TOKENS) >= _TOKENS_MAX and id(frame) not in _TOKENS:
        _TOKENS.pop(next(iter(_TOKENS)))
    _TOKENS[id(frame)] = (frame, str(token))


def cache_token(frame: pl.DataFrame) -> str | None:
    """The token set on ``frame`` by :func:`set_cache_token`, or None."""
    hit = _TOKENS.get(id(frame))
    return hit[1] if hit is not None and hit[0] is frame else None


def derive_cache_token(parent: pl.DataFrame, child: pl.DataFrame, step: str) -> None:
    """Give ``child`` (computed deterministically from ``parent`` by ``step``) a token derived from the
    parent's, if the parent has one."""
    token = cache_token(parent)
    if token is not None and child is not parent:
        set_cache_token(child, f"{token}/{step}")


def _disk_key(donors: pl.DataFrame, token: str, *parts: object) -> str:
    schema = [[c, str(dt)] for c, dt in donors.schema.items()]
    return content_hash(
        {
            "v": CELL_CACHE_VERSION,
            "token": token,
            "height": donors.height,
            "schema": schema,
            "parts": [repr(p) for p in parts],
        },
        24,
    )


def _cache_root() -> Path:
    return settings.cache_dir() / "personas"


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
    dschema, rschema = donors.schema, recipients.schema  # once: a schema is built per access
    for c in cols:
        dt = dschema[c]
        if c not in rschema or rschema[c] != dt or not (dt.is_integer() or dt == pl.Boolean):
            return None
        dlo, dhi = _ranges(donors)[c]
        if dlo is not None and dlo < 0:
            return None
        bits[c] = int(max(dhi or 0, 0) + 2).bit_length()
    return bits if sum(bits.values()) <= 62 else None


def _ranges(donors: pl.DataFrame) -> dict[str, tuple[int | None, int | None]]:
    """(min, max) as Int64 of every integer or Boolean column of ``donors``: once per frame, and on disk
    for a frame with a cache token."""
    return _memo(donors, ("ranges",), lambda: _load_or_compute_ranges(donors))


def _compute_ranges(donors: pl.DataFrame) -> dict[str, tuple[int | None, int | None]]:
    cols = [c for c, dt in donors.schema.items() if dt.is_integer() or dt == pl.Boolean]
    if not cols:
        return {}
    row = donors.select(
        [
            e
            for c in cols
            for e in (
                pl.col(c).cast(pl.Int64).min().alias(f"lo:{c}"),
                pl.col(c).cast(pl.Int64).max().alias(f"hi:{c}"),
            )
        ]
    ).row(0)
    return {c: (row[2 * i], row[2 * i + 1]) for i, c in enumerate(cols)}


def _load_or_compute_ranges(donors: pl.DataFrame) -> dict[str, tuple[int | None, int | None]]:
    token = cache_token(donors)
    if token is None:
        return _compute_ranges(donors)
    path = _cache_root() / f"ranges-{_disk_key(donors, token, 'ranges')}.json"
    want = [c for c, dt in donors.schema.items() if dt.is_integer() or dt == pl.Boolean]
    try:
        got = json.loads(path.read_text(encoding="utf-8"))
        if (
            isinstance(got, dict)
            and sorted(got) == sorted(want)
            and all(
                isinstance(v, list) and len(v) == 2 and all(x is None or type(x) is int for x in v)
                for v in got.values()
            )
        ):
            return {c: (got[c][0], got[c][1]) for c in want}
    except (OSError, ValueError):
        pass  # missing or unreadable: recompute and overwrite
    out = _compute_ranges(donors)
    try:
        atomic_write_text(path, json.dumps({c: list(v) for c, v in out.items()}, sort_keys=True))
    except OSError:
        pass  # a read-only cache only costs speed
    return out


def _recipient_keys(recipients: pl.DataFrame, cols: list[str], bits: dict[str, int] | None) -> pl.Series:
    """Recipients' cell keys; with a packing, null where a value lies outside the donors' range."""
    key = cell_key(cols, bits)
    if bits:
        oob = pl.any_horizontal(
            [(pl.col(c).cast(pl.Int64) < 0) | (pl.col(c).cast(pl.Int64) + 2 >= (1 << bits[c])) for c in cols]
        )
        key = pl.when(oob).then(None).otherwise(key)
    return recipients.select(key.alias("k"))["k"]


class _CellIndex:
    """Donors of one cell definition sorted by (cell key, row) with cumulative weights and cell bounds.

    ``cum``/``keys``/``rows``: the donors with positive weight in (key, row) order; ``cell_keys`` (sorted),
    ``cell_start``, ``cell_total``: each cell's cumulative weight before it and its total weight. With
    Int64 keys every part is a numpy array (and can live on disk); other keys keep Polars objects.
    """

    def __init__(
        self,
        cum: np.ndarray,
        keys: np.ndarray | pl.Series,
        rows: np.ndarray,
        cells: pl.DataFrame | tuple[np.ndarray, np.ndarray, np.ndarray],
    ):
        self.cum = cum
        self.keys = keys
        self.rows = rows
        self.cells = cells

    @property
    def int_keys(self) -> bool:
        return isinstance(self.keys, np.ndarray)

    @classmethod
    def build(cls, donor_keys: pl.Series, donor_weights: np.ndarray) -> _CellIndex:
        """The index of ``donor_keys`` (one per donor row) weighted by ``donor_weights``."""
        donors = pl.DataFrame(
            {
                "key": donor_keys,
                "w": np.asarray(donor_weights, dtype=np.float64),
                "row": np.arange(len(donor_keys)),
            }
        ).filter(pl.col("w") > 0)
        donors = donors.sort("key", maintain_order=True)  # stable: rows stay ascending inside a cell
        cum = donors["w"].cum_sum().to_numpy()
        rows = donors["row"].to_numpy()
        cells = (
            donors.with_columns(cum=pl.Series(cum))
            .group_by("key")
            .agg(start=(pl.col("cum") - pl.col("w")).min(), total=pl.col("w").sum(), count=pl.len())
        )
        if donors.schema["key"] == pl.Int64 and donors["key"].null_count() == 0:
            cells = cells.sort("key")
            return cls(
                cum,
                donors["key"].to_numpy(),
                rows,
                (cells["key"].to_numpy(), cells["start"].to_numpy(), cells["total"].to_numpy()),
            )
        return cls(cum, donors["key"], rows, cells)

    # ---- disk form (Int64 keys only): one int64 .npy, memory-mapped on load --------------------------
    def save(self, path: Path) -> None:
        """Write the index to ``path`` atomically (Int64 keys only)."""
        ck, cs, ct = self.cells  # type: ignore[misc]
        n, m = len(self.cum), len(ck)
        flat = np.concatenate(
            [
                np.array([_MAGIC, CELL_CACHE_VERSION, n, m], dtype=np.int64),
                np.ascontiguousarray(self.cum, dtype=np.float64).view(np.int64),
                np.asarray(self.keys, dtype=np.int64),
                np.asarray(self.rows, dtype=np.int64),
                np.asarray(ck, dtype=np.int64),
                np.ascontiguousarray(cs, dtype=np.float64).view(np.int64),
                np.ascontiguousarray(ct, dtype=np.float64).view(np.int64),
            ]
        )
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.save(fh, flat, allow_pickle=False)

    @classmethod
    def load(cls, path: Path, n_donors: int) -> _CellIndex | None:
        """The index saved at ``path``, or None when it is missing, truncated or inconsistent."""
        try:
            flat = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError, EOFError):
            return None
        if flat.dtype != np.int64 or flat.ndim != 1 or len(flat) < 4:
            return None
        magic, version, n, m = (int(x) for x in flat[:4])
        if (
            magic != _MAGIC
            or version != CELL_CACHE_VERSION
            or not (0 <= m <= n <= n_donors)
            or len(flat) != 4 + 3 * n + 3 * m
        ):
            return None
        part = [flat[4 + i * n : 4 + (i + 1) * n] for i in range(3)]
        base = 4 + 3 * n
        cpart = [flat[base + i * m : base + (i + 1) * m] for i in range(3)]
        return cls(
            part[0].view(np.float64),
            part[1],
            part[2],
            (cpart[0], cpart[1].view(np.float64), cpart[2].view(np.float64)),
        )

    def pick(
        self, recipient_keys: pl.Series, u: np.ndarray, min_count: int = 1, counts: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """(donor row or -1, donors in the recipient's cell) per recipient; a cell with fewer than
        ``min_count`` donors (of positive weight) counts as empty (row -1, its count still reported).
        With ``counts=False`` and ``min_count`` 1 the counts are not looked up (all 0)."""
        out = np.full(len(recipient_keys), -1, dtype=np.int64)
        count = np.zeros(len(recipient_keys), dtype=np.int64)
        if len(self.cum) == 0:
            return out, count
        if self.int_keys:  # cells by binary search on the sorted cell keys (null keys match nothing)
            ck, cs, ct = self.cells  # type: ignore[misc]
            rk_s = recipient_keys.cast(pl.Int64)
            rk_all = rk_s.fill_null(0).to_numpy()
            ci = np.minimum(np.searchsorted(ck, rk_all), len(ck) - 1)
            found = rk_s.is_not_null().to_numpy() & (np.asarray(ck[ci]) == rk_all)
            start, total, rk = np.asarray(cs[ci[found]]), np.asarray(ct[ci[found]]), rk_all[found]
            if (counts or min_count > 1) and found.any():
                # donors per cell: the width of the cell's run in the sorted donor keys
                keys = self.keys
                count[found] = np.searchsorted(keys, rk, side="right") - np.searchsorted(
                    keys, rk, side="left"
                )
        else:
            rec = (
                pl.DataFrame(
                    {"key": recipient_keys.cast(self.keys.dtype), "i": np.arange(len(recipient_keys))}
                )
                .join(self.cells, on="key", how="left")
                .sort("i")
            )  # type: ignore[arg-type]
            start_all = rec["start"].to_numpy()
            found = ~np.isnan(start_all.astype(np.float64))
            start, total = start_all[found], rec["total"].to_numpy()[found]
            rk = rec["key"].to_numpy()[found]
            count[found] = rec["count"].to_numpy()[found]
        if min_count > 1:  # cells below the minimum are treated as empty
            big = count[found] >= min_count
            found_idx = np.flatnonzero(found)
            found[found_idx[~big]] = False
            start, total, rk = start[big], total[big], rk[big]
        if found.any():
            target = start + np.asarray(u, dtype=np.float64)[found] * total
            pos = np.clip(np.searchsorted(self.cum, target, side="right"), 0, len(self.cum) - 1)
            # float round-off at a cell's upper edge: step back into the cell
            got = np.asarray(self.keys[pos]) if self.int_keys else self.keys.gather(pos).to_numpy()
            bad = got != rk
            pos[bad] = np.searchsorted(self.cum, target[bad], side="left")
            out[found] = np.asarray(self.rows[pos])
        return out, count


def _cell_index(
    donors: pl.DataFrame, cols: list[str], bits: dict[str, int] | None, weights: np.ndarray, weight_col: str
) -> _CellIndex:
    """The cell index of ``donors`` on ``cols``: loaded from disk when the frame has a cache token and
    the entry is sound, else built (and saved, for Int64 keys)."""

    def build() -> _CellIndex:
        return _CellIndex.build(donors.select(cell_key(cols, bits).alias("k"))["k"], weights)

    token = cache_token(donors)
    if token is None:
        return build()
    bits_key = tuple(sorted(bits.items())) if bits is not None else None
    path = _cache_root() / f"cells-{_disk_key(donors, token, weight_col, tuple(cols), bits_key)}.npy"
    if path.exists():
        index = _CellIndex.load(path, donors.height)
        if index is not None:
            return index
    index = build()
    if index.int_keys:
        try:
            index.save(path)
        except OSError:
            return index  # a read-only cache only costs speed
        # the built arrays give way to the memory-mapped file (the same values, what a later run reads)
        saved = _CellIndex.load(path, donors.height)
        if saved is not None:
            return saved
    return index


def pick_by_cell(
    recipient_keys: pl.Series, u: np.ndarray, donor_keys: pl.Series, donor_weights: np.ndarray
) -> np.ndarray:
    """Donor row index (into the donor arrays) for each recipient, or -1 where its cell has no donor."""
    donors = pl.DataFrame(
        {
            "key": donor_keys,
            "w": np.asarray(donor_weights, dtype=np.float64),
            "row": np.arange(len(donor_keys)),
        }
    )
    # only the cells some recipient needs
    donors = donors.filter(pl.col("key").is_in(recipient_keys.unique().implode()) & (pl.col("w") > 0))
    if donors.height == 0:
        return np.full(len(recipient_keys), -1, dtype=np.int64)
    donors = donors.sort(["key", "row"])
    cum = donors["w"].cum_sum().to_numpy()
    donors = donors.with_columns(cum=pl.Series(cum))
    cells = donors.group_by("key").agg(start=(pl.col("cum") - pl.col("w")).min(), total=pl.col("w").sum())
    rec = (
        pl.DataFrame({"key": recipient_keys, "i": np.arange(len(recipient_keys))})
        .join(cells, on="key", how="left")
        .sort("i")
    )
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


def pick_with_backoff(
    recipients: pl.DataFrame,
    donors: pl.DataFrame,
    levels: list[list[str]],
    u: np.ndarray,
    weight_col: str,
    min_count: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Try each cell definition in ``levels`` (finest first); returns (donor row, level used).

    A cell with fewer than ``min_count`` donors (of positive weight) is skipped like an empty one, except
    at the last level. The last level may be ``[]`` (every donor in one cell). Recipients with no donor
    at any level get row -1 and level -1.
    """
    rows, used, _ = _backoff(recipients, donors, levels, u, weight_col, min_count, counts=False)
    return rows, used


def pick_with_backoff_counts(
    recipients: pl.DataFrame,
    donors: pl.DataFrame,
    levels: list[list[str]],
    u: np.ndarray,
    weight_col: str,
    min_count: int = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`pick_with_backoff` plus, per recipient, the number of donors in the cell it was drawn from."""
    return _backoff(recipients, donors, levels, u, weight_col, min_count, counts=True)


def _backoff(
    recipients: pl.DataFrame,
    donors: pl.DataFrame,
    levels: list[list[str]],
    u: np.ndarray,
    weight_col: str,
    min_count: int,
    counts: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The back-off loop; with ``counts=False`` (and ``min_count`` 1) the cell counts are all 0."""
    n = recipients.height
    rows = np.full(n, -1, dtype=np.int64)
    used = np.full(n, -1, dtype=np.int64)
    cell_donors = np.zeros(n, dtype=np.int64)
    for level, cols in enumerate(levels):
        todo = np.flatnonzero(rows < 0)
        if len(todo) == 0:
            break
        bits = _packing(recipients, donors, cols)
        # keys are row-wise: computed from the key columns of every row, then gathered (cheaper than
        # gathering every column of the recipients first)
        keys = _recipient_keys(recipients.select(cols) if cols else recipients, cols, bits)
        rkeys = keys if len(todo) == n else keys.gather(todo)
        bits_key = tuple(sorted(bits.items())) if bits is not None else None
        index = _memo(
            donors,
            ("cells", weight_col, tuple(cols), bits_key),
            lambda cols=cols, bits=bits: _cell_index(
                donors, cols, bits, donors[weight_col].to_numpy(), weight_col
            ),
        )
        got, count = index.pick(rkeys, u[todo], min_count if level < len(levels) - 1 else 1, counts)
        ok = got >= 0
        rows[todo[ok]] = got[ok]
        used[todo[ok]] = level
        cell_donors[todo[ok]] = count[ok]
    return rows, used, cell_donors
