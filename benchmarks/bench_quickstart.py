"""Quickstart figures: wall time and peak RSS of `persona-testbed run configs/quickstart.toml` (embedded
model), time to re-run the finished run (every stage cached), report size and render time — also of a
report at paper scale (the quickstart's artifacts replicated to 1,586 personas and 317,200 pairs).

    python benchmarks/bench_quickstart.py [--data-dir DIR] [--out DIR] [--config FILE] [--no-paper-report]

Data: the data directory of PERSONA_TESTBED_HOME (after `persona-testbed data fetch all`), or
``--data-dir`` (default: the offline mirror ../shared/data when present). Prints one JSON document.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _run(args: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """Wall seconds, peak RSS (MiB, max over finished children) and CPU seconds of one CLI invocation."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "persona_testbed", *args], env=env, capture_output=True, text=True
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"persona-testbed {' '.join(args)} failed with exit code {proc.returncode}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, after.ru_maxrss / 1024, cpu


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mirror = REPO.parent / "shared" / "data"
    ap.add_argument("--data-dir", default=str(mirror) if (mirror / "SHA256SUMS").exists() else None)
    ap.add_argument("--config", default=str(REPO / "configs" / "quickstart.toml"))
    ap.add_argument("--out", default=None, help="run directory (default: a temporary one)")
    ap.add_argument("--no-paper-report", action="store_true", help="skip the paper-scale report figure")
    args = ap.parse_args(argv)

    import tomllib

    import tomli_w

    cfg = tomllib.loads(Path(args.config).read_text())
    if args.data_dir:
        cfg.setdefault("data", {})["dir"] = str(Path(args.data_dir).resolve())
    work = Path(tempfile.mkdtemp(prefix="bench-quickstart-"))
    cfg_path = work / "quickstart.toml"
    cfg_path.write_text(tomli_w.dumps(cfg))
    out = Path(args.out) if args.out else work / "run"
    env = dict(os.environ)
    env.setdefault("PERSONA_TESTBED_HOME", str(work / "home"))

    load_before = _load()
    first_s, first_rss, first_cpu = _run(["run", str(cfg_path), "--out", str(out), "--quiet"], env)
    load_after = _load()
    rerun_s, _, _ = _run(["run", "--resume", str(out), "--quiet"], env)
    report_s, _, _ = _run(["report", str(out), "--out", str(work / "report.html")], env)
    manifest = json.loads((out / "manifest.json").read_text())
    status = json.loads(
        subprocess.run(
            [sys.executable, "-m", "persona_testbed", "status", str(out), "--json"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    render = json.loads(json.dumps(manifest["stages"].get("report", {}).get("summary", {})))
    paper = {} if args.no_paper_report else paper_scale_report(out, work / "paper-run", env)
    print(
        json.dumps(
            {
                "config": args.config,
                "cpus": os.cpu_count(),
                "quickstart_wall_s": round(first_s, 1),
                "quickstart_peak_rss_mib": round(first_rss, 1),
                "quickstart_cpu_s": round(first_cpu, 1),
                "load_average_1min_before_after": [load_before, load_after],
                "rerun_all_cached_wall_s": round(rerun_s, 2),
                "report_command_wall_s": round(report_s, 2),
                "report_render_s": render.get("render_s"),
                "report_bytes": (work / "report.html").stat().st_size,
                "stage_seconds": {k: v.get("duration_s") for k, v in manifest["stages"].items()},
                "calls": status["totals"]["calls"],
                "failed_calls": status["totals"]["failed"],
                "failed_items": status["totals"]["failed_items"],
                "tokens": status["totals"]["prompt_tokens"] + status["totals"]["completion_tokens"],
                "run_dir": str(out),
                **paper,
            },
            indent=2,
        )
    )


def paper_scale_report(run: Path, target: Path, env: dict[str, str]) -> dict[str, object]:
    """Replicate the quickstart's personas / pairs to the paper's 1,586 x 200 and time the report."""
    import shutil

    shutil.copytree(run, target, ignore=shutil.ignore_patterns("calls.db*", "report"))
    personas = [json.loads(x) for x in (run / "personas" / "personas.jsonl").read_text().splitlines()]
    pairs = [json.loads(x) for x in (run / "feedback" / "pairs.jsonl").read_text().splitlines()]
    with (target / "personas" / "personas.jsonl").open("w") as fh:
        for i in range(1586):
            p = dict(personas[i % len(personas)], id=f"p-{i:06d}")
            fh.write(json.dumps(p) + "\n")
    with (target / "feedback" / "pairs.jsonl").open("w") as fh:
        for i in range(1586 * 200):
            q = dict(pairs[i % len(pairs)], id=f"pair-{i:07d}", persona_id=f"p-{i // 200:06d}")
            fh.write(json.dumps(q) + "\n")
    wall, _, _ = _run(["report", str(target), "--out", str(target / "report.html")], env)
    return {
        "paper_scale_report_wall_s": round(wall, 2),
        "paper_scale_report_bytes": (target / "report.html").stat().st_size,
        "paper_scale_pairs_file_bytes": (target / "feedback" / "pairs.jsonl").stat().st_size,
    }


if __name__ == "__main__":
    main()
