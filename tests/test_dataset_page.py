"""The Penn Action dataset page: the library behind it (folder confinement, filters, summary, frame
drawing), the page with AppTest (filters, frame slider, folder messages) on the synthetic fixture and on
the real labels, and the page in a real headless Chromium (screenshot test-output/screenshots/dataset.png)."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest

from dashboard.common import plain
from browser_utils import CHROMIUM, VIEWPORT, StreamlitServer, browser, screenshot, wait_for_app, wait_idle
from helpers import needs_penn
from penn_fixture import HEIGHT, WIDTH, make_penn_dataset

from pose_core.core.rules import load_rules
from pose_core.datasets.dataset_view import (ALL, ANY_LABEL, DatasetFolderError, class_summary, clip_label_counts,
                                             clip_table, filter_clips, frame_view, labelled_by_class, open_clip,
                                             resolve_dataset_folder)
from pose_core.datasets.penn import load_clip
from pose_core.datasets.penn_labels import label_clip, label_summary
from pose_core.store.settings import PENN_DIR_ENV

APP = str(Path(__file__).resolve().parent.parent / "dashboard" / "app.py")
PAGE = "views/dataset.py"
TITLE = "Penn Action dataset"


@pytest.fixture
def synth(tmp_path, monkeypatch, workspace) -> Path:  # noqa: F811
    """The synthetic Penn-layout dataset (2 squat clips with frames) as the configured folder."""
    root = make_penn_dataset(tmp_path / "penn")
    monkeypatch.setenv(PENN_DIR_ENV, str(root))
    return root


def page():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=180)
    at.switch_page(PAGE)
    return at


def widget(at, kind: str, label: str):
    found = [w for w in getattr(at, kind) if w.label == label]
    assert found, f"no {kind} {label!r}; have {[w.label for w in getattr(at, kind)]}"
    return found[0]


def clip_options(at) -> list[str]:
    """The clip ids offered (AppTest gives the formatted options: "0001 · Squat · right view · ...")."""
    found = [w for w in at.selectbox if w.label == "Clip"]
    return [o.split(" · ")[0] for o in found[0].options] if found else []


def texts(at) -> str:
    return "\n".join([m.value for m in at.markdown] + [c.value for c in at.caption] + [e.value for e in at.error]
                     + [i.value for i in at.info] + [w.value for w in at.warning])


def no_failure(at) -> None:
    assert not at.exception, [e.message for e in at.exception]


# ----------------------------------------------------------------------------------------- library

def test_folder_must_be_the_root_or_inside_it(tmp_path):
    root = make_penn_dataset(tmp_path / "penn", with_frames=False, n_frames=8)
    assert resolve_dataset_folder("", root) == root.resolve()
    assert resolve_dataset_folder(str(root), root) == root.resolve()
    sub = make_penn_dataset(root / "subset", with_frames=False, n_frames=8)
    assert resolve_dataset_folder("subset", root) == sub.resolve()
    (tmp_path / "elsewhere" / "labels").mkdir(parents=True)
    (root / "escape").symlink_to(tmp_path / "elsewhere")
    (root / "empty").mkdir()
    for typed, message in ((str(tmp_path / "elsewhere"), "outside the configured"), ("..", "outside the configured"),
                           ("/etc", "outside the configured"), ("escape", "outside the configured"),
                           ("missing", "There is no folder"), ("empty", "no labels/ subfolder")):
        with pytest.raises(DatasetFolderError, match=message) as e:
            resolve_dataset_folder(typed, root)
        assert str(tmp_path) not in str(e.value)  # no server paths in messages (issue 12, item 3)
    with pytest.raises(DatasetFolderError, match="There is no folder subset/missing") as e:
        resolve_dataset_folder("subset/missing", root)
    with pytest.raises(DatasetFolderError, match="does not exist") as e:
        resolve_dataset_folder("", tmp_path / "nowhere")
    assert str(tmp_path) not in str(e.value)
    with pytest.raises(DatasetFolderError, match="invalid clip id"):
        open_clip(root, "../0001")


def test_filters_and_summary(tmp_path):
    root = make_penn_dataset(tmp_path / "penn", with_frames=False)
    rules = load_rules()
    clips, errors = clip_table(root)
    assert errors == [] and list(clips["clip"]) == ["0001", "0002"]
    assert clips.set_index("clip").loc["0002", ["split", "view", "frames", "width", "height", "has_frames"]].tolist() \
        == ["test", "left", 40, WIDTH, HEIGHT, False]
    frames = labelled_by_class(root, rules, "squat")
    per_clip = clip_label_counts(frames)
    assert per_clip[["correct", "incorrect", "unknown"]].sum(axis=1).tolist() == [40, 40]
    assert list(filter_clips(clips, per_clip, ["squat"], "test")["clip"]) == ["0002"]
    assert list(filter_clips(clips, per_clip, ["squat"], ALL, "right")["clip"]) == ["0001"]
    assert filter_clips(clips, per_clip, ["pushup"]).empty
    assert filter_clips(clips, per_clip, None, ALL, ALL, "unknown").empty
    having_incorrect = set(per_clip.loc[per_clip["incorrect"] > 0, "clip"])
    assert set(filter_clips(clips, per_clip, None, ALL, ALL, "incorrect")["clip"]) == having_incorrect
    summary = class_summary(clips, frames).set_index("action")
    expected = label_summary(frames).set_index("action")
    assert summary.loc["squat", "clips"] == 2 and summary.loc["squat", "frames"] == 80
    assert summary.loc["squat", "pct_correct"] == pytest.approx(expected.loc["squat", "pct_correct"])
    assert class_summary(clips.iloc[:1], frames).loc[0, "frames"] == 40
    assert class_summary(clips.iloc[:0], frames).empty


def test_frame_view_on_frames_and_on_a_blank_canvas(tmp_path):
    with_frames = make_penn_dataset(tmp_path / "a")
    without = make_penn_dataset(tmp_path / "b", with_frames=False)
    c = load_clip(with_frames / "labels" / "0001.mat")
    v0 = frame_view(c, 0, with_frames, "correct", "knee", 175.0)
    v20 = frame_view(c, 20, with_frames, "incorrect", "knee", 70.0, "Go deeper")
    assert v0.on_frame and v0.note == "" and v0.image_rgb.shape == (HEIGHT, WIDTH, 3)
    assert np.count_nonzero(np.any(v0.image_rgb != v20.image_rgb, axis=2)) > 200  # another frame, another skeleton
    assert np.any((v20.image_rgb[..., 0] > 180) & (v20.image_rgb[..., 2] < 80))  # red (RGB) for incorrect
    blank = frame_view(load_clip(without / "labels" / "0001.mat"), 5, without)
    assert not blank.on_frame and blank.image_rgb.shape == (HEIGHT, WIDTH, 3)
    assert (blank.image_rgb[0, -1] == 236).all()  # the canvas, away from the skeleton and the text
    # A frame that is a symlink to a file outside the dataset folder is not read.
    (c.frames_dir / "000003.jpg").unlink()
    (c.frames_dir / "000003.jpg").symlink_to(without.parent / "outside.jpg")
    (without.parent / "outside.jpg").write_bytes((c.frames_dir / "000004.jpg").read_bytes())
    v = frame_view(c, 2, with_frames)
    assert not v.on_frame and "outside the dataset folder" in v.note


# ------------------------------------------------------------------------------------------ AppTest

def test_page_filters_change_the_clip_list(synth):
    at = page().run()
    no_failure(at)
    assert at.title[0].value == TITLE
    assert clip_options(at) == ["0001", "0002"] and "2 of 2 gym clips match" in texts(at)
    widget(at, "selectbox", "Split").set_value("test").run()
    assert clip_options(at) == ["0002"]
    widget(at, "selectbox", "Split").set_value(ALL).run()
    widget(at, "selectbox", "View").set_value("right").run()
    assert clip_options(at) == ["0001"]
    widget(at, "selectbox", "View").set_value(ALL).run()
    widget(at, "selectbox", "Label").set_value("unknown").run()
    assert clip_options(at) == [] and "No clip matches these filters" in texts(at)
    widget(at, "selectbox", "Label").set_value(ANY_LABEL).run()
    widget(at, "multiselect", "Class").set_value([]).run()
    assert clip_options(at) == [] and "Choose at least one class" in texts(at)
    no_failure(at)


def test_page_frame_slider_changes_frame_and_label(synth):
    rules = load_rules()
    clip = load_clip(synth / "labels" / "0001.mat")
    df = label_clip(clip, rules)
    i_ok = int(df.index[df["label"] == "correct"][0]) + 1
    bad = df[df["label"] == "incorrect"]
    assert len(bad), "the fixture's deep squat should have incorrect frames under the packaged rules"
    i_bad = int(bad.index[0]) + 1
    at = page().run()
    no_failure(at)
    slider = widget(at, "slider", "Frame")
    assert (slider.min, slider.max, slider.value) == (1, 40, 1)
    for i in (i_ok, i_bad):
        widget(at, "slider", "Frame").set_value(i).run()
        no_failure(at)
        shown = texts(at)
        assert f"#### Frame {i}" in shown
        row = df.iloc[i - 1]
        badge = [m.value for m in at.markdown if "-badge[" in m.value]
        assert badge and row["label"] in badge[0] and ("green" in badge[0]) == (row["label"] == "correct")
        reason = row["reason"] or "–"
        assert f"**Reason:** {plain(reason)}" in shown  # rule messages reach the page as plain text
        table = at.dataframe[0].value
        knee = table.loc[table["angle"].str.startswith("Knee"), "value"].iloc[0]
        assert knee == f"{row['knee']:.0f}°"


def test_page_without_a_configured_folder_says_where_to_point(tmp_path, monkeypatch, workspace):  # noqa: F811
    monkeypatch.delenv(PENN_DIR_ENV, raising=False)
    monkeypatch.setenv("GYMPOSE_SHARED_DATA", str(tmp_path / "no_shared_data"))
    at = page().run()
    no_failure(at)
    assert "No Penn Action folder is configured" in texts(at)
    # Issue 13 item 13: where the dataset comes from (with its citation) and how to point the app at it.
    assert "Where the dataset comes from" in texts(at) and "ICCV 2013" in texts(at) and "Download it" in texts(at)
    assert "Point the app at it" in texts(at) and PENN_DIR_ENV in texts(at)
    assert any(f"{PENN_DIR_ENV}=" in c.value for c in at.code) and any("labels/" in c.value for c in at.code)
    assert "ships them as histogram counts" in texts(at)
    monkeypatch.setenv(PENN_DIR_ENV, str(tmp_path / "absent"))
    at = page().run()
    assert "does not exist" in "\n".join(e.value for e in at.error) and clip_options(at) == []


def test_first_visit_labels_with_a_progress_bar_then_uses_the_cache(synth, monkeypatch):
    # Issue 13 item 11: the first visit labels every clip of the chosen classes; it reports progress per clip
    # (drawn as a progress bar) instead of leaving the page blank; the next visit labels nothing.
    import pose_core.datasets.dataset_view as dv

    calls = []
    real = dv.labelled_by_class

    def spy(folder, rules, action, cache_dir=None, progress=None):
        assert progress is not None, "the page must pass a progress callback"

        def record(done, n, clip_id):
            calls.append((action, done, n, clip_id))
            progress(done, n, clip_id)  # draws the bar: must work inside the page run
        return real(folder, rules, action, cache_dir, progress=record)

    monkeypatch.setattr(dv, "labelled_by_class", spy)
    at = page().run()
    no_failure(at)
    assert [(a, d, n) for a, d, n, _ in calls] == [("squat", 1, 2), ("squat", 2, 2)]
    assert clip_options(at) == ["0001", "0002"]
    assert not at.get("progress")  # the bar is gone once the labels are ready
    calls.clear()
    at = page().run()  # a second visit (new session): cached, nothing labelled again
    no_failure(at)
    assert calls == [] and clip_options(at) == ["0001", "0002"]


def test_page_refuses_a_folder_outside_the_configured_one(synth, tmp_path):
    outside = make_penn_dataset(tmp_path / "other")
    at = page().run()
    box = widget(at, "text_input", "Dataset folder")
    assert box.value == ""  # the configured folder; its server path is not shown (issue 12, item 3)
    box.set_value(str(outside)).run()
    errors = "\n".join(e.value for e in at.error)
    assert "outside the configured dataset folder" in errors and clip_options(at) == []
    widget(at, "text_input", "Dataset folder").set_value(str(synth / "..")).run()
    assert "outside the configured dataset folder" in "\n".join(e.value for e in at.error)
    widget(at, "text_input", "Dataset folder").set_value(str(synth)).run()
    assert not at.error and clip_options(at) == ["0001", "0002"]


@pytest.fixture(scope="module")
def real_home(tmp_path_factory) -> Path:
    """One workspace for the real-label tests: the labels cached by the AppTest (parquet files under
    cache/penn) are reused by the browser test's server instead of labelling 1,163 clips again."""
    return tmp_path_factory.mktemp("real") / "gympose"


