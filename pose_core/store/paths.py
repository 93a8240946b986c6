"""Where things live by default. Everything is overridable by environment variables."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def shared_data_dir() -> Path:
    """The development data folder (`../shared/data` beside the checkout), or $GYMPOSE_SHARED_DATA."""
    return Path(os.environ.get("GYMPOSE_SHARED_DATA", REPO_ROOT.parent / "shared" / "data")).resolve()


def workspace_dir() -> Path:
    """Where the app keeps its state (uploads, analyses, history DB, user rules): $GYMPOSE_HOME or ./.gympose."""
    return Path(os.environ.get("GYMPOSE_HOME", REPO_ROOT / ".gympose")).resolve()
