"""All drawing lives here, and it only draws: it never measures, counts or judges.

Images are RGB (as everywhere inside pose_core), so the colours are RGB. Text is drawn with a dark backing
box so it stays readable on any footage. One colour style for every overlay: the live and video overlay
and the Penn Action labelled frames (`draw_keypoint_label`).
"""

from __future__ import annotations

import math
from typing import Protocol

import cv2
import numpy as np

from ..core.landmarks import POSE_CONNECTIONS, PoseLandmark
from ..core.session import Overlay
from ..core.types import FrameLabelKind, PoseFrame

GREEN = (60, 200, 80)
RED = (230, 60, 60)
AMBER = (255, 180, 0)
GREY = (170, 170, 170)
LIGHT_GREY = (200, 200, 200)
WHITE = (255, 255, 255)
DARK = (30, 30, 30)
LABEL_COLOURS = {FrameLabelKind.CORRECT: GREEN, FrameLabelKind.INCORRECT: RED, FrameLabelKind.UNKNOWN: GREY}


def _scale(img: np.ndarray) -> float:
    return max(0.5, min(img.shape[0], img.shape[1]) / 540.0)


# Text is sized from the frame: a capital letter is TEXT_HEIGHT of the frame's short side (Hershey simplex
# is ~22 px tall at scale 1), so it reads the same on a 480p and a 4K clip shown at the same size.
TEXT_HEIGHT = 0.034
_HERSHEY_PX = 22.0


def text_scale(img: np.ndarray) -> float:
    """OpenCV font scale for overlay text on this frame."""
    return max(0.42, min(img.shape[0], img.shape[1]) * TEXT_HEIGHT / _HERSHEY_PX)


def draw_skeleton(img: np.ndarray, pose: PoseFrame, colour=WHITE, min_visibility: float = 0.3,
                  highlight: tuple[int, ...] = (), highlight_colour=AMBER) -> None:
    s = _scale(img)
    px = pose.pixels
    vis = pose.visibility
    thick = max(1, int(round(2 * s)))
    for a, b in POSE_CONNECTIONS:
        if vis[a] >= min_visibility and vis[b] >= min_visibility:
            cv2.line(img, tuple(int(v) for v in px[a]), tuple(int(v) for v in px[b]), colour, thick, cv2.LINE_AA)
    for i in range(len(px)):
        if i in range(1, 11):  # face points other than the nose: clutter
            continue
        if vis[i] >= min_visibility:
            r = max(2, int(round((5 if i in highlight else 3) * s)))
            cv2.circle(img, (int(px[i][0]), int(px[i][1])), r, highlight_colour if i in highlight else colour, -1,
                       cv2.LINE_AA)


def _box_metrics(lines, fs: float):
    th = max(1, int(round(fs * 2.2)))
    sizes = [cv2.getTextSize(t, cv2.FONT_HERSHEY_SIMPLEX, fs, th)[0] for t, _ in lines]
    pad = max(4, int(round(_HERSHEY_PX * fs * 0.45)))
    line_h = int(round(_HERSHEY_PX * fs * 1.55))
    return th, sizes, pad, line_h


def text_box_size(img: np.ndarray, lines: list[tuple[str, tuple[int, int, int]]],
                  font_scale: float | None = None) -> tuple[int, int]:
    """(width, height) in pixels of the box draw_text_box would draw (clipped to the frame's width)."""
    if not lines:
        return 0, 0
    _, sizes, pad, line_h = _box_metrics(lines, font_scale or text_scale(img))
    return min(img.shape[1], max(w for w, _ in sizes) + 2 * pad), line_h * len(lines) + pad


