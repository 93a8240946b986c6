"""Shared test helpers (plain functions and constants; the fixtures are in conftest.py): where the shared
data is, skip markers for tests that need it, and synthetic squat poses with a fake estimator."""

from __future__ import annotations

import csv
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from pose_core.core.landmarks import NUM_LANDMARKS, PoseLandmark
from pose_core.core.types import PoseFrame
from pose_core.store.settings import shared_data_dir

DATA = shared_data_dir()
VIDEOS = DATA / "videos"
PENN = DATA / "penn_action"
FORM = DATA / "form"  # clips with a verdict per rep (rep_verdicts)
RECOGNITION = DATA / "recognition"  # clips labelled with their exercise only (labels.csv), incl. 2 of dips ("none")
SQUAT_CLIP = VIDEOS / "squat_1.mp4"  # 3 complete reps (videos.csv)
SQUAT_CLIP_REPS = 3

needs_videos = pytest.mark.skipif(not (VIDEOS / "videos.csv").exists(),
                                  reason=f"shared clips not found at {VIDEOS} (set GYMPOSE_SHARED_DATA)")
needs_form = pytest.mark.skipif(not (FORM / "videos.csv").exists(),
                                reason=f"form-labelled clips not found at {FORM} (set GYMPOSE_SHARED_DATA)")
needs_recognition = pytest.mark.skipif(not (RECOGNITION / "labels.csv").exists(),
                                       reason=f"recognition clips not found at {RECOGNITION} (set GYMPOSE_SHARED_DATA)")
needs_penn = pytest.mark.skipif(not (PENN / "labels").is_dir(),
                                reason=f"Penn Action labels not found at {PENN} (set GYMPOSE_SHARED_DATA)")


def without_root_powers() -> list[str] | None:
    """A command prefix that runs a command without root's power to write anywhere (root ignores file and
    folder permissions): as root, its capabilities CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH dropped
    (setpriv); as another user, nothing to do. None where that is not possible."""
    import os

    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        return None
    drop = "-dac_override,-dac_read_search"
    return ["setpriv", f"--inh-caps={drop}", f"--bounding-set={drop}"]


def process_gone(pid: int) -> bool:
    """Exited (a zombie waiting for its parent counts: it runs nothing and holds nothing). Linux /proc."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError):
        return True


def process_killed(pid: int) -> bool:
    """Gone, or killed: SIGKILL delivered (it runs none of its own code any more; the kernel tears it down as
    soon as the scheduler gives it the CPU, which at the lowest priority on a saturated machine takes a while)."""
    import signal

    try:
        status = Path(f"/proc/{pid}/status").read_text().splitlines()
    except (FileNotFoundError, ProcessLookupError):
        return True
    fields = dict(line.split(":", 1) for line in status if ":" in line)
    pending = int(fields.get("SigPnd", "0").strip(), 16) | int(fields.get("ShdPnd", "0").strip(), 16)
    return process_gone(pid) or bool(pending & (1 << (signal.SIGKILL - 1)))


def video_rows() -> list[dict]:
    if not (VIDEOS / "videos.csv").exists():
        return []
    with open(VIDEOS / "videos.csv", newline="") as f:
        return list(csv.DictReader(f))


def install_analysis(src: Path, home: Path) -> Path:
    """Copy an analysis folder into a workspace's analyses dir."""
    dst = home / "analyses" / src.name
    shutil.copytree(src, dst)
    return dst


# ---------------------------------------------------------------------------- synthetic squat poses

