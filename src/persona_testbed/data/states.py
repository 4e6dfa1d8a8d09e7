"""US states, DC and Puerto Rico: postal abbreviation <-> FIPS code <-> name.

PUMS files are named by lower-case abbreviation (``csv_pca.zip``) and hold the FIPS code inside
(``psam_p06.csv``, column ``ST`` / ``STATE``); this table converts between the two.
"""

from __future__ import annotations

from typing import NamedTuple

from ..core.errors import UserError


class State(NamedTuple):
    """One PUMS area: ``abbr`` upper-case postal code, ``fips`` two-digit string, ``name``."""

    abbr: str
    fips: str
    name: str


STATES: tuple[State, ...] = (
    State("AL", "01", "Alabama"),
    State("AK", "02", "Alaska"),
    State("AZ", "04", "Arizona"),
    State("AR", "05", "Arkansas"),
    State("CA", "06", "California"),
    State("CO", "08", "Colorado"),
    State("CT", "09", "Connecticut"),
    State("DE", "10", "Delaware"),
    State("DC", "11", "District of Columbia"),
    State("FL", "12", "Florida"),
    State("GA", "13", "Georgia"),
    State("HI", "15", "Hawaii"),
    State("ID", "16", "Idaho"),
    State("IL", "17", "Illinois"),
    State("IN", "18", "Indiana"),
    State("IA", "19", "Iowa"),
    State("KS", "20", "Kansas"),
    State("KY", "21", "Kentucky"),
    State("LA", "22", "Louisiana"),
    State("ME", "23", "Maine"),
    State("MD", "24", "Maryland"),
    State("MA", "25", "Massachusetts"),
    State("MI", "26", "Michigan"),
    State("MN", "27", "Minnesota"),
    State("MS", "28", "Mississippi"),
    State("MO", "29", "Missouri"),
    State("MT", "30", "Montana"),
    State("NE", "31", "Nebraska"),
    State("NV", "32", "Nevada"),
    State("NH", "33", "New Hampshire"),
    State("NJ", "34", "New Jersey"),
    State("NM", "35", "New Mexico"),
    State("NY", "36", "New York"),
    State("NC", "37", "North Carolina"),
    State("ND", "38", "North Dakota"),
    State("OH", "39", "Ohio"),
    State("OK", "40", "Oklahoma"),
    State("OR", "41", "Oregon"),
    State("PA", "42", "Pennsylvania"),
    State("RI", "44", "Rhode Island"),
    State("SC", "45", "South Carolina"),
    State("SD", "46", "South Dakota"),
    State("TN", "47", "Tennessee"),
    State("TX", "48", "Texas"),
    State("UT", "49", "Utah"),
    State("VT", "50", "Vermont"),
    State("VA", "51", "Virginia"),
    State("WA", "53", "Washington"),
    State("WV", "54", "West Virginia"),
    State("WI", "55", "Wisconsin"),
    State("WY", "56", "Wyoming"),
    State("PR", "72", "Puerto Rico"),
)

BY_ABBR: dict[str, State] = {s.abbr: s for s in STATES}
BY_FIPS: dict[str, State] = {s.fips: s for s in STATES}


def state(key: str | int) -> State:
    """Look a state up by abbreviation (any case), FIPS code (``"6"``, ``"06"``, ``6``) or full name."""
    text = str(key).strip()
    if text.isdigit():
        found = BY_FIPS.get(text.zfill(2))
    else:
        found = BY_ABBR.get(text.upper()) or next((s for s in STATES if s.name.lower() == text.lower()), None)
    if found is None:
        raise UserError(
            f"unknown state {key!r}: use a postal abbreviation (e.g. ca), a FIPS code "
            "(e.g. 06) or a name; 50 states, DC and PR are known"
        )
    return found
