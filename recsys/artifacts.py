"""Writing artifact files so that readers never see a partial one.

Each write goes to a temporary file unique to the process and call, in the
same directory, and is renamed over the target only once complete: two runs
racing for one date never share a temporary file, and a write that fails (a
full disk) removes its temporary file instead of leaving it behind.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import numpy as np


def save_npz_atomic(path: Path, **arrays: np.ndarray) -> Path:
    """`np.savez` to `path` through a unique temporary file and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp.npz")
    try:
        np.savez(tmp, **arrays)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
