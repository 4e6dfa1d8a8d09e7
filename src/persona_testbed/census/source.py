"""Census sources: ACS PUMS person (and housing) files of one year, read lazily with canonical columns.

A source is a directory of per-state files in any of the layouts the Census Bureau or our mirror uses:
official zips ``csv_pXX.zip`` (``psam_pNN.csv`` inside; ``XX`` = postal abbreviation), plain
``psam_pNN.csv``, or Parquet ``p_NN.parquet`` / ``psam_pNN.parquet`` (``NN`` = FIPS); housing files the
same with ``h``. CSV inputs are decoded once into a Parquet cache under ``settings.cache_dir()/census``
keyed by the sha256 of the input file and of the dictionary, so the second load never opens the zip.

Normalisation (what :meth:`CensusSource.persons` returns): column names are canonical (2024, see
``columns.RENAMES``); a dictionary variable of type ``C`` is a string zero-padded to the dictionary width
(``SCHL`` ``"01"``, ``OCCP`` ``"0010"``, ``STATE`` ``"06"``); type ``N`` is ``Int64`` (``AGEP``,
``PWGTP``, ``PINCP``); a blank (N/A) code is ``null`` — ``dictionary.label(var, None)`` gives its N/A
label. Columns a state's file lacks come back ``null`` (see :meth:`CensusSource.available_columns`).
"""

from __future__ import annotations

import ctypes
import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl
from pydantic import BaseModel

from ..core import settings
from ..core.atomic import atomic_path
from ..core.errors import UserError
from ..core.hashing import content_hash
from .checksums import file_checksums, recall, remember
from .columns import canonical_name, canonical_names
from .dictionary import PumsDictionary
from .locate import DICTIONARY_FALLBACK_YEARS, spec_directory, spec_year
from .states import STATES, parse_states, state_fips

CACHE_VERSION = "census-cache-v2"
EAGER_MAX_BYTES = 256 << 20  # CSVs up to this size are decoded in one eager pass (faster than streaming)
DEFAULT_SPEC = "acs2024"

_PATTERNS: list[tuple[re.Pattern[str], str, str]] = [
    # (file name pattern, format, how the state is written)
    (re.compile(r"^csv_([ph])([a-z]{2})\.zip$", re.I), "zip", "abbr"),
    (re.compile(r"^psam_([ph])(\d{2})\.csv$", re.I), "csv", "fips"),
    (re.compile(r"^psam_([ph])(\d{2})\.parquet$", re.I), "parquet", "fips"),
    (re.compile(r"^([ph])_(\d{2})\.parquet$", re.I), "parquet", "fips"),
]
_FORMAT_PREFERENCE = {"parquet": 0, "csv": 1, "zip": 2}
#: Columns every person file must have: the record's identity, its weight, and the age that sampling and
#: the persona mapping read unconditionally (STATE may be absent: it comes from the file name).
REQUIRED_PERSON_COLUMNS = ("SERIALNO", "SPORDER", "PWGTP", "AGEP")


class InputFile(BaseModel):
    """One input file of a source (for manifests: path + sha256)."""

    path: str
    kind: Literal["person", "housing"]
    state: str
    format: Literal["zip", "csv", "parquet"]
    sha256: str


@dataclass
class _File:
    info: InputFile
    source_path: Path
    readable: Path | None = None  # parquet to scan (input itself or its decoded cache)
    schema: dict[str, pl.DataType] = field(default_factory=dict)  # canonical name -> dtype in file
    renames: dict[str, str] = field(default_factory=dict)  # raw -> canonical


def discover(directory: Path) -> list[tuple[str, str, str, Path]]:
    """(kind, state FIPS, format, path) of every PUMS file in ``directory`` (one per kind + state)."""
    found: dict[tuple[str, str], tuple[str, Path]] = {}
    for p in sorted(directory.iterdir()):
        if not p.is_file():
            continue
        for pattern, fmt, _how in _PATTERNS:
            m = pattern.match(p.name)
            if not m:
                continue
            kind = "person" if m.group(1).lower() == "p" else "housing"
            try:
                state = state_fips(m.group(2))
            except UserError:
                break
            prev = found.get((kind, state))
            if prev is None or _FORMAT_PREFERENCE[fmt] < _FORMAT_PREFERENCE[prev[0]]:
                found[(kind, state)] = (fmt, p)
            break
    return [(k, s, fmt, p) for (k, s), (fmt, p) in sorted(found.items())]


def _require_columns(path: Path, kind: str, names: list[str]) -> None:
    """Raise ``UserError`` naming ``path`` and its missing columns when a file lacks required ones."""
    have = set(canonical_names(names).values())
    if "SERIALNO" not in have:
        raise UserError(f"{path}: no SERIALNO column (is this a PUMS file?)")
    missing = [c for c in REQUIRED_PERSON_COLUMNS if c not in have] if kind == "person" else []
    if missing:
        raise UserError(
            f"{path}: person file lacks required PUMS column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)}"
        )


