"""Penn Action: reading labels, joint mapping, labelling through the rules, export, statistics and the
detector comparison. Real-data tests skip without ../shared/data; the synthetic ones always run."""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.io

from helpers import needs_penn
from penn_fixture import HEIGHT, WIDTH, make_penn_dataset, mat_fields, write_mat
from pose_core.datasets import penn_labels
from pose_core.core.landmarks import NUM_LANDMARKS, PoseLandmark as L
from pose_core.core.rules import load_rules
from pose_core.core.types import PoseFrame
from pose_core.datasets.penn import (GYM_CLASSES, NUM_PENN_JOINTS, PENN_FPS, PENN_JOINTS, PENN_TO_LANDMARK,
                                     PennFormatError, clip_pose_frames, load_clip, penn_to_pose_frame,
                                     pose_frame_to_penn, read_frame_image, scan_dataset)
from pose_core.datasets.penn_detector import compare_detector
from pose_core.datasets.penn_export import export_dataset
from pose_core.datasets.penn_labels import (angle_stats, angle_values, draw_penn_label, label_clip, label_summary,
                                            labelled_frames, rules_fingerprint)

EXPECTED_COUNTS = {"bench_press": 140, "clean_and_jerk": 88, "jump_rope": 82, "jumping_jacks": 112, "pullup": 199,
                   "pushup": 211, "situp": 100, "squat": 231}

# Squat thresholds pinned here so the synthetic expectations do not move when the packaged rules are tuned.
PINNED_SQUAT = """
[exercises.squat]
counting = { rest = "high", min_amplitude = 30, min_rep_s = 0.5, rest_requires = [] }
frame_checks = [ { angle = "knee", phase = "peak", max = 100, message = "Go deeper" } ]
"""


@pytest.fixture(scope="module")
def rules():
    return load_rules()


@pytest.fixture(scope="module")
def pinned_rules():
    return load_rules(user_text=PINNED_SQUAT)


@pytest.fixture()
def synth(tmp_path) -> Path:
    return make_penn_dataset(tmp_path / "penn")


def no_tmp_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


# -------------------------------------------------------------------------------------- real data

@needs_penn
def test_scan_counts_gym_classes(penn_dir):
    t0 = time.perf_counter()
    scan = scan_dataset(penn_dir)
    elapsed = time.perf_counter() - t0
    assert scan.errors == []
    assert scan.counts() == EXPECTED_COUNTS
    assert len(scan) == 1163
    assert [c.id for c in scan.clips] == sorted(c.id for c in scan.clips)
    assert elapsed < 20, f"scanning the gym classes took {elapsed:.1f} s"
    everything = scan_dataset(penn_dir, actions=None)
    assert len(everything) == 2326 and len(everything.counts()) == 15


@needs_penn
def test_scan_without_index_and_filters_agree(penn_dir, tmp_path):
    """The index is only a shortcut: a root without it (labels linked, not copied) gives the same clips."""
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "labels").symlink_to(penn_dir / "labels", target_is_directory=True)
    for kwargs in ({}, {"split": "test", "view": "front"}, {"actions": ("squat", "pushup"), "split": "train"}):
        with_index = scan_dataset(penn_dir, **kwargs)
        without = scan_dataset(bare, **kwargs)
        assert [c.id for c in without.clips] == [c.id for c in with_index.clips], kwargs
        assert len(with_index) > 0
    test_front = scan_dataset(bare, split="test", view="front")
    assert all(c.split == "test" and c.view == "front" and c.action in GYM_CLASSES for c in test_front.clips)
    with pytest.raises(ValueError, match="split"):
        scan_dataset(penn_dir, split="validation")
    with pytest.raises(FileNotFoundError, match="labels"):
        scan_dataset(tmp_path / "nowhere")


