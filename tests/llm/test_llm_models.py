import pytest

from persona_testbed.core.errors import UserError
from persona_testbed.llm import parse_model


@pytest.mark.parametrize(
    "s, kind, name",
    [
        ("embedded", "embedded", "embedded"),
        ("mock", "mock", "mock"),
        ("gguf:/tmp/m.gguf", "gguf", "/tmp/m.gguf"),
        ("openai/gpt-4o-mini", "openai", "gpt-4o-mini"),
        ("openai/meta-llama/Llama-3-8B", "openai", "meta-llama/Llama-3-8B"),
    ],
)
def test_parse_valid(s, kind, name):
    spec = parse_model(s)
    assert (spec.kind, spec.name, spec.model_string) == (kind, name, s)


@pytest.mark.parametrize("s", ["", "gpt-4o", "openai/", "gguf:", "Embedded", "anthropic/claude"])
def test_parse_unknown_names_it_and_lists_forms(s):
    with pytest.raises(UserError) as e:
        parse_model(s)
    msg = str(e.value)
    assert repr(s) in msg and "openai/<model>" in msg and "gguf:" in msg and "embedded" in msg
