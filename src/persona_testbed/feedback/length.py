"""Length policy for the chosen answer: never longer (in characters) than the rejected one.

The revision is asked for up to ``max_attempts`` times; each retry tells the model how long its previous
revision was and the limit (and uses a new ``sample_index``). If every attempt is too long, the shortest
attempt is truncated to the limit: at the last sentence end (``. ! ?``) within the limit, else at the last
whitespace, else hard at the limit. The pair records ``revision_attempts`` and ``length_action``
(``ok``: first attempt fit; ``retried``: a later attempt fit; ``truncated``).
"""

from __future__ import annotations

import re

DEFAULT_MAX_ATTEMPTS = 3

_SENTENCE_END = re.compile(r"[.!?](?=\s|$)")


def truncate_to(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters at a sentence end, a word boundary, or hard."""
    text = text.strip()
    if len(text) <= limit:
        return text
    head = text[:limit]
    ends = [m.end() for m in _SENTENCE_END.finditer(text) if m.end() <= limit]
    if ends:
        return text[:ends[-1]].strip()
    if text[limit].isspace():  # the cut falls between words
        return head.rstrip()
    space = max(head.rfind(" "), head.rfind("\n"))
    return (head[:space] if space > 0 else head).rstrip()
