"""The PUMS data dictionary (official CSV): variable types, widths and code -> label decoding.

Rows are ``NAME,<var>,<type>,<len>,<description>`` and ``VAL,<var>,<type>,<len>,<from>,<to>,<label>``.
A ``VAL`` row maps the code range ``from..to`` to one label; codes made of ``b`` (``b``, ``bb``, ...) are
the blank / N-A category, which :meth:`PumsDictionary.label` returns explicitly for a missing value.
Variable names pass through :func:`columns.canonical_name` (``ST`` -> ``STATE``...). A variable listed
twice (housing and person sections) keeps its first definition.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from ..core.errors import UserError
from .columns import canonical_name
from .locate import dictionary_path

BLANK = re.compile(r"^b+$", re.IGNORECASE)
INT = re.compile(r"^-?\d+$")


@dataclass
class Variable:
    """One dictionary variable: ``type`` is ``C`` (character code) or ``N`` (numeric)."""

    name: str
    type: str
    length: int
    description: str
    exact: dict[str, str] = field(default_factory=dict)
    ranges: list[tuple[str, str, str]] = field(default_factory=list)
    blank_label: str | None = None

    @cached_property
    def width(self) -> int | None:
        """Zero-padding width of this variable's codes: the dictionary width for ``C`` variables whose
        integer codes all have that width (``SCHL`` 2, ``OCCP`` 4); ``None`` (no padding) otherwise."""
        if self.type != "C":
            return None
        codes = [c for c in list(self.exact) + [c for r in self.ranges for c in r[:2]] if INT.match(c)]
        if codes and all(len(c) == self.length for c in codes):
            return self.length
        return None

    @property
    def numeric_codes(self) -> bool:
        """True when every code of this variable is an integer (so it can be stored as one)."""
        if self.type == "N":
            return True
        codes = list(self.exact) + [c for r in self.ranges for c in r[:2]]
        return bool(codes) and all(INT.match(c) for c in codes)


def normalise_code(code: Any, width: int | None, type_: str) -> str | None:
    """Canonical string form of a code: ``None`` for blank; ``C`` codes zero-padded to ``width``
    (see :attr:`Variable.width`; ``None`` = no padding); ``N`` codes as plain integers."""
    if code is None:
        return None
    if isinstance(code, float):
        if code != code:  # NaN
            return None
        if code.is_integer():
            code = int(code)
    text = str(code).strip()
    if not text or BLANK.match(text):
        return None
    if type_ == "C" and width and INT.match(text) and not text.startswith("-"):
        return text.zfill(width)
    if type_ == "N" and INT.match(text):
        return str(int(text))
    return text


class PumsDictionary:
    """A parsed PUMS data dictionary of one year. Load with :meth:`load`."""

    def __init__(self, variables: dict[str, Variable], year: int, path: Path | None = None):
        self.variables = variables
        self.year = year
        self.path = path

    # ---- loading -------------------------------------------------------------------------------
    @classmethod
    def load(cls, path_or_year: str | int | Path, data_dir: str | Path | None = None) -> PumsDictionary:
        """Load from a CSV path, or a year (``2018``) resolved in the data directory.

        The year comes from the dictionary's own ``SERIALNO`` codes (``2018GQ0000001``).
        """
        if isinstance(path_or_year, int) or (isinstance(path_or_year, str) and path_or_year.isdigit()):
            path = dictionary_path(int(path_or_year), data_dir)
        else:
            path = Path(path_or_year)
        if not path.is_file():
            raise UserError(f"PUMS dictionary not found: {path}")
        return cls.parse(path.read_text(encoding="utf-8-sig", errors="replace"), path)

    @classmethod
    def parse(cls, text: str, path: Path | None = None) -> PumsDictionary:
        where = str(path) if path else "dictionary"
        variables: dict[str, Variable] = {}
        current: Variable | None = None
        skipping = False
        for lineno, row in enumerate(csv.reader(text.splitlines()), start=1):
            if not row or not row[0].strip():
                continue
            kind = row[0].strip().upper()
            if kind not in ("NAME", "VAL") or len(row) < 5:
                raise UserError(f"{where}:{lineno}: not a PUMS dictionary row (want NAME,... or VAL,...)")
            name = canonical_name(row[1])
            try:
                length = int(row[3])
            except ValueError:
                raise UserError(f"{where}:{lineno}: length {row[3]!r} of {row[1]} is not a number") from None
            if kind == "NAME":
                skipping = name in variables
                if not skipping:
                    current = Variable(name, row[2].strip().upper(), length, row[4].strip())
                    variables[name] = current
                continue
            if skipping:
                continue
            if current is None or current.name != name or len(row) < 7:
                raise UserError(f"{where}:{lineno}: VAL row for {row[1]} outside its NAME block")
            lo, hi, label = row[4].strip(), row[5].strip(), row[6].strip()
            if BLANK.match(lo):
                current.blank_label = label
            elif lo == hi:
                current.exact[lo] = label
            else:
                current.ranges.append((lo, hi, label))
        for v in variables.values():  # store exact codes in canonical form
            v.exact = {normalise_code(c, v.width, v.type) or c: lab for c, lab in v.exact.items()}
        if not variables:
            raise UserError(f"{where}: no variables found (is this a PUMS data dictionary CSV?)")
        year = _year_of(variables)
        if year is None:
            raise UserError(f"{where}: cannot tell the dictionary's year (no SERIALNO codes)")
        return cls(variables, year, path)

    # ---- lookups -------------------------------------------------------------------------------
    def __contains__(self, var: str) -> bool:
        return canonical_name(var) in self.variables

    def variable(self, var: str) -> Variable | None:
        """The :class:`Variable` for ``var`` (any spelling in :data:`columns.RENAMES`), or ``None``."""
        return self.variables.get(canonical_name(var))

    def description(self, var: str) -> str | None:
        v = self.variable(var)
        return v.description if v else None

    def normalise(self, var: str, code: Any) -> str | None:
        """The canonical string form of ``code`` for ``var`` (see :func:`normalise_code`)."""
        v = self.variable(var)
        if v is None:
            return normalise_code(code, None, "N")
        return normalise_code(code, v.width, v.type)

    def label(self, var: str, code: Any) -> str | None:
        """Label of ``code`` for ``var``; a blank/None code gives the N/A label; ``None`` if undecodable."""
        v = self.variable(var)
        if v is None:
            return None
        norm = normalise_code(code, v.width, v.type)
        if norm is None:
            return v.blank_label
        if norm in v.exact:
            return v.exact[norm]
        for lo, hi, label in v.ranges:
            if _in_range(norm, lo, hi):
                return label
        return None

    def undecodable(self, var: str, codes: Iterable[Any]) -> list[str]:
        """The distinct codes (canonical form, sorted) that this dictionary cannot decode for ``var``.

        Blank codes count as undecodable only when the variable has no N/A category.
        """
        bad: set[str] = set()
        for code in set(codes):
            if self.label(var, code) is None:
                bad.add(self.normalise(var, code) or "<blank>")
        return sorted(bad)

    def find_code(self, var: str, label_prefix: str) -> str | None:
        """The first code of ``var`` whose label starts with ``label_prefix`` (case-insensitive)."""
        v = self.variable(var)
        if v is None:
            return None
        for code, label in v.exact.items():
            if label.lower().startswith(label_prefix.lower()):
                return code
        return None


def _in_range(code: str, lo: str, hi: str) -> bool:
    if INT.match(code) and INT.match(lo) and INT.match(hi):
        return int(lo) <= int(code) <= int(hi)
    if len(code) == len(lo) == len(hi):
        return lo <= code <= hi
    return False


def _year_of(variables: dict[str, Variable]) -> int | None:
    serial = variables.get("SERIALNO")
    if serial is None:
        return None
    for code in list(serial.exact) + [r[0] for r in serial.ranges]:
        if code[:4].isdigit():
            return int(code[:4])
    return None
