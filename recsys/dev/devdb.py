"""A PostgreSQL to develop, demo and test against when none is configured.

`RECSYS_DATABASE_URL` wins when set. Otherwise the demo and the tests use the
server on 127.0.0.1:5432 when one answers, or start an embedded one (pgserver,
which bundles PostgreSQL binaries and runs as a dedicated user when started by
root) kept under a project-local data directory.

    python -m recsys.dev.devdb start [--embedded] .recsys/pgdata   # prints a SQLAlchemy URL
    python -m recsys.dev.devdb create-db URL NAME      # prints the URL of a new database
    python -m recsys.dev.devdb stop .recsys/pgdata     # stops the embedded server there, if it runs
    python -m recsys.dev.devdb status .recsys/pgdata   # says whether it runs (exit 0) or not (exit 3)
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from pathlib import Path

import psycopg2
from psycopg2 import sql
from sqlalchemy.engine import make_url

logger = logging.getLogger(__name__)

LOCAL_ADMIN_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"


def _dsn(url: str) -> str:
    """libpq DSN of a SQLAlchemy URL (psycopg2 does not take the +driver form)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def reachable(url: str, timeout_s: int = 3) -> bool:
    """True when a PostgreSQL server answers at `url`."""
    try:
        psycopg2.connect(_dsn(url), connect_timeout=timeout_s).close()
        return True
    except psycopg2.OperationalError:
        return False


def start_embedded(data_dir: Path, keep_running: bool = True) -> str:
    """Start (or reuse) an embedded PostgreSQL under `data_dir`; returns its admin URL.

    With `keep_running` the server outlives this process, so later commands
    (the Airflow tasks of the demo) can reach it; otherwise it stops at exit.
    """
    import pgserver  # imported here: only this path needs the bundled binaries

    data_dir = Path(data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(str(data_dir), cleanup_mode=None if keep_running else "stop")
    uri = server.get_uri()  # postgresql://postgres:@/postgres?host=DIR
    return uri.replace("postgresql://", "postgresql+psycopg2://", 1)


def embedded_pid(data_dir: Path) -> int | None:
    """Pid of the embedded server running on `data_dir`, or None when none runs there.

    Read from PostgreSQL's own `postmaster.pid`; a stale file (the server died, the pid
    was reused) counts as not running.
    """
    pid_file = Path(data_dir) / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().split("\n", 1)[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return None
    return pid if b"postgres" in cmdline else None


def stop_embedded(data_dir: Path, timeout_s: float = 60.0) -> int | None:
    """Stop the embedded server on `data_dir`; returns the pid it stopped, None when none ran.

    SIGINT is PostgreSQL's fast shutdown (sessions are rolled back, the data is
    checkpointed); a server still up after `timeout_s` gets SIGQUIT (immediate shutdown,
    recovered at the next start).
    """
    pid = embedded_pid(data_dir)
    if pid is None:
        return None
    for sig, wait_s in ((signal.SIGINT, timeout_s), (signal.SIGQUIT, 10.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return pid
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if embedded_pid(data_dir) != pid:
                return pid
            time.sleep(0.2)
        logger.warning("PostgreSQL %d on %s did not stop after signal %s", pid, data_dir, sig.name)
    raise RuntimeError(f"the embedded PostgreSQL {pid} on {data_dir} did not stop")


def admin_url(data_dir: Path) -> str:
    """The local server's admin URL when reachable, else an embedded server's."""
    if reachable(LOCAL_ADMIN_URL):
        return LOCAL_ADMIN_URL
    logger.info("no PostgreSQL on 127.0.0.1:5432; starting an embedded one in %s", data_dir)
    return start_embedded(data_dir)


def database_url(admin: str, name: str) -> str:
    """URL of database `name` on the server `admin` points at."""
    return make_url(admin).set(database=name).render_as_string(hide_password=False)


def create_database(admin: str, name: str, exist_ok: bool = True) -> str:
    """Create database `name` (if missing with `exist_ok`); returns its URL."""
    conn = psycopg2.connect(_dsn(admin))
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cur.fetchone() is None:
                cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            elif not exist_ok:
                raise RuntimeError(f"database {name} already exists")
    finally:
        conn.close()
    return database_url(admin, name)


def drop_database(admin: str, name: str) -> None:
    """Drop database `name`, disconnecting its sessions first."""
    conn = psycopg2.connect(_dsn(admin))
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m recsys.dev.devdb", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start", help="print an admin URL: local server or embedded one")
    start.add_argument("data_dir", type=Path)
    start.add_argument("--embedded", action="store_true", help="always use the embedded server")
    create = sub.add_parser("create-db", help="create a database if missing and print its URL")
    create.add_argument("admin_url")
    create.add_argument("name")
    for name, text in (("stop", "stop the embedded server on DATA_DIR if it runs"),
                       ("status", "exit 0 when an embedded server runs on DATA_DIR, else 3")):
        sub.add_parser(name, help=text).add_argument("data_dir", type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    # pgserver logs every command it runs and its whole output at INFO; its errors still show
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    if args.command == "start":
        print(start_embedded(args.data_dir) if args.embedded else admin_url(args.data_dir))
    elif args.command == "create-db":
        print(create_database(args.admin_url, args.name))
    elif args.command == "stop":
        pid = stop_embedded(args.data_dir)
        print(f"stopped the embedded PostgreSQL (pid {pid}) on {args.data_dir}" if pid is not None
              else f"no embedded PostgreSQL running on {args.data_dir}")
    else:
        pid = embedded_pid(args.data_dir)
        print(f"embedded PostgreSQL: running (pid {pid}) on {args.data_dir}" if pid is not None
              else f"embedded PostgreSQL: not running on {args.data_dir}")
        return 0 if pid is not None else 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
