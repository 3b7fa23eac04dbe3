"""The wheel carries the rule packs and templates: an installed, non-editable tlsgate finds them."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.helpers import REPO


@pytest.mark.slow
def test_wheel_installs_and_finds_packs_outside_the_source_tree(tmp_path):
    """Build the wheel, install it into a fresh venv, and run `tlsgate rules list` from elsewhere."""
    dist = tmp_path / "dist"
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
    subprocess.run([*pip_wheel, "-w", str(dist), str(REPO)], check=True)
    (wheel,) = dist.glob("tlsgate-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "scanner/_data/rules/tls13-only.yaml" in names
    assert "scanner/_data/reports/templates/report.html.j2" in names
    assert "scanner/_data/reports/schema/report.schema.json" in names
    assert "scanner/data/iana-tls-cipher-suites.csv" in names
    assert "scanner/data/iana-tls-supported-groups.csv" in names

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)],
        check=True,
    )
    # The fresh venv takes tlsgate's dependencies from this environment's site-packages, appended after its
    # own: the scanner package itself can only come from the wheel (a .pth in a plain path entry is inert,
    # so this environment's editable install does not leak in).
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (Path(site) / "deps.pth").write_text("\n".join(sorted(deps)) + "\n")

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    where = subprocess.run(
        [str(python), "-c", "import scanner, json; print(json.dumps(scanner.__file__))"],
        cwd=outside, check=True, capture_output=True, text=True,
    )  # fmt: skip
    assert json.loads(where.stdout).startswith(str(venv))
    run = subprocess.run(
        [str(venv / "bin" / "tlsgate"), "rules", "list"],
        cwd=outside,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert any(line.split()[0] == "tls13-only" for line in run.stdout.splitlines())
    run = subprocess.run([str(venv / "bin" / "tlsgate"), "demo", "--out", str(outside / "demo")],
                         cwd=outside, capture_output=True, text=True, check=False)  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert (outside / "demo" / "report.html").read_text().startswith("<!DOCTYPE html>")
