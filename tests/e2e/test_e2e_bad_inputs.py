"""Bad-input sweep: malformed data files (census zips, PUMS columns, dictionaries, prompt files, labels)
and impossible sizes each give a one-line error, exit 2, and leave no run directory behind.
(Malformed configs are swept in test_e2e_config.py.)"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import pytest
from e2e_tools import e2e_env, find_mirror, shared_home, stub_config  # noqa: F401 (fixtures)

WY_ZIP = "census/acs/2018/1-Year/csv_pwy.zip"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """A data directory linking the mirror's dictionaries, targets, surveys and norms, plus 2018 Wyoming."""
    mirror = find_mirror()
    if mirror is None:
        pytest.skip("offline data mirror (../shared/data) not available")
    d = tmp_path_factory.mktemp("bad-data")
    for rel in ("census/dictionaries", "census/targets", "survey", "norms", "prompts"):
        (d / rel).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(mirror / rel, d / rel)
    (d / "census/acs/2018/1-Year").mkdir(parents=True)
    os.symlink(mirror / WY_ZIP, d / WY_ZIP)
    return d


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    path.write_bytes(buf.getvalue())
    return path


def _census_dir(tmp: Path, files: dict[str, bytes | None]) -> Path:
    d = tmp / "pums"
    d.mkdir(exist_ok=True)
    for name, data in files.items():
        if data is not None:
            (d / name).write_bytes(data)
    return d


def _setup(case: str, tmp: Path, data: Path, mirror: Path) -> tuple[dict[str, str], str]:
    """(TOML edits: 'section.key' -> TOML value, expected text in the error) for one malformed input."""
    if case == "corrupt_zip":
        d = _census_dir(tmp, {"csv_pwy.zip": b"PK\x03\x04 this is not really a zip file" * 20})
        return {"census.source": f'"{d}"'}, "csv_pwy.zip"
    if case == "zip_without_csv":
        d = tmp / "pums"
        _zip(d / "csv_pwy.zip", {"README.txt": b"no data here"})
        return {"census.source": f'"{d}"'}, "csv_pwy.zip"
    if case == "empty_zip_file":
        d = _census_dir(tmp, {"csv_pwy.zip": b""})
        return {"census.source": f'"{d}"'}, "csv_pwy.zip"
    if case == "missing_pums_columns":
        d = tmp / "pums"
        csv = b"RT,SERIALNO,SPORDER,ST,PWGTP\nP,2018HU0000001,1,56,10\nP,2018HU0000002,1,56,12\n"
        _zip(d / "csv_pwy.zip", {"psam_p56.csv": csv})
        return {"census.source": f'"{d}"'}, "AGEP"
    if case == "corrupt_parquet":
        d = _census_dir(tmp, {"p_56.parquet": b"PAR1 garbage garbage PAR1"})
        return {"census.source": f'"{d}"'}, "p_56.parquet"
    if case == "empty_census_dir":
        d = _census_dir(tmp, {})
        return {"census.source": f'"{d}"'}, "no PUMS person files"
    if case == "wrong_dictionary_year":
        dd = tmp / "data-2023-dict"
        (dd / "census/dictionaries").mkdir(parents=True)
        os.symlink(
            mirror / "census/dictionaries/PUMS_Data_Dictionary_2023.csv",
            dd / "census/dictionaries/PUMS_Data_Dictionary_2023.csv",
        )
        (dd / "census/acs/2018/1-Year").mkdir(parents=True)
        os.symlink(mirror / WY_ZIP, dd / WY_ZIP)
        return {"data.dir": f'"{dd}"'}, "dictionary"
    if case == "census_year_absent":
        return {"census.source": '"acs2031"'}, "acs2031"
    if case == "state_not_in_source":
        return {"census.states": '["CA"]'}, "CA"
    if case == "zero_records_after_filters":
        return {"census.min_age": "119", "census.max_age": "120"}, "record"
    if case == "n_above_population_without_replacement":
        return {"census.replacement": "false", "personas.n": "100000"}, "100000"
    if case == "unknown_quota_column":
        return {"census.quota_by": '["NOT_A_COLUMN"]'}, "NOT_A_COLUMN"
    if case == "unknown_rake_target":
        return {"census.rake": '"no-such-targets"'}, "no-such-targets"
    if case == "non_utf8_prompts":
        (tmp / "p.txt").write_bytes("Is caf\xe9 culture good for cities today?\n".encode("latin-1"))
        return {"prompts.source": f'"{tmp / "p.txt"}"'}, "p.txt"
    if case == "empty_prompts_file":
        (tmp / "p.txt").write_text("")
        return {"prompts.source": f'"{tmp / "p.txt"}"'}, "p.txt"
    if case == "malformed_jsonl_prompts":
        (tmp / "p.jsonl").write_text('{"text": "Is this fine for everyone here?"}\n{"text": broken\n')
        return {"prompts.source": f'"{tmp / "p.jsonl"}"'}, "p.jsonl"
    if case == "csv_prompts_without_text_column":
        (tmp / "p.csv").write_text("id,colour\n1,blue\n2,red\n")
        return {"prompts.source": f'"{tmp / "p.csv"}"'}, "p.csv"
    if case == "no_prompt_passes_filters":
        (tmp / "p.txt").write_text("hello there\nno questions here at all\nshort?\n")
        return {"prompts.source": f'"{tmp / "p.txt"}"'}, "filters"
    if case == "prism_missing_from_data_dir":
        dd = tmp / "no-prism"
        for rel in ("census", "survey", "norms"):
            os.symlink(data / rel, dd / rel) if dd.exists() else (
                dd.mkdir(),
                os.symlink(data / rel, dd / rel),
            )
        return {"data.dir": f'"{dd}"', "prompts.source": '"prism"'}, "prism"
    if case == "pairs_exceed_prompt_pool":
        return {"feedback.pairs.train": "40"}, "40"
    if case == "malformed_labels_csv":
        (tmp / "labels.csv").write_text("persona_id,pair_id\np1\n")
        return {
            "bench.tasks": '["agreement"]',
            "bench.agreement.labels": f'"{tmp / "labels.csv"}"',
        }, "labels.csv"
    if case == "missing_gguf_model_file":
        return {"models.feedback": f'"gguf:{tmp / "nope.gguf"}"'}, "nope.gguf"
    if case == "remote_model_without_key":
        return {
            "models.default": '"openai/gpt-4o-mini"',
            "llm.base_url": '"https://api.openai.com/v1"',
            "_unset_key": "1",
        }, "OPENAI_API_KEY"
    raise AssertionError(case)


