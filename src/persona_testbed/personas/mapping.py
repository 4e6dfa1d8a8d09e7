"""Census record -> PERSONA field values, vectorised with polars.

Input: a frame of person records in the census module's canonical form (type-C codes as zero-padded
strings, ``AGEP``/``PINCP`` as integers, blank = null), one row per draw. Output: for each census-backed
field a value column ``v:<field>``, a provenance column ``p:<field>`` and a detail struct ``d:<field>``.
Codes are decoded once per distinct code with the source's dictionary: the N/A category is spelled out
(never blank) and codes the dictionary cannot decode are reported, not guessed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import polars as pl

#: Census-labelled fields: field -> PUMS variable.
CENSUS_VARS: dict[str, str] = {
    "sex": "SEX",
    "ancestry": "ANC1P",
    "education": "SCHL",
    "employment status": "ESR",
    "class of worker": "COW",
    "industry category": "INDP",
    "occupation category": "OCCP",
    "marital status": "MAR",
    "citizenship": "CIT",
    "veteran status": "MIL",
    "disability": "DIS",
    "health insurance": "HICOV",
    "cognitive difficulty": "DREM",
    "ability to speak english": "ENG",
    "vision difficulty": "DEYE",
    "fertility": "FER",
    "hearing difficulty": "DEAR",
}
#: Variables whose codes carry a 3-letter group prefix in the label ("MED-Veterinarians").
PREFIXED = {"OCCP", "INDP"}


class Labeler(Protocol):
    """What the mapping needs from a PUMS dictionary."""

    def label(self, var: str, code: Any) -> str | None: ...


@dataclass
class DecodeReport:
    """Codes a dictionary could not decode, by variable (reported instead of guessed)."""

    undecodable: dict[str, list[str]] = field(default_factory=dict)

    def add(self, var: str, code: str) -> None:
        codes = self.undecodable.setdefault(var, [])
        if code not in codes:
            codes.append(code)


def _na_label(dictionary: Labeler, var: str) -> str:
    lab = dictionary.label(var, None)
    return lab if lab else f"N/A ({var} not reported)"


def decode(
    series: pl.Series, var: str, dictionary: Labeler, report: DecodeReport, year: int | None = None
) -> pl.Series:
    """Dictionary labels for a column of codes; null -> the N/A label; undecodable -> explicit text."""
    codes = series.cast(pl.Utf8)
    mapping: dict[str, str] = {}
    for code in codes.drop_nulls().unique().to_list():
        lab = dictionary.label(var, code)
        if lab is None:
            report.add(var, code)
            lab = f"code {code} of {var} (not in the {year or ''} dictionary)".replace("the  ", "the ")
        mapping[code] = lab
    out = (
        codes.replace_strict(mapping, default=None, return_dtype=pl.Utf8)
        if mapping
        else pl.Series(codes.name, [None] * len(codes), dtype=pl.Utf8)
    )
    return out.fill_null(_na_label(dictionary, var))


def income_text(pincp: pl.Series, na_label: str) -> pl.Series:
    """Dollar amounts: ``$52,000``; losses ``-$1,200``; null -> the N/A label."""
    mapping = {}
    for v in pincp.drop_nulls().unique().to_list():
        mapping[v] = f"-${-v:,}" if v < 0 else f"${v:,}"
    if not mapping:
        return pl.Series(pincp.name, [na_label] * len(pincp), dtype=pl.Utf8)
    return pincp.replace_strict(mapping, default=None, return_dtype=pl.Utf8).fill_null(na_label)


INCOME_BANDS: tuple[tuple[int, str], ...] = (
    (1, "loss or none"),
    (10_000, "$1-9,999"),
    (25_000, "$10,000-24,999"),
    (50_000, "$25,000-49,999"),
    (75_000, "$50,000-74,999"),
    (100_000, "$75,000-99,999"),
    (150_000, "$100,000-149,999"),
    (10**12, "$150,000+"),
)


def income_band(pincp: pl.Expr) -> pl.Expr:
    """Income band of a PINCP expression (null stays null)."""
    expr = pl.when(pincp.is_null()).then(pl.lit(None, dtype=pl.Utf8))
    for bound, name in INCOME_BANDS:
        expr = expr.when(pincp < bound).then(pl.lit(name))
    return expr.otherwise(pl.lit(INCOME_BANDS[-1][1]))


AGE_BANDS: tuple[tuple[int, str], ...] = (
    (18, "0-17"),
    (25, "18-24"),
    (35, "25-34"),
    (45, "35-44"),
    (55, "45-54"),
    (65, "55-64"),
    (75, "65-74"),
    (200, "75+"),
)


def age_band(age: pl.Expr) -> pl.Expr:
    """Reporting age band (0-17, 18-24, ..., 75+)."""
    expr = pl.when(age.is_null()).then(pl.lit(None, dtype=pl.Utf8))
    for bound, name in AGE_BANDS:
        expr = expr.when(age < bound).then(pl.lit(name))
    return expr


#: the value of a field the census source does not record (provenance ``unavailable``)
UNAVAILABLE = "not recorded in this census source"


def place_of_birth_from_cit(cit: pl.Expr) -> pl.Expr:
    """Coarse place of birth when POBP is absent, from CIT (which implies nativity)."""
    return (
        pl.when(cit == "1")
        .then(pl.lit("United States (state not recorded)"))
        .when(cit == "2")
        .then(pl.lit("Puerto Rico, Guam, the U.S. Virgin Islands, or Northern Marianas"))
        .when(cit.is_in(["3", "4", "5"]))
        .then(pl.lit("Outside the United States (country not recorded)"))
        .otherwise(pl.lit("N/A (place of birth not recorded)"))
    )


@dataclass
class FieldColumn:
    """One field for every row: value text, provenance and detail (JSON text)."""

    value: pl.Series
    provenance: pl.Series
    detail: pl.Series

    @classmethod
    def make(cls, value: pl.Series, provenance: str, detail: pl.DataFrame) -> FieldColumn:
        n = len(value)
        prov = pl.repeat(provenance, n, eager=True, dtype=pl.Utf8).alias("provenance")
        return cls(value.cast(pl.Utf8).alias("value"), prov, json_details(detail))

    @classmethod
    def make_sharing(
        cls, fields: dict[str, tuple[pl.Series, pl.DataFrame]], provenance: str, shared: pl.DataFrame
    ) -> dict[str, FieldColumn]:
        """Several fields whose detail is ``shared`` plus a few columns of their own (``fields``: name ->
        (values, own detail columns)): the shared part is encoded once. Each detail equals
        ``json_details(shared | own)`` (own columns after the shared ones)."""
        base = json_details(shared)
        out = {}
        for name, (value, own) in fields.items():
            prov = pl.repeat(provenance, len(value), eager=True, dtype=pl.Utf8).alias("provenance")
            out[name] = cls(value.cast(pl.Utf8).alias("value"), prov, json_extend(base, own))
        return out

    def replace_where(self, mask: pl.Series, other: FieldColumn) -> FieldColumn:
        """Rows where ``mask`` is true take ``other``'s value, provenance and detail."""
        frame = pl.DataFrame(
            {
                "m": mask,
                "a": self.value,
                "b": other.value,
                "pa": self.provenance,
                "pb": other.provenance,
                "da": self.detail,
                "db": other.detail,
            }
        )
        res = frame.select(
            *(
                pl.when(pl.col("m")).then(pl.col(b)).otherwise(pl.col(a)).alias(a)
                for a, b in (("a", "b"), ("pa", "pb"), ("da", "db"))
            )
        )
        return FieldColumn(res["a"].alias("value"), res["pa"].alias("provenance"), res["da"].alias("detail"))


