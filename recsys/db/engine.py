"""Connections to the data database, SQL files by name, and COPY in and out.

SQL text lives in `sql/`; Python binds values through the driver and quotes
configured identifiers with `psycopg2.sql.Identifier`. Every connection has
`search_path` set to the configured schema, so SQL files use unqualified names.
"""

from __future__ import annotations

import io
import logging
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

import psycopg2
from psycopg2 import sql
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url

from recsys.errors import ConfigurationError, DatabaseUnreachableError, SchemaMissingError

logger = logging.getLogger(__name__)

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"
if not SQL_DIR.is_dir():  # installed as a wheel: SQL files ship inside the package
    SQL_DIR = Path(__file__).resolve().parents[1] / "sql"


# `stage/name`: query files are grouped in folders by the stage or module that runs them
_QUERY_NAME = re.compile(r"[a-z][a-z0-9_]*/[a-z][a-z0-9_]*")


def load_sql(name: str) -> str:
    """The statement of `sql/queries/<stage>/<name>.sql`, e.g. `load_sql("retention/cells_mature")`.

    The file's header (its leading `--` lines) is left out: it is for readers, and it
    names the file's `{placeholders}` and `%(parameters)s`, which `psycopg2.sql` and
    the driver would otherwise fill inside the comment too (a multi-line fragment
    composed in there would end the comment early).

    Raises:
        ValueError: `name` is not of the form `stage/name`.
        FileNotFoundError: there is no such query file.
    """
    if not _QUERY_NAME.fullmatch(name):
        raise ValueError(f"SQL query name {name!r}: expected 'stage/name', e.g. 'retention/cells_mature'")
    lines = (SQL_DIR / "queries" / f"{name}.sql").read_text().splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if not line.startswith("--")), len(lines))
    return "".join(lines[start:])


def describe_url(url: str) -> str:
    """host:port/database of a URL, without user or password, for error messages."""
    parsed = make_url(url)
    host = parsed.host or parsed.query.get("host", "localhost")
    return f"host={host} port={parsed.port or 5432} database={parsed.database}"


def psycopg2_url(url: str) -> str:
    """`url` with psycopg2 as its driver: a plain `postgresql://` URL gets it.

    Every connection here is a psycopg2 one (COPY, `psycopg2.sql` identifiers), and
    SQLAlchemy 2.1 maps a plain `postgresql://` to psycopg 3, which fails on them with
    an error that says nothing of the cause.

    Raises:
        ConfigurationError: the URL names another database or driver.
    """
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        return parsed.set(drivername="postgresql+psycopg2").render_as_string(hide_password=False)
    if parsed.drivername != "postgresql+psycopg2":
        raise ConfigurationError(
            f"RECSYS_DATABASE_URL: the recsys database is reached with psycopg2; use postgresql:// or "
            f"postgresql+psycopg2:// (got {parsed.drivername}://, {describe_url(url)})")
    return url


_engines: dict[tuple[str, str], Engine] = {}


def get_engine(url: str, schema: str) -> Engine:
    """A pooled engine whose connections use `schema` as search path.

    Raises:
        DatabaseUnreachableError: naming host and port, when the server does not answer.
        ConfigurationError: the URL is not a PostgreSQL one that psycopg2 can serve.
    """
    url = psycopg2_url(url)
    key = (url, schema)
    if key not in _engines:
        engine = create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": 10})

        @event.listens_for(engine, "connect")
        def _set_search_path(dbapi_conn, _record):  # noqa: ANN001 - SQLAlchemy callback
            with dbapi_conn.cursor() as cur:
                cur.execute(sql.SQL("SET search_path TO {}, public").format(sql.Identifier(schema)))
            dbapi_conn.commit()

        try:
            with engine.connect():
                pass
        except Exception as exc:  # SQLAlchemy wraps psycopg2's OperationalError
            engine.dispose()
            raise DatabaseUnreachableError(
                f"cannot connect to the recsys database ({describe_url(url)}): "
                f"{str(getattr(exc, 'orig', exc)).strip()}"
            ) from exc
        _engines[key] = engine
    return _engines[key]


def dispose_engines() -> None:
    """Close every pooled connection (tests call this before dropping a database)."""
    for engine in _engines.values():
        engine.dispose()
    _engines.clear()


@contextmanager
def raw_connection(url: str, schema: str) -> Iterator[psycopg2.extensions.connection]:
    """A psycopg2 connection in a transaction: committed on success, rolled back on error."""
    conn = get_engine(url, schema).raw_connection()
    try:
        yield conn.driver_connection
        conn.commit()
    except BaseException:
        if conn.driver_connection.closed:
            # the server went away (restart, network): nothing to roll back; keep the
            # connection error as the one raised (Airflow retries it) and drop the dead connection
            conn.invalidate()
        else:
            conn.rollback()
        raise
    finally:
        conn.close()


def require_tables(cur: psycopg2.extensions.cursor, schema: str, *tables: str) -> None:
    """Raise SchemaMissingError unless each table or view exists in `schema`."""
    for table in tables:
        cur.execute("SELECT to_regclass(%s)", (f"{_quote(schema)}.{_quote(table)}",))
        if cur.fetchone()[0] is None:
            raise SchemaMissingError(
                f"table {schema}.{table} does not exist: run `recsys db upgrade` first"
            )


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def copy_out(cur: psycopg2.extensions.cursor, query: sql.Composable | str, params: dict | None = None,
             into: IO[bytes] | None = None) -> IO[bytes]:
    """Run `COPY (query) TO STDOUT` in CSV into `into` (a new BytesIO by default) and return it, rewound."""
    bound = cur.mogrify(query if isinstance(query, str) else query.as_string(cur), params)
    buf = io.BytesIO() if into is None else into
    cur.copy_expert(b"COPY (" + bound + b") TO STDOUT WITH (FORMAT csv)", buf)
    buf.seek(0)
    return buf


@contextmanager
def copy_out_to_file(cur: psycopg2.extensions.cursor, query: sql.Composable | str, params: dict | None,
                     directory: Path) -> Iterator[IO[bytes]]:
    """`copy_out` into a temporary file in `directory`, rewound, deleted on leaving: a window's CSV
    (about 45 bytes an event) is better on disk than in memory beside what is parsed from it."""
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=directory, prefix=".copy-", suffix=".csv") as spool:
        yield copy_out(cur, query, params, into=spool)


def copy_in(cur: psycopg2.extensions.cursor, table: str, columns: list[str], data: IO) -> None:
    """`COPY table (columns) FROM STDIN` in CSV from a file-like object."""
    statement = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv)").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    cur.copy_expert(statement.as_string(cur), data)