@needs_penn
def test_known_clip_fields(penn_dir):
    c = load_clip(penn_dir / "labels" / "0001.mat")
    assert (c.id, c.action, c.view, c.split, c.nframes, c.width, c.height) == \
        ("0001", "baseball_pitch", "back", "test", 151, 480, 360)
    assert c.xy.shape == (151, 13, 2) and c.visibility.shape == (151, 13) and c.bbox.shape == (151, 4)
    assert c.xy.dtype == np.float64 and c.visibility.dtype == bool
    np.testing.assert_array_equal(c.xy[0, 0], [136.5, 71.25])
    np.testing.assert_array_equal(c.visibility[0].astype(int), [1, 1, 0, 1, 0, 1, 0, 1, 0, 1, 1, 1, 1])
    np.testing.assert_array_equal(c.bbox[0], [86.25, 45.75, 168.75, 350.25])
    assert c.frames_dir is None and c.frame_path(0) is None  # the shared folder has labels only
    assert c.labels_path == penn_dir / "labels" / "0001.mat"
    with pytest.raises(ValueError):
        c.xy[0, 0, 0] = 1.0  # read-only
    squat = load_clip(penn_dir / "labels" / "1665.mat")
    assert (squat.action, squat.view, squat.split, squat.nframes) == ("squat", "right", "train", 109)


@needs_penn
def test_bbox_one_row_short_is_padded(penn_dir):
    scan = scan_dataset(penn_dir, actions=None)
    padded = sorted(c.id for c in scan.clips if np.isnan(c.bbox).any())
    assert padded == ["1154", "1865"]
    for cid, n in (("1154", 72), ("1865", 73)):
        c = load_clip(penn_dir / "labels" / f"{cid}.mat")
        raw = scipy.io.loadmat(str(c.labels_path))["bbox"]
        assert raw.shape == (n - 1, 4) and c.nframes == n and c.bbox.shape == (n, 4)
        assert np.isnan(c.bbox[-1]).all() and np.isfinite(c.bbox[:-1]).all()
        np.testing.assert_array_equal(c.bbox[:-1], raw)


@needs_penn
def test_joint_mapping_round_trip_real_clip(penn_dir):
    clip = load_clip(penn_dir / "labels" / "0001.mat")
    frames = clip_pose_frames(clip)
    assert len(frames) == clip.nframes
    for i in (0, 50, clip.nframes - 1):
        f = frames[i]
        assert f.timestamp_s == pytest.approx(i / PENN_FPS) and f.image_size == (480, 360)
        xy, vis = pose_frame_to_penn(f)
        # PoseFrame stores coordinates divided by the image size: x / w * w can differ in the last bit.
        np.testing.assert_allclose(xy, clip.xy[i], rtol=0, atol=1e-9)
        np.testing.assert_array_equal(vis, clip.visibility[i].astype(float))
        np.testing.assert_allclose(f.point(L.NOSE), clip.xy[i, 0], atol=1e-9)
        unmapped = sorted(set(range(NUM_LANDMARKS)) - {int(lm) for lm in PENN_TO_LANDMARK})
        assert len(unmapped) == NUM_LANDMARKS - NUM_PENN_JOINTS
        assert np.all(f.visibility[unmapped] == 0)
        for heel, ankle in ((L.LEFT_HEEL, L.LEFT_ANKLE), (L.RIGHT_FOOT_INDEX, L.RIGHT_ANKLE), (L.LEFT_EAR, L.NOSE)):
            np.testing.assert_array_equal(f.landmarks[heel], f.landmarks[ankle])


@needs_penn
def test_penn_left_is_the_persons_right(penn_dir):
    """Why PENN_SIDES_SWAPPED: a person facing the camera has their RIGHT shoulder on the image's left;
    with our mapping MediaPipe's RIGHT_SHOULDER must be there in nearly all front-view sequences."""
    j_right = PENN_TO_LANDMARK.index(L.RIGHT_SHOULDER)
    j_left = PENN_TO_LANDMARK.index(L.LEFT_SHOULDER)
    votes = []
    for c in scan_dataset(penn_dir, actions=None, view="front").clips:
        ok = c.visibility[:, j_right] & c.visibility[:, j_left]
        if ok.any():
            votes.append(np.mean(c.xy[ok, j_right, 0] < c.xy[ok, j_left, 0]) > 0.5)
    assert len(votes) > 400
    assert np.mean(votes) > 0.9


