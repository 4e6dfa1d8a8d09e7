import sqlite3
import threading

import pytest

from persona_testbed.core.errors import UserError
from persona_testbed.llm import CallStore, ChatParams, ChatResult, Usage
from persona_testbed.llm.store import (
    MIGRATIONS,
    apply_migrations,
    cache_key,
    connect_readonly,
    is_wal_database,
)


def _result(cid="c1", status="ok", text="hi", **kw):
    return ChatResult(
        call_id=cid,
        model="mock",
        status=status,
        text=text,
        usage=Usage(prompt_tokens=3, completion_tokens=1),
        **kw,
    )


def _record(store, key, result, purpose="t"):
    store.record(
        key=key,
        backend="mock",
        result=result,
        messages=[{"role": "user", "content": "x"}],
        params=ChatParams(),
        schema=None,
        sample_index=0,
        purpose=purpose,
    )


def test_blank_db_gets_all_migrations_and_wal(tmp_path):
    path = tmp_path / "calls.db"
    store = CallStore(path)
    assert store.migrations() == [name for name, _ in MIGRATIONS]
    mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    cols = {r[1] for r in sqlite3.connect(path).execute("PRAGMA table_info(calls)")}
    assert {
        "id",
        "created",
        "cache_key",
        "backend",
        "model",
        "purpose",
        "messages",
        "params",
        "schema",
        "sample_index",
        "response",
        "parsed",
        "logprobs",
        "prompt_tokens",
        "completion_tokens",
        "latency_s",
        "status",
        "error",
        "attempts",
        "reasks",
        "finish_reason",
    } <= cols
    # reopening applies nothing twice
    store.close()
    assert CallStore(path).migrations() == [name for name, _ in MIGRATIONS]


