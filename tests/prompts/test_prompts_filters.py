"""Cheap filters: question mark, word count, exact and near duplicates (brute-force oracle)."""

from __future__ import annotations

import itertools

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

from persona_testbed.prompts.build import make_prompts
from persona_testbed.prompts.filters import (apply_exact_duplicates, apply_min_words, apply_near_duplicates, apply_question_mark, normalise, similarity_neighbours)


def test_question_mark_and_min_words():
    ps = make_prompts([(1, "Is this a question with words?"), (2, "No question here at all"), (3, "Too short?")])
    apply_question_mark(ps)
    apply_min_words(ps, 5)
    assert [p.verdicts["question_mark"].verdict for p in ps] == ["pass", "fail", "pass"]
    assert [p.verdicts["min_words"].verdict for p in ps] == ["pass", "pass", "fail"]
    assert ps[2].verdicts["min_words"].detail == {"words": 2}


def test_exact_duplicates_keep_first_and_name_it():
    ps = make_prompts([(1, "Same text?"), (2, "Other?"), (3, "Same text?"), (4, "Same text?")])
    assert ps[2].id == ps[0].id + "-dup1" and ps[3].id == ps[0].id + "-dup2"
    apply_exact_duplicates(ps)
    assert [p.verdicts["exact_duplicate"].verdict for p in ps] == ["pass", "pass", "fail", "fail"]
    assert ps[3].verdicts["exact_duplicate"].detail["duplicate_of"] == ps[0].id


def test_near_duplicates_greedy_against_earlier_passing_prompt():
    texts = ["What do you think about abortion?", "what do you think about ABORTION ?!",
             "Should the death penalty be abolished?", "What do you think about abortion rights today?",
             "Is God real?", "Is God real"]
    ps = make_prompts(list(enumerate(texts, 1)))
    apply_near_duplicates(ps, threshold=0.9)
    verdicts = [p.verdicts["near_duplicate"].verdict for p in ps]
    assert verdicts[0] == "pass" and verdicts[1] == "fail" and verdicts[2] == "pass"
    assert verdicts[4] == "pass" and verdicts[5] == "fail"
    assert ps[1].verdicts["near_duplicate"].detail["duplicate_of"] == ps[0].id
    assert ps[5].verdicts["near_duplicate"].detail["cosine"] == 1.0


def test_similarity_neighbours_match_brute_force_cosine():
    rng = np.random.default_rng(0)
    words = "tax god war abortion money family school climate vote gun law health".split()
    texts = [" ".join(rng.choice(words, size=rng.integers(3, 7))) + "?" for _ in range(80)]
    threshold = 0.8
    got = similarity_neighbours(texts, threshold, chunk=7)
    x = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, token_pattern=r"(?u)\b\w+\b").fit_transform(
        [normalise(t) for t in texts]).toarray()
    sims = x @ x.T
    for i, j in itertools.combinations(range(len(texts)), 2):
        expected = sims[i, j] >= threshold - 1e-6 or normalise(texts[i]) == normalise(texts[j])
        assert (i in [a for a, _ in got[j]]) == expected, (i, j, sims[i, j])