@needs_penn
def test_label_known_squat_clip(penn_dir, rules):
    clip = load_clip(penn_dir / "labels" / "1665.mat")
    df = label_clip(clip, rules)
    assert len(df) == clip.nframes
    assert df["frame"].tolist() == list(range(1, clip.nframes + 1))
    assert set(df["clip"]) == {"1665"} and set(df["action"]) == {"squat"} and set(df["split"]) == {"train"}
    assert set(rules["squat"].angles) <= set(df.columns)
    assert set(df["label"]) <= {"correct", "incorrect", "unknown"}
    # Bottom and top found from the hip's height in the image, independently of any angle.
    hip_y = clip.xy[:, 7:9, 1].mean(axis=1)
    order = np.argsort(hip_y)
    top, bottom = order[:10], order[-10:]
    assert df["knee"].iloc[bottom].median() < 100 < 150 < df["knee"].iloc[top].median()
    assert (df["phase"].iloc[bottom] == "peak").all()
    assert (df["label"] == "correct").any()


@needs_penn
def test_invisible_joints_give_nan_and_unknown(penn_dir, rules):
    clip = load_clip(penn_dir / "labels" / "1665.mat")
    vis = clip.visibility.copy()
    knees = [PENN_JOINTS.index("left_knee"), PENN_JOINTS.index("right_knee")]
    vis[20:40][:, knees] = False
    hidden = dataclasses.replace(clip, visibility=vis)
    df = label_clip(hidden, rules)
    assert df["knee"].iloc[20:40].isna().all() and df["hip"].iloc[20:40].isna().all()
    assert (df["label"].iloc[20:40] == "unknown").all()
    assert df["knee"].iloc[:20].notna().all()


@needs_penn
def test_export_interrupted_then_resumed(penn_dir, rules, tmp_path):
    out = tmp_path / "export"
    calls = []

    def stop_after_three(done, total, clip_id):
        calls.append(clip_id)
        if done == 3:
            raise KeyboardInterrupt("simulated interruption")

    with pytest.raises(KeyboardInterrupt):
        export_dataset(penn_dir, out, rules, progress=stop_after_three, limit=7, actions=("squat", "pushup"))
    assert len(list((out / "parts").glob("*.parquet"))) == 3
    assert not (out / "manifest.csv").exists() and not (out / "manifest.parquet").exists()
    assert no_tmp_files(out) == []
    stale = out / "parts" / ".0999.parquet.x1y2.parquet.tmp"  # as left by a killed process
    stale.write_bytes(b"half a file")

    report = export_dataset(penn_dir, out, rules, limit=7, actions=("squat", "pushup"))
    assert (report.clips_total, report.clips_skipped, report.clips_written) == (7, 3, 4)
    expected = scan_dataset(penn_dir, actions=("squat", "pushup")).clips[:7]
    assert [c.id for c in expected][:3] == calls
    manifest = pd.read_parquet(report.manifest_parquet)
    assert len(manifest) == report.frames == sum(c.nframes for c in expected)
    assert manifest["clip"].unique().tolist() == [c.id for c in expected]
    assert list(manifest.columns[:5]) == ["clip", "frame", "action", "split", "view"]
    assert {"knee", "elbow", "phase", "label", "reason"} <= set(manifest.columns)
    csv = pd.read_csv(report.manifest_csv, dtype={"clip": str}, keep_default_na=False, na_values=[""])
    assert csv["clip"].tolist() == manifest["clip"].tolist()
    assert csv["label"].tolist() == manifest["label"].tolist()
    np.testing.assert_allclose(csv["knee"].to_numpy(float), manifest["knee"].to_numpy(float), equal_nan=True)
    assert sum(report.label_counts.values()) == len(manifest)
    assert not (out / "images").exists()  # no frames in the shared folder
    assert no_tmp_files(out) == []

    again = export_dataset(penn_dir, out, rules, limit=7, actions=("squat", "pushup"))
    assert (again.clips_skipped, again.clips_written) == (7, 0)
    other = load_rules(user_text=PINNED_SQUAT.replace("max = 100", "max = 95"))
    with pytest.raises(ValueError, match="other rules"):
        export_dataset(penn_dir, out, other, limit=7, actions=("squat", "pushup"))


