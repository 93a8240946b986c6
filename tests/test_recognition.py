"""Exercise recognition: features, the saved model and its calibration, training reproducibility, real clips,
cannot-tell and "not one of these", recognition x counting, and `evaluate` on a folder of labels."""

import json
import math
import zipfile

import numpy as np
import pytest

from pose_core.core.landmarks import NUM_LANDMARKS, PoseLandmark
from pose_core.recognition import (CONFIDENCE_THRESHOLD, DEFAULT_MODEL_DIR, JOINT_LANDMARKS,
                                            MIN_POSE_FRAMES, ExerciseRecognizer, OnlineRecognizer, Recognition,
                                            TreeEnsemble, pose_arrays, recognize_video, sequence_windows)
from pose_core.core.types import PoseFrame

from helpers import PENN, RECOGNITION, VIDEOS, needs_penn, needs_recognition, needs_videos, video_rows

L = PoseLandmark
W, H = 640, 480


# ------------------------------------------------------------------------------------ synthetic poses

def _joints(phase: float) -> dict[PoseLandmark, tuple[float, float]]:
    """A side-view squatter in pixels (y down); phase 0 = standing, 1 = bottom."""
    d = 0.5 - 0.5 * math.cos(2 * math.pi * phase)
    hip = (300.0, 220.0 + 80 * d)
    knee = (340.0 + 20 * d, 300.0 + 10 * d)
    ankle = (320.0, 380.0)
    sh = (hip[0] + 10 + 30 * d, hip[1] - 110 + 10 * d)
    el = (sh[0] + 50, sh[1] + 30)
    wr = (el[0] + 50, el[1] - 5)
    pts = {L.NOSE: (sh[0] + 15, sh[1] - 45)}
    for side, dx in (("LEFT", -6.0), ("RIGHT", 6.0)):  # a little depth between the sides
        for name, p in (("SHOULDER", sh), ("ELBOW", el), ("WRIST", wr), ("HIP", hip), ("KNEE", knee),
                        ("ANKLE", ankle)):
            pts[L[f"{side}_{name}"]] = (p[0] + dx, p[1] + 0.3 * dx)
    return pts


def squat_frames(n: int = 120, fps: float = 30.0, transform=None, swap_sides: bool = False) -> list[PoseFrame]:
    frames = []
    for i in range(n):
        pts = _joints(i / fps / 2.0)  # one rep every 2 s
        xy = np.zeros((NUM_LANDMARKS, 2))
        vis = np.zeros(NUM_LANDMARKS)
        for lm, p in pts.items():
            if swap_sides and lm.name.startswith(("LEFT_", "RIGHT_")):
                side, rest = lm.name.split("_", 1)
                lm = L[("RIGHT_" if side == "LEFT" else "LEFT_") + rest]
            xy[lm] = p
            vis[lm] = 1.0
        if transform is not None:
            xy = transform(xy)
        frames.append(PoseFrame.from_pixels(xy, vis, (W, H), i / fps))
    return frames


def features(frames) -> np.ndarray:
    return np.stack(sequence_windows(*pose_arrays(frames)))


def test_features_ignore_distance_position_mirroring_and_sides():
    base = features(squat_frames())
    centre = np.array([W / 2, H / 2])
    variants = {
        "farther and off-centre": lambda xy: (xy - centre) * 0.45 + centre + [150.0, -60.0],
        "closer": lambda xy: (xy - centre) * 1.3 + centre,
        "mirrored image": lambda xy: np.column_stack([W - xy[:, 0], xy[:, 1]]),
    }
    for name, tf in variants.items():
        got = features(squat_frames(transform=tf))
        np.testing.assert_allclose(got, base, rtol=1e-7, atol=1e-9, err_msg=name, equal_nan=True)
    swapped = features(squat_frames(swap_sides=True))
    np.testing.assert_allclose(swapped, base, rtol=1e-7, atol=1e-9, equal_nan=True)
    # ...but they do see a different posture: the same squat lying on its side is not the same
    lying = features(squat_frames(transform=lambda xy: np.column_stack([xy[:, 1], W - xy[:, 0]]) * 0.7))
    assert not np.allclose(lying, base, equal_nan=True)


