"""End-to-end: ``personas sample`` / ``personas show`` / ``census fidelity`` on the offline mirror."""

import json

import polars as pl
import pytest

from persona_testbed.personas import PERSONA_FIELDS, read_personas
from persona_testbed.personas.record import Persona, SourceKey
from persona_testbed.personas.reports import (
    FIDELITY_REPORT_SCHEMA_VERSION,
    SAMPLE_REPORT_SCHEMA_VERSION,
    FidelityReport,
    SampleReport,
)

pytestmark = pytest.mark.shared_data


@pytest.fixture(scope="module")
def shared_home(tmp_path_factory):
    """One home (census decode + donor caches) for this module's runs."""
    return tmp_path_factory.mktemp("personas-home")


@pytest.fixture
def run(cli, mirror, shared_home, monkeypatch):
    monkeypatch.setenv("PERSONA_TESTBED_HOME", str(shared_home))

    def go(*args):
        return cli(*args, "--data-dir", mirror)

    return go


def test_sample_small_state_deterministic_and_show(run, cli, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    r1 = run("personas", "sample", "--n", "20", "--seed", "0", "--out", a, "--states", "DE", "--json")
    assert r1.exit_code == 0, r1.stderr
    r2 = run("personas", "sample", "--n", "20", "--seed", "0", "--out", b, "--states", "DE")
    assert r2.exit_code == 0, r2.stderr
    assert (a / "personas.jsonl").read_bytes() == (b / "personas.jsonl").read_bytes()
    personas = read_personas(a / "personas.parquet")
    assert len(personas) == 20 and len({p.id for p in personas}) == 20
    p = personas[0]
    assert p.source.state == "10" and p.source.year == 2024 and int(p.value("age")) >= 18
    assert all(p.fields[f].value for f in PERSONA_FIELDS)
    prov = {f: p.fields[f].provenance for f in PERSONA_FIELDS}
    assert (
        prov["sex"] == "census" and prov["religion"] == "survey" and prov["big five scores"] == "procedural"
    )
    assert prov["household type"] == "derived" and prov["detailed job description"] == "pending"
    assert prov["ancestry"] == "unavailable" and prov["place of birth"] == "unavailable"  # no national donors
    assert p.value("ancestry") == "not recorded in this census source"
    assert set(p.tags) >= {"values", "quirks", "mannerisms", "hobbies", "lifestyle"}
    report = json.loads((a / "personas_report.json").read_text())
    assert report["n"] == 20 and set(report["rules"]["rejections"]) and report["source_checksum"]
    out = json.loads(r1.stdout)
    assert out["report"]["n"] == 20
    shown = cli("personas", "show", p.id, "--personas", a, "--format", "list")
    assert shown.exit_code == 0 and shown.stdout.startswith(f"- age: {p.value('age')}")
    js = cli("personas", "show", p.id, "--personas", a / "personas.jsonl", "--format", "json")
    assert json.loads(js.stdout)["id"] == p.id
    missing = cli("personas", "show", "p-nope", "--personas", a)
    assert missing.exit_code == 2 and "p-nope" in missing.stderr


def test_fidelity_json(run, tmp_path):
    out = tmp_path / "f"
    assert (
        run("personas", "sample", "--n", "60", "--seed", "1", "--out", out, "--states", "VT").exit_code == 0
    )
    res = run("census", "fidelity", "--personas", out, "--json")
    assert res.exit_code == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["n"] == 60 and set(data["fields"]) == set(PERSONA_FIELDS)
    sex = data["fields"]["sex"]
    assert 0 <= sex["tvd"] <= 1 and 0 <= sex["chi2_p"] <= 1 and sex["provenance"] == {"census": 60}
    assert "tvd" in data["fields"]["religion"] and "GSS" in data["fields"]["religion"]["compare_on"]
    assert "age band x sex x race/Hispanic" in data["intersections"]
    assert data["max_tvd_field"] in PERSONA_FIELDS


def test_acs2018_household_fields_from_members(run, tmp_path):
    out = tmp_path / "wy"
    r = run(
        "personas",
        "sample",
        "--n",
        "15",
        "--seed",
        "2",
        "--out",
        out,
        "--source",
        "acs2018",
        "--states",
        "WY",
        "--all-ages",
    )
    assert r.exit_code == 0, r.stderr
    ps = read_personas(out)
    for p in ps:
        assert p.source.year == 2018
        assert p.fields["household type"].detail.get("from") == "members of the same SERIALNO"
        assert p.fields["ancestry"].provenance == "census"
        assert p.fields["place of birth"].provenance == "census"


@pytest.mark.parametrize(
    "args,msg",
    [
        (["--n", "0"], "--n must be a positive"),
        (["--n", "-3"], "--n must be a positive"),
        (["--n", "5", "--states", "ZZ"], "unknown state"),
        (["--n", "5", "--states", "DE", "--min-age", "120"], "zero person records"),
    ],
)
def test_bad_input_exit_2_one_line_nothing_written(run, tmp_path, args, msg):
    out = tmp_path / "bad"
    r = run("personas", "sample", "--out", out, *args)
    assert r.exit_code == 2
    assert msg in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_breaking_personas_are_resampled_and_counted(mirror, shared_home, monkeypatch):
    import persona_testbed.personas.sample as sample_mod

    monkeypatch.setenv("PERSONA_TESTBED_HOME", str(shared_home))
    real_matrix = sample_mod.broken_matrix

    def fake_matrix(frame):  # every persona of the first round (draws 0-5) breaks a rule, replacements pass
        return real_matrix(frame).with_columns(married_under_15=frame["_draw"] < 6)

    base = sample_mod.sample_personas(6, 4, states="DE", data_dir=mirror)
    first_round = {p.id for p in base.personas}
    monkeypatch.setattr(sample_mod, "broken_matrix", fake_matrix)
    res = sample_mod.sample_personas(6, 4, states="DE", data_dir=mirror)
    assert len(res.personas) == 6
    assert not {p.id for p in res.personas} & first_round
    assert res.report["rules"]["rejections"]["married_under_15"] == 6
    assert res.report["rules"]["checked"] == 12
    assert res.report["rules"]["rejection_rate"]["married_under_15"] == 0.5


def test_quota_by_age_band(mirror, shared_home, monkeypatch):
    from persona_testbed.personas.mapping import AGE_BANDS
    from persona_testbed.personas.sample import sample_personas

    monkeypatch.setenv("PERSONA_TESTBED_HOME", str(shared_home))
    res = sample_personas(12, 0, states="VT", quota_by="age_band", data_dir=mirror)
    ages = [int(p.value("age")) for p in res.personas]
    bands = [
        sum(1 for a in ages if lo <= a <= hi)
        for lo, hi in ((18, 24), (25, 34), (35, 44), (45, 54), (55, 64), (65, 200))
    ]
    assert bands == [2] * 6
    assert AGE_BANDS  # reporting bands exist for fidelity


def test_fidelity_bad_input(run, tmp_path):
    r = run("census", "fidelity", "--personas", tmp_path / "nope.jsonl")
    assert r.exit_code == 2 and "no such personas file" in r.stderr
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    r = run("census", "fidelity", "--personas", empty)
    assert r.exit_code == 2 and "no personas" in r.stderr


def test_resampling_keeps_quota_strata(mirror, shared_home, monkeypatch):
    import persona_testbed.personas.sample as sample_mod

    monkeypatch.setenv("PERSONA_TESTBED_HOME", str(shared_home))
    real_matrix = sample_mod.broken_matrix
    first_round: list = []

    def reject_first_round(frame):  # the first round's six personas break a rule, replacements pass
        if not first_round:
            first_round.append(frame.select("_year", "_state", "SERIALNO", "SPORDER", "_draw"))
            return real_matrix(frame).with_columns(veteran_under_17=pl.repeat(True, frame.height, eager=True))
        return real_matrix(frame)

    monkeypatch.setattr(sample_mod, "broken_matrix", reject_first_round)
    res = sample_mod.sample_personas(6, 2, states="VT", quota_by="age_band", data_dir=mirror)
    ages = sorted(int(p.value("age")) for p in res.personas)
    bands = [
        sum(1 for a in ages if lo <= a <= hi)
        for lo, hi in ((18, 24), (25, 34), (35, 44), (45, 54), (55, 64), (65, 200))
    ]
    rejected = {
        Persona.make_id(SourceKey(year=year, state=state, serialno=ser, sporder=spo), draw)
        for year, state, ser, spo, draw in first_round[0].iter_rows()
    }
    assert bands == [1] * 6 and len(rejected) == 6
    assert not {p.id for p in res.personas} & rejected  # every slot holds its replacement


def test_sample_design_option(run, cli, tmp_path):
    bad = cli("personas", "sample", "--n", "5", "--out", tmp_path / "x", "--design", "cluster")
    assert (
        bad.exit_code == 2 and "--design" in bad.stderr and not (tmp_path / "x" / "personas.jsonl").exists()
    )
    a, b = tmp_path / "sys", tmp_path / "ind"
    assert run("personas", "sample", "--n", "12", "--seed", "3", "--out", a, "--states", "DE").exit_code == 0
    r = run(
        "personas",
        "sample",
        "--n",
        "12",
        "--seed",
        "3",
        "--out",
        b,
        "--states",
        "DE",
        "--design",
        "independent",
    )
    assert r.exit_code == 0, r.stderr
    rep_a = json.loads((a / "personas_report.json").read_text())
    rep_b = json.loads((b / "personas_report.json").read_text())
    assert rep_a["design"] == "systematic" and rep_b["design"] == "independent"
    ids = lambda d: [p.source.serialno for p in read_personas(d / "personas.parquet")]  # noqa: E731
    assert ids(a) != ids(b)


def test_map_frame_chunking_does_not_change_the_result(mirror, shared_home, monkeypatch):
    from persona_testbed.census import Filters, sample_persons
    from persona_testbed.personas.build import MappingContext, MapStats, map_frame
    from persona_testbed.personas.sample import _open

    monkeypatch.setenv("PERSONA_TESTBED_HOME", str(shared_home))
    src = _open("acs2024", "DE", mirror)
    ctx = MappingContext(src, 4, mirror, "acs2024")
    draws = sample_persons(src, 230, 4, filters=Filters(adults_only=True), columns=ctx.person_columns())
    s1, s2 = MapStats(), MapStats()
    whole = map_frame(draws, ctx, s1)
    chunked = map_frame(draws, ctx, s2, chunk_rows=70)
    assert whole.equals(chunked)
    assert s1.as_dict() == s2.as_dict()


def test_cli_streams_chunks_to_the_same_personas(run, mirror, shared_home, monkeypatch, tmp_path):
    """``personas sample`` maps, checks and writes one chunk at a time; the files hold exactly the personas
    ``sample_personas`` returns in one piece, with a rule breaker resampled inside its chunk."""
    import persona_testbed.personas.build as build
    import persona_testbed.personas.sample as sample_mod

    whole = sample_mod.sample_personas(23, 5, states="DE", data_dir=mirror)
    monkeypatch.setattr(build, "MAP_CHUNK_ROWS", 5)  # five chunks
    out = tmp_path / "streamed"
    r = run("personas", "sample", "--n", "23", "--seed", "5", "--states", "DE", "--out", out, "--json")
    assert r.exit_code == 0, r.stderr
    assert read_personas(out / "personas.jsonl") == whole.personas
    assert read_personas(out / "personas.parquet") == whole.personas
    report = json.loads((out / "personas_report.json").read_text())
    assert report["n"] == 23 and report["rules"]["checked"] == 23

    real_matrix = sample_mod.broken_matrix
    monkeypatch.setattr(
        sample_mod,
        "broken_matrix",  # draw 12 (chunk 3) breaks a rule once
        lambda frame: real_matrix(frame).with_columns(married_under_15=frame["_draw"] == 12),
    )
    r = run("personas", "sample", "--n", "23", "--seed", "5", "--states", "DE", "--out", tmp_path / "again")
    assert r.exit_code == 0, r.stderr
    again = read_personas(tmp_path / "again")
    assert [p.id for p in again][:12] == [p.id for p in whole.personas][:12]
    assert (
        again[12].id != whole.personas[12].id
        and [p.id for p in again][13:] == [p.id for p in whole.personas][13:]
    )
    report = json.loads((tmp_path / "again" / "personas_report.json").read_text())
    assert report["rules"]["rejections"]["married_under_15"] == 1 and report["rules"]["checked"] == 24


def test_cli_formats_parquet_only_replaces_stale_jsonl(run, cli, tmp_path):
    out = tmp_path / "p"
    assert run("personas", "sample", "--n", "9", "--seed", "2", "--states", "DE", "--out", out).exit_code == 0
    both = read_personas(out / "personas.jsonl")
    r = run(
        "personas",
        "sample",
        "--n",
        "9",
        "--seed",
        "3",
        "--states",
        "DE",
        "--out",
        out,
        "--formats",
        "parquet",
    )
    assert r.exit_code == 0, r.stderr
    assert not (out / "personas.jsonl").exists()  # the earlier run's JSON Lines would shadow the new personas
    fresh = read_personas(out)  # the directory now resolves to the Parquet file
    assert len(fresh) == 9 and [p.id for p in fresh] != [p.id for p in both]
    manifest = json.loads((out / "personas_manifest.json").read_text())
    assert list(manifest["files"]) == ["personas.parquet"]
    bad = cli("personas", "sample", "--n", "5", "--out", tmp_path / "x", "--formats", "csv")
    assert bad.exit_code == 2 and "--formats" in bad.stderr and not (tmp_path / "x").exists()


def test_sample_report_is_a_typed_versioned_record(run, tmp_path):
    """``personas_report.json`` is a ``SampleReport`` (issue 13): versioned, documented, read back exactly."""
    out = tmp_path / "typed"
    r = run("personas", "sample", "--n", "5", "--seed", "2", "--states", "DE", "--out", out, "--json")
    assert r.exit_code == 0, r.stderr
    doc = json.loads((out / "personas_report.json").read_text())
    assert doc["schema_version"] == SAMPLE_REPORT_SCHEMA_VERSION
    assert SampleReport.model_validate(doc).model_dump(mode="json") == doc
    undocumented = [
        name
        for name, f in SampleReport.model_fields.items()
        if not f.description
        and name not in ("schema_version", "rules", "imputation", "ancestry", "survey", "big_five")
    ]
    assert not undocumented

    r = run("census", "fidelity", "--personas", out, "--json")
    assert r.exit_code == 0, r.stderr
    fid = json.loads(r.stdout)
    assert fid["schema_version"] == FIDELITY_REPORT_SCHEMA_VERSION
    assert FidelityReport.model_validate(fid).model_dump(mode="json") == fid
    assert all(f.description for name, f in FidelityReport.model_fields.items() if name != "schema_version")
