"""Derived household fields: household type, household language, family presence and age.

From the housing record when the source has one (2024: ``HHT``, ``HHL``), otherwise from the persons
sharing the drawn record's ``SERIALNO`` (relationship ``RELSHIPP``/``RELP``, ``AGEP``, ``SEX``,
``LANX``/``LANP``). Family presence uses ``PAOC`` where the record has it (females 16+), else the
relationship codes (own children of the householder or spouse/partner), else the other members' ages.
"""

from __future__ import annotations

import polars as pl

from .mapping import DecodeReport, FieldColumn, Labeler, decode

# Relationship code sets (RELSHIPP canonical name; codes differ by vintage).
_REL_2018 = {
    "ref": {"00"},
    "spouse": {"01"},
    "partner": {"13"},
    "child": {"02", "03", "04"},
    "related": {f"{i:02d}" for i in range(2, 11)},
    "gq": {"16", "17"},
}
_REL_2019 = {
    "ref": {"20"},
    "spouse": {"21", "23"},
    "partner": {"22", "24"},
    "child": {"25", "26", "27"},
    "related": {str(i) for i in range(25, 34)},
    "gq": {"37", "38"},
}

OWN_LABELS = {
    (True, False): "With own children under 6 years only",
    (False, True): "With own children 6 to 17 years only",
    (True, True): "With own children under 6 years and 6 to 17 years",
    (False, False): "No own children under 18 years",
}
HH_LABELS = {
    (True, False): "Lives with children under 6 years only (not necessarily own)",
    (False, True): "Lives with children 6 to 17 years only (not necessarily own)",
    (True, True): "Lives with children under 6 years and 6 to 17 years (not necessarily own)",
    (False, False): "No children under 18 years in household",
}
NA_GQ = "N/A (group quarters)"
NA_CHILD = "N/A (under 16 years old)"


def relationship_codes(year: int) -> dict[str, set[str]]:
    """Relationship code sets of a data year (RELP before 2019, RELSHIPP after)."""
    return _REL_2018 if year <= 2018 else _REL_2019


def member_summary(draws: pl.DataFrame, members: pl.DataFrame, year: int) -> pl.DataFrame:
    """Per draw row (``_row``): household size, children flags (own and any), derived HHT code, and the
    household's language (``lang_code``: 1 English only, 2 Spanish, 9 other; ``lang_lanp``)."""
    rel = relationship_codes(year)
    has_rel = "RELSHIPP" in members.columns and members["RELSHIPP"].is_not_null().any()
    has_lanx = "LANX" in members.columns and members["LANX"].is_not_null().any()
    m = members.select(
        "SERIALNO",
        m_sporder=pl.col("SPORDER"),
        m_age=pl.col("AGEP"),
        m_sex=pl.col("SEX").cast(pl.Utf8),
        m_rel=pl.col("RELSHIPP").cast(pl.Utf8) if has_rel else pl.lit(None, dtype=pl.Utf8),
        m_lanx=pl.col("LANX").cast(pl.Utf8) if has_lanx else pl.lit(None, dtype=pl.Utf8),
        m_lanp=pl.col("LANP").cast(pl.Utf8) if "LANP" in members.columns else pl.lit(None, dtype=pl.Utf8),
    )
    d = draws.select("_row", "SERIALNO", self_sporder=pl.col("SPORDER"))
    j = d.join(m, on="SERIALNO", how="left")
    self_rel = j.filter(pl.col("m_sporder") == pl.col("self_sporder")).select(
        "_row", self_rel=pl.col("m_rel")
    )
    j = j.join(self_rel, on="_row", how="left")
    other = pl.col("m_sporder") != pl.col("self_sporder")
    kid = other & (pl.col("m_age") < 18)
    parent_role = pl.col("self_rel").is_in(list(rel["ref"] | rel["spouse"] | rel["partner"]))
    own_kid = kid & pl.col("m_rel").is_in(list(rel["child"])) & parent_role
    lang_member = pl.col("m_lanx") == "1"
    agg = j.group_by("_row").agg(
        size=pl.col("m_sporder").count(),
        kid_u6=(kid & (pl.col("m_age") < 6)).any(),
        kid_6_17=(kid & (pl.col("m_age") >= 6)).any(),
        own_u6=(own_kid & (pl.col("m_age") < 6)).any(),
        own_6_17=(own_kid & (pl.col("m_age") >= 6)).any(),
        own_known=parent_role.any() if has_rel else pl.lit(False),
        self_rel=pl.col("self_rel").first(),
        spouse=pl.col("m_rel").is_in(list(rel["spouse"])).any(),
        related=pl.col("m_rel").is_in(list(rel["related"])).any(),
        gq=pl.col("m_rel").is_in(list(rel["gq"])).any() | pl.col("SERIALNO").first().str.contains("GQ"),
        ref_sex=pl.col("m_sex").filter(pl.col("m_rel").is_in(list(rel["ref"]))).first(),
        any_lanx=pl.col("m_lanx").is_not_null().any(),
        other_lang=lang_member.any(),
        lanp=pl.col("m_lanp").filter(lang_member).sort_by(pl.col("m_sporder").filter(lang_member)).first(),
    )
    male = pl.col("ref_sex") == "1"
    hht = (
        pl.when(pl.col("gq"))
        .then(pl.lit(None, dtype=pl.Utf8))
        .when(pl.lit(not has_rel))
        .then(pl.lit(None, dtype=pl.Utf8))
        .when(pl.col("spouse"))
        .then(pl.lit("1"))
        .when(pl.col("related"))
        .then(pl.when(male).then(pl.lit("2")).otherwise(pl.lit("3")))
        .when(pl.col("size") == 1)
        .then(pl.when(male).then(pl.lit("4")).otherwise(pl.lit("6")))
        .otherwise(pl.when(male).then(pl.lit("5")).otherwise(pl.lit("7")))
    )
    lang = (
        pl.when(pl.col("gq") | ~pl.col("any_lanx"))
        .then(pl.lit(None, dtype=pl.Utf8))
        .when(~pl.col("other_lang"))
        .then(pl.lit("1"))
        .when(pl.col("lanp") == "1200")
        .then(pl.lit("2"))
        .otherwise(pl.lit("9"))
    )
    return agg.with_columns(hht_code=hht, lang_code=lang).sort("_row")


