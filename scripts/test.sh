#!/usr/bin/env bash
# The test suite. Uses the PostgreSQL on 127.0.0.1:5432 when it answers (or
# RECSYS_TEST_ADMIN_URL), else starts a throwaway embedded server; every test
# database is created and dropped by the suite. Extra arguments go to pytest.
source "$(dirname "$0")/_env.sh"
cd "$ROOT"
exec python -m pytest "$@"
