"""Which model strings each executor takes, checked before any work (``run``'s preflight; issue 15)."""

from __future__ import annotations

from importlib.util import find_spec

import pytest

from persona_testbed.core.errors import UserError
from persona_testbed.pipeline.config import RunConfig
from persona_testbed.pipeline.stages.checks import check_models


def _cfg(model: str, backend: str) -> RunConfig:
    return RunConfig.model_validate({"models": {"default": model}, "execution": {"backend": backend}})


@pytest.mark.parametrize("backend", ["batch", "ray"])
@pytest.mark.parametrize("model", ["mock", "embedded", "scripted:p=0.5"])
def test_deferring_executors_refuse_models_they_cannot_defer(model, backend):
    with pytest.raises(UserError, match=rf"models.feedback = '{model}': the {backend} executor needs"):
        check_models(_cfg(model, backend), "feedback")


def test_vllm_models_need_a_deferring_executor():
    with pytest.raises(UserError, match="--executor ray"):
        check_models(_cfg("vllm/Qwen/Qwen2.5-7B-Instruct", "local"), "feedback")
    check_models(_cfg("vllm/Qwen/Qwen2.5-7B-Instruct", "batch"), "feedback")  # vllm run-batch


@pytest.mark.skipif(find_spec("vllm") is not None, reason="vLLM is installed here")
def test_vllm_on_ray_without_the_extra_says_how_to_install():
    with pytest.raises(UserError, match=r"pip install 'persona-testbed\[vllm\]'"):
        check_models(_cfg("vllm/Qwen/Qwen2.5-7B-Instruct", "ray"), "feedback")


def test_config_files_take_every_model_string_the_cli_takes():
    for model in ("scripted:p=0.4", "vllm/meta-llama/Llama-3.1-8B-Instruct", "openai/gpt-4o-mini", "mock"):
        assert _cfg(model, "local").models.default == model
    with pytest.raises(ValueError, match="unknown model string 'gpt4'"):
        _cfg("gpt4", "local")