def test_features_survive_missing_joints_and_frames():
    frames = squat_frames()
    thinned = []
    for i, f in enumerate(frames):
        if i % 5 == 0:
            thinned.append(None)  # no pose in this frame
            continue
        vis = f.visibility.copy()
        vis[[L.LEFT_ELBOW, L.LEFT_WRIST, L.LEFT_KNEE, L.LEFT_ANKLE]] = 0.1  # far side hidden
        vis[L.LEFT_SHOULDER] = vis[L.RIGHT_SHOULDER] = 0.0  # e.g. behind a barbell
        thinned.append(PoseFrame(f.landmarks, vis, f.image_size, f.timestamp_s))
    x = features(thinned)
    assert x.shape[0] >= 1 and np.isfinite(x).mean() > 0.8


# --------------------------------------------------------------------------------- cannot tell

@pytest.fixture(scope="module")
def recognizer() -> ExerciseRecognizer:
    return ExerciseRecognizer.load()


def test_empty_and_poseless_input_cannot_tell(recognizer):
    r = recognizer.predict([])
    assert r.exercise is None and r.cannot_tell and "no person" in r.reason and r.top == ()
    r = recognizer.predict([None] * 90)
    assert r.exercise is None and "no person" in r.reason and r.frames == 90 and r.frames_with_pose == 0


def test_too_short_input_cannot_tell(recognizer):
    few = squat_frames(MIN_POSE_FRAMES - 1)
    r = recognizer.predict(few)
    assert r.exercise is None and "too little" in r.reason
    # as many frames, but within a fraction of a second (a 120 fps burst)
    burst = squat_frames(40, fps=120.0)
    r = recognizer.predict(burst)
    assert r.exercise is None and "too little" in r.reason
    assert recognizer.predict(squat_frames(90)).frames_with_pose == 90  # enough frames: it does decide


def test_low_confidence_cannot_tell_names_candidates():
    classes = ("a", "b", "c", "d")
    empty = np.zeros(0)
    flat = TreeEnsemble(classes=classes, baseline=np.array([0.2, 0.1, 0.0, 0.0]), tree_start=np.zeros(0, int),
                        tree_class=np.zeros(0, int), feature=empty.astype(int), threshold=empty,
                        missing_left=empty.astype(bool), left=empty.astype(int), right=empty.astype(int),
                        is_leaf=empty.astype(bool), value=empty, depth=0)
    r = ExerciseRecognizer(flat).predict(squat_frames())
    assert r.exercise is None and "low confidence" in r.reason
    assert [n for n, _ in r.top] == ["a", "b", "c"] and r.confidence < CONFIDENCE_THRESHOLD
    assert "candidates: a" in r.describe()
    # the same probabilities restricted to two exercises are confident enough to answer
    r2 = ExerciseRecognizer(flat).predict(squat_frames(), allowed={"a", "c"})
    assert r2.exercise == "a" and r2.confidence > CONFIDENCE_THRESHOLD and {n for n, _ in r2.top} == {"a", "c"}


# ------------------------------------------------------------------------------------- the model

def test_model_file_is_not_a_pickle_and_is_small():
    npz = DEFAULT_MODEL_DIR / "model.npz"
    total = sum(p.stat().st_size for p in DEFAULT_MODEL_DIR.iterdir() if p.is_file())
    assert total < 500_000, f"recognizer files take {total} bytes"
    assert zipfile.is_zipfile(npz)
    with np.load(npz, allow_pickle=False) as z:  # raises on any object (pickled) array
        for k in z.files:
            assert z[k].dtype.kind in "biuf", (k, z[k].dtype)
    with zipfile.ZipFile(npz) as zf:
        for name in zf.namelist():
            head = zf.read(name)[:6]
            assert head == b"\x93NUMPY", name  # plain .npy members only
    meta = json.loads((DEFAULT_MODEL_DIR / "model.json").read_text())
    assert meta["classes"] == ["bench_press", "clean_and_jerk", "jump_rope", "jumping_jacks", "pullup", "pushup",
                               "situp", "squat", "other"]  # the 8 exercises, and "not one of them"
    with np.load(npz, allow_pickle=False) as z:  # the classes' typical postures ship beside the trees
        assert z["typical_centre"].shape[0] == len(meta["classes"]) and z["typical_centre"].ndim == 3


