"""The vectorised tag picks and the streamed mapping equal straightforward reference implementations."""

import numpy as np
import polars as pl
import pytest

from persona_testbed.personas.hashrng import uniforms
from persona_testbed.personas.tags import TAG_KINDS, _first_k, draw_tag_arrays, draw_tag_indices, vocabulary


def _reference_tags(seed, keys, ages):
    """The original picks: full stable argsort of the float uniforms, ineligible entries set to 2.0."""
    ages = np.nan_to_num(np.asarray(ages, dtype=float), nan=0.0)
    out = {}
    for kind, (k, _field) in TAG_KINDS.items():
        entries = vocabulary(kind)
        u = uniforms(seed, f"personas.tags.{kind}", keys, len(entries))
        u[ages[:, None] < np.array([e.min_age for e in entries])[None, :]] = 2.0
        order = np.argsort(u, axis=1, kind="stable")[:, :k]
        out[kind] = np.array([e.text for e in entries], dtype=object)[order]
    return out


def test_tag_picks_equal_the_full_sort_reference():
    rng = np.random.default_rng(3)
    keys = np.concatenate([np.arange(500), rng.integers(0, 2**62, 3000)])
    ages = rng.integers(0, 90, len(keys)).astype(float)
    ages[:50] = np.nan
    ages[50:100] = 18  # below every 21+ entry
    ref = _reference_tags(11, keys, ages)
    got = draw_tag_arrays(11, keys, ages, chunk=700)
    idx = draw_tag_indices(11, keys, ages)
    for kind in TAG_KINDS:
        assert np.array_equal(got[kind], ref[kind])
        texts = np.array([e.text for e in vocabulary(kind)], dtype=object)
        assert np.array_equal(texts[idx[kind]], ref[kind])


def test_first_k_breaks_ties_like_a_stable_sort():
    rng = np.random.default_rng(0)
    u = rng.integers(0, 4, size=(400, 9)).astype(np.uint64)  # many ties
    assert np.array_equal(_first_k(u.copy(), 4), np.argsort(u, axis=1, kind="stable")[:, :4])


@pytest.mark.shared_data
def test_streamed_chunks_equal_map_frame_and_reference_tags(mirror, tmp_path, monkeypatch):
    from persona_testbed.census import Filters, sample_persons
    from persona_testbed.personas.build import MappingContext, MapStats, item_keys, iter_map_chunks, map_frame
    from persona_testbed.personas.sample import _open

    monkeypatch.setenv("PERSONA_TESTBED_HOME", str(tmp_path))
    src = _open("acs2024", "DE", mirror)
    ctx = MappingContext(src, 4, mirror, "acs2024")
    draws = sample_persons(src, 260, 4, filters=Filters(adults_only=True), columns=ctx.person_columns())
    whole = map_frame(draws, ctx, MapStats())
    parts = list(iter_map_chunks(draws, ctx, MapStats(), chunk_rows=90))
    assert [p.height for p in parts] == [90, 90, 80]
    assert pl.concat(parts).equals(whole)
    ref = _reference_tags(4, item_keys(draws), draws["AGEP"].fill_null(0).to_numpy())
    for kind, (_k, fname) in TAG_KINDS.items():
        assert whole[f"t:{kind}"].to_list() == [list(r) for r in ref[kind]]
        if fname is not None:
            assert whole[f"v:{fname}"].to_list() == ["; ".join(r) for r in ref[kind]]
            assert set(whole[f"p:{fname}"].to_list()) == {"procedural"}
