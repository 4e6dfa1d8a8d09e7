"""core/outputs.py: outputs that cannot destroy (checks, staged directories and files, claimed directories,
OS errors as one line)."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from persona_testbed.core import outputs
from persona_testbed.core.atomic import DIR_MODE, atomic_write_text, make_dirs
from persona_testbed.core.errors import UserError
from persona_testbed.core.outputs import (
    MARKER,
    check_out,
    claim_dir,
    claimed_dir,
    marker_kind,
    os_error_message,
    release_if_created,
    staged_dir,
    staged_file,
    translate_os_errors,
)


def leftovers(root: Path) -> list[Path]:
    """Temp siblings or temp files left anywhere under ``root``."""
    return sorted(p for p in root.rglob(".*.tmp"))


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def previous(path: Path, kind: str, files: dict[str, str]) -> Path:
    with staged_dir(path, kind) as d:
        for name, text in files.items():
            (d / name).write_text(text)
    return path


# -- check_out -------------------------------------------------------------------------------------


def test_check_out_states(tmp_path):
    assert check_out(tmp_path / "new", "hf-export") == "absent"
    (tmp_path / "empty").mkdir()
    assert check_out(tmp_path / "empty", "hf-export") == "empty"
    previous(tmp_path / "old", "hf-export", {"a.txt": "a"})
    with pytest.raises(
        UserError, match=r"old: exists; pass --force to replace the previous hf-export output"
    ):
        check_out(tmp_path / "old", "hf-export")
    assert check_out(tmp_path / "old", "hf-export", force=True) == "previous"
    (tmp_path / "f.jsonl").write_text("x")
    assert check_out(tmp_path / "f.jsonl", "jsonl", file=True) == "previous"
    assert check_out(tmp_path / "g.jsonl", "jsonl", file=True) == "absent"


@pytest.mark.parametrize("force", [False, True])
def test_check_out_refuses_foreign_and_other_kinds(tmp_path, force):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    match = "refusing to replace it, even with --force" if force else "was not written by persona-testbed"
    with pytest.raises(UserError, match=match):
        check_out(foreign, "hf-export", force=force)
    previous(tmp_path / "trl", "trl-export", {"train.jsonl": "{}"})
    with pytest.raises(UserError, match="holds a persona-testbed trl-export output, not hf-export"):
        check_out(tmp_path / "trl", "hf-export", force=force)
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="exists and is not a directory"):
        check_out(tmp_path / "file", "hf-export", force=force)
    with pytest.raises(UserError, match="is a directory"):
        check_out(foreign, "jsonl", file=True, force=force)
    assert (foreign / "notes.txt").read_text() == "keep me"


def test_check_out_refuses_inputs(tmp_path):
    src = tmp_path / "fb"
    src.mkdir()
    (src / "pairs.jsonl").write_text("{}\n")
    with pytest.raises(UserError, match=r"fb: is the input"):
        check_out(src, "hf-export", inputs=[src])
    with pytest.raises(UserError, match=r"contains the input"):
        check_out(tmp_path, "hf-export", inputs=[src])
    with pytest.raises(UserError, match=r"is inside the input directory"):
        check_out(src / "hf", "hf-export", inputs=[src])
    with pytest.raises(UserError, match=r"pairs.jsonl: is the input"):
        check_out(src / "pairs.jsonl", "jsonl", inputs=[src / "pairs.jsonl"], file=True)
    with pytest.raises(UserError, match=r"is inside the input directory"):
        check_out(src / "x.jsonl", "jsonl", inputs=[src], file=True)
    # the same path spelled differently, and through a symlink
    with pytest.raises(UserError, match=r"is the input"):
        check_out(tmp_path / "fb" / ".." / "fb", "hf-export", inputs=[src])
    (tmp_path / "link").symlink_to(src)
    with pytest.raises(UserError, match=r"is the input"):
        check_out(tmp_path / "link", "hf-export", inputs=[src])


def test_check_out_refuses_the_working_directory(tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    for out in (".", "..", str(work)):
        with pytest.raises(UserError, match="contains the current directory"):
            check_out(out, "hf-export", force=True)


def test_check_out_parent_is_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    for out, file in ((tmp_path / "f" / "out", False), (tmp_path / "f" / "a" / "b.jsonl", True)):
        with pytest.raises(UserError, match=r"a parent is a file \(.*/f\)"):
            check_out(out, "hf-export", file=file)


# -- staged_dir ------------------------------------------------------------------------------------


def test_staged_dir_writes_marker_and_leaves_no_temp(tmp_path):
    out = tmp_path / "a" / "b" / "hf"
    with staged_dir(out, "hf-export") as d:
        assert d.parent == out.parent and d.name.startswith(".hf.") and d.name.endswith(".tmp")
        (d / "README.md").write_text("card")
    assert (out / "README.md").read_text() == "card"
    marker = json.loads((out / MARKER).read_text())
    assert marker["kind"] == "hf-export" and marker["package_version"] and marker["created"]
    assert marker_kind(out) == "hf-export"
    assert out.stat().st_mode & 0o777 == DIR_MODE  # not mkdtemp's private 0700
    assert leftovers(tmp_path) == []


def test_staged_dir_onto_empty_directory(tmp_path):
    (tmp_path / "e").mkdir()
    with staged_dir(tmp_path / "e", "report") as d:
        (d / "x").write_text("1")
    assert (tmp_path / "e" / "x").read_text() == "1" and leftovers(tmp_path) == []


def test_staged_dir_force_replaces_only_after_the_new_one_is_written(tmp_path):
    out = previous(tmp_path / "hf", "hf-export", {"old.txt": "old", "keep.txt": "v1"})
    with staged_dir(out, "hf-export", force=True) as d:
        assert (out / "old.txt").read_text() == "old"  # still in place while the new one is built
        (d / "keep.txt").write_text("v2")
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "keep.txt"]
    assert (out / "keep.txt").read_text() == "v2" and leftovers(tmp_path) == []


def test_staged_dir_failure_leaves_nothing(tmp_path):
    out = tmp_path / "new" / "parents" / "hf"
    with pytest.raises(RuntimeError), staged_dir(out, "hf-export") as d:
        (d / "half").write_text("x")
        raise RuntimeError("boom")
    assert not (tmp_path / "new").exists() and leftovers(tmp_path) == []
    old = previous(tmp_path / "hf", "hf-export", {"a.txt": "old"})
    before = tree(old)
    with pytest.raises(RuntimeError), staged_dir(old, "hf-export", force=True) as d:
        (d / "a.txt").write_text("new")
        raise RuntimeError("boom")
    assert tree(old) == before and leftovers(tmp_path) == []


def test_staged_dir_enospc_in_body_names_the_output(tmp_path):
    out = tmp_path / "hf"
    with pytest.raises(UserError) as ei, staged_dir(out, "hf-export") as d:
        raise OSError(errno.ENOSPC, "No space left on device", str(d / "data" / "train.parquet"))
    assert str(ei.value) == f"{out / 'data' / 'train.parquet'}: no space left on device"
    assert not out.exists() and leftovers(tmp_path) == []


def test_staged_dir_rename_fails_read_only(tmp_path, monkeypatch):
    """A read-only or immutable file system refuses the final rename: one line naming the output."""

    def refuse(src, dst):
        raise OSError(errno.EROFS, "Read-only file system", src, None, dst)

    monkeypatch.setattr(outputs.os, "rename", refuse)
    out = tmp_path / "hf"
    with pytest.raises(UserError, match=r"hf: read-only file system$"), staged_dir(out, "hf-export") as d:
        (d / "x").write_text("1")
    assert not out.exists() and leftovers(tmp_path) == []


def test_staged_dir_second_rename_fails_previous_output_restored(tmp_path, monkeypatch):
    old = previous(tmp_path / "hf", "hf-export", {"a.txt": "old"})
    before = tree(old)
    real_rename = os.rename
    calls = []

    def flaky(src, dst):
        calls.append((src, dst))
        if len(calls) == 2:  # 1: old aside, 2: new into place (fails), 3: old back
            raise OSError(errno.EPERM, "Operation not permitted", src)
        real_rename(src, dst)

    monkeypatch.setattr(outputs.os, "rename", flaky)
    with (
        pytest.raises(UserError, match=r"hf: permission denied"),
        staged_dir(old, "hf-export", force=True) as d,
    ):
        (d / "a.txt").write_text("new")
    assert len(calls) == 3 and tree(old) == before and leftovers(tmp_path) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_staged_dir_read_only_parent(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(UserError, match=r"ro/hf: permission denied"), staged_dir(ro / "hf", "hf-export"):
            pass
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o755)


@pytest.mark.skipif(os.geteuid() == 0, reason="root removes files from read-only directories")
def test_staged_dir_force_onto_read_only_previous(tmp_path):
    old = previous(tmp_path / "hf", "hf-export", {"a.txt": "old"})
    old.chmod(0o555)
    try:
        with (
            pytest.raises(UserError, match=r"hf: permission denied"),
            staged_dir(old, "hf-export", force=True) as d,
        ):
            (d / "a.txt").write_text("new")
        assert (old / "a.txt").read_text() == "old" and leftovers(tmp_path) == []
    finally:
        old.chmod(0o755)


def test_staged_dir_permission_denied_simulated(tmp_path, monkeypatch):
    """What a read-only parent (or, below, a read-only previous output) does, also when running as root."""

    def denied(prefix, suffix, dir):
        raise PermissionError(errno.EACCES, "Permission denied", os.path.join(dir, f"{prefix}abc{suffix}"))

    monkeypatch.setattr(outputs.tempfile, "mkdtemp", denied)
    with pytest.raises(UserError) as ei, staged_dir(tmp_path / "new" / "hf", "hf-export"):
        pass
    assert str(ei.value) == f"{tmp_path / 'new' / 'hf'}: permission denied"
    assert list(tmp_path.iterdir()) == []  # the parent it made is gone too


def test_staged_dir_unremovable_previous_is_refused_before_writing(tmp_path, monkeypatch):
    old = previous(tmp_path / "hf", "hf-export", {"a.txt": "old"})
    before = tree(old)
    monkeypatch.setattr(outputs.os, "access", lambda path, mode: False)
    with pytest.raises(UserError, match=r"hf: permission denied"), staged_dir(old, "hf-export", force=True):
        raise AssertionError("not reached")
    assert tree(old) == before and leftovers(tmp_path) == []


# -- staged_file -----------------------------------------------------------------------------------


def test_staged_file(tmp_path):
    out = tmp_path / "d" / "x.jsonl"
    with staged_file(out, "jsonl") as tmp:
        tmp.write_text("one\n")
    assert out.read_text() == "one\n"
    with pytest.raises(RuntimeError), staged_file(out, "jsonl") as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert out.read_text() == "one\n" and leftovers(tmp_path) == []
    with pytest.raises(RuntimeError), staged_file(tmp_path / "made" / "y.jsonl", "jsonl"):
        raise RuntimeError("boom")
    assert not (tmp_path / "made").exists()


def test_staged_file_os_errors(tmp_path, monkeypatch):
    def refuse(src, dst):
        raise OSError(errno.EROFS, "Read-only file system", src, None, dst)

    monkeypatch.setattr(os, "replace", refuse)
    out = tmp_path / "x.jsonl"
    with pytest.raises(UserError) as ei, staged_file(out, "jsonl") as tmp:
        tmp.write_text("x")
    assert str(ei.value) == f"{out}: read-only file system"
    assert list(tmp_path.iterdir()) == []


# -- claim_dir -------------------------------------------------------------------------------------


def test_claim_dir(tmp_path):
    run = tmp_path / "runs" / "r1"
    assert claim_dir(run, "run") is True and marker_kind(run) == "run"
    (run / "manifest.json").write_text("{}")
    assert claim_dir(run, "run") is False
    (tmp_path / "empty").mkdir()
    assert claim_dir(tmp_path / "empty", "run") is False and marker_kind(tmp_path / "empty") == "run"
    old = tmp_path / "old"
    old.mkdir()
    (old / "manifest.json").write_text("{}")
    (old / "config.toml").write_text("")

    def is_run(p):
        return (p / "manifest.json").exists() and (p / "config.toml").exists()

    with pytest.raises(UserError, match="is not empty and is not a persona-testbed run directory"):
        claim_dir(old, "run")
    assert claim_dir(old, "run", recognise=is_run) is False and marker_kind(old) == "run"
    with pytest.raises(UserError, match="holds a persona-testbed run output, not prompts"):
        claim_dir(old, "prompts")
    (tmp_path / "f").write_text("x")
    with pytest.raises(UserError, match="exists and is not a directory"):
        claim_dir(tmp_path / "f", "run")
    with pytest.raises(UserError, match=r"a parent is a file"):
        claim_dir(tmp_path / "f" / "r", "run")
    with pytest.raises(UserError, match="is the input"):
        claim_dir(old, "run", inputs=[old])


def test_release_if_created(tmp_path):
    a = tmp_path / "a"
    assert claim_dir(a, "run") is True
    assert release_if_created(a, False) is False and a.exists()
    assert release_if_created(a, True) is True and not a.exists()
    b = tmp_path / "b"
    claim_dir(b, "run")
    (b / "calls.db").write_text("worth keeping")
    assert release_if_created(b, True) is False and (b / "calls.db").exists()
    with pytest.raises(RuntimeError), claimed_dir(tmp_path / "c" / "runs" / "r", "run") as r:
        assert marker_kind(r) == "run"
        raise RuntimeError("failed before writing anything")
    assert not (tmp_path / "c").exists()  # the parents it made are gone too
    (tmp_path / "d").mkdir()
    with pytest.raises(RuntimeError), claimed_dir(tmp_path / "d", "run"):  # not created by this call: kept
        raise RuntimeError("boom")
    assert (tmp_path / "d").is_dir()


# -- OS errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "code,reason",
    [
        (errno.EACCES, "permission denied"),
        (errno.EPERM, "permission denied"),
        (errno.EROFS, "read-only file system"),
        (errno.ENOSPC, "no space left on device"),
        (errno.EEXIST, "already exists"),
    ],
)
def test_os_error_message(code, reason):
    msg = os_error_message(OSError(code, os.strerror(code), "/some/path"))
    assert msg.startswith("/some/path: " + reason) and "\n" not in msg
    assert os_error_message(OSError(code, os.strerror(code)), "/p").startswith("/p: " + reason)


def test_parent_is_a_file_in_atomic_writes(tmp_path):
    (tmp_path / "f").write_text("x")
    for target in (tmp_path / "f" / "out.json", tmp_path / "f" / "a" / "b" / "out.json"):
        with pytest.raises(NotADirectoryError) as ei:
            atomic_write_text(target, "{}")
        assert os_error_message(ei.value) == f"{target}: a parent is a file ({tmp_path / 'f'})"
        with pytest.raises(UserError, match=r"a parent is a file"), translate_os_errors():
            atomic_write_text(target, "{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"] and (tmp_path / "f").read_text() == "x"
    assert make_dirs(tmp_path / "m" / "n") == [tmp_path / "m", tmp_path / "m" / "n"]
    assert make_dirs(tmp_path / "m" / "n") == []
    with pytest.raises(NotADirectoryError) as ei:
        make_dirs(tmp_path / "f")
    assert os_error_message(ei.value) == f"{tmp_path / 'f'}: is a file, not a directory"


def test_cli_turns_os_errors_into_one_line(cli):
    from persona_testbed.cli.root import app

    @app.command("_oserror", hidden=True)
    def _oserror():
        raise PermissionError(errno.EACCES, "Permission denied", "/srv/out [x]/file")

    try:
        r = cli("_oserror")
        assert r.exit_code == 2
        assert r.stderr.strip() == "error: /srv/out [x]/file: permission denied"
        assert "Traceback" not in r.stderr
    finally:
        app.registered_commands = [c for c in app.registered_commands if c.name != "_oserror"]