def _role(self_rel: pl.Series, sporder: pl.Series, serialno: pl.Series, year: int) -> pl.Series:
    """The persona's relationship to the householder (householder, spouse, partner, child, other relative,
    group quarters, nonrelative). Without a relationship code only the householder is known: person
    number 1 of a housing unit (PUMS numbers the householder first); anyone else is null."""
    rel = relationship_codes(year)
    r = pl.col("r")
    housing_unit = ~pl.col("serial").cast(pl.Utf8).str.contains("GQ", literal=True).fill_null(True)
    expr = (
        pl.when(r.is_null() & (pl.col("sp") == 1) & housing_unit)
        .then(pl.lit("householder"))
        .when(r.is_null())
        .then(pl.lit(None, dtype=pl.Utf8))
        .when(r.is_in(list(rel["ref"])))
        .then(pl.lit("householder"))
        .when(r.is_in(list(rel["spouse"])))
        .then(pl.lit("spouse"))
        .when(r.is_in(list(rel["partner"])))
        .then(pl.lit("partner"))
        .when(r.is_in(list(rel["child"])))
        .then(pl.lit("child"))
        .when(r.is_in(list(rel["related"])))
        .then(pl.lit("other relative"))
        .when(r.is_in(list(rel["gq"])))
        .then(pl.lit("group quarters"))
        .otherwise(pl.lit("nonrelative"))
    )
    return pl.DataFrame(
        {"r": self_rel.cast(pl.Utf8), "sp": sporder.cast(pl.Int64, strict=False), "serial": serialno}
    ).select(expr.alias("role"))["role"]


def _children_label(u6: str, k617: str, labels: dict[tuple[bool, bool], str]) -> pl.Expr:
    a, b = pl.col(u6), pl.col(k617)
    return (
        pl.when(a & b)
        .then(pl.lit(labels[(True, True)]))
        .when(a)
        .then(pl.lit(labels[(True, False)]))
        .when(b)
        .then(pl.lit(labels[(False, True)]))
        .otherwise(pl.lit(labels[(False, False)]))
    )


