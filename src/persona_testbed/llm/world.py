"""The scripted world's specification: ``scripted:p=0.6,fail=0.1,...`` parsed into a ``WorldSpec``.

Kept apart from the backend (``llm.backends.scripted``) so that ``llm.models.parse_model`` can reject a
malformed world before anything is created. The keys and what they mean are in the backend's docstring.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from ..core.errors import UserError

PREFIX = "scripted"
MODES = ("persona", "cot", "summary")
SHOT_MODE = "fewshot"  # the bench's few-shot modes; only when named (p.fewshot=…), else as persona
EXAMPLES_TITLE = "Answers this user preferred to earlier questions:"  # = bench.templates.EXAMPLES_TITLE
_NAME = re.compile(r"^[a-z][a-z _-]*$")


@dataclass(frozen=True)
class WorldSpec:
    """The parameters of a scripted world (see the module docstring)."""

    p: dict[str, float] = field(default_factory=lambda: {m: 0.6 for m in MODES})
    fail: dict[str, float] = field(default_factory=lambda: {m: 0.0 for m in MODES})
    judge_fail: float = 0.0
    uses: tuple[str, ...] = ("age", "sex")
    c: float = 0.0
    gap: tuple[str, str, float] | None = None
    leak: float = 0.0
    world: int = 0

    def p_for(self, mode: str, profile: dict[str, str]) -> float:
        """Personalisation probability in ``mode`` for a persona shown with ``profile``."""
        mode = self.mode_of(mode)
        if mode not in self.p:
            return 0.0
        q = self.p[mode]
        if self.gap is not None and profile.get(self.gap[0]) == self.gap[1]:
            q += self.gap[2]
        return min(1.0, max(0.0, q))

    def mode_of(self, mode: str, table: str = "p") -> str:
        """``fewshot`` reads ``persona``'s entry of ``table`` (p or fail) unless ``p.fewshot`` / ``fail.fewshot``."""
        return "persona" if mode == SHOT_MODE and mode not in getattr(self, table) else mode

    def marker(self, profile: dict[str, str]) -> str:
        """The persona's marker from its ``uses`` values (a missing one gives a different marker)."""
        key = "|".join(f"{a}={profile.get(a, '?')}" for a in self.uses)
        return "<<persona " + hashlib.sha256(f"{self.world}|{key}".encode()).hexdigest()[:10] + ">>"


def _prob(spec: str, key: str, value: str) -> float:
    try:
        x = float(value)
    except ValueError:
        raise UserError(f"scripted world {spec!r}: {key}={value!r} is not a number") from None
    if not 0.0 <= x <= 1.0:
        raise UserError(f"scripted world {spec!r}: {key}={value} must lie in [0, 1]")
    return x


def _attr(spec: str, name: str) -> str:
    a = name.strip().replace("_", " ").lower()
    if not _NAME.match(a):
        raise UserError(f"scripted world {spec!r}: {name!r} is not a persona field name")
    return a


def parse_world(model: str) -> WorldSpec:
    """``scripted`` or ``scripted:key=value,...`` -> ``WorldSpec``; ``UserError`` naming the bad part."""
    s = model.strip()
    if s != PREFIX and not s.startswith(PREFIX + ":"):
        raise UserError(f"not a scripted world: {model!r}")
    body = s[len(PREFIX) + 1 :] if s != PREFIX else ""
    p = {m: 0.6 for m in MODES}
    fail = {m: 0.0 for m in MODES}
    kw: dict[str, Any] = {}
    for part in filter(None, (x.strip() for x in body.split(","))):
        key, eq, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if not eq or not value:
            raise UserError(f"scripted world {model!r}: expected key=value, got {part!r}")
        base, _, mode = key.partition(".")
        if base in ("p", "fail"):
            target = p if base == "p" else fail
            if mode and mode not in MODES and mode != SHOT_MODE:
                raise UserError(
                    f"scripted world {model!r}: unknown mode {mode!r} in {key!r} (modes: {', '.join(MODES)})"
                )
            x = _prob(model, key, value)
            for m in [mode] if mode else MODES:
                target[m] = x
        elif key in ("judge_fail", "c", "leak"):
            kw[key] = _prob(model, key, value)
        elif key == "uses":
            kw["uses"] = () if value == "none" else tuple(_attr(model, a) for a in value.split("+"))
        elif key == "world":
            try:
                kw["world"] = int(value)
            except ValueError:
                raise UserError(f"scripted world {model!r}: world={value!r} is not an integer") from None
        elif key == "gap":
            where, colon, delta = value.rpartition(":")
            attr, eq2, val = where.partition("=")
            try:
                d = float(delta)
            except ValueError:
                d = float("nan")
            if not colon or not eq2 or not val.strip() or not -1.0 <= d <= 1.0:
                raise UserError(
                    f"scripted world {model!r}: gap must be ATTR=VALUE:DELTA with DELTA in "
                    f"[-1, 1], got {value!r}"
                )
            kw["gap"] = (_attr(model, attr), val.strip(), d)
        else:
            raise UserError(
                f"scripted world {model!r}: unknown key {key!r} (keys: p, p.MODE, fail, fail.MODE, "
                "judge_fail, uses, c, gap, leak, world)"
            )
    return WorldSpec(p=p, fail=fail, **kw)


def uniform(*parts: object) -> float:
    """A uniform draw in [0, 1) from a hash of ``parts``."""
    h = hashlib.sha256("\x1f".join(str(x) for x in parts).encode()).digest()
    return int.from_bytes(h[:8], "little") / 2.0**64


__all__ = ["EXAMPLES_TITLE", "MODES", "PREFIX", "SHOT_MODE", "WorldSpec", "parse_world", "uniform"]
