# Sourced by demo.sh, serve.sh and test.sh: a project-local virtualenv with the
# pinned dependencies, (re)installed only when pyproject.toml changed.
# RECSYS_SKIP_INSTALL=1 uses RECSYS_VENV as it is (the tests, which already run in one).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${RECSYS_VENV:-$ROOT/.venv}"
PYTHON_BIN="${PYTHON:-$(command -v python3.11 || command -v python3)}"

if [ "${RECSYS_SKIP_INSTALL:-0}" = 1 ]; then
  [ -x "$VENV/bin/python" ] || { echo "RECSYS_SKIP_INSTALL=1 but $VENV/bin/python does not exist" >&2; exit 1; }
else
  if [ ! -x "$VENV/bin/python" ]; then
    echo "==> creating virtualenv $VENV with $PYTHON_BIN"
    "$PYTHON_BIN" -m venv "$VENV"
  fi
  STAMP="$VENV/.recsys-installed"
  # this file counts too: a venv installed before it named an extra gets that extra
  if [ ! -f "$STAMP" ] || [ "$ROOT/pyproject.toml" -nt "$STAMP" ] || [ "$ROOT/scripts/_env.sh" -nt "$STAMP" ]; then
    echo "==> installing recsys-airflow and its pinned dependencies (first time: a few minutes)"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    # `bench`: implicit, which bench/mf.py and bench/mf_nightly.py measure against
    "$VENV/bin/python" -m pip install --quiet -e "$ROOT[test,bench]"
    touch "$STAMP"
  fi
fi
export PATH="$VENV/bin:$PATH"
# The Spark backend's spark-submit needs a Java (docker-compose.yml's Airflow containers have none)
if [ "${RECSYS_MF_BACKEND:-torch}" = spark ]; then
  "$ROOT/scripts/install-java.sh"
fi
# Idle OpenMP threads that spin instead of sleeping slow torch down several
# times on a shared 2-core machine (measured by bench/mf.py).
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
