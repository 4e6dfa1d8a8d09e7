"""Length policy for the chosen answer: about as long as the rejected one, in words (a two-sided band).

A length difference would give the label away ("pick the shorter" would predict it), so the revision must
have between ``low`` and ``high`` times the rejected answer's words (default 0.85-1.15, ``LengthBand``).
It is asked for up to ``max_revision_attempts`` times; each retry tells the model how many words its
previous revision had and the target (and uses a new ``sample_index``). If no attempt lands in the band, an
attempt that is too long is cut back at the sentence end inside the band nearest the rejected answer's word
count (never mid-sentence; ``trimmed``); else the attempt nearest the band is kept whole and the pair is
flagged ``length_out_of_band``.
``length_action``: ``ok`` (first attempt fit), ``retried`` (a later one fit), ``trimmed``, ``out_of_band``;
files written before the band hold ``truncated`` (cut to the old character limit).

Words are whitespace-separated runs, except that every CJK ideograph, kana or hangul syllable counts as one
word (those scripts do not separate words with spaces).
"""

from __future__ import annotations

import math
import re

from pydantic import BaseModel

from ..core.errors import UserError

DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_LOW = 0.85
DEFAULT_HIGH = 1.15

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
_WORD = re.compile(f"[{_CJK}]|[^\\s{_CJK}]+")
_SENTENCE_END = re.compile(r"[.!?。！？][\"'”’)\]]*(?=\s|$)")  # closing quotes / brackets stay with it


def count_words(text: str) -> int:
    """Words in ``text`` (whitespace-separated; each CJK character counts as one)."""
    return len(_WORD.findall(text))


def check_band(low: float, high: float) -> None:
    """``UserError`` unless ``0 < low <= high`` (the CLI's ``--length-band-low/--length-band-high``)."""
    if not (math.isfinite(low) and math.isfinite(high)) or low <= 0 or high <= 0:
        raise UserError(
            f"length band {low:g}-{high:g}: both ends must be positive numbers "
            "(e.g. --length-band-low 0.85 --length-band-high 1.15)"
        )
    if low > high:
        raise UserError(f"length band {low:g}-{high:g}: the low end is above the high end")


class LengthBand(BaseModel):
    """Chosen words within ``low``-``high`` times the rejected answer's words."""

    low: float = DEFAULT_LOW
    high: float = DEFAULT_HIGH

    def bounds(self, reference_words: int) -> tuple[int, int]:
        """The whole word counts inside the band around ``reference_words`` (at least one count)."""
        n = max(1, reference_words)
        lo = max(1, math.ceil(self.low * n - 1e-9))
        hi = math.floor(self.high * n + 1e-9)
        if hi < lo:  # a narrow band around a short answer holds no whole count: take the nearest one
            lo = hi = max(1, round((self.low + self.high) / 2 * n))
        return lo, hi


def band_distance(words: int, bounds: tuple[int, int]) -> int:
    """How many words ``words`` lies outside ``bounds`` (0 inside)."""
    lo, hi = bounds
    return lo - words if words < lo else words - hi if words > hi else 0


def trim_to_band(text: str, bounds: tuple[int, int], target: float | None = None) -> str | None:
    """``text`` cut at the sentence end that leaves ``lo``-``hi`` words, nearest ``target`` words (default: the
    middle of the bounds), or None when no sentence end does (the text is never cut inside a sentence)."""
    lo, hi = bounds
    target = (lo + hi) / 2 if target is None else target
    best: tuple[float, str] | None = None
    for m in _SENTENCE_END.finditer(text):
        head = text[: m.end()].rstrip()
        n = count_words(head)
        if n > hi:
            break
        if n >= lo and (best is None or abs(n - target) <= best[0]):
            best = (abs(n - target), head)
    return best[1] if best else None