def draw_text_box(img: np.ndarray, lines: list[tuple[str, tuple[int, int, int]]], origin: tuple[int, int],
                  font_scale: float | None = None, alpha: float = 0.6) -> tuple[int, int]:
    """Lines of (text, colour) on a translucent dark box (text sized from the frame, see text_scale);
    returns the box's bottom-right corner."""
    if not lines:
        return origin
    fs = font_scale or text_scale(img)
    th, sizes, pad, line_h = _box_metrics(lines, fs)
    w = min(img.shape[1] - origin[0], max(w for w, _ in sizes) + 2 * pad)
    h = line_h * len(lines) + pad
    x0, y0 = origin
    x1, y1 = min(img.shape[1], x0 + w), min(img.shape[0], y0 + h)
    roi = img[y0:y1, x0:x1]
    if roi.size:  # darken towards DARK
        cv2.convertScaleAbs(roi, dst=roi, alpha=1 - alpha, beta=DARK[0] * alpha)
    base = int(round(_HERSHEY_PX * fs))  # baseline of the first line, below its capitals
    for k, (text, colour) in enumerate(lines):
        cv2.putText(img, text, (x0 + pad, y0 + pad + base + k * line_h), cv2.FONT_HERSHEY_SIMPLEX, fs, colour, th,
                    cv2.LINE_AA)
    return x1, y1


def person_box(pose: PoseFrame | None, min_visibility: float = 0.3) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) around the person's visible landmarks, widened by 8% of its size, or None."""
    if pose is None:
        return None
    px = pose.pixels[pose.visibility >= min_visibility]
    if len(px) == 0:
        return None
    (x0, y0), (x1, y1) = px.min(axis=0), px.max(axis=0)
    mx, my = 0.08 * (x1 - x0) + 8, 0.08 * (y1 - y0) + 8
    return int(x0 - mx), int(y0 - my), int(x1 + mx), int(y1 + my)


CAPTION_BAND = 0.2  # the bottom fifth, where clips carry their own captions and subtitles


def place_box(frame_wh: tuple[int, int], box_wh: tuple[int, int], avoid: tuple[int, int, int, int] | None,
              margin: int) -> tuple[int, int]:
    """Top-left corner for a box of box_wh in a corner of the frame where it covers as little of `avoid`
    (the person) as possible. Top corners first (captions live at the bottom); left wins a tie."""
    W, H = frame_wh
    bw, bh = box_wh
    xs = (margin, max(margin, W - bw - margin))
    corners = [(xs[0], margin), (xs[1], margin), (xs[0], max(margin, H - bh - margin)),
               (xs[1], max(margin, H - bh - margin))]
    caption_top = H * (1 - CAPTION_BAND)

    def cost(xy):
        x, y = xy
        over = 0
        if avoid is not None:
            ox = max(0, min(x + bw, avoid[2]) - max(x, avoid[0]))
            oy = max(0, min(y + bh, avoid[3]) - max(y, avoid[1]))
            over = ox * oy
        in_captions = max(0.0, y + bh - caption_top) * bw
        return over + 0.5 * in_captions

    return min(corners, key=cost)  # (min keeps the first of equal costs: top-left, then top-right)


def draw_angle_at(img: np.ndarray, point: np.ndarray, value: float, colour=AMBER) -> None:
    if not math.isfinite(value):
        return
    s = _scale(img)
    x, y = int(point[0] + 10 * s), int(point[1] - 10 * s)
    text = f"{value:.0f}"
    fs = 0.7 * s
    th = max(1, int(round(2 * s)))
    cv2.putText(img, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, fs, DARK, th + 3, cv2.LINE_AA)
    cv2.putText(img, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, fs, colour, th, cv2.LINE_AA)


def _wrap(text: str, width: int) -> list[str]:
    words, lines, cur = text.split(), [], ""
    for w in words:
        if len(cur) + len(w) + 1 > width and cur:
            lines.append(cur)
            cur = w
        else:
            cur = f"{cur} {w}".strip()
    if cur:
        lines.append(cur)
    return lines


