"""Fixtures shared by all tests (helpers that are not fixtures live in tests/helpers.py), and the marks that
`make check` selects on (`browser`, `slow`; registered in pytest.ini, listed in tests/slow_tests.py), set here so
test files need none."""

from __future__ import annotations

from fnmatch import fnmatch
from pathlib import Path

import pytest

import slow_tests
from helpers import PENN, SQUAT_CLIP, VIDEOS


# ------------------------------------------------------------------ which tests `make check` leaves out

def pytest_collection_modifyitems(config, items):
    """Marks `browser` and `slow` from tests/slow_tests.py (`make check` runs `-m "not browser and not slow"`)."""
    for item in items:
        file, name, fixtures = item.path.name, item.originalname, set(item.fixturenames)
        if (fnmatch(file, "test_browser*.py") or name in slow_tests.BROWSER_TESTS.get(file, ())
                or slow_tests.BROWSER_FIXTURES & fixtures):
            item.add_marker(pytest.mark.browser)
        elif (file in slow_tests.SLOW_FILES or name in slow_tests.SLOW_TESTS.get(file, ())
              or fixtures & (slow_tests.SLOW_FIXTURES["*"] | slow_tests.SLOW_FIXTURES.get(file, set()))):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def videos_dir() -> Path:
    return VIDEOS


@pytest.fixture(scope="session")
def penn_dir() -> Path:
    return PENN


@pytest.fixture
def workspace(tmp_path, monkeypatch) -> Path:
    """An empty GymPose workspace (GYMPOSE_HOME) for one test."""
    home = tmp_path / "gympose"
    monkeypatch.setenv("GYMPOSE_HOME", str(home))
    for var in ("GYMPOSE_HISTORY_DB", "GYMPOSE_RULES", "GYMPOSE_MAX_UPLOAD_MB", "GYMPOSE_ICE_SERVERS",
                "GYMPOSE_ACCESS_PASSWORD"):
        monkeypatch.delenv(var, raising=False)
    # The AppTests run the dashboard's analyses on a thread of the test process, so that a test can patch the
    # pipeline (and no analysis process is left per workspace). The analysis process (the default) is
    # tested in test_jobs.py and by every real-browser test (a real server).
    monkeypatch.setenv("GYMPOSE_ANALYSIS_PROCESS", "off")
    return home


@pytest.fixture(scope="session")
def squat_analysis(tmp_path_factory) -> Path:
    """squat_1.mp4 analysed once per test session (frames.csv, reps.json, summary.json, annotated.mp4)."""
    if not SQUAT_CLIP.exists():
        pytest.skip(f"shared clip not found: {SQUAT_CLIP}")
    from pose_core.run.pipeline import analyze_video

    out = tmp_path_factory.mktemp("analysis") / "20250101-000000_squat_1_squat"
    analyze_video(SQUAT_CLIP, "squat", out_dir=out)
    return out


# ------------------------------------------------------------------ real-browser tests (tests/test_browser*.py)

@pytest.fixture(scope="module")
def server(request, tmp_path_factory):
    """`streamlit run dashboard/app.py` with a fresh workspace, one per test module."""
    from browser_utils import StreamlitServer

    with StreamlitServer(tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1]) / "gympose") as s:
        yield s


@pytest.fixture(scope="module")
def chromium():
    """The system Chromium driven by Playwright, one per test module."""
    from browser_utils import browser

    with browser() as b:
        yield b


@pytest.fixture(scope="session")
def shared_pose_cache(tmp_path_factory) -> Path:
    """A pose cache (pose_core.store.pose_cache) for this test session: the first sweep of the shared clips
    runs MediaPipe and keeps the poses; later sweeps (evaluate --auto, the live path) only count again."""
    return tmp_path_factory.mktemp("pose_cache")


@pytest.fixture(autouse=True)
def _no_draw_grace(monkeypatch):
    """In this process the annotated video is drawn at once after the result (no browser here needs the
    processor first); the dashboard servers the browser tests start keep job_video's real grace."""
    from pose_core.run import job_video

    monkeypatch.setattr(job_video, "DRAW_GRACE_S", 0.0)