def _json_str(col: pl.Expr) -> pl.Expr:
    esc = (
        col.cast(pl.Utf8)
        .str.replace_all("\\", "\\\\", literal=True)
        .str.replace_all('"', '\\"', literal=True)
        .str.replace_all("\n", "\\n", literal=True)
        .str.replace_all("\t", "\\t", literal=True)
    )
    return pl.concat_str([pl.lit('"'), esc, pl.lit('"')])


#: frames at least this tall whose rows take few distinct values get their JSON built once per distinct row
DEDUPE_MIN_ROWS = 1024
_FLAT = (pl.Utf8, pl.Categorical, pl.Boolean)


def json_details(detail: pl.DataFrame) -> pl.Series:
    """Row-wise JSON objects of a frame, null entries dropped (built with string expressions: fast).

    Census details take few distinct values (a variable and its code): when the columns' distinct counts
    multiply to well under the row count, each distinct row is encoded once and the texts are gathered
    back into place (string views share the bytes), which is the same result at a fraction of the cost.
    """
    if detail.width == 0:
        return pl.Series("detail", ["{}"] * detail.height, dtype=pl.Utf8)
    n = detail.height
    if n >= DEDUPE_MIN_ROWS and all(dt in _FLAT or dt.is_numeric() for dt in detail.dtypes):
        bound, varying = 1, []
        for name in detail.columns:
            distinct_values = detail[name].n_unique()  # a null counts as a value
            if distinct_values > 1:
                varying.append(name)
                bound *= distinct_values
                if bound > n // 8:
                    break
        else:
            if not varying:  # one row repeated
                return pl.repeat(_json_rows(detail.head(1))[0], n, eager=True, dtype=pl.Utf8).alias("detail")
            keys = detail.select(varying)
            distinct = keys.unique(maintain_order=True)
            at = keys.join(
                distinct.with_row_index("_u"), on=varying, how="left", nulls_equal=True, maintain_order="left"
            )["_u"]
            first = np.zeros(distinct.height, dtype=np.int64)
            rows = distinct.with_columns(detail[c].gather(first) for c in detail.columns if c not in varying)
            return _json_rows(rows.select(detail.columns)).gather(at).alias("detail")
    return _json_rows(detail)


