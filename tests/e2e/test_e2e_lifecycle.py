"""Command lifecycle (issue 13): a command never writes into a directory it did not create, a failing
command leaves nothing behind, bad numbers are one-line errors, and ``report --out`` never overwrites a
file that is not a report."""

from __future__ import annotations

import json

import pytest
from e2e_tools import e2e_env, shared_home, stub, stub_config, write_prompts_file  # noqa: F401 (fixtures)

from factories import make_persona
from persona_testbed.personas.io import write_personas


@pytest.fixture
def inputs(tmp_path):
    pdir = tmp_path / "in" / "personas"
    write_personas([make_persona("p-1"), make_persona("p-2", sex="Male")], pdir)
    qfile = tmp_path / "in" / "prompts.jsonl"
    rows = [
        {"id": f"q{i}", "text": f"Question {i}: should taxes rise for everyone?", "split": "held_out"}
        for i in range(3)
    ]
    qfile.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return {"personas": pdir, "prompts": qfile}


def _one_line_error(r, *needles: str) -> None:
    assert r.exit_code == 2, (r.exit_code, r.stdout, r.stderr)
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), r.stderr
    assert "Traceback" not in r.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


@pytest.mark.parametrize(
    "args",
    [
        ["prompts", "build", "--no-controversy", "--seed", "-1"],
        ["feedback", "generate", "--model", "mock", "--seed", "-1"],
        ["personas", "sample", "--n", "2", "--seed", "-1"],
        ["bench", "run", "main", "--seed", "-1"],
        ["personas", "enrich", "--seed", "-1"],
    ],
)
def test_negative_seed_is_a_one_line_error(cli, tmp_path, inputs, args):
    extra = {
        "prompts": ["--source", inputs["prompts"], "--out", tmp_path / "o"],
        "feedback": [
            "--personas",
            inputs["personas"],
            "--prompts",
            inputs["prompts"],
            "--out",
            tmp_path / "o",
        ],
        "personas": ["--out", tmp_path / "o"],
        "bench": ["--personas", inputs["personas"], "--prompts", inputs["prompts"], "--out", tmp_path / "o"],
    }
    argv = (
        [*args[:2], inputs["personas"], tmp_path / "o", *args[2:]]
        if args[1] == "enrich"
        else [*args, *extra[args[0]]]
    )
    _one_line_error(cli(*argv), "--seed", "greater than or equal to 0")
    assert not (tmp_path / "o").exists()


def test_concurrency_cap_matches_config_files(cli, tmp_path, inputs):
    r = cli(
        "prompts",
        "build",
        "--no-controversy",
        "--source",
        inputs["prompts"],
        "--concurrency",
        "100000000",
        "--out",
        tmp_path / "o",
    )
    _one_line_error(r, "--concurrency", "4096")
    assert not (tmp_path / "o").exists()


def test_bench_input_error_leaves_no_directory(cli, tmp_path, inputs):
    out = tmp_path / "results" / "main"
    r = cli(
        "bench",
        "run",
        "main",
        "--answers",
        tmp_path / "missing.jsonl",
        "--judge",
        "mock",
        "--personas",
        inputs["personas"],
        "--prompts",
        inputs["prompts"],
        "--out",
        out,
    )
    assert r.exit_code == 2 and "missing.jsonl" in r.stderr
    assert not (tmp_path / "results").exists()  # no empty calls.db, no parent left behind


def test_stage_commands_refuse_a_foreign_directory(cli, tmp_path, inputs, monkeypatch):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    r = cli("prompts", "build", "--no-controversy", "--source", inputs["prompts"], "--out", mine)
    _one_line_error(r, str(mine), "not empty")
    monkeypatch.chdir(mine)
    r = cli("personas", "sample", "--n", "2", "--out", ".")
    _one_line_error(r, "not empty")
    assert sorted(p.name for p in mine.iterdir()) == ["thesis.tex"]
    assert (mine / "thesis.tex").read_text() == "years of work"


def test_stage_command_refuses_its_input_as_output(cli, tmp_path, inputs):
    r = cli("personas", "enrich", inputs["personas"], inputs["personas"], "--model", "mock")
    _one_line_error(r, "input")
    built = tmp_path / "built"
    assert (
        cli(
            "prompts",
            "build",
            "--no-controversy",
            "--source",
            inputs["prompts"],
            "--held-out-fraction",
            "0.5",
            "--out",
            built,
        ).exit_code
        == 0
    )
    r = cli(
        "feedback",
        "generate",
        "--personas",
        inputs["personas"],
        "--prompts",
        built,
        "--train",
        "0",
        "--test",
        "0",
        "--held-out",
        "1",
        "--model",
        "mock",
        "--out",
        inputs["personas"].parent,
    )
    _one_line_error(r, "input")
    assert sorted(p.name for p in inputs["personas"].iterdir()) == [
        "personas.jsonl",
        "personas.parquet",
        "personas_manifest.json",
    ]


def test_stage_command_output_parent_is_a_file(cli, tmp_path, inputs):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = cli("prompts", "build", "--no-controversy", "--source", inputs["prompts"], "--out", blocker / "out")
    _one_line_error(r, "parent is a file")


def test_stage_command_resumes_its_own_directory(cli, tmp_path, inputs):
    out = tmp_path / "prompts"
    for _ in range(2):
        r = cli("prompts", "build", "--no-controversy", "--source", inputs["prompts"], "--out", out, "--json")
        assert r.exit_code == 0, r.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["stages"]["prompts"]["runs"] == 2


@pytest.mark.shared_data
def test_report_out_never_overwrites_a_foreign_file(cli, e2e_env, stub, mirror, tmp_path):
    cfg = stub_config(tmp_path, mirror, stub.base_url, bench=False)
    run = tmp_path / "run"
    assert cli("run", cfg, "--out", run, "--quiet").exit_code == 0
    notes = tmp_path / "notes.html"
    notes.write_text("<p>my notes</p>")
    _one_line_error(cli("report", run, "--out", notes), str(notes), "not a persona-testbed report")
    assert notes.read_text() == "<p>my notes</p>"
    _one_line_error(cli("report", run, "--out", run / "manifest.json"), "not a persona-testbed report")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = cli("report", run, "--out", blocker / "r.html")
    assert r.exit_code == 2 and "Traceback" not in r.stderr and str(blocker) in r.stderr
    again = tmp_path / "copy.html"
    assert cli("report", run, "--out", again).exit_code == 0
    assert cli("report", run, "--out", again).exit_code == 0  # its own report: replaced


@pytest.mark.shared_data
def test_run_refuses_a_foreign_directory_and_resumes_its_own(cli, e2e_env, stub, mirror, tmp_path):
    cfg = stub_config(tmp_path, mirror, stub.base_url, bench=False)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "data.csv").write_text("a,b\n")
    _one_line_error(cli("run", cfg, "--out", foreign), str(foreign))
    assert [p.name for p in foreign.iterdir()] == ["data.csv"]
