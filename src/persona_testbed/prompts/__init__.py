"""Prompts: PRISM (or a user file) -> filter verdicts -> topic clusters -> stratified train / held-out split."""

from .build import PromptBuildConfig, abuild_prompts, build_prompts
from .io import read_prompts, write_prompts
from .load import PRISM_ATTRIBUTION, load_prompt_file
from .record import FILTER_ORDER, FilterVerdict, Prompt
from .stats import prompt_stats

__all__ = [
    "Prompt",
    "FilterVerdict",
    "FILTER_ORDER",
    "PromptBuildConfig",
    "build_prompts",
    "abuild_prompts",
    "read_prompts",
    "write_prompts",
    "load_prompt_file",
    "prompt_stats",
    "PRISM_ATTRIBUTION",
]
