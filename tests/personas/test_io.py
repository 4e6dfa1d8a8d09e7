import json

import pytest

from factories import make_persona
from persona_testbed.core.errors import UserError
from persona_testbed.personas import read_personas, write_personas


def _two():
    return [make_persona("p-1"), make_persona("p-2", serialno="2024HU0000002", age="71")]


def test_round_trip_jsonl_parquet_and_directory(tmp_path):
    ps = _two()
    paths = write_personas(ps, tmp_path / "out", extra_manifest={"seed": 3})
    assert read_personas(paths["jsonl"]) == ps
    assert read_personas(paths["parquet"]) == ps
    assert read_personas(tmp_path / "out") == ps
    manifest = json.loads(paths["manifest"].read_text())
    assert manifest["count"] == 2 and manifest["seed"] == 3
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.endswith(".tmp")]


def _write_lines(path, objs):
    path.write_text("".join((o if isinstance(o, str) else json.dumps(o)) + "\n" for o in objs))


@pytest.mark.parametrize(
    "mutate,match",
    [
        (lambda o: o["fields"].pop("religion"), r"p.jsonl:2: missing persona field 'religion'"),
        (lambda o: o.__setitem__("schema_version", 99), r"p.jsonl:2: schema_version 99"),
        (
            lambda o: o["fields"].__setitem__("hobby", {"value": "x", "provenance": "census"}),
            "unknown persona field",
        ),
        (
            lambda o: o["fields"]["age"].__setitem__("provenance", "guess"),
            r"p.jsonl:2: fields.age.provenance",
        ),
    ],
)
def test_bad_records_name_file_line_and_field(tmp_path, mutate, match):
    good, bad = (p.model_dump(mode="json") for p in _two())
    mutate(bad)
    f = tmp_path / "p.jsonl"
    _write_lines(f, [good, bad])
    with pytest.raises(UserError, match=match) as exc:
        read_personas(f)
    assert str(f) in str(exc.value)


def test_bad_json_empty_duplicate_and_corrupt(tmp_path):
    f = tmp_path / "p.jsonl"
    _write_lines(f, [_two()[0].model_dump_json(), "{not json"])
    with pytest.raises(UserError, match=r"p.jsonl:2: not valid JSON"):
        read_personas(f)
    f.write_text("\n")
    with pytest.raises(UserError, match="no personas"):
        read_personas(f)
    p = _two()[0].model_dump_json()
    _write_lines(f, [p, p])
    with pytest.raises(UserError, match="duplicate persona id"):
        read_personas(f)
    pq = tmp_path / "x.parquet"
    pq.write_bytes(b"PAR1garbage")
    with pytest.raises(UserError, match="not a readable Parquet"):
        read_personas(pq)
    with pytest.raises(UserError, match="no such"):
        read_personas(tmp_path / "missing.jsonl")
    with pytest.raises(UserError, match="no personas to write"):
        write_personas([], tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_written_files_follow_the_umask(tmp_path):
    import os

    from persona_testbed.core.atomic import FILE_MODE

    paths = write_personas(_two(), tmp_path / "out")
    mask = os.umask(0)
    os.umask(mask)
    assert FILE_MODE == 0o666 & ~mask
    for p in paths.values():
        assert (p.stat().st_mode & 0o777) == FILE_MODE, p  # not the private 0600 of a temp file


def test_frames_and_records_write_the_same_files(tmp_path):
    from persona_testbed.personas.frames import personas_frame
    from persona_testbed.personas.io import write_persona_frames

    ps = [make_persona(f"p-{i}", serialno=f"2024HU{i:07d}", religion='Say "hi"\\ \n\t') for i in range(5)]
    ps[1] = ps[1].model_copy(update={"tags": {"hobbies": ["golf", 'quote "x"'], "values": []}})
    a = write_personas(ps, tmp_path / "a")
    frame = personas_frame(ps)
    b = write_persona_frames([frame.head(2), frame.slice(2, 0), frame.slice(2)], tmp_path / "b")
    assert a["jsonl"].read_bytes() == b["jsonl"].read_bytes()
    assert read_personas(b["jsonl"]) == ps and read_personas(b["parquet"]) == ps
    for line, p in zip(a["jsonl"].read_text().splitlines(), ps):
        assert json.loads(line) == p.model_dump(mode="json")
    assert json.loads(b["manifest"].read_text())["count"] == 5
    with pytest.raises(UserError, match="no personas"):
        write_persona_frames([frame.head(0)], tmp_path / "c")
    assert (
        not (tmp_path / "c" / "personas.jsonl").exists()
        and not (tmp_path / "c" / "personas.parquet").exists()
    )


def test_reads_the_first_parquet_layout(tmp_path):
    """Files written before per-field provenance/detail columns (one JSON object each) still load."""
    import polars as pl

    from persona_testbed.core.hashing import canonical_json
    from persona_testbed.personas.record import PERSONA_FIELDS

    ps = _two()
    rows = []
    for p in ps:
        row = {
            "id": p.id,
            "schema_version": p.schema_version,
            "source_year": p.source.year,
            "source_state": p.source.state,
            "source_serialno": p.source.serialno,
            "source_sporder": p.source.sporder,
            "weight": p.weight,
            **{n: p.fields[n].value for n in PERSONA_FIELDS},
            "provenance": canonical_json({n: p.fields[n].provenance for n in PERSONA_FIELDS}),
            "detail": canonical_json({n: p.fields[n].detail for n in PERSONA_FIELDS}),
            "tags": canonical_json(p.tags),
        }
        rows.append(row)
    old = tmp_path / "old.parquet"
    pl.DataFrame(rows).write_parquet(old)
    assert read_personas(old) == ps


def test_writing_fails_cleanly_midway(tmp_path):
    """A failure while chunks stream leaves no file behind (and the previous files untouched)."""
    from persona_testbed.personas.frames import personas_frame
    from persona_testbed.personas.io import write_persona_frames

    first = write_personas(_two(), tmp_path / "out")
    before = {k: p.read_bytes() for k, p in first.items()}

    def chunks():
        yield personas_frame(_two())
        raise UserError("census file vanished")

    with pytest.raises(UserError, match="vanished"):
        write_persona_frames(chunks(), tmp_path / "out")
    assert {k: p.read_bytes() for k, p in first.items()} == before
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.endswith(".tmp")]
