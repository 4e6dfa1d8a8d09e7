"""Where persona-testbed keeps its data: one directory, moved by one environment variable.

Resolution order: explicit ``--data-dir`` > ``PERSONA_TESTBED_HOME`` > the user cache dir.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

ENV_HOME = "PERSONA_TESTBED_HOME"


def home_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The tool's home directory (holds ``data/`` and ``cache/``)."""
    if explicit:
        return Path(explicit).expanduser().resolve()
    env = os.environ.get(ENV_HOME)
    if env:
        return Path(env).expanduser().resolve()
    return Path(platformdirs.user_cache_dir("persona-testbed")).resolve()


def data_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Directory holding fetched input files, laid out like the mirror (e.g. ``census/acs/2018/...``).

    ``explicit`` is a data directory itself (the CLI's ``--data-dir``); otherwise ``<home>/data``.
    """
    if explicit:
        return Path(explicit).expanduser().resolve()
    return home_dir() / "data"


def cache_dir() -> Path:
    """Directory for derived caches (decoded Parquet etc.), keyed by input checksums."""
    return home_dir() / "cache"