def _csv_member(zf: zipfile.ZipFile, path: Path) -> str:
    members = [n for n in zf.namelist() if re.match(r"^psam_[ph]\d{2}\.csv$", Path(n).name, re.I)]
    if not members:
        members = [n for n in zf.namelist() if n.lower().endswith(".csv")]
    if not members:
        raise UserError(f"{path}: zip holds no psam_*.csv file")
    return members[0]


def _decode_to_parquet(src: _File, dictionary: PumsDictionary, dest: Path) -> None:
    """Decode a CSV (or zipped CSV) into a typed Parquet with canonical names, atomically."""
    path = src.source_path
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        csv_path = path
        if src.info.format == "zip":
            try:
                with zipfile.ZipFile(path) as zf:
                    member = _csv_member(zf, path)
                    csv_path = Path(tmp) / "input.csv"
                    with zf.open(member) as fin, open(csv_path, "wb") as fout:
                        shutil.copyfileobj(fin, fout, 1 << 20)
            except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError) as exc:
                raise UserError(f"{path}: corrupt or unreadable zip ({exc})") from None
        try:
            lf = pl.scan_csv(csv_path, infer_schema=False)
            names = lf.collect_schema().names()
        except pl.exceptions.PolarsError as exc:
            raise UserError(f"{path}: not a readable PUMS CSV ({str(exc).splitlines()[0]})") from None
        _require_columns(path, src.info.kind, names)  # before anything is written to the cache
        renames = canonical_names(names)
        int_cols = {
            raw
            for raw, canon in renames.items()
            if (v := dictionary.variable(canon)) is not None
            and (v.type == "N" or (v.numeric_codes and v.width))
        }

        def blank_to_null(raw: str) -> pl.Expr:
            text = pl.col(raw).str.strip_chars()
            return pl.when(text.str.strip_chars("b") == "").then(None).otherwise(text).alias(raw)

        def typed_columns(df: pl.DataFrame) -> list[pl.Series]:
            """Column by column: integers where the dictionary says so, else text (exact, eager)."""
            cols = []
            for raw, canon in renames.items():
                col = df[raw]
                if raw in int_cols:
                    try:
                        col = col.cast(pl.Int64)
                    except pl.exceptions.PolarsError:
                        as_int = col.cast(pl.Int64, strict=False)
                        bad = col.filter(as_int.is_null() & col.is_not_null()).unique().sort().head(3)
                        if dictionary.variable(canon).type == "N":  # type: ignore[union-attr]
                            raise UserError(
                                f"{path}: numeric column {raw} holds non-numbers {bad.to_list()}"
                            ) from None
                        # a code column with text codes stays text; the dictionary reports them
                cols.append(col.alias(canon))
            return cols

        def read_eager() -> pl.DataFrame:
            return pl.read_csv(csv_path, infer_schema=False).select([blank_to_null(raw) for raw in renames])

        with atomic_path(dest) as out:
            if csv_path.stat().st_size <= EAGER_MAX_BYTES:  # small state: one fast eager pass
                pl.DataFrame(typed_columns(read_eager())).write_parquet(out, compression="zstd")
                return
            exprs = [
                (blank_to_null(raw).cast(pl.Int64) if raw in int_cols else blank_to_null(raw)).alias(canon)
                for raw, canon in renames.items()
            ]
            try:  # large state: streaming, bounded memory
                lf.select(exprs).sink_parquet(out, compression="zstd")
            except pl.exceptions.PolarsError:  # some "numeric" column holds text: decide per column
                pl.DataFrame(typed_columns(read_eager())).write_parquet(out, compression="zstd")


def _normalise_expr(
    name: str, dtype: pl.DataType | None, dictionary: PumsDictionary, out_dtype: pl.DataType
) -> pl.Expr:
    """Expression turning a file column into its canonical form (see module docstring)."""
    if dtype is None:
        return pl.lit(None, dtype=out_dtype).alias(name)
    col = pl.col(name)
    var = dictionary.variable(name)
    if var is None:
        return col.cast(out_dtype).alias(name)
    if var.type == "N":
        if dtype == pl.String:
            col = pl.when(col.str.contains(r"^\s*b*\s*$")).then(None).otherwise(col.str.strip_chars())
        return col.cast(pl.Int64).alias(name)
    width = var.width
    if dtype.is_integer():
        text = col.cast(pl.String)
        return (text.str.zfill(width) if width else text).alias(name)
    text = col.cast(pl.String).str.strip_chars()
    out = pl.when(text.str.contains(r"^b*$")).then(None)
    if width:
        out = out.when(text.str.contains(r"^\d+$")).then(text.str.zfill(width))
    return out.otherwise(text).alias(name)


