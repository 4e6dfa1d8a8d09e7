"""A driver killed mid-wave with the Ray executor resumes without repeating a finished call (issue 15).

``prompts build --executor ray`` runs as a subprocess (its own session and process group, its own local Ray
instance under a private ``RAY_TMPDIR``) against a loopback stub in this process. The stub records the id of
every request it receives (``content_hash`` of the body: the ``custom_id`` ``BatchBackend`` gives it) and
holds one request at a gate: the last of the wave by id. The wave has two Ray blocks, so the block without
that request completes and is saved in ``batch/batch.db`` while the other one waits: the wave is provably
mid-way, with no reliance on timing. The test then SIGKILLs the driver's process group, checks that no
process of that Ray instance is left, opens the gate and re-runs the command. The re-run exits 0, the stub
never sees a saved request again, and the artifacts are byte-identical to an uninterrupted ``local`` run.

What outlives a SIGKILLed driver that started a local Ray (Ray 2.60, Linux): gcs_server, raylet, the
monitor, dashboard and log monitor die with it (``PR_SET_PDEATHSIG``); the workers (children of the raylet,
each in its own process group, in the driver's session) exit a few seconds after the raylet; the dashboard
and runtime-env agents (the raylet's children, in the driver's process group) linger about a minute when
only the driver's pid is killed. Killing the driver's process group takes the agents too; the test then
waits for the workers to go, and kills whatever is left (and fails) if they do not.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'persona-testbed[ray]')")

import psutil  # noqa: E402  (a dependency of ray)
from e2e_tools import schema_responder, write_prompts_file  # noqa: E402

from persona_testbed.core.hashing import content_hash  # noqa: E402
from persona_testbed.llm.stub_server import StubServer  # noqa: E402

#: safety nets only (nothing is asserted on durations); generous for a loaded machine
WAIT_S = 300.0
RUN_S = 420.0
GATE_S = 900.0
#: time, and how many calls a stage replayed from the cache (differs between a resumed and a fresh run)
VOLATILE = {"seconds", "render_s", "duration_s", "started", "finished", "updated", "paths", "cached"}


class GatedResponder:
    """Answers like ``schema_responder``, records every request id by phase, holds the ids in ``hold``
    until ``gate`` is set (or ``GATE_S`` passed)."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.hold: set[str] = set()
        self.phase = "local"
        self.seen: dict[str, list[str]] = {}
        self.waiting = 0
        self._lock = threading.Lock()

    def __call__(self, request: dict[str, Any]) -> str:
        rid = content_hash(request)
        with self._lock:
            self.seen.setdefault(self.phase, []).append(rid)
            held = rid in self.hold and not self.gate.is_set()
            self.waiting += held
        if held:
            try:
                self.gate.wait(GATE_S)
            finally:
                with self._lock:
                    self.waiting -= 1
        return schema_responder(request)

    def ids(self, phase: str) -> list[str]:
        with self._lock:
            return list(self.seen.get(phase, []))


def _strip(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items() if k not in VOLATILE}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


