"""Release readiness: the wheel works outside the source tree; versions and licences are declared alike
everywhere; `--version` identifies the install; the Makefile refuses a too-old interpreter in one line.

The wheel test builds sdist + wheel offline (``python -m build --no-isolation``: hatchling is a pinned dev
dependency), creates a new virtual environment **without** pip or system site-packages, installs the
wheel there with ``pip --python … --no-deps --no-index``, and lends it the third-party dependencies of
the running environment through a one-line ``.pth`` entry (a plain path entry: the ``.pth`` files inside
it, such as the editable install's pointer to ``src/``, are not processed). So persona-testbed itself
comes only from the wheel, while numpy, polars & co. need no download (seconds instead of minutes).
Whether the wheel's declared dependencies install from PyPI is checked by ``.ci/run``'s fresh installs
on the lowest and highest supported Python (``tests/release_smoke.py`` drives both).
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

import persona_testbed

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "persona_testbed"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
MIN_PYTHON = "3.11"
SUPPORTED = ("3.11", "3.12", "3.13")


def _run(*cmd: object, **kw: object) -> subprocess.CompletedProcess[str]:
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=600, **kw)
    assert r.returncode == 0, f"{cmd}\n{r.stdout}\n{r.stderr}"
    return r


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    if shutil.which("hatchling", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("hatchling not installed (pip install -e '.[dev]' installs it)")
    _run(sys.executable, "-m", "build", "--no-isolation", "--outdir", out, ROOT)
    return out


@pytest.mark.release
def test_wheel_holds_every_package_file_and_the_licences(dist):
    wheel = next(dist.glob("persona_testbed-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    data = [
        p
        for p in SRC.rglob("*")
        if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts
    ]
    assert data, "no package data found"
    for path in [*data, *SRC.rglob("*.py")]:
        if "__pycache__" not in path.parts:
            assert str(path.relative_to(SRC.parent)) in names, f"{path} missing from the wheel"
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert any(n.endswith(".dist-info/licenses/DATA_LICENSES.md") for n in names)
    sdist = next(dist.glob("persona_testbed-*.tar.gz"))
    assert sdist.stat().st_size > 0


@pytest.mark.release
def test_wheel_runs_outside_the_source_tree(dist, mirror, tmp_path):
    wheel = next(dist.glob("persona_testbed-*.whl"))
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv)  # no system site-packages (the default)
    py = venv / "bin" / "python"
    _run(
        sys.executable,
        "-m",
        "pip",
        "--python",
        py,
        "install",
        "--quiet",
        "--no-deps",
        "--no-index",
        "--no-compile",
        wheel,
    )
    purelib = _run(py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip()
    (Path(purelib) / "_borrowed_deps.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8"
    )

    probe = _run(
        py,
        "-I",
        "-c",
        "import sys, persona_testbed; print(persona_testbed.__file__); print(sys.path)",
        cwd=tmp_path,
    ).stdout.splitlines()
    assert Path(probe[0]).is_relative_to(venv), probe[0]
    source_entries = [
        e for e in ast.literal_eval(probe[1]) if e and (Path(e) == ROOT or Path(e).is_relative_to(SRC.parent))
    ]
    assert not source_entries, f"the source tree is on the fresh environment's sys.path: {source_entries}"

    work = tmp_path / "work"  # outside the source tree
    r = subprocess.run(
        [
            py,
            "-I",
            ROOT / "tests" / "release_smoke.py",
            "--exe",
            venv / "bin" / "persona-testbed",
            "--mirror",
            mirror,
            "--work",
            work,
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "release smoke passed" in r.stdout


def test_version_names_the_data_manifest_and_python(cli):
    r = cli("--version")
    assert r.exit_code == 0
    lines = r.stdout.splitlines()
    assert lines[0] == f"persona-testbed {persona_testbed.__version__}"
    assert re.fullmatch(r"data manifest format \d+, \d+ files, sha256 [0-9a-f]{12}", lines[1]), lines[1]
    assert lines[2].startswith(f"Python {sys.version_info.major}.{sys.version_info.minor}.")


def test_minimum_python_is_declared_alike_everywhere():
    assert PYPROJECT["project"]["requires-python"] == f">={MIN_PYTHON}"
    classifiers = {
        c.rsplit(" :: ", 1)[-1]
        for c in PYPROJECT["project"]["classifiers"]
        if c.startswith("Programming Language :: Python :: 3.")
    }
    assert classifiers == set(SUPPORTED)
    assert f"MIN_PYTHON := {MIN_PYTHON}" in (ROOT / "Makefile").read_text(encoding="utf-8")
    assert f"Python ≥ {MIN_PYTHON}" in (ROOT / "README.md").read_text(encoding="utf-8")
    assert PYPROJECT["tool"]["ruff"]["target-version"] == "py" + MIN_PYTHON.replace(".", "")
    assert PYPROJECT["tool"]["mypy"]["python_version"] == MIN_PYTHON
    assert sys.version_info >= tuple(int(x) for x in MIN_PYTHON.split("."))


def test_constraints_pin_one_version_per_supported_python():
    """Every line pins exactly (``==``); a package listed twice carries markers that never overlap, so
    each supported Python (oldest and newest patch release) gets exactly one pin of it."""
    pins: dict[str, list[Requirement]] = {}
    for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            req = Requirement(line)
            (spec,) = req.specifier
            assert spec.operator == "==", line
            pins.setdefault(req.name.lower().replace("_", "-"), []).append(req)
    for version in SUPPORTED:
        for full in (f"{version}.0", f"{version}.99"):
            env = {"python_version": version, "python_full_version": full}
            for name, reqs in pins.items():
                hits = [r for r in reqs if r.marker is None or r.marker.evaluate(env)]
                assert len(hits) == 1, (name, full, [str(r) for r in reqs])
    # the dev tools the checks rely on are pinned alike in the extra and in constraints.txt
    dev = {
        Requirement(r).name: Requirement(r).specifier
        for r in PYPROJECT["project"]["optional-dependencies"]["dev"]
    }
    for tool in ("ruff", "mypy", "build", "hatchling"):
        assert dev[tool] == SpecifierSet(f"=={next(iter(pins[tool][0].specifier)).version}"), tool


def test_make_refuses_an_old_python_in_one_line_before_installing(tmp_path):
    if shutil.which("make") is None:
        pytest.skip("make not installed")
    fake = tmp_path / "python3.10"  # answers every question like a Python 3.10 would
    fake.write_text("#!/bin/sh\necho 3.10.13\n", encoding="utf-8")
    fake.chmod(0o755)
    venv = tmp_path / "venv"
    r = subprocess.run(
        ["make", "-s", "-C", ROOT, "install", f"PY={fake}", f"VENV={venv}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode != 0
    lines = (r.stdout + r.stderr).strip().splitlines()
    assert len(lines) == 1, lines
    assert f"needs Python >= {MIN_PYTHON}" in lines[0] and "3.10.13" in lines[0]
    assert not venv.exists()  # refused before any install work


@pytest.mark.parametrize("name", ["LICENSE", "CITATION.cff", "DATA_LICENSES.md", "CONTRIBUTING.md"])
def test_release_files_exist(name):
    text = (ROOT / name).read_text(encoding="utf-8")
    if name == "LICENSE":
        assert "Apache License" in text and "Version 2.0, January 2004" in text and len(text) > 11000
    if name == "CITATION.cff":  # full schema validation: `cffconvert --validate` (CONTRIBUTING.md)
        cff = yaml.safe_load(text)
        assert cff["cff-version"] == "1.2.0" and cff["type"] == "software" and cff["license"] == "Apache-2.0"
        assert cff["version"] == persona_testbed.__version__
        assert "2407.17387" in cff["preferred-citation"]["url"]
    if name == "DATA_LICENSES.md":
        for needle in ("public domain", "CC-BY-4.0", "Kirk", "NORC", "IPIP-NEO-120", "SmolLM2", "Apache-2.0"):
            assert needle in text, needle
