"""Cheap filters: question mark, word count, exact and near duplicates (brute-force oracle)."""

from __future__ import annotations

import itertools

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

from persona_testbed.prompts.build import make_prompts
from persona_testbed.prompts.filters import (
    apply_exact_duplicates,
    apply_min_words,
    apply_near_duplicates,
    apply_question_mark,
    normalise,
    script_of,
    similarity_neighbours,
    word_count,
)
from persona_testbed.prompts.stats import prompt_stats


def test_question_mark_and_min_words():
    ps = make_prompts(
        [(1, "Is this a question with words?"), (2, "No question here at all"), (3, "Too short?")]
    )
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
    texts = [
        "What do you think about abortion?",
        "what do you think about ABORTION ?!",
        "Should the death penalty be abolished?",
        "What do you think about abortion rights today?",
        "Is God real?",
        "Is God real",
    ]
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
    x = (
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, token_pattern=r"(?u)\b\w+\b")
        .fit_transform([normalise(t) for t in texts])
        .toarray()
    )
    sims = x @ x.T
    for i, j in itertools.combinations(range(len(texts)), 2):
        expected = sims[i, j] >= threshold - 1e-6 or normalise(texts[i]) == normalise(texts[j])
        assert (i in [a for a, _ in got[j]]) == expected, (i, j, sims[i, j])


def test_unicode_question_marks_pass():
    texts = [
        "هل تعتقد أن عقوبة الإعدام يجب أن تُلغى؟",
        "你认为死刑应该被废除吗？",
        "Πρέπει να καταργηθεί η θανατική ποινή\u037e",
        "¿Debería abolirse la pena de muerte",
        "A statement with no question mark at all.",
    ]
    ps = make_prompts(list(enumerate(texts, 1)))
    apply_question_mark(ps)
    assert [p.verdicts["question_mark"].verdict for p in ps] == ["pass", "pass", "pass", "pass", "fail"]


def test_word_count_unicode_rule():
    assert word_count("Is it ok - really?") == 5  # whitespace words, as before (PRISM counts unchanged)
    assert word_count("你认为死刑应该被废除吗？") == 11  # one word per Han character, punctuation not
    assert word_count("你好吗？") == 3
    assert word_count("我觉得AI怎么样？") == 7  # embedded Latin run is one word
    assert word_count("死刑は廃止されるべき？") == 10  # Han + Hiragana
    assert word_count("Что вы думаете о смертной казни?") == 6
    ps = make_prompts([(1, "你认为死刑应该被废除吗？"), (2, "你好吗？")])
    apply_min_words(ps, 5)
    assert [p.verdicts["min_words"].verdict for p in ps] == ["pass", "fail"]


def test_prompt_stats_funnel_per_script():
    assert [
        script_of(t) for t in ["Is God real?", "你好吗？", "死刑は廃止されるべき？", "هل الله موجود؟", "?!"]
    ] == ["Latin", "Han", "Japanese", "Arabic", "None"]
    ps = make_prompts(
        list(
            enumerate(
                [
                    "Is God real, do you think?",
                    "No question here at all",
                    "Why?",
                    "你认为死刑应该被废除吗？",
                    "你好吗？",
                ],
                1,
            )
        )
    )
    apply_question_mark(ps)
    apply_min_words([p for p in ps if p.verdicts["question_mark"].passed], 5)
    for p in ps:
        p.kept = all(v.passed for v in p.verdicts.values())
    rows = {r["script"]: r for r in prompt_stats(ps)["scripts"]}
    assert rows["Latin"] == {
        "script": "Latin",
        "prompts": 3,
        "passed": {"question_mark": 2, "min_words": 1},
        "kept": 1,
    }
    assert rows["Han"] == {
        "script": "Han",
        "prompts": 2,
        "passed": {"question_mark": 2, "min_words": 1},
        "kept": 1,
    }
