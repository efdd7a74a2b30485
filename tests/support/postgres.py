"""A real PostgreSQL server for the tests: initdb + pg_ctl into a temporary directory, on loopback.

One server per test session (port picked free, unix socket in the same directory); each test
that asks gets a fresh database on it. As root, the server runs as an unprivileged user
(`pete-test`, created when missing) because initdb refuses root. Without the Debian package
`postgresql` the fixture skips with the reason — except in CI, where it fails.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

PG_USER = "pete-test"


@dataclass(frozen=True)
class PostgresServer:
    port: int
    admin_url: str
    run: Callable[..., subprocess.CompletedProcess[str]]
    datadir: Path

    def url(self, database: str) -> str:
        return f"postgresql://pete@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')  # pyright: ignore[reportArgumentType]
        return self.url(name)

    def stop(self) -> None:
        self.run("pg_ctl", "-D", str(self.datadir), "stop", "-m", "fast", "-w")

    def start(self) -> None:
        log = self.datadir.parent / "server.log"
        sock = self.datadir.parent / "sock"
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {sock} -c fsync=off -c max_connections=200"
        self.run("pg_ctl", "-D", str(self.datadir), "-l", str(log), "-o", options, "-w", "-t", "30", "start")


def _bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _missing(reason: str) -> None:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"PostgreSQL is required in CI: {reason}")
    pytest.skip(f"{reason}: install the Debian package `postgresql` (apt-get install -y postgresql)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _runner(user: str | None) -> Callable[..., subprocess.CompletedProcess[str]]:
    def run(tool: str, *args: str) -> subprocess.CompletedProcess[str]:
        path = _bin(tool)
        assert path is not None
        cmd = [path, *args] if user is None else ["runuser", "-u", user, "--", path, *args]
        return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=60)

    return run


def _ensure_user() -> str | None:
    if os.geteuid() != 0:
        return None
    if subprocess.run(["id", "-u", PG_USER], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "--system", "--no-create-home", PG_USER], check=True, capture_output=True)
    return PG_USER


def _wait_ready(server: PostgresServer) -> None:
    import psycopg

    for _ in range(600):  # readiness, bounded: each try waits on the server, not on a clock
        try:
            with psycopg.connect(server.admin_url, connect_timeout=2):
                return
        except psycopg.OperationalError:
            subprocess.run([_bin("pg_isready") or "pg_isready", "-h", "127.0.0.1", "-p", str(server.port), "-t", "1"])
    raise RuntimeError("PostgreSQL did not become ready")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server on 127.0.0.1 for the whole session (stopped at the end)."""
    if _bin("initdb") is None or _bin("pg_ctl") is None:
        _missing("initdb / pg_ctl not found")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _missing("psycopg is not installed (uv sync)")
    user = _ensure_user()
    root = Path(tempfile.mkdtemp(prefix="pete-pg-"))
    (root / "sock").mkdir()
    if user is not None:
        shutil.chown(root, user)
        shutil.chown(root / "sock", user)
    run = _runner(user)
    datadir = root / "data"
    run("initdb", "-D", str(datadir), "-U", "pete", "-A", "trust", "--no-sync", "-E", "UTF8")
    port = _free_port()
    server = PostgresServer(port, f"postgresql://pete@127.0.0.1:{port}/postgres", run, datadir)
    server.start()
    try:
        _wait_ready(server)
        yield server
    finally:
        try:
            server.stop()
        finally:
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A fresh, empty database on the session's server."""
    return postgres_server.create_database()


@pytest.fixture(params=["sqlite", "postgres"])
def db_settings(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    """Settings keyword arguments for each engine: SQLite in tmp_path, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return {"data_dir": tmp_path}
    url = request.getfixturevalue("postgres_url")
    return {"data_dir": tmp_path, "database_url": url}
