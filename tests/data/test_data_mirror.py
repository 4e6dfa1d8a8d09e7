"""Mirror copies, resolve(), and `data list` on synthetic mirrors (plus one run on the real mirror)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from persona_testbed.core.errors import UserError
from persona_testbed.data import MANIFEST, DataFile, DataMissingError, FetchFailed, fetch, resolve, verify
from persona_testbed.data.checksums import HashCache, local_sums

A = "norms/test/a.csv"
B = "norms/test/b.csv"


@pytest.fixture
def small_mirror(tmp_path) -> tuple[Path, dict[str, DataFile]]:
    root = tmp_path / "mirror"
    files = {A: b"x,y\n1,2\n", B: b"q\n" * 5000}
    manifest = {}
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
        manifest[rel] = DataFile(relpath=rel, sha256=sha(data), size=len(data), group="testgroup")
    return root, manifest


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_mirror_copy_ok_and_group(small_mirror, tmp_path):
    root, manifest = small_mirror
    ddir = tmp_path / "data"
    results = fetch(["testgroup"], mirror=root, data_dir=ddir, manifest=manifest, show_progress=False)
    assert [(r.relpath, r.status, r.checksum) for r in results] == [
        (A, "copied", "manifest"),
        (B, "copied", "manifest"),
    ]
    assert (ddir / B).read_bytes() == (root / B).read_bytes()
    assert not list(ddir.rglob("*.part"))
    assert [
        r.relpath for r in fetch(A, mirror=root, data_dir=ddir, manifest=manifest, show_progress=False)
    ] == [A]  # a bare string is one target
    again = fetch(["all"], mirror=root, data_dir=ddir, manifest=manifest, show_progress=False)
    assert {r.status for r in again} == {"present"}


def test_mirror_from_env(small_mirror, tmp_path, monkeypatch):
    root, manifest = small_mirror
    monkeypatch.setenv("PERSONA_TESTBED_MIRROR", str(root))
    [r] = fetch([A], data_dir=tmp_path / "d", manifest=manifest, show_progress=False)
    assert r.status == "copied" and r.source == str(root / A)


def test_mirror_missing_file_names_it_and_others_still_copied(small_mirror, tmp_path):
    root, manifest = small_mirror
    (root / A).unlink()
    ddir = tmp_path / "data"
    with pytest.raises(FetchFailed) as exc:
        fetch(["all"], mirror=root, data_dir=ddir, manifest=manifest, show_progress=False)
    assert f"{A} is not in mirror {root}" in str(exc.value)
    assert {r.relpath: r.status for r in exc.value.results} == {A: "failed", B: "copied"}
    assert (ddir / B).is_file() and not (ddir / A).exists()


def test_mirror_corrupt_file_copies_nothing(small_mirror, tmp_path):
    root, manifest = small_mirror
    (root / A).write_bytes(b"x,y\n1,3\n")
    ddir = tmp_path / "data"
    with pytest.raises(UserError, match=f"checksum mismatch for {A} in mirror file"):
        fetch([A], mirror=root, data_dir=ddir, manifest=manifest, show_progress=False)
    assert not (ddir / A).exists() and not list(ddir.rglob("*.part"))


def test_mirror_dir_must_exist(tmp_path):
    with pytest.raises(UserError, match="mirror directory .* does not exist"):
        fetch(["prism"], mirror=tmp_path / "nope", data_dir=tmp_path, show_progress=False)


def test_unknown_file_from_mirror_uses_mirror_sums_or_records(small_mirror, tmp_path):
    root, manifest = small_mirror
    (root / "extra").mkdir()
    (root / "extra" / "listed.txt").write_bytes(b"listed")
    (root / "extra" / "unlisted.txt").write_bytes(b"unlisted")
    (root / "SHA256SUMS").write_text(f"{sha(b'listed')}  extra/listed.txt\n")
    ddir = tmp_path / "data"
    r1, r2 = fetch(
        ["extra/listed.txt", "extra/unlisted.txt"],
        mirror=root,
        data_dir=ddir,
        manifest=manifest,
        show_progress=False,
    )
    assert (r1.checksum, r2.checksum) == ("mirror", "recorded")
    assert local_sums(ddir) == {"extra/unlisted.txt": sha(b"unlisted"), "extra/listed.txt": sha(b"listed")}
    assert {s.relpath: s.status for s in verify(None, ddir, manifest=manifest)}["extra/listed.txt"] == "ok"
    # a mirror SHA256SUMS entry that disagrees with the file is a mismatch
    (root / "extra" / "listed.txt").write_bytes(b"tampered")
    with pytest.raises(UserError, match="checksum mismatch"):
        fetch(
            ["extra/listed.txt"],
            mirror=root,
            data_dir=tmp_path / "d2",
            manifest=manifest,
            show_progress=False,
        )


def test_unknown_target_is_user_error(tmp_path):
    with pytest.raises(UserError, match="unknown data file or group 'nonsense'"):
        fetch(["nonsense"], data_dir=tmp_path, show_progress=False)
    with pytest.raises(UserError, match="bad data file path"):
        fetch(["../etc/passwd"], mirror=tmp_path, data_dir=tmp_path, show_progress=False)


def test_no_url_without_mirror_says_mirror_only(tmp_path, monkeypatch):
    monkeypatch.delenv("PERSONA_TESTBED_MIRROR", raising=False)
    rel = "census/targets/acs2018_1yr_state_population.csv"  # compiled table: no public origin
    with pytest.raises(UserError) as exc:
        fetch([rel], data_dir=tmp_path, show_progress=False)
    msg = str(exc.value)
    assert "no official download URL" in msg and "mirror" in msg
    assert f"persona-testbed data fetch {rel}" in msg and "--mirror DIR" in msg


def test_resolve_missing_names_file_and_fix(tmp_path, tmp_home):
    rel = "census/targets/acs_S0101_state_2024.json"
    with pytest.raises(DataMissingError) as exc:
        resolve(rel)
    msg = str(exc.value)
    assert rel in msg and str(tmp_home / "data") in msg
    assert f"persona-testbed data fetch {rel} --mirror DIR" in msg
    # a file with a public origin (NORC's GSS file) needs no mirror
    gss = "survey/gss/gss_1972_2024_long.csv"
    with pytest.raises(DataMissingError) as exc:
        resolve(gss)
    assert str(exc.value).endswith(f"persona-testbed data fetch {gss}")
    # explicit data dir goes into the command; a file with an official URL needs no mirror
    rel2 = "census/acs/2018/1-Year/csv_pde.zip"
    with pytest.raises(DataMissingError) as exc:
        resolve(rel2, tmp_path)
    assert str(exc.value).endswith(f"persona-testbed data fetch {rel2} --data-dir {tmp_path}")


def test_resolve_present_and_corrupt(tmp_path):
    rel = "census/targets/acs2018_1yr_state_population.csv"
    target = tmp_path / rel
    target.parent.mkdir(parents=True)
    target.write_text("not the real file")
    with pytest.raises(UserError, match="does not match its sha256.*--force"):
        resolve(rel, tmp_path)
    assert resolve(rel, tmp_path, verify=False) == target


def test_cli_path_and_missing(cli, tmp_path):
    r = cli("data", "path", "prompts/prism/prism_opening_prompts.json", "--data-dir", tmp_path)
    assert r.exit_code == 2 and "persona-testbed data fetch prompts/prism" in r.stderr


def test_data_list_json_statuses_and_cache(cli, tmp_path):
    rel = "census/targets/acs2018_1yr_state_population.csv"
    f = tmp_path / rel
    f.parent.mkdir(parents=True)
    f.write_bytes(b"x" * MANIFEST[rel].size)  # right size, wrong content
    r = cli("data", "list", "--json", "--data-dir", tmp_path)
    assert r.exit_code == 0, r.stderr
    rows = {x["relpath"]: x for x in json.loads(r.stdout)}
    assert set(rows) == set(MANIFEST)
    assert rows[rel]["status"] == "mismatch" and rows[rel]["present"] is True
    assert {x["status"] for k, x in rows.items() if k != rel} == {"missing"}
    assert rows[rel]["group"] == "targets"
    # hashed once, then served from the (path, size, mtime) cache
    cache = HashCache()
    assert cache.cached(f) == rows[rel]["sha256"]
    # --no-verify: same size and a fresh cached hash -> still mismatch; new mtime -> unverified
    r = cli("data", "list", rel, "--json", "--no-verify", "--data-dir", tmp_path)
    assert json.loads(r.stdout)[0]["status"] == "mismatch"
    f.write_bytes(b"y" * MANIFEST[rel].size)
    r = cli("data", "list", rel, "--json", "--no-verify", "--data-dir", tmp_path)
    assert json.loads(r.stdout)[0]["status"] == "unverified"
    # table output works and names the groups
    r = cli("data", "list", "targets", "--data-dir", tmp_path)
    assert r.exit_code == 0 and "targets" in r.stdout and "mismatch" in r.stdout


def test_verify_uses_cache_not_rehash(tmp_path, monkeypatch):
    rel = "census/targets/acs2018_1yr_state_population.csv"
    f = tmp_path / rel
    f.parent.mkdir(parents=True)
    f.write_bytes(b"abc")
    verify([rel], tmp_path)
    import persona_testbed.data.checksums as checksums

    def boom(path):
        raise AssertionError("re-hashed an unchanged file")

    monkeypatch.setattr(checksums, "file_sha256", boom)
    [st] = verify([rel], tmp_path)
    assert st.status == "mismatch" and st.sha256 == sha(b"abc")


@pytest.mark.shared_data
def test_fetch_all_from_real_mirror_then_list_all_ok(cli, mirror, tmp_path):
    ddir = tmp_path / "data"
    r = cli("data", "fetch", "all", "--mirror", mirror, "--data-dir", ddir, "--json")
    assert r.exit_code == 0, r.stderr
    assert {x["status"] for x in json.loads(r.stdout)} == {"copied"}
    r = cli("data", "list", "--json", "--data-dir", ddir)
    rows = json.loads(r.stdout)
    assert len(rows) == len(MANIFEST) == 130
    assert {x["status"] for x in rows} == {"ok"}
    path = resolve("census/acs/2024/1-Year-extract/p_06.parquet", ddir)
    assert path.read_bytes() == (mirror / "census/acs/2024/1-Year-extract/p_06.parquet").read_bytes()


def test_cli_fetch_many_mirror_only_summary(cli, tmp_path):
    rels = [
        "census/targets/acs2018_1yr_us_targets.csv",
        "census/targets/acs2018_1yr_state_population.csv",
        "census/targets/acs_S0101_state_2024.json",
    ]
    r = cli("data", "fetch", *rels, "--data-dir", tmp_path)
    assert r.exit_code == 2
    err = r.stderr.strip()
    assert "\n" not in err and err.startswith("error: 3 of 3 files could not be fetched")
    assert "3 have no official download URL and come only from a data mirror" in err
    assert r.stdout.count("mirror only (no URL)") == 3
    # swept in by a group, such files are skipped; a group of nothing but them is still an error
    r = cli("data", "fetch", "targets", "--data-dir", tmp_path)
    assert r.exit_code == 2 and "none with a public origin" in r.stderr
    assert "5 skipped" in r.stdout and r.stdout.count("mirror only") == 5


def test_second_fetch_into_same_dir_is_refused(small_mirror, tmp_path):
    import fcntl
    import os

    root, manifest = small_mirror
    ddir = tmp_path / "data"
    ddir.mkdir()
    fd = os.open(ddir / ".fetch.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)  # another process holds the data directory
    try:
        with pytest.raises(UserError, match="another `persona-testbed data fetch` is writing to"):
            fetch([A], mirror=root, data_dir=ddir, manifest=manifest, show_progress=False)
    finally:
        os.close(fd)
    assert (
        fetch([A], mirror=root, data_dir=ddir, manifest=manifest, show_progress=False)[0].status == "copied"
    )


def test_bad_mirror_url_is_a_recorded_failure(tmp_path):
    with pytest.raises(UserError, match="could not be fetched|failed"):
        fetch(
            ["bigfive"],
            mirror="http://exa mple.invalid:xx/",
            data_dir=tmp_path,
            retries=0,
            backoff=0,
            show_progress=False,
        )