def return_free_heap() -> None:
    """Hand the C heap's free pages back to the system (glibc ``malloc_trim``; a no-op without it).

    Planning a million draws (and, on a first run, ranking the 3.4 M source records for the design
    cache, decoding the per-column caches) frees numpy and Arrow temporaries that glibc keeps in its
    arenas (arrays under its dynamic mmap threshold, up to 32 MB): ~40 MB on a warm run, ~500 MB on a
    first run, held to the end of it."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return
    trim(0)


_SERIAL_MEMO: dict[str, tuple[np.ndarray, np.ndarray] | None] = {}
_SERIAL_EXACT: dict[str, bool] = {}
_SERIAL_RE = r"^(\d{4})(HU|GQ)(\d{7})$"


def _encode_serials(serials: pl.Series) -> np.ndarray | None:
    """``YYYY(HU|GQ)NNNNNNN`` serial numbers as int64 (``(year * 2 + is_HU) * 10^7 + N``), or None when
    one does not fit the pattern."""
    s = serials.cast(pl.String).str.strip_chars()
    parts = s.str.extract_groups(_SERIAL_RE)
    year = parts.struct.field("1").cast(pl.Int64)
    num = parts.struct.field("3").cast(pl.Int64)
    if year.null_count() != s.null_count() or s.null_count():
        return None
    hu = (parts.struct.field("2") == "HU").cast(pl.Int64)
    return ((year * 2 + hu) * 10_000_000 + num).to_numpy()


def _decode_serials(codes: np.ndarray) -> pl.Series:
    """The ``YYYY(HU|GQ)NNNNNNN`` spelling of :func:`_encode_serials` codes."""
    c = pl.Series("c", np.asarray(codes, dtype=np.int64))
    return (
        pl.select(
            pl.concat_str(
                [
                    (pl.lit(c) // 20_000_000).cast(pl.String).str.zfill(4),
                    pl.when((pl.lit(c) // 10_000_000) % 2 == 1).then(pl.lit("HU")).otherwise(pl.lit("GQ")),
                    (pl.lit(c) % 10_000_000).cast(pl.String).str.zfill(7),
                ]
            )
        )
        .to_series()
        .alias("SERIALNO")
    )


_SERIAL_MAGIC = 0x53455249414C  # "SERIAL"


def _load_serial_index(
    path: Path, n_files: int
) -> tuple[tuple[np.ndarray, np.ndarray] | None, bool, bool] | None:
    """A serial index saved by :meth:`CensusSource.serial_index` (one int64 ``.npy``: magic, version, ok,
    exact, sorted, file count, record count, file offsets, codes; memory-mapped), as (index or None,
    exact, sorted); None when missing, truncated or inconsistent."""
    try:
        flat = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    if flat.dtype != np.int64 or flat.ndim != 1 or len(flat) < 7:
        return None
    magic, version, ok, exact, srt, nf, n = (int(x) for x in flat[:7])
    if magic != _SERIAL_MAGIC or version != 2 or nf != n_files:
        return None
    if not ok:
        return (None, False, False) if len(flat) == 7 else None
    if n < 0 or len(flat) != 7 + nf + n:
        return None
    return (flat[7 + nf :], np.asarray(flat[7 : 7 + nf])), bool(exact), bool(srt)


def _positions(codes: np.ndarray, want: np.ndarray) -> np.ndarray:
    """Ascending positions of ``codes`` equal to one of ``want`` (``np.flatnonzero(np.isin(codes, want))``),
    by a hash semi-join (one pass over ``codes``; faster than ``isin`` or a binary search per file)."""
    hit = (
        pl.DataFrame({"c": codes})
        .with_row_index("i")
        .join(pl.DataFrame({"c": np.unique(want)}), on="c", how="semi", maintain_order="left")["i"]
    )
    return hit.to_numpy().astype(np.int64)


COLUMN_CACHE_VERSION = 2
_COLUMN_MEMO: dict[str, object] = {}


def _column_to_arrow(col: pl.Series):  # type: ignore[no-untyped-def]
    """A compact Arrow form of one column: strings dictionary-encoded, integers in the narrowest type."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = col.to_arrow()
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if col.dtype == pl.String:
        enc = arr.cast(pa.large_string()).dictionary_encode()
        size = len(enc.dictionary)
        narrow = pa.int8() if size <= 127 else pa.int16() if size <= 32767 else None
        return enc.cast(pa.dictionary(narrow, pa.large_string())) if narrow is not None else enc
    if col.dtype.is_integer() and len(arr) and arr.null_count < len(arr):
        mm = pc.min_max(arr).as_py()
        for t, lo, hi in (
            (pa.int8(), -(1 << 7), (1 << 7) - 1),
            (pa.int16(), -(1 << 15), (1 << 15) - 1),
            (pa.int32(), -(1 << 31), (1 << 31) - 1),
        ):
            if lo <= mm["min"] and mm["max"] <= hi:
                return arr.cast(t)
    return arr


