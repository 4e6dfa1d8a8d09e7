"""The GSS pool parsed once and cached on disk (personas.survey.load_pool)."""

from __future__ import annotations

import pytest
from test_survey import LONG_HEADER, _long_file, _row

from persona_testbed.core import settings
from persona_testbed.personas import survey
from persona_testbed.personas.survey import load_pool


@pytest.fixture(autouse=True)
def _fresh():
    load_pool.cache_clear()
    yield
    load_pool.cache_clear()


def _cached() -> list:
    return sorted((settings.cache_dir() / "personas").glob("gss-pool-*.parquet"))


def test_pool_from_cache_equals_parsed(tmp_path, monkeypatch):
    root = str(_long_file(tmp_path))
    first = load_pool(root, 2024)
    assert len(_cached()) == 1
    load_pool.cache_clear()
    monkeypatch.setattr(survey, "_build_pool", lambda *a: pytest.fail("GSS CSV parsed again"))
    again = load_pool(root, 2024)
    assert again.frame.equals(first.frame) and again.label == first.label == "GSS 2022-2022"
    assert again.levels == first.levels and again.sha256_file == first.sha256_file


@pytest.mark.parametrize("damage", [b"", b"PAR1 not parquet", None])
def test_corrupt_pool_cache_is_rebuilt(tmp_path, damage):
    root = str(_long_file(tmp_path))
    want = load_pool(root, 2024)
    (cache,) = _cached()
    if damage is None:  # a readable Parquet without the label: also rebuilt
        want.frame.write_parquet(cache)
    else:
        cache.write_bytes(damage)
    load_pool.cache_clear()
    got = load_pool(root, 2024)
    assert got.frame.equals(want.frame) and got.label == want.label
    load_pool.cache_clear()
    assert load_pool(root, 2024).label == want.label  # rewritten sound


def test_pool_cache_key_follows_file_content_and_year(tmp_path):
    root = _long_file(tmp_path)
    a = load_pool(str(root), 2024)
    csv = root / survey.LONG_FILE
    csv.write_text(
        LONG_HEADER
        + "\n"
        + _row(
            9,
            40,
            "Male",
            "White",
            "Graduate",
            "West",
            "Catholic",
            "Strong Republican",
            "Conservative",
            1.0,
            year=2023,
        )
        + "\n"
    )
    load_pool.cache_clear()
    b = load_pool(str(root), 2024)
    assert (
        b.frame["gss_id"].to_list() == ["9"] and b.label == "GSS 2023-2023" and b.sha256_file != a.sha256_file
    )
    assert len(_cached()) == 2
    c = load_pool(str(root), 2026)  # another census year: another window (2023-2026), another entry
    assert c.frame.equals(b.frame) and c.label == b.label
    assert len(_cached()) == 3
