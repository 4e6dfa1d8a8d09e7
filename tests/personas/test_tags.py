import numpy as np

from persona_testbed.personas.tags import TAG_KINDS, draw_tags, vocabulary


def test_vocabularies_are_large_and_distinct():
    for kind in TAG_KINDS:
        texts = [e.text for e in vocabulary(kind)]
        assert len(texts) >= 40 and len(set(texts)) == len(texts)


def test_picks_distinct_seeded_and_age_appropriate():
    keys = np.arange(2000)
    ages = np.where(keys % 2 == 0, 19, 40)
    tags = draw_tags(7, keys, ages)
    assert tags == draw_tags(7, keys, ages)
    assert tags != draw_tags(8, keys, ages)
    adult_only = {e.text for e in vocabulary("hobbies") if e.min_age}
    for i, t in enumerate(tags):
        for kind, (k, _) in TAG_KINDS.items():
            assert len(t[kind]) == k == len(set(t[kind]))
        if ages[i] < 21:
            assert not adult_only & set(t["hobbies"])
    assert any(adult_only & set(t["hobbies"]) for t in tags[1::2])