class CensusSource:
    """The person (and housing) files of one PUMS year. Build with :func:`open_source`."""

    def __init__(
        self,
        name: str,
        year: int,
        directory: Path,
        dictionary: PumsDictionary,
        person_files: list[_File],
        housing_files: list[_File],
    ):
        self.name = name
        self.year = year
        self.directory = directory
        self.dictionary = dictionary
        self._persons = person_files
        self._housing = housing_files
        # built once per source: lazy frames per (kind, columns), column lists per (state, kind)
        self._frames: dict[tuple, pl.LazyFrame] = {}
        self._columns: dict[tuple, list[str]] = {}

    def __repr__(self) -> str:
        return f"CensusSource({self.name!r}, year={self.year}, states={len(self.states)})"

    # ---- identity ------------------------------------------------------------------------------
    @property
    def states(self) -> list[str]:
        """FIPS codes of the states with a person file, sorted."""
        return [f.info.state for f in self._persons]

    @property
    def inputs(self) -> list[InputFile]:
        """Every input file (persons, housing) with its sha256, for run manifests."""
        return [f.info for f in self._persons + self._housing]

    @property
    def checksum(self) -> str:
        """sha256 over the input files' and the dictionary's checksums (identifies the data exactly);
        computed once per opened source (cache keys ask for it thousands of times)."""
        cached = self.__dict__.get("_checksum_value")
        if cached is None:
            path = self.dictionary.path
            dict_sha = file_checksums([path])[path] if path else ""
            cached = content_hash({"inputs": sorted(i.sha256 for i in self.inputs), "dictionary": dict_sha})
            self.__dict__["_checksum_value"] = cached
        return cached

    # ---- columns -------------------------------------------------------------------------------
    def available_columns(self, state: str | int | None = None, kind: str = "person") -> list[str]:
        """Canonical columns present in ``state``'s file (or in any file when ``state`` is None)."""
        memo = (state, kind)
        if memo in self._columns:
            return list(self._columns[memo])
        files = self._persons if kind == "person" else self._housing
        if state is not None:
            fips = state_fips(state)
            files = [f for f in files if f.info.state == fips]
            if not files:
                raise UserError(f"state {fips} ({STATES[fips][0]}) is not in source {self.name}")
        cols: dict[str, None] = {}
        for f in files:
            cols.update(dict.fromkeys(self._schema(f)))
        self._columns[memo] = list(cols)
        return list(cols)

    def row_count(self, state: str | int | None = None) -> int:
        """Number of person records (in ``state``, or in all states)."""
        files = (
            self._persons
            if state is None
            else [f for f in self._persons if f.info.state == state_fips(state)]
        )
        return sum(pl.scan_parquet(self._readable(f)).select(pl.len()).collect().item() for f in files)

    def is_cached(self, state: str | int | None = None) -> bool:
        """True when every CSV/zip input (of ``state``, or all) already has its decoded Parquet cached."""
        files = self._persons + self._housing
        if state is not None:
            files = [f for f in files if f.info.state == state_fips(state)]
        return all(f.info.format == "parquet" or self._cache_path(f).exists() for f in files)

    # ---- frames --------------------------------------------------------------------------------
    def persons(self, columns: list[str] | None = None) -> pl.LazyFrame:
        """Person records with the requested canonical ``columns`` (all when None), lazily.

        Columns a state lacks are null there; a column no file has raises ``UserError``.
        """
        return self._frame(self._persons, columns, "person")

    def housing(self, columns: list[str] | None = None) -> pl.LazyFrame | None:
        """Housing records (``HHT``, ``HHL``...) or ``None`` when the source has no housing files."""
        if not self._housing:
            return None
        return self._frame(self._housing, columns, "housing")

    def household_members(
        self, serialnos: list[str] | pl.Series, columns: list[str] | None = None
    ) -> pl.DataFrame:
        """All person records sharing one of ``serialnos`` (sorted by SERIALNO, SPORDER)."""
        cols = columns or self.available_columns()
        cols = ["SERIALNO", "SPORDER"] + [c for c in cols if c not in ("SERIALNO", "SPORDER")]
        return self.records_for_serials(serialnos, cols).sort(["SERIALNO", "SPORDER"])

    def records_for_serials(
        self, serialnos: list[str] | pl.Series, columns: list[str], kind: str = "person"
    ) -> pl.DataFrame:
        """Records (``kind`` person or housing) whose SERIALNO is one of ``serialnos``, in file order.

        Uses the serial index (:meth:`serial_index`) to read only the matching rows of each file.
        """
        wanted = (  # a Series is cast in place: no Python object per serial
            serialnos.cast(pl.String).rename("s")
            if isinstance(serialnos, pl.Series)
            else pl.Series("s", list(serialnos), dtype=pl.String)
        ).unique()
        index = self.serial_index(kind)
        files = self._persons if kind == "person" else self._housing
        if index is None:
            return (
                self._frame(files, columns, kind).filter(pl.col("SERIALNO").is_in(wanted.implode())).collect()
            )
        codes, offsets = index
        want = _encode_serials(wanted)
        if want is None:  # a serial outside the encodable pattern cannot be in an encodable source
            want = np.zeros(0, dtype=np.int64)
        hit = _positions(codes, want)
        dtypes = self._out_dtypes(files, columns, kind)
        if len(hit) == 0:
            return pl.DataFrame(schema=dtypes)
        fast = self._rows_from_column_cache(kind, dtypes, hit, codes)
        if fast is not None:
            return fast
        file_of = np.searchsorted(offsets, hit, side="right") - 1
        rows = {int(f): hit[file_of == f] - offsets[f] for f in np.unique(file_of)}
        frames = [
            self._file_frame(files[f], list(dtypes), dtypes, rows=r).drop("_row") for f, r in rows.items()
        ]
        return pl.concat(pl.collect_all(frames), how="vertical")

    def _rows_from_column_cache(
        self, kind: str, dtypes: dict[str, pl.DataType], hit: np.ndarray, codes: np.ndarray
    ) -> pl.DataFrame | None:
        """Rows ``hit`` (positions in the files concatenated, as :meth:`serial_index` orders them) of the
        columns ``dtypes``, gathered from memory-mapped per-column caches (see :meth:`_column_cache`);
        SERIALNO spelled from the serial index when that is exact. None when a cache cannot be used."""
        import pyarrow as pa

        exact = _SERIAL_EXACT.get(self._serial_key(kind), False)
        idx = pl.Series(np.asarray(hit, dtype=np.int64)).to_arrow()  # not pa.array(): that imports pandas
        out = []
        for c, dt in dtypes.items():
            if c == "SERIALNO" and exact and dt == pl.String:
                out.append(_decode_serials(codes[hit]))
                continue
            arr = self._column_cache(kind, c, dt, len(codes))
            if arr is None:
                return None
            got = arr.take(idx)
            if pa.types.is_dictionary(got.type):
                got = got.dictionary_decode()
            out.append(pl.Series(c, pl.from_arrow(got)).cast(dt))
        return pl.DataFrame(out)

    def _file_rows_from_column_cache(
        self, kind: str, dtypes: dict[str, pl.DataType], rows: dict[int, np.ndarray]
    ) -> list[tuple[InputFile, pl.LazyFrame]] | None:
        """:meth:`file_frames` with ``rows``, served from the per-column caches: the same frames (``_row``
        then the columns, distinct rows in file order) without decoding the files. None when the source
        has no serial index (its row offsets) or a row lies outside its file."""
        index = self.serial_index(kind)
        if index is None:
            return None
        codes, offsets = index
        files = self._persons if kind == "person" else self._housing
        ends = [*(int(o) for o in offsets[1:]), len(codes)]
        picked = [(i, np.unique(np.asarray(rows[i], dtype=np.int64))) for i in range(len(files)) if i in rows]
        if any(len(r) and (r[0] < 0 or r[-1] >= ends[i] - int(offsets[i])) for i, r in picked):
            return None
        pos = (
            np.concatenate([int(offsets[i]) + r for i, r in picked])
            if picked
            else np.zeros(0, dtype=np.int64)
        )
        frame = self._rows_from_column_cache(kind, dtypes, pos, codes)
        if frame is None:
            return None
        idx_dtype = pl.DataFrame({"x": [0]}).with_row_index("_row").schema["_row"]
        out, start = [], 0
        for i, r in picked:
            part = frame.slice(start, len(r)).with_columns(pl.Series("_row", r).cast(idx_dtype))
            out.append((files[i].info, part.select(["_row", *dtypes]).lazy()))
            start += len(r)
        return out

    def _column_cache(self, kind: str, column: str, dtype: pl.DataType, n_rows: int):  # type: ignore[no-untyped-def]
        """One normalised column of every ``kind`` file (concatenated, as :meth:`serial_index` orders the
        rows) as an Arrow array memory-mapped from ``<home>/cache/census/column-*.arrow`` (strings
        dictionary-encoded, integers narrowed): built on first use, rebuilt when missing or unreadable.
        None when the cache directory cannot be written."""
        import pyarrow as pa

        key = content_hash(
            {
                "v": COLUMN_CACHE_VERSION,
                "src": self.checksum,
                "kind": kind,
                "column": column,
                "dtype": str(dtype),
            },
            24,
        )
        if key in _COLUMN_MEMO:
            return _COLUMN_MEMO[key]
        path = settings.cache_dir() / "census" / f"column-{kind}-{column}-{key}.arrow"

        def mapped():  # type: ignore[no-untyped-def]
            try:
                table = pa.ipc.open_file(pa.memory_map(str(path), "r")).read_all()
                if table.num_rows == n_rows and table.column_names == [column]:
                    return (
                        table.column(0).combine_chunks()
                        if table.column(0).num_chunks != 1
                        else table.column(0).chunk(0)
                    )
            except (OSError, pa.ArrowException, ValueError):
                pass  # unreadable entry: rebuild and overwrite
            return None

        arr = mapped() if path.exists() else None
        if arr is None:
            files = self._persons if kind == "person" else self._housing
            # with _row, so a column a file lacks (a literal null) still spans the file's rows
            parts = pl.collect_all(
                [self._file_frame(f, [column], {column: dtype}, row_index=True) for f in files]
            )
            col = pl.concat(parts, how="vertical")[column]
            if len(col) != n_rows:
                return None
            built = _column_to_arrow(col)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                with atomic_path(path) as tmp:
                    table = pa.Table.from_arrays([built], names=[column])
                    with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
                        writer.write_table(table)
                # the built array gives way to the memory-mapped file (the same values, what a later run
                # reads): a first run then holds no more memory than a warm one
                arr = mapped()
            except OSError:
                pass  # a read-only cache only costs speed
            arr = built if arr is None else arr
            del parts, col, built
            return_free_heap()
        if len(_COLUMN_MEMO) >= 64:
            _COLUMN_MEMO.pop(next(iter(_COLUMN_MEMO)))
        _COLUMN_MEMO[key] = arr
        return arr

    def _serial_key(self, kind: str) -> str:
        return content_hash({"v": 4, "src": self.checksum, "kind": kind}, 24)

    def serial_index(self, kind: str = "person") -> tuple[np.ndarray, np.ndarray] | None:
        """Every record's SERIALNO as an integer (files concatenated) and each file's first position, or
        None when some SERIALNO does not fit the ``YYYY(HU|GQ)NNNNNNN`` pattern. Built once per source
        and cached under ``<home>/cache/census`` (keyed by the source checksum) and in memory."""
        files = self._persons if kind == "person" else self._housing
        key = self._serial_key(kind)
        if key in _SERIAL_MEMO:
            return _SERIAL_MEMO[key]
        path = settings.cache_dir() / "census" / f"serials-{kind}-{key}.npy"
        loaded = _load_serial_index(path, len(files))
        if loaded is not None:
            out, exact, _segs_sorted = loaded  # the file still records it; look-ups no longer need it
            _SERIAL_MEMO[key] = out
            _SERIAL_EXACT[key] = exact
            return out
        dtypes = self._out_dtypes(files, ["SERIALNO"], kind)
        parts = pl.collect_all([self._file_frame(f, ["SERIALNO"], dtypes) for f in files])
        encoded = [_encode_serials(df.to_series()) for df in parts]
        out = None
        exact = segs_sorted = False
        if all(e is not None for e in encoded):
            codes = np.concatenate(encoded) if encoded else np.zeros(0, dtype=np.int64)
            offsets = np.cumsum([0] + [len(e) for e in encoded[:-1]]).astype(np.int64)
            out = (codes, offsets)
            # exact: every SERIALNO is spelled as _decode_serials spells its code (no stray blanks)
            exact = dtypes["SERIALNO"] == pl.String and all(
                bool((df.to_series() == df.to_series().str.strip_chars()).all()) for df in parts
            )
            segs_sorted = all(bool(np.all(e[1:] >= e[:-1])) for e in encoded)  # type: ignore[index]
        flat = np.array(
            [
                _SERIAL_MAGIC,
                2,
                out is not None,
                exact,
                segs_sorted,
                len(files),
                0 if out is None else len(out[0]),
            ],
            dtype=np.int64,
        )
        if out is not None:
            flat = np.concatenate([flat, out[1], out[0]])
        try:
            with atomic_path(path) as tmp, open(tmp, "wb") as fh:
                np.save(fh, flat, allow_pickle=False)
            # memory-mapped from the file just written, as a later run loads it (the same values)
            saved = _load_serial_index(path, len(files))
            if saved is not None and (saved[0] is None) == (out is None):
                out = saved[0]
        except OSError:
            pass  # a read-only cache only costs speed
        _SERIAL_MEMO[key] = out
        _SERIAL_EXACT[key] = exact
        return out

    def file_frames(
        self, columns: list[str], kind: str = "person", rows: dict[int, np.ndarray] | None = None
    ) -> list[tuple[InputFile, pl.LazyFrame]]:
        """One normalised lazy frame per input file, each with a ``_row`` column (row number in the file).

        ``rows`` (file position -> row numbers) keeps only those rows, filtered before decoding, and
        only those files: the fast path for fetching drawn records.
        """
        files = self._persons if kind == "person" else self._housing
        dtypes = self._out_dtypes(files, columns, kind)
        if rows is not None:
            fast = self._file_rows_from_column_cache(kind, dtypes, rows)
            if fast is not None:
                return fast
        out = []
        for i, f in enumerate(files):
            if rows is not None and i not in rows:
                continue
            out.append(
                (
                    f.info,
                    self._file_frame(
                        f, list(dtypes), dtypes, row_index=True, rows=None if rows is None else rows[i]
                    ),
                )
            )
        return out

    # ---- internals -----------------------------------------------------------------------------
    def _frame(self, files: list[_File], columns: list[str] | None, kind: str) -> pl.LazyFrame:
        memo = (kind, None if columns is None else tuple(columns))
        if memo in self._frames:
            return self._frames[memo]
        if columns is None:
            columns = self.available_columns(kind=kind)
        dtypes = self._out_dtypes(files, columns, kind)
        frames = [self._file_frame(f, list(dtypes), dtypes) for f in files]
        out = pl.concat(frames, how="vertical") if frames else pl.LazyFrame(schema=dtypes)
        self._frames[memo] = out
        return out

    def _out_dtypes(self, files: list[_File], columns: list[str], kind: str) -> dict[str, pl.DataType]:
        out: dict[str, pl.DataType] = {}
        for raw in columns:
            c = canonical_name(raw)
            var = self.dictionary.variable(c)
            present = [self._schema(f)[c] for f in files if c in self._schema(f)]
            if not present and not (c == "STATE" and files):
                raise UserError(
                    f"column {raw} is not in any {kind} file of source {self.name} "
                    f"(e.g. {files[0].source_path.name if files else 'no files'})"
                )
            if var is not None:
                out[c] = pl.Int64 if var.type == "N" else pl.String
            elif present and all(d.is_integer() for d in present):
                out[c] = pl.Int64
            else:
                out[c] = pl.String
        return out

    def _file_frame(
        self,
        f: _File,
        columns: list[str],
        dtypes: dict[str, pl.DataType],
        rows: np.ndarray | None = None,
        row_index: bool | None = None,
    ) -> pl.LazyFrame:
        schema = self._schema(f)
        lf = pl.scan_parquet(self._readable(f))
        exprs = []
        if rows is not None or row_index:
            lf = lf.with_row_index("_row")
            exprs.append(pl.col("_row"))
        if rows is not None:
            lf = lf.filter(pl.col("_row").is_in(pl.Series(np.unique(rows).astype(np.uint32)).implode()))
        for c in dtypes:
            if c not in schema and c == "STATE":
                exprs.append(pl.lit(f.info.state, dtype=pl.String).alias("STATE"))
            elif c not in schema:
                exprs.append(pl.lit(None, dtype=dtypes[c]).alias(c))
            else:
                exprs.append(_normalise_expr(c, schema[c], self.dictionary, dtypes[c]))
        renames = {raw: canon for raw, canon in f.renames.items() if raw != canon}
        return (lf.rename(renames) if renames else lf).select(exprs)

    def _schema(self, f: _File) -> dict[str, pl.DataType]:
        if not f.schema:
            try:
                raw = pl.scan_parquet(self._readable(f)).collect_schema()
            except pl.exceptions.PolarsError as exc:
                raise UserError(
                    f"{f.source_path}: corrupt or unreadable Parquet ({str(exc).splitlines()[0]})"
                ) from None
            # Parquet inputs are checked here (and caches written before the check existed)
            _require_columns(f.source_path, f.info.kind, list(raw.names()))
            f.renames = canonical_names(list(raw.names()))
            f.schema = {f.renames[n]: dt for n, dt in raw.items()}
        return f.schema

    def _cache_path(self, f: _File) -> Path:
        dict_sha = (
            file_checksums([self.dictionary.path])[self.dictionary.path]
            if self.dictionary.path
            else str(self.dictionary.year)
        )
        key = content_hash({"v": CACHE_VERSION, "input": f.info.sha256, "dictionary": dict_sha}, 24)
        return settings.cache_dir() / "census" / f"{Path(f.info.path).name.split('.')[0]}-{key}.parquet"

    def _readable(self, f: _File) -> Path:
        if f.readable is not None:
            return f.readable
        if f.info.format == "parquet":
            try:
                pl.scan_parquet(f.source_path).collect_schema()
            except pl.exceptions.PolarsError as exc:
                raise UserError(
                    f"{f.source_path}: corrupt or unreadable Parquet ({str(exc).splitlines()[0]})"
                ) from None
            f.readable = f.source_path
            return f.readable
        dest = self._cache_path(f)
        if not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            _decode_to_parquet(f, self.dictionary, dest)
        f.readable = dest
        return dest


