"""Run configs: every problem reported at once with its TOML path, before any work starts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from persona_testbed.core.errors import ConfigError
from persona_testbed.pipeline.config import RunConfig, load_config, parse_config

REPO = Path(__file__).resolve().parents[2]


def test_shipped_configs_are_valid():
    quick = load_config(REPO / "configs" / "quickstart.toml")
    assert quick.models.default == "embedded"
    assert quick.personas.n <= 5 and quick.prompts.limit is not None and quick.prompts.limit <= 16
    assert set(quick.bench.tasks) >= {"main", "passk", "loo", "intersections", "fidelity"}
    paper = load_config(REPO / "configs" / "paper.toml")
    assert paper.personas.n == 1586 and paper.prompts.limit == 3868
    assert (paper.feedback.pairs.train, paper.feedback.pairs.test, paper.feedback.pairs.held_out) == (
        100,
        50,
        50,
    )
    assert paper.models.default.startswith("openai/")


def test_all_errors_at_once_with_paths():
    bad = {
        "seed": -1,
        "feedback": {"pairs": {"train": -3, "test": "x"}},
        "models": {"judge": "gpt4"},
        "bench": {"passk": {"k": 5, "samples": 2}, "loo": {"attributes": ["age", "zodiac sign"]}},
        "colour": "blue",
        "personas": {"n": 0},
    }
    with pytest.raises(ConfigError) as ei:
        parse_config(bad, where="x.toml")
    msg = str(ei.value)
    assert "\n" not in msg
    assert msg.startswith("x.toml: 8 problems: ")
    for expected in (
        "seed: must be ≥ 0",
        "feedback.pairs.train: must be ≥ 0",
        "feedback.pairs.test: must be an integer",
        "models.judge: unknown model string 'gpt4'",
        "bench.passk: k = 5 is larger than samples = 2",
        "bench.loo.attributes: unknown attribute 'zodiac sign'",
        "colour: unknown option",
        "personas.n: must be ≥ 1",
    ):
        assert expected in msg, expected


def test_resolved_config_roundtrips(tmp_path):
    import tomllib

    cfg = load_config(REPO / "configs" / "quickstart.toml")
    again = parse_config(tomllib.loads(cfg.to_toml()))
    assert again == cfg


def test_relative_paths_resolve_against_config_file(tmp_path):
    (tmp_path / "qs.txt").write_text("Is it fair?\n")
    (tmp_path / "c.toml").write_text('[prompts]\nsource = "qs.txt"\n')
    assert load_config(tmp_path / "c.toml").prompts.source == str(tmp_path / "qs.txt")


def _documented_options() -> set[str]:
    text = (REPO / "docs" / "config.md").read_text()
    return set(re.findall(r"^\| `([a-z_.]+)` \|", text, flags=re.M))


def _model_options(model=RunConfig, prefix: str = "") -> set[str]:
    from pydantic import BaseModel

    out = set()
    for name, field in model.model_fields.items():
        key = prefix + (field.alias or name)
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out |= _model_options(ann, key + ".")
        else:
            out.add(key)
    return out


def test_every_option_documented():
    documented = _documented_options()
    options = _model_options()
    assert options - documented == set(), "undocumented options"
    assert documented - options == set(), "documented options that do not exist"


BAD_CONFIGS = {
    "not_toml": ("seed = = 1", "not valid TOML"),
    "seed_string": ('seed = "zero"', "seed: must be an integer"),
    "negative_personas": ("[personas]\nn = -5", "personas.n: must be ≥ 1"),
    "negative_pairs": ("[feedback.pairs]\ntrain = -1", "feedback.pairs.train: must be ≥ 0"),
    "unknown_section": ("[colours]\nred = 1", "colours: unknown option"),
    "unknown_model": ('[models]\ndefault = "gpt-4o"', "models.default: unknown model string"),
    "unknown_attribute": ('[bench.loo]\nattributes = ["shoe size"]', "unknown attribute 'shoe size'"),
    "unknown_group_attribute": (
        '[bench.intersections.groups.g]\n"star sign" = "Leo"',
        "unknown attribute 'star sign'",
    ),
    "unknown_task": ('[bench]\ntasks = ["main", "vibes"]', "bench.tasks.1: must be one of"),
    "k_gt_samples": ("[bench.passk]\nk = 9\nsamples = 2", "k = 9 is larger than samples = 2"),
    "missing_prompts_file": ('[prompts]\nsource = "nope.jsonl"', "prompts.source: no such file"),
    "api_key_in_config": ('[llm]\napi_key = "sk-x"', "OPENAI_API_KEY"),
    "bad_base_url": ('[llm]\nbase_url = "localhost:8000"', "llm.base_url: must start with http"),
    "zero_concurrency": ("[llm]\nconcurrency = 0", "llm.concurrency: must be ≥ 1"),
    "bad_state": ('[census]\nstates = ["Atlantis"]', "unknown state 'Atlantis'"),
    "ages_reversed": ("[census]\nmin_age = 60\nmax_age = 20", "min_age 60 is greater than max_age 20"),
    "fraction_out_of_range": ("[prompts]\nheld_out_fraction = 1.5", "prompts.held_out_fraction: must be < 1"),
    "bool_as_string": (
        '[personas.enrich]\nenabled = "yes"',
        "personas.enrich.enabled: must be true or false",
    ),
    "agreement_without_labels": ('[bench]\ntasks = ["agreement"]', "needs bench.agreement.labels"),
    "bad_render": ('[personas]\nrender = "poem"', "personas.render: must be one of"),
    "section_is_scalar": ("personas = 3", "personas: must be a table"),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_config_one_line_exit_2_nothing_written(cli, tmp_path, case):
    text, expected = BAD_CONFIGS[case]
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text + "\n")
    out = tmp_path / "run"
    r = cli("run", cfg, "--out", out)
    assert r.exit_code == 2, r.stdout + r.stderr
    assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, r.stderr
    assert expected in r.stderr
    assert "Traceback" not in r.stderr
    assert not out.exists()


def test_config_file_problems(cli, tmp_path):
    r = cli("run", tmp_path / "missing.toml", "--out", tmp_path / "run")
    assert r.exit_code == 2 and "no such config file" in r.stderr
    (tmp_path / "latin1.toml").write_bytes('name = "caf\xe9"\n'.encode("latin-1"))
    r = cli("run", tmp_path / "latin1.toml", "--out", tmp_path / "run")
    assert r.exit_code == 2 and "not UTF-8" in r.stderr
    r = cli("run")
    assert r.exit_code == 2 and "exactly one of CONFIG" in r.stderr
    r = cli("run", "--resume", tmp_path)
    assert r.exit_code == 2 and "not a run directory" in r.stderr
    assert not (tmp_path / "run").exists()
