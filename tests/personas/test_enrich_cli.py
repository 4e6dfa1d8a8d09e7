"""``persona-testbed personas enrich`` / ``personas stats`` end to end against a loopback stub server."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_enrich_support import procedural_persona, stub_responder  # noqa: E402

from persona_testbed.llm.stub_server import StubServer  # noqa: E402
from persona_testbed.personas.io import read_personas, write_personas  # noqa: E402
from persona_testbed.personas.record import PERSONA_FIELDS  # noqa: E402


def is_bad(profile: str) -> bool:
    return "ancestry: Bad" in profile


@pytest.fixture
def stub(monkeypatch):
    with StubServer(responder=stub_responder(inconsistent=is_bad)) as srv:
        monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
        yield srv


@pytest.fixture
def persona_dir(tmp_path):
    d = tmp_path / "in"
    write_personas(
        [
            procedural_persona("p-a", "S1", ancestry="Irish"),
            procedural_persona("p-b", "S2", ancestry="Bad", survey=False),
            procedural_persona("p-c", "S3", ancestry="Welsh"),
        ],
        d,
    )
    return d


def test_enrich_writes_personas_and_report_and_resumes(cli, stub, persona_dir, tmp_path):
    out = tmp_path / "out"
    r = cli("personas", "enrich", "--model", "openai/writer", persona_dir, out, "--seed", "3", "--json")
    assert r.exit_code == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["written"] == 3 and summary["calls per persona"] == 1.0
    got = read_personas(out)
    assert [p.id for p in got] == ["p-a", "p-b", "p-c"]
    assert all(p.fields["mannerisms"].provenance == "llm" for p in got)
    assert got[1].fields["religion"].provenance == "llm" and got[0].fields["religion"].provenance == "survey"
    report = json.loads((out / "enrich_report.json").read_text())
    assert report["enrich_model"] == "openai/writer" and report["seed"] == 3
    assert (out / "calls.db").exists() and (out / "personas.parquet").exists()
    served = stub.stats["ok"]
    # re-run: every call replays from OUT/calls.db, the output is identical
    r2 = cli("personas", "enrich", "--model", "openai/writer", persona_dir, out, "--seed", "3", "--json")
    assert r2.exit_code == 0 and stub.stats["ok"] == served
    assert json.loads(r2.stdout)["cached calls"] == 3
    assert [p.model_dump() for p in read_personas(out)] == [p.model_dump() for p in got]


def test_enrich_with_judge_records_rejections_and_stats_reports_them(cli, stub, persona_dir, tmp_path):
    out = tmp_path / "out"
    # the sampler's report next to the input: its rule rejections travel into the enrich report
    (persona_dir / "personas_report.json").write_text(
        json.dumps(
            {"rules": {"checked": 20, "rejections": {"married_under_15": 2, "fertility_for_male": 1, "x": 0}}}
        )
    )
    r = cli(
        "personas",
        "enrich",
        "-m",
        "openai/writer",
        "--judge-model",
        "openai/judge",
        "--no-resample",
        persona_dir,
        out,
        "--json",
    )
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["written"] == 2
    report = json.loads((out / "enrich_report.json").read_text())
    assert report["failures"][0]["persona_id"] == "p-b" and report["failures"][0]["stage"] == "inconsistent"
    assert report["judge"]["rejection_rate"] == pytest.approx(1 / 3)

    s = cli("personas", "stats", out, "--json")
    assert s.exit_code == 0, s.stderr
    stats = json.loads(s.stdout)
    assert stats["personas"] == 2 and set(stats["provenance"]) == set(PERSONA_FIELDS)
    assert stats["provenance"]["lifestyle"] == {"llm": 2}
    assert stats["provenance"]["age"] == {"census": 2}
    judge_rows = [x for x in stats["rejections"] if x["source"] == "llm judge"]
    assert {"reason": "(inconsistent)", "rejected": 1, "checked": 3} == {
        k: judge_rows[-1][k] for k in ("reason", "rejected", "checked")
    }
    rule_rows = {
        x["reason"]: (x["rejected"], x["checked"], x["rate"])
        for x in stats["rejections"]
        if x["source"] == "rules"
    }
    assert rule_rows == {
        "married_under_15": (2, 20, 0.1),
        "fertility_for_male": (1, 20, 0.05),
        "(all rules, breaches)": (3, 20, 0.15),
    }
    assert stats["diversity"]["overall"]["distinct_1"] > 0 and stats["enrich_failures"] == 1
    table = cli("personas", "stats", out / "personas.jsonl")
    assert table.exit_code == 0 and "provenance per field" in table.stdout and "llm judge" in table.stdout


def test_model_that_never_returns_json_fails_every_persona_exit_3(cli, persona_dir, tmp_path, monkeypatch):
    # every call fails (no valid JSON after the re-asks): the stage stops with the cause, exit 3 (issue 13)
    with StubServer(responder=lambda req: "sorry, no JSON today") as srv:
        monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
        out = tmp_path / "out"
        r = cli("personas", "enrich", "--model", "openai/bad", persona_dir, out, "--no-progress")
    assert r.exit_code == 3, r.stderr
    assert (
        r.stderr.startswith("error: enrich: invalid structured output")
        and len(r.stderr.strip().splitlines()) == 1
    )
    assert "for 3 of 3 calls" in r.stderr
    report = json.loads((out / "enrich_report.json").read_text())
    assert [f["persona_id"] for f in report["failures"]] == ["p-a", "p-b", "p-c"]
    assert not (out / "personas.jsonl").exists()


def test_empty_persona_file_exit_2(cli, tmp_path):
    empty = tmp_path / "personas.jsonl"
    empty.write_text("")
    r = cli("personas", "enrich", "--model", "mock", empty, tmp_path / "out")
    assert r.exit_code == 2 and "no personas" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_persona_file_missing_a_field_exit_2(cli, tmp_path):
    obj = procedural_persona("p-a").model_dump(mode="json")
    del obj["fields"]["mannerisms"]
    bad = tmp_path / "personas.jsonl"
    bad.write_text(json.dumps(obj) + "\n")
    r = cli("personas", "enrich", "--model", "mock", bad, tmp_path / "out")
    assert r.exit_code == 2 and "'mannerisms'" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    s = cli("personas", "stats", bad)
    assert s.exit_code == 2 and "'mannerisms'" in s.stderr


def test_unknown_model_exit_2(cli, persona_dir, tmp_path):
    r = cli("personas", "enrich", "--model", "nonsense", persona_dir, tmp_path / "out")
    assert r.exit_code == 2 and "unknown model string 'nonsense'" in r.stderr
    assert not (tmp_path / "out").exists()


def test_sample_kwargs_from_report(tmp_path):
    from persona_testbed.personas.resample import sample_kwargs_from_report

    (tmp_path / "personas_report.json").write_text(
        json.dumps(
            {
                "source": "acs2018",
                "states": ["33", "50"],
                "filters": "age 25-64, states NH,VT",
                "replace": True,
            }
        )
    )
    assert sample_kwargs_from_report(tmp_path / "personas.jsonl") == {
        "source": "acs2018",
        "states": ["33", "50"],
        "adults_only": False,
        "min_age": 25,
        "max_age": 64,
        "replace": True,
    }
    assert sample_kwargs_from_report(tmp_path / "elsewhere" / "personas.jsonl") == {}


def test_sample_with_enrich_and_judge(cli, stub, mirror, tmp_path):
    out = tmp_path / "run"
    r = cli(
        "personas",
        "sample",
        "--n",
        "4",
        "--seed",
        "2",
        "--source",
        "acs2018",
        "--data-dir",
        mirror,
        "--out",
        out,
        "--enrich",
        "--model",
        "openai/writer",
        "--judge-model",
        "openai/judge",
        "--json",
    )
    assert r.exit_code == 0, r.stderr
    got = read_personas(out)
    assert len(got) == 4
    for p in got:
        assert p.fields["detailed job description"].provenance == "llm"
        assert p.fields["age"].provenance == "census" and p.source.year == 2018
    report = json.loads((out / "enrich_report.json").read_text())
    assert report["judge"]["judged"] == 4 and report["rules"]["checked"] >= 4
    manifest = json.loads((out / "personas_manifest.json").read_text())
    assert manifest["seed"] == 2 and manifest["enrich"]["judge_model"] == "openai/judge"  # sample keys kept
    assert json.loads(r.stdout)["report"]["enrich"]["written"] == 4
    s = cli("personas", "stats", out, "--json")
    sources = {x["source"] for x in json.loads(s.stdout)["rejections"]}
    assert sources == {"rules", "llm judge"}