def _first_serialno(f: _File) -> str | None:
    """First SERIALNO of a raw input (without decoding it; remembered, so a zip is opened once)."""
    known = recall(f.info.sha256, "first_serialno")
    if known is not None:
        return known
    serial = _read_first_serialno(f)
    if serial is not None:
        remember(f.info.sha256, "first_serialno", serial)
    return serial


def _read_first_serialno(f: _File) -> str | None:
    p = f.source_path
    try:
        if f.info.format == "parquet":
            return pl.scan_parquet(p).select(pl.first("SERIALNO")).collect().item()
        if f.info.format == "zip":
            with zipfile.ZipFile(p) as zf, zf.open(_csv_member(zf, p)) as fh:
                head = fh.read(1 << 16).decode("utf-8", "replace")
        else:
            head = p.open(encoding="utf-8", errors="replace").read(1 << 16)
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise UserError(f"{p}: corrupt or unreadable zip ({exc})") from None
    except pl.exceptions.PolarsError as exc:
        raise UserError(f"{p}: corrupt or unreadable Parquet ({str(exc).splitlines()[0]})") from None
    lines = head.splitlines()
    if len(lines) < 2:
        return None
    header = [h.strip().upper() for h in lines[0].split(",")]
    if "SERIALNO" not in header:
        raise UserError(f"{p}: no SERIALNO column (is this a PUMS file?)")
    return lines[1].split(",")[header.index("SERIALNO")].strip()


