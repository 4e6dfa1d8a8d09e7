"""The run-directory lock: a second writer gets one clear error naming the process that holds it."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys

import pytest

from persona_testbed.pipeline.rundir import RunDir, RunLockedError

# Holds the lock of the run directory argv[1], says so on stdout, and lets go when stdin closes.
HOLDER = """
import sys
from persona_testbed.pipeline.rundir import RunDir
with RunDir(sys.argv[1]).locked():
    print("locked", flush=True)
    sys.stdin.read()
print("released", flush=True)
"""


def test_busy_lock_names_the_holding_process(tmp_path):
    run = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(run)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline() == "locked\n"  # the holder has the lock (and wrote its pid)
        with pytest.raises(RunLockedError) as err, RunDir(run).locked():
            pass
        msg = str(err.value)
        assert f"run directory {run} is in use by another persona-testbed process (pid {holder.pid};" in msg
        assert "\n" not in msg
    finally:
        holder.stdin.close()  # let go
        assert holder.stdout.readline() == "released\n"
        holder.wait()
    assert holder.returncode == 0
    with RunDir(run).locked() as rd:  # free again: this process takes it and records its own pid
        assert (rd.path / ".lock").read_text() == str(os.getpid())
    assert (run / ".lock").read_text() == ""  # released: no stale pid left behind


def test_busy_lock_before_the_pid_is_written(tmp_path):
    """A holder caught between taking the lock and writing its pid: the error says so, not a wrong pid."""
    run = tmp_path / "run"
    run.mkdir()
    (run / ".lock").write_text("")
    fd = os.open(run / ".lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(RunLockedError, match=r"\(pid not written yet; wait for it"), RunDir(run).locked():
            pass
    finally:
        os.close(fd)
