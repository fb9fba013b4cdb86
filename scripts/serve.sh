#!/usr/bin/env bash
# The Airflow UI on the demo's state (run ./scripts/demo.sh first): the same
# embedded PostgreSQL, metadata database, artifacts and AIRFLOW_HOME.
#
#   ./scripts/serve.sh [start]   scheduler, dag-processor, triggerer and api-server in the
#                                background (LocalExecutor), recsys_nightly unpaused;
#                                prints the URL and the login
#   ./scripts/serve.sh status    what runs
#   ./scripts/serve.sh stop      stops them and the embedded PostgreSQL, saying what it stopped
#
#   RECSYS_UI_PORT      the UI's port on 127.0.0.1 (default 8080)
#   RECSYS_DEMO_STATE   the demo's state directory (default .recsys/); pid files and
#                       logs go to its serve/ folder
source "$(dirname "$0")/_env.sh"
source "$ROOT/scripts/_demo_env.sh"
cd "$ROOT"
PORT="${RECSYS_UI_PORT:-8080}"

case "${1:-start}" in
  start)
    if [ ! -f "$DEMO_ENV_FILE" ]; then
      echo "error: no demo state in $STATE: run ./scripts/demo.sh first (a few minutes), then ./scripts/serve.sh" >&2
      exit 1
    fi
    source "$DEMO_ENV_FILE"
    if [ "$DEMO_DATABASE" = external ] && [ -z "${RECSYS_DATABASE_URL:-}" ]; then
      echo "error: the demo in $STATE ran on a database of your own: set RECSYS_DATABASE_URL to it again" >&2
      exit 1
    fi
    echo "==> serving the demo's state in $STATE ($DEMO_DATA data)"
    demo_databases
    python -m recsys.dev.services start "$SERVE_DIR" --port "$PORT" --unpause recsys_nightly
    echo "  stop         ./scripts/serve.sh stop   (these services and the embedded PostgreSQL)"
    ;;
  stop)
    python -m recsys.dev.services stop "$SERVE_DIR"
    python -m recsys.dev.devdb stop "$PGDATA_DIR"
    ;;
  status)
    rc=0
    python -m recsys.dev.services status "$SERVE_DIR" || rc=$?
    python -m recsys.dev.devdb status "$PGDATA_DIR" || true
    exit "$rc"
    ;;
  *)
    echo "usage: $0 [start|status|stop]" >&2
    exit 2
    ;;
esac
