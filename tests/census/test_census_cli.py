"""``persona-testbed census``: sources, prepare, rake; errors exit 2 with one line."""

from __future__ import annotations

import json

import polars as pl
import pytest
from census_synth import make_persons, write_zip

from persona_testbed.census.source import open_source
from persona_testbed.core.errors import UserError


def test_every_census_command_has_help(cli):
    res = cli("census", "--help")
    assert res.exit_code == 0
    for cmd in ("sources", "prepare", "rake"):
        assert cmd in res.stdout
        sub = cli("census", cmd, "--help")
        assert sub.exit_code == 0 and len(sub.stdout) > 100


def test_sources_reports_cache_status(cli, data_dir):
    res = cli("census", "sources", "--data-dir", data_dir, "--json")
    assert res.exit_code == 0, res.stderr
    (info,) = json.loads(res.stdout)
    assert info["source"] == "acs2018" and info["year"] == 2018 and info["states"] == ["DE", "VT"]
    assert info["person_records"] is None and info["cache"].startswith("not decoded")
    res = cli("census", "prepare", "--source", "acs2018", "--data-dir", data_dir, "--json")
    assert res.exit_code == 0, res.stderr
    prepared = json.loads(res.stdout)
    assert [f["status"] for f in prepared["files"]] == ["decoded", "decoded"]
    (info,) = json.loads(cli("census", "sources", "--data-dir", data_dir, "--json").stdout)
    assert info["cache"] == "ready"
    assert info["person_records"] == sum(f["records"] for f in prepared["files"])
    assert info["person_columns"] == 14
    table = cli("census", "sources", "--data-dir", data_dir)
    assert table.exit_code == 0 and "acs2018" in table.stdout


def test_rake_command(cli, data_dir, tmp_path):
    targets = tmp_path / "targets.csv"
    targets.write_text(
        "dimension,pums_var,pums_code,label,universe,estimate\n"
        "sex,SEX,1,Male,total population,1000\nsex,SEX,2,Female,total population,1100\n"
        "adult,AGEP,18-99,Adults,total population,1500\n"
    )
    out = tmp_path / "w.parquet"
    res = cli(
        "census",
        "rake",
        "--source",
        "acs2018",
        "--targets",
        targets,
        "--data-dir",
        data_dir,
        "--out",
        out,
        "--json",
        "--max-iter",
        "500",
        "--tol",
        "1e-8",
    )
    assert res.exit_code == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["converged"] is True and summary["ess"] > 0
    assert {m["margin"] for m in summary["margins"]} == {"sex", "adult"}
    w = pl.read_parquet(out)
    assert w.columns == ["SERIALNO", "SPORDER", "STATE", "PWGTP", "RAKED_WEIGHT"]
    assert w["RAKED_WEIGHT"].sum() == pytest.approx(2100, rel=1e-6)
    table = cli("census", "rake", "--source", "acs2018", "--targets", targets, "--data-dir", data_dir)
    assert table.exit_code == 0 and "converged" in table.stderr


@pytest.mark.parametrize(
    "args,message",
    [
        (["rake", "--source", "acs2018", "--states", "XX"], "unknown state"),
        (["rake", "--source", "acs2018", "--targets", "nope"], "unknown targets"),
        (["rake", "--source", "acs1990"], "not found"),
        (["prepare", "--source", "acs2018", "--states", "CA"], "not in source"),
    ],
)
def test_bad_input_exits_2(cli, data_dir, args, message):
    res = cli("census", *args, "--data-dir", data_dir)
    assert res.exit_code == 2
    assert message in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_bad_dictionary_year_exits_2(cli, data_dir):
    dic = data_dir / "census" / "dictionaries" / "PUMS_Data_Dictionary_2018.csv"
    dic.write_text(dic.read_text().replace("2018GQ", "2016GQ").replace("2018HU", "2016HU"))
    res = cli("census", "prepare", "--source", "acs2018", "--data-dir", data_dir)
    assert res.exit_code == 2 and "2016" in res.stderr


@pytest.mark.parametrize("drop,missing", [(["PWGTP", "AGEP"], "PWGTP, AGEP"), (["SPORDER"], "SPORDER")])
def test_prepare_rejects_person_file_without_required_columns(cli, data_dir, tmp_home, drop, missing):
    acs = data_dir / "census" / "acs" / "2018" / "1-Year"
    bad = write_zip(make_persons("50", 5, seed=9).drop(drop), acs / "csv_pvt.zip", "50")
    res = cli("census", "prepare", "--source", "acs2018", "--data-dir", data_dir, "--json")
    assert res.exit_code == 2, res.stdout
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in res.stderr
    assert (
        str(bad) in lines[0]
        and f"lacks required PUMS column{'s' if len(drop) > 1 else ''} {missing}" in lines[0]
    ), lines[0]
    assert not list((tmp_home / "cache" / "census").glob("csv_pvt-*"))  # no decoded cache of the bad file
    ok = cli("census", "prepare", "--source", "acs2018", "--states", "DE", "--data-dir", data_dir, "--json")
    assert ok.exit_code == 0 and [f["state"] for f in json.loads(ok.stdout)["files"]] == ["DE"]


def test_parquet_person_file_without_required_columns_is_rejected(pums_parquet, tmp_path):
    d = tmp_path / "narrow"
    d.mkdir()
    pl.read_parquet(pums_parquet["dir"] / "p_50.parquet").drop("PWGTP").write_parquet(d / "p_50.parquet")
    src = open_source(path=d, dictionary=pums_parquet["dictionary"])
    with pytest.raises(UserError, match=r"p_50\.parquet: person file lacks required PUMS column PWGTP$"):
        src.available_columns()
