"""Survey-grounded fields: religion, political views (party identification) and ideology (7-point
liberal-conservative scale), drawn jointly from one GSS respondent who matches the persona's cell.

Cells, finest first: age band x sex x race/Hispanic origin x degree x region x nativity; a cell with
fewer than ``min_cell`` respondents (default :data:`MIN_CELL` = 20) backs off (drop nativity, then region,
degree, race, sex) up to the whole year range, so no small cell hands the same few respondents to many
personas. Respondents are drawn with probability proportional to the GSS weight.
GSS years: the 2016/2018 cross-section for census years up
to 2019 (has Hispanic origin, nativity and the 9 census divisions); the long file's 2021-2024 waves for
later years (race white/black/other, 4 regions, no nativity or Hispanic column).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import polars as pl

from ..core import settings
from ..core.atomic import atomic_path
from ..core.errors import DataMissingError, UserError
from ..core.hashing import content_hash, file_sha256
from .geo import DIVISION_REGION, STATES
from .hashrng import uniforms
from .hotdeck import pick_with_backoff_counts
from .mapping import FieldColumn

CROSS_SECTION = "survey/gss/gss_2016_2018_crosssection.csv"
LONG_FILE = "survey/gss/gss_1972_2024_long.csv"
SURVEY_FIELDS = ("religion", "political views", "ideology")
#: default minimum number of GSS respondents in the cell a persona's respondent is drawn from
MIN_CELL = 20

_DEGREE = {
    "less than high school": 0,
    "high school": 1,
    "associate/junior college": 2,
    "associate / jr college": 2,
    "bachelor's": 3,
    "graduate": 4,
}
_RELIGION = {
    "none": "No religion",
    "protestant": "Protestant",
    "catholic": "Catholic",
    "jewish": "Jewish",
    "christian": "Christian",
    "other": "Other religion",
    "buddhism": "Buddhist",
    "muslim/islam": "Muslim",
    "orthodox-christian": "Orthodox Christian",
    "hinduism": "Hindu",
    "inter-nondenominational": "Inter-nondenominational",
    "other eastern religions": "Other Eastern religion",
    "native american": "Native American religion",
}


def _cap(s: str) -> str:
    """GSS labels in one casing: first letter of each word up, small words kept."""
    small = {"of", "the", "to", "or", "and"}
    words = s.split(" ")
    return " ".join(w if (i and w in small) else w[:1].upper() + w[1:] for i, w in enumerate(words))


def age_band(age: pl.Expr) -> pl.Expr:
    """GSS matching age band: 18-29, 30-44, 45-64, 65+ (under 18 falls in 18-29)."""
    return (
        pl.when(age < 30)
        .then(pl.lit("18-29"))
        .when(age < 45)
        .then(pl.lit("30-44"))
        .when(age < 65)
        .then(pl.lit("45-64"))
        .otherwise(pl.lit("65+"))
    )


@dataclass(frozen=True)
class GssPool:
    """Respondents usable as donors: cell columns, weight, and the three survey values."""

    frame: pl.DataFrame
    label: str  # e.g. "GSS 2021-2024"
    levels: list[list[str]] = field(default_factory=list)
    sha256_file: str = ""


def _read_csv(path: Path) -> pl.DataFrame:
    if not path.exists():
        raise DataMissingError(f"{path}: GSS file missing (run `persona-testbed data fetch`)")
    try:
        # Every column as text; only the empty string is missing, so religion "None" stays a value.
        return pl.read_csv(path, infer_schema_length=0, null_values=[""])
    except Exception as exc:  # noqa: BLE001 - polars raises several types for corrupt CSV
        raise UserError(f"{path}: not a readable CSV ({type(exc).__name__})") from None


#: bump when the pool built from a GSS file changes (columns, recodes, filters)
POOL_CACHE_VERSION = 1
_LEVELS_CROSS_SECTION = [
    ["ageband", "sex", "raceeth", "degree", "division", "native"],
    ["ageband", "sex", "raceeth", "degree", "division"],
    ["ageband", "sex", "raceeth", "degree", "region"],
    ["ageband", "sex", "raceeth", "degree"],
    ["ageband", "sex", "raceeth"],
    ["ageband", "sex"],
    ["sex"],
    [],
]
_LEVELS_LONG = [
    ["ageband", "sex", "raceeth", "degree", "region"],
    ["ageband", "sex", "raceeth", "degree"],
    ["ageband", "sex", "raceeth"],
    ["ageband", "sex"],
    ["sex"],
    [],
]


@lru_cache(maxsize=4)
def load_pool(data_dir: str, census_year: int) -> GssPool:
    """The GSS respondents for a census year (cached per process, and on disk under
    ``<home>/cache/personas`` keyed by the GSS file's sha256: the CSV is parsed once)."""

    root = Path(data_dir)
    path = root / (CROSS_SECTION if census_year <= 2019 else LONG_FILE)
    levels = [list(lv) for lv in (_LEVELS_CROSS_SECTION if census_year <= 2019 else _LEVELS_LONG)]
    if not path.exists():
        raise DataMissingError(f"{path}: GSS file missing (run `persona-testbed data fetch`)")
    sha = file_sha256(path)
    key = content_hash({"v": POOL_CACHE_VERSION, "sha256": sha, "census_year": census_year}, 24)
    cache = settings.cache_dir() / "personas" / f"gss-pool-{key}.parquet"
    if cache.exists():
        try:
            label = pl.read_parquet_metadata(cache).get("persona_testbed.label")
            frame = pl.read_parquet(cache)
            if label:
                return GssPool(frame, label, levels, sha)
        except Exception:  # noqa: BLE001, S110 - polars raises several types for a corrupt file: rebuild
            pass
    df, label = _build_pool(root, census_year)
    try:
        with atomic_path(cache) as tmp:
            df.write_parquet(tmp, metadata={"persona_testbed.label": label})
    except OSError:
        pass  # a read-only cache only costs speed
    return GssPool(df, label, levels, sha)


def _build_pool(root: Path, census_year: int) -> tuple[pl.DataFrame, str]:
    """The donor respondents (sorted by year, id) and the pool's label, parsed from the GSS CSV."""
    if census_year <= 2019:
        raw = _read_csv(root / CROSS_SECTION)
        need = [
            "year",
            "id",
            "age",
            "sex_label",
            "race_label",
            "hispanic",
            "degree_label",
            "region",
            "born_label",
            "relig_label",
            "denom_label",
            "partyid_label",
            "polviews_label",
            "wtssall",
        ]
        _check_columns(raw, need, root / CROSS_SECTION)
        df = raw.select(
            year=pl.col("year").cast(pl.Int64),
            gss_id=pl.col("id"),
            age=pl.col("age").cast(pl.Int64, strict=False),
            sex=pl.col("sex_label").str.to_lowercase(),
            raceeth=pl.when(pl.col("hispanic").cast(pl.Float64, strict=False) > 1)
            .then(pl.lit("hispanic"))
            .otherwise(pl.col("race_label").str.to_lowercase()),
            degree=pl.col("degree_label")
            .str.to_lowercase()
            .replace_strict(_DEGREE, default=None, return_dtype=pl.Int64),
            division=pl.col("region").cast(pl.Float64, strict=False).cast(pl.Int64),
            native=pl.col("born_label")
            .str.to_lowercase()
            .replace_strict({"yes": "1", "no": "2"}, default=None),
            relig=pl.col("relig_label").str.to_lowercase(),
            denom=pl.col("denom_label"),
            partyid=pl.col("partyid_label"),
            polviews=pl.col("polviews_label"),
            weight=pl.col("wtssall").cast(pl.Float64, strict=False),
        ).with_columns(
            region=pl.col("division").replace_strict(DIVISION_REGION, default=None, return_dtype=pl.Utf8)
        )
        label = "GSS 2016+2018 cross-section"
    else:
        raw = _read_csv(root / LONG_FILE)
        need = [
            "year",
            "id",
            "age",
            "sex",
            "race",
            "degree",
            "bigregion",
            "relig_label",
            "partyid",
            "polviews",
            "wtssps",
        ]
        _check_columns(raw, need, root / LONG_FILE)
        years = [y for y in range(census_year - 3, census_year + 1)]
        df = raw.with_columns(year=pl.col("year").cast(pl.Int64)).filter(pl.col("year").is_in(years))
        if df.height == 0:
            raise UserError(f"{root / LONG_FILE}: no GSS respondents in years {years[0]}-{years[-1]}")
        df = df.select(
            "year",
            gss_id=pl.col("id"),
            age=pl.col("age").cast(pl.Int64, strict=False),
            sex=pl.col("sex").str.to_lowercase(),
            raceeth=pl.col("race").str.to_lowercase(),
            degree=pl.col("degree")
            .str.to_lowercase()
            .replace_strict(_DEGREE, default=None, return_dtype=pl.Int64),
            region=pl.col("bigregion"),
            relig=pl.col("relig_label").str.to_lowercase(),
            denom=pl.lit(None, dtype=pl.Utf8),
            partyid=pl.col("partyid"),
            polviews=pl.col("polviews"),
            weight=pl.col("wtssps").cast(pl.Float64, strict=False),
        )
        label = f"GSS {df['year'].min()}-{df['year'].max()}"
    df = df.filter(
        pl.col("relig").is_not_null()
        & pl.col("partyid").is_not_null()
        & pl.col("polviews").is_not_null()
        & (pl.col("weight") > 0)
    )
    df = df.with_columns(
        ageband=pl.when(pl.col("age").is_null())
        .then(pl.lit(None, dtype=pl.Utf8))
        .otherwise(age_band(pl.col("age"))),
        religion=pl.col("relig").replace_strict(_RELIGION, default=None).fill_null(pl.col("relig")),
        **{
            "political views": pl.col("partyid").map_elements(_cap, return_dtype=pl.Utf8),
            "ideology": pl.col("polviews").map_elements(_cap, return_dtype=pl.Utf8),
        },
    ).sort(["year", "gss_id"])
    return df, label


def _check_columns(df: pl.DataFrame, need: list[str], path: Path) -> None:
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise UserError(f"{path}: missing column {missing[0]!r}")


def persona_cells(df: pl.DataFrame) -> pl.DataFrame:
    """The GSS matching cell of each persona from census columns AGEP SEX RAC1P HISP SCHL CIT _state."""
    division = {fips: div for fips, (_, div) in STATES.items()}
    _schl = pl.col("SCHL").cast(pl.Int64, strict=False)
    return df.select(
        ageband=age_band(pl.col("AGEP")),
        sex=pl.col("SEX").cast(pl.Utf8).replace_strict({"1": "male", "2": "female"}, default=None),
        raceeth_cs=pl.when(pl.col("HISP").cast(pl.Int64, strict=False).fill_null(1) > 1)
        .then(pl.lit("hispanic"))
        .otherwise(
            pl.col("RAC1P").cast(pl.Utf8).replace_strict({"1": "white", "2": "black"}, default="other")
        ),
        raceeth_long=pl.col("RAC1P")
        .cast(pl.Utf8)
        .replace_strict({"1": "white", "2": "black"}, default="other"),
        degree=pl.when(_schl.fill_null(0) < 16)
        .then(0)
        .when(_schl < 20)
        .then(1)
        .when(_schl == 20)
        .then(2)
        .when(_schl == 21)
        .then(3)
        .otherwise(4),
        division=pl.col("_state").cast(pl.Utf8).replace_strict(division, default=None, return_dtype=pl.Int64),
        native=pl.when(pl.col("CIT").cast(pl.Utf8).is_in(["1", "2", "3"]))
        .then(pl.lit("1"))
        .otherwise(pl.lit("2")),
    ).with_columns(
        region=pl.col("division").replace_strict(DIVISION_REGION, default=None, return_dtype=pl.Utf8)
    )


_CELL_NAMES = ("ageband", "sex", "raceeth", "degree", "region")


def _cell_text(frame: pl.DataFrame) -> pl.Series:
    return frame.select(
        pl.concat_str([pl.col(c).cast(pl.Utf8).fill_null("_") for c in _CELL_NAMES], separator="|")
    )[:, 0]


def check_min_cell(min_cell: int) -> int:
    """``min_cell`` if it is a whole number of at least 1, else a one-line ``UserError``."""
    if isinstance(min_cell, bool) or not isinstance(min_cell, int) or min_cell < 1:
        raise UserError(f"GSS minimum cell size must be a whole number of at least 1 (got {min_cell!r})")
    return min_cell


def draw_survey(
    df: pl.DataFrame, pool: GssPool, seed: int, keys: np.ndarray, min_cell: int = MIN_CELL
) -> tuple[dict, dict[int, int]]:
    """Field columns for religion, political views and ideology (one respondent per persona, from the
    finest cell holding at least ``min_cell`` respondents), and the count of personas per back-off level."""
    cells = persona_cells(df)
    cells = cells.with_columns(
        raceeth=pl.col("raceeth_cs") if "native" in pool.levels[0] else pl.col("raceeth_long")
    )
    u = uniforms(seed, "personas.survey", keys, 1)[:, 0]
    rows, level, in_cell = pick_with_backoff_counts(
        cells, pool.frame, pool.levels, u, "weight", check_min_cell(min_cell)
    )
    if (rows < 0).any():  # only possible with an empty pool
        raise UserError("GSS pool is empty: no respondent has religion, party and ideology")
    picked = pool.frame[rows]
    n = len(rows)
    detail = pl.DataFrame(
        {
            "source": [pool.label] * n,
            "gss_year": picked["year"],
            "gss_id": picked["gss_id"],
            "backoff_level": pl.Series(level, dtype=pl.Int64),
            "cell": pl.Series([",".join(cols) for cols in pool.levels], dtype=pl.Utf8).gather(level),
            "respondent": _cell_text(picked),
            "persona_cell": _cell_text(cells),
            "cell_respondents": pl.Series(in_cell, dtype=pl.Int64),
        }
    )
    own = {
        name: (picked[name], pl.DataFrame({"var": pl.repeat(var, n, eager=True, dtype=pl.Utf8)}))
        for name, var in (("religion", "relig"), ("political views", "partyid"), ("ideology", "polviews"))
    }
    own["religion"][1].insert_column(1, picked["denom"].alias("denomination"))
    out = FieldColumn.make_sharing(own, "survey", detail)  # the respondent's detail encoded once
    counts = {int(k): int(v) for k, v in zip(*np.unique(level, return_counts=True))}
    return out, counts
