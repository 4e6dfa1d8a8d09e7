"""Drawn census records -> the 33 PERSONA fields (vectorised), then -> ``Persona`` records.

``map_frame`` returns a flat frame (``v:<field>``, ``p:<field>``, ``d:<field>`` per field, the source
key, weight and tag columns) without building Python objects, so a million records map in seconds;
``frame_to_personas`` turns it into validated ``Persona`` records.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from ..census.source import open_source
from ..core import settings
from ..core.atomic import atomic_path
from ..core.errors import UserError
from ..core.hashing import content_hash
from .bigfive import (
    AGE_GROUPS,
    DOMAIN_NAMES,
    DOMAINS,
    LEVELS,
    Norms,
    check_reference,
    draw_bigfive,
    load_norms,
)
from .geo import STATES as STATE_DIVISIONS
from .hotdeck import set_cache_token
from .household import household_fields
from .impute import (
    IMPUTE_VARS,
    MATCH_VARS,
    MATCHED_ON,
    ORIGIN_VARS,
    impute_ancestry,
    impute_missing,
    match_columns,
)
from .mapping import CENSUS_VARS, UNAVAILABLE, DecodeReport, FieldColumn, map_census_fields
from .record import PERSONA_FIELDS, Persona, SourceKey
from .survey import MIN_CELL, GssPool, check_min_cell, draw_survey, load_pool
from .tags import TAG_KINDS, draw_tag_indices, vocabulary

PENDING_JOB = "pending: LLM enrichment"
#: census variables each field's value depends on (for provenance after imputation)
FIELD_VAR = dict(CENSUS_VARS, income="PINCP")
#: person columns read from a source when present
PERSON_COLUMNS: tuple[str, ...] = (
    "SERIALNO",
    "SPORDER",
    "STATE",
    "PWGTP",
    *MATCH_VARS,
    *IMPUTE_VARS,
    "ANC1P",
    "POBP",
    "PAOC",
    "RELSHIPP",
    "LANP",
)
MEMBER_COLUMNS: tuple[str, ...] = ("AGEP", "SEX", "RELSHIPP", "LANX", "LANP")
#: housing columns read when present: household language, type and size (NP, number of persons)
HOUSEHOLD_COLUMNS: tuple[str, ...] = ("HHL", "HHT", "NP")
_DONORS: dict[str, pl.DataFrame] = {}
#: FIPS code -> postal abbreviation (for messages)
STATE_ABBR = {fips: abbr for fips, (abbr, _) in STATE_DIVISIONS.items()}
_SOURCES: dict[tuple[str, str], Any] = {}


def _cached_source(spec: str, data_dir: Path, opener: Any) -> Any:
    """Open a donor source once per process (opening parses its dictionary and checks its files)."""
    key = (spec, str(data_dir))
    if key not in _SOURCES:
        _SOURCES[key] = opener()
    return _SOURCES[key]


@dataclass
class MapStats:
    """What happened while mapping: imputation / survey back-off levels, undecodable codes."""

    imputed_rows: int = 0
    imputed_vars: list[str] = field(default_factory=list)
    imputation_levels: dict[int, int] = field(default_factory=dict)
    ancestry: str = ""
    ancestry_levels: dict[int, int] = field(default_factory=dict)
    survey_source: str = ""
    survey_min_cell: int | None = None
    survey_levels: dict[int, int] = field(default_factory=dict)
    decode: DecodeReport = field(default_factory=DecodeReport)

    def merge(self, other: MapStats) -> None:
        self.imputed_rows += other.imputed_rows
        self.imputed_vars = sorted(set(self.imputed_vars) | set(other.imputed_vars))
        for mine, theirs in (
            (self.imputation_levels, other.imputation_levels),
            (self.ancestry_levels, other.ancestry_levels),
            (self.survey_levels, other.survey_levels),
        ):
            for k, v in theirs.items():
                mine[k] = mine.get(k, 0) + v
        self.ancestry = self.ancestry or other.ancestry
        self.survey_source = self.survey_source or other.survey_source
        self.survey_min_cell = self.survey_min_cell or other.survey_min_cell
        for var, codes in other.decode.undecodable.items():
            for c in codes:
                self.decode.add(var, c)

    def as_dict(self) -> dict[str, Any]:
        return {
            "imputation": {
                "rows": self.imputed_rows,
                "vars": self.imputed_vars,
                "backoff_levels": {str(k): v for k, v in sorted(self.imputation_levels.items())},
            },
            "ancestry": {
                "method": self.ancestry,
                "backoff_levels": {str(k): v for k, v in sorted(self.ancestry_levels.items())},
            },
            "survey": {
                "source": self.survey_source,
                "min_cell": self.survey_min_cell,
                "backoff_levels": {str(k): v for k, v in sorted(self.survey_levels.items())},
            },
            "undecodable_codes": self.decode.undecodable,
        }


class MappingContext:
    """Everything the mapping needs besides the drawn rows: the source, donors, GSS pool, norms."""

    def __init__(
        self,
        source: Any,
        seed: int,
        data_dir: str | Path | None,
        spec: str | None,
        big_five_reference: str = "pooled",
        gss_min_cell: int = MIN_CELL,
        national_donors: str | None = None,
    ):
        self.source = source
        self.seed = seed
        self.big_five_reference = check_reference(big_five_reference)
        self.gss_min_cell = check_min_cell(gss_min_cell)
        self.national_donors = str(national_donors) if national_donors else None
        self.data_dir = settings.data_dir(data_dir)
        self.spec = spec
        self.year = int(source.year)
        self._norms: Norms | None = None
        self._pool: GssPool | None = None
        self._full: Any = None
        self._missing: dict[str, list[str]] | None = None

    # -- lazily loaded inputs ------------------------------------------------------------------
    @property
    def norms(self) -> Norms:
        if self._norms is None:
            self._norms = load_norms(self.data_dir)
        return self._norms

    @property
    def pool(self) -> GssPool:
        if self._pool is None:
            self._pool = load_pool(str(self.data_dir), self.year)
        return self._pool

    def person_columns(self) -> list[str]:
        have = set(self.source.available_columns())
        return [c for c in PERSON_COLUMNS if c in have]

    def missing_by_state(self) -> dict[str, list[str]]:
        """State -> the mapped person variables its file lacks (of those some file of the full source has);
        worked out once per context (every chunk asks)."""
        if self._missing is None:
            out = {
                st: [c for c in IMPUTE_VARS if c not in set(self.source.available_columns(st))]
                for st in self.source.states
            }
            if any(out.values()):
                full_have = set(self.full.available_columns())
                out = {st: [c for c in miss if c in full_have] for st, miss in out.items()}
            self._missing = out
        return self._missing

    @property
    def full(self) -> Any:
        if self._full is None:
            self._full = self.full_source()
        return self._full

    def full_source(self) -> Any:
        """The same source with every state (donor states may lie outside the user's selection)."""
        if self.spec and not Path(self.spec).expanduser().is_dir():
            return _cached_source(
                self.spec, self.data_dir, lambda: open_source(self.spec, None, data_dir=self.data_dir)
            )
        return _cached_source(
            str(self.source.directory),
            self.data_dir,
            lambda: open_source(None, None, data_dir=self.data_dir, path=self.source.directory),
        )

    def donors(self, src: Any, need: list[str], tag: str) -> pl.DataFrame:
        """Donor records of ``src``: states whose file has every ``need`` column (cached on disk)."""
        states = [s for s in src.states if set(need) <= set(src.available_columns(s))]
        if not states:
            raise UserError(f"no state of source {src.name} has {', '.join(need)} to impute from")
        cols = list(
            dict.fromkeys(
                [
                    "SERIALNO",
                    "SPORDER",
                    "STATE",
                    "PWGTP",
                    *[c for c in MATCH_VARS if c in src.available_columns()],
                    *need,
                ]
            )
        )
        key = content_hash({"v": 8, "src": src.checksum, "states": states, "cols": cols, "tag": tag}, 20)
        if key in _DONORS:
            return _DONORS[key]
        path = settings.cache_dir() / "personas" / f"donors-{tag}-{key}.arrow"
        df = _read_arrow(path) if path.exists() else None
        if df is None:
            df = _build_donors(src, cols, states, need)
            with atomic_path(path) as tmp:
                df.write_ipc(tmp, compression="uncompressed")
            # the built frame gives way to the memory-mapped file (the same content, what a later run
            # reads): a first run then holds no more memory than a warm one
            mapped = _read_arrow(path)
            df = df if mapped is None else mapped

        set_cache_token(
            df, f"donors-{tag}-{key}"
        )  # the key names the content: hot-deck indexes cache on disk
        _DONORS[key] = df
        return df

    def national_source(self) -> Any | None:
        """The national donor source for origins the sampled source lacks (``national_donors``), or None.

        ``UserError`` when it cannot be opened, has neither ANC1P nor POBP, or does not cover every state of
        the sampled source (a national attribute is never imputed from a regional pool)."""
        if not self.national_donors:
            return None
        spec = self.national_donors
        if Path(spec).expanduser().is_dir():
            donor = _cached_source(
                str(Path(spec).expanduser().resolve()),
                self.data_dir,
                lambda: open_source(None, None, data_dir=self.data_dir, path=spec),
            )
        else:
            donor = _cached_source(
                spec, self.data_dir, lambda: open_source(spec, None, data_dir=self.data_dir)
            )
        have = [v for v in ORIGIN_VARS if v in donor.available_columns()]
        if not have:
            raise UserError(
                f"--national-donors {spec}: has neither ANC1P (ancestry) nor POBP (place of birth)"
            )
        covered = {st for st in donor.states if set(have) <= set(donor.available_columns(st))}
        missing = [st for st in self.source.states if st not in covered]
        if missing:
            names = ", ".join(STATE_ABBR.get(st, st) for st in missing[:5]) + (
                " ..." if len(missing) > 5 else ""
            )
            raise UserError(
                f"--national-donors {spec}: covers {len(self.source.states) - len(missing)} of the "
                f"{len(self.source.states)} states sampled (not {names}); origins are imputed only "
                "from a national source"
            )
        return donor


#: person files decoded at once while building a donor frame (bounds the memory of the build)
DONOR_BUILD_FILES = 8


def _build_donors(src: Any, cols: list[str], states: list[str], need: list[str]) -> pl.DataFrame:
    """Donor records of ``src`` (states ``states``, positive weight) with their housing columns, the
    matching columns (the raw codes they came from dropped) and codes as categoricals.

    Built :data:`DONOR_BUILD_FILES` person files at a time and concatenated in file order: the same rows,
    in the same order, as one pass over every file, without holding every file's decoded text columns
    (and their temporaries) at once -- the national build peaked at ~2.5 GB above its start in one pass.
    """
    hcols = [c for c in HOUSEHOLD_COLUMNS if c in _housing_columns(src)]
    # household language, type and size of each donor's home (matching columns)
    hh = src.housing(["SERIALNO", *hcols]).collect().unique("SERIALNO") if hcols else None
    drop = [c for c in (*MATCH_VARS, "HHT", "NP") if c not in need]
    files = [lf.drop("_row") for _, lf in src.file_frames(cols, "person")]
    parts = []
    for start in range(0, len(files), DONOR_BUILD_FILES):
        part = (
            pl.concat(files[start : start + DONOR_BUILD_FILES], how="vertical")
            .filter(pl.col("STATE").is_in(states))
            .filter(pl.col("PWGTP") > 0)
            .collect()
        )
        if hh is not None:
            part = part.join(hh, on="SERIALNO", how="left", maintain_order="left")
        # cached with the matching columns (the raw codes they came from are dropped): one read next time
        part = match_columns(part).drop(drop, strict=False)
        # codes as categoricals: the 2.7 M national donors take ~0.45 GB instead of ~1.1 GB in memory;
        # an uncompressed Arrow file is memory-mapped on the next load (0.1 s instead of 0.5 s of Parquet)
        parts.append(
            part.with_columns(
                pl.col(c).cast(pl.Categorical)
                for c, t in part.schema.items()
                if t == pl.Utf8 and c != "SERIALNO"
            )
        )
    return pl.concat(parts, how="vertical", rechunk=False)


def _read_arrow(path: Path) -> pl.DataFrame | None:
    """A frame memory-mapped from an Arrow IPC file, or None when the file cannot be read (rebuilt then)."""
    import pyarrow as pa

    try:
        return pl.from_arrow(pa.ipc.open_file(pa.memory_map(str(path), "r")).read_all())  # type: ignore[return-value]
    except (OSError, pa.ArrowException, ValueError):
        return None


def _housing_columns(src: Any) -> list[str]:
    """The source's housing columns ([] without housing files), remembered per source object."""
    cached = src.__dict__.get("_persona_housing_columns")
    if cached is None:
        cached = src.available_columns(kind="housing") if src.housing() is not None else []
        src.__dict__["_persona_housing_columns"] = cached
    return cached


def item_keys(df: pl.DataFrame) -> np.ndarray:
    """Per-draw random-stream keys: the draw index mixed with a CRC of the source record, so two runs
    that put different records at one draw index do not share Big Five scores or tags."""
    ser, spo = df["SERIALNO"], df["SPORDER"]
    if (
        ser.dtype == pl.Utf8
        and (spo.dtype == pl.Utf8 or spo.dtype.is_integer())
        and ser.null_count() == 0
        and spo.null_count() == 0
    ):
        text = pl.select(pl.concat_str([pl.lit(ser), pl.lit("|"), pl.lit(spo).cast(pl.Utf8)])).to_series()
        crc = crc32_column(text)
    else:  # the same CRC of Python's text of each value (None included)
        crc = np.array(
            [zlib.crc32(f"{s}|{o}".encode()) for s, o in zip(ser.to_list(), spo.to_list())], dtype=np.int64
        )
    return (df["_draw"].to_numpy().astype(np.int64) << 32) | crc


def _crc_table() -> np.ndarray:
    table = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        table = np.where(table & 1, (table >> np.uint32(1)) ^ np.uint32(0xEDB88320), table >> np.uint32(1))
    return table.astype(np.uint32)


_CRC_TABLE = _crc_table()


def crc32_column(text: pl.Series) -> np.ndarray:
    """``zlib.crc32`` of each (non-null) string's UTF-8 bytes, as int64, one byte position at a time over
    all rows (the strings here are short: a serial number and a person number)."""
    import pyarrow as pa

    arr = text.rechunk().to_arrow()
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    arr = arr.cast(pa.large_string())
    n = len(arr)
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64)[arr.offset : arr.offset + n + 1]
    data = (
        np.frombuffer(arr.buffers()[2], dtype=np.uint8)
        if n and offsets[-1] > offsets[0]
        else np.zeros(1, dtype=np.uint8)
    )
    starts, lengths = offsets[:-1], np.diff(offsets)
    crc = np.full(n, 0xFFFFFFFF, dtype=np.uint32)
    for j in range(int(lengths.max()) if n else 0):
        live = lengths > j
        b = data[np.minimum(starts + j, len(data) - 1)]
        step = _CRC_TABLE[(crc ^ b) & np.uint32(0xFF)] ^ (crc >> np.uint32(8))
        crc = np.where(live, step, crc)
    return (crc ^ np.uint32(0xFFFFFFFF)).astype(np.int64)


