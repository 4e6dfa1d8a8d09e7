"""Release smoke: drive an *installed* persona-testbed the way a new user does, offline.

    python tests/release_smoke.py --exe /path/to/venv/bin/persona-testbed --mirror ../shared/data --work DIR

Used by ``tests/test_release.py`` (the freshly built wheel in a new virtual environment) and by
``.ci/run`` (a fresh install on the lowest and highest supported Python). Standard library only, and it
imports nothing from persona-testbed: the CLI under test runs as a subprocess started from ``--work``,
with ``PYTHONPATH`` removed, so only what the install put into site-packages is found. Steps, each one
CLI call: ``--version``; a 5-persona sample from the mirror; ``prompts build --no-controversy``; a run
(personas, prompts, feedback pairs from a loopback stub server, report; no bench) and ``report``.
Prints one line per step with its wall time; exits non-zero with the failing command's output.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

QUESTIONS = [
    "Should the government raise taxes on the very rich?",
    "Is it ever right to break the law to protest?",
    "Should parents be allowed to homeschool their children freely?",
    "Do you think religion makes society better or worse?",
    "Should the voting age be lowered to sixteen years old?",
    "Is nuclear power a good answer to climate change?",
]


class SmokeError(RuntimeError):
    pass


def _cli(exe: str, *args: str, cwd: Path, env: dict[str, str]) -> str:
    t0 = time.perf_counter()
    r = subprocess.run([exe, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    took = time.perf_counter() - t0
    if r.returncode != 0:
        raise SmokeError(f"`persona-testbed {' '.join(args)}` exited {r.returncode}\n{r.stdout}\n{r.stderr}")
    print(f"ok {took:6.2f}s  persona-testbed {' '.join(args[:2])}", flush=True)
    return r.stdout


def _config(work: Path, mirror: Path, base_url: str) -> Path:
    questions = work / "questions.txt"
    questions.write_text("\n".join(QUESTIONS) + "\n", encoding="utf-8")
    cfg = work / "smoke.toml"
    cfg.write_text(
        f"""name = "release-smoke"
seed = 1
[models]
default = "openai/stub"
[llm]
base_url = "{base_url}"
concurrency = 4
max_retries = 1
timeout_s = 10
max_tokens = 48
[data]
dir = "{mirror}"
[census]
source = "acs2018"
states = ["WY"]
fidelity_reference = 100
[personas]
n = 2
render = "summary"
[prompts]
source = "{questions}"
clusters = 2
classify = false
held_out_fraction = 0.34
[feedback.pairs]
train = 1
test = 1
held_out = 0
[bench]
tasks = []
[report]
enabled = true
""",
        encoding="utf-8",
    )
    return cfg


def _stub_server(exe: str, env: dict[str, str], cwd: Path) -> tuple[subprocess.Popen[str], str]:
    """``persona-testbed llm stub-server --port 0`` (echo replies) from the installed package; its URL."""
    proc = subprocess.Popen(
        [exe, "llm", "stub-server", "--port", "0"],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:  # the server prints its URL first; a dead server ends the loop
        seen.append(line)
        for word in line.split():
            if word.startswith("http://127.0.0.1:"):
                return proc, word.rstrip(".,;")
    proc.kill()
    raise SmokeError("stub server printed no URL:\n" + "".join(seen))


def smoke(exe: str, mirror: Path, work: Path) -> None:
    work.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
    env.update(
        PERSONA_TESTBED_HOME=str(work / "home"),
        OPENAI_API_KEY="sk-smoke",
        NO_COLOR="1",
        COLUMNS="200",
        PYTHONSAFEPATH="1",
    )

    out = _cli(exe, "--version", cwd=work, env=env)
    if "data manifest" not in out or "Python " not in out:
        raise SmokeError(f"--version lacks the data manifest or Python version:\n{out}")

    _cli(
        exe,
        "personas",
        "sample",
        "--n",
        "5",
        "--seed",
        "0",
        "--source",
        "acs2018",
        "--states",
        "WY",
        "--data-dir",
        str(mirror),
        "--out",
        "personas",
        cwd=work,
        env=env,
    )
    rows = (work / "personas" / "personas.jsonl").read_text(encoding="utf-8").splitlines()
    if len(rows) != 5:
        raise SmokeError(f"expected 5 personas, got {len(rows)}")

    _cli(
        exe,
        "prompts",
        "build",
        "--no-controversy",
        "--data-dir",
        str(mirror),
        "--limit",
        "12",
        "--out",
        "prompts",
        cwd=work,
        env=env,
    )
    if not (work / "prompts" / "prompts.jsonl").read_text(encoding="utf-8").strip():
        raise SmokeError("prompts build wrote no prompts")

    proc, url = _stub_server(exe, env, work)
    try:
        cfg = _config(work, mirror, url)
        _cli(exe, "run", str(cfg), "--out", "run", "--quiet", cwd=work, env=env)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    pairs = (work / "run" / "feedback" / "pairs.jsonl").read_text(encoding="utf-8").splitlines()
    if not pairs or not all(json.loads(p).get("chosen") for p in pairs):
        raise SmokeError(f"feedback wrote no usable pairs: {pairs[:1]}")

    _cli(exe, "report", "run", "--out", "report.html", cwd=work, env=env)
    html = (work / "report.html").read_text(encoding="utf-8")
    for needle in ("Data licences and attribution", "CC-BY-4.0", "arXiv:2407.17387"):
        if needle not in html:
            raise SmokeError(f"report lacks {needle!r}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--exe", required=True, help="the persona-testbed executable of the install under test")
    ap.add_argument("--mirror", required=True, type=Path, help="offline data mirror (has SHA256SUMS)")
    ap.add_argument(
        "--work", required=True, type=Path, help="empty working directory outside the source tree"
    )
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    try:
        smoke(a.exe, a.mirror.resolve(), a.work.resolve())
    except (SmokeError, subprocess.TimeoutExpired) as exc:
        print(f"release smoke FAILED: {exc}", file=sys.stderr)
        return 1
    print(f"release smoke passed in {time.perf_counter() - t0:.1f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