def open_source(
    spec: str | None = DEFAULT_SPEC,
    states: str | list[str] | None = None,
    data_dir: str | Path | None = None,
    path: str | Path | None = None,
    dictionary: str | int | Path | PumsDictionary | None = None,
) -> CensusSource:
    """Open a census source.

    ``spec``: ``acs2024`` (national 2024 extract, the default), ``acs2018`` (official zips) or any
    ``acs<year>`` in the data directory; or give ``path``, a directory of ``csv_pXX.zip`` /
    ``p_NN.parquet`` files (a spec that is an existing directory is taken as ``path``).
    ``states``: FIPS codes or abbreviations (``"CA,TX"``), default all present.
    ``dictionary``: path or year; by default the dictionary of the data's year (or the year before).
    Raises ``UserError`` for unknown states, missing files, a dictionary of another year, corrupt inputs.
    """
    if path is None and spec is not None and Path(spec).expanduser().is_dir():
        path = spec
    if path is not None:
        directory = Path(path).expanduser().resolve()
        if not directory.is_dir():
            raise UserError(f"census source directory not found: {directory}")
        name = str(directory)
        year_hint = None
    else:
        spec = spec or DEFAULT_SPEC
        year_hint = spec_year(spec)
        directory = spec_directory(spec, data_dir)
        name = spec.lower()

    entries = discover(directory)
    if not any(k == "person" for k, *_ in entries):
        raise UserError(f"{directory}: no PUMS person files (csv_pXX.zip, psam_pNN.csv, p_NN.parquet)")
    wanted = parse_states(states)
    if wanted is not None:
        have = {s for k, s, *_ in entries if k == "person"}
        missing = [s for s in wanted if s not in have]
        if missing:
            raise UserError(
                f"state {', '.join(f'{s} ({STATES[s][0]})' for s in missing)} not in source "
                f"{name} (has {', '.join(STATES[s][0] for s in sorted(have))})"
            )
        entries = [e for e in entries if e[1] in wanted]

    sums = file_checksums([p for *_, p in entries])
    files = {"person": [], "housing": []}  # type: dict[str, list[_File]]
    for kind, state, fmt, p in entries:
        info = InputFile(path=str(p), kind=kind, state=state, format=fmt, sha256=sums[p])
        files[kind].append(_File(info=info, source_path=p))

    year = year_hint
    serial = _first_serialno(files["person"][0])
    if serial and serial[:4].isdigit():
        data_year = int(serial[:4])
        if year is not None and data_year != year:
            raise UserError(f"{files['person'][0].source_path}: records are from {data_year}, not {year}")
        year = data_year
    if year is None:
        raise UserError(f"{directory}: cannot tell the data year (SERIALNO does not start with a year)")

    dic = _dictionary_for(year, dictionary, data_dir)
    return CensusSource(name, year, directory, dic, files["person"], files["housing"])


def _dictionary_for(year: int, dictionary, data_dir) -> PumsDictionary:  # type: ignore[no-untyped-def]

    if isinstance(dictionary, PumsDictionary):
        dic = dictionary
    elif dictionary is None:
        dic = PumsDictionary.load(year, data_dir)
    else:
        dic = PumsDictionary.load(dictionary, data_dir)
    if not (year - DICTIONARY_FALLBACK_YEARS <= dic.year <= year):
        raise UserError(f"dictionary {dic.path or ''} is for {dic.year}, but the data are from {year}")
    return dic