@needs_penn
def test_angle_stats_and_values_cached(penn_dir, rules, tmp_path):
    cache = tmp_path / "cache"
    stats = angle_stats(penn_dir, rules, actions=("squat",), cache_dir=cache)
    assert len(list(cache.glob("penn_labels_*.parquet"))) == 1
    knee = stats[(stats["action"] == "squat") & (stats["angle"] == "knee")].set_index("phase")
    assert {"all", "rest", "peak", "transition"} <= set(knee.index)
    assert knee.loc["peak", "p50"] < knee.loc["transition", "p50"] < knee.loc["rest", "p50"]
    for p in ("all", "rest", "peak"):
        row = knee.loc[p]
        assert row["p5"] <= row["p25"] <= row["p50"] <= row["p75"] <= row["p95"]
    values = angle_values(penn_dir, rules, "squat", cache_dir=cache)
    assert set(values["angle"]) == set(rules["squat"].angles) and values["value"].notna().all()
    assert (values["angle"] == "knee").sum() == knee.loc["all", "count"]
    assert values.loc[values["angle"] == "knee", "value"].median() == pytest.approx(knee.loc["all", "p50"])
    train = angle_values(penn_dir, rules, "squat", split="train", cache_dir=cache)
    assert 0 < len(train) < len(values) and set(train["split"]) == {"train"}

    penn_labels._MEMORY_CACHE.clear()  # the next call must come from the parquet file, not relabel
    t0 = time.perf_counter()
    again = labelled_frames(penn_dir, rules, ("squat",), cache_dir=cache)
    assert time.perf_counter() - t0 < 1.0
    assert len(again) == sum(c.nframes for c in scan_dataset(penn_dir, actions=("squat",)).clips)
    summary = label_summary(again).set_index("action")
    s = summary.loc["squat"]
    assert s["pct_correct"] + s["pct_incorrect"] + s["pct_unknown"] == pytest.approx(100.0)
    assert s["frames"] == len(again)


# ----------------------------------------------------------------------------- broken label files

def _bad_files(folder: Path) -> dict[str, tuple[Path, str]]:
    """name -> (file, text the error must contain)."""
    good = mat_fields(n_frames=12)
    cases = {}
    p = write_mat(folder / "labels" / "0101.mat", good)
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    cases["truncated"] = (p, "truncated or corrupt")
    p = folder / "labels" / "0102.mat"
    p.write_bytes(b"MATLAB 5.0 MAT-file" + b"\x00garbage" * 40)
    cases["garbage"] = (p, "truncated or corrupt")
    f = dict(good)
    f["xx"] = f.pop("x")
    cases["wrong field"] = (write_mat(folder / "labels" / "0103.mat", f), "missing field(s) x")
    f = dict(good)
    del f["bbox"]
    cases["missing field"] = (write_mat(folder / "labels" / "0104.mat", f), "missing field(s) bbox")
    cases["unknown action"] = (write_mat(folder / "labels" / "0105.mat", {**good, "action": "yoga"}), "unknown action 'yoga'")
    cases["short y"] = (write_mat(folder / "labels" / "0106.mat", {**good, "y": good["y"][:-2]}), "'y' should be 12 x 13")
    cases["frame count"] = (write_mat(folder / "labels" / "0107.mat",
                                      {**good, "dimensions": np.array([[HEIGHT, WIDTH, 13]], dtype=np.uint16)}),
                            "dimensions say 13 frames but nframes is 12")
    cases["bbox two short"] = (write_mat(folder / "labels" / "0108.mat", {**good, "bbox": good["bbox"][:-2]}),
                               "'bbox' should be 12 x 4")
    cases["bad split"] = (write_mat(folder / "labels" / "0109.mat", {**good, "train": np.array([[0]])}),
                          "1 (train) or -1 (test)")
    return cases