def _unavailable(n: int, var: str, source: str) -> FieldColumn:
    """A field the source does not record and no national donor source supplies."""
    return FieldColumn.make(
        _const(UNAVAILABLE, n),
        "unavailable",
        pl.DataFrame(
            {
                "var": _const(var, n),
                "note": _const(
                    f"{var} is not in {source}; pass a national PUMS source that has it "
                    "with --national-donors to impute it",
                    n,
                ),
            }
        ),
    )


def _pending(n: int, value: str, note: str) -> FieldColumn:
    return FieldColumn.make(_const(value, n), "pending", pl.DataFrame({"note": _const(note, n)}))


def _const(value: str, n: int) -> pl.Series:
    """A text column of ``n`` copies of ``value`` (without building a Python list)."""
    return pl.repeat(value, n, eager=True, dtype=pl.Utf8)


_TAG_THREAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="persona-tags")

#: rows mapped at once by :func:`map_frame` (bounds the memory of the intermediate columns)
MAP_CHUNK_ROWS = 50_000


def _households(serials: pl.Series, src: Any) -> tuple[pl.DataFrame | None, pl.DataFrame]:
    """Housing records (HHT, HHL and NP when present; None without housing files) and all members of the
    ``serials``."""
    housing = None
    have_h = _housing_columns(src)
    if {"HHT", "HHL"} <= set(have_h):
        cols = ["SERIALNO", *(c for c in HOUSEHOLD_COLUMNS if c in have_h)]
        housing = src.records_for_serials(serials, cols, "housing").unique("SERIALNO", maintain_order=True)
    have = set(src.available_columns())
    members = src.household_members(serials, [c for c in MEMBER_COLUMNS if c in have])
    return housing, members


