"""Format artefacts: surface features that can tell chosen from rejected without reading for the persona.

A reward model learns a feature that differs between the two sides (the chosen answer has a bullet list,
the rejected one opens with "Sure") before it learns the persona. Each check below is a deterministic test
of one answer; ``feedback stats`` reports, per check, its rate among chosen and among rejected answers and
the share of pairs where exactly one side has it (``differ``).

- ``markdown_list``: a line that starts with ``-``, ``*``, ``+``, ``•`` or ``1.`` / ``1)`` and a space;
- ``heading``: a markdown heading line (``# ...``) or a line that is only bold text (``**Title**``);
- ``bold``: ``**bold**`` or ``__bold__`` inline;
- ``leading_sure``: opens with an assent ("Sure", "Certainly", "Of course", "Absolutely", "Okay");
- ``preamble``: opens by announcing itself ("Here is/Here's the revised answer", "Revised answer:");
- ``quoted``: the whole answer is wrapped in quotes (``"…"``, ``“…”``, ``'…'``, triple quotes);
- ``trailing_whitespace``: a line that ends with spaces or tabs (answers are stripped at both ends, so
  this is inside the text).
"""

from __future__ import annotations

import re
from collections.abc import Callable

_LIST = re.compile(r"^[ \t]*(?:[-*+•]|\d{1,3}[.)])[ \t]+\S", re.MULTILINE)
_HEADING = re.compile(r"^[ \t]*(?:#{1,6}[ \t]+\S|\*\*[^*\n]+\*\*:?[ \t]*$)", re.MULTILINE)
_BOLD = re.compile(r"\*\*[^*\n]+\*\*|__[^_\n]+__")
_SURE = re.compile(r"^(?:sure|certainly|of course|absolutely|okay|ok)\b", re.IGNORECASE)
_PREAMBLE = re.compile(
    r"^(?:here(?:'s| is| are)\b[^.\n]{0,40}\b(?:answer|version|revision|response)|"
    r"(?:revised|rewritten|updated) (?:answer|version|response)\s*:)",
    re.IGNORECASE,
)
_QUOTES = (('"""', '"""'), ('"', '"'), ("“", "”"), ("'", "'"), ("‘", "’"), ("«", "»"))
_TRAILING_WS = re.compile(r"[ \t]+\n")


def _quoted(text: str) -> bool:
    t = text.strip()
    return any(len(t) > len(a) + len(b) and t.startswith(a) and t.endswith(b) for a, b in _QUOTES)


CHECKS: dict[str, Callable[[str], bool]] = {
    "markdown_list": lambda t: bool(_LIST.search(t)),
    "heading": lambda t: bool(_HEADING.search(t)),
    "bold": lambda t: bool(_BOLD.search(t)),
    "leading_sure": lambda t: bool(_SURE.match(t.lstrip())),
    "preamble": lambda t: bool(_PREAMBLE.match(t.lstrip())),
    "quoted": _quoted,
    "trailing_whitespace": lambda t: bool(_TRAILING_WS.search(t)),
}


def format_features(text: str) -> set[str]:
    """The names of the checks ``text`` trips."""
    return {name for name, check in CHECKS.items() if check(text)}
