"""Census stage: ACS PUMS reader, data dictionary, weighted whole-record sampler, raking, distributions.

Public API (stable; see docs/census.md)::

    from persona_testbed.census import (
        open_source, CensusSource, InputFile, PumsDictionary, RENAMES, canonical_name,
        sample_persons, Filters, AGE_BANDS, age_band_expr,
        rake, rake_source, load_targets, Margin, Cell, RakeResult,
        weighted_shares, tvd, chi2_gof, chi2_gof_pvalue, kish_ess,
        STATES, state_fips, parse_states,
    )

    src = open_source("acs2024", states=None, data_dir=None)     # default: 2024 national extract
    src = open_source("acs2018")                                   # official 2018 zips (14 states)
    src = open_source(path="/my/pums/dir")                         # any year: csv_pXX.zip / p_NN.parquet
    src.year, src.states, src.dictionary, src.inputs, src.checksum
    src.persons(["AGEP", "SEX", "SCHL"])   -> pl.LazyFrame   (canonical names; C codes zero-padded
                                                              strings, N codes Int64, blank = null)
    src.available_columns("06")            -> list[str]      (columns present in CA's file)
    src.housing(["SERIALNO", "HHT", "HHL"]) -> pl.LazyFrame | None
    src.household_members(serialnos, columns=None) -> pl.DataFrame
    src.dictionary.label("SCHL", "21")     -> "Bachelor's degree";  label("SCHL", None) -> N/A label
    src.dictionary.undecodable("INDP", codes) -> codes it cannot decode (never guessed)

    df = sample_persons(src, 1586, seed=0, weight="PWGTP", replace=True,
                        filters=Filters(adults_only=True, states=["CA", "48"]), quota_by="age_band")
    # whole records in draw order + _draw, _year, _state, _weight (+ _stratum with quotas)

    res = rake_source(src, "acs2018-us")   # or rake(df, margins, weight="PWGTP")
    res.converged, res.iterations, res.max_rel_error, res.ess, res.fit   # weights align with src.persons()
    df = sample_persons(src, 1586, seed=0, weights=res.weights)          # sample with raked weights

    weighted_shares(values, weights) -> {value: share};  tvd(p, q);  chi2_gof_pvalue(counts, shares)
"""

from .columns import RENAMES, canonical_name
from .dictionary import PumsDictionary
from .distributions import chi2_gof, chi2_gof_pvalue, kish_ess, tvd, weighted_shares
from .raking import Cell, Margin, RakeResult, rake
from .sampling import AGE_BANDS, DrawPlan, Filters, age_band_expr, plan_draws, sample_persons
from .source import DEFAULT_SPEC, CensusSource, InputFile, open_source
from .states import STATES, parse_states, state_fips
from .targets import TARGETS, load_targets, rake_source

__all__ = [
    "AGE_BANDS",
    "DEFAULT_SPEC",
    "RENAMES",
    "STATES",
    "TARGETS",
    "Cell",
    "CensusSource",
    "DrawPlan",
    "Filters",
    "InputFile",
    "Margin",
    "PumsDictionary",
    "RakeResult",
    "age_band_expr",
    "canonical_name",
    "chi2_gof",
    "chi2_gof_pvalue",
    "kish_ess",
    "load_targets",
    "open_source",
    "parse_states",
    "rake",
    "rake_source",
    "plan_draws",
    "sample_persons",
    "state_fips",
    "tvd",
    "weighted_shares",
]