def _same(a: Path, b: Path) -> None:
    if a.suffix == ".json":
        assert _strip(json.loads(a.read_text())) == _strip(json.loads(b.read_text())), (a, b)
    else:
        assert a.read_bytes() == b.read_bytes(), (a, b)


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """The CLI in its own session (its pid is its process group and session id), output to ``log``."""
    with log.open("wb") as fh:
        return subprocess.Popen(
            [sys.executable, "-m", "persona_testbed", *args],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _tail(log: Path, n: int = 3000) -> str:
    return log.read_text(errors="replace")[-n:] if log.exists() else "(no output)"


def _wait_for(cond, what: str, timeout: float, proc: subprocess.Popen | None = None, log: Path | None = None):
    deadline = time.monotonic() + timeout
    while not cond():
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the driver exited ({proc.returncode}) before {what}:\n{_tail(log)}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {timeout:.0f} s (safety net):\n{_tail(log) if log else ''}")
        time.sleep(0.2)


def _saved(run: Path) -> dict[str, str | None]:
    """Replies the Ray executor saved in ``run/batch/batch.db``: id -> error (None for an answer)."""
    db = run / "batch" / "batch.db"
    if not db.exists():
        return {}
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return dict(conn.execute("SELECT id, error FROM replies WHERE source = 'ray'").fetchall())
    except sqlite3.OperationalError:  # the driver is creating the tables
        return {}
    finally:
        conn.close()


def _ours(sid: int, ray_tmp: str, known: set[psutil.Process]) -> list[psutil.Process]:
    """Live processes of the killed driver: its session, its Ray instance's temp dir, or seen as its
    descendants before the kill (a ``psutil.Process`` is its pid and start time: a reused pid is not it)."""
    found = []
    for p in psutil.process_iter(["pid", "cmdline", "status"]):
        try:
            if p.info["status"] == psutil.STATUS_ZOMBIE or p.pid == os.getpid():
                continue
            mine = p in known or ray_tmp in " ".join(p.info["cmdline"] or [])
            if not mine:
                try:
                    mine = os.getsid(p.pid) == sid
                except ProcessLookupError:
                    continue
            if mine:
                found.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def _describe(procs: list[psutil.Process]) -> list[str]:
    out = []
    for p in procs:
        try:
            out.append(f"{p.pid} {' '.join(p.cmdline())[:120]}")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return out


def _sweep(sid: int, ray_tmp: str, known: set[psutil.Process]) -> list[str]:
    """Kill whatever is left of a driver and its Ray instance; return what had to be killed."""
    left = _ours(sid, ray_tmp, known)
    described = _describe(left)
    for p in left:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(left, timeout=30)
    return described


def test_driver_killed_mid_wave_resumes_without_repeating_finished_calls(tmp_path):
    q = write_prompts_file(tmp_path / "q.txt")
    common = ["prompts", "build", "--source", str(q), "--model", "openai/stub", "--seed", "3"]
    common += ["--clusters", "2", "--json"]
    responder = GatedResponder()
    # a short private temp dir: Ray's socket paths must stay under 108 bytes, and its processes carry it
    ray_tmp = tempfile.mkdtemp(prefix="ptrr-", dir="/tmp")
    drivers: list[subprocess.Popen] = []
    known: set[psutil.Process] = set()
    with StubServer(responder=responder, seed=11) as stub:
        env = {
            **os.environ,
            "OPENAI_BASE_URL": stub.base_url,
            "OPENAI_API_KEY": "sk-test",
            "RAY_TMPDIR": ray_tmp,
            "RAY_USAGE_STATS_ENABLED": "0",
        }
        env.pop("RAY_ADDRESS", None)
        try:
            # 1. the reference: an uninterrupted local run; it also tells the wave's request ids
            log = tmp_path / "local.log"
            local = _start([*common, "--out", str(tmp_path / "local")], env, log)
            drivers.append(local)
            assert local.wait(RUN_S) == 0, _tail(log)
            wave = set(responder.ids("local"))
            assert len(wave) >= 4, wave
            responder.hold = {max(wave)}  # the last request of the wave's last block waits at the gate

            # 2. the Ray run, killed once one block is saved and the other one is held
            run = tmp_path / "ray"
            responder.phase = "ray"
            log = tmp_path / "ray-killed.log"
            driver = _start([*common, "--out", str(run), "--executor", "ray"], env, log)
            drivers.append(driver)
            _wait_for(
                lambda: _saved(run) and responder.waiting > 0,
                "saved Ray answers while a request is held",
                WAIT_S,
                driver,
                log,
            )
            try:
                known = set(psutil.Process(driver.pid).children(recursive=True))
            except psutil.NoSuchProcess:
                pass
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait(60)
            # whatever left the process group (Ray's fate-shared processes die with it): none may survive
            _wait_for(
                lambda: not _ours(driver.pid, ray_tmp, known), "end of the killed driver's processes", 120
            )

            finished = _saved(run)
            assert finished and all(err is None for err in finished.values()), finished
            assert set(finished) < wave and not set(finished) & responder.hold  # mid-wave: a block is missing
            assert set(finished) <= set(responder.ids("ray"))

            # 3. resume: only the calls not saved are sent again
            responder.gate.set()
            responder.phase = "resume"
            log = tmp_path / "ray-resumed.log"
            again = _start([*common, "--out", str(run), "--executor", "ray"], env, log)
            drivers.append(again)
            assert again.wait(RUN_S) == 0, _tail(log)
            resent = set(responder.ids("resume"))
            assert not resent & set(finished), "the resumed run sent finished calls again"
            assert resent == wave - set(finished)
            for name in ("prompts.jsonl", "prompts.parquet", "summary.json"):
                _same(tmp_path / "local" / name, run / name)
            # the resumed driver shut its Ray instance down
            _wait_for(lambda: not _ours(again.pid, ray_tmp, set()), "end of the resumed driver's Ray", 120)
        finally:
            responder.gate.set()
            for d in drivers:
                if d.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(d.pid, signal.SIGKILL)
                    d.wait(60)
            stray = [s for d in drivers for s in _sweep(d.pid, ray_tmp, known)]
            shutil.rmtree(ray_tmp, ignore_errors=True)
    assert not stray, f"processes left behind: {stray}"
