"""User-facing errors.

Anything a user can cause (bad input, missing data, unknown model, bad config) raises ``UserError``.
The CLI turns it into one line on stderr (``error: <message>``) and its ``exit_code``, never a traceback:
2 for bad input, 3 when a stage stopped because its model calls kept failing (``CallsFailingError``).
"""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input or environment; message names the file, field or value."""

    exit_code = 2
    #: how the CLI starts the line it prints (``error: …``)
    label = "error"


class DataMissingError(UserError):
    """An input data file is not in the data directory."""


class ConfigError(UserError):
    """A run configuration is invalid; the message lists every problem with its TOML path."""


class CallsFailingError(UserError):
    """A stage stopped because too many of its model calls failed (server down, bad key, timeouts ...).

    Raised by ``LLMClient.chat`` once the stage's ``FailureBreaker`` trips, and by
    ``FailureBreaker.check_final``. The message is one line naming the most common cause and how many
    calls it hit, e.g. ``connection refused at http://127.0.0.1:9/v1 for 8 of 8 calls``. Exit code 3
    tells it apart from bad input (2).
    """

    exit_code = 3
