"""The robustness suite: each transform changes the picture as it says (synthetic frames), variants are
written and cached, the report adds up, the CLI refuses bad input, and on real clips the count survives
transforms that a person would count the same (low light, 320x240, a cut to the mirrored picture)."""
import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import VIDEOS, needs_videos
from media import write_video
from pose_core.core.landmarks import NUM_LANDMARKS, PoseLandmark
from pose_core.core.rules import load_rules
from pose_core.media.variants import TRANSFORMS, Clip, NotApplicable, PoseSample, write_variant
from pose_core.run.robustness import (Baseline, PairResult, RobustnessError, SuiteResult, _poses_path, _save_poses,
                                      occluded_limb, run_pair, run_suite, select, variant_path)
from pose_core.run.robustness_report import format_table, summarize, to_json

ROOT = Path(__file__).resolve().parent.parent
W, H = 640, 360


def frame(value: int = 128) -> np.ndarray:
    """A textured frame: a gradient (so flips, zooms and shifts show) on a mid-grey level."""
    img = np.full((H, W, 3), value, np.uint8)
    img[..., 0] = np.linspace(0, 255, W, dtype=np.uint8)[None, :]
    img[..., 1] = np.linspace(0, 255, H, dtype=np.uint8)[:, None]
    return img


def clip(poses: PoseSample | None = None, width: int = W, height: int = H, **kw) -> Clip:
    return Clip(width, height, 10.0, 30.0, poses, **kw)


def standing_poses(n: int = 20, feet_y: float = 330.0, head_y: float = 40.0, x: float = 320.0,
                   lying: bool = False) -> PoseSample:
    """A person standing (head up, feet down) or lying (head left, feet right), every 0.5 s."""
    xy = np.zeros((n, NUM_LANDMARKS, 2))
    span = feet_y - head_y
    heights = {"NOSE": 0.0, "SHOULDER": 0.15, "ELBOW": 0.32, "WRIST": 0.45, "HIP": 0.5, "KNEE": 0.72,
               "ANKLE": 1.0}
    for name, f in heights.items():
        for side in (["LEFT", "RIGHT"] if name != "NOSE" else [""]):
            i = PoseLandmark[f"{side}_{name}" if side else name]
            along = head_y + f * span
            xy[:, i] = (along, x) if lying else (x, along)
    return PoseSample(np.arange(n) * 0.5, xy, np.ones((n, NUM_LANDMARKS)))


# ----------------------------------------------------------------------------------------------- transforms

def test_there_are_at_least_8_transforms_besides_the_control():
    assert len([t for t in TRANSFORMS if t != "reencode"]) >= 8
    for name in ("cut_zoom", "cut_mirror", "cut_rotate", "handheld", "occlude", "crop_feet", "crop_head", "dark",
                 "lowres", "fps15", "portrait"):
        assert name in TRANSFORMS


def test_cut_mirror_flips_after_the_cut_and_not_before():
    op = TRANSFORMS["cut_mirror"].recipe(clip()).op
    img = frame()
    assert np.array_equal(op(img, 4.4), img)  # the cut is at 45% of 10 s
    assert np.array_equal(op(img, 4.6), img[:, ::-1])