def _json_rows(detail: pl.DataFrame) -> pl.Series:
    parts = []
    for name, dtype in detail.schema.items():
        col = pl.col(name)
        series = detail[name]
        if dtype == pl.Utf8 and series.null_count() == 0 and len(series) and series.n_unique() == 1:
            parts.append(pl.lit(f'"{name}":' + json.dumps(series[0], ensure_ascii=False)))  # constant column
            continue
        if dtype == pl.Utf8 or dtype == pl.Categorical:
            needs_escape = bool(series.cast(pl.Utf8).str.contains(r'["\\\x00-\x1f]').any())
            enc = (
                _json_str(col)
                if needs_escape
                else pl.concat_str([pl.lit('"'), col.cast(pl.Utf8), pl.lit('"')])
            )
        elif dtype.is_numeric() and not dtype.is_float():
            enc = col.cast(pl.Utf8)
        elif dtype.is_float():
            enc = col.cast(pl.Utf8).str.replace(r"^(-?\d+)$", "${1}.0")
        elif dtype == pl.Boolean:
            enc = pl.when(col).then(pl.lit("true")).otherwise(pl.lit("false"))
        else:
            enc = pl.struct(col).struct.json_encode().str.slice(len(name) + 4).str.head(-1)
        item = pl.concat_str([pl.lit(f'"{name}":'), enc])
        parts.append(item if series.null_count() == 0 else pl.when(col.is_not_null()).then(item))
    body = pl.concat_str(parts, separator=",", ignore_nulls=True)
    out = detail.select(pl.concat_str([pl.lit("{"), body.fill_null(""), pl.lit("}")]).alias("detail"))[
        "detail"
    ]
    if len(out) != detail.height:  # only constant parts: the literal came back once
        out = pl.repeat(out[0], detail.height, eager=True, dtype=pl.Utf8).alias("detail")
    return out


def json_extend(base: pl.Series, extra: pl.DataFrame) -> pl.Series:
    """JSON objects ``base`` with ``extra``'s columns appended (as :func:`json_details` of the two frames
    side by side would write them)."""
    more = json_details(extra)
    return (
        pl.select(
            pl.when(pl.lit(more) == "{}")
            .then(pl.lit(base))
            .when(pl.lit(base) == "{}")
            .then(pl.lit(more))
            .otherwise(pl.concat_str([pl.lit(base).str.head(-1), pl.lit(","), pl.lit(more).str.tail(-1)]))
        )
        .to_series()
        .alias("detail")
    )


_GROUPED = re.compile(r"^([A-Z]{3})-(.*)$")


