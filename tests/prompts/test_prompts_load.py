"""Loading prompt files: formats, and one-line errors naming the file and line."""

from __future__ import annotations

import json

import pytest

from persona_testbed.core.errors import UserError
from persona_testbed.prompts.load import load_prompt_file


def test_jsonl_csv_txt_json_formats(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"text": "Is it fair?"}\n\n{"prompt": " Why so? "}\n"bare string?"\n')
    (tmp_path / "a.csv").write_text('id,prompt\n1,"Hello, is it me?"\n2,"Second, with ""quotes""?"\n')
    (tmp_path / "a.txt").write_text("first?\n\n  second?  \n")
    (tmp_path / "a.json").write_text(json.dumps(["one?", {"text": "two?"}]))
    assert load_prompt_file(tmp_path / "a.jsonl") == [(1, "Is it fair?"), (3, "Why so?"), (4, "bare string?")]
    assert load_prompt_file(tmp_path / "a.csv") == [(2, "Hello, is it me?"), (3, 'Second, with "quotes"?')]
    assert load_prompt_file(tmp_path / "a.txt") == [(1, "first?"), (3, "second?")]
    assert load_prompt_file(tmp_path / "a.json") == [(1, "one?"), (2, "two?")]


@pytest.mark.parametrize(
    "name,content,needle",
    [
        ("empty.txt", b"", "no prompts in file"),
        ("blank.jsonl", b"\n\n", "no prompts in file"),
        ("bad.jsonl", b'{"text": "ok?"}\n{"text": \n', "bad.jsonl:2: not valid JSON"),
        ("nofield.jsonl", b'{"question": "x?"}\n', "nofield.jsonl:1: object has no 'text'"),
        ("badtype.jsonl", b'{"text": 3}\n', "field 'text' is int"),
        ("latin1.txt", b"fine?\ncaf\xe9?\n", "latin1.txt:2: not valid UTF-8"),
        ("nocol.csv", b"a,b\n1,2\n", "nocol.csv:1: CSV has no 'text' or 'prompt' column"),
        ("emptytext.csv", b'text\n"  "\n', "emptytext.csv:2: empty prompt text"),
        ("notlist.json", b'{"text": "x"}', "expected a JSON list"),
    ],
)
def test_bad_files_raise_one_line_user_error(tmp_path, name, content, needle):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(UserError) as exc:
        load_prompt_file(path)
    msg = str(exc.value)
    assert needle in msg and "\n" not in msg and name in msg


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match="no such prompts file"):
        load_prompt_file(tmp_path / "nope.txt")
