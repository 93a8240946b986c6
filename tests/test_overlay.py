"""The coaching overlay (issue 13 item 8, and the live-overlay part of item 3): text sized from the frame,
its box placed where the person is not and out of the bottom caption band, checks this camera view cannot
judge said as such; pixel assertions on real frames with the real pose model."""

from __future__ import annotations


import cv2
import numpy as np
import pytest
from helpers import SQUAT_CLIP, needs_videos, squat_pose

from pose_core.core.rules import load_rules
from pose_core.core.session import Session
from pose_core.media.drawing import (CAPTION_BAND, draw_overlay, draw_session_overlay, draw_skeleton, overlay_lines,
                                     person_box)

KW = dict(exercise="Squat", primary_name="knee", primary_value=95.0, primary_joint=None, rep_count=3,
          phase="bottom", label="incorrect", feedback=("Go deeper: bend your knees to 100 deg or less",),
          last_rep_verdict="incorrect", last_rep_reason="Not deep enough: knees reached 128 deg, aim for 100 deg or less")


def text_box(before: np.ndarray, after: np.ndarray, skip: np.ndarray | None = None) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of the pixels the overlay's text box changed (skeleton pixels masked out)."""
    changed = np.abs(after.astype(int) - before.astype(int)).sum(axis=2) > 30
    if skip is not None:
        changed &= ~skip
    ys, xs = np.nonzero(changed)
    assert len(xs), "nothing was drawn"
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


@pytest.mark.parametrize("size", [(480, 640), (720, 1280), (1080, 1920), (1920, 1080)])
def test_text_grows_with_the_frame(size):
    h, w = size
    img = np.full((h, w, 3), 140, np.uint8)
    before = img.copy()
    draw_overlay(img, pose=None, **KW)
    x0, y0, x1, y1 = text_box(before, img)
    n_lines = len(overlay_lines(has_pose=False, **{k: v for k, v in KW.items() if k != "primary_joint"}, wrap=40))
    line_px = (y1 - y0) / n_lines
    short = min(h, w)
    # Each line is about 5% of the short side (3.4% capitals + spacing): readable when the video is shown small.
    assert 0.04 * short <= line_px <= 0.065 * short, (size, line_px)
    assert (x1 - x0) <= 0.62 * w  # never a band across the whole picture


def test_box_goes_where_the_person_is_not_and_above_the_caption_band():
    h, w = 480, 640
    for person_x, expect_right in ((0.25, True), (0.75, False)):
        pose = squat_pose(120.0, (w, h))
        px = pose.pixels.copy()
        px[:, 0] += (person_x - 0.5) * w
        pose = type(pose).from_pixels(px, pose.visibility, (w, h), 0.0)
        img = np.full((h, w, 3), 140, np.uint8)
        before = img.copy()
        skel = np.zeros((h, w, 3), np.uint8)
        draw_skeleton(skel, pose, colour=(255, 255, 255))
        draw_overlay(img, pose=pose, **KW)
        x0, y0, x1, y1 = text_box(before, img, skip=cv2.dilate(skel[..., 0], np.ones((9, 9), np.uint8)) > 0)
        p = person_box(pose)
        assert x1 <= p[0] or x0 >= p[2] or y1 <= p[1] or y0 >= p[3], ((x0, y0, x1, y1), p)  # no overlap
        assert (x0 > w / 2) == expect_right
        assert y1 <= h * (1 - CAPTION_BAND)  # the clip's own captions stay visible


@needs_videos
def test_on_a_real_frame_the_text_misses_the_person_and_their_mirror_image():
    from pose_core.media.estimator import PoseEstimator

    cap = cv2.VideoCapture(str(SQUAT_CLIP))
    for _ in range(15):
        ok, bgr = cap.read()
    cap.release()
    assert ok
    frame = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    with PoseEstimator(static_image_mode=True) as est:
        sides = []
        for img in (frame, np.ascontiguousarray(frame[:, ::-1])):  # the person mirrored to the other side
            pose = est.process(img, 0.0)
            assert pose is not None
            h, w = img.shape[:2]
            skel = np.zeros_like(img)
            draw_skeleton(skel, pose, colour=(255, 255, 255))
            out = img.copy()
            draw_overlay(out, pose=pose, **KW)
            x0, y0, x1, y1 = text_box(img, out, skip=cv2.dilate(skel[..., 0], np.ones((15, 15), np.uint8)) > 0)
            vis = pose.pixels[pose.visibility >= 0.5]
            inside = ((vis[:, 0] >= x0) & (vis[:, 0] <= x1) & (vis[:, 1] >= y0) & (vis[:, 1] <= y1)).sum()
            assert inside == 0, f"{inside} visible landmarks under the text box {(x0, y0, x1, y1)} ({w}x{h})"
            assert y1 <= h * (1 - CAPTION_BAND)
            assert (y1 - y0) >= 0.25 * h  # the lines are big enough to read on a phone
            sides.append(x0 > w / 2)
    cv2.imwrite(str(_shot_dir() / "overlay_real_frame.png"), cv2.cvtColor(out, cv2.COLOR_RGB2BGR))


def _shot_dir():
    from browser_utils import SCREENSHOTS

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


def test_checks_the_view_cannot_judge_are_named_on_the_overlay():
    rules = load_rules()
    front = Session(rules["squat"], rules.defaults, view="front")
    o = front.overlay(front.step(squat_pose(150.0), 0.0))
    # Named as their messages start: the lean needs a side view; lockout is judged from every view, depth
    # on the image from the side and in 3D from the front.
    assert o.view == "front" and o.not_judged == ("torso leaned too far forward",)
    lines = [t for t, _ in overlay_lines(has_pose=True, exercise="Squat", primary_name="knee", primary_value=150.0,
                                        rep_count=0, phase="standing", label="correct", feedback=(),
                                        not_judged_view=o.view, not_judged=o.not_judged, wrap=21)]
    i = lines.index("not judged from the front:")
    # (depth is judged from the front too: on the 3D knee)
    assert " ".join(lines[i + 1:]) == "torso leaned too far forward"
    side = Session(rules["squat"], rules.defaults, view="side")
    o = side.overlay(side.step(squat_pose(150.0), 0.0))
    assert o.not_judged == ("knees caved in",)
    # Drawn: the frame with the note differs from the one without it.
    a = draw_session_overlay(np.zeros((480, 640, 3), np.uint8), o)
    import dataclasses
    b = draw_session_overlay(np.zeros((480, 640, 3), np.uint8), dataclasses.replace(o, not_judged=()))
    assert (a != b).any()
    from pose_core.core.session import not_judged_from

    assert not_judged_from(rules["squat"], None) == ()  # view not known yet: nothing is said
