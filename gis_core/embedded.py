"""The embedded local PostGIS: a private PostgreSQL cluster inside the data folder.

With no ``URBANGIS_DATABASE_URL`` the platform creates (initdb), starts and stops its own
cluster from the installed PostgreSQL binaries. It listens on a Unix socket in its own
folder (and on loopback TCP only when asked), so it cannot collide with a system server.
PostgreSQL refuses to run as root, so when urbangis runs as root the cluster runs as an
unprivileged system user (``URBANGIS_EMBEDDED_OS_USER``, default ``postgres``).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import pwd
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import URL

from gis_core.errors import DatabaseError
from gis_core.settings import Settings

DATABASE = "urbangis"
SUPERUSER = "urbangis"
# Longest Unix socket path the kernel accepts (sun_path is 108 bytes with the NUL).
_MAX_SOCKET_PATH = 107
_FALLBACK_ROOT = Path("/var/lib/urbangis/clusters")

_TUNING = {
    "shared_buffers": "512MB",
    "work_mem": "32MB",
    "maintenance_work_mem": "1GB",
    "effective_cache_size": "8GB",
    "max_wal_size": "4GB",
    "checkpoint_timeout": "15min",
    "random_page_cost": "1.1",
    "jit": "off",
    "max_connections": "200",
}


@dataclass(frozen=True)
class ClusterStatus:
    """What ``urbangis db status`` reports about the embedded cluster."""

    initialised: bool
    running: bool
    root: Path
    socket_dir: Path
    port: int
    bindir: Path | None


def find_bindir() -> Path | None:
    """The newest installed PostgreSQL whose share folder has the PostGIS extension."""
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), reverse=True)
    with_postgis = [
        path.parent
        for path in candidates
        if Path(
            f"/usr/share/postgresql/{path.parent.parent.name}/extension/postgis.control"
        ).exists()
    ]
    if with_postgis:
        return with_postgis[0]
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path else None


class EmbeddedCluster:
    """One private cluster, addressed by the data folder of the settings."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.data_dir = settings.data_dir.expanduser().resolve()
        self.port = settings.embedded_port
        self.os_user = self._os_user()
        self.root = self._choose_root()
        self.pgdata = self.root / "data"
        self.socket_dir = self.root / "run"
        self.log_file = self.root / "postgres.log"
        self.password_file = self.root / "password"

    # -- public API -----------------------------------------------------------------
    def url(self) -> URL:
        """SQLAlchemy URL of the cluster's database, through the private socket."""
        return URL.create(
            "postgresql+psycopg",
            username=SUPERUSER,
            database=DATABASE,
            query={"host": str(self.socket_dir), "port": str(self.port)},
        )

    def status(self) -> ClusterStatus:
        bindir = find_bindir()
        initialised = (self.pgdata / "PG_VERSION").exists()
        running = initialised and bindir is not None and self._pg_ctl_status(bindir) == 0
        return ClusterStatus(initialised, running, self.root, self.socket_dir, self.port, bindir)

    def ensure_running(self) -> None:
        """Create and start the cluster if needed; safe to call from many processes at once."""
        with self._lock():
            bindir = self._require_bindir()
            if not (self.pgdata / "PG_VERSION").exists():
                self._initdb(bindir)
            self._write_config()
            if self._pg_ctl_status(bindir) != 0:
                self._start(bindir)
            self._ensure_database(bindir)

    def stop(self) -> bool:
        """Stop the cluster cleanly (fast shutdown); False when it was not running."""
        with self._lock():
            bindir = self._require_bindir()
            if not (self.pgdata / "PG_VERSION").exists() or self._pg_ctl_status(bindir) != 0:
                return False
            self._run(
                [bindir / "pg_ctl", "-D", self.pgdata, "-m", "fast", "-w", "-t", "60", "stop"]
            )
            return True

    # -- where the cluster lives ------------------------------------------------------
    def _os_user(self) -> pwd.struct_passwd | None:
        """The user to run PostgreSQL as: None means 'this process's own user'."""
        if os.geteuid() != 0:
            return None
        try:
            return pwd.getpwnam(self.settings.embedded_os_user)
        except KeyError:
            raise DatabaseError(
                f"URBANGIS_EMBEDDED_OS_USER: system user {self.settings.embedded_os_user!r} "
                "does not exist; PostgreSQL cannot run as root"
            ) from None

    def _choose_root(self) -> Path:
        """The data folder's ``postgres`` folder, unless the server user cannot reach it.

        When run as root with a data folder below a private home (mode 0700), or with a
        path too long for a Unix socket, the cluster goes to a folder of its own keyed by
        the data folder, so every data folder still gets exactly one cluster.
        """
        preferred = self.data_dir / "postgres"
        socket = preferred / "run" / f".s.PGSQL.{self.port}"
        if len(str(socket)) <= _MAX_SOCKET_PATH and self._reachable(preferred):
            return preferred
        key = hashlib.sha1(str(self.data_dir).encode(), usedforsecurity=False).hexdigest()[:12]
        return _FALLBACK_ROOT / key

    def _reachable(self, path: Path) -> bool:
        """Can the server user enter every existing parent of ``path``?"""
        if self.os_user is None:
            return True
        for parent in reversed(path.parents):  # from / downwards
            if not parent.exists():
                break
            mode = parent.stat().st_mode
            owner = parent.stat().st_uid
            if owner != self.os_user.pw_uid and not mode & 0o001:
                return False
        return True

    # -- operations -----------------------------------------------------------------
    def _require_bindir(self) -> Path:
        bindir = find_bindir()
        if bindir is None:
            raise DatabaseError(
                "no PostgreSQL server binaries with PostGIS found (install the Debian packages "
                "postgresql and postgresql-15-postgis-3, or set URBANGIS_DATABASE_URL)"
            )
        return bindir

    def _initdb(self, bindir: Path) -> None:
        self._make_dirs()
        password = secrets.token_urlsafe(24)
        self.password_file.write_text(password + "\n")
        self._give_to_server_user(self.password_file)
        self.password_file.chmod(0o600)
        self._run(
            [
                bindir / "initdb",
                "-D",
                self.pgdata,
                "-U",
                SUPERUSER,
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                f"--pwfile={self.password_file}",
            ]
        )
        conf = self.pgdata / "postgresql.conf"
        with conf.open("a") as handle:
            handle.write("\ninclude_if_exists = 'urbangis.conf'\n")

    def _make_dirs(self) -> None:
        for folder in (self.root, self.socket_dir):
            folder.mkdir(parents=True, exist_ok=True)
            self._give_to_server_user(folder)
            folder.chmod(0o700)

    def _write_config(self) -> None:
        """Rewrite the managed settings each start, so changed settings take effect."""
        listen = "127.0.0.1" if self.settings.embedded_tcp else ""
        lines = {
            "listen_addresses": f"'{listen}'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.socket_dir}'",
            "unix_socket_permissions": "0700",
            **_TUNING,
        }
        text = "# Managed by urbangis; rewritten at every start.\n" + "".join(
            f"{key} = {value}\n" for key, value in lines.items()
        )
        target = self.pgdata / "urbangis.conf"
        target.write_text(text)
        self._give_to_server_user(target)

    def _start(self, bindir: Path) -> None:
        stale = self.pgdata / "postmaster.pid"
        if stale.exists():
            # pg_ctl status said "not running": the pid file is left over from a crash.
            stale.unlink()
        try:
            self._run(
                [
                    bindir / "pg_ctl",
                    "-D",
                    self.pgdata,
                    "-l",
                    self.log_file,
                    "-w",
                    "-t",
                    "120",
                    "start",
                ]
            )
        except DatabaseError as exc:
            raise DatabaseError(f"{exc}\n{self._log_tail()}") from None

    def _ensure_database(self, bindir: Path) -> None:
        exists = self._run(
            [
                bindir / "psql",
                "-h",
                self.socket_dir,
                "-p",
                str(self.port),
                "-U",
                SUPERUSER,
                "-d",
                "postgres",
                "-tAc",
                f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'",  # noqa: S608 (a constant)
            ]
        )
        if exists.strip() != "1":
            self._run(
                [
                    bindir / "createdb",
                    "-h",
                    self.socket_dir,
                    "-p",
                    str(self.port),
                    "-U",
                    SUPERUSER,
                    DATABASE,
                ]
            )

    def _pg_ctl_status(self, bindir: Path) -> int:
        if not self.pgdata.exists():
            return 4
        result = subprocess.run(
            [str(bindir / "pg_ctl"), "-D", str(self.pgdata), "status"],
            capture_output=True,
            text=True,
            check=False,
            user=self._server_uid(),
            group=self._server_gid(),
        )
        return result.returncode

    def _run(self, command: list[str | Path]) -> str:
        result = subprocess.run(
            [str(part) for part in command],
            capture_output=True,
            text=True,
            check=False,
            cwd="/",
            user=self._server_uid(),
            group=self._server_gid(),
        )
        if result.returncode != 0:
            name = Path(str(command[0])).name
            detail = (result.stderr or result.stdout).strip()
            raise DatabaseError(f"embedded database: {name} failed: {detail}")
        return result.stdout

    def _server_uid(self) -> int | None:
        return None if self.os_user is None else self.os_user.pw_uid

    def _server_gid(self) -> int | None:
        return None if self.os_user is None else self.os_user.pw_gid

    def _give_to_server_user(self, path: Path) -> None:
        if self.os_user is not None:
            os.chown(path, self.os_user.pw_uid, self.os_user.pw_gid)

    def _log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    @contextmanager
    def _lock(self) -> Iterator[None]:
        """Serialise start/stop across processes (gunicorn workers, parallel tests)."""
        self.root.mkdir(parents=True, exist_ok=True)
        self._give_to_server_user(self.root)
        lock_path = self.root.parent / f".{self.root.name}.lock"
        with lock_path.open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