def coded_field(
    series: pl.Series, var: str, dictionary: Labeler, report: DecodeReport, year: int | None = None
) -> FieldColumn:
    """A census field whose value and detail are functions of one code: its label (as :func:`decode`;
    for :data:`PREFIXED` variables without the group prefix, kept in ``detail.group``) and detail
    ``{"var", "code"}``, both looked up once per distinct code (the same result as ``FieldColumn.make``
    with :func:`census_detail`, without building a detail frame)."""
    codes = series.cast(pl.Utf8)
    distinct = codes.unique(maintain_order=True)
    labels = decode(distinct, var, dictionary, report, year)
    values: dict[str, str] = {}
    details: dict[str, str] = {}
    na_value = na_detail = None  # the null code's (decode spells it as the variable's N/A label)
    for code, label in zip(distinct.to_list(), labels.to_list()):
        detail: dict[str, str] = {"var": var}
        if code is not None:
            detail["code"] = code
        if var in PREFIXED:
            m = _GROUPED.match(label)
            if m:
                label = m.group(2)
                detail["group"] = m.group(1)
        text = json.dumps(detail, ensure_ascii=False, separators=(",", ":"))
        if code is None:
            na_value, na_detail = label, text
        else:
            values[code], details[code] = label, text
    value = codes.replace_strict(values, default=None, return_dtype=pl.Utf8).fill_null(
        pl.lit(na_value, pl.Utf8)
    )
    detail_col = codes.replace_strict(details, default=None, return_dtype=pl.Utf8).fill_null(
        pl.lit(na_detail, pl.Utf8)
    )
    prov = pl.repeat("census", len(codes), eager=True, dtype=pl.Utf8).alias("provenance")
    return FieldColumn(value.alias("value"), prov, detail_col.alias("detail"))


def census_detail(var: str, codes: pl.Series) -> pl.DataFrame:
    return pl.DataFrame({"var": [var] * len(codes), "code": codes.cast(pl.Utf8)})


def map_census_fields(
    df: pl.DataFrame,
    dictionary: Labeler,
    year: int,
    report: DecodeReport,
    available: pl.DataFrame | None = None,
) -> dict[str, FieldColumn]:
    """Field -> (values, provenance, detail structs) for the census-labelled fields, age, race and income.

    ``available`` (optional) holds one boolean column per variable telling whether the row's source file
    had it; rows where it is false are left for imputation by the caller (their value here is the N/A
    label and the caller overwrites it).
    """
    out: dict[str, FieldColumn] = {}
    n = df.height
    age = df["AGEP"]
    out["age"] = FieldColumn.make(
        age.cast(pl.Utf8).fill_null("N/A (age not recorded)"), "census", census_detail("AGEP", age)
    )
    race = decode(df["RAC1P"], "RAC1P", dictionary, report, year)
    hisp_code = df["HISP"].cast(pl.Utf8) if "HISP" in df.columns else pl.Series([None] * n, dtype=pl.Utf8)
    hisp = decode(hisp_code, "HISP", dictionary, report, year)
    is_hisp = hisp_code.is_not_null() & (hisp_code.cast(pl.Int64, strict=False) > 1)
    race_value = (
        pl.select(
            pl.when(is_hisp)
            .then(pl.concat_str([race, pl.lit("; Hispanic or Latino ("), hisp, pl.lit(")")]))
            .otherwise(race)
        )
        .to_series()
        .alias("race")
    )
    race_detail = pl.DataFrame(
        {
            "var": ["RAC1P"] * n,
            "code": df["RAC1P"].cast(pl.Utf8),
            "hisp_var": ["HISP"] * n,
            "hisp_code": hisp_code,
        }
    )
    out["race"] = FieldColumn.make(race_value, "census", race_detail)
    for name, var in CENSUS_VARS.items():
        if var not in df.columns:
            continue
        out[name] = coded_field(df[var], var, dictionary, report, year)
    if "PINCP" in df.columns:
        na = _na_label(dictionary, "PINCP")
        band = pl.select(income_band(pl.lit(df["PINCP"]))).to_series()
        detail = pl.DataFrame({"var": ["PINCP"] * n, "code": df["PINCP"].cast(pl.Utf8), "band": band})
        out["income"] = FieldColumn.make(income_text(df["PINCP"], na), "census", detail)
    if "POBP" in df.columns and df["POBP"].is_not_null().any():
        out["place of birth"] = FieldColumn.make(
            decode(df["POBP"], "POBP", dictionary, report, year), "census", census_detail("POBP", df["POBP"])
        )
    elif "CIT" in df.columns:
        values = pl.select(place_of_birth_from_cit(pl.lit(df["CIT"]))).to_series().alias("pob")
        detail = pl.DataFrame(
            {
                "var": ["CIT"] * n,
                "code": df["CIT"].cast(pl.Utf8),
                "method": ["coarsened from citizenship/nativity (POBP absent)"] * n,
            }
        )
        out["place of birth"] = FieldColumn.make(values, "derived", detail)
    return out