def test_tree_inference_matches_sklearn():
    from sklearn.ensemble import HistGradientBoostingClassifier

    from pose_core.recognition import NUM_FEATURES
    from pose_core.datasets.train_recognizer import export_trees

    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, NUM_FEATURES))
    y = (x[:, 0] + x[:, 5] > 0).astype(int) + 2 * (x[:, 7] > 0.5)
    x[rng.random(x.shape) < 0.1] = np.nan
    clf = HistGradientBoostingClassifier(max_iter=15, max_leaf_nodes=6, random_state=0).fit(x, y)
    model = export_trees(clf, ("a", "b", "c", "d"))
    test = rng.normal(size=(200, NUM_FEATURES))
    test[rng.random(test.shape) < 0.2] = np.nan
    np.testing.assert_allclose(model.proba(test), clf.predict_proba(test), atol=1e-12)


@needs_penn
def test_committed_model_reproduces_committed_test_accuracy():
    from pose_core.datasets.train_recognizer import evaluate, load_sequences

    metrics = json.loads((DEFAULT_MODEL_DIR / "metrics.json").read_text())["test"]
    r = evaluate(ExerciseRecognizer.load(), load_sequences(PENN, "test"))  # the 8 gym classes' test clips
    assert r["clips"] == metrics["clips"] == 589
    assert round(r["accuracy"], 4) == metrics["accuracy"]
    assert r["confusion"] == metrics["confusion_rows_true_cols_top"]
    assert metrics["accuracy"] >= 0.97
    # Penn's 7 other actions (baseball, golf, tennis, guitar...) are hardly ever named as sure
    assert metrics["other_action_clips"] > 400 and metrics["other_actions_named_sure"] <= 0.05 * metrics["other_action_clips"]


def _fake_real_footage(tmp_path):
    """Real footage with synthetic poses: two sources of squats (4 reps after 3 s standing: idle windows)
    and one of a person standing still labelled none."""
    from pose_core.core.rules import load_rules
    from pose_core.datasets.real_clips import RealClip
    from pose_core.datasets.train_recognizer import RealFootage
    from helpers import squat_knee_schedule, squat_pose

    def poses_of(path):
        n = int(14 * 30)
        knee = (lambda t: 175.0) if "still" in path.name else (lambda t: squat_knee_schedule(t, reps=4, lead_s=3.0))
        return [(i / 30, squat_pose(knee(i / 30), t=i / 30)) for i in range(n)]

    clips = [RealClip(tmp_path / f"{name}.mp4", ex, src, "videos") for name, ex, src in
             (("squat_a", "squat", "a/x"), ("squat_b", "squat", "b/y"), ("still_c", "none", "c/z"))]
    return RealFootage(clips, poses_of, load_rules())


@needs_penn
def test_training_is_reproducible_with_a_seed(tmp_path):
    from pose_core.datasets.train_recognizer import train

    real = _fake_real_footage(tmp_path)

    def run(seed):
        return train(PENN, seed=seed, per_class=30, setting=(4, 6, 0.3), limit_per_class=4, real=real,
                     evaluate_test=False, log=lambda *_: None)

    a, b, c = run(0), run(0), run(1)
    for k in TreeEnsemble.ARRAYS:
        np.testing.assert_array_equal(getattr(a.model, k), getattr(b.model, k), err_msg=k)
    np.testing.assert_array_equal(a.typical.centre, b.typical.centre)
    a.metrics.pop("training_seconds"), b.metrics.pop("training_seconds")
    assert a.metrics == b.metrics and a.calibration == b.calibration
    assert not (a.model.value.shape == c.model.value.shape and np.array_equal(a.model.value, c.model.value))
    # the real clips were learnt from (windows beside Penn's) and reported by source, never both sides
    cv = a.metrics["real_cv"]
    assert a.metrics["real_windows"] > 20 and a.model.classes[-1] == "other"
    assert sum(cv["fold_clips"]) == 3 and [row[0] for row in cv["clips"]] == ["squat_a.mp4", "squat_b.mp4", "still_c.mp4"]
    folds = {row[0]: row[3] for row in cv["clips"]}
    assert len(set(folds.values())) == 3  # three sources, three folds
    assert cv["idle_stretches"]["clips"] == 4  # the standing before and after each squat set (3 s each)


