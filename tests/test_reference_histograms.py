"""The Penn Action reference histograms shipped with GymPose (issue 13 item 13): the file, its citation,
the binning, and that one command regenerates it from the labels (here from a synthetic Penn-layout set)."""

from __future__ import annotations

import json

import numpy as np
from penn_fixture import make_penn_dataset

from pose_core.core.rules import load_rules
from pose_core.datasets.penn import GYM_CLASSES
from pose_core.datasets.reference_histograms import (BINS, CITATION, REFERENCE_FILE, bin_edges, histogram,
                                                    load_reference, main, reference_counts)


def test_histogram_bins_values_and_leaves_out_what_is_off_the_axis():
    counts = histogram([0.0, 1.9, 2.0, 179.9, 180.0, -1.0, float("nan")], lo=0.0, width=2.0)
    assert len(counts) == BINS and sum(counts) == 4
    assert counts[0] == 2 and counts[1] == 1 and counts[-1] == 1


def test_the_shipped_file_is_small_cited_and_covers_every_gym_exercise():
    assert REFERENCE_FILE.stat().st_size < 100_000  # counts only: no frames, no joints
    doc = load_reference()
    assert doc is not None and doc["citation"] == CITATION and "ICCV 2013" in doc["citation"]
    assert "reference_histograms" in doc["regenerate"]
    rules = load_rules()
    assert set(doc["exercises"]) == set(GYM_CLASSES)
    for ex in GYM_CLASSES:
        rule = rules[ex]
        df = reference_counts(rule, rule.primary_angle, doc)
        assert df is not None and df["count"].sum() > 500, ex  # hundreds of frames per exercise at least
        assert set(df["phase"]) <= {"rest", "transition", "peak"}
        lo, width = bin_edges(rule, rule.primary_angle)
        assert np.allclose((df["lo"] - lo) / width, np.round((df["lo"] - lo) / width))  # on the page's bins
    # A squat's knees: standing straight (rest) sits far above the bottom of the rep (peak).
    knee = reference_counts(rules["squat"], "knee", doc)
    mean = {ph: np.average((g["lo"] + g["hi"]) / 2, weights=g["count"]) for ph, g in knee.groupby("phase")}
    assert mean["rest"] > 150 and mean["peak"] < 120


def test_no_reference_for_an_angle_whose_axis_a_rules_file_changed():
    import dataclasses

    rules = load_rules()
    rule = rules["squat"]
    assert reference_counts(rule, "no_such_angle") is None
    doc = json.loads(REFERENCE_FILE.read_text())
    doc["exercises"]["squat"]["knee"]["width"] = 3.0
    assert reference_counts(rule, "knee", doc) is None  # bins that would not line up are not shown
    assert reference_counts(dataclasses.replace(rule, name="not_in_penn"), "knee") is None


def test_one_command_regenerates_it_from_the_labels(tmp_path, capsys):
    root = make_penn_dataset(tmp_path / "penn")
    out = tmp_path / "ref.json"
    assert main(["--penn", str(root), "--out", str(out)]) == 0
    doc = load_reference(out)
    assert doc is not None and doc["citation"] == CITATION
    from pose_core.datasets.penn_labels import labelled_frames

    frames = labelled_frames(root, load_rules(), ("squat",))
    train = frames[(frames["split"] == "train") & frames["phase"].isin(["rest", "transition", "peak"])]
    assert sum(sum(c) for c in doc["exercises"]["squat"]["knee"]["counts"].values()) == train["knee"].notna().sum() > 0
    assert set(frames["split"]) == {"train", "test"}  # the test split exists and was left out
    assert main(["--penn", str(tmp_path / "nowhere"), "--out", str(out)]) == 2