def test_broken_files_are_reported_and_the_rest_loads(tmp_path):
    root = make_penn_dataset(tmp_path / "penn", with_frames=False, n_frames=12)
    cases = _bad_files(root)
    for name, (path, text) in cases.items():
        with pytest.raises(PennFormatError) as e:
            load_clip(path)
        assert str(path) in str(e.value), name
        assert text in str(e.value), (name, str(e.value))
    scan = scan_dataset(root, actions=None)
    assert [c.id for c in scan.clips] == ["0001", "0002"]
    assert sorted(p for p, _ in scan.errors) == sorted(p for p, _ in cases.values())
    assert all(str(p) in msg for p, msg in scan.errors)
    with pytest.raises(FileNotFoundError):
        load_clip(root / "labels" / "9999.mat")


# ---------------------------------------------------------------------------- synthetic, with frames

def test_synthetic_clip_loads_with_frames(synth):
    c = load_clip(synth / "labels" / "0001.mat")
    assert (c.action, c.view, c.split, c.nframes, c.width, c.height) == ("squat", "right", "train", 40, WIDTH, HEIGHT)
    assert c.frames_dir == synth / "frames" / "0001"
    assert c.frame_path(0).name == "000001.jpg" and c.frame_path(39).exists()
    assert c.visibility.sum(axis=1).tolist() == [7] * 40  # head + far side; the near side is hidden
    frames = clip_pose_frames(c)
    for i in (0, 20):
        xy, vis = pose_frame_to_penn(frames[i])
        np.testing.assert_allclose(xy, c.xy[i], rtol=0, atol=1e-9)
        np.testing.assert_array_equal(vis, c.visibility[i])
    assert load_clip(synth / "labels" / "0002.mat").split == "test"


def test_label_synthetic_squats(synth, pinned_rules):
    deep = label_clip(load_clip(synth / "labels" / "0001.mat"), pinned_rules)
    shallow = label_clip(load_clip(synth / "labels" / "0002.mat"), pinned_rules)
    assert deep["knee"].min() < 80 and deep["knee"].iloc[0] > 170
    assert (deep.loc[deep["knee"] <= 100, "label"] == "correct").all()
    assert (deep.loc[(deep["knee"] > 100) & (deep["phase"] == "peak"), "label"] == "incorrect").any()
    peak = shallow[shallow["phase"] == "peak"]
    assert len(peak) > 0 and (peak["label"] == "incorrect").all() and (peak["reason"] == "Go deeper").all()
    assert (shallow.loc[shallow["phase"] == "rest", "label"] == "correct").all()


def test_export_with_frames_writes_labelled_images(synth, pinned_rules, tmp_path):
    out = tmp_path / "out"
    seen = []
    report = export_dataset(synth, out, pinned_rules, actions=("squat",), progress=lambda d, t, c: seen.append((d, t, c)))
    assert seen == [(1, 2, "0001"), (2, 2, "0002")]
    assert report.errors == [] and report.images_written == 80 == report.frames
    manifest = pd.read_parquet(report.manifest_parquet)
    for row in manifest.itertuples():
        expected = f"images/squat/{row.label}/{row.clip}_{row.frame:06d}.jpg"
        assert row.image == expected and (out / expected).is_file()
    labels_on_disk = {p.name for p in (out / "images" / "squat").iterdir()}
    assert labels_on_disk == set(manifest["label"]) and {"correct", "incorrect"} <= labels_on_disk
    assert len(list((out / "images").rglob("*.jpg"))) == 80
    assert no_tmp_files(out) == []


def test_draw_penn_label_draws_without_touching_input(synth):
    c = load_clip(synth / "labels" / "0001.mat")
    img = read_frame_image(c.frame_path(10))
    before = img.copy()
    drawn = draw_penn_label(img, c.xy[10], c.visibility[10], "incorrect", "knee", 112.3, "Go deeper")
    np.testing.assert_array_equal(img, before)
    assert drawn.shape == img.shape and np.count_nonzero(np.any(drawn != img, axis=2)) > 200
    # red (RGB, the overlay's RED) skeleton pixels appear for an incorrect label
    assert np.any((drawn[..., 0] > 180) & (drawn[..., 2] < 80))


