"""Where census inputs live in the data directory (mirror layout), via ``persona_testbed.data.resolve``.

``acs<year>`` names the 1-year PUMS of that year: the official zips ``census/acs/<year>/1-Year/`` or a
Parquet extract ``census/acs/<year>/1-Year-extract/``. Dictionaries: ``census/dictionaries/
PUMS_Data_Dictionary_<year>.csv``; when the data year's own is absent the nearest earlier one is used
(2023 for the 2024 extract, as documented), never a later one.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..core import settings
from ..core.errors import DataMissingError, UserError
from ..data import resolve as data_resolve

SPEC = re.compile(r"^acs(\d{4})$", re.IGNORECASE)
LAYOUTS = ("1-Year", "1-Year-extract")
DICTIONARY = "census/dictionaries/PUMS_Data_Dictionary_{year}.csv"
#: how far back a missing dictionary may fall (2024 data -> 2023 dictionary)
DICTIONARY_FALLBACK_YEARS = 1


def resolve(relpath: str, data_dir: str | Path | None = None) -> Path:
    """Path of a known input file (``persona_testbed.data.resolve``: checksum-verified, clear fix)."""
    return Path(data_resolve(relpath, data_dir=data_dir))


def _local(relpath: str, data_dir: str | Path | None) -> Path | None:
    path = settings.data_dir(data_dir) / relpath
    if path.exists():
        return path
    try:
        return resolve(relpath, data_dir)
    except (DataMissingError, KeyError, ValueError):
        return None


def spec_year(spec: str) -> int:
    """``"acs2018"`` -> 2018; ``UserError`` for anything else."""
    m = SPEC.match(spec.strip())
    if not m:
        raise UserError(f"unknown census source {spec!r}: use acs<year> (e.g. acs2024) or a directory path")
    return int(m.group(1))


def spec_directory(spec: str, data_dir: str | Path | None = None) -> Path:
    """Directory holding the files of ``acs<year>`` in the data directory."""
    year = spec_year(spec)
    base = settings.data_dir(data_dir) / "census" / "acs" / str(year)
    for layout in LAYOUTS:
        if (base / layout).is_dir():
            return base / layout
    what = f"census-{year}" if year in (2018, 2024) else f"pums:{year}:p:all"
    raise DataMissingError(
        f"census source {spec} not found: no {base}/1-Year or 1-Year-extract "
        f"(run `persona-testbed data fetch {what}` or pass --data-dir)"
    )


def available_specs(data_dir: str | Path | None = None) -> list[str]:
    """``acs<year>`` specs present in the data directory, oldest first."""
    base = settings.data_dir(data_dir) / "census" / "acs"
    if not base.is_dir():
        return []
    years = sorted(
        p.name
        for p in base.iterdir()
        if p.name.isdigit() and any((p / layout).is_dir() for layout in LAYOUTS)
    )
    return [f"acs{y}" for y in years]


def dictionary_path(year: int, data_dir: str | Path | None = None, *, exact: bool = False) -> Path:
    """The dictionary for data of ``year`` (or the nearest earlier year within the fallback window)."""
    last = year if exact else year - DICTIONARY_FALLBACK_YEARS
    for y in range(year, last - 1, -1):
        found = _local(DICTIONARY.format(year=y), data_dir)
        if found is not None:
            return found
    raise DataMissingError(
        f"no PUMS data dictionary for {year} in {settings.data_dir(data_dir)} "
        f"(want {DICTIONARY.format(year=year)})"
    )
