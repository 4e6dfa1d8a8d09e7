"""Issue 12 persona options end to end on the offline mirror: Big Five reference, GSS minimum cell size,
household-matched imputation (CA), national donors for ancestry / place of birth, and their bad input."""

import json

import pytest

from persona_testbed.personas import read_personas
from persona_testbed.personas.resample import sample_kwargs_from_report
from persona_testbed.personas.rules import validate

pytestmark = pytest.mark.shared_data


@pytest.fixture(scope="module")
def shared_home(tmp_path_factory):
    return tmp_path_factory.mktemp("options-home")


@pytest.fixture
def run(cli, mirror, shared_home, monkeypatch):
    monkeypatch.setenv("PERSONA_TESTBED_HOME", str(shared_home))

    def go(*args):
        return cli(*args, "--data-dir", mirror)

    return go


@pytest.mark.parametrize(
    "args,msg",
    [
        (["--gss-min-cell", "0"], "--gss-min-cell must be at least 1 (got 0)"),
        (["--gss-min-cell", "-4"], "--gss-min-cell must be at least 1"),
        (["--big-five-reference", "own"], "--big-five-reference 'own': use pooled or group"),
        (["--national-donors", "acs2018"], "--national-donors acs2018: covers 14 of the 51 states sampled"),
        (["--national-donors", "acs1999"], "acs1999"),
    ],
)
def test_bad_options_exit_2_one_line_nothing_written(run, tmp_path, args, msg):
    out = tmp_path / "bad"
    r = run("personas", "sample", "--n", "5", "--out", out, *args)
    assert r.exit_code == 2, r.stderr
    assert msg in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_big_five_reference_and_min_cell_recorded_and_reported(run, tmp_path):
    a, b = tmp_path / "pooled", tmp_path / "group"
    assert run("personas", "sample", "--n", "40", "--seed", "1", "--out", a, "--states", "VT").exit_code == 0
    r = run(
        "personas",
        "sample",
        "--n",
        "40",
        "--seed",
        "1",
        "--out",
        b,
        "--states",
        "VT",
        "--big-five-reference",
        "group",
        "--gss-min-cell",
        "5",
    )
    assert r.exit_code == 0, r.stderr
    pa, pb = read_personas(a), read_personas(b)
    assert {p.fields["big five scores"].detail["reference"] for p in pa} == {"pooled"}
    assert {p.fields["big five scores"].detail["reference"] for p in pb} == {"group"}
    # one draw, two references: the scores are equal, only percentiles / levels may differ
    assert [p.fields["big five scores"].detail["scores"] for p in pa] == [
        p.fields["big five scores"].detail["scores"] for p in pb
    ]
    rep_a = json.loads((a / "personas_report.json").read_text())
    rep_b = json.loads((b / "personas_report.json").read_text())
    assert rep_a["big_five"]["reference"] == "pooled" and rep_b["big_five"]["reference"] == "group"
    assert rep_a["survey"]["min_cell"] == 20 and rep_b["survey"]["min_cell"] == 5
    assert sample_kwargs_from_report(b / "personas.jsonl")["big_five_reference"] == "group"
    assert sample_kwargs_from_report(b / "personas.jsonl")["gss_min_cell"] == 5
    for d, k in ((a, 20), (b, 5)):
        res = run("census", "fidelity", "--personas", d, "--json")
        assert res.exit_code == 0, res.stderr
        data = json.loads(res.stdout)
        cells = data["survey_cells"]
        assert cells["min_cell"] == k and cells["personas"] == 40
        last = max(b["level"] for b in cells["backoff_levels"])
        if last < 5:  # only the last level (every respondent) may hold fewer than k
            assert cells["cell_respondents"]["min"] >= k and cells["share_in_cells_under_min"] == 0
        assert 1 <= cells["max_reuse"] <= 40 and cells["respondents"] <= 40
        assert data["fields"]["big five scores"]["references"] == {"pooled" if k == 20 else "group": 40}
        assert data["fields"]["ancestry"]["compare_on"].startswith("not compared")
    text = run("census", "fidelity", "--personas", b)
    assert text.exit_code == 0 and "max reuse of one respondent" in text.stdout


def test_imputed_marital_status_matches_the_household(run, tmp_path):
    """CA records lack MAR: their donors share household type and size band, so the imputed status fits
    the real household and no persona breaks the two household rules."""
    out = tmp_path / "ca"
    r = run("personas", "sample", "--n", "150", "--seed", "0", "--out", out, "--states", "CA", "--json")
    assert r.exit_code == 0, r.stderr
    personas = read_personas(out)
    kinds = {
        "1": "married couple",
        "2": "other family",
        "3": "other family",
        "4": "living alone",
        "6": "living alone",
        "5": "non-family, not alone",
        "7": "non-family, not alone",
        None: "group quarters",
    }
    for p in personas:
        mar, hh = p.fields["marital status"], p.fields["household type"]
        assert mar.provenance == "imputed"
        assert isinstance(hh.detail["persons"], int) and hh.detail["persons"] >= 1
        if mar.detail["backoff_level"] <= 5:  # household type is matched down to level 5
            assert mar.detail["donor_household"] == kinds[hh.detail.get("code")], (
                p.id,
                mar.detail,
                hh.detail,
            )
    counts = validate(personas)
    assert counts["married_living_alone"] == 0 and counts["married_couple_household_unmarried"] == 0
    report = json.loads(r.stdout)["report"]
    assert "MAR" in report["imputation"]["vars"]


def test_national_donors_impute_origins_with_provenance(run, tmp_path):
    out = tmp_path / "vt"
    r = run(
        "personas",
        "sample",
        "--n",
        "30",
        "--seed",
        "2",
        "--out",
        out,
        "--states",
        "VT,WY",
        "--national-donors",
        "acs2018",
    )
    assert r.exit_code == 0, r.stderr
    acs2018_states = {"10", "15", "16", "23", "30", "31", "33", "35", "38", "44", "46", "50", "54", "56"}
    for p in read_personas(out):
        for name, var in (("ancestry", "ANC1P"), ("place of birth", "POBP")):
            f = p.fields[name]
            assert f.provenance == "imputed" and f.detail["var"] == var
            assert f.detail["donor_source"] == "acs2018" and f.detail["donor_state"] in acs2018_states
        # one donor supplies both origins
        assert (
            p.fields["ancestry"].detail["donor_serialno"]
            == p.fields["place of birth"].detail["donor_serialno"]
        )
    report = json.loads((out / "personas_report.json").read_text())
    assert report["national_donors"] == "acs2018" and report["ancestry"]["method"].startswith("imputed")
    assert sample_kwargs_from_report(out / "personas.jsonl")["national_donors"] == "acs2018"


def test_run_config_reaches_the_sample_spec():
    from persona_testbed.pipeline.config import RunConfig
    from persona_testbed.pipeline.stages.personas import _sampler_kwargs, sample_spec

    cfg = RunConfig.model_validate(
        {
            "personas": {"big_five_reference": "group", "gss_min_cell": 7},
            "census": {"national_donors": "acs2018"},
        }
    )
    kw = _sampler_kwargs(sample_spec(cfg))
    assert (
        kw["big_five_reference"] == "group" and kw["gss_min_cell"] == 7 and kw["national_donors"] == "acs2018"
    )
    with pytest.raises(ValueError, match="gss_min_cell"):
        RunConfig.model_validate({"personas": {"gss_min_cell": 0}})
    with pytest.raises(ValueError, match="big_five_reference"):
        RunConfig.model_validate({"personas": {"big_five_reference": "own"}})
