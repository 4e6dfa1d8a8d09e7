"""Diversity figures against independent oracles (hand counts, CountVectorizer, numpy TF-IDF + scipy)."""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.distance import pdist

sys.path.insert(0, str(Path(__file__).parent))
from test_enrich_support import procedural_persona  # noqa: E402

from persona_testbed.personas.diversity import (
    IDIOSYNCRATIC_CATEGORIES,
    distinct_n,
    diversity_report,
    mean_pairwise_tfidf_distance,
    near_duplicates,
    pick_categories,
)
from persona_testbed.personas.record import FieldValue  # noqa: E402

CORPUS = [
    "She bakes sourdough at dawn and hums old hymns.",
    "He restores vintage radios, and hums while he solders.",
    "She runs at dawn; she bakes on Sundays.",
    "Collects maps. Restores radios. Bakes bread.",
]


def test_distinct_n_by_hand():
    texts = ["a b a", "b a c"]
    assert distinct_n(texts, 1) == pytest.approx(3 / 6)
    assert distinct_n(texts, 2) == pytest.approx(3 / 4)
    assert distinct_n(texts, 3) == pytest.approx(2 / 2)
    assert distinct_n(["one"], 2) is None


@pytest.mark.parametrize("n", [1, 2, 3])
def test_distinct_n_matches_countvectorizer(n):
    from sklearn.feature_extraction.text import CountVectorizer

    x = CountVectorizer(ngram_range=(n, n), token_pattern=r"[a-z0-9']+", lowercase=True).fit_transform(CORPUS)
    assert distinct_n(CORPUS, n) == pytest.approx(x.shape[1] / x.sum())


def test_tfidf_distance_matches_numpy_oracle():
    docs = [re.findall(r"[a-z0-9']+", t.lower()) for t in CORPUS]
    vocab = sorted({w for d in docs for w in d})
    tf = np.array([[Counter(d)[w] for w in vocab] for d in docs], dtype=float)
    df = (tf > 0).sum(axis=0)
    idf = np.log((1 + len(docs)) / (1 + df)) + 1.0  # smooth idf, as documented for TfidfVectorizer
    x = tf * idf
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    assert mean_pairwise_tfidf_distance(CORPUS) == pytest.approx(float(np.mean(pdist(x, "cosine"))))
    assert mean_pairwise_tfidf_distance(["same words here"] * 3) == pytest.approx(0.0, abs=1e-12)
    assert mean_pairwise_tfidf_distance(["alone"]) is None


def test_pick_categories_seeded_distinct_and_spread():
    a = pick_categories(7, "p-1", 3)
    assert a == pick_categories(7, "p-1", 3) and len(set(a)) == 3
    assert set(a) <= set(IDIOSYNCRATIC_CATEGORIES)
    picks = {tuple(pick_categories(7, f"p-{i}", 3)) for i in range(50)}
    assert len(picks) > 40
    assert len(IDIOSYNCRATIC_CATEGORIES) >= 30 and len(set(IDIOSYNCRATIC_CATEGORIES)) == len(
        IDIOSYNCRATIC_CATEGORIES
    )
    with pytest.raises(ValueError):
        pick_categories(0, "p", len(IDIOSYNCRATIC_CATEGORIES) + 1)


def _with_prose(pid, serialno, text):
    p = procedural_persona(pid, serialno)
    fields = dict(p.fields)
    fields["lifestyle"] = FieldValue(value=text, provenance="llm", detail={"model": "m", "call_id": "c"})
    return p.model_copy(update={"fields": fields})


def test_diversity_report_counts_only_llm_fields():
    ps = [_with_prose(f"p-{i}", f"S{i}", t) for i, t in enumerate(CORPUS)]
    rep = diversity_report(ps)
    assert rep["personas"] == 4 and list(rep["per_field"]) == ["lifestyle"]
    assert rep["overall"]["distinct_2"] == pytest.approx(distinct_n(CORPUS, 2))
    assert rep["overall"]["mean_pairwise_tfidf_distance"] == pytest.approx(
        mean_pairwise_tfidf_distance(CORPUS)
    )
    assert diversity_report([procedural_persona("p-x")])["personas"] == 0


def test_near_duplicates_need_same_record_and_similar_text():
    long = " ".join(CORPUS[:3])
    ps = [
        _with_prose("p-a", "S1", long),
        _with_prose("p-b", "S1", long + " Indeed."),
        _with_prose("p-c", "S1", CORPUS[3]),
        _with_prose("p-d", "S2", long),
    ]
    dups = near_duplicates(ps, threshold=0.9)
    assert [(d["a"], d["b"]) for d in dups] == [("p-a", "p-b")]
    assert near_duplicates(ps, threshold=1.01) == []
