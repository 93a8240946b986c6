"""`python -m pose_core batch`: a folder of real clips on a local process pool and on a Dask LocalCluster
(counts per item), resuming, bad items as error rows, a crashing worker, Penn Action folders (synthetic
with frames, and a real subset), and every bad input as one clear error line."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from helpers import VIDEOS, needs_penn, needs_videos
from media import write_video
from penn_fixture import make_penn_dataset, mat_fields, write_mat
from pose_core.run.batch import (BATCH_COLUMNS, BatchInputError, BatchItem, Pool, exercise_from_path,
                                 read_journal, run_batch, run_items)
from pose_core.datasets.penn_export import export_dataset
from pose_core.core.rules import load_rules

ROOT = Path(__file__).resolve().parent.parent
CLIPS = {"bench_press_2": 1, "situp_3": 1, "jumping_jacks_1": 6}  # complete reps (videos.csv)
EXERCISES = sorted(load_rules().exercises)
OTHER_SQUAT_RULES = """
[exercises.squat]
frame_checks = [ { angle = "knee", phase = "peak", max = 95, message = "Go deeper" } ]
"""


def run_cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "pose_core", "batch", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def summary_of(p) -> dict:
    assert p.returncode == 0, p.stderr[-2000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


def table(out: Path) -> dict[str, dict]:
    with open(out / "batch.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows and list(rows[0]) == list(BATCH_COLUMNS)
    return {r["item"]: r for r in rows}


@pytest.fixture(scope="module")
def video_folder(tmp_path_factory) -> Path:
    """Three short real clips (exercise from the file name), a corrupt "video", a video whose name says
    no exercise, and a text file that must be ignored."""
    if not (VIDEOS / "videos.csv").exists():
        pytest.skip(f"shared clips not found at {VIDEOS}")
    d = tmp_path_factory.mktemp("videos")
    for stem in CLIPS:
        shutil.copy(VIDEOS / f"{stem}.mp4", d / f"{stem}.mp4")
    (d / "squat_corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(4000))
    write_video(d / "holiday.mp4", frames=5)
    (d / "notes.txt").write_text("not a video\n")
    return d


@pytest.fixture(scope="module")
def local_run(video_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("batch") / "out"
    return out, run_cli(video_folder, "--out", out, "--workers", 2, "--no-video")


# ------------------------------------------------------------------------------- videos, local pool

@needs_videos
def test_local_pool_counts_and_bad_items(local_run):
    out, p = local_run
    s = summary_of(p)
    assert (s["mode"], s["items"], s["ok"], s["errors"], s["skipped"], s["workers"]) == ("videos", 5, 3, 2, 0, 2)
    assert s["seconds"] > 0
    rows = table(out)
    assert set(rows) == set(CLIPS) | {"squat_corrupt", "holiday"}
    for stem, reps in CLIPS.items():
        r = rows[stem]
        assert (r["status"], r["exercise"], int(r["reps"])) == ("ok", stem.rsplit("_", 1)[0], reps), r
        assert int(r["reps_correct"]) + int(r["reps_incorrect"]) == reps and int(r["frames"]) > 0
        assert r["error"] == "" and float(r["seconds"]) > 0
        assert {f.name for f in (out / stem).iterdir()} == {"frames.csv", "reps.json", "summary.json"}  # --no-video
    assert rows["squat_corrupt"]["status"] == "error" and "corrupt" in rows["squat_corrupt"]["error"]
    assert not (out / "squat_corrupt").exists()
    assert rows["holiday"]["status"] == "error" and "cannot tell the exercise" in rows["holiday"]["error"]
    # the failures are reported on stderr too, one line each
    assert sum(ln.startswith("failed: ") for ln in p.stderr.splitlines()) == 2
    journal = read_journal(out)
    assert set(journal) == set(rows) and journal["situp_3"]["reps"] == 1


@needs_videos
def test_rerun_resumes_and_retries_only_failures(local_run, video_folder):
    out, _ = local_run
    before = {stem: (out / stem / "summary.json").stat().st_mtime_ns for stem in CLIPS}
    lines_before = len((out / "batch.jsonl").read_text().splitlines())
    s = summary_of(run_cli(video_folder, "--out", out, "--workers", 2, "--no-video"))
    assert (s["items"], s["ok"], s["errors"], s["skipped"]) == (5, 3, 2, 3)
    assert {stem: (out / stem / "summary.json").stat().st_mtime_ns for stem in CLIPS} == before
    assert len((out / "batch.jsonl").read_text().splitlines()) == lines_before + 2  # the two bad items again
    assert {k: r["reps"] for k, r in table(out).items() if r["status"] == "ok"} == {k: str(v) for k, v in CLIPS.items()}


# ------------------------------------------------------------------------------------ videos, Dask

@needs_videos
def test_dask_local_cluster_gives_the_same_counts(video_folder, tmp_path):
    from distributed import LocalCluster

    src = tmp_path / "in"
    src.mkdir()
    for stem in ("bench_press_2", "situp_3"):  # the annotated video is written on this path
        shutil.copy(video_folder / f"{stem}.mp4", src / f"{stem}.mp4")
    shutil.copy(video_folder / "jumping_jacks_1.mp4", src / "clip_a.mp4")  # the exercise from the folder name ...
    (src / "Jumping Jacks").mkdir()
    shutil.move(src / "clip_a.mp4", src / "Jumping Jacks" / "clip_a.mp4")
    out = tmp_path / "out"
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        s = summary_of(run_cli(src, "--out", out, "--scheduler", cluster.scheduler_address))
    assert (s["items"], s["ok"], s["errors"], s["workers"]) == (3, 3, 0, 2)
    assert s["executor"].startswith("dask tcp://")
    rows = table(out)
    assert {k: (r["exercise"], int(r["reps"])) for k, r in rows.items()} == {
        "bench_press_2": ("bench_press", 1), "situp_3": ("situp", 1), "clip_a": ("jumping_jacks", 6)}
    assert rows["clip_a"]["source"] == "Jumping Jacks/clip_a.mp4"
    for k in rows:
        assert (out / k / "annotated.mp4").stat().st_size > 1000


# ------------------------------------------------------------------------------ crash of a worker

def _crash_on_boom(item: BatchItem, marker: str) -> dict:
    if item.name == "boom":
        os._exit(3)  # what a segfault in native code looks like to the pool
    return {"item": item.name, "status": "ok", "error": marker}


def test_a_crashing_worker_fails_only_its_item():
    items = [BatchItem(n, "video", n, "squat") for n in ("a", "b", "boom", "c", "d", "e", "f")]
    rows: dict[str, dict] = {}
    ex = Pool(2)
    try:
        run_items(ex, _crash_on_boom, items, ("m",), lambda r: rows.__setitem__(r["item"], r))
    finally:
        ex.close()
    assert set(rows) == {i.name for i in items}
    assert rows["boom"]["status"] == "error" and "crashed" in rows["boom"]["error"]
    assert all(rows[n]["status"] == "ok" for n in "abcdef")


# --------------------------------------------------------------------------------- naming and input

@pytest.mark.parametrize("path, expected", [
    ("squat_3.mp4", "squat"),
    ("pushups-1.MOV", "pushup"),
    ("Bench Press 2.mp4", "bench_press"),
    ("jumping_jacks_1.mp4", "jumping_jacks"),
    ("situp.mp4", "situp"),
    ("pullup/IMG_0001.mp4", "pullup"),
    ("Jump Rope/day 3/a.mp4", "jump_rope"),  # the nearest exercise folder
    ("squat/pushup_1.mp4", "squat"),  # a folder beats the file name
    ("squatting.mp4", None),
    ("holiday.mp4", None),
    ("pushup_day/clip.mp4", None),
])
def test_exercise_from_path(path, expected):
    assert exercise_from_path(path, EXERCISES) == expected


def assert_bad_input(p, fragment: str, out: Path):
    assert p.returncode == 2, p.stderr
    lines = [ln for ln in p.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], p.stderr
    assert not out.exists()


def test_bad_input_is_one_clear_line(tmp_path):
    out = tmp_path / "out"
    assert_bad_input(run_cli(tmp_path / "nowhere", "--out", out), "folder not found", out)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no videos here")
    assert_bad_input(run_cli(empty, "--out", out), "no videos found", out)
    write_video(empty / "squat_1.mp4", frames=3)
    assert_bad_input(run_cli(empty, "--out", out, "--scheduler", "tcp://127.0.0.1:9", "--connect-timeout", 1),
                     "cannot reach the Dask scheduler at tcp://127.0.0.1:9", out)
    assert_bad_input(run_cli(empty, "--out", out, "--exercise", "yoga"), "unknown exercise 'yoga'", out)
    assert_bad_input(run_cli(empty, "--out", out, "--workers", 0), "--workers must be at least 1", out)
    assert_bad_input(run_cli(tmp_path / "empty", "--out", out, "--penn"), "not a Penn Action folder", out)


# ------------------------------------------------------------------------------------- Penn Action

def test_penn_synthetic_with_frames_matches_export_and_resumes(tmp_path):
    root = make_penn_dataset(tmp_path / "penn")
    write_mat(root / "labels" / "0003.mat", {**mat_fields(n_frames=12), "action": "yoga"})  # a bad file
    out = tmp_path / "out"
    report = run_batch(root, out, workers=2, progress=False)
    assert (report.mode, report.items, report.ok, report.errors, report.skipped) == ("penn", 3, 2, 1, 0)
    rows = {r["item"]: r for r in report.rows}
    assert rows["0003"]["status"] == "error" and "unknown action 'yoga'" in rows["0003"]["error"]
    assert rows["0001"]["exercise"] == "squat" and rows["0001"]["frames"] == 40
    assert rows["0001"]["reps"] == 1  # one squat on the ground-truth joints
    assert len(list((out / "images" / "squat").rglob("*.jpg"))) == 80
    # the same folder layout and manifest as the serial exporter
    serial = export_dataset(root, tmp_path / "serial")
    pd.testing.assert_frame_equal(pd.read_parquet(out / "manifest.parquet"), pd.read_parquet(serial.manifest_parquet))
    assert (out / "manifest.csv").read_text() == serial.manifest_csv.read_text()
    assert [p.name for p in sorted((out / "parts").iterdir())] == ["0001.parquet", "0002.parquet"]

    (out / "parts" / "0002.parquet").unlink()  # as if interrupted before this clip finished
    again = run_batch(root, out, workers=1, progress=False)
    assert (again.items, again.ok, again.errors, again.skipped) == (3, 2, 1, 1)
    pd.testing.assert_frame_equal(pd.read_parquet(out / "manifest.parquet"), pd.read_parquet(serial.manifest_parquet))
    with pytest.raises(BatchInputError, match="other rules"):
        run_batch(root, out, rules=load_rules(user_text=OTHER_SQUAT_RULES),
                  progress=False)


@needs_penn
def test_penn_real_subset(penn_dir, tmp_path):
    out = tmp_path / "out"
    s = summary_of(run_cli(penn_dir, "--out", out, "--exercise", "squat", "--split", "train", "--limit", 12,
                           "--workers", 2))
    assert (s["mode"], s["items"], s["ok"], s["errors"]) == ("penn", 12, 12, 0)
    rows = table(out)
    assert all(r["exercise"] == "squat" and r["status"] == "ok" and r["reps"] != "" for r in rows.values())
    manifest = pd.read_parquet(out / "manifest.parquet")
    assert len(manifest) == sum(int(r["frames"]) for r in rows.values())
    assert set(manifest["split"]) == {"train"} and manifest["clip"].nunique() == 12
    assert not (out / "images").exists()  # the shared folder has labels only
    assert summary_of(run_cli(penn_dir, "--out", out, "--exercise", "squat", "--split", "train", "--limit", 12,
                              "-q"))["skipped"] == 12


# ------------------------------------------------------------------------------ issue 12, items 6, 12

def test_a_malformed_scheduler_address_is_one_line_without_a_hang(tmp_path):
    import time

    src = tmp_path / "videos"
    src.mkdir()
    write_video(src / "squat_1.mp4", frames=3)
    out = tmp_path / "out"
    for address, fragment in (("notaurl", "'notaurl' is not a Dask scheduler address"),
                              ("foo://h:1", "unknown address scheme 'foo'")):
        t0 = time.monotonic()
        p = run_cli(src, "--out", out, "--scheduler", address, timeout=60)
        assert time.monotonic() - t0 < 15, "hung (the Dask client's destructor waits 2x the timeout)"
        assert_bad_input(p, fragment, out)
        assert "Traceback" not in p.stderr and "Exception ignored" not in p.stderr


def _children(pid: int) -> dict[int, int]:
    """{child pid: its parent} of every process, from /proc."""
    out = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            out[int(d.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    return out


def _descendants(pid: int) -> set[int]:
    parents = _children(pid)
    found, frontier = set(), {pid}
    while frontier:
        frontier = {c for c, p in parents.items() if p in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc")
def test_kill_9_of_a_batch_leaves_no_worker_behind(tmp_path):
    import signal
    import time

    kids: set[int] = set()
    src = tmp_path / "videos"
    src.mkdir()
    for i in range(6):
        write_video(src / f"squat_{i}.mp4", frames=240)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.Popen([sys.executable, "-m", "pose_core", "batch", str(src), "--out", str(tmp_path / "out"),
                          "--workers", "2", "--no-video"], cwd=ROOT, env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # wait until both workers (and the resource tracker) run
            kids = _descendants(p.pid)
            if len(kids) >= 3:
                break
            time.sleep(0.2)
        assert len(kids) >= 3, f"the pool did not start: {kids}"
        time.sleep(1.0)
        kids = _descendants(p.pid)
        os.kill(p.pid, signal.SIGKILL)
        p.wait(10)
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline and any(_alive(k) for k in kids):
            time.sleep(0.2)
        left = [k for k in kids if _alive(k)]
        assert not left, f"processes left behind after kill -9 of the batch: {left}"
    finally:  # (whatever the outcome, nothing of this test keeps running)
        for k in _descendants(p.pid) | kids | {p.pid}:
            with contextlib.suppress(OSError):
                os.kill(k, signal.SIGKILL)