def overlay_lines(*, has_pose: bool, exercise: str, primary_name: str, primary_value: float, rep_count: int,
                  phase: str, label: str, feedback: tuple[str, ...], last_rep_verdict: str | None = None,
                  extra: str | None = None, last_rep_reason: str = "", not_judged_view: str = "",
                  not_judged: tuple[str, ...] = (), wrap: int = 40) -> list[tuple[str, tuple[int, int, int]]]:
    """The overlay's text as (line, colour): what draw_overlay writes, in order."""
    colour = LABEL_COLOURS.get(label, GREY)
    value_txt = f"{primary_value:.0f}" if math.isfinite(primary_value) else "--"
    lines = [
        (f"{exercise}", WHITE),
        (f"Reps: {rep_count}", WHITE),
        (f"{primary_name}: {value_txt}   {phase}", WHITE),
        (label.upper() if has_pose else "NO PERSON", colour),
    ]
    for msg in feedback[:2]:  # what to fix now, right under the label it explains
        lines += [(t, RED) for t in _wrap(msg, wrap)[:2]]
    if last_rep_verdict:
        lines.append((f"Last rep: {last_rep_verdict}", LABEL_COLOURS.get(last_rep_verdict, WHITE)))
        if last_rep_reason:
            lines += [(t, LABEL_COLOURS.get(last_rep_verdict, WHITE)) for t in _wrap(last_rep_reason, wrap)[:3]]
    if not_judged and not_judged_view:  # said, never drawn as a fault (item 3 of issue 13)
        lines.append((f"not judged from the {not_judged_view}:", LIGHT_GREY))
        lines += [(t, LIGHT_GREY) for t in _wrap(", ".join(not_judged), wrap)[:3]]
    if extra:
        lines.append((extra, GREY))
    return lines


def draw_overlay(img: np.ndarray, *, pose: PoseFrame | None, exercise: str, primary_name: str, primary_value: float,
                 primary_joint: int | None, rep_count: int, phase: str, label: str, feedback: tuple[str, ...],
                 last_rep_verdict: str | None = None, extra: str | None = None,
                 last_rep_reason: str = "", not_judged_view: str = "", not_judged: tuple[str, ...] = ()) -> np.ndarray:
    """Draw the full coaching overlay in place and return the image. `last_rep_reason`: the last rep's
    first fault with its measurement ("Hips sagged: 11% ... (limit 8%)"), shown under its verdict;
    `not_judged`: the checks the camera's view (`not_judged_view`) cannot judge.

    The text is sized from the frame (text_scale) and its box goes in the corner that covers the least of
    the person, avoiding the bottom band where clips carry their own captions (place_box)."""
    colour = LABEL_COLOURS.get(label, GREY)
    if pose is not None:
        draw_skeleton(img, pose, colour=colour, highlight=(primary_joint,) if primary_joint is not None else (),
                      highlight_colour=AMBER)
        if primary_joint is not None:
            draw_angle_at(img, pose.point(primary_joint), primary_value, colour=AMBER)
    fs = text_scale(img)
    h, w = img.shape[:2]
    char_w = cv2.getTextSize("n", cv2.FONT_HERSHEY_SIMPLEX, fs, 1)[0][0] + 1
    wrap = max(18, int(0.46 * w / char_w))  # a box at most about half the frame wide
    lines = overlay_lines(has_pose=pose is not None, exercise=exercise, primary_name=primary_name,
                          primary_value=primary_value, rep_count=rep_count, phase=phase, label=label,
                          feedback=feedback, last_rep_verdict=last_rep_verdict, extra=extra,
                          last_rep_reason=last_rep_reason, not_judged_view=not_judged_view, not_judged=not_judged,
                          wrap=wrap)
    margin = max(4, int(0.015 * min(h, w)))
    origin = place_box((w, h), text_box_size(img, lines, fs), person_box(pose), margin)
    draw_text_box(img, lines, origin, font_scale=fs)
    return img


