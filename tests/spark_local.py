"""A local Spark for the Spark backend's tests: spark-submit from this venv's pyspark and a Java.

Java is installed by scripts/install-java.sh when missing; a test skips, naming the reason,
only when it is missing and cannot be installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def use_local_spark(monkeypatch: pytest.MonkeyPatch) -> None:
    """Put this venv's spark-submit first on PATH and make sure a Java is there."""
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    if shutil.which("spark-submit") is None:
        pytest.fail("pyspark (the `test` extra) is not installed in this venv: no spark-submit")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        out = subprocess.run(["bash", str(REPO / "scripts" / "install-java.sh")], capture_output=True, text=True,
                             timeout=900)
        if shutil.which("java") is None:
            pytest.skip(f"Java is missing and scripts/install-java.sh could not install it "
                        f"(exit {out.returncode}): {out.stderr.strip()[-500:]}")
