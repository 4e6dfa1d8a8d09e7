"""Intersectional groups: attribute filters from the CLI or a TOML file, validated against the personas.

CLI form: ``--group "sex=Female,race=Black or African American alone"``; a comma only separates filters
when a persona field name and ``=`` follow it, so values may hold commas and apostrophes
("Civilian employed, at work", "Bachelor's degree"). ``a|b`` matches either value; ``age=18..29`` is
an inclusive numeric range. TOML form::

    [groups."Black women"]
    sex = "Female"
    race = "Black or African American alone"

    [groups.graduates]
    education = ["Bachelor's degree", "Master's degree"]
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import UserError
from ..personas.record import PERSONA_FIELDS, Persona

_RANGE = re.compile(r"^\s*(\d+)\s*\.\.\s*(\d+)\s*$")
_SPLIT = re.compile(
    r",\s*(?=(?:" + "|".join(re.escape(f) for f in sorted(PERSONA_FIELDS, key=len, reverse=True)) + r")\s*=)"
)


@dataclass(frozen=True)
class Group:
    """A named conjunction of filters: field -> accepted values (or a numeric range)."""

    name: str
    filters: tuple[tuple[str, tuple[str, ...]], ...]

    def matches(self, p: Persona) -> bool:
        for field, values in self.filters:
            v = p.value(field)
            if len(values) == 1 and (m := _RANGE.match(values[0])):
                try:
                    x = float(v)
                except ValueError:
                    return False
                if not (int(m.group(1)) <= x <= int(m.group(2))):
                    return False
            elif v not in values:
                return False
        return True


def parse_group_spec(spec: str) -> Group:
    """``"sex=Female,race=Asian alone"`` -> Group named by the spec itself."""
    filters = []
    for part in _SPLIT.split(spec.strip()):
        field, eq, value = part.partition("=")
        field = field.strip()
        if not eq or not value.strip():
            raise UserError(f"--group {spec!r}: expected field=value filters separated by commas")
        if field not in PERSONA_FIELDS:
            raise UserError(f"--group {spec!r}: unknown persona attribute {field!r}")
        filters.append((field, tuple(v.strip() for v in value.split("|"))))
    return Group(name=spec.strip(), filters=tuple(filters))


def load_groups_file(path: str | Path) -> list[Group]:
    """Groups from a TOML file with a ``[groups.NAME]`` table per group."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"{p}: cannot read ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{p}: not valid TOML ({exc})") from None
    table = data.get("groups")
    if not isinstance(table, dict) or not table:
        raise UserError(f"{p}: expected [groups.NAME] tables")
    out = []
    for name, filters in table.items():
        if not isinstance(filters, dict) or not filters:
            raise UserError(f"{p}: groups.{name} must be a table of field = value")
        fs = []
        for field, value in filters.items():
            if field not in PERSONA_FIELDS:
                raise UserError(f"{p}: groups.{name}: unknown persona attribute {field!r}")
            values = value if isinstance(value, list) else [value]
            if not values or not all(isinstance(v, (str, int)) for v in values):
                raise UserError(f"{p}: groups.{name}.{field}: values must be strings")
            fs.append((field, tuple(str(v) for v in values)))
        out.append(Group(name=str(name), filters=tuple(fs)))
    return out


def validate_groups(groups: Sequence[Group], personas: Sequence[Persona]) -> dict[str, list[Persona]]:
    """Check every value exists in the persona vocabulary and every group is non-empty; members by group."""
    if not groups:
        raise UserError("no groups given (use --group or --groups FILE)")
    names = [g.name for g in groups]
    if len(set(names)) != len(names):
        raise UserError(f"duplicate group name {next(n for n in names if names.count(n) > 1)!r}")
    vocab = {f: {p.value(f) for p in personas} for f in PERSONA_FIELDS}
    members: dict[str, list[Persona]] = {}
    for g in groups:
        for field, values in g.filters:
            for v in values:
                if len(values) == 1 and _RANGE.match(v):
                    continue
                if v not in vocab[field]:
                    close = difflib.get_close_matches(v, sorted(vocab[field]), n=3)
                    hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
                    raise UserError(f"group {g.name!r}: {field}={v!r} is not a value of any persona{hint}")
        members[g.name] = [p for p in personas if g.matches(p)]
        if not members[g.name]:
            raise UserError(f"group {g.name!r} is empty: no persona matches all its filters")
    return members


__all__ = ["Group", "load_groups_file", "parse_group_spec", "validate_groups"]