def map_frame(
    draws: pl.DataFrame, ctx: MappingContext, stats: MapStats | None = None, chunk_rows: int | None = None
) -> pl.DataFrame:
    """Map drawn person records (``sample_persons`` output) to the 33 fields, vectorised.

    Returns one row per draw: ``_draw``, ``_year``, ``_state``, ``SERIALNO``, ``SPORDER``, ``_weight``,
    then per field ``v:<field>`` (value), ``p:<field>`` (provenance), ``d:<field>`` (detail JSON), then
    ``t:<kind>`` tag lists. Large inputs are mapped ``chunk_rows`` (default :data:`MAP_CHUNK_ROWS`)
    at a time, each chunk with its own household records; every random choice is keyed by the draw, so the
    result does not depend on the chunking.
    """
    parts = list(iter_map_chunks(draws, ctx, stats, chunk_rows))
    return parts[0] if len(parts) == 1 else pl.concat(parts, how="vertical_relaxed", rechunk=False)


def iter_map_chunks(
    draws: pl.DataFrame, ctx: MappingContext, stats: MapStats | None = None, chunk_rows: int | None = None
) -> Iterator[pl.DataFrame]:
    """:func:`map_frame` one chunk of ``chunk_rows`` draws at a time (in draw order), so a caller can
    write each chunk out and drop it instead of holding the whole mapped frame; concatenated, the
    chunks equal ``map_frame(draws, ctx)``."""
    stats = stats if stats is not None else MapStats()
    chunk_rows = chunk_rows or MAP_CHUNK_ROWS
    for start in range(0, draws.height, chunk_rows):  # each chunk reads its own households (bounded memory)
        yield _map_chunk(draws.slice(start, chunk_rows), ctx, stats)


