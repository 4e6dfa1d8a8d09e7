"""US states (and DC, PR) by FIPS code and postal abbreviation; accepts either spelling."""

from __future__ import annotations

from ..errors import UserError

#: FIPS code -> (postal abbreviation, name)
STATES: dict[str, tuple[str, str]] = {
    "01": ("AL", "Alabama"), "02": ("AK", "Alaska"), "04": ("AZ", "Arizona"), "05": ("AR", "Arkansas"),
    "06": ("CA", "California"), "08": ("CO", "Colorado"), "09": ("CT", "Connecticut"),
    "10": ("DE", "Delaware"), "11": ("DC", "District of Columbia"), "12": ("FL", "Florida"),
    "13": ("GA", "Georgia"), "15": ("HI", "Hawaii"), "16": ("ID", "Idaho"), "17": ("IL", "Illinois"),
    "18": ("IN", "Indiana"), "19": ("IA", "Iowa"), "20": ("KS", "Kansas"), "21": ("KY", "Kentucky"),
    "22": ("LA", "Louisiana"), "23": ("ME", "Maine"), "24": ("MD", "Maryland"),
    "25": ("MA", "Massachusetts"), "26": ("MI", "Michigan"), "27": ("MN", "Minnesota"),
    "28": ("MS", "Mississippi"), "29": ("MO", "Missouri"), "30": ("MT", "Montana"),
    "31": ("NE", "Nebraska"), "32": ("NV", "Nevada"), "33": ("NH", "New Hampshire"),
    "34": ("NJ", "New Jersey"), "35": ("NM", "New Mexico"), "36": ("NY", "New York"),
    "37": ("NC", "North Carolina"), "38": ("ND", "North Dakota"), "39": ("OH", "Ohio"),
    "40": ("OK", "Oklahoma"), "41": ("OR", "Oregon"), "42": ("PA", "Pennsylvania"),
    "44": ("RI", "Rhode Island"), "45": ("SC", "South Carolina"), "46": ("SD", "South Dakota"),
    "47": ("TN", "Tennessee"), "48": ("TX", "Texas"), "49": ("UT", "Utah"), "50": ("VT", "Vermont"),
    "51": ("VA", "Virginia"), "53": ("WA", "Washington"), "54": ("WV", "West Virginia"),
    "55": ("WI", "Wisconsin"), "56": ("WY", "Wyoming"), "72": ("PR", "Puerto Rico"),
}
_BY_ABBR = {abbr: fips for fips, (abbr, _name) in STATES.items()}
_BY_NAME = {name.lower(): fips for fips, (_abbr, name) in STATES.items()}


def state_fips(state: str | int) -> str:
    """Two-digit FIPS code for a FIPS code (``6``, ``"06"``), abbreviation (``"ca"``) or name.

    Raises ``UserError`` naming the value when it is not a US state, DC or PR.
    """
    text = str(state).strip()
    if text.isdigit():
        code = text.zfill(2)
        if code in STATES:
            return code
    elif text.upper() in _BY_ABBR:
        return _BY_ABBR[text.upper()]
    elif text.lower() in _BY_NAME:
        return _BY_NAME[text.lower()]
    raise UserError(f"unknown state {state!r}: give a FIPS code (06) or postal abbreviation (CA)")


def state_abbr(fips: str) -> str:
    """Postal abbreviation for a FIPS code (``"06"`` -> ``"CA"``)."""
    return STATES[state_fips(fips)][0]


def parse_states(states: str | list[str] | tuple[str, ...] | None) -> list[str] | None:
    """``"CA,tx"`` / ``["06", "TX"]`` -> sorted unique FIPS codes; ``None``/empty -> ``None`` (all)."""
    if states is None:
        return None
    items = states.split(",") if isinstance(states, str) else [str(s) for s in states]
    items = [s for s in (i.strip() for i in items) if s]
    if not items:
        return None
    return sorted({state_fips(s) for s in items})
