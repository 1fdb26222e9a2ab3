"""The wheel the Docker image installs: built from what the Dockerfile copies, as its build does.

An editable install (``make up``, the test suite) reads templates, static files and the price
catalog from the checkout, so only a real wheel shows what a non-editable install lacks: every
data file in the source tree must be in it, and the admin app must serve its pages, migrate and
seed its prices from nothing but the unpacked wheel.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
PACKAGES = ("perfanalysis", "exporter", "ingest", "tenants")
# Next to the packages but read by them at run time: seed-prices' default catalog and
# load-examples' documents (paths relative to tenants/).
READ_FROM_PROVISIONING = ("provisioning/prices.yaml", "provisioning/examples/loadtests/*.json")
NOT_RUNTIME_DATA = {"exporter/loadtest/README.md"}  # documentation of the load-test tool
BUILD_ONLY = ("__pycache__", "*.pyc", "*.so")  # .dockerignore keeps these out of the image
SECRET = "packaging-test-secret-" + "s" * 40

WHAT_THE_WHEEL_SERVES = """
import json
import tenants
from tenants.app import create_app
from tenants.loadtests.examples import DEFAULT_DIR
from tenants.settings import load

app = create_app(load([], {"PERFANALYSIS_ADMIN_DATABASE_URL": DATABASE_URL,
                           "PERFANALYSIS_ADMIN_SECRET_KEY": SECRET}))
client = app.test_client()
print(json.dumps({
    "package": tenants.__file__,
    "/login": client.get("/login").status_code,
    "/static/admin.css": client.get("/static/admin.css").status_code,
    "examples": sorted(path.name for path in DEFAULT_DIR.glob("*.json")),
}))
"""


def build_stage_copies() -> list[tuple[list[str], str]]:
    """(sources, destination) of each COPY in the Dockerfile's build stage."""
    copies = []
    stages = 0
    for line in DOCKERFILE.read_text().splitlines():
        if line.startswith("FROM "):
            stages += 1
        elif stages == 1 and line.startswith("COPY ") and "--from" not in line:
            *sources, destination = line.split()[1:]
            copies.append((sources, destination))
    assert copies, "the Dockerfile's build stage copies nothing"
    return copies


def copy_build_context(target: Path) -> None:
    """The source tree as the Dockerfile's COPY lines lay it out in /src (Docker's semantics:
    a directory's contents go to the destination; files go into it when it ends in /)."""
    for sources, destination in build_stage_copies():
        into = target / destination
        for source in sources:
            path = ROOT / source
            if path.is_dir():
                ignore = shutil.ignore_patterns(*BUILD_ONLY)
                shutil.copytree(path, into, ignore=ignore, dirs_exist_ok=True)
            elif destination.endswith("/") or len(sources) > 1:
                into.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, into / path.name)
            else:
                into.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, into)


def data_files_in_the_source_tree() -> set[str]:
    """Every file in the packages that is not Python, and what they read from provisioning/."""
    found = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*"):
            relative = path.relative_to(ROOT)
            if path.is_dir() or path.suffix == ".py":
                continue
            if any(relative.match(pattern) for pattern in BUILD_ONLY) or "__pycache__" in (
                relative.parts
            ):
                continue
            found.add(relative.as_posix())
    for pattern in READ_FROM_PROVISIONING:
        matched = {path.relative_to(ROOT).as_posix() for path in ROOT.glob(pattern)}
        assert matched, f"{pattern} matches nothing in the source tree"
        found |= matched
    return found - NOT_RUNTIME_DATA


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("wheel")
    copy_build_context(work / "src")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet",
         "--wheel-dir", str(work / "dist"), str(work / "src")],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    [built] = (work / "dist").glob("perfanalysis-*.whl")
    return built


@pytest.fixture(scope="module")
def unpacked(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("site-packages")
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(directory)
    return directory


def run_from(unpacked: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The current interpreter (for the dependencies) with the unpacked wheel first on its path,
    run outside the checkout."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(unpacked), "PERFANALYSIS_VAR_DIR": str(cwd)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_every_data_file_of_the_source_tree_is_in_the_wheel(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        packed = set(archive.namelist())
    expected = data_files_in_the_source_tree()
    assert {"tenants/templates/login.html", "tenants/migrations/script.py.mako"} <= expected
    assert expected - packed == set(), "add them to [tool.setuptools.package-data]"


def test_the_wheel_carries_the_license_its_metadata_names(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        [metadata] = [name for name in archive.namelist() if name.endswith(".dist-info/METADATA")]
        headers = archive.read(metadata).decode()
        packed = archive.read(metadata.replace("METADATA", "licenses/LICENSE")).decode()
    assert "License-Expression: Apache-2.0" in headers
    assert "License-File: LICENSE" in headers
    assert packed == (ROOT / "LICENSE").read_text()
    assert "Version 2.0, January 2004" in packed


def test_the_admin_app_serves_migrates_and_seeds_from_the_wheel_alone(
    unpacked: Path, tmp_path: Path
) -> None:
    database_url = f"sqlite:///{tmp_path / 'admin.db'}"
    admin = ("-m", "perfanalysis.cli", "admin", f"--database-url={database_url}",
             f"--secret-key={SECRET}")  # fmt: skip
    for command in ("init-db", "seed-prices"):
        result = run_from(unpacked, *admin, command, cwd=tmp_path)
        assert result.returncode == 0, f"{command}: {result.stderr}"
    assert f"from {unpacked / 'provisioning' / 'prices.yaml'}" in result.stdout

    script = f"DATABASE_URL = {database_url!r}\nSECRET = {SECRET!r}\n{WHAT_THE_WHEEL_SERVES}"
    result = run_from(unpacked, "-c", script, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    served = json.loads(result.stdout.strip().splitlines()[-1])
    assert Path(served["package"]).is_relative_to(unpacked), "not the wheel's code"
    assert served["/login"] == 200
    assert served["/static/admin.css"] == 200
    shipped = sorted(
        path.name for path in (ROOT / "provisioning/examples/loadtests").glob("*.json")
    )
    assert served["examples"] == shipped
