"""A person's corrections to a count (confirm, remove, add a missed rep) and the labelled clip they make:
kept beside the analysis, never changing it; the exported row is what `gympose evaluate` reads."""
import json
from pathlib import Path

import pytest

from pose_core.core.session import Summary
from pose_core.core.types import RepEvent
from pose_core.store.corrections import (CORRECTIONS_JSON, CorrectionError, Corrections, add_rep, confirm_rep,
                                         export_labelled_clip, labelled_row, load_corrections, remove_rep,
                                         save_corrections, undo_added)



def reps(n=4, doubt_at=(3,)):
    return [RepEvent(index=i, start_s=2.0 * i, end_s=2.0 * i + 1.5, peak_s=2.0 * i + 0.7, primary_min=80.0,
                     primary_max=170.0, verdict="correct", doubt="camera cut at 6.0 s" if i in doubt_at else "")
            for i in range(1, n + 1)]


def test_remove_confirm_and_add_give_the_corrected_count():
    r = reps()
    c = Corrections()
    assert c.count(r) == 4 and c.empty
    c = remove_rep(c, r, 3)
    assert c.count(r) == 3 and c.status(r[2]) == "removed"
    c = confirm_rep(c, r, 3)  # changed one's mind: confirmed undoes the removal
    assert c.count(r) == 4 and c.status(r[2]) == "confirmed" and c.removed == ()
    c = add_rep(c, 9.4, duration_s=10.0)
    assert c.count(r) == 5 and c.added == (9.4,)
    assert undo_added(c, 9.4).count(r) == 4


@pytest.mark.parametrize("make", [lambda c, r: remove_rep(c, r, 9), lambda c, r: add_rep(c, 25.0, 10.0),
                                  lambda c, r: add_rep(c, float("nan"), 10.0)])
def test_a_correction_that_cannot_apply_is_refused_with_a_reason(make):
    with pytest.raises(CorrectionError):
        make(Corrections(), reps())


def test_corrections_are_kept_beside_the_analysis_and_a_damaged_file_is_said(tmp_path):
    save_corrections(tmp_path, Corrections(removed=(2,), added=(4.25,)))
    assert json.loads((tmp_path / CORRECTIONS_JSON).read_text()) == {"removed": [2], "confirmed": [], "added": [4.25]}
    assert load_corrections(tmp_path) == Corrections(removed=(2,), added=(4.25,))
    save_corrections(tmp_path, Corrections())  # nothing corrected: no file
    assert not (tmp_path / CORRECTIONS_JSON).exists() and load_corrections(tmp_path).empty
    for bad in ("{not json", '{"removed": ["x"]}', '{"added": [-1]}', "[]"):
        (tmp_path / CORRECTIONS_JSON).write_text(bad)
        with pytest.raises(CorrectionError):
            load_corrections(tmp_path)


def test_the_labelled_clip_is_a_videos_csv_row_that_evaluate_reads(tmp_path):
    from pose_core.run.evaluate import read_manifest

    video = tmp_path / "src" / "my set [1].mp4"
    video.parent.mkdir()
    video.write_bytes(b"\x00" * 1000)
    summary = Summary(exercise="squat", reps=4, partial_reps=1, view="front", duration_s=10.0, width=640, height=360)
    c = add_rep(remove_rep(Corrections(), reps(), 3), 9.4, 10.0)
    row = labelled_row(summary, reps(), c, video.name)
    assert row["reps_complete"] == 4 and row["reps_partial"] == 1 and row["exercise"] == "squat"
    assert "GymPose counted 4" in row["notes"] and "removed rep 3" in row["notes"] and "9.4 s" in row["notes"]
    dest = tmp_path / "labelled"
    clip = export_labelled_clip(video, row, dest)
    assert clip.parent == dest and clip.read_bytes() == video.read_bytes() and "/" not in clip.name
    rows = read_manifest(dest)
    assert [(r["file"], r["exercise"], r["reps_complete"]) for r in rows] == [(clip.name, "squat", "4")]
    # The same clip labelled again replaces its row; another clip adds one.
    export_labelled_clip(video, {**row, "reps_complete": 5}, dest)
    other = tmp_path / "src" / "b.mp4"
    other.write_bytes(b"\x01" * 10)
    export_labelled_clip(other, {**row, "file": "b.mp4"}, dest)
    rows = read_manifest(dest)
    assert [(r["file"], r["reps_complete"]) for r in rows] == [(clip.name, "5"), ("b.mp4", "4")]


def test_a_damaged_list_of_labelled_clips_is_not_overwritten(tmp_path):
    dest = tmp_path / "labelled"
    dest.mkdir()
    (dest / "videos.csv").write_bytes(b"\xff\xfe\x00bad")
    video = tmp_path / "a.mp4"
    video.write_bytes(b"x")
    row = labelled_row(Summary(exercise="squat"), reps(1, ()), Corrections(), "a.mp4")
    with pytest.raises(CorrectionError):
        export_labelled_clip(video, row, dest)
    assert (dest / "videos.csv").read_bytes() == b"\xff\xfe\x00bad"
