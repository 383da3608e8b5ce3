"""ClickHouse clients as people install them: each at its latest release from its registry,
installed at test time into a folder of this run's data folder (pip into a virtualenv that also
sees the suite's own packages, npm into a folder of its own), and run as a separate program
against a live Shoal. Where the registry cannot be reached the test is skipped, saying so."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from django.conf import settings


def _folder(name: str) -> Path:
    path = Path(settings.DATA_DIR) / "clients" / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def python_client(name: str, *requirements: str, deps: bool = False) -> Path:
    """A virtualenv with `requirements` at their newest matching release; it also sees this
    suite's site-packages (after its own), so that pandas and pyarrow need no second install;
    with `deps`, what they need and the suite lacks is installed too. Returns its python."""
    folder = _folder(name)
    python = folder / "bin" / "python"
    if not python.exists():
        venv.create(folder, with_pip=True)
        purelib = subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        ours = [p for p in sys.path if p.endswith("site-packages")]
        Path(purelib, "zz_shoal_suite.pth").write_text("\n".join(ours) + "\n")
    done = subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--upgrade",
            *([] if deps else ["--no-deps"]),
            *requirements,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        reason = done.stderr.strip().splitlines()[-1:] or ["pip failed"]
        if "No matching distribution" in done.stderr or "Could not" in done.stderr:
            pytest.skip(f"PyPI cannot be reached for {' '.join(requirements)}: {reason[0]}")
        raise RuntimeError(done.stderr)
    return python


def node_client(package: str) -> Path:
    """`package` at its latest release from the npm registry in a folder of its own."""
    folder = _folder("node")
    if not (folder / "node_modules" / package).exists():
        if subprocess.run(["which", "npm"], capture_output=True).returncode != 0:
            pytest.skip("npm is not installed")
        (folder / "package.json").write_text('{"name": "shoal-client-check", "private": true}')
        done = subprocess.run(
            ["npm", "install", "--silent", "--no-audit", "--no-fund", f"{package}@latest"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0:
            pytest.skip(f"the npm registry cannot be reached for {package}: {done.stderr[-300:]}")
    return folder


def version_of(python: Path, distribution: str) -> str:
    return subprocess.run(
        [str(python), "-c", f"from importlib.metadata import version; print(version({distribution!r}))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def run_program(argv: list[str], program: str, env: dict, cwd: Path | None = None) -> dict:
    """Run a client's program (its last line of output is JSON) and return that JSON."""
    done = subprocess.run(
        [*argv, program],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:] or done.stdout[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])
