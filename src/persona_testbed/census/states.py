"""US states (and DC, PR) by FIPS code and postal abbreviation; accepts either spelling.

Thin layer over ``persona_testbed.data.states`` (the one table of states)."""

from __future__ import annotations

from ..data.states import STATES as _DATA_STATES
from ..data.states import state as _state

#: FIPS code -> (postal abbreviation, name); built from ``persona_testbed.data.STATES`` (one table)
STATES: dict[str, tuple[str, str]] = {s.fips: (s.abbr, s.name) for s in _DATA_STATES}


def state_fips(state: str | int) -> str:
    """Two-digit FIPS code for a FIPS code (``6``, ``"06"``), abbreviation (``"ca"``) or name.

    Raises ``UserError`` naming the value when it is not a US state, DC or PR.
    """
    return _state(state).fips


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
