"""Census sampling figures on the offline mirror: load (cold/warm), 1,586 and 1,000,000 draws, peak RSS.

    .venv/bin/python benchmarks/bench_census_sampling.py [--mirror DIR] [--skip-2018]

Cold = a fresh, empty cache directory (checksums computed, zips decoded); warm = the same process
opening the source again. Draws are whole person records (all columns) from the 2024 national extract
(3.4 M persons), probability proportional to PWGTP (default design: systematic). Goals (issue 3): 1,586 in <= 2 s with cached data,
1,000,000 in <= 30 s, peak RSS <= 2 GB.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def timed(label: str, fn):  # type: ignore[no-untyped-def]
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"{label:<46} {dt:8.3f} s wall {cpu:8.3f} s CPU   peak RSS {rss_mb():6.0f} MB", flush=True)
    return out, dt


def main() -> None:
    from conftest import find_mirror

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mirror", default=None, help="offline data directory (default: ../shared/data)")
    ap.add_argument("--skip-2018", action="store_true", help="skip the 2018 zip decode figures")
    args = ap.parse_args()
    mirror = Path(args.mirror) if args.mirror else find_mirror()
    if mirror is None:
        sys.exit("no offline data mirror found")
    os.environ["PERSONA_TESTBED_HOME"] = tempfile.mkdtemp(prefix="bench-census-")

    from persona_testbed.census import Filters, open_source, sample_persons

    print(
        f"mirror {mirror}; cache {os.environ['PERSONA_TESTBED_HOME']}; {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    if not args.skip_2018:
        src18, _ = timed(
            "acs2018 open (cold: sha256 of 14 zips)", lambda: open_source("acs2018", data_dir=mirror)
        )
        timed(
            "acs2018 first load (decode 14 zips -> cache)", lambda: src18.persons(["AGEP", "PWGTP"]).collect()
        )
        src18b, _ = timed("acs2018 open (warm)", lambda: open_source("acs2018", data_dir=mirror))
        timed("acs2018 load (warm, from cache)", lambda: src18b.persons(["AGEP", "PWGTP"]).collect())
        timed("acs2018 1,586 draws (all 286 columns)", lambda: sample_persons(src18b, 1586, seed=0))

    src, _ = timed(
        "acs2024 open (cold: sha256 of 102 files)", lambda: open_source("acs2024", data_dir=mirror)
    )
    timed("acs2024 first load of PWGTP+AGEP (3.4 M rows)", lambda: src.persons(["PWGTP", "AGEP"]).collect())
    src, _ = timed("acs2024 open (warm)", lambda: open_source("acs2024", data_dir=mirror))
    df, _ = timed("acs2024 1,586 draws (all columns)", lambda: sample_persons(src, 1586, seed=0))
    timed(
        "acs2024 1,586 adults, quota by state",
        lambda: sample_persons(src, 1586, seed=0, filters=Filters(adults_only=True), quota_by="STATE"),
    )
    timed("acs2024 1,586 without replacement", lambda: sample_persons(src, 1586, seed=0, replace=False))
    timed(
        "acs2024 1,586 draws, design=independent",
        lambda: sample_persons(src, 1586, seed=0, design="independent"),
    )
    big, _ = timed("acs2024 1,000,000 draws (all columns)", lambda: sample_persons(src, 1_000_000, seed=0))
    print(
        f"1,000,000 draws: {big.height:,} rows x {big.width} columns, {big.estimated_size() / 2**20:.0f} MB"
    )
    print(f"peak RSS {rss_mb():.0f} MB (goal <= 2048 MB)")


if __name__ == "__main__":
    main()
