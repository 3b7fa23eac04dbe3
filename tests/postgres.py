"""A real PostgreSQL server for the store's tests: initdb into a temp dir as an unprivileged user, on a free
loopback port (unix sockets in the temp dir), one database created; stopped at the end of the session.

Debian's ``postgresql`` package (tools/install-test-servers.sh) provides the binaries; without them the tests that
need the server are skipped, saying so.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import free_port

USER = "tlsgate-test"


def _bin_dir() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _user() -> tuple[str, int, int]:
    """The unprivileged user the server runs as (PostgreSQL refuses root): ours, created if missing."""
    if os.getuid() != 0:
        entry = pwd.getpwuid(os.getuid())
        return entry.pw_name, entry.pw_uid, entry.pw_gid
    try:
        entry = pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER], check=True)
        entry = pwd.getpwnam(USER)
    return entry.pw_name, entry.pw_uid, entry.pw_gid


def _as(uid: int, gid: int) -> dict[str, object]:
    if os.getuid() != 0:
        return {}
    return {"user": uid, "group": gid, "extra_groups": []}


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    bindir = _bin_dir()
    if bindir is None:
        pytest.skip("no PostgreSQL binaries (/usr/lib/postgresql/*/bin): run tools/install-test-servers.sh")
    name, uid, gid = _user()
    # Not under pytest's temp dirs: those are root's alone (0700), and the server runs as another user.
    base = Path(tempfile.mkdtemp(prefix="tlsgate-postgres-"))
    data = base / "data"
    os.chown(base, uid, gid)
    base.chmod(0o755)
    run_as = _as(uid, gid)
    env = {"PATH": os.environ.get("PATH", ""), "LC_ALL": "C", "HOME": str(base)}
    subprocess.run(
        [str(bindir / "initdb"), "-D", str(data), "-U", name, "--auth=trust", "-E", "UTF8"],
        check=True, capture_output=True, env=env, **run_as,  # type: ignore[call-overload]
    )  # fmt: skip
    port = free_port()
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {base} -c fsync=off"
    subprocess.run(
        [str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(base / "log"), "-w", "-t", "60", "start"],
        check=True, capture_output=True, env=env, **run_as,  # type: ignore[call-overload]
    )  # fmt: skip
    try:
        subprocess.run(
            [str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", name, "tlsgate"],
            check=True, capture_output=True, env=env, **run_as,  # type: ignore[call-overload]
        )  # fmt: skip
        yield f"postgresql://{name}@127.0.0.1:{port}/tlsgate"
    finally:
        subprocess.run(
            [str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
            check=False, capture_output=True, env=env, **run_as,  # type: ignore[call-overload]
        )  # fmt: skip
        shutil.rmtree(base, ignore_errors=True)


def fresh_database(url: str, name: str) -> str:
    """A new empty database on the session's server (one per test: stores must not share history)."""
    import sqlalchemy  # noqa: PLC0415

    engine = sqlalchemy.create_engine(
        url.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
    )
    with engine.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    engine.dispose()
    return url.rsplit("/", 1)[0] + f"/{name}"
