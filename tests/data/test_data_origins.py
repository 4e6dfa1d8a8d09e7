"""``data fetch`` without a mirror: every file from its public origin, served in the origin's real format
by a server on 127.0.0.1 (``PERSONA_TESTBED_ORIGINS_URL``). Bad input: HTML instead of data, wrong or
damaged files, checksum mismatches -> one line naming the file and URL, exit 2, nothing half-written."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import polars as pl
import pytest

from origin_fixtures import (
    DICTIONARY_EXCERPT,
    QUESTIONS,
    gss_frame,
    gss_stata_zip,
    prism_jsonl,
    pums_records,
    pums_zip,
)
from persona_testbed.core.errors import UserError
from persona_testbed.data import MANIFEST, FetchFailed, fetch, resolve, verify
from persona_testbed.data.census_urls import dictionary_file, pums_file
from persona_testbed.data.checksums import local_sums, provenance
from persona_testbed.data.derive import title_label
from persona_testbed.data.origins import GSS_URL, PRISM_URL, origin_for, rebase_url

P_VT = "census/acs/2024/1-Year-extract/p_50.parquet"
H_VT = "census/acs/2024/1-Year-extract/h_50.parquet"
PRISM_REL = "prompts/prism/prism_opening_prompts.json"
LONG = "survey/gss/gss_1972_2024_long.csv"
CROSS = "survey/gss/gss_2016_2018_crosssection.csv"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def files_in(ddir: Path) -> list[str]:
    """Data files (no bookkeeping: checksum registry, provenance, locks, empty download folders)."""
    if not ddir.exists():
        return []
    skip = {"SHA256SUMS.local", "PROVENANCE.local.json", ".sums.lock", ".fetch.lock"}
    return sorted(str(p.relative_to(ddir)) for p in ddir.rglob("*") if p.is_file() and p.name not in skip)


@pytest.fixture
def origin(file_server, monkeypatch):
    """The loopback server standing in for every official host."""
    monkeypatch.setenv("PERSONA_TESTBED_ORIGINS_URL", file_server.base)
    return file_server


def serve_state(server, fips: str, abbr: str, households: int = 20, year: int = 2024, seed: int = 1):
    person, housing = pums_records(fips, households, seed=seed, year=year)
    server.add_official(pums_file(2024, "p", abbr).url, pums_zip("p", fips, person))
    server.add_official(pums_file(2024, "h", abbr).url, pums_zip("h", fips, housing))
    return person, housing


# -- URLs ------------------------------------------------------------------------------------------------


def test_official_hosts_move_by_environment(monkeypatch):
    for var in ("PERSONA_TESTBED_ORIGINS_URL", "PERSONA_TESTBED_HF_URL", "HF_ENDPOINT"):
        monkeypatch.delenv(var, raising=False)
    census = pums_file(2024, "p", "vt").url
    assert rebase_url(PRISM_URL) == PRISM_URL and rebase_url(census) == census
    monkeypatch.setenv("PERSONA_TESTBED_ORIGINS_URL", "http://127.0.0.1:8000/")
    assert rebase_url(census) == (
        "http://127.0.0.1:8000/www2.census.gov/programs-surveys/acs/data/pums/2024/1-Year/csv_pvt.zip"
    )
    assert rebase_url(GSS_URL).startswith("http://127.0.0.1:8000/gss.norc.org/content/dam/gss/")
    monkeypatch.setenv("HF_ENDPOINT", "http://hf-mirror.local")  # huggingface_hub's own variable
    assert rebase_url(PRISM_URL) == (
        "http://hf-mirror.local/datasets/HannahRoseKirk/prism-alignment/resolve/main/conversations.jsonl"
    )
    monkeypatch.setenv("PERSONA_TESTBED_HF_URL", "http://hf.local:1/")  # ours wins
    assert rebase_url(PRISM_URL).startswith("http://hf.local:1/datasets/")
    monkeypatch.setenv("PERSONA_TESTBED_CENSUS_URL", "http://census.local")
    assert rebase_url(census).startswith("http://census.local/programs-surveys/")
    assert rebase_url("https://example.org/x") == "https://example.org/x"
    assert origin_for(P_VT).url == census and origin_for("census/targets/acs2018_1yr_us_targets.csv") is None


# -- ACS PUMS 2024 ---------------------------------------------------------------------------------------


def test_pums_2024_states_decoded_with_all_columns(origin, tmp_path, tmp_home):
    person, _ = serve_state(origin, "50", "vt")
    serve_state(origin, "56", "wy", seed=2)
    origin.add_official(dictionary_file(2024).url, DICTIONARY_EXCERPT.read_bytes())
    ddir = tmp_path / "data"
    results = fetch(["census-2024"], data_dir=ddir, states=["vt", "56"], show_progress=False)
    got = {r.relpath: r for r in results}
    assert set(got) == {
        P_VT,
        H_VT,
        "census/acs/2024/1-Year-extract/p_56.parquet",
        "census/acs/2024/1-Year-extract/h_56.parquet",
        "census/dictionaries/PUMS_Data_Dictionary_2024.csv",
    }
    assert got[P_VT].status == "derived" and got[P_VT].checksum == "recorded"
    assert got[P_VT].source.endswith(
        "/www2.census.gov/programs-surveys/acs/data/pums/2024/1-Year/csv_pvt.zip"
    )
    df = pl.read_parquet(ddir / P_VT)
    raw = pl.read_csv(person.encode(), infer_schema=False)
    assert df.height == raw.height  # every record kept
    for col in ("ANC1P", "POBP", "LANP", "RELSHIPP", "MAR", "PAOC", "AGEP", "PWGTP", "SCHL", "STATE"):
        assert col in df.columns, col
    assert not [c for c in df.columns if c.startswith("PWGTP") and c != "PWGTP"]  # no replicate weights
    assert "FAGEP" not in df.columns  # no allocation flags
    assert df.schema["SERIALNO"] == pl.String and df.schema["STATE"] == pl.String
    assert df.schema["AGEP"] == pl.Int64 and df["SERIALNO"][0].startswith("2024HU")
    assert df["LANP"].null_count() == (raw["LANP"].is_null() | (raw["LANP"] == "")).sum()  # blank -> null
    # checksums recorded, provenance kept, raw downloads gone; resolve and list verify them
    assert local_sums(ddir)[P_VT] == got[P_VT].sha256
    assert provenance(ddir)[P_VT]["url"] == pums_file(2024, "p", "vt").url
    assert files_in(ddir / ".downloads") == []
    assert resolve(P_VT, ddir) == ddir / P_VT
    [st] = verify([P_VT], ddir)
    assert st.status == "ok" and st.checksum_source == "recorded" and st.origin.endswith("csv_pvt.zip")
    # present: nothing asked of the server again
    n = len(origin.requests)
    again = fetch(["census-2024"], data_dir=ddir, states=["vt"], show_progress=False)
    assert {r.status for r in again} == {"present"} and len(origin.requests) == n
    # the census layer reads them like the mirror's extract, with the columns the extract lacked
    from persona_testbed.census import open_source

    src = open_source("acs2024", data_dir=ddir)
    assert src.year == 2024 and src.states == ["50", "56"]
    cols = src.persons(["ANC1P", "POBP", "RELSHIPP"]).collect()
    assert cols["ANC1P"].null_count() == 0 and cols["RELSHIPP"].str.len_chars().max() == 2
    assert src.housing(["HHT", "HHL"]).collect().height == 40


def test_pums_download_resumes_after_a_dropped_connection(origin, tmp_path):
    serve_state(origin, "50", "vt", households=200)
    path = "/www2.census.gov/programs-surveys/acs/data/pums/2024/1-Year/csv_pvt.zip"
    origin.drop_after[path] = 20_000
    [r] = fetch([P_VT], data_dir=tmp_path, backoff=0.01, show_progress=False)
    assert r.status == "derived"
    codes = [(p, rng, c) for p, rng, c in origin.requests if p == path]
    assert [c for _, _, c in codes] == [200, 206] and codes[1][1].startswith("bytes=")


def test_pums_wrong_year_or_member_is_refused_and_discarded(origin, tmp_path, cli):
    person, _ = pums_records("50", 5, seed=3, year=2023)
    url = origin.add_official(pums_file(2024, "p", "vt").url, pums_zip("p", "50", person, year=2023))
    r = cli("data", "fetch", P_VT, "--data-dir", tmp_path)
    assert r.exit_code == 2
    err = r.stderr.strip()
    assert "\n" not in err and "csv_pvt.zip from " + url in err and "records of 2023, not 2024" in err
    assert files_in(tmp_path) == []  # the download is discarded with nothing derived
    origin.add_official(pums_file(2024, "p", "vt").url, pums_zip("h", "50", "SERIALNO\n2024HU0000001\n"))
    r = cli("data", "fetch", P_VT, "--data-dir", tmp_path)
    assert r.exit_code == 2 and "holds no psam_p50.csv (found: psam_h50.csv)" in r.stderr
    origin.add_official(pums_file(2024, "p", "vt").url, b"PK\x03\x04 truncated zip")
    r = cli("data", "fetch", P_VT, "--data-dir", tmp_path)
    assert r.exit_code == 2 and "is not a readable zip archive" in r.stderr and files_in(tmp_path) == []


def test_html_instead_of_a_zip_is_refused_before_writing(origin, tmp_path, cli):
    page = b"<!DOCTYPE html>\n<html><body>Sign in to continue</body></html>"
    url = origin.add_official(pums_file(2024, "p", "vt").url, page)
    # a portal that says text/html, and one that does not
    origin.content_type[url.split(origin.base, 1)[1]] = "text/html"
    r = cli("data", "fetch", P_VT, "--data-dir", tmp_path)
    assert r.exit_code == 2 and "returned an HTML page instead of the file" in r.stderr and url in r.stderr
    assert files_in(tmp_path) == [] and r.stderr.count("\n") == 1
    origin.content_type.clear()
    r = cli("data", "fetch", "pums:2024:p:vt", "--data-dir", tmp_path)  # the official zip itself
    assert r.exit_code == 2 and "HTML page instead of the file" in r.stderr
    assert files_in(tmp_path) == [] and "csv_pvt.zip" not in local_sums(tmp_path)


def test_empty_answer_is_retried(origin, tmp_path):
    serve_state(origin, "50", "vt")
    path = "/www2.census.gov/programs-surveys/acs/data/pums/2024/1-Year/csv_pvt.zip"
    origin.fail[path] = [204]  # some CDNs answer 204 with no body now and then
    [r] = fetch([P_VT], data_dir=tmp_path, backoff=0.01, show_progress=False)
    assert r.status == "derived"


# -- PRISM -----------------------------------------------------------------------------------------------


def test_prism_first_user_turns_in_order(origin, tmp_path):
    origin.add_official(PRISM_URL, prism_jsonl(QUESTIONS))
    [r] = fetch(["prism"], data_dir=tmp_path, show_progress=False)
    assert r.relpath == PRISM_REL and r.status == "derived" and r.note == "from conversations.jsonl"
    text = (tmp_path / PRISM_REL).read_text()
    assert json.loads(text) == QUESTIONS
    assert text == json.dumps(QUESTIONS, indent=4)  # serialised as the mirror's file is
    from persona_testbed.prompts.load import load_source

    name, items = load_source(None, tmp_path)
    assert [t for _, t in items] == QUESTIONS
    [st] = verify(["prism"], tmp_path)
    assert "CC-BY-4.0" in st.licence and "Kirk" in st.citation and st.origin == PRISM_URL


def test_prism_same_prompts_as_the_mirror_give_the_manifest_checksum(origin, tmp_path):
    """Derived from a conversations file with the published prompts, the file is the mirror's byte for
    byte, so the manifest checksum applies (no local record)."""
    mirror_file = Path("/work/shared/data") / PRISM_REL
    prompts = json.loads(mirror_file.read_text()) if mirror_file.exists() else None
    if prompts is None:
        pytest.skip("offline data mirror not available")
    origin.add_official(PRISM_URL, prism_jsonl(prompts))
    [r] = fetch(["prism"], data_dir=tmp_path, show_progress=False)
    assert r.checksum == "manifest" and r.sha256 == MANIFEST[PRISM_REL].sha256
    assert PRISM_REL not in local_sums(tmp_path)


def test_prism_advertised_checksum_and_bad_lines(origin, tmp_path, cli):
    data = prism_jsonl(QUESTIONS)
    url = origin.add_official(PRISM_URL, data)
    path = url.split(origin.base, 1)[1]
    origin.headers[path] = {"X-Linked-Etag": f'"{sha(data)}"'}  # Hugging Face vouches for its LFS files
    [r] = fetch(["prism"], data_dir=tmp_path / "ok", show_progress=False)
    assert r.status == "derived" and provenance(tmp_path / "ok")[PRISM_REL]["download_sha256"] == sha(data)
    origin.headers[path] = {"X-Linked-Etag": f'"{sha(b"other")}"'}
    r = cli("data", "fetch", "prism", "--data-dir", tmp_path / "bad")
    assert r.exit_code == 2 and "checksum mismatch for conversations.jsonl" in r.stderr
    assert "the server advertised sha256" in r.stderr and url in r.stderr
    assert files_in(tmp_path / "bad") == []
    origin.headers.clear()
    origin.add_official(PRISM_URL, data + b'{"conversation_id": "c99", "conversation_history": []}\n')
    r = cli("data", "fetch", "prism", "--data-dir", tmp_path / "bad")
    assert r.exit_code == 2 and f"conversations.jsonl from {url} line {len(QUESTIONS) + 1}:" in r.stderr
    assert files_in(tmp_path / "bad") == []


# -- GSS -------------------------------------------------------------------------------------------------


def test_gss_cumulative_file_projected_with_labels_and_weights(origin, tmp_path):
    origin.add_official(GSS_URL, gss_stata_zip())
    results = fetch(["gss"], data_dir=tmp_path, show_progress=False, strict=False)
    got = {r.relpath: r.status for r in results}
    assert got == {LONG: "derived", CROSS: "derived", "survey/gss/gss_panel20_value_labels.json": "skipped"}
    long = pl.read_csv(tmp_path / LONG, infer_schema_length=0)
    frame = gss_frame()
    assert long.height == frame.height
    assert {
        "year",
        "id",
        "age",
        "sex",
        "race",
        "degree",
        "bigregion",
        "relig_label",
        "partyid",
        "polviews",
        "wtssall",
        "wtssps",
    } <= set(long.columns)
    assert set(long["sex"]) == {"Male", "Female"} and "Independent (Neither, No Response)" in set(
        long["partyid"]
    )
    assert set(long["relig_label"]) <= {"protestant", "catholic", "jewish", "none", "other", "christian"}
    assert set(long["bigregion"]) == {"Northeast", "Midwest", "South", "West"}
    assert long["polviews"].null_count() == frame["polviews"].null_count()  # missing stays missing
    assert abs(long["wtssps"].cast(pl.Float64).sum() - frame["wtssps"].sum()) < 1e-6
    cross = pl.read_csv(tmp_path / CROSS, infer_schema_length=0)
    assert set(cross["year"]) == {"2016", "2018"} and {"born_label", "hispanic", "denom_label"} <= set(
        cross.columns
    )
    assert set(cross["sex_label"]) == {"male", "female"}
    # the survey layer builds its donor pools from both files
    from persona_testbed.personas.survey import _build_pool

    recent, label = _build_pool(tmp_path, 2024)
    assert label == "GSS 2021-2024" and recent.height > 0 and recent["degree"].null_count() == 0
    old, label = _build_pool(tmp_path, 2018)
    assert label == "GSS 2016+2018 cross-section" and old["native"].null_count() == 0
    [st] = verify([LONG], tmp_path)
    assert st.status == "ok" and "NORC" in st.citation and st.origin == GSS_URL


def test_gss_file_without_a_needed_variable_names_it(origin, tmp_path, cli):
    url = origin.add_official(GSS_URL, gss_stata_zip(gss_frame(per_year=3).drop("partyid")))
    r = cli("data", "fetch", LONG, "--data-dir", tmp_path)
    assert r.exit_code == 2
    assert "lacks GSS variable partyid" in r.stderr and url in r.stderr and r.stderr.count("\n") == 1
    assert files_in(tmp_path) == []
    buf = zipfile.ZipFile  # a zip with no Stata file in it
    import io

    data = io.BytesIO()
    with buf(data, "w") as zf:
        zf.writestr("GSS_spss/gss7224_r1.sav", b"$FL2 not stata")
    origin.add_official(GSS_URL, data.getvalue())
    r = cli("data", "fetch", LONG, "--data-dir", tmp_path)
    assert r.exit_code == 2 and "holds no Stata .dta file" in r.stderr


def test_title_labels_match_the_mirror_casing():
    assert title_label("less than high school") == "Less than High School"
    assert title_label("independent (neither, no response)") == "Independent (Neither, No Response)"
    assert title_label("moderate, middle of the road") == "Moderate, Middle of the Road"
    assert title_label("associate/junior college") == "Associate/Junior College"


# -- Big Five and the dictionaries -----------------------------------------------------------------------


def test_bigfive_tables_come_from_the_package_as_the_mirror_has_them(tmp_path):
    results = fetch(["bigfive"], data_dir=tmp_path, show_progress=False)
    got = {r.relpath: (r.status, r.checksum) for r in results}
    assert got == {
        "norms/bigfive/ipipneo120_norms_by_sex_age.csv": ("derived", "manifest"),
        "norms/bigfive/neo_pi_r_domain_correlations.csv": ("derived", "manifest"),
        "norms/bigfive/sapa_bfi25_items.csv": ("skipped", "none"),
    }
    from persona_testbed.personas.bigfive import load_norms

    norms = load_norms(tmp_path)
    assert norms.corr.shape == (5, 5) and norms.means[0, 1, 4] == 66.97  # men 21-40, N
    from persona_testbed.data.derive import package_table

    assert "Johnson (2014)" in package_table("ipipneo120_norms_by_sex_age.csv")
    assert "Costa & McCrae (1992)" in package_table("neo_pi_r_domain_correlations.csv")


def test_dictionary_2023_official_copy_is_content_checked(origin, tmp_path, cli):
    rel = "census/dictionaries/PUMS_Data_Dictionary_2023.csv"
    origin.add_official(dictionary_file(2023).url, DICTIONARY_EXCERPT.read_bytes())
    [r] = fetch([rel], data_dir=tmp_path, show_progress=False)
    assert r.status == "derived" and r.checksum == "recorded"  # not the mirror's bytes, still accepted
    origin.add_official(dictionary_file(2023).url, b"year,id\n1,2\n")
    r = cli("data", "fetch", rel, "--data-dir", tmp_path / "x")
    assert r.exit_code == 2 and "is not a PUMS data dictionary" in r.stderr and files_in(tmp_path / "x") == []


# -- groups, quickstart, listing -------------------------------------------------------------------------


def test_mirror_copy_replaces_a_derived_file_and_its_record(origin, tmp_path):
    origin.add_official(PRISM_URL, prism_jsonl(QUESTIONS))
    ddir = tmp_path / "data"
    fetch(["prism"], data_dir=ddir, show_progress=False)
    assert PRISM_REL in local_sums(ddir)
    mirror = tmp_path / "mirror"
    (mirror / PRISM_REL).parent.mkdir(parents=True)
    (mirror / PRISM_REL).write_text(json.dumps(["one"], indent=4))
    manifest = {
        PRISM_REL: MANIFEST[PRISM_REL].model_copy(update={"sha256": sha(b'[\n    "one"\n]'), "size": 13})
    }
    [r] = fetch(["prism"], mirror=mirror, data_dir=ddir, manifest=manifest, show_progress=False)
    assert r.status == "present"  # the derived file is good: kept
    [r] = fetch(["prism"], mirror=mirror, data_dir=ddir, manifest=manifest, force=True, show_progress=False)
    assert r.status == "copied" and r.checksum == "manifest"
    assert PRISM_REL not in local_sums(ddir) and PRISM_REL not in provenance(ddir)


def test_quickstart_and_states_selection():
    from persona_testbed.data.targets import expand_targets

    rels = [f.relpath for f, _ in expand_targets(["quickstart"], mirror=False)]
    assert "census/dictionaries/PUMS_Data_Dictionary_2024.csv" in rels and PRISM_REL in rels
    assert sorted(r[-10:-8] for r in rels if "1-Year-extract" in r) == sorted(["10", "38", "50", "56"] * 2)
    with_mirror = [f.relpath for f, _ in expand_targets(["quickstart"], states=["ca"])]
    assert "census/dictionaries/PUMS_Data_Dictionary_2023.csv" in with_mirror
    assert [r for r in with_mirror if "1-Year-extract" in r] == [
        "census/acs/2024/1-Year-extract/h_06.parquet",
        "census/acs/2024/1-Year-extract/p_06.parquet",
    ]
    only = [f.relpath for f, _ in expand_targets(["census-2018"], states=["de", "wy"])]
    assert only == ["census/acs/2018/1-Year/csv_pde.zip", "census/acs/2018/1-Year/csv_pwy.zip"]
    with pytest.raises(UserError, match="unknown state 'zz'"):
        expand_targets(["census-2024"], states=["zz"])


def test_cli_states_and_list_shows_origin_licence_citation(origin, cli, tmp_path):
    serve_state(origin, "50", "vt")
    origin.add_official(dictionary_file(2024).url, DICTIONARY_EXCERPT.read_bytes())
    r = cli("data", "fetch", "census-2024", "--states", "VT", "--data-dir", tmp_path)
    assert r.exit_code == 0, r.stderr
    assert "2 derived" in r.stdout and "1 downloaded" in r.stdout
    r = cli("data", "fetch", "census-2024", "--states", " ", "--data-dir", tmp_path)
    assert r.exit_code == 2 and "--states is empty" in r.stderr
    r = cli("data", "list", "census-2024", "prism", "gss", "--data-dir", tmp_path)
    assert r.exit_code == 0
    assert "www2.census.gov" in r.stdout and "huggingface.co" in r.stdout and "gss.norc.org" in r.stdout
    assert "licences and citations" in r.stdout and "CC-BY-4.0" in r.stdout
    rows = {x["relpath"]: x for x in json.loads(cli("data", "list", "--json", "--data-dir", tmp_path).stdout)}
    assert rows[P_VT]["status"] == "ok" and rows[P_VT]["fetched_from"].startswith(origin.base)
    assert rows["census/targets/acs2018_1yr_us_targets.csv"]["origin"] is None
    assert rows["norms/bigfive/neo_pi_r_domain_correlations.csv"]["origin"] == "package"
    assert "Costa" in rows["norms/bigfive/neo_pi_r_domain_correlations.csv"]["citation"]


def test_download_kept_when_derivation_fails_for_another_reason(origin, tmp_path, monkeypatch):
    """Disk full (or any OS error) while deriving: the download stays for the next run, which derives
    without asking the server again; nothing half-written in place meanwhile."""
    import persona_testbed.data.fetcher as fetcher

    origin.add_official(PRISM_URL, prism_jsonl(QUESTIONS))

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fetcher, "derive_prism", disk_full)
    with pytest.raises(FetchFailed, match="No space left on device"):
        fetch(["prism"], data_dir=tmp_path, show_progress=False)
    assert files_in(tmp_path) == [
        ".downloads/huggingface.co/datasets/HannahRoseKirk/prism-alignment/resolve/main/conversations.jsonl"
    ]
    monkeypatch.undo()
    n = len(origin.requests)
    [r] = fetch(["prism"], data_dir=tmp_path, show_progress=False)
    assert r.status == "derived" and len(origin.requests) == n
    assert files_in(tmp_path) == [PRISM_REL]
