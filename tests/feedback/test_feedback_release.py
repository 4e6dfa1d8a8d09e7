"""The PERSONA authors' release: import (Parquet, JSONL, folders, `datasets` folders), export in its layout,
round trip, text-only personas downstream (bench fidelity, exports, generate), and bad input."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from factories import make_persona
from persona_testbed.bench import run_task
from persona_testbed.bench.leaks import check_answer
from persona_testbed.core.errors import UserError
from persona_testbed.feedback import FeedbackConfig, PairCounts, read_pairs
from persona_testbed.feedback.export import export_pairs
from persona_testbed.feedback.leakage import find_leakage
from persona_testbed.feedback.release import (
    RELEASE_COLUMNS,
    RELEASE_MODEL,
    import_release,
    pairs_from_release,
    read_release,
)
from persona_testbed.llm import LLMClient, MockBackend
from persona_testbed.personas import Persona, read_personas, render, write_personas
from persona_testbed.personas.record import PERSONA_FIELDS
from persona_testbed.pipeline.stages.feedback import generate_pairs
from persona_testbed.prompts.record import Prompt

# Personas as the release writes them: "field: value" lines, lower-case field names as in the paper.
PERSONA_TEXTS = [
    "age: 45\nsex: Male\nrace: White alone\nreligion: Catholic\n"
    "big five scores: Openness: High, Conscientiousness: Average, Extraversion: Low\n"
    "defining quirks: Collects vintage maps\npolitical views: Republican\n",
    "age: 29\nsex: Female\nrace: Asian alone\nreligion: No religion\n"
    "big five scores: Not Applicable\ndefining quirks: Speaks in movie quotes\npolitical views: Democrat\n",
    "age: 67\r\nsex: Female\r\nrace: Black or African American alone\r\nreligion: Baptist\r\n",  # CRLF line ends
]
QUESTIONS = [
    f"Question {j}: should the state raise taxes on {w}?"
    for j, w in enumerate(["fuel", "meat", "wealth", "land", "sugar"])
]


def release_rows() -> list[dict[str, str]]:
    """3 personas x 5 questions in the release layout (first 4 questions train, the last one test)."""
    rows = []
    for i, persona in enumerate(PERSONA_TEXTS):
        for j, q in enumerate(QUESTIONS):
            rows.append(
                {
                    "persona": persona,
                    "instruction": q,
                    "original": f"REJECTED generic answer {j}.",
                    "critique": f"Persona {i} finds answer {j} too generic.",
                    "data": f"CHOSEN answer {j} for persona {i}.",
                    "question type": "train" if j < 4 else "test",
                }
            )
    return rows


def release_table(rows=None, drop: str | None = None) -> pa.Table:
    table = pa.table(
        {c: pa.array([r[c] for r in (rows or release_rows())], type=pa.string()) for c in RELEASE_COLUMNS}
    )
    return table.drop([drop]) if drop else table


@pytest.fixture
def release(tmp_path):
    """The same release as a Parquet file, a JSONL file, a Hugging Face snapshot folder and `datasets` folders."""
    datasets = pytest.importorskip("datasets")

    table = release_table()
    parquet = tmp_path / "persona.parquet"
    pq.write_table(table, parquet)
    jsonl = tmp_path / "persona.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in table.to_pylist()), encoding="utf-8")
    snapshot = tmp_path / "snapshot"
    (snapshot / "data").mkdir(parents=True)
    half = table.num_rows // 2
    pq.write_table(table.slice(0, half), snapshot / "data" / "train-00000-of-00002.parquet")
    pq.write_table(table.slice(half), snapshot / "data" / "train-00001-of-00002.parquet")
    (snapshot / "README.md").write_text("---\nlicense: cc-by-nc-sa-4.0\n---\n")
    ds = datasets.Dataset.from_dict({c: table[c].to_pylist() for c in RELEASE_COLUMNS})
    ds.save_to_disk(str(tmp_path / "saved"))
    datasets.DatasetDict({"train": ds}).save_to_disk(str(tmp_path / "saved_dict"))
    return {
        "parquet": parquet,
        "jsonl": jsonl,
        "snapshot": snapshot,
        "datasets": tmp_path / "saved",
        "datasets_dict": tmp_path / "saved_dict",
        "dir": tmp_path,
    }


@pytest.mark.parametrize("kind", ["parquet", "jsonl", "snapshot", "datasets", "datasets_dict"])
def test_every_layout_imports_to_the_same_records(release, kind):
    reference = pairs_from_release(read_release(release["parquet"]))
    out = release["dir"] / f"imported-{kind}"
    res = import_release(release[kind], out)
    assert res["rows"] == 15 and res["personas"] == 3 and res["pairs"] == 15
    assert res["splits"] == {"train": 12, "test": 3} and res["license"] == "cc-by-nc-sa-4.0"
    assert read_personas(out) == reference.personas
    assert read_pairs(out) == reference.pairs
    assert json.loads((out / "release.json").read_text())["rows"] == 15


def test_imported_records_are_text_only_with_stable_ids(release):
    out = release["dir"] / "imp"
    import_release(release["parquet"], out)
    personas = {p.id: p for p in read_personas(out / "personas.parquet")}
    assert personas == {p.id: p for p in read_personas(out / "personas.jsonl")}
    crlf = Persona.from_text(PERSONA_TEXTS[2])
    assert crlf.id in personas and "\r" not in crlf.text and crlf.text.endswith("Baptist")
    for text in PERSONA_TEXTS:
        p = personas[Persona.text_id(text)]
        assert p.text_only and p.source is None and p.id.startswith("x-")
        assert all(p.fields[f].provenance == "external" and p.fields[f].value == "" for f in PERSONA_FIELDS)
        for fmt in ("full", "list", "summary"):
            assert (
                render(p, fmt) == text.replace("\r\n", "\n").strip()
            )  # a text-only persona renders as its text
        with pytest.raises(ValueError, match="text-only"):
            render(p, "full", without=["age"])
    pairs = read_pairs(out)
    q0 = next(p for p in pairs if p.question == QUESTIONS[0])
    assert q0.prompt_id == Prompt.make_id(QUESTIONS[0]) and q0.model == RELEASE_MODEL
    assert q0.persona_text == personas[q0.persona_id].text and q0.leakage is None  # leakage: unchecked
    assert {p.split for p in pairs if p.question == QUESTIONS[4]} == {"test"}
    assert (
        q0.chosen.startswith("CHOSEN")
        and q0.rejected.startswith("REJECTED")
        and q0.critique.startswith("Persona")
    )
    # census personas and text-only ones share one file and read back the same
    mixed = [make_persona("p-1"), *personas.values()]
    paths = write_personas(mixed, release["dir"] / "mixed")
    assert read_personas(paths["jsonl"]) == mixed == read_personas(paths["parquet"])
    census_line = paths["jsonl"].read_text().splitlines()[0]
    assert '"text"' not in census_line  # census persona files are unchanged by text-only support


def test_round_trip_import_export_import(release, cli):
    a = release["dir"] / "a"
    assert cli("import", "persona-release", release["parquet"], "--out", a).exit_code == 0
    for target in ("release.parquet", "release-dir"):
        exported = release["dir"] / target
        r = cli("feedback", "export", a, "--format", "persona-release", "--out", exported, "--json")
        assert r.exit_code == 0, r.stderr
        res = json.loads(r.stdout)
        assert res["counts"] == {"rows": 15, "train": 12, "test": 3} and res["held_out_as_test"] == 0
        data = (
            exported if exported.suffix == ".parquet" else exported / "data" / "train-00000-of-00001.parquet"
        )
        schema = pq.read_schema(data)
        assert schema.names == list(RELEASE_COLUMNS) and all(t == pa.string() for t in schema.types)
        b = release["dir"] / f"b-{target}"
        assert cli("import", "persona-release", exported, "--out", b).exit_code == 0
        assert read_personas(b) == read_personas(a) and read_pairs(b) == read_pairs(a)
    card = (release["dir"] / "release-dir" / "README.md").read_text()
    assert "license: cc-by-nc-sa-4.0" in card and "split: train" in card


def test_directory_export_loads_with_datasets(release, tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets")

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    a = tmp_path / "a"
    import_release(release["parquet"], a)
    export_pairs(a, "persona-release", tmp_path / "hfdir")
    ds = datasets.load_dataset(str(tmp_path / "hfdir"), cache_dir=str(tmp_path / "cache"))
    assert list(ds) == ["train"] and ds["train"].column_names == list(RELEASE_COLUMNS)
    assert ds["train"].num_rows == 15 and all(v.dtype == "string" for v in ds["train"].features.values())


def test_test_split_and_held_out_mapping(release, tmp_path):
    out = tmp_path / "held"
    res = import_release(release["parquet"], out, test_split="held_out")
    assert res["splits"] == {"train": 12, "held_out": 3}
    exp = export_pairs(out, "persona-release", tmp_path / "x.parquet")
    assert exp["held_out_as_test"] == 3 and exp["counts"]["test"] == 3
    assert pq.read_table(tmp_path / "x.parquet")["question type"].to_pylist().count("test") == 3
    with pytest.raises(UserError, match="--test-split 'dev'"):
        import_release(release["parquet"], tmp_path / "y", test_split="dev")
    assert not (tmp_path / "y").exists()


def test_duplicate_rows(tmp_path):
    rows = release_rows()
    rows.append(dict(rows[0]))  # an exact repeat: dropped
    rows.append({**rows[0], "data": "Another chosen answer."})  # same persona, question, split: kept as -dup1
    made = pairs_from_release(read_release(_parquet(tmp_path / "dups.parquet", release_table(rows))))
    assert made.rows == 17 and made.duplicates_dropped == 1 and made.duplicate_keys == 1
    assert len(made.pairs) == 16 and sum(p.id.endswith("-dup1") for p in made.pairs) == 1


def _parquet(path, table):
    pq.write_table(table, path)
    return path


@pytest.mark.parametrize(
    "writer,needle",
    [
        ("parquet", "bad.parquet: missing column 'critique'"),
        ("jsonl", "bad.jsonl:1: missing column 'critique'"),
        ("datasets", "data-00000-of-00001.arrow: missing column 'critique'"),
    ],
)
def test_missing_column_is_one_line_exit_2_nothing_written(cli, tmp_path, writer, needle):
    table = release_table(drop="critique")
    if writer == "parquet":
        src = _parquet(tmp_path / "bad.parquet", table)
    elif writer == "jsonl":
        src = tmp_path / "bad.jsonl"
        src.write_text("".join(json.dumps(r) + "\n" for r in table.to_pylist()))
    else:
        datasets = pytest.importorskip("datasets")
        src = tmp_path / "bad"
        datasets.Dataset.from_dict({c: table[c].to_pylist() for c in table.column_names}).save_to_disk(
            str(src)
        )
    out = tmp_path / "deep" / "out"
    r = cli("import", "persona-release", src, "--out", out)
    assert r.exit_code == 2 and needle in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert str(src) in r.stderr
    assert not (tmp_path / "deep").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize(
    "mutate,needle",
    [
        (
            lambda r: r.__setitem__("question type", "validation"),
            "row 2: column 'question type' is 'validation'",
        ),
        (lambda r: r.__setitem__("data", "  "), "row 2: column 'data' is empty"),
        (lambda r: r.__setitem__("persona", None), "row 2: column 'persona' is empty"),
    ],
)
def test_bad_values_name_file_row_and_column(tmp_path, mutate, needle):
    rows = release_rows()
    mutate(rows[1])
    src = _parquet(tmp_path / "r.parquet", release_table(rows))
    with pytest.raises(UserError, match=needle):
        import_release(src, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_empty_release_and_unknown_files(tmp_path):
    empty = _parquet(tmp_path / "empty.parquet", release_table().slice(0, 0))
    with pytest.raises(UserError, match="empty.parquet: no rows in the release"):
        import_release(empty, tmp_path / "out")
    (tmp_path / "notes.csv").write_text("a,b\n")
    with pytest.raises(UserError, match="notes.csv: not a release file"):
        import_release(tmp_path / "notes.csv", tmp_path / "out")
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "readme.txt").write_text("nothing here")
    with pytest.raises(UserError, match="folder: no release data in it"):
        import_release(folder, tmp_path / "out")
    corrupt = tmp_path / "corrupt.parquet"
    corrupt.write_bytes(b"PAR1 not really")
    with pytest.raises(UserError, match="corrupt.parquet: not a readable Parquet file"):
        import_release(corrupt, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_output_directory_rules(release, cli, tmp_path):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    r = cli("import", "persona-release", release["parquet"], "--out", foreign)
    assert r.exit_code == 2 and "not empty" in r.stderr and (foreign / "notes.txt").read_text() == "mine"
    out = tmp_path / "imp"
    assert cli("import", "persona-release", release["parquet"], "--out", out).exit_code == 0
    r = cli("import", "persona-release", release["parquet"], "--out", out)
    assert r.exit_code == 2 and "--force" in r.stderr
    assert cli("import", "persona-release", release["jsonl"], "--out", out, "--force").exit_code == 0
    r = cli("import", "persona-release", release["snapshot"], "--out", release["snapshot"] / "inside")
    assert r.exit_code == 2 and "inside the input directory" in r.stderr
    r = cli("import", "persona-release", tmp_path / "nope.parquet", "--out", tmp_path / "o2")
    assert r.exit_code == 2 and "nope.parquet: no such file" in r.stderr


def _pick_chosen(messages):
    """A persona-judge that prefers the answer marked CHOSEN; it checks it saw the persona's text."""
    system, user = messages[0]["content"], messages[-1]["content"]
    assert "age: " in system  # the text-only persona rendered as its text
    a = user.split("Answer A:\n", 1)[1].split("\n\nAnswer B:", 1)[0]
    return json.dumps({"reasoning": "fits me", "preferred": "A" if a.startswith("CHOSEN") else "B"})