@needs_penn
def test_online_recognizer_locks_and_can_be_overridden():
    from pose_core.datasets.penn import clip_pose_frames, scan_dataset

    clip = max(scan_dataset(PENN, "jumping_jacks", split="test").clips, key=lambda c: c.nframes)
    frames = clip_pose_frames(clip)
    frames = frames + [f.with_timestamp(f.timestamp_s + frames[-1].timestamp_s + 1 / 30) for f in frames]
    online = OnlineRecognizer(lock_after=2, every_s=0.25)
    states = [online.update(f) for f in frames]
    assert states[0].exercise is None and not states[0].locked  # never decides on one frame
    assert states[-1].locked and states[-1].exercise == "jumping_jacks" and states[-1].source == "auto"
    online.override("squat")
    assert online.state.exercise == "squat" and online.state.source == "user"
    assert online.update(frames[0].with_timestamp(99.0)).exercise == "squat"  # stays on the user's choice
    online.reset()
    assert online.state.exercise is None and not online.state.locked
    with pytest.raises(KeyError):
        online.override("dance")


# ------------------------------------------------------------------------------------- real clips

# One clip of each exercise (the shortest, to keep this quick; `evaluate ../shared/data/videos --auto` runs all).
SAMPLE = ("squat_1.mp4", "pushup_4.mp4", "pullup_2.mp4", "situp_3.mp4", "jumping_jacks_1.mp4", "bench_press_22.mp4",
          "jump_rope_10.mp4")


@needs_videos
def test_auto_recognition_on_a_sample_of_the_real_clips():
    rows = {r["file"]: r["exercise"] for r in video_rows()}
    results = {f: recognize_video(VIDEOS / f, max_seconds=20) for f in SAMPLE}
    report = "\n".join(f"{f}: {rec.describe()}" for f, rec in results.items())
    assert all(rec.exercise == rows[f] for f, rec in results.items()), report
    assert sum(rec.sure for rec in results.values()) >= len(SAMPLE) - 1, report


@needs_recognition
def test_dips_are_not_named_as_sure():
    """Dips are none of the 8 exercises; they used to be named pull-up at 98-100%."""
    for f in ("dips_r01.mp4", "dips_r02.mp4"):
        rec = recognize_video(RECOGNITION / f)
        assert not rec.sure, f"{f}: {rec.describe()}"


@needs_recognition
def test_short_gym_clips_are_named_right():
    for f, ex in (("squat_r02.mp4", "squat"), ("pullup_r04.mp4", "pullup")):
        rec = recognize_video(RECOGNITION / f)
        assert rec.exercise == ex, f"{f}: {rec.describe()}"


def test_clip_with_nobody_cannot_tell(tmp_path):
    pytest.importorskip("mediapipe")
    from pose_core.media.writer import H264Writer

    path = tmp_path / "empty_room.mp4"
    rng = np.random.default_rng(0)
    with H264Writer(path, 320, 240, 25) as w:
        for i in range(50):  # 2 s of a plain wall with sensor noise and a slow light change
            img = np.full((240, 320, 3), 120 + i, np.uint8)
            img = np.clip(img + rng.integers(-6, 7, img.shape), 0, 255).astype(np.uint8)
            w.write(i / 25, img)
    seen = []
    r = recognize_video(path, progress=lambda done, total: seen.append((done, total)))
    assert isinstance(r, Recognition) and r.exercise is None and "no person" in r.reason
    assert r.frames == 50 and seen[-1][0] == 50


def test_recognize_video_first_seconds_only(tmp_path):
    pytest.importorskip("mediapipe")
    from pose_core.media.writer import H264Writer

    path = tmp_path / "wall.mp4"
    with H264Writer(path, 160, 120, 20) as w:
        for i in range(100):
            w.write(i / 20, np.full((120, 160, 3), 90, np.uint8))
    r = recognize_video(path, max_seconds=1.0)
    assert r.exercise is None and 20 <= r.frames <= 22


# ---------------------------------------------------------------------- recognition x counting

def _squat_set(reps: int = 4) -> list:
    from helpers import squat_knee_schedule, squat_pose

    return [squat_pose(squat_knee_schedule(i / 30, reps=reps), t=i / 30) for i in range(int((reps * 2 + 2) * 30))]


