"""One clear line, and exit status 2, when a benchmark lacks an optional package or a data file.

Standard library only, so `bench/mf.py`'s measured subprocesses import nothing extra.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path


def need_module(bench: str, module: str, extra: str) -> None:
    """Exit unless `module` (from the pyproject extra `extra`) can be imported."""
    if importlib.util.find_spec(module) is None:
        print(f"{bench} needs `{module}`, from the `{extra}` extra: .venv/bin/pip install -e '.[{extra}]' "
              "(scripts/_env.sh installs it)", file=sys.stderr)
        raise SystemExit(2)


def need_file(bench: str, path: Path, what: str) -> None:
    """Exit unless the data file `path` exists."""
    if not path.is_file():
        print(f"{bench} needs {what} at {path}, which does not exist", file=sys.stderr)
        raise SystemExit(2)