def _map_chunk(draws: pl.DataFrame, ctx: MappingContext, stats: MapStats) -> pl.DataFrame:
    n = draws.height
    src = ctx.source
    df = draws.with_row_index("_row").with_columns(pl.col("_state").cast(pl.Utf8))
    for c in PERSON_COLUMNS:
        if c not in df.columns:
            df = df.with_columns(pl.lit(None, dtype=pl.Utf8).alias(c))
    keys = item_keys(df)
    ages = df["AGEP"].fill_null(0).to_numpy()
    # the tag picks are pure numpy (which releases the GIL): hashed on a second thread meanwhile
    tag_picks = _TAG_THREAD.submit(draw_tag_indices, ctx.seed, keys, ages)

    housing, members = _households(df["SERIALNO"].unique(), src)
    if housing is not None:  # household language, type and size: imputation matching columns
        df = df.join(
            housing.select([c for c in ("SERIALNO", *HOUSEHOLD_COLUMNS) if c in housing.columns]),
            on="SERIALNO",
            how="left",
        ).sort("_row")

    # 1. impute variables a record's file lacks, jointly from one donor of a richer state
    missing = ctx.missing_by_state()
    need = sorted({v for st in df["_state"].unique().to_list() for v in missing.get(st, [])})
    imputed_mask = pl.Series([False] * n)
    donor_detail = None
    if need:
        recipient = df["_state"].is_in([s for s, m in missing.items() if m])
        donors = ctx.donors(ctx.full, need, "impute")
        df = df.with_columns([pl.col(c).cast(donors.schema[c]) for c in need])
        imp = impute_missing(df, recipient, need, donors, ctx.seed, keys, f"{src.name}")
        df, imputed_mask, donor_detail = imp.frame, recipient, imp.donor_detail
        stats.imputed_rows += int(recipient.sum())
        stats.imputed_vars = sorted(set(stats.imputed_vars) | set(need))
        for k, v in imp.level_counts.items():
            stats.imputation_levels[k] = stats.imputation_levels.get(k, 0) + v

    # 2. census-labelled fields
    cols = map_census_fields(df, src.dictionary, ctx.year, stats.decode)
    if donor_detail is not None:
        # detail JSON is row-local, so it is built for the imputed rows only and scattered into place
        rows = imputed_mask.arg_true()
        m = len(rows)
        matched_on = pl.repeat(MATCHED_ON, m, eager=True, dtype=pl.Utf8)
        own = {
            name: (
                cols[name].value[rows],
                pl.DataFrame(
                    {
                        "var": pl.repeat(var, m, eager=True, dtype=pl.Utf8),
                        "code": df[var].cast(pl.Utf8)[rows],
                        "matched_on": matched_on,
                    }
                ),
            )
            for name, var in FIELD_VAR.items()
            if var in need and name in cols
        }
        # every imputed field of a row names the same donor: its part of the detail is encoded once
        for name, sub in FieldColumn.make_sharing(own, "imputed", donor_detail[rows]).items():
            base = cols[name]
            cols[name] = FieldColumn(
                base.value,
                base.provenance.clone().scatter(rows, sub.provenance),
                base.detail.clone().scatter(rows, sub.detail),
            )

    # 3. origins (ancestry, place of birth): the record's own columns, else one donor of a national source
    #    the user supplied (--national-donors), else unavailable: never a national attribute from a
    #    non-national pool
    need = [v for v in ORIGIN_VARS if df[v].is_null().all()]
    if "ANC1P" not in need:
        stats.ancestry = "census ANC1P"
    imputed_origins: list[str] = []
    donor_src = ctx.national_source() if need else None
    if donor_src is not None:
        imputed_origins = [v for v in need if v in donor_src.available_columns()]
    if imputed_origins:
        donors = ctx.donors(donor_src, imputed_origins, "origins")
        anc, levels = impute_ancestry(df, donors, ctx.seed, keys, donor_src.name, tuple(imputed_origins))
        labels = map_census_fields(
            anc.with_columns(AGEP=df["AGEP"], RAC1P=df["RAC1P"], HISP=df["HISP"]),
            donor_src.dictionary,
            donor_src.year,
            stats.decode,
        )
        for var, name in (("ANC1P", "ancestry"), ("POBP", "place of birth")):
            if var in imputed_origins:
                cols[name] = FieldColumn.make(
                    labels[name].value,
                    "imputed",
                    anc.select(
                        var=pl.lit(var),
                        code=var,
                        donor_source="donor_source",
                        donor_state="donor_state",
                        donor_serialno="donor_serialno",
                        donor_sporder="donor_sporder",
                        backoff_level="backoff_level",
                        matched_on=pl.lit("age band, sex, race, Hispanic origin, nativity, division"),
                    ),
                )
        if "ANC1P" in imputed_origins:
            stats.ancestry = f"imputed from {donor_src.name} donors (national donor source)"
            for k, v in levels.items():
                stats.ancestry_levels[k] = stats.ancestry_levels.get(k, 0) + v
    for var, name in (("ANC1P", "ancestry"), ("POBP", "place of birth")):
        if var in need and var not in imputed_origins:
            cols[name] = _unavailable(n, var, src.name)
            if var == "ANC1P":
                stats.ancestry = "unavailable (ANC1P not in source; no national donor source)"

    # 4. household fields: housing record, else members of the same SERIALNO
    cols.update(household_fields(df, members, housing, src.dictionary, ctx.year, stats.decode))

    # 5. survey fields from matching GSS respondents
    survey, levels = draw_survey(df, ctx.pool, ctx.seed, keys, ctx.gss_min_cell)
    cols.update(survey)
    stats.survey_source = ctx.pool.label
    stats.survey_min_cell = ctx.gss_min_cell
    for k, v in levels.items():
        stats.survey_levels[k] = stats.survey_levels.get(k, 0) + v

    # 6. procedural: Big Five and tags
    is_female = (df["SEX"].cast(pl.Utf8) == "2").to_numpy()
    b5 = draw_bigfive(ctx.norms, is_female, ages, ctx.seed, keys, ctx.big_five_reference, level_names=False)
    # level names gathered by index (the same lookup as bigfive.level_of, without per-row Python strings)
    level_names = pl.Series([name for _, name in LEVELS], dtype=pl.Utf8)
    level_idx = b5["level_index"]
    parts = [
        pl.lit(f"{DOMAIN_NAMES[d]}: ") + pl.lit(level_names.gather(level_idx[:, j]))
        for j, d in enumerate(DOMAINS)
    ]
    text = pl.select(pl.concat_str(parts, separator=", ")).to_series()
    female = np.where(is_female, 1, 0)
    group_names = pl.Series([f"{s} {g}" for s in ("M", "F") for g in AGE_GROUPS], dtype=pl.Utf8)
    bdetail = pl.DataFrame(
        {
            "scores": pl.DataFrame(
                {d: np.round(b5["score"][:, j], 1) for j, d in enumerate(DOMAINS)}
            ).to_struct(),
            "percentiles": pl.DataFrame(
                {d: np.round(b5["percentile"][:, j], 1) for j, d in enumerate(DOMAINS)}
            ).to_struct(),
            "norm_group": group_names.gather(female * len(AGE_GROUPS) + b5["group"]),
            "reference": _const(ctx.big_five_reference, n),
            "norms": _const(
                "IPIP-NEO-120 sum scores (Johnson) by sex x age; NEO-PI-R domain correlations", n
            ),
        }
    )
    cols["big five scores"] = FieldColumn.make(text, "procedural", bdetail)
    # tag texts gathered from each vocabulary by the picked indices (no per-row Python strings)
    tag_lists: dict[str, pl.Series] = {}
    for kind, idx in tag_picks.result().items():
        vocab = pl.Series([e.text for e in vocabulary(kind)], dtype=pl.Utf8)
        tag_lists[kind] = (
            vocab.gather(idx.ravel()).reshape(idx.shape).cast(pl.List(pl.Utf8)).alias(f"t:{kind}")
        )
    for kind, (_k, fname) in TAG_KINDS.items():
        if fname is None:
            continue
        joined = tag_lists[kind].list.join("; ")
        cols[fname] = FieldColumn.make(joined, "procedural", pl.DataFrame({"tags": _const(kind, n)}))
    cols["detailed job description"] = _pending(n, PENDING_JOB, "written by LLM enrichment (personas enrich)")

    missing_fields = [f for f in PERSONA_FIELDS if f not in cols]
    if missing_fields:
        raise UserError(f"source {src.name} cannot provide field(s) {', '.join(missing_fields)}")
    out = {
        "_draw": df["_draw"],
        "_year": df["_year"].cast(pl.Int64),
        "_state": df["_state"],
        "SERIALNO": df["SERIALNO"],
        "SPORDER": df["SPORDER"].cast(pl.Int64),
        "_weight": df["_weight"].cast(pl.Float64),
    }
    for name in PERSONA_FIELDS:
        c = cols[name]
        out[f"v:{name}"] = c.value
        out[f"p:{name}"] = c.provenance
        out[f"d:{name}"] = c.detail
    return pl.DataFrame(out).with_columns(tag_lists.values())