def test_bench_fidelity_on_an_imported_release(release, tmp_path):
    out = tmp_path / "imp"
    import_release(release["parquet"], out)
    cand = LLMClient(backend=MockBackend(_pick_chosen))
    res = run_task(
        "fidelity",
        candidate=cand,
        personas=out,
        pairs=out,
        split="all",
        matrix_personas=0,
        out_dir=tmp_path / "bench",
        n_resamples=200,
    )
    fig = res["figures"]
    assert res["counts"]["ok"] == 30 and fig["accuracy"]["estimate"] == 1.0 and fig["consistent_share"] == 1.0
    assert fig["position_bias"] == 0.0


def test_bench_cli_on_an_imported_release(release, cli, tmp_path):
    out = tmp_path / "imp"
    assert cli("import", "persona-release", release["jsonl"], "--out", out).exit_code == 0
    world = "scripted:p=1,uses=age"
    r = cli(
        "bench",
        "run",
        "fidelity",
        "--candidate",
        world,
        "--judge",
        world,
        "--pairs",
        out,
        "--personas",
        out,
        "--split",
        "test",
        "--resamples",
        "200",
        "--out",
        tmp_path / "fid",
        "--json",
    )
    assert r.exit_code == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["config"]["pairs"] and res["counts"]["failed"] == 0 and res["figures"]["matrix"]["personas"]
    (tmp_path / "prompts.jsonl").write_text(
        "".join(
            json.dumps({"id": f"q{i}", "text": q, "split": "held_out"}) + "\n"
            for i, q in enumerate(QUESTIONS)
        )
    )
    for task in ("loo", "intersections"):
        extra = ["--group", "sex=Female"] if task == "intersections" else []
        r = cli(
            "bench",
            "run",
            task,
            *extra,
            "--candidate",
            world,
            "--judge",
            world,
            "--personas",
            out,
            "--prompts",
            tmp_path / "prompts.jsonl",
            "--out",
            tmp_path / task,
        )
        assert r.exit_code == 2 and "text-only" in r.stderr and len(r.stderr.strip().splitlines()) == 1, (
            r.stderr
        )
        assert not (tmp_path / task).exists()