def test_cross_check_gives_way_to_the_close_candidate_that_repeats():
    from pose_core.core.rules import load_rules
    from pose_core.run.crosscheck import cross_check

    rules, poses = load_rules(), _squat_set()
    # A squat set wrongly recognised as clean and jerk: no clean and jerk repeats, the squat does.
    xc = cross_check("clean_and_jerk", [("clean_and_jerk", 0.75), ("squat", 0.2), ("pullup", 0.05)], poses, rules)
    assert xc.counts == {"clean_and_jerk": 0, "squat": 4}  # (pull-up below the candidate floor: not counted)
    assert xc.switch_to == "squat" and "repeats as squat (4 reps" in xc.note
    # Right the first time: the recognition stands.
    xc = cross_check("squat", [("squat", 0.8), ("clean_and_jerk", 0.2)], poses, rules)
    assert xc.switch_to is None and xc.counts["squat"] == 4 and xc.note == ""
    # Cannot tell: nothing is switched (the counts say which candidate repeats, for the buttons).
    xc = cross_check(None, [("clean_and_jerk", 0.45), ("squat", 0.4)], poses, rules)
    assert xc.switch_to is None and xc.counts == {"clean_and_jerk": 0, "squat": 4}


def test_temperature_softens_and_keeps_the_ranking():
    from pose_core.recognition.decision import temper

    p = np.array([0.97, 0.02, 0.01])
    soft = temper(p, 2.0)
    assert soft.argmax() == 0 and soft[0] < 0.9 and abs(soft.sum() - 1) < 1e-12
    np.testing.assert_allclose(temper(p, 1.0), p)
    assert temper(p, 0.5)[0] > p[0]  # < 1 sharpens


def test_committed_calibration_is_sane_and_its_report_holds_the_bar():
    """model.json's calibration was fitted on real clips the model did not train on; metrics.json's real_cv
    answers every real clip with a model and a calibration that never saw its source."""
    from pose_core.recognition.model import read_calibration

    cal = read_calibration(DEFAULT_MODEL_DIR)
    assert cal.temperature >= 1.0 and cal.min_activity == 0.5
    assert 0 < cal.unsure_atypical <= cal.none_atypical < 100 and cal.unsure_confidence < 0.7
    rec = ExerciseRecognizer.load()
    assert rec.calibration == cal and rec.typical is not None and rec.model.classes[-1] == "other"
    cv = json.loads((DEFAULT_MODEL_DIR / "metrics.json").read_text())["real_cv"]
    sources = [set(v) for v in cv["sources"].values()]
    assert all(not (a & b) for i, a in enumerate(sources) for b in sources[i + 1:])  # a source in one fold only
    assert sum(cv["fold_clips"]) == len(cv["clips"]) >= 180
    sure = [row for row in cv["clips"] if row[4] is not None and row[5] >= 0.7]
    assert sum(row[2] == row[4] for row in sure) >= 0.95 * len(sure)  # sure means right on unseen sources
    dips = [row for row in cv["clips"] if row[2] == "none"]
    assert len(dips) == 2 and all(row[7] for row in dips)  # not named as sure
    assert cv["all"]["right"] >= 0.85 * len(cv["clips"])


def test_invalid_calibration_is_refused(tmp_path):
    import shutil

    from pose_core.recognition.model import read_calibration

    for f in ("model.json", "model.npz"):
        shutil.copy(DEFAULT_MODEL_DIR / f, tmp_path / f)
    meta = json.loads((tmp_path / "model.json").read_text())
    for bad, match in (({"temperature": -1}, "temperature"), ({"min_activity": 2}, "min_activity"),
                       ({"unsure_atypical": 9, "none_atypical": 3}, "unsure_atypical"), ({"temperature": "x"}, "number")):
        meta["calibration"] = bad
        (tmp_path / "model.json").write_text(json.dumps(meta))
        with pytest.raises(ValueError, match=match):
            read_calibration(tmp_path)
        with pytest.raises(ValueError):
            ExerciseRecognizer.load(tmp_path)


