"""The quickstart with no data mirror: every input from its public origin, here a loopback "internet"
(one server on 127.0.0.1 serving tiny files in each origin's real format at the official paths, reached
through ``PERSONA_TESTBED_ORIGINS_URL``), then the whole pipeline on the stub model."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from e2e_tools import stub  # noqa: F401 (fixture)

from origin_fixtures import file_server_running, serve_origins

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def origins(monkeypatch):
    """The loopback origins; no mirror and no real host reachable."""
    for var in (
        "PERSONA_TESTBED_MIRROR",
        "PERSONA_TESTBED_CENSUS_URL",
        "PERSONA_TESTBED_HF_URL",
        "HF_ENDPOINT",
        "PERSONA_TESTBED_GSS_URL",
    ):
        monkeypatch.delenv(var, raising=False)
    with file_server_running() as server:
        serve_origins(server)
        monkeypatch.setenv("PERSONA_TESTBED_ORIGINS_URL", server.base)
        yield server


def quickstart_config(tmp: Path, data_dir: Path, base_url: str) -> Path:
    """configs/quickstart.toml as shipped, on the stub model and the fetched data directory."""
    text = (REPO / "configs" / "quickstart.toml").read_text(encoding="utf-8")
    text = text.replace('default = "embedded"', 'default = "openai/stub"')
    text = re.sub(r"\[llm\]\n", f'[llm]\nbase_url = "{base_url}"\n', text, count=1)
    text += f'\n[data]\ndir = "{data_dir}"\n'
    cfg = tmp / "quickstart.toml"
    cfg.write_text(text, encoding="utf-8")
    return cfg


def test_quickstart_from_public_origins_only(cli, origins, stub, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    ddir = tmp_path / "data"
    start = time.perf_counter()
    r = cli("data", "fetch", "quickstart", "--data-dir", ddir, "--json")
    fetch_s = time.perf_counter() - start
    assert r.exit_code == 0, r.stderr
    rows = {x["relpath"]: x for x in json.loads(r.stdout)}
    assert {x["status"] for x in rows.values()} <= {"downloaded", "derived"}
    assert rows["census/dictionaries/PUMS_Data_Dictionary_2024.csv"]["status"] == "downloaded"
    assert rows["census/acs/2024/1-Year-extract/p_50.parquet"]["note"] == "from csv_pvt.zip"
    assert rows["norms/bigfive/ipipneo120_norms_by_sex_age.csv"]["checksum"] == "manifest"
    assert len([k for k in rows if "1-Year-extract" in k]) == 8  # 4 states x person + housing
    # only the raw downloads' URLs were asked for, each once
    assert len(origins.requests) == len({p for p, _, _ in origins.requests}) == 8 + 1 + 1 + 1
    assert not list((ddir / ".downloads").rglob("*.*"))  # raw downloads removed once derived
    listed = cli("data", "list", "quickstart", "--json", "--data-dir", ddir)
    assert {x["status"] for x in json.loads(listed.stdout)} == {"ok"}
    print(
        f"\nno-mirror quickstart fetch: {origins.bytes_served():,} bytes from loopback origins "
        f"in {fetch_s:.2f} s"
    )

    cfg = quickstart_config(tmp_path, ddir, stub.base_url)
    out = tmp_path / "run"
    start = time.perf_counter()
    r = cli("run", cfg, "--out", out, "--quiet")
    assert r.exit_code == 0, r.stderr
    print(f"quickstart run on the stub: {time.perf_counter() - start:.1f} s")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "done"
    assert "census/acs/2024/1-Year-extract/p_56.parquet" in manifest["data"]
    assert "prompts/prism/prism_opening_prompts.json" in manifest["data"]
    source = json.loads((out / "census" / "source.json").read_text())
    assert source["year"] == 2024 and sorted(source["states"]) == ["10", "38", "50", "56"]
    personas = [json.loads(x) for x in (out / "personas" / "personas.jsonl").read_text().splitlines()]
    assert len(personas) == 3 and all(p["fields"]["religion"]["provenance"] == "survey" for p in personas)
    assert (out / "report" / "index.html").is_file()


def test_captive_portal_is_refused_and_nothing_written(cli, origins, tmp_path):
    from persona_testbed.data.origins import PRISM_URL

    portal = b"<!DOCTYPE html><html><body>Please log in to the hotel wifi</body></html>"
    path = origins.add_official(PRISM_URL, portal).split(origins.base, 1)[1]
    origins.content_type[path] = "text/html; charset=utf-8"
    ddir = tmp_path / "data"
    r = cli("data", "fetch", "prism", "--data-dir", ddir)
    assert r.exit_code == 2
    err = r.stderr.strip()
    assert "\n" not in err and "HTML page instead of the file" in err and "conversations.jsonl" in err
    assert origins.base + path in err
    assert not [p for p in ddir.rglob("*") if p.is_file() and not p.name.startswith(".")]