@needs_penn
def test_page_on_the_real_labels(penn_dir, monkeypatch, workspace, real_home):  # noqa: F811
    monkeypatch.setenv("GYMPOSE_HOME", str(real_home))
    monkeypatch.setenv(PENN_DIR_ENV, str(penn_dir))
    at = page().run()
    no_failure(at)
    assert "1163 of 1163 gym clips match" in texts(at)
    widget(at, "multiselect", "Class").set_value(["squat"]).run()
    assert len(clip_options(at)) == 231
    widget(at, "selectbox", "Split").set_value("test").run()
    test_ids = clip_options(at)
    assert 0 < len(test_ids) < 231
    widget(at, "selectbox", "Clip").set_value(test_ids[1]).run()
    no_failure(at)
    assert widget(at, "slider", "Frame").max == load_clip(penn_dir / "labels" / f"{test_ids[1]}.mat").nframes
    summary = at.dataframe[-1].value
    assert summary["class"].tolist() == ["Squat"] and summary["clips"].tolist() == [len(test_ids)]
    assert math.isclose(summary[["correct %", "incorrect %", "unknown %"]].sum(axis=1).iloc[0], 100.0)


# --------------------------------------------------------------------------------------- real browser

@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)")
def test_dataset_page_in_a_real_browser(tmp_path, penn_dir, real_home):
    """On the real labels when present (blank canvas: no frames there), else on the synthetic fixture."""
    root = penn_dir if (penn_dir / "labels").is_dir() else make_penn_dataset(tmp_path / "penn")
    with StreamlitServer(real_home, env={PENN_DIR_ENV: str(root)}) as server, browser() as b:
        p = b.new_context(viewport=VIEWPORT).new_page()
        p.goto(f"{server.url}/dataset")
        wait_for_app(p, "Class summary", 180)
        main = p.locator('[data-testid="stMain"]')
        assert main.get_by_text(re.compile(r"\d+ of \d+ gym clips match")).count() == 1
        assert main.get_by_text("Frame 1", exact=True).count() == 1
        # The frame image is served by Streamlit's media endpoint and decodes in the browser.
        img = main.locator('[data-testid="stImage"] img').first
        img.wait_for(timeout=30000)
        assert img.evaluate("i => i.complete && i.naturalWidth > 0")
        main.locator(".js-plotly-plot").nth(1).wait_for(timeout=30000)  # plotly's bundle loads lazily
        assert main.locator(".js-plotly-plot").count() == 2  # the angle timeline and the class summary
        # Scrub with the keyboard: the page follows.
        p.get_by_role("slider").first.focus()
        for _ in range(4):
            p.keyboard.press("ArrowRight")
        main.get_by_text("Frame 5", exact=True).wait_for(timeout=30000)
        wait_idle(p)
        shot = screenshot(p, "dataset")
    assert shot.stat().st_size > 20000
