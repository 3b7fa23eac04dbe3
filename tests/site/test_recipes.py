"""The deployment recipes: the systemd unit passes ``systemd-analyze verify``, the Dockerfile builds from paths
that exist and that .dockerignore lets in, its health check works against a real ``tlsgate serve``, and the wheel
it installs carries the status site's templates. (A real ``docker build`` needs a daemon and a registry: by hand.)"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from tests.helpers import REPO, free_port
from tests.serve.serving import tlsgate_serve

UNIT = REPO / "deploy" / "systemd" / "tlsgate-watch.service"
DOCKERFILE = REPO / "Dockerfile"


def _verify(unit_text: str, directory: Path) -> subprocess.CompletedProcess[str]:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    unit = directory / UNIT.name
    unit.write_text(unit_text)
    command = [analyze, "verify", "--man=no", str(unit)]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def test_systemd_unit_verifies(tmp_path: Path) -> None:
    """The unit has no unknown key or bad value (its tlsgate binary replaced by one that exists here); a misspelt
    key in a copy is reported, so the check can fail."""
    text = UNIT.read_text()
    runnable = text.replace("/opt/tlsgate/bin/tlsgate", "/usr/bin/true")
    done = _verify(runnable, tmp_path)
    assert done.returncode == 0 and done.stderr.strip() == "", done.stderr
    broken = _verify(runnable.replace("NoNewPrivileges=", "NoNewPrivilegs="), tmp_path)
    assert "NoNewPrivilegs" in broken.stderr

    service = dict(
        line.split("=", 1) for line in text.split("[Service]")[1].split("[Install]")[0].splitlines() if "=" in line
    )
    assert service["NoNewPrivileges"] == "yes" and service["ProtectSystem"] == "strict"
    assert service["DynamicUser"] == "yes" and service["StateDirectory"] == "tlsgate"
    assert service["Restart"] == "on-failure" and service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert "TimeoutStopSec" in service
    command = shlex.split(re.search(r"^ExecStart=(.*?)\n(?!\s)", text, re.S | re.M).group(1).replace("\\\n", " "))
    assert command[1:] == [
        "watch", "--inventory", "/etc/tlsgate/inventory.yaml", "--store", "sqlite:////var/lib/tlsgate/history.db",
        "--listen", "127.0.0.1:9219", "--site", "/var/lib/tlsgate/site",
    ]  # fmt: skip


def _instructions() -> list[tuple[str, str]]:
    """The Dockerfile's instructions (continuation lines joined, comments dropped)."""
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def test_dockerfile_refers_to_what_exists() -> None:
    """Multi-stage, non-root, every COPY source exists and is let in by .dockerignore, the entry point is the
    package's script, the port is the one the unit listens on."""
    instructions = _instructions()
    stages = [arg for op, arg in instructions if op == "FROM"]
    assert len(stages) == 2 and stages[0].endswith(" AS build")
    allowed = {line[1:].rstrip("/") for line in (REPO / ".dockerignore").read_text().splitlines() if line[:1] == "!"}
    assert (REPO / ".dockerignore").read_text().splitlines()[1] == "*"  # an allow-list
    copied = [arg.split() for op, arg in instructions if op == "COPY" and not arg.startswith("--from")]
    sources = [source for args in copied for source in args[:-1]]
    assert set(sources) == allowed
    assert all((REPO / source).exists() for source in sources)
    assert ("USER", "tlsgate") in instructions
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert json.loads(dict(instructions)["ENTRYPOINT"]) == ["tlsgate"] and "tlsgate" in scripts
    assert dict(instructions)["EXPOSE"] == "9219" and "127.0.0.1:9219" in UNIT.read_text()


def test_dockerfile_health_check_against_serve(tmp_path: Path) -> None:
    """The HEALTHCHECK command exits 0 against a real tlsgate serve's /healthz and non-zero (quickly) when nothing
    listens: run here with the port swapped for a free one."""
    check = next(arg for op, arg in _instructions() if op == "HEALTHCHECK")
    command = json.loads(check.split(" CMD ", 1)[1])
    assert command[:2] == ["python", "-c"] and "127.0.0.1:9219/healthz" in command[2]
    with tlsgate_serve(tmp_path) as serving:
        code = command[2].replace("127.0.0.1:9219", f"127.0.0.1:{serving.port}")
        assert subprocess.run([sys.executable, "-c", code], timeout=30, check=False).returncode == 0
    down = command[2].replace("127.0.0.1:9219", f"127.0.0.1:{free_port()}")
    assert subprocess.run([sys.executable, "-c", down], capture_output=True, timeout=30, check=False).returncode != 0


def test_wheel_carries_the_site_templates(tmp_path: Path) -> None:
    """The wheel the Dockerfile installs (built here the same way, without isolation: ~1 s) has the site's
    templates, so an installed tlsgate writes the site."""
    pip = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path)]
    subprocess.run([*pip, str(REPO)], check=True, timeout=120)
    (wheel,) = tmp_path.glob("tlsgate-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    templates = {f"scanner/_data/reports/templates/{p.name}" for p in (REPO / "reports/templates").glob("site_*")}
    assert len(templates) == 3 and templates <= names
    assert "scanner/site.py" in names