def household_fields(
    draws: pl.DataFrame,
    members: pl.DataFrame | None,
    housing: pl.DataFrame | None,
    dictionary: Labeler,
    year: int,
    report: DecodeReport,
) -> dict[str, FieldColumn]:
    """``household type``, ``household language`` and ``family presence and age`` for each draw.

    ``draws`` needs ``_row``, ``SERIALNO``, ``SPORDER``, ``AGEP`` (and ``PAOC`` when present);
    ``housing`` (optional) holds ``SERIALNO``, ``HHT``, ``HHL``; ``members`` all persons of those
    households (``SERIALNO``, ``SPORDER``, ``AGEP``, ``SEX``, optional ``RELSHIPP``, ``LANX``, ``LANP``).
    """
    n = draws.height
    paoc = pl.col("PAOC").cast(pl.Utf8) if "PAOC" in draws.columns else pl.lit(None, dtype=pl.Utf8)
    base = draws.select("_row", "SERIALNO", "SPORDER", "AGEP", paoc=paoc)
    if members is None or members.height == 0:
        members = pl.DataFrame(
            schema={"SERIALNO": pl.Utf8, "SPORDER": pl.Int64, "AGEP": pl.Int64, "SEX": pl.Utf8}
        )
    summ = member_summary(draws, members, year)
    frame = base.join(summ, on="_row", how="left").sort("_row")
    out: dict[str, FieldColumn] = {}

    # household type and language
    use_housing = housing is not None and "HHT" in housing.columns
    size = frame["size"].cast(pl.Int64)  # person records sharing the SERIALNO
    if use_housing:
        np_col = pl.col("NP").cast(pl.Int64) if "NP" in housing.columns else pl.lit(None, dtype=pl.Int64)
        h = base.join(
            housing.select(
                "SERIALNO", pl.col("HHT").cast(pl.Utf8), pl.col("HHL").cast(pl.Utf8), NP=np_col
            ).unique("SERIALNO"),
            on="SERIALNO",
            how="left",
        ).sort("_row")
        hht_code, hhl_code = h["HHT"], h["HHL"]
        size = h["NP"].fill_null(size)
        how = "housing record"
    else:
        hht_code, hhl_code = frame["hht_code"], frame["lang_code"]
        how = "members of the same SERIALNO"
    hht = decode(hht_code, "HHT", dictionary, report, year)
    out["household type"] = FieldColumn.make(
        hht,
        "derived",
        pl.DataFrame(
            {
                "var": ["HHT"] * n,
                "code": hht_code,
                "from": [how] * n,
                "persons": size,
                "role": _role(frame["self_rel"], frame["SPORDER"], frame["SERIALNO"], year),
            }
        ),
    )
    if use_housing:
        hhl = decode(hhl_code, "HHL", dictionary, report, year)
    else:
        lanp_label = (
            decode(frame["lanp"], "LANP", dictionary, report, year)
            if frame["lanp"].is_not_null().any()
            else pl.Series([None] * n, dtype=pl.Utf8)
        )
        hhl_std = decode(hhl_code.replace({"9": None}), "HHL", dictionary, report, year)
        hhl = pl.select(
            pl.when(hhl_code == "9")
            .then(
                pl.when(frame["lanp"].is_not_null())
                .then(lanp_label)
                .otherwise(pl.lit("Language other than English"))
            )
            .otherwise(hhl_std)
        ).to_series()
    out["household language"] = FieldColumn.make(
        hhl,
        "derived",
        pl.DataFrame({"var": ["HHL"] * n, "code": hhl_code, "lanp": frame["lanp"], "from": [how] * n}),
    )

    # family presence and age
    paoc_label = (
        decode(frame["paoc"], "PAOC", dictionary, report, year)
        .str.replace("^Females with no own children.*$", OWN_LABELS[(False, False)])
        .str.replace("^Females with", "With")
    )
    fr = pl.DataFrame(
        {
            "gq": frame["gq"].fill_null(True) | frame["SERIALNO"].str.contains("GQ"),
            "age": frame["AGEP"],
            "paoc": frame["paoc"],
            "paoc_label": paoc_label,
            "own_known": frame["own_known"].fill_null(False),
            "own_u6": frame["own_u6"].fill_null(False),
            "own_6_17": frame["own_6_17"].fill_null(False),
            "kid_u6": frame["kid_u6"].fill_null(False),
            "kid_6_17": frame["kid_6_17"].fill_null(False),
        }
    )
    own_lab = _children_label("own_u6", "own_6_17", OWN_LABELS)
    any_lab = _children_label("kid_u6", "kid_6_17", HH_LABELS)
    res = fr.with_columns(own_lab=own_lab, any_lab=any_lab).select(
        value=pl.when(pl.col("gq"))
        .then(pl.lit(NA_GQ))
        .when(pl.col("age") < 16)
        .then(pl.lit(NA_CHILD))
        .when(pl.col("paoc").is_not_null())
        .then(pl.col("paoc_label"))
        .when(pl.col("own_known"))
        .then(pl.col("own_lab"))
        .otherwise(pl.col("any_lab")),
        prov=pl.when(pl.col("paoc").is_not_null() & ~pl.col("gq") & (pl.col("age") >= 16))
        .then(pl.lit("census"))
        .otherwise(pl.lit("derived")),
        method=pl.when(pl.col("gq") | (pl.col("age") < 16))
        .then(pl.lit("universe"))
        .when(pl.col("paoc").is_not_null())
        .then(pl.lit("PAOC"))
        .when(pl.col("own_known"))
        .then(pl.lit("own children by relationship code"))
        .otherwise(pl.lit("ages of other household members")),
    )
    fc = FieldColumn.make(
        res["value"],
        "derived",
        pl.DataFrame({"var": ["PAOC"] * n, "code": frame["paoc"], "method": res["method"]}),
    )
    fc.provenance = res["prov"].alias("provenance")
    out["family presence and age"] = fc
    return out
