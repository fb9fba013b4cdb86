"""The SQL files: every query has a header that matches its body, and is loaded by name.

House style: SQL lives in `sql/queries/<stage>/<name>.sql`, one purpose per file,
loaded with `recsys.db.engine.load_sql("stage/name")`. A header of `--` lines
gives the grain, the parameters (each `%(name)s` bound by the driver and each
`{name}` identifier filled with `psycopg2.sql`) and the Python that reads or runs
the file. No database needed.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
QUERIES = REPO / "sql" / "queries"
MIGRATIONS = REPO / "sql" / "migrations"
# where the queries are run from (tests may load them too, but do not count as a use)
CODE_DIRS = ("recsys", "bench", "plugins", "dags")

QUERY_FILES = sorted(QUERIES.rglob("*.sql"))
PARAM = re.compile(r"%\((\w+)\)s")
PLACEHOLDER = re.compile(r"(?<!\{)\{([A-Za-z_]\w*)\}(?!\})")
DOTTED = re.compile(r"\brecsys(?:\.\w+)+")


def _name(path: Path) -> str:
    return path.relative_to(QUERIES).with_suffix("").as_posix()


def _split(path: Path) -> tuple[str, str]:
    """(header, body): the leading `--` lines, and the rest."""
    lines = path.read_text().splitlines()
    n = next((i for i, line in enumerate(lines) if not line.startswith("--")), len(lines))
    return "\n".join(lines[:n]), "\n".join(lines[n:])


def _load_sql_calls(dirs: tuple[str, ...]) -> list[tuple[Path, int, str | None]]:
    """(file, line, name) of every `load_sql(...)` call; name None when not a string literal."""
    calls = []
    for directory in dirs:
        for py in sorted((REPO / directory).rglob("*.py")):
            for node in ast.walk(ast.parse(py.read_text(), str(py))):
                if not isinstance(node, ast.Call):
                    continue
                func = node.func
                if (func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)) != "load_sql":
                    continue
                arg = node.args[0] if node.args else None
                literal = isinstance(arg, ast.Constant) and isinstance(arg.value, str)
                calls.append((py.relative_to(REPO), node.lineno, arg.value if literal else None))
    return calls


CODE_CALLS = _load_sql_calls(CODE_DIRS)


def _resolve(dotted: str) -> object | None:
    """The object a dotted name `recsys.module.function` names, or None."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr, None)
            if obj is None:
                return None
        return obj
    return None


def test_there_are_query_files_in_stage_folders():
    assert len(QUERY_FILES) > 50
    flat = [p.name for p in QUERIES.glob("*.sql")]
    assert not flat, f"query files belong in sql/queries/<stage>/: {flat}"
    assert all(len(p.relative_to(QUERIES).parts) == 2 for p in QUERY_FILES)


@pytest.mark.parametrize("path", QUERY_FILES, ids=_name)
def test_query_file_has_a_header_with_grain_parameters_and_reader(path):
    header, body = _split(path)
    assert header, f"{_name(path)}.sql must start with a header of `--` comment lines"
    assert body.strip(), f"{_name(path)}.sql has no statement"
    assert re.search(r"\bgrain\b", header, re.I), f"{_name(path)}.sql: the header must state the grain"
    assert re.search(r"\bparameters?\b", header, re.I), (
        f"{_name(path)}.sql: the header must list the parameters (or say there are none)")
    assert re.search(r"\b(read|run) by\b", header, re.I), (
        f"{_name(path)}.sql: the header must say what reads or runs it ('Read by:' / 'Run by:')")


