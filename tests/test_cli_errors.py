"""Every bad input exits non-zero with one clear line on stderr and leaves nothing half-written."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import VIDEOS, needs_videos, without_root_powers
from media import write_empty_video, write_video

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "pose_core", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def assert_clean_failure(p, fragment, out: Path):
    assert p.returncode == 2, p.stderr
    lines = [ln for ln in p.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, p.stderr  # one line, no traceback, no native log noise
    fragments = (fragment,) if isinstance(fragment, str) else fragment
    assert lines[0].startswith("error: ") and any(f in lines[0] for f in fragments), lines[0]
    assert not out.exists() or not any(out.iterdir()), list(out.iterdir())


@pytest.fixture
def nobody(tmp_path):
    return write_video(tmp_path / "nobody.mp4")


def test_missing_file(tmp_path):
    assert_clean_failure(run_cli("analyze", tmp_path / "nope.mp4", "-e", "squat", "--out", tmp_path / "o"),
                         "file not found", tmp_path / "o")


def test_not_a_video(tmp_path):
    f = tmp_path / "notes.mp4"
    f.write_text("this is not a video\n" * 100)
    assert_clean_failure(run_cli("analyze", f, "-e", "squat", "--out", tmp_path / "o"), "not a video", tmp_path / "o")


def test_video_without_frames(tmp_path):
    f = write_empty_video(tmp_path / "empty.mp4")
    assert_clean_failure(run_cli("analyze", f, "-e", "squat", "--out", tmp_path / "o"), ("no frames", "no video stream"), tmp_path / "o")


def test_video_with_nobody(tmp_path, nobody):
    assert_clean_failure(run_cli("analyze", nobody, "-e", "squat", "--out", tmp_path / "o"), "no person", tmp_path / "o")


def test_unknown_exercise(tmp_path, nobody):
    assert_clean_failure(run_cli("analyze", nobody, "-e", "deadlift", "--out", tmp_path / "o"),
                         "unknown exercise 'deadlift'", tmp_path / "o")


def test_missing_exercise(tmp_path, nobody):
    assert_clean_failure(run_cli("analyze", nobody, "--out", tmp_path / "o"), "--exercise is required", tmp_path / "o")


def test_invalid_rules_file(tmp_path, nobody):
    rules = tmp_path / "rules.toml"
    rules.write_text("[exercises.squat.counting]\nmin_amplitude = 'high'\n")
    assert_clean_failure(run_cli("analyze", nobody, "-e", "squat", "--rules", rules, "--out", tmp_path / "o"),
                         "min_amplitude", tmp_path / "o")


def test_failure_keeps_an_earlier_result_intact(tmp_path, nobody):
    out = tmp_path / "o"
    out.mkdir()
    (out / "summary.json").write_text('{"reps": 7}')
    p = run_cli("analyze", nobody, "-e", "squat", "--out", out)
    assert p.returncode == 2
    assert json.loads((out / "summary.json").read_text()) == {"reps": 7}
    assert [x.name for x in out.iterdir()] == ["summary.json"]  # no temporary leftovers


@needs_videos
def test_truncated_video_keeps_what_decodes(tmp_path):
    src = VIDEOS / "squat_1.mp4"
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    p = run_cli("analyze", cut, "-e", "squat", "--out", tmp_path / "o", "--quiet")
    # A half file either analyses the part that decodes, or fails cleanly: never a traceback.
    if p.returncode == 0:
        summary = json.loads(p.stdout.strip().splitlines()[-1])
        assert 0 < summary["frames"] < 322
        # ... and says so (issue 12, item 10): in the summary's notes and on stderr.
        (note,) = [n for n in summary["notes"] if "ends early" in n]
        assert note.startswith(f"The file ends early at {summary['duration_s']:.1f} s: analysed what could be read")
        assert "note: The file ends early at" in p.stderr
    else:
        assert_clean_failure(p, "", tmp_path / "o")


@needs_videos
def test_user_rules_change_the_result(tmp_path):
    clip = tmp_path / "squat.mp4"
    shutil.copy(VIDEOS / "squat_1.mp4", clip)
    strict = tmp_path / "strict.toml"
    strict.write_text("[exercises.squat]\nrep_checks = [{ angle = 'knee', stat = 'min', max = 30, message = 'Deeper!' }]\n")
    p = run_cli("analyze", clip, "-e", "squat", "--rules", strict, "--out", tmp_path / "o", "--quiet", "--no-video")
    assert p.returncode == 0, p.stderr
    summary = json.loads(p.stdout.strip().splitlines()[-1])
    assert summary["reps"] == 3 and summary["reps_incorrect"] == 3
    reps = json.loads((tmp_path / "o" / "reps.json").read_text())["reps"]
    assert all(r["reasons"] == ["Deeper!"] for r in reps)


# ------------------------------------------------------------------------------- issue 12, items 9, 10

def test_a_1x1_video_is_too_small(tmp_path):
    f = write_video(tmp_path / "tiny.mp4", frames=5, size=(1, 1), codec="mpeg4")  # (x264 cannot write 1x1)
    assert_clean_failure(run_cli("analyze", f, "-e", "squat", "--out", tmp_path / "o"), "video too small (1x1",
                         tmp_path / "o")


@pytest.mark.parametrize("ext", ["png", "jpg"])
def test_a_still_image_is_not_a_video(tmp_path, ext):
    import cv2
    import numpy as np

    f = tmp_path / f"photo.{ext}"
    cv2.imwrite(str(f), np.full((240, 320, 3), 90, np.uint8))
    assert_clean_failure(run_cli("analyze", f, "-e", "squat", "--out", tmp_path / "o"), "not a video: a still image",
                         tmp_path / "o")
    renamed = tmp_path / "photo.mp4"  # the content decides, not the name
    shutil.copy(f, renamed)
    assert_clean_failure(run_cli("analyze", renamed, "-e", "squat", "--out", tmp_path / "o"), "not a video",
                         tmp_path / "o")


def test_out_pointing_at_a_file_is_refused_before_the_model_starts(tmp_path, nobody):
    import time

    taken = tmp_path / "result.txt"
    taken.write_text("mine")
    for out in (taken, taken / "sub"):
        t0 = time.monotonic()
        p = run_cli("analyze", nobody, "-e", "squat", "--out", out)
        assert p.returncode == 2 and p.stderr.strip() == f"error: --out {out}: {taken} exists and is not a folder"
        assert time.monotonic() - t0 < 20
    assert taken.read_text() == "mine"


# --------------------------------------------------------------------------- interruptions and the out folder

def _start(*args):
    """The CLI in its own process group, as a terminal runs it (Ctrl-C goes to the whole group)."""
    import os

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-m", "pose_core", *map(str, args)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def _wait_for_frames(out: Path, timeout_s: float = 120.0) -> None:
    import time

    end = time.monotonic() + timeout_s
    while time.monotonic() < end:  # the analysis is under way once its staged frames.csv has grown
        if any(p.name.startswith(".frames.csv.tmp-") and p.stat().st_size > 50_000 for p in out.glob(".*")):
            return
        time.sleep(0.2)
    raise AssertionError("the analysis did not start")


@needs_videos
@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_ctrl_c_or_sigterm_mid_analysis_is_an_interrupt_that_leaves_nothing(tmp_path, sig):
    import os
    import signal

    out = tmp_path / "o"
    p = _start("analyze", VIDEOS / "squat_4.mp4", "-e", "squat", "--out", out, "--quiet")
    _wait_for_frames(out)
    os.killpg(p.pid, getattr(signal, sig))  # the whole group, encoder child included
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert err.strip().splitlines()[-1] == "error: interrupted; nothing was written", err
    assert not out.exists()  # the folder this run created is gone, no temp files left


@needs_videos
def test_temp_files_of_a_killed_run_are_swept_and_no_video_leaves_one_consistent_result(tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    stale = out / ".frames.csv.tmp-999999999-1"  # a pid that cannot exist: a run killed with -9
    stale.write_text("half")
    (out / "annotated.mp4").write_bytes(b"an earlier run's video")
    p = run_cli("analyze", VIDEOS / "situp_3.mp4", "-e", "situp", "--out", out, "--quiet", "--no-video")
    assert p.returncode == 0, p.stderr
    assert sorted(x.name for x in out.iterdir()) == ["frames.csv", "reps.json", "summary.json"]


@needs_videos
def test_a_second_analysis_into_a_busy_folder_is_refused(tmp_path):
    import fcntl
    import os

    out = tmp_path / "o"
    out.mkdir()
    (out / "summary.json").write_text("{}")  # what a first, still running, analysis wrote before
    fd = os.open(out, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held like a running analysis holds it
        p = run_cli("analyze", VIDEOS / "situp_3.mp4", "-e", "situp", "--out", out, "--quiet", "--no-video")
    finally:
        os.close(fd)
    assert p.returncode == 2 and "another analysis is writing into this folder" in p.stderr, p.stderr
    assert (out / "summary.json").read_text() == "{}"  # untouched


# ------------------------------------------------------------------------------------------- issue 25

def test_a_rules_file_nested_200000_levels_deep_exits_2_plainly(tmp_path, nobody):
    """Item 7: one plain line and exit 2, not "unexpected failure: RecursionError" and exit 1."""
    rules = tmp_path / "deep.toml"
    rules.write_text("x = " + "[" * 200_000 + "]" * 200_000 + "\n")
    for cmd in (["analyze", nobody, "-e", "squat", "--out", tmp_path / "o"], ["batch", tmp_path, "--out", tmp_path / "o"]):
        p = run_cli(*cmd, "--rules", rules)
        assert_clean_failure(p, "nested too deeply", tmp_path / "o")
        assert "Recursion" not in p.stderr and "unexpected" not in p.stderr


def _assert_output_failure(p, out: Path, *reasons: str):
    lines = [ln for ln in p.stderr.strip().splitlines() if ln.strip()]
    assert p.returncode == 2 and len(lines) == 1, p.stderr[-2000:]
    assert lines[0].startswith("error: ") and "unexpected" not in lines[0] and "Error" not in lines[0], lines[0]
    assert any(r in lines[0] for r in reasons), lines[0]
    assert not os.path.lexists(out) or not any(out.iterdir())  # (lexists: no error for a name too long)


def test_an_unwritable_out_folder_exits_2_with_one_plain_line(tmp_path, nobody):
    """Item 8: a folder the user may not write into (and one inside it that cannot be made)."""
    prefix = without_root_powers()
    if prefix is None:
        pytest.skip("running as root without setpriv: cannot take away root's power to write anywhere")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    for out in (locked, locked / "new" / "deeper"):
        for cmd in (["analyze", nobody, "-e", "squat"], ["batch", tmp_path, "-e", "squat"]):
            p = subprocess.run(prefix + [sys.executable, "-m", "pose_core", *map(str, cmd), "--out", str(out), "-q"],
                               cwd=ROOT, capture_output=True, text=True, timeout=300)
            _assert_output_failure(p, out, "permission denied")
            assert str(out) in p.stderr


def test_a_300_character_folder_name_exits_2_with_one_plain_line(tmp_path, nobody):
    out = tmp_path / ("x" * 300) / "o"
    for cmd in (["analyze", nobody, "-e", "squat"], ["batch", tmp_path, "-e", "squat"]):
        p = run_cli(*cmd, "--out", out, "-q")
        _assert_output_failure(p, out, "name too long")


def _read_only_mount(folder: Path) -> list[str] | None:
    """A command prefix that runs a command with `folder` mounted read-only (a private mount namespace),
    or None where that is not allowed."""
    if shutil.which("unshare") is None:
        return None
    script = f'mount --bind "{folder}" "{folder}" && mount -o remount,bind,ro "{folder}" && exec "$@"'
    probe = subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", "touch", str(folder / "probe")],
                           capture_output=True, text=True)
    if probe.returncode == 0 or "Read-only file system" not in probe.stderr:
        return None
    return ["unshare", "-m", "sh", "-c", script, "sh"]


def test_a_read_only_file_system_exits_2_with_one_plain_line(tmp_path, nobody):
    ro = tmp_path / "ro"
    ro.mkdir()
    (ro / "existing").mkdir()
    prefix = _read_only_mount(ro)
    if prefix is None:
        pytest.skip("cannot mount a read-only folder here (unshare -m not allowed)")
    for out in (ro / "existing", ro / "new"):
        for cmd in (["analyze", nobody, "-e", "squat"], ["batch", tmp_path, "-e", "squat"]):
            p = subprocess.run(prefix + [sys.executable, "-m", "pose_core", *map(str, cmd), "--out", str(out), "-q"],
                               cwd=ROOT, capture_output=True, text=True, timeout=300)
            _assert_output_failure(p, out, "read-only file system")


def test_the_pipeline_names_the_output_folder_it_cannot_write(tmp_path):
    """Behind the command line's early check: whatever OSError writing the analysis folder meets is said as
    one OutputError naming the folder (the dashboard and scripts get the same)."""
    from helpers import FakeEstimator

    from pose_core.core.io import OutputError
    from pose_core.run.pipeline import analyze_video

    video = write_video(tmp_path / "v.mp4")
    out = tmp_path / ("x" * 300) / "o"
    with pytest.raises(OutputError) as e:
        analyze_video(video, "squat", out, estimator=FakeEstimator(), parallel=False)
    assert str(e.value) == f"cannot write to {out}: file name too long"
