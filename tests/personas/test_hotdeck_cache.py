"""On-disk cache of hot-deck cell indexes and column ranges (personas.hotdeck)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from persona_testbed.core import settings
from persona_testbed.personas import hotdeck
from persona_testbed.personas.hotdeck import (
    _CellIndex,
    cache_token,
    derive_cache_token,
    pick_with_backoff,
    set_cache_token,
)
from persona_testbed.personas.impute import impute_ancestry

LEVELS = [["a", "b", "c"], ["a", "b"], ["a"], []]


def _donors(n: int = 4000, seed: int = 0) -> pl.DataFrame:
    g = np.random.default_rng(seed)
    return pl.DataFrame(
        {
            "a": g.integers(0, 6, n),
            "b": g.integers(0, 4, n),
            "c": g.random(n) < 0.3,
            "PWGTP": np.where(g.random(n) < 0.1, 0, g.integers(1, 200, n)),
            "s": g.choice(["x", "y", "z"], n),
        }
    )


def _recipients(n: int = 500, seed: int = 1) -> tuple[pl.DataFrame, np.ndarray]:
    g = np.random.default_rng(seed)
    rec = pl.DataFrame(
        {
            "a": g.integers(0, 8, n),
            "b": g.integers(0, 5, n),
            "c": g.random(n) < 0.5,
            "s": g.choice(["x", "y", "w"], n),
        }
    )
    rec = rec.with_columns(a=pl.when(pl.int_range(pl.len()) % 17 == 0).then(None).otherwise(pl.col("a")))
    return rec, g.random(n)


def _cell_files() -> list:
    return sorted((settings.cache_dir() / "personas").glob("cells-*.npy"))


@pytest.fixture(autouse=True)
def _fresh_memo():
    hotdeck._DONOR_MEMO.clear()
    yield
    hotdeck._DONOR_MEMO.clear()


def _pick(donors: pl.DataFrame, rec: pl.DataFrame, u: np.ndarray, levels=LEVELS):  # type: ignore[no-untyped-def]
    hotdeck._DONOR_MEMO.clear()
    return pick_with_backoff(rec, donors, levels, u, "PWGTP")


def test_cached_picks_equal_uncached_and_reload_from_disk(monkeypatch):
    rec, u = _recipients()
    plain = _donors()
    want_rows, want_level = _pick(plain, rec, u)
    assert _cell_files() == []  # no token: nothing on disk
    tok = _donors()
    set_cache_token(tok, "donors-test-1")
    rows, level = _pick(tok, rec, u)
    assert np.array_equal(rows, want_rows) and np.array_equal(level, want_level)
    files = _cell_files()
    assert len(files) >= 2 and list((settings.cache_dir() / "personas").glob("ranges-*.json"))
    monkeypatch.setattr(_CellIndex, "build", classmethod(lambda cls, *a: pytest.fail("index rebuilt")))
    rows2, level2 = _pick(tok, rec, u)  # served from the memory-mapped files
    assert np.array_equal(rows2, want_rows) and np.array_equal(level2, want_level)
    assert (rows >= 0).all() and set(np.unique(level)) >= {0, 3}  # some back off all the way


@pytest.mark.parametrize("damage", ["garbage", "truncate", "empty", "header"])
def test_corrupt_cell_cache_entry_is_rebuilt(damage):
    rec, u = _recipients()
    want = _pick(_donors(), rec, u)
    tok = _donors()
    set_cache_token(tok, "donors-test-2")
    _pick(tok, rec, u)
    files = _cell_files()
    for f in files:
        data = f.read_bytes()
        if damage == "header":  # valid .npy, wrong magic number
            arr = np.load(f)
            arr[0] = 7
            np.save(f, arr)
        else:
            f.write_bytes(
                {"garbage": b"\x93NUMPY nonsense" * 9, "truncate": data[: len(data) // 2], "empty": b""}[
                    damage
                ]
            )
    got = _pick(tok, rec, u)
    assert all(np.array_equal(x, y) for x, y in zip(got, want))
    for f in files:  # rewritten sound
        assert _CellIndex.load(f, tok.height) is not None


def test_corrupt_ranges_entry_is_recomputed():
    rec, u = _recipients()
    want = _pick(_donors(), rec, u)
    tok = _donors()
    set_cache_token(tok, "donors-test-3")
    _pick(tok, rec, u)
    (r,) = (settings.cache_dir() / "personas").glob("ranges-*.json")
    r.write_text('{"a": [0, 1]}')  # stale: a narrower range would mis-pack keys
    for f in _cell_files():
        f.unlink()
    got = _pick(tok, rec, u)
    assert all(np.array_equal(x, y) for x, y in zip(got, want))
    assert '"b"' in r.read_text()


def test_cache_key_changes_with_the_donor_frame():
    rec, u = _recipients()
    a = _donors()
    set_cache_token(a, "donors-A")
    _pick(a, rec, u)
    first = set(_cell_files())
    b = _donors()
    set_cache_token(b, "donors-B")  # another token: other entries
    _pick(b, rec, u)
    second = set(_cell_files())
    assert first < second and len(second) == 2 * len(first)
    c = _donors(n=3999, seed=7)  # same token, other content (height, values): no stale hit
    set_cache_token(c, "donors-A")
    rows, _ = _pick(c, rec, u)
    plain_rows, _ = _pick(_donors(n=3999, seed=7), rec, u)
    assert np.array_equal(rows, plain_rows)
    assert len(set(_cell_files())) == 3 * len(first)
    d = _donors().with_columns(pl.col("PWGTP").cast(pl.Int32))  # same token and height, other schema
    set_cache_token(d, "donors-A")
    _pick(d, rec, u)
    assert len(set(_cell_files())) == 4 * len(first)


def test_string_keys_are_not_written_but_pick_the_same():
    rec, u = _recipients()
    levels = [["s", "a"], ["s"], []]
    want = _pick(_donors(), rec, u, levels)
    tok = _donors()
    set_cache_token(tok, "donors-test-4")
    got = _pick(tok, rec, u, levels)
    assert all(np.array_equal(x, y) for x, y in zip(got, want))
    assert len(_cell_files()) == 1  # only the integer-keyed [] level


def test_tokens_follow_the_frame_not_its_id():
    a = _donors()
    set_cache_token(a, "t")
    assert cache_token(a) == "t" and cache_token(_donors()) is None
    child = a.filter(pl.col("a") > 2)
    derive_cache_token(a, child, "filtered")
    assert cache_token(child) == "t/filtered"
    derive_cache_token(_donors(), child.clone(), "x")  # parent without a token: nothing to derive


def test_ancestry_donors_cache_and_match():
    g = np.random.default_rng(3)
    n = 600
    donors = pl.DataFrame(
        {
            "SERIALNO": [f"2018HU{i:07d}" for i in range(n)],
            "SPORDER": np.ones(n, dtype=np.int64),
            "STATE": g.choice(["10", "50"], n),
            "PWGTP": g.integers(1, 90, n),
            "AGEP": g.integers(0, 90, n),
            "SEX": g.choice(["1", "2"], n),
            "RAC1P": g.choice(["1", "2", "6"], n),
            "HISP": g.choice(["01", "02"], n),
            "CIT": g.choice(["1", "4", "5"], n),
            "SCHL": g.choice(["16", "21"], n),
            "DIS": g.choice(["1", "2"], n),
            "HHL": g.choice(["1", "2"], n),
            "ANC1P": g.choice(["032", "000", "050", None], n),
        }
    )
    rec = donors.sample(50, seed=1).drop("ANC1P").with_columns(_state=pl.col("STATE"))
    keys = np.arange(50)
    want, _ = impute_ancestry(rec, donors, 5, keys, "acs2018")
    tok = donors.clone()
    set_cache_token(tok, "donors-ancestry-test")
    got, _ = impute_ancestry(rec, tok, 5, keys, "acs2018")
    assert got.equals(want)
    assert _cell_files()  # the filtered ancestry donors inherited a token
    hotdeck._DONOR_MEMO.clear()
    assert impute_ancestry(rec, tok, 5, keys, "acs2018")[0].equals(want)
