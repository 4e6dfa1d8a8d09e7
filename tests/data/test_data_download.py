"""Downloads against a real HTTP server on 127.0.0.1: checksums, resume, Range quirks, retries."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from persona_testbed.core.errors import UserError
from persona_testbed.data import DataFile, FetchFailed, fetch, resolve, verify
from persona_testbed.data.checksums import LOCAL_SUMS, local_sums

PAYLOAD = bytes(range(256)) * 4000  # ~1 MB, position-dependent so a bad resume changes the hash
REL = "extra/blob.bin"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def manifest_for(url: str, data: bytes = PAYLOAD, **kw) -> dict[str, DataFile]:
    entry = DataFile(relpath=REL, sha256=sha(data), size=len(data), group="test", url=url, **kw)
    return {REL: entry}


def leftovers(data_dir: Path) -> list[str]:
    """Files under the data dir other than bookkeeping (checksum registry, lock files)."""
    if not data_dir.exists():
        return []
    return sorted(
        str(p.relative_to(data_dir))
        for p in data_dir.rglob("*")
        if p.is_file() and p.name not in (LOCAL_SUMS, ".sums.lock", ".fetch.lock")
    )


def test_download_ok_checksum_verified(file_server, tmp_path):
    url = file_server.add("/f/blob.bin", PAYLOAD)
    [r] = fetch([REL], data_dir=tmp_path, manifest=manifest_for(url), show_progress=False)
    assert r.status == "downloaded" and r.checksum == "manifest" and r.sha256 == sha(PAYLOAD)
    assert (tmp_path / REL).read_bytes() == PAYLOAD
    assert leftovers(tmp_path) == [REL]  # no .part left behind
    # present with a good checksum: skipped without touching the server
    n = len(file_server.requests)
    [r2] = fetch([REL], data_dir=tmp_path, manifest=manifest_for(url), show_progress=False)
    assert r2.status == "present" and len(file_server.requests) == n
    # --force downloads again
    [r3] = fetch([REL], data_dir=tmp_path, manifest=manifest_for(url), force=True, show_progress=False)
    assert r3.status == "downloaded" and len(file_server.requests) == n + 1


def test_checksum_mismatch_leaves_nothing(file_server, tmp_path):
    url = file_server.add("/f/blob.bin", PAYLOAD[:-1] + b"X")  # corrupt last byte
    with pytest.raises(FetchFailed) as exc:
        fetch([REL], data_dir=tmp_path, manifest=manifest_for(url), show_progress=False)
    msg = str(exc.value)
    assert "checksum mismatch" in msg and REL in msg and url in msg and "\n" not in msg
    assert leftovers(tmp_path) == []


def test_dropped_connection_resumes_with_range(file_server, tmp_path):
    url = file_server.add("/f/blob.bin", PAYLOAD)
    file_server.drop_after["/f/blob.bin"] = 300_000
    [r] = fetch([REL], data_dir=tmp_path, manifest=manifest_for(url), backoff=0.01, show_progress=False)
    assert r.status == "downloaded"
    assert (tmp_path / REL).read_bytes() == PAYLOAD
    (_, r1, c1), (_, r2, c2) = file_server.requests
    assert (r1, c1, c2) == (None, 200, 206)
    assert 0 < int(r2.split("=")[1].rstrip("-")) <= 300_000  # resumed where the written bytes end


def test_server_ignoring_range_restarts(file_server, tmp_path):
    url = file_server.add("/f/blob.bin", PAYLOAD)
    file_server.drop_after["/f/blob.bin"] = 250_000
    file_server.ignore_range.add("/f/blob.bin")
    [r] = fetch([REL], data_dir=tmp_path, manifest=manifest_for(url), backoff=0.01, show_progress=False)
    assert r.status == "downloaded"
    assert (tmp_path / REL).read_bytes() == PAYLOAD
    (_, r1, c1), (_, r2, c2) = file_server.requests
    assert (r1, c1, c2) == (None, 200, 200) and r2.startswith("bytes=")  # asked to resume, got it all


def test_stale_part_from_earlier_run_is_resumed(file_server, tmp_path):
    url = file_server.add("/f/blob.bin", PAYLOAD)
    part = tmp_path / (REL + ".part")
    part.parent.mkdir(parents=True)
    part.write_bytes(PAYLOAD[:123_456])
    fetch([REL], data_dir=tmp_path, manifest=manifest_for(url), show_progress=False)
    assert (tmp_path / REL).read_bytes() == PAYLOAD and not part.exists()
    assert file_server.requests[0][1] == "bytes=123456-"


def test_complete_part_answered_416_is_finished(file_server, tmp_path):
    url = file_server.add("/f/blob.bin", PAYLOAD)
    part = tmp_path / (REL + ".part")
    part.parent.mkdir(parents=True)
    part.write_bytes(PAYLOAD)
    fetch([REL], data_dir=tmp_path, manifest=manifest_for(url), show_progress=False)
    assert (tmp_path / REL).read_bytes() == PAYLOAD
    assert [q[2] for q in file_server.requests] == [416]


def test_transient_errors_retried_then_clear_error(file_server, tmp_path):
    url = file_server.add("/f/blob.bin", PAYLOAD)
    file_server.fail["/f/blob.bin"] = [503, 500]
    fetch([REL], data_dir=tmp_path, manifest=manifest_for(url), backoff=0.01, show_progress=False)
    assert (tmp_path / REL).read_bytes() == PAYLOAD

    url2 = file_server.add("/f/down.bin", PAYLOAD)
    file_server.fail["/f/down.bin"] = [503] * 10
    with pytest.raises(UserError, match=r"failed after 3 attempts: HTTP 503"):
        fetch(
            ["extra/down.bin"],
            data_dir=tmp_path,
            retries=2,
            backoff=0.01,
            show_progress=False,
            manifest={"extra/down.bin": DataFile(relpath="extra/down.bin", url=url2)},
        )
    assert len([q for q in file_server.requests if q[0] == "/f/down.bin"]) == 3


def test_http_404_and_unreachable_are_one_line(file_server, tmp_path):
    url = file_server.base + "/nope.bin"
    with pytest.raises(UserError, match=r"HTTP 404 from .*/nope.bin"):
        fetch([REL], data_dir=tmp_path, manifest=manifest_for(url), show_progress=False)
    dead = "http://127.0.0.1:9/blob.bin"  # discard port: connection refused
    with pytest.raises(UserError) as exc:
        fetch(
            [REL],
            data_dir=tmp_path,
            manifest=manifest_for(dead),
            retries=1,
            backoff=0.01,
            show_progress=False,
        )
    assert "failed after 2 attempts" in str(exc.value) and "\n" not in str(exc.value)
    assert leftovers(tmp_path) == []


def test_pums_target_from_census_url_env_records_checksum(file_server, tmp_path, monkeypatch):
    """Any year/state: URL from the official template (base moved by PERSONA_TESTBED_CENSUS_URL);
    the unknown checksum is recorded in SHA256SUMS.local and verified on later reads."""
    data = b"PK fake zip for 2019 CA" * 1000
    file_server.add("/programs-surveys/acs/data/pums/2019/1-Year/csv_pca.zip", data)
    monkeypatch.setenv("PERSONA_TESTBED_CENSUS_URL", file_server.base)
    [r] = fetch(["pums:2019:p:ca"], data_dir=tmp_path, show_progress=False)
    rel = "census/acs/2019/1-Year/csv_pca.zip"
    assert r.relpath == rel and r.status == "downloaded" and r.checksum == "recorded"
    assert local_sums(tmp_path) == {rel: sha(data)}
    assert resolve(rel, tmp_path) == tmp_path / rel
    [st] = verify([rel], tmp_path)
    assert st.status == "ok" and st.checksum_source == "recorded"
    # the relpath form names the same file; present -> skipped
    [again] = fetch([rel], data_dir=tmp_path, show_progress=False)
    assert again.status == "present"
    # a changed file is noticed on later reads
    (tmp_path / rel).write_bytes(data[:-1] + b"!")
    [st] = verify([rel], tmp_path)
    assert st.status == "mismatch"
    with pytest.raises(UserError, match="does not match its sha256"):
        resolve(rel, tmp_path)
    # listing every known file includes the recorded extra
    assert rel in {s.relpath for s in verify(None, tmp_path)}


def test_cli_fetch_corrupt_official_file_exit_2_nothing_left(file_server, cli, tmp_path, monkeypatch):
    """End to end through the packaged manifest: the 2018 dictionary served corrupt -> exit 2."""
    file_server.add(
        "/programs-surveys/acs/tech_docs/pums/data_dict/PUMS_Data_Dictionary_2018.csv",
        b'NAME,RT,C,1,"Record Type"\n',
    )
    monkeypatch.setenv("PERSONA_TESTBED_CENSUS_URL", file_server.base)
    rel = "census/dictionaries/PUMS_Data_Dictionary_2018.csv"
    r = cli("data", "fetch", rel, "--data-dir", tmp_path)
    assert r.exit_code == 2
    assert r.stderr.count("\n") == 1 and "checksum mismatch" in r.stderr and rel in r.stderr
    assert "Traceback" not in r.stderr
    assert leftovers(tmp_path) == []


def test_http_mirror(file_server, tmp_path):
    file_server.add("/mirror/" + REL, PAYLOAD)
    [r] = fetch(
        [REL],
        mirror=file_server.base + "/mirror/",
        data_dir=tmp_path,
        manifest=manifest_for(None),
        show_progress=False,
    )
    assert r.status == "downloaded" and r.source == file_server.base + "/mirror/" + REL
    assert (tmp_path / REL).read_bytes() == PAYLOAD


def test_fetch_json_output(file_server, cli, tmp_path, monkeypatch):
    data = b"dictionary 2019"
    file_server.add("/programs-surveys/acs/tech_docs/pums/data_dict/PUMS_Data_Dictionary_2019.csv", data)
    monkeypatch.setenv("PERSONA_TESTBED_CENSUS_URL", file_server.base)
    r = cli("data", "fetch", "pums:2019:dict", "--data-dir", tmp_path, "--json")
    assert r.exit_code == 0, r.stderr
    [row] = json.loads(r.stdout)
    assert row["status"] == "downloaded" and row["sha256"] == sha(data)
    assert row["relpath"] == "census/dictionaries/PUMS_Data_Dictionary_2019.csv"
    assert os.path.exists(tmp_path / row["relpath"])


def test_progress_bar_counts_bytes_across_resume(file_server, tmp_path, monkeypatch):
    """The progress task ends with completed == total == file size, even after a resumed download."""
    import io

    from rich.console import Console

    import persona_testbed.data.fetcher as fetcher

    out = io.StringIO()
    monkeypatch.setattr(fetcher, "err_console", Console(file=out, force_terminal=True, width=120))
    seen = []
    real_task = fetcher._task

    def spy(progress, label):
        cb, done = real_task(progress, label)
        seen.append(progress)

        def finish():
            [task] = progress.tasks
            seen.append((task.description, task.completed, task.total))
            done()

        return cb, finish

    monkeypatch.setattr(fetcher, "_task", spy)
    url = file_server.add("/f/blob.bin", PAYLOAD)
    file_server.drop_after["/f/blob.bin"] = 400_000
    fetch([REL], data_dir=tmp_path, manifest=manifest_for(url), backoff=0.01)
    assert seen[-1] == (REL, len(PAYLOAD), len(PAYLOAD))
    assert REL in out.getvalue()  # drawn on the (fake) terminal
    assert (tmp_path / REL).read_bytes() == PAYLOAD
