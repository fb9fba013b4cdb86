#!/usr/bin/env bash
# A headless Java 17 from the OS packages, for the Spark backend (spark-submit and local[N] need
# a JVM): tests/spark, tests/dags/test_nightly_dag_spark.py, and the compose file's Spark profile.
# Idempotent: does nothing when java is on PATH or JAVA_HOME is set. Needs root and apt-get;
# otherwise it says what to run and exits non-zero (the Spark tests then skip, saying so).
set -euo pipefail
if command -v java >/dev/null 2>&1 || [ -n "${JAVA_HOME:-}" ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "Java is missing; install a JRE 17+, e.g. as root: apt-get install -y openjdk-17-jre-headless" >&2
  exit 1
fi
echo "==> installing a headless Java 17 (apt-get openjdk-17-jre-headless)"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openjdk-17-jre-headless procps
command -v java >/dev/null
