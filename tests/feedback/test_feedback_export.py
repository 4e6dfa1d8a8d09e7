"""Exports: JSONL, Parquet, Hugging Face folder (loaded with `datasets`), TRL preference rows."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import polars as pl
import pytest

from persona_testbed.core import outputs
from persona_testbed.core.errors import UserError
from persona_testbed.core.outputs import MARKER
from persona_testbed.feedback import TEMPLATE_VERSION, FeedbackConfig, PairCounts, export_pairs
from persona_testbed.llm import LLMClient, MockBackend, PermanentError
from persona_testbed.pipeline.stages.feedback import generate_pairs


@pytest.fixture
def run_dir(tmp_path, prompt_set, personas3, scripted):
    def reply(messages):  # one persona's critiques fail: failed pairs must stay out of hf/trl exports
        if "role-playing" in messages[0]["content"] and "Age 45" in messages[0]["content"]:
            return PermanentError("refused")
        return scripted(messages)

    out = tmp_path / "fb"
    generate_pairs(
        personas3,
        prompt_set(6, 2),
        out_dir=out,
        client=LLMClient(backend=MockBackend(reply)),
        config=FeedbackConfig(counts=PairCounts(train=2, test=1, held_out=1), seed=3),
    )
    return out


def test_jsonl_and_parquet_keep_every_pair(run_dir, tmp_path):
    res = export_pairs(run_dir, "jsonl", tmp_path / "x.jsonl")
    rows = [json.loads(x) for x in (tmp_path / "x.jsonl").read_text().splitlines()]
    assert res["counts"] == {"pairs": 12} and len(rows) == 12
    assert sum(r["status"] == "failed" for r in rows) == 4
    export_pairs(run_dir, "parquet", tmp_path / "x.parquet")
    df = pl.read_parquet(tmp_path / "x.parquet")
    assert df.height == 12 and df["id"].to_list() == [r["id"] for r in rows]


def test_hf_folder_loads_with_datasets(run_dir, tmp_path):
    datasets = pytest.importorskip("datasets")
    out = tmp_path / "hf"
    res = export_pairs(run_dir, "hf", out)
    assert res["counts"] == {"train": 4, "test": 2, "held_out": 2}
    card = (out / "README.md").read_text()
    header = card.split("---")[1]
    assert "license: cc-by-4.0" in header and "config_name: default" in header
    for split in ("train", "test", "held_out"):
        assert f"split: {split}" in header and f"path: data/{split}-*.parquet" in header
    assert "CC-BY-4.0" in card and "Kirk" in card and "public domain" in card
    assert "mock" in card and "seed: 3" in card and TEMPLATE_VERSION in card
    ds = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "hf_cache"))
    assert {k: len(v) for k, v in ds.items()} == {"train": 4, "test": 2, "held_out": 2}
    row = ds["train"][0]
    assert row["chosen"] and row["rejected"] and row["persona_text"] and row["split"] == "train"
    files = {s: str(out / "data" / f"{s}-00000-of-00001.parquet") for s in ("train", "test", "held_out")}
    ds2 = datasets.load_dataset("parquet", data_files=files, cache_dir=str(tmp_path / "hf_cache"))
    assert ds2["held_out"].num_rows == 2
    # exporting again needs force, and replaces the folder atomically
    with pytest.raises(UserError, match="pass --force to replace the previous hf-export output"):
        export_pairs(run_dir, "hf", out)
    export_pairs(run_dir, "hf", out, force=True)
    assert sorted(p.name for p in (out / "data").iterdir()) == sorted(
        f.split("/")[-1] for f in files.values()
    )


def test_trl_rows_shape(run_dir, tmp_path):
    out = tmp_path / "trl"
    res = export_pairs(run_dir, "trl", out)
    assert res["counts"] == {"train": 4, "test": 2, "held_out": 2}
    for split, n in res["counts"].items():
        rows = [json.loads(x) for x in (out / f"{split}.jsonl").read_text().splitlines()]
        assert len(rows) == n
        for r in rows:
            assert [m["role"] for m in r["prompt"]] == ["system", "user"]
            assert r["prompt"][0]["content"].startswith("Age ") and r["prompt"][1]["content"].endswith("?")
            assert [m["role"] for m in r["chosen"]] == ["assistant"] == [m["role"] for m in r["rejected"]]
            assert r["chosen"][0]["content"] != r["rejected"][0]["content"]
    datasets = pytest.importorskip("datasets")
    ds = datasets.load_dataset(
        "json", data_files=str(out / "train.jsonl"), split="train", cache_dir=str(tmp_path / "hf_cache")
    )
    assert {"prompt", "chosen", "rejected"} <= set(ds.column_names)


def test_cli_export_and_bad_format(cli, run_dir, tmp_path):
    r = cli("feedback", "export", run_dir, "--format", "trl", "--out", tmp_path / "t", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["counts"]["train"] == 4
    r = cli("feedback", "export", run_dir, "--format", "csv", "--out", tmp_path / "c")
    assert r.exit_code == 2 and "unknown export format 'csv'" in r.stderr and not (tmp_path / "c").exists()
    r = cli("feedback", "export", tmp_path / "nothing", "--format", "jsonl", "--out", tmp_path / "n.jsonl")
    assert r.exit_code == 2 and not (tmp_path / "n.jsonl").exists()


# -- outputs that cannot destroy (regressions: export used to rmtree whatever --out named) --------------


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _leftovers(root: Path) -> list[Path]:
    return sorted(root.rglob(".*.tmp"))


def _one_line_exit_2(r, *needles: str) -> None:
    assert r.exit_code == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in r.stderr, r.stderr
    for needle in needles:
        assert needle in lines[0], r.stderr


@pytest.mark.parametrize("fmt", ["hf", "trl"])
@pytest.mark.parametrize("force", [[], ["--force"]])
def test_unrelated_file_in_out_survives(cli, run_dir, tmp_path, fmt, force):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("my notes")
    r = cli("feedback", "export", run_dir, "--format", fmt, "--out", out, *force)
    _one_line_exit_2(r, str(out), "not written by persona-testbed")
    assert _tree(out) == {"notes.txt": b"my notes"} and _leftovers(tmp_path) == []


@pytest.mark.parametrize("fmt", ["hf", "trl", "jsonl", "parquet"])
def test_out_is_the_feedback_dir_refused_and_intact(cli, run_dir, tmp_path, fmt):
    before = _tree(run_dir)
    assert {"pairs.jsonl", "pairs.parquet"} <= set(before)
    for args in (
        [run_dir, "--out", run_dir],
        [run_dir / "pairs.jsonl", "--out", run_dir],
        [run_dir, "--out", run_dir / "pairs.parquet"],
        [run_dir / "pairs.jsonl", "--out", run_dir / "x"],
    ):
        for force in ([], ["--force"]):
            r = cli("feedback", "export", args[0], "--format", fmt, *args[1:], *force)
            _one_line_exit_2(r, str(args[2]))
    assert _tree(run_dir) == before and _leftovers(tmp_path) == []


@pytest.mark.parametrize("fmt", ["hf", "trl"])
def test_out_dot_refused_nothing_deleted(cli, run_dir, tmp_path, monkeypatch, fmt):
    (tmp_path / "unrelated.txt").write_text("keep")
    before = _tree(tmp_path)
    monkeypatch.chdir(tmp_path)  # the working directory holds the feedback directory
    _one_line_exit_2(
        cli("feedback", "export", "fb", "--format", fmt, "--out", ".", "--force"), "contains the input"
    )
    work = tmp_path / "work"
    work.mkdir()
    (work / "file.txt").write_text("keep too")
    monkeypatch.chdir(work)  # an unrelated working directory
    for force in ([], ["--force"]):
        _one_line_exit_2(cli("feedback", "export", run_dir, "--format", fmt, "--out", ".", *force), ".:")
    assert _tree(tmp_path) == {**before, "work/file.txt": b"keep too"} and _leftovers(tmp_path) == []


def test_force_replaces_previous_export_of_the_same_format_only(cli, run_dir, tmp_path):
    out = tmp_path / "trl"
    assert cli("feedback", "export", run_dir, "--format", "trl", "--out", out).exit_code == 0
    assert json.loads((out / MARKER).read_text())["kind"] == "trl-export"
    (out / "stale.jsonl").write_text("from the previous export")
    _one_line_exit_2(cli("feedback", "export", run_dir, "--format", "trl", "--out", out), "pass --force")
    assert (out / "stale.jsonl").exists()
    r = cli("feedback", "export", run_dir, "--format", "trl", "--out", out, "--force")
    assert r.exit_code == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [MARKER, "train.jsonl", "test.jsonl", "held_out.jsonl"]
    )
    before = _tree(out)  # a trl export is not an hf export: --force does not replace it
    _one_line_exit_2(
        cli("feedback", "export", run_dir, "--format", "hf", "--out", out, "--force"),
        "holds a persona-testbed trl-export output, not hf-export",
    )
    assert _tree(out) == before and _leftovers(tmp_path) == []
    empty = tmp_path / "empty"
    empty.mkdir()  # an empty directory is fine without --force
    assert cli("feedback", "export", run_dir, "--format", "hf", "--out", empty).exit_code == 0
    assert (empty / "README.md").exists()


def test_parent_is_a_file(cli, run_dir, tmp_path):
    (tmp_path / "afile").write_text("x")
    for fmt, out in (("hf", tmp_path / "afile" / "hf"), ("jsonl", tmp_path / "afile" / "sub" / "x.jsonl")):
        _one_line_exit_2(
            cli("feedback", "export", run_dir, "--format", fmt, "--out", out), str(out), "a parent is a file"
        )
    assert (tmp_path / "afile").read_text() == "x" and _leftovers(tmp_path) == []
    d = tmp_path / "adir"
    d.mkdir()
    _one_line_exit_2(cli("feedback", "export", run_dir, "--format", "jsonl", "--out", d), "is a directory")


def test_read_only_rename_is_one_line(cli, run_dir, tmp_path, monkeypatch):
    """A read-only / immutable target: the final rename fails with EROFS (simulated; root ignores chmod)."""

    def refuse(src, dst, **kw):
        raise OSError(errno.EROFS, "Read-only file system", src, None, dst)

    monkeypatch.setattr(outputs.os, "rename", refuse)  # a directory output's final rename
    for fmt in ("hf", "trl"):
        out = tmp_path / "new" / fmt
        _one_line_exit_2(
            cli("feedback", "export", run_dir, "--format", fmt, "--out", out), f"{out}: read-only file system"
        )
        assert not (tmp_path / "new").exists() and _leftovers(tmp_path) == []
    monkeypatch.setattr(os, "replace", refuse)  # every atomic file write (the marker included)
    for fmt, name in (("hf", "hf"), ("jsonl", "x.jsonl"), ("parquet", "x.parquet")):
        out = tmp_path / "new" / name
        _one_line_exit_2(
            cli("feedback", "export", run_dir, "--format", fmt, "--out", out),
            str(out),
            "read-only file system",
        )
        assert not (tmp_path / "new").exists() and _leftovers(tmp_path) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_read_only_directory(cli, run_dir, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        for fmt, name in (("hf", "hf"), ("jsonl", "x.jsonl")):
            _one_line_exit_2(
                cli("feedback", "export", run_dir, "--format", fmt, "--out", ro / name),
                f"{ro / name}: permission denied",
            )
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o755)
