"""Run directories: config, manifest, call log, artifacts, lock."""

from .rundir import (RunDir, RunLockedError, atomic_path, atomic_write_bytes, atomic_write_text,
                     resolve_artifact)

__all__ = ["RunDir", "RunLockedError", "atomic_path", "atomic_write_bytes", "atomic_write_text", "resolve_artifact"]
