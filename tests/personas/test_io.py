import json

import pytest

from factories import make_persona
from persona_testbed.errors import UserError
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


@pytest.mark.parametrize("mutate,match", [
    (lambda o: o["fields"].pop("religion"), r"p.jsonl:2: missing persona field 'religion'"),
    (lambda o: o.__setitem__("schema_version", 99), r"p.jsonl:2: schema_version 99"),
    (lambda o: o["fields"].__setitem__("hobby", {"value": "x", "provenance": "census"}), "unknown persona field"),
    (lambda o: o["fields"]["age"].__setitem__("provenance", "guess"), r"p.jsonl:2: fields.age.provenance"),
])
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
