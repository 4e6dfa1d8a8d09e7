"""Hot-deck imputation of census variables a record's source file lacks.

A recipient (e.g. a 2024 CA or TX record, which has only 12 columns) takes *all* its missing variables
from one donor record of a richer file, so the imputed values stay jointly consistent (an imputed
occupation comes with the same donor's employment status and income). Donors are drawn with probability
proportional to ``PWGTP`` within the recipient's cell on the columns both share (age band, sex, race,
Hispanic origin, education, citizenship, disability, census division, English-only household, household
type, household size band and person number: 1 = householder, 2, 3+), backing off to coarser cells
when a cell is empty. Each imputed field
records the donor's key, the donor's household type and the back-off level.

Household type (``hht4``: married couple / other family / living alone / non-family not alone / group
quarters, from the housing record's ``HHT``) and size band (``np4``: 1, 2, 3-4, 5+ persons, from ``NP``)
keep an imputed marital status consistent with the recipient's real household: without them a CA or TX
record living alone got a married donor 4.4 % of the time (0.4 % in states whose file has ``MAR``), and an
unmarried 35+ donor went into a married-couple household 14 % of the time (1.8 %). They are matched
down to back-off level 5 (English-only household down to level 6); a source without housing records
(``HHT``/``NP``) matches without them. The
person number (``sp3``; ``SPORDER`` 1 is always the householder, 2 most often the spouse) tells the
couple from adult children or parents in a married-couple household.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from .geo import STATES
from .hashrng import uniforms
from .hotdeck import derive_cache_token, pick_with_backoff

#: Person variables the mapping uses that may be imputed when a file lacks them.
IMPUTE_VARS: tuple[str, ...] = (
    "NATIVITY",
    "LANX",
    "ENG",
    "MAR",
    "FER",
    "ESR",
    "INDP",
    "OCCP",
    "COW",
    "PINCP",
    "HICOV",
    "DEAR",
    "DEYE",
    "DREM",
    "MIL",
)
#: Columns a recipient must have to be matched at all.
MATCH_VARS: tuple[str, ...] = ("AGEP", "SEX", "RAC1P", "HISP", "SCHL", "CIT", "DIS")
# Age bands aligned with the universes of FER (15-50), MIL (17+), ESR/OCCP (16+), MAR (15+).
_AGE_EDGES = [5, 15, 16, 17, 18, 25, 30, 35, 45, 51, 65, 75]

LEVELS: list[list[str]] = [
    [
        "ab",
        "_k_SEX",
        "_k_RAC1P",
        "hispyn",
        "_k_SCHL",
        "_k_CIT",
        "_k_DIS",
        "division",
        "hhl1",
        "hht4",
        "np4",
        "sp3",
    ],
    ["ab", "_k_SEX", "_k_RAC1P", "hispyn", "_k_SCHL", "_k_CIT", "_k_DIS", "hhl1", "hht4", "np4", "sp3"],
    ["ab", "_k_SEX", "_k_RAC1P", "hispyn", "schlg", "_k_CIT", "_k_DIS", "hhl1", "hht4", "np4", "sp3"],
    ["ab", "_k_SEX", "race3", "hispyn", "schlg", "nat", "hhl1", "hht4", "np4", "sp3"],
    ["ab", "_k_SEX", "schlg", "hhl1", "hht4", "np4", "sp3"],
    ["ab", "_k_SEX", "hhl1", "hht4", "sp3"],
    ["ab", "_k_SEX", "hhl1"],
    ["ab", "_k_SEX"],
    ["ab"],
]
#: the household matching columns (dropped from every level when either side lacks them)
HOUSEHOLD_KEYS = ("hht4", "np4")
MATCHED_ON = (
    "age band, sex, race, Hispanic origin, education, citizenship, disability, division, "
    "household language English only, household type, household size, person number (householder)"
)
#: ``hht4`` codes -> the household kind recorded as ``donor_household``
HOUSEHOLD_KINDS = {
    0: "group quarters",
    1: "married couple",
    2: "other family",
    3: "living alone",
    4: "non-family, not alone",
}
_HHT4 = {"1": 1, "2": 2, "3": 2, "4": 3, "6": 3, "5": 4, "7": 4}
#: origins (ancestry, place of birth) from a national donor source: census division first, so a
#: mainland persona does not take a Hawaiian donor's ancestry while nearer donors exist
ANCESTRY_LEVELS: list[list[str]] = [
    ["ab5", "_k_SEX", "_k_RAC1P", "_k_HISP", "nat", "division"],
    ["ab5", "_k_SEX", "_k_RAC1P", "_k_HISP", "nat"],
    ["_k_RAC1P", "_k_HISP", "nat"],
    ["race3", "hispyn", "nat"],
    ["hispyn"],
    [],
]


def match_columns(df: pl.DataFrame) -> pl.DataFrame:
    """Add the coarse matching columns (age bands, race3, Hispanic yes/no, education group, nativity,
    census division) to a frame with the canonical census columns."""
    division = {fips: div for fips, (_, div) in STATES.items()}
    age = pl.col("AGEP")
    ab = pl.lit(0)
    for i, edge in enumerate(_AGE_EDGES):
        ab = pl.when(age >= edge).then(pl.lit(i + 1)).otherwise(ab)
    schl = pl.col("SCHL").cast(pl.Int64, strict=False)
    state_col = "_state" if "_state" in df.columns else "STATE"
    num = [c for c in ("SEX", "RAC1P", "HISP", "SCHL", "CIT", "DIS") if c in df.columns]
    return df.with_columns(
        *[pl.col(c).cast(pl.Int64, strict=False).cast(pl.Int16).alias(f"_k_{c}") for c in num],
        ab=ab,
        ab5=pl.when(age < 18)
        .then(0)
        .when(age < 35)
        .then(1)
        .when(age < 55)
        .then(2)
        .when(age < 75)
        .then(3)
        .otherwise(4),
        race3=pl.col("RAC1P")
        .cast(pl.Utf8)
        .replace_strict({"1": 1, "2": 2}, default=3, return_dtype=pl.Int16),
        hispyn=(pl.col("HISP").cast(pl.Int64, strict=False).fill_null(1) > 1),
        schlg=pl.when(schl.is_null() | (schl < 16))
        .then(0)
        .when(schl < 20)
        .then(1)
        .when(schl <= 21)
        .then(2)
        .otherwise(3),
        nat=pl.col("CIT").cast(pl.Utf8).is_in(["1", "2", "3"]),
        division=pl.col(state_col)
        .cast(pl.Utf8)
        .replace_strict(division, default=None, return_dtype=pl.Int16),
        # household language English only (from the housing record), so an imputed language fits the home
        hhl1=(pl.col("HHL").cast(pl.Utf8) == "1") if "HHL" in df.columns else pl.lit(None, dtype=pl.Boolean),
        # person number: 1 is the householder of a housing unit (2 most often the spouse), 3 anyone else
        sp3=(
            pl.col("SPORDER").cast(pl.Int64, strict=False).clip(1, 3).cast(pl.Int16)
            if "SPORDER" in df.columns
            else pl.lit(None, dtype=pl.Int16)
        ),
        # household type (0 = group quarters / no household record) and size band, from the housing record
        hht4=(
            pl.col("HHT").cast(pl.Utf8).replace_strict(_HHT4, default=0, return_dtype=pl.Int16).fill_null(0)
            if "HHT" in df.columns
            else pl.lit(None, dtype=pl.Int16)
        ),
        np4=(
            pl.when(pl.col("NP").is_null())
            .then(pl.lit(0, dtype=pl.Int16))
            .otherwise(
                pl.col("NP")
                .cast(pl.Int64, strict=False)
                .clip(1, 5)
                .replace_strict({1: 1, 2: 2, 3: 3, 4: 3, 5: 4}, return_dtype=pl.Int16)
            )
            if "NP" in df.columns
            else pl.lit(None, dtype=pl.Int16)
        ),
    )


def levels_for(recipients: pl.DataFrame, donors: pl.DataFrame) -> list[list[str]]:
    """:data:`LEVELS`, without the household columns when either side has no housing record columns
    (all null): matching on an unknown household would send every recipient to the group-quarters cell."""
    known = all(
        c in f.columns and f[c].null_count() < f.height for f in (recipients, donors) for c in HOUSEHOLD_KEYS
    )
    if known:
        return [list(lv) for lv in LEVELS]
    out: list[list[str]] = []
    for lv in LEVELS:
        cut = [c for c in lv if c not in HOUSEHOLD_KEYS]
        if cut not in out:
            out.append(cut)
    return out


@dataclass
class Imputation:
    """Result of imputing: the filled frame, which rows were recipients, and per-row donor detail."""

    frame: pl.DataFrame
    recipient: pl.Series  # bool per row
    imputed_vars: list[str]
    donor_detail: pl.DataFrame  # donor_source, donor_state, donor_serialno, donor_sporder, backoff_level
    level_counts: dict[int, int]


def impute_missing(
    df: pl.DataFrame,
    recipient: pl.Series,
    missing_vars: list[str],
    donors: pl.DataFrame,
    seed: int,
    keys: np.ndarray,
    donor_source: str,
) -> Imputation:
    """Fill ``missing_vars`` of the ``recipient`` rows of ``df`` from one weighted donor each.

    ``donors`` holds the canonical census columns (incl. ``STATE``, ``SERIALNO``, ``SPORDER``, ``PWGTP``
    and every missing variable); ``keys`` are the rows' draw indices (for seeded uniforms).
    """
    n = df.height
    empty = pl.DataFrame(
        {
            "donor_source": [None] * n,
            "donor_state": [None] * n,
            "donor_serialno": [None] * n,
            "donor_sporder": [None] * n,
            "donor_household": [None] * n,
            "backoff_level": [None] * n,
        },
        schema={
            "donor_source": pl.Utf8,
            "donor_state": pl.Utf8,
            "donor_serialno": pl.Utf8,
            "donor_sporder": pl.Int64,
            "donor_household": pl.Utf8,
            "backoff_level": pl.Int64,
        },
    )
    idx = np.flatnonzero(recipient.to_numpy())
    if len(idx) == 0 or not missing_vars:
        return Imputation(df, recipient, [], empty, {})
    rec = match_columns(df[idx])
    don = donors if "ab" in donors.columns else match_columns(donors)
    derive_cache_token(donors, don, "match_columns")
    u = uniforms(seed, f"personas.impute.{donor_source}", keys[idx], 1)[:, 0]
    rows, level = pick_with_backoff(rec, don, levels_for(rec, don), u, "PWGTP")
    if (rows < 0).any():
        raise ValueError("imputation: no donor at any level (empty donor pool)")
    # only the columns used below are gathered (a gather of every donor column touches the whole file)
    used = [*missing_vars, "STATE", "SERIALNO", "SPORDER", *(["hht4"] if "hht4" in donors.columns else [])]
    picked = donors.select(list(dict.fromkeys(used)))[rows]
    donor_household = (
        picked["hht4"].cast(pl.Int64).replace_strict(HOUSEHOLD_KINDS, default=None, return_dtype=pl.Utf8)
        if "hht4" in picked.columns
        else pl.Series([None] * len(idx), dtype=pl.Utf8)
    )
    filled = df.with_row_index("_i")
    patch = picked.select(missing_vars).with_columns(_i=pl.Series(idx, dtype=pl.UInt32))
    filled = filled.update(patch, on="_i").drop("_i")
    detail = (
        empty.with_row_index("_i")
        .update(
            pl.DataFrame(
                {
                    "_i": pl.Series(idx, dtype=pl.UInt32),
                    "donor_source": [donor_source] * len(idx),
                    "donor_state": picked["STATE"].cast(pl.Utf8),
                    "donor_serialno": picked["SERIALNO"].cast(pl.Utf8),
                    "donor_sporder": picked["SPORDER"].cast(pl.Int64),
                    "donor_household": donor_household,
                    "backoff_level": pl.Series(level, dtype=pl.Int64),
                }
            ),
            on="_i",
        )
        .drop("_i")
    )
    counts = {int(k): int(v) for k, v in zip(*np.unique(level, return_counts=True))}
    return Imputation(filled, recipient, list(missing_vars), detail, counts)


_ANCESTRY_DONORS: dict[tuple[int, bool], tuple[pl.DataFrame, pl.DataFrame]] = {}
#: origin variables imputed from a national donor source when the sampled source lacks them
ORIGIN_VARS = ("ANC1P", "POBP")


def impute_ancestry(
    df: pl.DataFrame,
    donors: pl.DataFrame,
    seed: int,
    keys: np.ndarray,
    donor_source: str,
    columns: tuple[str, ...] = ("ANC1P",),
) -> tuple[pl.DataFrame, dict[int, int]]:
    """Donor origin codes (``columns``: ``ANC1P`` and / or ``POBP``, from one donor each, with the donor key
    and back-off level) for every row of ``df``.

    ``donors``: records of a source that has the columns (for ``ANC1P``, the suppressed code 000 and
    blanks are not donors). Matched on :data:`ANCESTRY_LEVELS`.
    """
    need_anc = "ANC1P" in columns
    memo = (id(donors), need_anc)
    hit = _ANCESTRY_DONORS.get(memo)
    if (
        hit is None or hit[0] is not donors
    ):  # filtered once per (cached) donor frame: hot-deck indexes reuse it
        don = (
            donors.filter(pl.col("ANC1P").is_not_null() & (pl.col("ANC1P").cast(pl.Utf8) != "000"))
            if need_anc
            else donors
        )
        don = don if "ab" in don.columns else match_columns(don)
        # its cell indexes cache on disk too
        derive_cache_token(donors, don, "ancestry-donors-v1" if need_anc else "origin-donors-v1")
        if len(_ANCESTRY_DONORS) >= 8:
            _ANCESTRY_DONORS.pop(next(iter(_ANCESTRY_DONORS)))
        hit = _ANCESTRY_DONORS[memo] = (donors, don)
    don = hit[1]
    u = uniforms(seed, f"personas.ancestry.{donor_source}", keys, 1)[:, 0]
    rows, level = pick_with_backoff(match_columns(df), don, ANCESTRY_LEVELS, u, "PWGTP")
    if (rows < 0).any():
        raise ValueError("ancestry imputation: empty donor pool")
    picked = don[rows]
    out = pl.DataFrame(
        {
            **{c: picked[c].cast(pl.Utf8) for c in columns},
            "donor_source": [donor_source] * df.height,
            "donor_state": picked["STATE"].cast(pl.Utf8),
            "donor_serialno": picked["SERIALNO"].cast(pl.Utf8),
            "donor_sporder": picked["SPORDER"].cast(pl.Int64),
            "backoff_level": pl.Series(level, dtype=pl.Int64),
        }
    )
    counts = {int(k): int(v) for k, v in zip(*np.unique(level, return_counts=True))}
    return out, counts
