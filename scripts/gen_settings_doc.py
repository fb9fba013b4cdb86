#!/usr/bin/env python3
"""Write docs/settings.md from the settings table (`recsys/settings_table.py`).

    python scripts/gen_settings_doc.py           # rewrite docs/settings.md
    python scripts/gen_settings_doc.py --check   # exit 1 when docs/settings.md is stale
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # this checkout's recsys, whichever one the venv installed

from recsys.config import Settings  # noqa: E402
from recsys.settings_table import render_markdown  # noqa: E402

DOC = REPO / "docs" / "settings.md"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when the file is stale")
    args = parser.parse_args()
    text = render_markdown(Settings())
    if args.check:
        if not DOC.is_file() or DOC.read_text() != text:
            print(f"{DOC.relative_to(REPO)} is stale: run python scripts/gen_settings_doc.py", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(text)
    print(f"wrote {DOC.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