def squat_pose(knee_deg: float, size: tuple[int, int] = (640, 480), t: float = 0.0) -> PoseFrame:
    """A side-on stick figure whose knees are bent to knee_deg (hips above knees, torso upright)."""
    w, h = size
    px = np.zeros((NUM_LANDMARKS, 2))
    px[:] = (w / 2, h / 4)  # face and other points: near the head
    knee = np.array([w / 2, 0.65 * h])
    thigh = 0.18 * h
    hip = knee + thigh * np.array([0.0, -1.0])
    theta = math.radians(knee_deg)
    ankle = knee + thigh * np.array([math.sin(theta), -math.cos(theta)])
    shoulder = hip + np.array([0.0, -0.25 * h])
    for side in ("LEFT", "RIGHT"):
        px[PoseLandmark[f"{side}_HIP"]] = hip
        px[PoseLandmark[f"{side}_KNEE"]] = knee
        px[PoseLandmark[f"{side}_ANKLE"]] = ankle
        px[PoseLandmark[f"{side}_HEEL"]] = ankle + (5, 0)
        px[PoseLandmark[f"{side}_FOOT_INDEX"]] = ankle + (20, 0)
        px[PoseLandmark[f"{side}_SHOULDER"]] = shoulder
        px[PoseLandmark[f"{side}_ELBOW"]] = shoulder + (10, 60)
        px[PoseLandmark[f"{side}_WRIST"]] = shoulder + (20, 110)
    return PoseFrame.from_pixels(px, np.ones(NUM_LANDMARKS), size, t)


def squat_knee_schedule(t: float, reps: int = 3, rep_s: float = 2.0, lead_s: float = 1.0, low: float = 70.0) -> float:
    """Knee angle at time t: standing (175) for lead_s, then `reps` smooth squats down to `low`."""
    x = t - lead_s
    if x < 0 or x > reps * rep_s:
        return 175.0
    phase = (x % rep_s) / rep_s
    return 175.0 - (175.0 - low) * 0.5 * (1 - math.cos(2 * math.pi * phase))


class FakeEstimator:
    """Stands in for MediaPipe: the pose follows squat_knee_schedule(time since the first frame)."""

    def __init__(self, **schedule_kw):
        self.calls = 0
        self.kw = schedule_kw
        self.closed = False
        self.t0 = None
        self.last_t = 0.0

    def process(self, rgb: np.ndarray, t: float):
        from pose_core.media.estimator import check_image

        check_image(rgb)  # same input contract as the real estimator
        self.calls += 1
        if self.t0 is None or t < self.last_t - 0.5:  # first frame, or the stream clock restarted
            self.t0 = t
        self.last_t = t
        h, w = rgb.shape[:2]
        return squat_pose(squat_knee_schedule(t - self.t0, **self.kw), (w, h), t)

    def close(self) -> None:
        self.closed = True


def run_evaluate(folder: Path, *flags: str) -> dict:
    """`python -m pose_core evaluate FOLDER --json` (both cores), parsed; fails the test on a non-zero exit."""
    import json
    import subprocess
    import sys

    p = subprocess.run([sys.executable, "-m", "pose_core", "evaluate", str(folder), "--json", "--quiet", *flags],
                       cwd=Path(__file__).resolve().parent.parent, capture_output=True, text=True, timeout=2400)
    assert p.returncode == 0, p.stderr[-2000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------- dashboard jobs

def wait_for_job(at, timeout_s: float = 180.0, video: bool = False):
    """AppTest: the Analyze page runs the analysis as a background job (pose_core.run.jobs) and polls it;
    wait until this session's job has finished (with video=True: and its annotated video, drawn after the
    result, is drawn or could not be), then run the page once more (it then shows the result)."""
    import time

    from dashboard import keys
    from pose_core.run.jobs import JobError, read_status
    from pose_core.store.settings import load_settings

    job = at.session_state[keys.ANALYZE_JOB] if keys.ANALYZE_JOB in at.session_state else None
    if not job:  # nothing was started (e.g. refused before a job was made): the page as it is
        return at
    end = time.monotonic() + timeout_s
    while job and time.monotonic() < end:
        try:
            s = read_status(load_settings().jobs_dir, job)
            if s.final and (not video or s.state != "done" or s.stage in ("drawn", "not_drawn")):
                break
        except JobError:
            break
        time.sleep(0.2)
    return at.run(timeout=timeout_s)
