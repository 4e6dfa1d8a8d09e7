"""Exports: JSONL, Parquet, Hugging Face folder (loaded with `datasets`), TRL preference rows."""

from __future__ import annotations

import json

import polars as pl
import pytest

from persona_testbed.feedback import FeedbackConfig, PairCounts, export_pairs, generate_pairs
from persona_testbed.llm import LLMClient, MockBackend, PermanentError


@pytest.fixture
def run_dir(tmp_path, prompt_set, personas3, scripted):
    def reply(messages):  # one persona's critiques fail: failed pairs must stay out of hf/trl exports
        if "role-playing" in messages[0]["content"] and "Age 45" in messages[0]["content"]:
            return PermanentError("refused")
        return scripted(messages)

    out = tmp_path / "fb"
    generate_pairs(personas3, prompt_set(6, 2), out_dir=out, client=LLMClient(backend=MockBackend(reply)),
                   config=FeedbackConfig(counts=PairCounts(train=2, test=1, held_out=1), seed=3))
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
    assert "mock" in card and "seed: 3" in card and "dpf-v1" in card
    ds = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "hf_cache"))
    assert {k: len(v) for k, v in ds.items()} == {"train": 4, "test": 2, "held_out": 2}
    row = ds["train"][0]
    assert row["chosen"] and row["rejected"] and row["persona_text"] and row["split"] == "train"
    files = {s: str(out / "data" / f"{s}-00000-of-00001.parquet") for s in ("train", "test", "held_out")}
    ds2 = datasets.load_dataset("parquet", data_files=files, cache_dir=str(tmp_path / "hf_cache"))
    assert ds2["held_out"].num_rows == 2
    # exporting again replaces the folder atomically
    export_pairs(run_dir, "hf", out)
    assert sorted(p.name for p in (out / "data").iterdir()) == sorted(f.split("/")[-1] for f in files.values())


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
    ds = datasets.load_dataset("json", data_files=str(out / "train.jsonl"), split="train",
                               cache_dir=str(tmp_path / "hf_cache"))
    assert {"prompt", "chosen", "rejected"} <= set(ds.column_names)


def test_cli_export_and_bad_format(cli, run_dir, tmp_path):
    r = cli("feedback", "export", run_dir, "--format", "trl", "--out", tmp_path / "t", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["counts"]["train"] == 4
    r = cli("feedback", "export", run_dir, "--format", "csv", "--out", tmp_path / "c")
    assert r.exit_code == 2 and "unknown export format 'csv'" in r.stderr and not (tmp_path / "c").exists()
    r = cli("feedback", "export", tmp_path / "nothing", "--format", "jsonl", "--out", tmp_path / "n.jsonl")
    assert r.exit_code == 2 and not (tmp_path / "n.jsonl").exists()