def test_upgrade_from_first_migration_keeps_old_rows(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    assert apply_migrations(conn, MIGRATIONS[:1]) == ["001_create_calls"]
    conn.execute(
        "INSERT INTO calls (id, created, cache_key, backend, model, messages, params, response, status)"
        " VALUES ('old1', '2024-01-01T00:00:00+00:00', 'k-old', 'mock', 'mock', '[]', '{}', 'old reply',"
        " 'ok')"
    )
    conn.close()
    store = CallStore(path)
    assert store.migrations() == [name for name, _ in MIGRATIONS]
    hit = store.lookup("k-old")
    assert hit is not None and hit.text == "old reply" and hit.cached and hit.logprobs is None
    assert store.recent(5)[0]["reasks"] == 0
    assert hit.finish_reason is None and store.recent(5)[0]["finish_reason"] is None


def test_upgrade_from_002_adds_finish_reason_and_keeps_rows(tmp_path):
    path = tmp_path / "v002.db"
    conn = sqlite3.connect(path, isolation_level=None)
    assert apply_migrations(conn, MIGRATIONS[:2]) == ["001_create_calls", "002_add_logprobs_and_reasks"]
    conn.execute(
        "INSERT INTO calls (id, created, cache_key, backend, model, messages, params, response, status,"
        " reasks) VALUES ('old2', '2024-01-01T00:00:00+00:00', 'k-old', 'mock', 'mock', '[]', '{}',"
        " 'old reply', 'ok', 1)"
    )
    conn.close()
    store = CallStore(path)
    assert "003_add_finish_reason" in store.migrations()
    hit = store.lookup("k-old")
    assert hit.text == "old reply" and hit.finish_reason is None and not hit.truncated
    _record(store, "k-new", _result("new1", finish_reason="length"))
    store.close()
    again = CallStore(path)  # reopening applies nothing twice
    assert again.migrations() == [name for name, _ in MIGRATIONS]
    assert [r["finish_reason"] for r in again.recent(5)] == ["length", None]


def test_finish_reason_round_trips_through_the_cache(tmp_path):
    store = CallStore(tmp_path / "c.db")
    _record(store, "k1", _result("c1", finish_reason="length"))
    assert store.lookup("k1").finish_reason == "length"  # from the write queue
    store.flush()
    hit = CallStore(tmp_path / "c.db").lookup("k1")  # from the database
    assert hit.finish_reason == "length" and hit.truncated
    _record(store, "k2", _result("c2", finish_reason="stop"))
    store.flush()
    assert not CallStore(tmp_path / "c.db").lookup("k2").truncated


def test_lookup_serves_only_ok_rows(tmp_path):
    store = CallStore(tmp_path / "c.db")
    _record(store, "k1", _result("f1", status="failed", text="", error="boom"))
    assert store.lookup("k1") is None
    _record(store, "k1", _result("o1", text="good"))
    hit = store.lookup("k1")
    assert hit.call_id == "o1" and hit.text == "good" and hit.cached and hit.usage.prompt_tokens == 3
    assert store.count() == 2 and store.count("failed") == 1


def test_cache_key_covers_every_input():
    msgs = [{"role": "user", "content": "x"}]
    base = cache_key("mock", "m", msgs, ChatParams(), None, 0)
    assert base == cache_key("mock", "m", [{"content": "x", "role": "user"}], ChatParams(), None, 0)
    variants = [
        cache_key("openai", "m", msgs, ChatParams(), None, 0),
        cache_key("mock", "m2", msgs, ChatParams(), None, 0),
        cache_key("mock", "m", [{"role": "user", "content": "y"}], ChatParams(), None, 0),
        cache_key("mock", "m", msgs, ChatParams(temperature=0.1), None, 0),
        cache_key("mock", "m", msgs, ChatParams(seed=1), None, 0),
        cache_key("mock", "m", msgs, ChatParams(), {"type": "object"}, 0),
        cache_key("mock", "m", msgs, ChatParams(), None, 1),
    ]
    assert len({base, *variants}) == len(variants) + 1


def test_corrupt_db_is_a_user_error_naming_the_file(tmp_path):
    bad = tmp_path / "calls.db"
    bad.write_bytes(b"this is not a sqlite database at all" * 200)
    with pytest.raises(UserError) as e:
        CallStore(bad)
    assert str(bad) in str(e.value)


def test_concurrent_writes_from_threads(tmp_path):
    store = CallStore(tmp_path / "c.db")

    def work(t):
        for i in range(50):
            _record(store, f"k{t}-{i}", _result(f"id{t}-{i}"))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.count() == 400
    assert all(store.lookup(f"k{t}-49") is not None for t in range(8))


def test_recorded_rows_are_visible_to_lookup_at_once_and_to_other_connections_after_flush(tmp_path):
    store = CallStore(tmp_path / "c.db")
    for i in range(200):
        _record(store, f"k{i}", _result(f"id{i}", text=f"t{i}"))
        assert store.lookup(f"k{i}").text == f"t{i}"  # from the write queue or the db, never missing
    store.flush()
    other = CallStore(tmp_path / "c.db")
    assert other.count() == 200 and other.lookup("k199").call_id == "id199"


def test_unclosed_store_is_flushed_at_interpreter_exit(tmp_path):
    import subprocess
    import sys

    db = tmp_path / "c.db"
    code = (
        "from persona_testbed.llm import CallStore, ChatParams, ChatResult\n"
        f"s = CallStore({str(db)!r})\n"
        "for i in range(500):\n"
        "    s.record(key=f'k{i}', backend='mock', result=ChatResult(call_id=f'id{i}', model='mock', status='ok'),\n"
        "             messages=[], params=ChatParams(), schema=None, sample_index=0, purpose='')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    assert CallStore(db).count() == 500


def test_record_after_close_is_an_error(tmp_path):
    store = CallStore(tmp_path / "c.db")
    store.close()
    store.close()  # idempotent
    with pytest.raises(RuntimeError):
        _record(store, "k", _result())


def test_connect_readonly_leaves_no_side_files_and_sees_the_wal(tmp_path):
    d = tmp_path / "odd ?#% name"
    d.mkdir()
    path = d / "calls.db"
    store = CallStore(path)
    _record(store, "k1", _result("c1"))
    store.close()
    assert sorted(p.name for p in d.iterdir()) == ["calls.db"] and is_wal_database(path)
    conn = connect_readonly(path)
    assert conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0] == 1
    with pytest.raises(sqlite3.OperationalError):
        conn.execute("DELETE FROM calls")
    conn.close()
    assert sorted(p.name for p in d.iterdir()) == ["calls.db"]
    # a writer with rows still in calls.db-wal: the read-only connection sees them
    writer = CallStore(path)
    _record(writer, "k2", _result("c2"))
    writer.flush()
    assert (d / "calls.db-wal").exists()
    conn = connect_readonly(path)
    assert conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0] == 2
    conn.close()
    writer.close()
    assert not is_wal_database(d / "missing.db")