def _details(col: pl.Series) -> list[dict[str, Any]]:
    """Decode a column of detail JSON, parsing each distinct text once (rows get their own copy)."""
    cache: dict[str, dict[str, Any]] = {}
    out = []
    for text in col.to_list():
        d = cache.get(text)
        if d is None:
            d = cache[text] = json.loads(text)
        out.append(dict(d))
    return out


def frame_to_personas(mapped: pl.DataFrame) -> list[Persona]:
    """``Persona`` records from a ``map_frame`` result (ids from the source key and draw index)."""
    n = mapped.height
    cols = {
        name: (mapped[f"v:{name}"].to_list(), mapped[f"p:{name}"].to_list(), _details(mapped[f"d:{name}"]))
        for name in PERSONA_FIELDS
    }
    tag_cols = {c[2:]: mapped[c].to_list() for c in mapped.columns if c.startswith("t:")}
    years, states = mapped["_year"].to_list(), mapped["_state"].to_list()
    serials, sporders = mapped["SERIALNO"].to_list(), mapped["SPORDER"].to_list()
    draws, weights = mapped["_draw"].to_list(), mapped["_weight"].to_list()
    out = []
    for i in range(n):
        key = SourceKey(year=years[i], state=states[i], serialno=serials[i], sporder=sporders[i])
        fields = {
            name: {"value": v[i], "provenance": p[i], "detail": d[i]} for name, (v, p, d) in cols.items()
        }
        tags = {k: list(v[i]) if not isinstance(v[i], str) else v[i].split("; ") for k, v in tag_cols.items()}
        out.append(
            Persona.model_validate(
                {
                    "id": Persona.make_id(key, int(draws[i])),
                    "source": key,
                    "fields": fields,
                    "tags": tags,
                    "weight": float(weights[i]),
                }
            )
        )
    return out
