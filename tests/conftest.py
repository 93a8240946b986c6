import csv
from pathlib import Path

import pytest

from pose_core.store.paths import shared_data_dir

DATA = shared_data_dir()
VIDEOS = DATA / "videos"
PENN = DATA / "penn_action"

needs_videos = pytest.mark.skipif(not (VIDEOS / "videos.csv").exists(),
                                  reason=f"shared clips not found at {VIDEOS} (set GYMPOSE_SHARED_DATA)")
needs_penn = pytest.mark.skipif(not (PENN / "labels").is_dir(),
                                reason=f"Penn Action labels not found at {PENN} (set GYMPOSE_SHARED_DATA)")


def video_rows() -> list[dict]:
    if not (VIDEOS / "videos.csv").exists():
        return []
    with open(VIDEOS / "videos.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="session")
def videos_dir() -> Path:
    return VIDEOS


@pytest.fixture(scope="session")
def penn_dir() -> Path:
    return PENN