def test_fit_calibration_softens_an_overconfident_model_and_bounds_the_unusual():
    from pose_core.recognition.decision import Evidence
    from pose_core.datasets.train_calibration import fit_calibration, fit_temperature

    rng = np.random.default_rng(0)
    # A model that says 99% but is right 70% of the time needs softening (temperature > 1) ...
    y = rng.integers(0, 4, 400)
    pred = np.where(rng.random(400) < 0.7, y, (y + 1) % 4)
    p = np.full((400, 4), 0.01 / 3)
    p[np.arange(400), pred] = 0.99
    assert fit_temperature(p, y) > 2.0
    # ... a model that is always right at 60% would be sharpened, but real footage is never judged easier
    q = np.full((400, 4), 0.4 / 3)
    q[np.arange(400), y] = 0.6
    assert fit_temperature(q, y) < 1.0
    names = ("a", "b", "c", "d")
    evs = [Evidence(names, q[i], 1.0, float(rng.uniform(0, 4)), 5) for i in range(400)]
    cal = fit_calibration(evs, [names[i] for i in y])
    assert cal.temperature == 1.0 and cal.min_activity == 0.5
    assert 3.5 < cal.unsure_atypical < 4.0 and 11.0 < cal.none_atypical <= 12.0  # the 95%, three times the 99%


# ------------------------------------------------------------------------------ not one of these

def _model_favouring(classes, favourite: str) -> TreeEnsemble:
    empty = np.zeros(0)
    baseline = np.array([3.0 if c == favourite else 0.0 for c in classes])
    return TreeEnsemble(classes=classes, baseline=baseline, tree_start=np.zeros(0, int), tree_class=np.zeros(0, int),
                        feature=empty.astype(int), threshold=empty, missing_left=empty.astype(bool),
                        left=empty.astype(int), right=empty.astype(int), is_leaf=empty.astype(bool), value=empty, depth=0)


def test_none_of_these_is_an_answer_of_its_own():
    from pose_core.recognition import Calibration

    classes = ("squat", "pushup", "other")
    rec = ExerciseRecognizer(_model_favouring(classes, "other"), calibration=Calibration(min_activity=0.5))
    r = rec.predict(squat_frames())
    assert r.exercise is None and r.none_of_these and r.outcome == "none_of_these" and r.cannot_tell
    assert r.describe().startswith("not one of the exercises: only") and r.top  # the closest candidates are kept
    assert rec.classes == ("squat", "pushup")  # OTHER is never a name
    again = Recognition(**{k: (tuple(tuple(c) for c in v) if k == "top" else v) for k, v in r.to_dict().items()})
    assert again.none_of_these and again.reason == r.reason and again.top[0][0] == r.top[0][0]  # via status.json
    # Cannot tell is another answer: too little to see
    short = rec.predict(squat_frames(MIN_POSE_FRAMES - 1))
    assert short.outcome == "cannot_tell" and not short.none_of_these
    # A model whose windows show the exercise names it
    named = ExerciseRecognizer(_model_favouring(classes, "squat"), calibration=Calibration(min_activity=0.5))
    assert named.predict(squat_frames()).exercise == "squat"


def test_pipeline_says_not_one_of_the_exercises():
    from pose_core.core.rules import load_rules
    from pose_core.recognition import Calibration
    from pose_core.run import pipeline

    rec = ExerciseRecognizer(_model_favouring(("squat", "pushup", "other"), "other"),
                             calibration=Calibration(min_activity=0.5)).predict(squat_frames())
    with pytest.raises(pipeline.CannotTellError, match="not one of the exercises") as e:
        pipeline.decide_exercise("clip.mp4", rec, squat_frames(), load_rules())
    assert e.value.recognition.none_of_these


def _standing(seconds: float = 8.0, fps: float = 30.0) -> list[PoseFrame]:
    """A person standing still in profile: the squat stick figure upright, with a tracker's jitter."""
    from helpers import squat_pose

    rng = np.random.default_rng(1)
    out = []
    for i in range(int(seconds * fps)):
        f = squat_pose(175.0, t=i / fps)
        out.append(PoseFrame(f.landmarks + rng.normal(0, 0.002, f.landmarks.shape), f.visibility, f.image_size,
                             f.timestamp_s))
    return out


def test_a_person_standing_still_is_not_an_exercise():
    r = ExerciseRecognizer.load().predict(_standing())
    assert r.exercise is None and r.none_of_these, r.describe()


# ---------------------------------------------------------------------- recognition x counting (timing)

