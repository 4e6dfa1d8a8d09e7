"""Cheap deterministic filters: question mark, word count, exact and near duplicates.

Unicode-aware: the question-mark filter accepts every script's question mark (``QUESTION_MARKS``:
ASCII ``?``, Arabic ``؟``, full-width ``？``, Greek ``;``, Armenian ``՞``, Spanish ``¿`` …), and
``word_count`` counts one word per character in scripts written without spaces between words (Han,
Hiragana, Katakana, Thai, Lao, Khmer, Myanmar; combining marks not counted) and, elsewhere, one word
per whitespace-separated token as before (inside a token of a space-less script, each embedded run of
letters / digits such as "AI" is one more word; its punctuation is not).
``script_of`` names a text's main script (for the per-script counts of ``prompt_stats``).

Each filter takes the prompts still in play and writes a verdict into each one; none of them removes
anything from the list, so every prompt keeps a record of why it was (not) kept.

Near duplicates: texts are lower-cased, punctuation is dropped and whitespace collapsed; a TF-IDF
vector over word 1- and 2-grams (sublinear tf, l2-normalised) is built for each prompt, and a prompt
whose cosine similarity to an EARLIER prompt that is still in play is at least ``threshold``
(default 0.9) fails, naming that prompt. Identical normalised texts have cosine 1.0.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Sequence

import numpy as np

from .record import FilterVerdict, Prompt

MIN_WORDS = 5
NEAR_DUPLICATE_THRESHOLD = 0.9

_PUNCT = re.compile(r"[^\w\s]", re.UNICODE)
_SPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    """Lower-case, punctuation removed, whitespace collapsed."""
    return _SPACE.sub(" ", _PUNCT.sub(" ", text.lower())).strip()


# Question marks of every script that has one (Unicode names "... QUESTION MARK", interrobangs);
# not the mathematical "≟"-style symbols or the invisible TAG QUESTION MARK.
QUESTION_MARKS = frozenset(
    "?"  # QUESTION MARK
    "\u00bf"  # ¿ INVERTED QUESTION MARK (Spanish)
    "\u037e"  # ; GREEK QUESTION MARK
    "\u055e"  # ՞ ARMENIAN QUESTION MARK
    "\u061f"  # ؟ ARABIC QUESTION MARK (Arabic, Persian, Urdu)
    "\u1367"  # ፧ ETHIOPIC QUESTION MARK
    "\u1945"  # ᥅ LIMBU QUESTION MARK
    "\u203d\u2e18"  # ‽ ⸘ interrobangs
    "\u2047\u2048\u2049"  # ⁇ ⁈ ⁉
    "\u2753\u2754"  # ❓ ❔ ornaments
    "\u2cfa\u2cfb"  # Old Nubian question marks
    "\u2e2e\u2e54"  # ⸮ reversed, medieval
    "\ua60f\ua6f7"  # Vai, Bamum
    "\ufe16\ufe56\uff1f"  # vertical, small, FULLWIDTH QUESTION MARK (Chinese, Japanese)
    "\U00011143"  # Chakma
    "\U0001e95f"  # Adlam initial
)

# Scripts written without spaces between words: each character counts as one word.
_NO_SPACE_RANGES: tuple[tuple[int, int], ...] = (
    (0x0E00, 0x0EFF),  # Thai, Lao
    (0x1000, 0x109F),  # Myanmar
    (0x1780, 0x17FF),  # Khmer
    (0x2E80, 0x2FDF),  # CJK radicals
    (0x3005, 0x3007),  # 々 〆 〇
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x31F0, 0x31FF),  # Katakana phonetic extensions
    (0x3400, 0x4DBF),  # CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0xFF66, 0xFF9F),  # half-width Katakana
    (0x20000, 0x3134F),  # CJK extensions B-G
)


def _no_space(ch: str) -> bool:
    o = ord(ch)
    return any(lo <= o <= hi for lo, hi in _NO_SPACE_RANGES)


def word_count(text: str) -> int:
    """Words of ``text`` in any script (see the module docstring for the rule)."""
    n = 0
    for token in text.split():
        if not any(map(_no_space, token)):
            n += 1  # a whitespace-separated word, as before
            continue
        in_run = False  # inside a run of other-script characters that holds a letter / digit ("AI")
        for ch in token:
            if _no_space(ch):
                in_run = False
                n += not unicodedata.category(ch).startswith("M")
            elif ch.isalnum():
                n += not in_run
                in_run = True
    return n


_SCRIPT_ALIASES = {"CJK": "Han", "FULLWIDTH": "Latin", "HALFWIDTH": "Katakana"}


def _char_script(ch: str) -> str | None:
    if not ch.isalpha():
        return None
    name = unicodedata.name(ch, "")
    if not name:
        return None
    first = name.split(" ", 1)[0]
    if first == "HALFWIDTH" and "HANGUL" in name:
        return "Hangul"
    return _SCRIPT_ALIASES.get(first, first.title())


def script_of(text: str) -> str:
    """The script of most of ``text``'s letters (Unicode name prefix: Latin, Han, Arabic, Cyrillic, …).

    Hiragana / Katakana with Han count as "Japanese" (Japanese text mixes them); no letters: "None".
    """
    counts = Counter(s for s in map(_char_script, text) if s is not None)
    if not counts:
        return "None"
    if (counts["Hiragana"] or counts["Katakana"]) and counts["Hiragana"] + counts["Katakana"] + counts[
        "Han"
    ] >= max(counts.values()):
        return "Japanese"
    return counts.most_common(1)[0][0]


def has_question_mark(text: str) -> bool:
    return any(ch in QUESTION_MARKS for ch in text)


def apply_question_mark(prompts: Sequence[Prompt]) -> None:
    for p in prompts:
        ok = has_question_mark(p.text)
        p.verdicts["question_mark"] = FilterVerdict(
            verdict="pass" if ok else "fail", reason="contains a question mark" if ok else "no question mark"
        )


def apply_min_words(prompts: Sequence[Prompt], min_words: int = MIN_WORDS) -> None:
    for p in prompts:
        n = word_count(p.text)
        ok = n >= min_words
        p.verdicts["min_words"] = FilterVerdict(
            verdict="pass" if ok else "fail",
            reason=f"{n} words ({'>=' if ok else '<'} {min_words})",
            detail={"words": n},
        )


def apply_exact_duplicates(prompts: Sequence[Prompt]) -> None:
    """The first occurrence of a text passes; each later one fails naming the first."""
    first: dict[str, Prompt] = {}
    for p in prompts:
        original = first.get(p.text)
        if original is None:
            first[p.text] = p
            p.verdicts["exact_duplicate"] = FilterVerdict(verdict="pass", reason="first occurrence")
        else:
            p.verdicts["exact_duplicate"] = FilterVerdict(
                verdict="fail",
                reason=f"same text as {original.id} (item {original.source_index})",
                detail={"duplicate_of": original.id},
            )


def similarity_neighbours(
    texts: Sequence[str], threshold: float, chunk: int = 1024
) -> list[list[tuple[int, float]]]:
    """For each text i, the earlier texts j < i with TF-IDF cosine >= threshold (sparse, chunked)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    n = len(texts)
    out: list[list[tuple[int, float]]] = [[] for _ in range(n)]
    normalised = [normalise(t) for t in texts]
    try:
        x = TfidfVectorizer(
            ngram_range=(1, 2), sublinear_tf=True, token_pattern=r"(?u)\b\w+\b", dtype=np.float32
        ).fit_transform(normalised)
    except ValueError:  # empty vocabulary: fall back to identical normalised text
        x = None
    if x is not None:
        xt = x.T.tocsc()
        for start in range(0, n, chunk):
            sims = (x[start : start + chunk] @ xt).tocoo()
            for i, j, s in zip(sims.row, sims.col, sims.data):
                gi = start + int(i)
                if int(j) < gi and s >= threshold - 1e-6:
                    out[gi].append((int(j), float(s)))
    seen: dict[str, int] = {}
    for i, t in enumerate(normalised):  # identical normalised text is a duplicate even without terms
        if t in seen and all(j != seen[t] for j, _ in out[i]):
            out[i].append((seen[t], 1.0))
        seen.setdefault(t, i)
    for lst in out:
        lst.sort()
    return out


def apply_near_duplicates(prompts: Sequence[Prompt], threshold: float = NEAR_DUPLICATE_THRESHOLD) -> None:
    """Greedy in source order: fail a prompt similar (>= threshold) to an earlier one that passed."""
    neighbours = similarity_neighbours([p.text for p in prompts], threshold)
    passed = np.zeros(len(prompts), dtype=bool)
    for i, p in enumerate(prompts):
        hit = next(((j, s) for j, s in neighbours[i] if passed[j]), None)
        if hit is None:
            passed[i] = True
            p.verdicts["near_duplicate"] = FilterVerdict(
                verdict="pass", reason=f"no earlier prompt with cosine >= {threshold}"
            )
        else:
            j, s = hit
            p.verdicts["near_duplicate"] = FilterVerdict(
                verdict="fail",
                reason=f"near-duplicate of {prompts[j].id} (cosine {s:.3f} >= {threshold})",
                detail={"duplicate_of": prompts[j].id, "cosine": round(s, 4)},
            )