def draw_keypoint_label(image: np.ndarray, xy: np.ndarray, visibility: np.ndarray,
                        connections: tuple[tuple[int, int], ...], label: str, primary_name: str = "",
                        primary_value: float = math.nan, reason: str = "", unit: str = "deg") -> np.ndarray:
    """A copy of the image with a keypoint skeleton given as pixel coordinates (e.g. Penn Action's 13
    joints: visible joints solid, invisible ones hollow), the primary angle and the label, in the label's
    colour. The input image is not modified."""
    img = image.copy()
    h, w = img.shape[:2]
    scale = max(0.4, min(w, h) / 480.0)
    thick = max(1, int(round(2 * scale)))
    colour = LABEL_COLOURS.get(label, GREY)
    pts = [(int(round(x)), int(round(y))) for x, y in np.asarray(xy, dtype=float)]
    vis = np.asarray(visibility).astype(bool)
    for a, b in connections:
        if vis[a] and vis[b]:
            cv2.line(img, pts[a], pts[b], colour, thick, cv2.LINE_AA)
    for j, p in enumerate(pts):
        cv2.circle(img, p, max(2, thick + 1), colour if vis[j] else LIGHT_GREY, -1 if vis[j] else 1, cv2.LINE_AA)
    text = label
    if primary_name:
        value = f"{primary_value:.0f}" if math.isfinite(primary_value) else "--"
        text = f"{label}  {primary_name} {value} {unit}"
    y = int(22 * scale)
    for line in [text] + ([reason[:60]] if reason else []):
        cv2.putText(img, line, (6, y), cv2.FONT_HERSHEY_SIMPLEX, 0.55 * scale, DARK, thick + 2, cv2.LINE_AA)
        cv2.putText(img, line, (6, y), cv2.FONT_HERSHEY_SIMPLEX, 0.55 * scale, colour, thick, cv2.LINE_AA)
        y += int(22 * scale)
    return img


def draw_session_overlay(img: np.ndarray, overlay: Overlay, extra: str | None = None) -> np.ndarray:
    """Draw a session's overlay (`Session.overlay(result)`) in place and return the image."""
    o = overlay
    return draw_overlay(img, pose=o.pose, exercise=o.exercise, primary_name=o.primary_name,
                        primary_value=o.primary_value, primary_joint=primary_joint_landmark(o.primary_joints, o.pose),
                        rep_count=o.rep_count, phase=o.phase, label=o.label, feedback=o.feedback,
                        last_rep_verdict=o.last_rep_verdict, extra=extra, last_rep_reason=o.last_rep_reason,
                        not_judged_view=o.view, not_judged=o.not_judged)


def primary_joint_landmark(joints: tuple[str, ...], pose: PoseFrame | None) -> int | None:
    """The landmark where a joint angle's value is printed: the middle joint on the better-visible side."""
    if pose is None or len(joints) != 3:
        return None
    middle = joints[1]
    for fixed in ("left", "right"):
        if middle.startswith(fixed + "_"):
            return int(PoseLandmark[middle.upper()])
    if middle.startswith("mid_") or middle == "nose":
        return None
    left, right = PoseLandmark[f"LEFT_{middle.upper()}"], PoseLandmark[f"RIGHT_{middle.upper()}"]
    return int(left if pose.visibility[left] >= pose.visibility[right] else right)


class RecognitionGuess(Protocol):
    """What the recognising overlay shows of a live recognition (run.live_snapshot.AutoStatus)."""

    candidate: str | None
    confidence: float


def draw_recognising(img: np.ndarray, pose: PoseFrame | None, auto: RecognitionGuess | None, extra: str | None = None,
                     ) -> np.ndarray:
    """The overlay while auto mode is still recognising: the skeleton and what the recogniser thinks."""
    if pose is not None:
        draw_skeleton(img, pose, colour=GREY)
    lines = [("Recognising the exercise...", WHITE)]
    if pose is None:
        lines.append(("NO PERSON", GREY))
    elif auto is not None and auto.candidate:
        lines.append((f"best guess: {auto.candidate.replace('_', ' ')} {auto.confidence:.0%}", GREY))
    else:
        lines.append(("keep moving", GREY))
    if extra:
        lines.append((extra, GREY))
    h, w = img.shape[:2]
    margin = max(4, int(0.015 * min(h, w)))
    draw_text_box(img, lines, place_box((w, h), text_box_size(img, lines), person_box(pose), margin))
    return img