@pytest.mark.parametrize("path", QUERY_FILES, ids=_name)
def test_every_parameter_and_placeholder_of_the_body_is_in_the_header(path):
    header, body = _split(path)
    for param in sorted(set(PARAM.findall(body))):
        assert f"%({param})s" in header, f"{_name(path)}.sql: %({param})s is not named in the header"
    for placeholder in sorted(set(PLACEHOLDER.findall(body))):
        assert f"{{{placeholder}}}" in header, f"{_name(path)}.sql: {{{placeholder}}} is not named in the header"
    # psycopg2 fills %(name)s in comments too: one the body does not use may not be passed
    for param in sorted(set(PARAM.findall(header)) - set(PARAM.findall(body))):
        pytest.fail(f"{_name(path)}.sql: the header names %({param})s, which the body does not use")
    if re.search(r"\bno parameters\b", header, re.I):
        assert not PARAM.search(body), f"{_name(path)}.sql: says 'no parameters' but binds some"


@pytest.mark.parametrize("path", QUERY_FILES, ids=_name)
def test_percent_and_braces_are_only_parameters_and_placeholders(path):
    """psycopg2 reads every `%` of a query run with parameters (comments included), and
    `psycopg2.sql.SQL.format` every brace of a file with placeholders."""
    text = path.read_text()
    stray = PARAM.sub("", text)
    assert "%" not in stray, f"{_name(path)}.sql: a `%` that is not a %(name)s parameter (write 'percent')"
    if PLACEHOLDER.search(text):
        rest = PLACEHOLDER.sub("", text)
        assert "{" not in rest and "}" not in rest, (
            f"{_name(path)}.sql: braces other than {{placeholders}} in a file filled by psycopg2.sql")


@pytest.mark.parametrize("path", QUERY_FILES, ids=_name)
def test_header_names_the_python_that_loads_the_file(path):
    """At least one `recsys....` function the header names exists and loads this file by name."""
    header, _ = _split(path)
    name = _name(path)
    named = DOTTED.findall(header)
    loaders = [call for call in CODE_CALLS if call[2] == name]
    assert named or not any(str(call[0]).startswith("recsys") for call in loaders), (
        f"{name}.sql: its header names no recsys function (loaded from {sorted({str(c[0]) for c in loaders})})")
    sources = []
    for dotted in named:
        obj = _resolve(dotted)
        if inspect.isfunction(obj):
            sources.append(inspect.getsource(obj))
    if named:
        assert any(f'load_sql("{name}")' in source for source in sources), (
            f"{name}.sql: none of {named} loads it (load_sql(\"{name}\"))")


@pytest.mark.parametrize("path", QUERY_FILES, ids=_name)
def test_every_query_file_is_loaded_by_some_code(path):
    assert any(call[2] == _name(path) for call in CODE_CALLS), (
        f"{_name(path)}.sql: no load_sql(\"{_name(path)}\") in {', '.join(CODE_DIRS)}: unused, delete it")


def test_every_load_sql_call_names_an_existing_file():
    calls = CODE_CALLS + _load_sql_calls(("tests",))
    assert calls
    for py, line, name in calls:
        if py.parts[0] == "tests" and (name is None or py.name == Path(__file__).name):
            continue  # a test's wrapper passing a name through; this file's deliberate bad names
        assert name is not None, f"{py}:{line}: load_sql needs a literal 'stage/name', so the file can be found"
        assert (QUERIES / f"{name}.sql").is_file(), f"{py}:{line}: load_sql({name!r}): no sql/queries/{name}.sql"


@pytest.mark.parametrize("path", sorted(MIGRATIONS.glob("*.sql")), ids=lambda p: p.name)
def test_migration_starts_with_a_header(path):
    first = path.read_text().splitlines()[0]
    assert first.startswith("-- ") and len(first) > 10, f"{path.name} must start with a `--` header line"


def test_load_sql_returns_the_statement_without_its_header():
    from recsys.db.engine import load_sql

    for path in QUERY_FILES:
        _, body = _split(path)
        assert load_sql(_name(path)).strip() == body.strip()
    with pytest.raises(ValueError, match="stage/name"):
        load_sql("serving_top_k")  # the flat names of before the stage folders
    with pytest.raises(ValueError, match="stage/name"):
        load_sql("../migrations/0001_core_tables")
