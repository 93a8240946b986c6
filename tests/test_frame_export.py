"""Labelled frames from your own videos (pose_core/store/frame_export.py and `gympose analyze --export-frames`):
sampled JPEGs in frames/<label>/, a manifest that mirrors the Penn export, one zip built once."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from helpers import SQUAT_CLIP, FakeEstimator, needs_videos

from pose_core.media.writer import H264Writer
from pose_core.run.pipeline import analyze_video
from pose_core.store.frame_export import (FRAMES_ZIP, FrameExportError, export_labelled_frames, frames_zip, has_frames,
                                          labelled_frames_zip)

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def synthetic(tmp_path) -> tuple[Path, Path]:
    """A 7 s video (10 fps) analysed as squats with the fake estimator: (video, analysis folder)."""
    video = tmp_path / "synthetic.mp4"
    with H264Writer(video, 160, 120, 10) as w:
        for i in range(70):
            w.write(i / 10, np.full((120, 160, 3), 3 * i, np.uint8))
    out = tmp_path / "analysis"
    analyze_video(video, "squat", out_dir=out, estimator=FakeEstimator(), write_video=False)
    return video, out


def test_export_writes_every_nth_frame_by_its_label_with_a_manifest(synthetic):
    video, adir = synthetic
    frames = pd.read_csv(adir / "frames.csv", usecols=["frame", "time_s", "label", "reason", "knee"])
    exp = export_labelled_frames(video, adir, every=7)
    assert exp.images == 10 and sum(exp.label_counts.values()) == 10
    with open(exp.manifest, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["video", "frame", "time_s", "exercise", "view", "phase", "label", "reason", "knee", "image"]
    assert [int(r["frame"]) for r in rows] == list(range(0, 70, 7))
    for r in rows:
        i = int(r["frame"])
        assert r["label"] == frames["label"][i]  # the label of that very frame in frames.csv
        assert r["image"] == f"{r['label']}/{i:06d}.jpg"
        assert float(r["time_s"]) == pytest.approx(frames["time_s"][i], abs=1e-3)
        img = cv2.imread(str(exp.folder / r["image"]))
        assert img is not None and img.shape[:2] == (120, 160)
        assert abs(float(img.mean()) - 3 * i) < 6  # the frame itself, not another one
    assert exp.label_counts == frames["label"][::7].value_counts().to_dict()
    assert sorted(p.name for p in exp.folder.iterdir()) == ["correct", "incorrect", "manifest.csv", "unknown"]


def test_zip_is_built_once_and_rebuilt_after_a_new_export(synthetic):
    video, adir = synthetic
    with pytest.raises(FrameExportError):
        frames_zip(adir)  # nothing exported yet
    export_labelled_frames(video, adir, every=10)
    z = frames_zip(adir)
    with zipfile.ZipFile(z) as f:
        names = f.namelist()
    assert "frames/manifest.csv" in names and sum(n.endswith(".jpg") for n in names) == 7
    stamp = z.stat().st_mtime_ns
    assert frames_zip(adir).stat().st_mtime_ns == stamp  # reused, not rebuilt
    export_labelled_frames(video, adir, every=35)  # a new export replaces the old one (and its zip)
    assert not (adir / FRAMES_ZIP).exists()
    with zipfile.ZipFile(frames_zip(adir)) as f:
        assert sum(n.endswith(".jpg") for n in f.namelist()) == 2


def test_on_demand_zip_exports_first_and_refuses_without_a_video(synthetic, tmp_path):
    video, adir = synthetic
    with pytest.raises(FrameExportError, match="no longer available"):
        labelled_frames_zip(adir, tmp_path / "gone.mp4")
    assert not has_frames(adir)
    z = labelled_frames_zip(adir, video, every=5)
    assert has_frames(adir) and z.name == FRAMES_ZIP
    with zipfile.ZipFile(z) as f:
        assert sum(n.endswith(".jpg") for n in f.namelist()) == 14
    with pytest.raises(FrameExportError):
        export_labelled_frames(video, adir, every=0)
    with pytest.raises(FrameExportError, match="not a finished analysis"):
        export_labelled_frames(video, tmp_path, every=5)
    assert not list(adir.glob(".frames*"))  # no temporary folder left behind


def test_an_export_older_than_the_analysis_is_made_again(synthetic):
    video, adir = synthetic
    export_labelled_frames(video, adir, every=10)
    assert has_frames(adir)
    analyze_video(video, "squat", out_dir=adir, estimator=FakeEstimator(), write_video=False)  # re-run: new labels
    assert not has_frames(adir)
    with zipfile.ZipFile(labelled_frames_zip(adir, video, every=35)) as f:  # exported again, not the stale zip
        assert sum(n.endswith(".jpg") for n in f.namelist()) == 2


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pose_core", "analyze", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=600)


def test_cli_every_without_export_frames_is_refused(tmp_path):
    p = _cli(str(tmp_path / "x.mp4"), "-e", "squat", "--every", "5")
    assert p.returncode == 2 and "--every needs --export-frames" in p.stderr
    p = _cli(str(tmp_path / "x.mp4"), "-e", "squat", "--export-frames", "--every", "0", "--out", str(tmp_path / "o"))
    assert p.returncode == 2 and "--every must be 1 or more" in p.stderr
    assert not (tmp_path / "o").exists()


@needs_videos
def test_cli_analyze_export_frames(tmp_path):
    out = tmp_path / "squat_1"
    p = _cli(str(SQUAT_CLIP), "-e", "squat", "--no-video", "--quiet", "--export-frames", "--every", "30",
             "--out", str(out))
    assert p.returncode == 0, p.stderr[-2000:]
    summary = json.loads(p.stdout.strip().splitlines()[-1])
    frames = pd.read_csv(out / "frames.csv", usecols=["label"])
    assert summary["frames_exported"] == len(range(0, len(frames), 30))
    manifest = pd.read_csv(out / "frames" / "manifest.csv", keep_default_na=False)
    assert len(manifest) == summary["frames_exported"]
    assert set(manifest["exercise"]) == {"squat"} and set(manifest["view"]) == {"side"}
    for _, r in manifest.iterrows():
        assert (out / "frames" / r["image"]).is_file()
        assert r["image"].split("/")[0] == r["label"] == frames["label"][r["frame"]]