CASES = [
    "corrupt_zip",
    "zip_without_csv",
    "empty_zip_file",
    "missing_pums_columns",
    "corrupt_parquet",
    "empty_census_dir",
    "wrong_dictionary_year",
    "census_year_absent",
    "state_not_in_source",
    "zero_records_after_filters",
    "n_above_population_without_replacement",
    "unknown_quota_column",
    "unknown_rake_target",
    "non_utf8_prompts",
    "empty_prompts_file",
    "malformed_jsonl_prompts",
    "csv_prompts_without_text_column",
    "no_prompt_passes_filters",
    "prism_missing_from_data_dir",
    "pairs_exceed_prompt_pool",
    "malformed_labels_csv",
    "missing_gguf_model_file",
    "remote_model_without_key",
]


def _edit(cfg: Path, edits: dict[str, str]) -> None:
    """Set ``section.key = value`` in the TOML text (replacing the key or adding it to its table)."""
    import tomllib

    import tomli_w

    data = tomllib.loads(cfg.read_text())
    for dotted, value in edits.items():
        *path, key = dotted.split(".")
        node = data
        for part in path:
            node = node.setdefault(part, {})
        node[key] = tomllib.loads(f"v = {value}")["v"]
    cfg.write_text(tomli_w.dumps(data))


@pytest.mark.parametrize("case", CASES)
def test_bad_input_one_line_exit_2_no_artifacts(case, cli, e2e_env, mirror, data_dir, tmp_path, monkeypatch):
    cfg = stub_config(tmp_path, data_dir, "http://127.0.0.1:9/v1", bench=False, classify=False)
    edits, expected = _setup(case, tmp_path, data_dir, mirror)
    if edits.pop("_unset_key", None):
        monkeypatch.delenv("OPENAI_API_KEY")
    _edit(
        cfg,
        {"census.states": '["WY"]', **edits}
        if "census.source" not in edits
        else {**edits, "census.states": "[]"},
    )
    out = tmp_path / "run"
    r = cli("run", cfg, "--out", out, "--quiet")
    assert r.exit_code == 2, (case, r.stdout, r.stderr)
    assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, r.stderr
    assert "Traceback" not in r.stderr
    assert expected.lower() in r.stderr.lower(), r.stderr
    assert not out.exists(), sorted(p.name for p in out.rglob("*"))


def test_sweep_is_big_enough():
    from test_e2e_config import BAD_CONFIGS

    assert len(CASES) >= 20 and len(CASES) + len(BAD_CONFIGS) >= 40