def test_compare_detector_with_mediapipe_finds_nobody(synth):
    c = load_clip(synth / "labels" / "0001.mat")
    result = compare_detector(c, max_frames=15)
    assert (result["frames"], result["frames_read"], result["detections"]) == (15, 15, 0)
    assert result["pck"] == 0.0 and math.isnan(result["pck_detected"]) and result["detection_rate"] == 0.0
    assert set(result["per_joint"]) == set(PENN_JOINTS)
    assert result["per_joint"]["head"]["visible"] == 15 and result["per_joint"]["head"]["correct"] == 0
    assert all(math.isnan(v) for v in result["angle_mae_deg"].values())


class _ShiftedGroundTruth:
    """A stand-in estimator returning the ground truth moved by `shift` (in bbox-size units) per joint."""

    def __init__(self, clip, shifts: np.ndarray, miss_every: int = 0):
        self.clip, self.shifts, self.miss_every = clip, shifts, miss_every

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def process(self, image, t):
        i = int(round(t * PENN_FPS))
        if self.miss_every and i % self.miss_every == 0:
            return None
        gt = penn_to_pose_frame(self.clip, i)
        b = self.clip.bbox[i]
        size = max(b[2] - b[0], b[3] - b[1])
        px = gt.pixels.copy()
        for j, lm in enumerate(PENN_TO_LANDMARK):
            px[int(lm), 0] += self.shifts[j] * size
        return PoseFrame.from_pixels(px, gt.visibility, gt.image_size, t)


def test_compare_detector_pck_and_angle_error(synth, pinned_rules):
    c = load_clip(synth / "labels" / "0001.mat")
    uniform = np.full(NUM_PENN_JOINTS, 0.1)  # inside 0.2 x bbox: every joint correct, angles unchanged
    r = compare_detector(c, lambda: _ShiftedGroundTruth(c, uniform), pinned_rules)
    assert r["detections"] == 40 and r["pck"] == 1.0 and r["pck_detected"] == 1.0
    assert r["angle_mae_deg"]["knee"] == pytest.approx(0.0, abs=1e-6)
    assert r["angle_pairs"]["knee"] == 40 and "hip_height" not in r["angle_mae_deg"]

    shifts = np.zeros(NUM_PENN_JOINTS)
    wrist = PENN_JOINTS.index("right_wrist")  # visible in the fixture
    shifts[wrist] = 0.3  # outside the threshold
    r = compare_detector(c, lambda: _ShiftedGroundTruth(c, shifts, miss_every=4), pinned_rules)
    assert r["detections"] == 30 and r["detection_rate"] == 0.75
    assert r["per_joint"]["right_wrist"]["pck"] == 0.0 and r["per_joint"]["right_wrist"]["visible"] == 40
    assert r["per_joint"]["head"]["pck"] == 0.75 and r["per_joint"]["head"]["pck_detected"] == 1.0
    visible_total = int(c.visibility.sum())
    assert r["pck"] == pytest.approx((30 * 6) / visible_total)  # 6 of 7 visible joints right in 30 frames
    assert r["angle_mae_deg"]["knee"] == pytest.approx(0.0, abs=1e-6)


def test_compare_detector_needs_frames(tmp_path):
    root = make_penn_dataset(tmp_path / "p", with_frames=False, n_frames=8)
    with pytest.raises(FileNotFoundError, match="no frames folder"):
        compare_detector(load_clip(root / "labels" / "0001.mat"))


def test_rules_fingerprint_tracks_rules(rules, pinned_rules):
    assert rules_fingerprint(rules) == rules_fingerprint(load_rules())
    assert rules_fingerprint(rules, ["squat"]) != rules_fingerprint(pinned_rules, ["squat"])
    assert rules_fingerprint(rules, ["pushup"]) == rules_fingerprint(pinned_rules, ["pushup"])
