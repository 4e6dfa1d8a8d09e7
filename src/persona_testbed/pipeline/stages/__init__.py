"""The stages: one function per stage, called by ``persona-testbed run`` AND by the stage's own command.

Each stage function takes a ``StageContext`` (the session, the stage's output directory) and a typed
spec of everything it depends on, writes its artifacts into ``ctx.dir`` and returns a ``StageOutcome``.
``run`` builds the specs from a ``RunConfig`` (``*_spec(cfg, ...)``); the standalone commands build them
from their options. Either way the same function runs, so the two paths cannot drift: same artifacts,
same call log, same manifest record (``Session.run_stage``). One module per stage, so a command imports
only its own stage's libraries.
"""