def test_cut_zoom_enlarges_the_centre_after_the_cut():
    img = np.zeros((H, W, 3), np.uint8)
    img[H // 2 - 50:H // 2 + 50, W // 2 - 50:W // 2 + 50] = 255  # a 100 px square in the middle
    op = TRANSFORMS["cut_zoom"].recipe(clip()).op
    assert np.array_equal(op(img, 1.0), img)
    after = op(img, 6.0)
    assert after.shape == img.shape
    side = int((after[H // 2, :, 0] > 127).sum())
    assert 125 <= side <= 135  # 1.3x


def test_cut_rotate_turns_the_picture_about_its_centre_after_the_cut():
    img = frame()
    op = TRANSFORMS["cut_rotate"].recipe(clip()).op
    assert np.array_equal(op(img, 4.0), img)
    after = op(img, 5.0)
    assert after.shape == img.shape
    assert after[0, 0].max() == 0 and after[-1, -1].max() == 0  # the corners turned out of the picture
    assert np.abs(after[H // 2, W // 2].astype(int) - img[H // 2, W // 2]).max() <= 2  # the centre stays


def test_handheld_drifts_slowly_and_is_reproducible():
    img = np.zeros((H, W, 3), np.uint8)
    img[H // 2 - 4:H // 2 + 4, W // 2 - 4:W // 2 + 4] = 255  # a dot at the centre

    def dot(out):
        ys, xs = np.nonzero(out[..., 0] > 127)
        return np.array([xs.mean(), ys.mean()])

    a = TRANSFORMS["handheld"].recipe(clip(), seed=1).op
    path = np.array([dot(a(img, t)) for t in np.arange(0, 10, 0.5)])
    steps = np.linalg.norm(np.diff(path, axis=0), axis=1)
    assert np.linalg.norm(path - (W / 2, H / 2), axis=1).max() <= 0.05 * W  # a few percent
    assert steps.max() < 0.03 * W  # slow: little movement in half a second
    assert np.ptp(path, axis=0).max() > 3  # but it does move
    again = TRANSFORMS["handheld"].recipe(clip(), seed=1).op
    other = TRANSFORMS["handheld"].recipe(clip(), seed=2).op
    assert np.array_equal(a(img, 3.3), again(img, 3.3))
    assert not np.array_equal(a(img, 3.3), other(img, 3.3))


def test_occlude_puts_a_grey_box_over_the_knee_for_a_few_seconds_only():
    poses = standing_poses()
    knee = poses.point("left_knee")[0][0].astype(int)  # (320, 248)
    recipe = TRANSFORMS["occlude"].recipe(clip(poses, limb=("knee", "ankle", 0.5)))
    img = frame()
    during, before, after = recipe.op(img, 5.0), recipe.op(img, 3.0), recipe.op(img, 7.0)
    assert tuple(during[knee[1], knee[0]]) == (60, 60, 60)
    shin = poses.point("left_ankle")[0][0].astype(int)
    assert tuple(during[(knee[1] + shin[1]) // 2, knee[0]]) == (60, 60, 60)  # half the lower leg too
    assert np.array_equal(during[:100], img[:100])  # the head and shoulders are not covered
    assert np.array_equal(before, img) and np.array_equal(after, img)  # 3.5 s to 6.5 s of a 10 s clip


def test_a_misdetected_pose_does_not_stretch_the_box_or_the_crop():
    poses = standing_poses()
    elsewhere, higher = poses.xy.copy(), poses.xy.copy()
    elsewhere[8] = elsewhere[8, :, ::-1] * (1.0, 0.3)  # one skeleton found somewhere else, on its side
    higher[12] -= (0.0, 50.0)  # one 50 px too high
    occlude = TRANSFORMS["occlude"]
    assert occlude.recipe(clip(PoseSample(poses.t, elsewhere, poses.vis), limb=("knee", "ankle", 0.5))).note == \
        occlude.recipe(clip(poses, limb=("knee", "ankle", 0.5))).note
    crop_head = TRANSFORMS["crop_head"]
    assert crop_head.recipe(clip(PoseSample(poses.t, higher, poses.vis))).note == crop_head.recipe(clip(poses)).note


def test_the_box_stays_the_size_of_the_limb_when_the_camera_moves():
    poses = standing_poses()
    xy = poses.xy.copy()
    xy[:, :, 0] += np.linspace(-150, 150, len(xy))[:, None]  # the camera pans: the body slides 300 px
    box = TRANSFORMS["occlude"].recipe(clip(PoseSample(poses.t, xy, poses.vis), limb=("knee", "ankle", 0.5))).note
    x0, x1 = (int(v) for v in box.split("box x ")[1].split(" ")[0].split("-"))
    limb = 330 - 248.8
    assert x1 - x0 <= 2.5 * limb + 2 * 0.35 * limb + 2  # not the 300 px the knee travelled


def test_occlude_needs_the_joint_to_be_seen():
    poses = standing_poses()
    hidden = PoseSample(poses.t, poses.xy, np.zeros_like(poses.vis))
    with pytest.raises(NotApplicable, match="knee is not seen"):
        TRANSFORMS["occlude"].recipe(clip(hidden))


def test_crop_head_removes_the_top_at_the_neck():
    poses = standing_poses(head_y=40, feet_y=330)  # shoulders at 83.5, neck at ~69
    img = frame()
    out = TRANSFORMS["crop_head"].recipe(clip(poses)).op(img, 1.0)
    assert out.shape[1] == W and 280 <= out.shape[0] <= 300
    assert np.array_equal(out, img[H - out.shape[0]:])  # the bottom is kept as it was


def test_crop_head_of_a_profile_looking_ahead_still_cuts_the_top():
    poses = standing_poses(head_y=40, feet_y=330)
    xy = poses.xy.copy()
    xy[:, PoseLandmark.NOSE, 0] += 120  # the face far ahead of the shoulders (a bent-over squat, a profile)
    out = TRANSFORMS["crop_head"].recipe(clip(PoseSample(poses.t, xy, poses.vis))).op(frame(), 1.0)
    assert out.shape[1] == W and out.shape[0] < H


def test_crop_feet_removes_the_bottom_at_the_shin_middle():
    poses = standing_poses(head_y=40, feet_y=330)  # knees at 248.8, ankles at 330: shin middle ~289
    img = frame()
    out = TRANSFORMS["crop_feet"].recipe(clip(poses)).op(img, 1.0)
    assert out.shape[1] == W and 286 <= out.shape[0] <= 292
    assert np.array_equal(out, img[:out.shape[0]])


def test_crops_follow_the_body_lying_down():
    poses = standing_poses(head_y=60, feet_y=560, lying=True)  # head at the left, feet at the right
    img = frame()
    feet = TRANSFORMS["crop_feet"].recipe(clip(poses)).op(img, 1.0)
    head = TRANSFORMS["crop_head"].recipe(clip(poses)).op(img, 1.0)
    assert feet.shape[0] == H and feet.shape[1] < W and np.array_equal(feet, img[:, :feet.shape[1]])
    assert head.shape[0] == H and head.shape[1] < W and np.array_equal(head, img[:, W - head.shape[1]:])


def test_a_crop_is_not_applicable_when_the_part_is_already_out_of_the_picture():
    poses = standing_poses(head_y=-100, feet_y=700)  # a close-up: head above the top edge, shins below the bottom
    with pytest.raises(NotApplicable, match="shin middle is already at the edge"):
        TRANSFORMS["crop_feet"].recipe(clip(poses))
    with pytest.raises(NotApplicable, match="neck is already at the edge"):
        TRANSFORMS["crop_head"].recipe(clip(poses))
    with pytest.raises(NotApplicable, match="no poses"):
        TRANSFORMS["crop_head"].recipe(clip(None))


def test_dark_lowers_the_light_and_is_reproducible():
    img = np.full((H, W, 3), 128, np.uint8)
    op = TRANSFORMS["dark"].recipe(clip(), seed=3).op
    out = op(img, 2.0)
    assert 50 <= out.mean() <= 62  # gamma 2.2: 128 -> 56
    assert 1.5 <= out.std() <= 5  # a little noise
    assert np.array_equal(out, TRANSFORMS["dark"].recipe(clip(), seed=3).op(img, 2.0))
    assert not np.array_equal(out, TRANSFORMS["dark"].recipe(clip(), seed=4).op(img, 2.0))


def test_lowres_is_320x240_letterboxed():
    op = TRANSFORMS["lowres"].recipe(clip()).op
    out = op(frame(), 0.0)
    assert out.shape == (240, 320, 3)
    assert out[:25].max() == 0 and out[-25:].max() == 0  # 16:9 in 4:3: bars above and below
    tall = TRANSFORMS["lowres"].recipe(clip(width=360, height=640)).op(np.full((640, 360, 3), 200, np.uint8), 0.0)
    assert tall.shape == (320, 240, 3)


def test_fps15_keeps_every_other_frame_of_a_30fps_clip():
    op = TRANSFORMS["fps15"].recipe(clip()).op
    img = frame()
    kept = [t for t in np.arange(60) / 30.0 if op(img, t) is not None]
    assert len(kept) == 30 and np.allclose(np.diff(kept), 2 / 30)
    op25 = TRANSFORMS["fps15"].recipe(clip()).op
    assert len([t for t in np.arange(100) / 25.0 if op25(img, t) is not None]) == 60  # 4 s at 15 fps


def test_portrait_puts_a_landscape_frame_between_bars():
    out = TRANSFORMS["portrait"].recipe(clip()).op(frame(), 0.0)
    assert out.shape == (640, 360, 3)  # 9:16, the long side kept
    assert out[:200].max() == 0 and out[-200:].max() == 0 and out[320].max() > 0
    tall = TRANSFORMS["portrait"].recipe(clip(width=360, height=640)).op(np.full((640, 360, 3), 200, np.uint8), 0.0)
    assert tall.shape == (360, 640, 3) and tall[:, :200].max() == 0 and tall[:, 320].min() > 0


def test_jpeg_shake_and_blur_change_the_picture_but_keep_its_size():
    img = frame()
    for name in ("jpeg", "shake", "blur"):
        out = TRANSFORMS[name].recipe(clip(), seed=0).op(img, 1.0)
        assert out.shape == img.shape and out.dtype == np.uint8
        assert not np.array_equal(out, img), name
    shake = TRANSFORMS["shake"].recipe(clip(), seed=0).op
    assert not np.array_equal(shake(img, 1.0), shake(img, 1.0 + 1 / 30))  # a new jolt every frame
    assert np.array_equal(shake(img, 1.0), TRANSFORMS["shake"].recipe(clip(), seed=0).op(img, 1.0))


def test_the_cache_key_names_the_recipe():
    t = TRANSFORMS["dark"]
    assert t.key(0) == t.key(0) and t.key(0) != t.key(1)
    occ = TRANSFORMS["occlude"]
    assert occ.key(0, ("knee", "ankle", 0.5)) != occ.key(0, ("elbow", "wrist", 0.5))
    assert variant_path("out", "ab" * 32, "squat_1.mp4", "dark", 0).name == f"squat_1.dark-{t.key(0)}.mp4"


def test_the_limb_to_hide_comes_from_the_primary_angle():
    rules = load_rules()
    assert occluded_limb(rules["squat"]) == ("knee", "ankle", 0.5)
    assert occluded_limb(rules["pushup"]) == ("elbow", "wrist", 0.5)
    assert occluded_limb(rules["situp"]) == ("knee", "ankle", 1.0)  # not a limb angle: the lower leg


# ----------------------------------------------------------------------------------- variants on disk

def test_write_variant_fps15_halves_the_frames_and_keeps_the_timestamps(tmp_path):
    from pose_core.media.video import read_frames

    src = write_video(tmp_path / "src.mp4", frames=30, fps=30)
    dst = tmp_path / "v.mp4"
    assert write_variant(src, dst, TRANSFORMS["fps15"].recipe(clip(width=320, height=240))) == 15
    ts = [t for t, _ in read_frames(dst)]
    assert len(ts) == 15 and np.allclose(np.diff(ts), 2 / 30, atol=2e-3)
    assert not list(tmp_path.glob(".v.mp4*"))  # no temporary file left


def test_write_variant_mirrors_after_the_cut(tmp_path):
    from pose_core.media.video import read_frames

    src = write_video(tmp_path / "src.mp4", frames=30, fps=15)  # a bar growing from the left edge
    dst = tmp_path / "m.mp4"
    write_variant(src, dst, TRANSFORMS["cut_mirror"].recipe(Clip(320, 240, 2.0, 15.0)))
    for (t, a), (_, b) in zip(read_frames(src), read_frames(dst)):
        expected = a if t < 0.9 else a[:, ::-1]
        assert np.abs(b.astype(int) - expected).mean() < 4, t


def test_a_pair_reuses_its_cached_variant(tmp_path):
    src = write_video(tmp_path / "nobody.mp4", frames=20, fps=15)
    row = {"file": "nobody.mp4", "exercise": "squat", "reps_complete": "0"}
    out = tmp_path / "out"
    first = run_pair(str(tmp_path), row, "dark", 0, str(out), None, "c" * 64, ("knee", "ankle", 0.5))
    variant = Path(first.variant)
    stamp = variant.stat().st_mtime_ns
    second = run_pair(str(tmp_path), row, "dark", 0, str(out), None, "c" * 64, ("knee", "ankle", 0.5))
    assert variant.stat().st_mtime_ns == stamp and second.variant == first.variant
    assert first.counted is None and "no person" in first.error  # reported in its cell, not raised
    skipped = run_pair(str(tmp_path), row, "crop_head", 0, str(out), None, "c" * 64, ("knee", "ankle", 0.5))
    assert skipped.skipped == "no poses were sampled from the clip" and skipped.counted is None
    assert not list((out / "variants").glob("*/*.skip"))  # not remembered: the next run may have the poses
    # A transform that cannot apply to the clip is remembered: a rerun does not decode the clip again.
    poses = standing_poses(head_y=-100, feet_y=700)  # a close-up: the neck above the picture
    _save_poses(_poses_path(out, "c" * 64), poses)
    cut = run_pair(str(tmp_path), row, "crop_head", 0, str(out), None, "c" * 64, ("knee", "ankle", 0.5))
    assert cut.skipped == "the neck is already at the edge of the picture"
    assert len(list((out / "variants").glob("*/*.skip"))) == 1


@pytest.fixture
def estimator_calls(monkeypatch):
    """Every frame the pose model is asked about (the model still runs)."""
    from pose_core.media.estimator import PoseEstimator

    calls: list[float] = []
    real = PoseEstimator.process

    def spy(self, img, t, *args, **kwargs):
        calls.append(t)
        return real(self, img, t, *args, **kwargs)

    monkeypatch.setattr(PoseEstimator, "process", spy)
    return calls


def test_a_pair_takes_its_poses_from_the_pose_cache_on_a_rerun(tmp_path, estimator_calls):
    write_video(tmp_path / "nobody.mp4", frames=20, fps=15)
    row = {"file": "nobody.mp4", "exercise": "squat", "reps_complete": "0"}
    out, cache = tmp_path / "out", tmp_path / "poses"
    limb = ("knee", "ankle", 0.5)
    first = run_pair(str(tmp_path), row, "dark", 0, str(out), None, "c" * 64, limb, str(cache))
    assert len(estimator_calls) == 20 and len(list(cache.glob("*.npz"))) == 1  # every frame of the variant
    estimator_calls.clear()
    second = run_pair(str(tmp_path), row, "dark", 0, str(out), None, "c" * 64, limb, str(cache))
    assert estimator_calls == [] and second.variant == first.variant
    assert second.counted is None and second.error == first.error and "no person" in second.error


# ------------------------------------------------------------------------------------------ the report

def _result() -> SuiteResult:
    pairs = [PairResult("a.mp4", "squat", "reencode", 3, 3, 3), PairResult("a.mp4", "squat", "dark", 3, 3, 4),
             PairResult("a.mp4", "squat", "crop_feet", 3, 3, skipped="the shin middle is already at the edge"),
             PairResult("b.mp4", "pushup", "reencode", 5, 4, 5), PairResult("b.mp4", "pushup", "dark", 5, 4, 4),
             PairResult("b.mp4", "pushup", "crop_feet", 5, 4, error="boom")]
    return SuiteResult("f", ["reencode", "dark", "crop_feet"], 0, "out",
                       [Baseline("a.mp4", "squat", 3, "s", 3), Baseline("b.mp4", "pushup", 5, "t", 4)], pairs, 12.0)


def test_the_summary_counts_unchanged_and_exact_pairs():
    result = _result()
    s = summarize(result)
    assert s["per_transform"]["dark"] == {"pairs": 2, "unchanged": 1, "exact": 0, "failed": 0, "not_applicable": 0,
                                          "share_unchanged": 0.5, "share_exact": 0.0}
    assert s["per_transform"]["crop_feet"]["pairs"] == 1 and s["per_transform"]["crop_feet"]["not_applicable"] == 1
    assert s["overall"]["pairs"] == 3 and s["overall"]["unchanged"] == 1  # the control is left out
    assert s["per_clip"]["a.mp4"]["share_unchanged"] == 0.0 and s["untransformed"]["exact"] == 1
    table = format_table(result, s)
    assert "a.mp4 x dark: 3 -> 4 (hand 3)" in table and "b.mp4 x crop_feet: failed: boom" in table
    assert "b.mp4 x reencode: 4 -> 5" in table
    doc = json.loads(json.dumps(to_json(result, s)))
    assert doc["pairs"][1]["unchanged"] is False and doc["overall"]["share_unchanged"] == round(1 / 3, 4)


# --------------------------------------------------------------------------------------------- the CLI

def _folder(tmp_path) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    with open(tmp_path / "videos.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "exercise", "reps_complete"])
        w.writerow(["nobody.mp4", "squat", "0"])
    write_video(tmp_path / "nobody.mp4", frames=10)
    return tmp_path


def test_select_refuses_unknown_names(tmp_path):
    folder = _folder(tmp_path)
    with pytest.raises(RobustnessError, match="unknown transform"):
        select(folder, transforms=["dark", "sepia"])
    with pytest.raises(RobustnessError, match="not in videos.csv: other.mp4"):
        select(folder, clips=["other.mp4"])
    with pytest.raises(RobustnessError, match="limit"):
        select(folder, limit=0)
    rows, names = select(folder, limit=5, transforms=["dark", "dark"])
    assert [r["file"] for r in rows] == ["nobody.mp4"] and names == ["dark"]


@pytest.mark.parametrize("args, fragment", [
    (["--transforms", "dark,sepia"], "unknown transform(s) sepia"),
    (["--clips", "nope.mp4"], "not in videos.csv: nope.mp4"),
    (["--limit", "0"], "the limit must be 1 or more"),
    (["--workers", "0"], "--workers must be 1 or more"),
])
def test_cli_refuses_bad_input_with_one_line(tmp_path, args, fragment):
    folder = _folder(tmp_path / "f")
    out = tmp_path / "out"
    p = subprocess.run([sys.executable, "-m", "pose_core", "robustness", str(folder), "--out", str(out), *args],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert p.returncode == 2, p.stderr
    lines = [ln for ln in p.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], p.stderr
    assert not out.exists()


def test_cli_refuses_a_missing_folder(tmp_path):
    p = subprocess.run([sys.executable, "-m", "pose_core", "robustness", str(tmp_path / "nope")], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and p.stderr.strip() == f"error: {tmp_path / 'nope'}: folder not found"


# ------------------------------------------------------------------------------------------ real clips

@pytest.fixture(scope="module")
def real_suite(tmp_path_factory):
    """The CLI on squat_1 (3 reps) and pushup_4 (4 reps, with its own two cuts), three transforms each."""
    out = tmp_path_factory.mktemp("robustness") / "rb"
    p = subprocess.run([sys.executable, "-m", "pose_core", "robustness", str(VIDEOS), "--clips",
                        "squat_1.mp4,pushup_4.mp4", "--transforms", "dark,lowres,cut_mirror", "--out", str(out),
                        "--json", "--quiet"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    doc = json.loads(p.stdout)
    return {(q["file"], q["transform"]): q for q in doc["pairs"]}, doc, out


@needs_videos
def test_real_counts_survive_low_light_low_resolution_and_a_mirrored_cut(real_suite):
    """A person counts the same on these variants; so must we (and it is the hand count)."""
    cells, doc, out = real_suite
    assert len(cells) == 6 and [c["counted"] for c in doc["clips"]] == [3, 4]
    for pair in [("squat_1.mp4", "dark"), ("squat_1.mp4", "lowres"), ("squat_1.mp4", "cut_mirror"),
                 ("pushup_4.mp4", "dark"), ("pushup_4.mp4", "lowres")]:
        q = cells[pair]
        assert q["unchanged"] and q["exact"], (pair, q["counted"], q["error"])
    assert len(list(out.glob("variants/*/*.mp4"))) == 6
    table = (out / "robustness.txt").read_text()
    assert "squat_1.mp4              squat             3    3 |    3      3          3" in table


@needs_videos
@pytest.mark.xfail(strict=True, reason="the cut to the mirrored picture at 6.1 s, mid-rep, is not found (the "
                                       "picture changes by 0.057, under cuts.MIN_PICTURE_CHANGE): 2 for 4")
def test_real_count_survives_a_mirrored_cut_mid_rep(real_suite):
    cells, _, _ = real_suite
    q = cells[("pushup_4.mp4", "cut_mirror")]
    assert q["unchanged"] and q["exact"], q["counted"]


@needs_videos
def test_real_rerun_with_a_pose_cache_counts_without_the_pose_model(tmp_path, estimator_calls):
    """bench_press_2 (1 rep, 2 s) at 15 fps: the first run keeps the poses of the clip and the variant, the
    rerun counts both again from them, and the count from cached poses is the count of a full analysis."""
    out, cache = tmp_path / "rb", tmp_path / "poses"
    kw = dict(clips=["bench_press_2.mp4"], transforms=["fps15"], out_dir=out, workers=1, cache=cache)
    first = run_suite(VIDEOS, **kw)
    assert estimator_calls and len(list(cache.glob("*.npz"))) == 2
    estimator_calls.clear()
    second = run_suite(VIDEOS, **kw)
    assert estimator_calls == []
    assert [b.counted for b in second.baselines] == [b.counted for b in first.baselines] == [1]
    assert [p.counted for p in second.pairs] == [p.counted for p in first.pairs] == [1]
    uncached = run_pair(str(VIDEOS), {"file": "bench_press_2.mp4", "exercise": "bench_press", "reps_complete": "1"},
                        "fps15", 0, str(out), None, first.baselines[0].sha256, ("elbow", "wrist", 0.5))
    assert estimator_calls and uncached.counted == 1 and uncached.variant == second.pairs[0].variant
