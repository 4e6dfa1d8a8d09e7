"""``bench tasks export`` and ``bench human export`` cannot destroy: inputs, directories and foreign files
are refused with one line (exit 2), OS errors are one line, and a failure leaves nothing behind."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from persona_testbed.core import outputs
from persona_testbed.core.outputs import MARKER
from persona_testbed.personas.io import write_personas


@pytest.fixture
def files(tmp_path, personas, prompts, pairs):
    pdir = tmp_path / "personas"
    write_personas(personas, pdir)
    qfile = tmp_path / "prompts.jsonl"
    qfile.write_text("".join(json.dumps(p.model_dump()) + "\n" for p in prompts))
    pfile = tmp_path / "pairs.jsonl"
    pfile.write_text("".join(json.dumps(p.model_dump()) + "\n" for p in pairs))
    return {"personas": pdir, "prompts": qfile, "pairs": pfile, "dir": tmp_path}


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _one_line_exit_2(r, *needles: str) -> None:
    assert r.exit_code == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in r.stderr, r.stderr
    for needle in needles:
        assert needle in lines[0], r.stderr


def _tasks_export(cli, files, out):
    return cli(
        "bench",
        "tasks",
        "export",
        "--personas",
        files["personas"],
        "--prompts",
        files["prompts"],
        "--n",
        "3",
        "--out",
        out,
    )


def _human_export(cli, files, out, *extra):
    return cli(
        "bench",
        "human",
        "export",
        "--pairs",
        files["pairs"],
        "--personas",
        files["personas"],
        "--out",
        out,
        "--n",
        "3",
        "--annotators",
        "3",
        "--questions",
        "3",
        *extra,
    )


def test_tasks_export_onto_a_directory_or_an_input(cli, files):
    before = _tree(files["dir"])
    existing = files["dir"] / "existing"
    existing.mkdir()
    (existing / "x.txt").write_text("keep")
    _one_line_exit_2(_tasks_export(cli, files, existing), str(existing), "is a directory")
    _one_line_exit_2(_tasks_export(cli, files, files["prompts"]), "is the input")
    _one_line_exit_2(_tasks_export(cli, files, files["personas"]), "is the input")
    _one_line_exit_2(
        _tasks_export(cli, files, files["personas"] / "items.jsonl"), "inside the input directory"
    )
    (files["dir"] / "afile").write_text("x")
    _one_line_exit_2(_tasks_export(cli, files, files["dir"] / "afile" / "items.jsonl"), "a parent is a file")
    assert _tree(files["dir"]) == {**before, "existing/x.txt": b"keep", "afile": b"x"}
    assert sorted(files["dir"].rglob(".*.tmp")) == []


def test_tasks_export_read_only_is_one_line(cli, files, monkeypatch):
    def refuse(src, dst):
        raise OSError(errno.EROFS, "Read-only file system", src, None, dst)

    monkeypatch.setattr(os, "replace", refuse)
    out = files["dir"] / "new" / "items.jsonl"
    _one_line_exit_2(_tasks_export(cli, files, out), f"{out}: read-only file system")
    assert not (files["dir"] / "new").exists() and sorted(files["dir"].rglob(".*.tmp")) == []


def test_human_export_refuses_foreign_and_needs_force(cli, files):
    foreign = files["dir"] / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep")
    for force in ([], ["--force"]):
        _one_line_exit_2(
            _human_export(cli, files, foreign, *force), str(foreign), "not written by persona-testbed"
        )
    assert _tree(foreign) == {"notes.txt": b"keep"}
    _one_line_exit_2(_human_export(cli, files, files["personas"], "--force"), "is the input")
    _one_line_exit_2(_human_export(cli, files, files["dir"], "--force"), "contains the input")
    kit = files["dir"] / "kit"
    r = _human_export(cli, files, kit)
    assert r.exit_code == 0, r.stderr
    assert json.loads((kit / MARKER).read_text())["kind"] == "human-sheets" and (kit / "key.csv").exists()
    (kit / "annotator-a09.csv").write_text("stale")
    _one_line_exit_2(_human_export(cli, files, kit), "pass --force")
    assert _human_export(cli, files, kit, "--force").exit_code == 0
    assert not (kit / "annotator-a09.csv").exists() and (kit / "README.txt").exists()
    assert sorted(files["dir"].rglob(".*.tmp")) == []


def test_human_export_rename_fails_leaves_nothing(cli, files, monkeypatch):
    def refuse(src, dst):
        raise OSError(errno.EROFS, "Read-only file system", src, None, dst)

    monkeypatch.setattr(outputs.os, "rename", refuse)
    out = files["dir"] / "new" / "kit"
    _one_line_exit_2(_human_export(cli, files, out), f"{out}: read-only file system")
    assert not (files["dir"] / "new").exists() and sorted(files["dir"].rglob(".*.tmp")) == []
