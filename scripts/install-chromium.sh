#!/usr/bin/env bash
# Debian's chromium for the browser tests (tests/ui/test_ui_browser.py, tests/e2e/test_serve.py).
# Idempotent: does nothing when chromium is already on PATH. Needs root (CI runs as root);
# as another user it says what to run and exits non-zero, and the test skips.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "chromium is missing; install it as root: apt-get update && apt-get install -y chromium" >&2
  exit 1
fi
echo "==> installing Debian's chromium (apt-get)"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
command -v chromium >/dev/null