def test_feedback_exports_and_stats_on_an_imported_release(release, cli, tmp_path):
    out = tmp_path / "imp"
    import_release(release["parquet"], out)
    for fmt, target in (("jsonl", "p.jsonl"), ("parquet", "p.parquet"), ("hf", "hf"), ("trl", "trl")):
        r = cli("feedback", "export", out, "--format", fmt, "--out", tmp_path / target, "--json")
        assert r.exit_code == 0, r.stderr
        assert json.loads(r.stdout)["unchecked_leakage"] == 15
    card = (tmp_path / "hf" / "README.md").read_text()
    assert "license: cc-by-nc-sa-4.0" in card and "SynthLabsAI/PERSONA" in card
    row = json.loads((tmp_path / "trl" / "train.jsonl").read_text().splitlines()[0])
    assert row["prompt"][0]["content"].startswith("age: ")
    r = cli("feedback", "stats", out, "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["leakage"]["unchecked"] == 15


def test_leakage_and_leak_flags_for_text_only_personas():
    p = Persona.from_text(PERSONA_TEXTS[0])
    assert find_leakage(p, "As a 45-year-old Catholic, you will like this.").findings == []
    check = check_answer(p, "Should taxes rise?", "Think of your faith here.")
    assert check.leaky and check.fields == ("religion",)  # second-person framings still count


def test_generate_pairs_for_text_only_personas(tmp_path, prompt_set, scripted):
    personas = [Persona.from_text(t) for t in PERSONA_TEXTS[:2]]
    config = FeedbackConfig(counts=PairCounts(train=1, test=1, held_out=1), seed=3)
    res = generate_pairs(
        personas,
        prompt_set(4, 2),
        out_dir=tmp_path / "fb",
        client=LLMClient(backend=MockBackend(scripted)),
        config=config,
    )
    assert res.stats["ok"] == 6
    for pair in res.pairs:
        assert pair.persona_text == next(p.text for p in personas if p.id == pair.persona_id)
        assert pair.leakage is None  # the detector has no attribute values to look for