@needs_videos
def test_cross_check_doubts_a_clean_and_jerk_that_repeats_every_few_seconds():
    """Real poses of a pull-up set (4 reps in 10 s): named clean and jerk (its rule counts the arms going up
    4 times), the timing contradicts the name: not sure, with pull-up as the alternative."""
    from pose_core.core.rules import load_rules
    from pose_core.recognition import video_poses
    from pose_core.run.crosscheck import CONTRADICTED_CONFIDENCE, checked

    rules, poses = load_rules(), video_poses(VIDEOS / "pullup_20.mp4")
    named = Recognition("clean_and_jerk", 0.9, (("clean_and_jerk", 0.9), ("pullup", 0.1)), outcome="exercise")
    final, xc = checked(named, poses, rules)
    assert xc.counts["clean_and_jerk"] >= 3 and "a minute" in xc.contradiction and xc.alternative == "pullup"
    assert final.exercise == "clean_and_jerk" and final.confidence == CONTRADICTED_CONFIDENCE and not final.sure
    assert "Not sure this is clean and jerk" in xc.note and "It may be pullup" in xc.note
    # The right name is left alone
    right = Recognition("pullup", 0.9, (("pullup", 0.9), ("clean_and_jerk", 0.1)), outcome="exercise")
    final, xc = checked(right, poses, rules)
    assert final == right and xc.contradiction == ""


def test_cross_check_doubts_reps_timed_unlike_the_exercise():
    """A sit-up whose reps last 2 s each is plausible; the same movement 'repeating' every 12 s is not."""
    from pose_core.core.rules import load_rules
    from pose_core.run.crosscheck import timing_misfit
    from pose_core.core.types import RepEvent, Verdict

    c = load_rules()["situp"].counting
    reps = lambda dur, every, n: [RepEvent(i + 1, i * every, i * every + dur, i * every + dur / 2, 0, 1, Verdict.CORRECT)
                                  for i in range(n)]  # noqa: E731
    assert timing_misfit(reps(2.0, 2.5, 4), c, "situp") == ""
    assert "its reps take 12.0 s" in timing_misfit(reps(12.0, 13.0, 2), c, "situp")
    assert "faster than a situp set goes" in timing_misfit(reps(0.8, 0.85, 8), c, "situp")


def test_cross_check_doubts_a_name_without_a_single_rep():
    from pose_core.core.rules import load_rules
    from pose_core.run.crosscheck import checked

    named = Recognition("pullup", 0.95, (("pullup", 0.95),), outcome="exercise")
    final, xc = checked(named, _standing(), load_rules())
    assert xc.counts == {"pullup": 0} and "no complete pullup repetition" in xc.contradiction and not final.sure


# ------------------------------------------------------------------- evaluate on a folder of labels

@needs_recognition
def test_evaluate_reports_recognition_on_a_folder_of_labels(tmp_path):
    import subprocess
    import sys

    folder = tmp_path / "labelled"
    folder.mkdir()
    picked = (("dips_r01.mp4", "none"), ("squat_r02.mp4", "squat"), ("pullup_r04.mp4", "pullup"))
    for f, _ in picked:
        (folder / f).symlink_to(RECOGNITION / f)
    (folder / "labels.csv").write_text("file,exercise\n" + "".join(f"{f},{ex}\n" for f, ex in picked))
    cmd = [sys.executable, "-m", "pose_core", "evaluate", str(folder), "--json", "--quiet", "--workers", "1",
           "--cache", str(tmp_path / "cache")]
    p = subprocess.run(cmd + ["--auto"], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    out = json.loads(p.stdout.strip().splitlines()[-1])
    by = {c["file"]: c for c in out["clips"]}
    assert set(out["per_class"]) == {"none", "squat", "pullup"} and out["overall"]["clips"] == 3
    assert by["dips_r01.mp4"]["right"] and not by["dips_r01.mp4"]["confident_miss"]
    assert by["squat_r02.mp4"]["named"] == "squat" and by["pullup_r04.mp4"]["named"] == "pullup"
    assert out["overall"]["confident_misses"] == 0
    bands = [b["band"] for b in out["reliability"]]
    assert bands[:3] == ["sure, 90-100%", "sure, 70-90%", "not sure, 50-70%"] and "not one of these" in bands
    assert sum(b["clips"] for b in out["reliability"]) == 3
    # Labels without counts and without form labels: recognition is all there is to report, --auto or not;
    # the table names the confident misses and the reliability bands (the poses now come from the cache).
    p = subprocess.run([sys.executable, "-m", "pose_core", "evaluate", str(folder), "--quiet", "--cache",
                        str(tmp_path / "cache")], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "confident misses" in p.stdout and "sure, 90-100%" in p.stdout and "dips_r01.mp4" in p.stdout
