"""Official Census download locations for ACS PUMS files of any year and state.

A PUMS file is named three ways, all interchangeable:

- a target: ``pums:2019:p:ca`` (person file, California, 1-year), ``pums:2019:h:ca:5`` (housing,
  5-year 2015-2019), ``pums:2019:p:all`` (every state + DC + PR), ``pums:2019:dict`` (data dictionary);
- a relative path inside the data directory: ``census/acs/2019/1-Year/csv_pca.zip``,
  ``census/dictionaries/PUMS_Data_Dictionary_2019.csv``;
- an official URL: ``https://www2.census.gov/programs-surveys/acs/data/pums/2019/1-Year/csv_pca.zip``.

``PERSONA_TESTBED_CENSUS_URL`` replaces ``https://www2.census.gov`` for users who run their own copy of
the Census download server (same paths below it).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from ..core.errors import UserError
from .states import STATES, state

CENSUS_BASE_URL = "https://www2.census.gov"
ENV_CENSUS_URL = "PERSONA_TESTBED_CENSUS_URL"

PUMS_PATH = "programs-surveys/acs/data/pums/{year}/{period}/csv_{kind}{st}.zip"
DICT_PATH = "programs-surveys/acs/tech_docs/pums/data_dict/PUMS_Data_Dictionary_{span}.csv"
PUMS_RELPATH = "census/acs/{year}/{period}/csv_{kind}{st}.zip"
DICT_RELPATH = "census/dictionaries/PUMS_Data_Dictionary_{span}.csv"

PERIODS = {"1": "1-Year", "5": "5-Year"}
KINDS = {"p": "person", "h": "housing"}
FIRST_YEAR = {"1-Year": 2005, "5-Year": 2009}

_RELPATH_RE = re.compile(r"^census/acs/(\d{4})/([15]-Year)/csv_([ph])([a-z]{2})\.zip$")
_DICT_RE = re.compile(r"^census/dictionaries/PUMS_Data_Dictionary_(\d{4})(?:-(\d{4}))?\.csv$")


def census_base_url() -> str:
    """The Census download server: ``$PERSONA_TESTBED_CENSUS_URL`` or ``https://www2.census.gov``."""
    return (os.environ.get(ENV_CENSUS_URL) or CENSUS_BASE_URL).rstrip("/")


def rebase_census_url(url: str) -> str:
    """Point an official ``www2.census.gov`` URL at ``census_base_url()`` (other URLs unchanged)."""
    if url.startswith(CENSUS_BASE_URL + "/"):
        return census_base_url() + url[len(CENSUS_BASE_URL) :]
    return url


@dataclass(frozen=True)
class CensusFile:
    """One official Census file: where it lives in the data directory and where to download it."""

    relpath: str
    url: str
    description: str


def pums_file(year: int, kind: str, st: str, period: str = "1-Year") -> CensusFile:
    """The person (``kind="p"``) or housing (``"h"``) PUMS zip of one state (``st`` abbr/FIPS, or ``us``)."""
    _check_year(year, period)
    if kind not in KINDS:
        raise UserError(f"unknown PUMS record type {kind!r}: use p (person) or h (housing)")
    if str(st).lower() == "us":
        abbr, where = "us", "whole US"
    else:
        s = state(st)
        abbr, where = s.abbr.lower(), f"{s.name} (FIPS {s.fips})"
    fmt = dict(year=year, period=period, kind=kind, st=abbr)
    return CensusFile(
        relpath=PUMS_RELPATH.format(**fmt),
        url=f"{CENSUS_BASE_URL}/{PUMS_PATH.format(**fmt)}",
        description=f"ACS {year} {period.lower()} PUMS {KINDS[kind]} records, {where}",
    )


def dictionary_file(year: int, period: str = "1-Year") -> CensusFile:
    """The PUMS data dictionary CSV of one year (5-year dictionaries are named ``2015-2019``)."""
    _check_year(year, period)
    span = str(year) if period == "1-Year" else f"{year - 4}-{year}"
    return CensusFile(
        relpath=DICT_RELPATH.format(span=span),
        url=f"{CENSUS_BASE_URL}/{DICT_PATH.format(span=span)}",
        description=f"ACS {span} {period.lower()} PUMS data dictionary",
    )


def parse_target(target: str) -> list[CensusFile]:
    """Expand ``pums:YEAR:p|h:STATE[:1|5]`` or ``pums:YEAR:dict[:1|5]`` into Census files.

    STATE is a postal abbreviation, a FIPS code, ``us`` (the national file) or ``all`` (50 states, DC, PR).
    """
    parts = target.split(":")
    usage = "expected pums:YEAR:p|h:STATE[:1|5] (e.g. pums:2019:p:ca) or pums:YEAR:dict[:1|5]"
    if len(parts) < 3 or parts[0] != "pums" or not parts[1].isdigit():
        raise UserError(f"bad PUMS target {target!r}: {usage}")
    year = int(parts[1])
    if parts[2] == "dict":
        if len(parts) > 4:
            raise UserError(f"bad PUMS target {target!r}: {usage}")
        return [dictionary_file(year, _period(parts[3] if len(parts) == 4 else "1", target))]
    if len(parts) not in (4, 5):
        raise UserError(f"bad PUMS target {target!r}: {usage}")
    kind, st = parts[2].lower(), parts[3].lower()
    period = _period(parts[4] if len(parts) == 5 else "1", target)
    if st == "all":
        return [pums_file(year, kind, s.abbr, period) for s in STATES]
    return [pums_file(year, kind, st, period)]


def census_file_for_relpath(relpath: str) -> CensusFile | None:
    """The official file behind a data-directory path laid out like the Census server, else ``None``."""
    m = _RELPATH_RE.match(relpath)
    if m:
        year, period, kind, st = m.groups()
        if st != "us" and st.upper() not in {s.abbr for s in STATES}:
            return None
        return pums_file(int(year), kind, st, period)
    m = _DICT_RE.match(relpath)
    if m:
        first, last = m.groups()
        if last is None:
            return dictionary_file(int(first), "1-Year")
        if int(last) - int(first) == 4:
            return dictionary_file(int(last), "5-Year")
    return None


def _period(code: str, target: str) -> str:
    if code not in PERIODS:
        raise UserError(f"bad PUMS target {target!r}: period must be 1 (1-Year) or 5 (5-Year), got {code!r}")
    return PERIODS[code]


def _check_year(year: int, period: str) -> None:
    if period not in FIRST_YEAR:
        raise UserError(f"unknown PUMS period {period!r}: use 1-Year or 5-Year")
    if not FIRST_YEAR[period] <= year <= 2100:
        raise UserError(f"no ACS {period} PUMS for {year}: the first is {FIRST_YEAR[period]}")
