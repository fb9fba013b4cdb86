"""Debian's chromium for the browser tests (tests/ui/test_ui_browser.py, tests/e2e/test_serve.py).

Installed by scripts/install-chromium.sh when missing; Playwright drives it, no browser
download. A test skips, naming the reason, only when it is missing and cannot be installed.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# The flags that keep Chromium quiet on a closed network (../shared/notes/airflow-3.3-facts.md);
# Playwright adds --headless and a fresh profile directory itself.
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium() -> str:
    """Path of chromium, installing it first if needed; skips the test when that fails."""
    path = shutil.which("chromium")
    if path is None:
        out = subprocess.run(["bash", str(REPO / "scripts" / "install-chromium.sh")],
                             capture_output=True, text=True, timeout=900)
        path = shutil.which("chromium")
        if path is None:
            pytest.skip(f"chromium is missing and scripts/install-chromium.sh could not install it "
                        f"(exit {out.returncode}): {out.stderr.strip()[-500:]}")
    return path
