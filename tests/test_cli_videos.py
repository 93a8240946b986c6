"""The CLI on the 14 real clips: counts against the hand counts, weak form labels, and the outputs."""
import csv
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from helpers import VIDEOS, needs_videos, run_evaluate, video_rows
from pose_core.media.video import probe

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args, cwd=ROOT, timeout=600):
    return subprocess.run([sys.executable, "-m", "pose_core", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def evaluation(tmp_path_factory, shared_pose_cache):
    """`python -m pose_core evaluate` on the shared clips (both cores), keeping each clip's reps.json and
    summary.json; the poses are kept in the session's pose cache for the sweeps that follow."""
    out = tmp_path_factory.mktemp("evaluate")
    p = run_cli("evaluate", VIDEOS, "--json", "--out", out, "--cache", shared_pose_cache, timeout=2400)
    assert p.returncode == 0, p.stderr[-2000:]
    return json.loads(p.stdout.strip().splitlines()[-1]), out


def clip_folder(folder: Path, *names: str) -> list[dict]:
    """A videos.csv folder of some shared clips (links to them, their manifest rows); returns the rows."""
    rows = [r for r in video_rows() if r["file"] in names]
    for r in rows:
        (folder / r["file"]).symlink_to(VIDEOS / r["file"])
    with open(folder / "videos.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return rows


def _table(clips) -> str:
    return "\n".join(f"{c['file']:24s} expected {c['expected']:2d} counted {c['counted']} "
                      f"({c['correct']}/{c['incorrect']}, {c['partial']} partial, view {c['view']}) {c['error']}"
                      for c in clips)


@needs_videos
def test_counts_match_hand_counts(evaluation):
    report, _ = evaluation
    clips = report["clips"]
    print("\n" + _table(clips))
    assert len(clips) == len(video_rows()) >= 24
    assert all(not c["error"] for c in clips), _table(clips)
    # The bar: all but two exact, every clip within one (5% for sets over 20 reps).
    assert report["overall"]["exact"] >= len(clips) - 2, _table(clips)
    assert report["overall"]["within_one"] == len(clips), _table(clips)
    assert report["overall"]["mae"] <= 0.1
    assert set(report["per_exercise"]) == {c["exercise"] for c in clips}


@needs_videos
def test_evaluate_prints_a_table_per_clip_and_per_exercise(tmp_path):
    # A two-clip folder (links to the shared clips), so the table form is checked without a second full run.
    clip_folder(tmp_path, "squat_1.mp4", "situp_3.mp4")
    p = run_cli("evaluate", tmp_path, "--quiet")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert any(line.startswith("squat_1.mp4") and " 3 " in line for line in lines)
    assert any(line.startswith("overall") and line.split()[1:4] == ["2", "2", "2"] for line in lines), p.stdout


def test_evaluate_refuses_a_folder_without_a_manifest(tmp_path):
    p = run_cli("evaluate", tmp_path)
    assert p.returncode == 2 and "no videos.csv" in p.stderr
    (tmp_path / "videos.csv").write_text("file,exercise,reps_complete\nclip.mp4,squat,three\n")
    p = run_cli("evaluate", tmp_path)
    assert p.returncode == 2 and "reps_complete must be a whole number" in p.stderr


@needs_videos
def test_weak_form_labels_come_out_as_labelled(evaluation):
    report, out = evaluation
    seen = 0
    for row in video_rows():
        label = row["form_label"].split(" ")[0] if row["form_label"] else ""
        if not label:
            continue
        reps = json.loads((out / Path(row["file"]).stem / "reps.json").read_text())["reps"]
        assert reps, row["file"]
        if label == "incorrect":
            bad = [r for r in reps if r["verdict"] == "incorrect"]
            assert bad and all(r["reasons"] for r in bad), f"{row['file']} should have an incorrect rep with reasons"
        else:
            assert all(r["verdict"] == "correct" for r in reps), f"{row['file']}: {reps}"
        seen += 1
    assert seen == 4


@needs_videos
def test_no_rep_is_faulted_for_a_check_its_view_cannot_judge(evaluation):
    report, out = evaluation
    from pose_core.core.rules import load_rules

    rules = load_rules()
    for c in report["clips"]:
        reps = json.loads((out / Path(c["file"]).stem / "reps.json").read_text())["reps"]
        for r in reps:
            # Each rep is judged from its own shot's view: it is the clip's unless a camera cut changed it.
            assert r["view"] == c["view"] or c["cuts"], (c["file"], r["view"], c["view"])
            for check, rule_check in zip(r["checks"], rules[c["exercise"]].rep_checks):
                if r["view"] not in rule_check.views:
                    assert check["status"] == "not_judged", (c["file"], check)
    head_on = next(c for c in report["clips"] if c["file"] == "pushup_13.mp4")
    assert head_on["view"] == "front" and head_on["incorrect"] == 0  # depth and body line hidden head-on


@needs_videos
def test_camera_cuts_and_uncertain_reps_are_in_the_summary(evaluation):
    # bench_press_20 and bench_press_12 each cut to another camera angle mid-set (videos.csv notes: 9.53 s and
    # ~8.45 s); the counts stay right and the rep at each cut is marked uncertain with the cut's time.
    report, out = evaluation
    for name, cut in (("bench_press_20", 9.53), ("bench_press_12", 8.5)):
        summary = json.loads((out / name / "summary.json").read_text())
        assert any(abs(c - cut) < 0.2 for c in summary["cuts"]), summary["cuts"]
        assert any("camera cut at" in u["reason"] for u in summary["uncertain_reps"]), summary["uncertain_reps"]
        reps = json.loads((out / name / "reps.json").read_text())["reps"]
        assert [r["index"] for r in reps if r["uncertain"]] == [u["rep"] for u in summary["uncertain_reps"]]
    # A clean single-shot clip has no cut and nothing uncertain.
    clean = json.loads((out / "squat_1" / "summary.json").read_text())
    assert clean["cuts"] == [] and clean["uncertain_reps"] == [] and clean["possible_reps"] == []


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """The full CLI (annotated video included) on two clips: outputs and orientation."""
    out = tmp_path_factory.mktemp("clips")
    rows = [r for r in video_rows() if r["file"] in ("squat_1.mp4", "pullup_1.mp4")]

    def one(row):
        d = out / Path(row["file"]).stem
        p = run_cli("analyze", VIDEOS / row["file"], "--exercise", row["exercise"], "--out", d, "--quiet")
        return row, d, p

    with ThreadPoolExecutor(max_workers=2) as ex:  # one MediaPipe per core
        return list(ex.map(one, rows))


@needs_videos
def test_summary_line_and_outputs_are_complete(results):
    row, d, p = next(r for r in results if r[0]["file"] == "squat_1.mp4")
    summary = json.loads(p.stdout.strip().splitlines()[-1])
    for key in ("exercise", "reps", "reps_correct", "reps_incorrect", "partial_reps", "frames",
                "frames_with_pose", "duration_s", "processing_fps", "view", "notes", "avg_rep_s", "avg_down_s",
                "avg_up_s", "avg_range_of_motion", "velocity_loss_pct"):
        assert key in summary
    assert summary["view"] == "side" and summary["notes"] == []
    # "Avg rep time" is the movement (pose_core/core/tempo.py): down + up, without the pause standing between
    # reps (a squat every ~2.9 s here, bottoms at ~2.6, 5.6, 8.4 s).
    assert 1.0 < summary["avg_rep_s"] < 2.9
    assert summary["avg_rep_s"] == pytest.approx(summary["avg_down_s"] + summary["avg_up_s"], abs=0.02)
    # Lifting times per rep in reps.json, and the set's slowdown in summary.json (3 reps: a number).
    reps = json.loads((d / "reps.json").read_text())["reps"]
    assert all(r["concentric_s"] == pytest.approx(r["tempo"]["up_s"], abs=1e-3) for r in reps)  # squat: from the bottom
    assert 0 <= summary["velocity_loss_pct"] < 100
    assert summary["frames"] == int(row["frames"])
    assert 0 < summary["frames_with_pose"] <= summary["frames"]
    assert abs(summary["duration_s"] - float(row["duration_s"])) < 0.2
    assert sorted(x.name for x in d.iterdir()) == ["annotated.mp4", "frames.csv", "reps.json", "summary.json"]
    assert json.loads((d / "summary.json").read_text())["reps"] == summary["reps"]
    info = probe(d / "annotated.mp4")
    assert info.codec == "h264"  # browsers play H.264, not MPEG-4 Part 2
    assert abs(info.frame_count - summary["frames"]) <= 1
    with open(d / "frames.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == summary["frames"]
    assert {"time_s", "phase", "label", "reason", "knee", "nose_x", "left_knee_v"} <= set(rows[0])
    assert {r["label"] for r in rows} <= {"correct", "incorrect", "unknown"}
    times = [float(r["time_s"]) for r in rows]
    assert times == sorted(times)
    reps = json.loads((d / "reps.json").read_text())["reps"]
    assert len(reps) == summary["reps"]
    for r in reps:
        assert r["verdict"] in ("correct", "incorrect")
        assert r["start_s"] < r["peak_s"] < r["end_s"]
        assert r["tempo"]["down_s"] > 0 and r["tempo"]["up_s"] > 0
        assert r["range_of_motion"] > 60 and r["view"] == "side"
        # From the side every check is judged but the knees' width (front/rear only) and the 3D depth (front
        # only): not judged, not a fault.
        assert {c["angle"]: c["status"] for c in r["checks"]} == {"knee": "pass", "torso_lean": "pass",
                                                                   "knee_width": "not_judged", "knee_3d": "not_judged"}
        assert r["form_judged"]


@needs_videos
def test_portrait_video_keeps_its_orientation(results):
    row, d, p = next(r for r in results if r[0]["file"] == "pullup_1.mp4")
    info = probe(d / "annotated.mp4")
    assert (info.width, info.height) == (360, 640)


@pytest.fixture(scope="module")
def auto_evaluation(evaluation, shared_pose_cache):
    return run_evaluate(VIDEOS, "--auto", "--cache", str(shared_pose_cache))  # (the poses of `evaluation`)


@needs_videos
def test_auto_recognises_and_then_counts(auto_evaluation):
    clips = auto_evaluation["clips"]
    table = "\n".join(f"{c['file']:24s} {c['exercise']:14s} -> {c['analysed_as']} {c['confidence']} "
                      f"counted {c['counted']} of {c['expected']} {c['error']}" for c in clips)
    print("\n" + table)
    right = [c for c in clips if c["recognised"]]
    for c in right:
        assert 0.5 <= c["confidence"] <= 1.0
        assert c["within_one"], table
    # The recognition issue's bar (issue 22): at least 32 of the 34 named right, none named wrong as sure.
    assert len(right) >= len(clips) - 2, table
    assert not [c for c in clips if c["analysed_as"] and not c["recognised"] and c["confidence"] >= 0.7], table
    bands = {b["band"]: b for b in auto_evaluation["reliability"]}
    assert bands["sure, 90-100%"]["wrong"] == bands["sure, 70-90%"]["wrong"] == 0


def test_auto_on_a_clip_with_nobody_says_cannot_tell(tmp_path):
    from media import write_video

    v = write_video(tmp_path / "nobody.mp4", frames=45)
    p = run_cli("analyze", v, "--exercise", "auto", "--out", tmp_path / "o", "--quiet")
    assert p.returncode == 2
    assert "cannot tell which exercise" in p.stderr
    answer = json.loads(p.stdout.strip().splitlines()[-1])
    assert answer["exercise"] is None and answer["reason"]
    assert not (tmp_path / "o").exists()


class ReplayEstimator:
    """Stands in for MediaPipe on the live path: returns the pose the file analysis saw at that time (from
    the session's pose cache), so only the live path differs, not the model."""

    def __init__(self, observations):
        self.poses = {round(o.t, 4): o.pose for o in observations}

    def process(self, img, t):
        return self.poses.get(round(t, 4))


@needs_videos
@pytest.mark.parametrize("every", [1, 2], ids=["all frames", "every 2nd frame (a busy live page)"])
def test_live_path_counts_within_one_of_the_file(evaluation, shared_pose_cache, every):
    import numpy as np

    from pose_core.core.rules import load_rules
    from pose_core.run.live import LiveSession
    from pose_core.store.pose_cache import PoseCache

    report, _ = evaluation
    rules = load_rules()
    cache = PoseCache(shared_pose_cache)
    table, off = [], []
    for c in report["clips"]:
        replay = ReplayEstimator(cache.observations(VIDEOS / c["file"]))
        s = LiveSession(rules[c["exercise"]], rules.defaults, estimator_factory=lambda r=replay: r, draw=False)
        img = np.zeros((48, 64, 3), np.uint8)
        for t in sorted(replay.poses)[::every]:
            s.process_frame(img, t)
        live = s.snapshot().rep_count
        table.append(f"{c['file']:24s} file {c['counted']:2d} live {live:2d}")
        if abs(live - c["counted"]) > 1:
            off.append(c["file"])
    print("\n" + "\n".join(table))
    # Every frame: within one on every clip. Half the frames (a live page dropping frames): skipping at
    # ~2.5 jumps a second sampled at 15 fps may lose more, so one clip may miss that bar.
    assert len(off) <= (0 if every == 1 else 1), "\n".join(table)


@needs_videos
def test_a_zero_is_explained_with_the_amplitude_and_the_likely_exercise(tmp_path):
    p = run_cli("analyze", VIDEOS / "jumping_jacks_1.mp4", "-e", "situp", "--no-video", "--quiet", "--out", tmp_path)
    assert p.returncode == 0, p.stderr
    s = json.loads(p.stdout.strip().splitlines()[-1])
    assert s["reps"] == 0
    assert any("torso incline moved" in n and "needs at least 15 deg" in n for n in s["notes"]), s["notes"]
    assert any("looks more like jumping jacks" in n for n in s["notes"]), s["notes"]


def test_evaluate_chunked_runs_each_clip_as_analyze_does_one_at_a_time(tmp_path, monkeypatch):
    """--chunked: each clip with parallel=None (a long clip on time chunks, as `analyze` and the dashboard
    run it), one clip at a time; without it, parallel=False and the clips side by side. Not with a pose cache."""
    from pose_core.run import evaluate

    (tmp_path / "videos.csv").write_text("file,exercise,reps_complete\na.mp4,squat,1\nb.mp4,squat,2\n")
    calls = []
    monkeypatch.setattr(evaluate, "map_in_order", lambda fn, args, workers, progress=None:
                        calls.append((workers, [a[5] for a in args])) or [])
    evaluate.evaluate_folder(tmp_path, chunked=True)
    evaluate.evaluate_folder(tmp_path)
    assert calls == [(1, [None, None]), (2, [False, False])]
    with pytest.raises(evaluate.EvaluateError, match="pose cache"):
        evaluate.evaluate_folder(tmp_path, chunked=True, cache=tmp_path / "cache")
    labels = tmp_path / "form"  # a form folder (labels.csv with a label column): --chunked is refused, said why
    labels.mkdir()
    (labels / "labels.csv").write_text("file,exercise,label\na.mp4,pushup,correct\n")
    p = run_cli("evaluate", labels, "--chunked")
    assert p.returncode == 2 and "--chunked is for counts" in p.stderr, p.stderr


@needs_videos
def test_evaluate_chunked_counts_a_long_clip_through_the_chunks(tmp_path):
    """A real long clip (squat_1, 10.7 s: two chunks) counted through the chunked path by the command."""
    from pose_core.run.parallel import worthwhile

    [row] = clip_folder(tmp_path, "squat_1.mp4")
    assert worthwhile(probe(VIDEOS / row["file"]), 2, 8.0)  # (it does take the chunked path)
    p = run_cli("evaluate", tmp_path, "--chunked", "--json", "--quiet", timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    clip = json.loads(p.stdout.strip().splitlines()[-1])["clips"][0]
    assert (clip["counted"], clip["error"]) == (int(row["reps_complete"]), ""), clip
