"""The one place where PUMS column names are made canonical.

Canonical names are the 2024 (2019+) ones. A source's columns and its dictionary's variables both pass
through :func:`canonical_name`, so codes keep decoding with the dictionary of the source's own year
(e.g. 2018 ``RELP`` codes 00-17 become column ``RELSHIPP`` and decode with the 2018 labels).
"""

from __future__ import annotations

#: old name -> canonical (2024) name. Only true renames belong here, not recodes of a variable.
RENAMES: dict[str, str] = {
    "ST": "STATE",  # state FIPS code (renamed in 2020-based files)
    "RELP": "RELSHIPP",  # relationship to reference person (renamed 2019; codes differ by year)
    "JWTR": "JWTRNS",  # means of transportation to work (renamed 2019)
}


def canonical_name(name: str) -> str:
    """The canonical (2024) name of a PUMS column or dictionary variable."""
    upper = name.strip().upper()
    return RENAMES.get(upper, upper)


def canonical_names(names: list[str]) -> dict[str, str]:
    """Map each raw column name to its canonical one; a canonical name present verbatim wins."""
    present = {n.strip().upper() for n in names}
    out: dict[str, str] = {}
    for n in names:
        canon = canonical_name(n)
        if canon != n.strip().upper() and canon in present:
            canon = n.strip().upper()  # both spellings present: keep the old one under its own name
        out[n] = canon
    return out
