"""User-facing errors.

Anything a user can cause (bad input, missing data, unknown model, bad config) raises ``UserError``.
The CLI turns it into one line on stderr (``error: <message>``) and exit code 2, never a traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input or environment; message names the file, field or value."""

    exit_code = 2


class DataMissingError(UserError):
    """An input data file is not in the data directory."""


class ConfigError(UserError):
    """A run configuration is invalid; the message lists every problem with its TOML path."""
