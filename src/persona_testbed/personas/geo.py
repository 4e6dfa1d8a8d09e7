"""US states: FIPS code, postal abbreviation, census division and region (for GSS matching)."""

from __future__ import annotations

# fips: (abbr, division 1..9 as coded by the GSS `region` variable)
STATES: dict[str, tuple[str, int]] = {
    "09": ("CT", 1),
    "23": ("ME", 1),
    "25": ("MA", 1),
    "33": ("NH", 1),
    "44": ("RI", 1),
    "50": ("VT", 1),
    "34": ("NJ", 2),
    "36": ("NY", 2),
    "42": ("PA", 2),
    "17": ("IL", 3),
    "18": ("IN", 3),
    "26": ("MI", 3),
    "39": ("OH", 3),
    "55": ("WI", 3),
    "19": ("IA", 4),
    "20": ("KS", 4),
    "27": ("MN", 4),
    "29": ("MO", 4),
    "31": ("NE", 4),
    "38": ("ND", 4),
    "46": ("SD", 4),
    "10": ("DE", 5),
    "11": ("DC", 5),
    "12": ("FL", 5),
    "13": ("GA", 5),
    "24": ("MD", 5),
    "37": ("NC", 5),
    "45": ("SC", 5),
    "51": ("VA", 5),
    "54": ("WV", 5),
    "01": ("AL", 6),
    "21": ("KY", 6),
    "28": ("MS", 6),
    "47": ("TN", 6),
    "05": ("AR", 7),
    "22": ("LA", 7),
    "40": ("OK", 7),
    "48": ("TX", 7),
    "04": ("AZ", 8),
    "08": ("CO", 8),
    "16": ("ID", 8),
    "30": ("MT", 8),
    "32": ("NV", 8),
    "35": ("NM", 8),
    "49": ("UT", 8),
    "56": ("WY", 8),
    "02": ("AK", 9),
    "06": ("CA", 9),
    "15": ("HI", 9),
    "41": ("OR", 9),
    "53": ("WA", 9),
}
DIVISION_NAMES = {
    1: "New England",
    2: "Middle Atlantic",
    3: "East North Central",
    4: "West North Central",
    5: "South Atlantic",
    6: "East South Central",
    7: "West South Central",
    8: "Mountain",
    9: "Pacific",
}
DIVISION_REGION = {
    1: "Northeast",
    2: "Northeast",
    3: "Midwest",
    4: "Midwest",
    5: "South",
    6: "South",
    7: "South",
    8: "West",
    9: "West",
}
ABBR_TO_FIPS = {abbr: fips for fips, (abbr, _) in STATES.items()}


def division_of(fips: str) -> int | None:
    entry = STATES.get(str(fips).zfill(2))
    return entry[1] if entry else None


def region_of(fips: str) -> str | None:
    d = division_of(fips)
    return DIVISION_REGION[d] if d else None
