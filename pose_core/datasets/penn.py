"""Penn Action annotations: reading the .mat label files and mapping their 13 joints to our PoseFrame.

Layout of a dataset root (the folder holding `labels/`):
    labels/0001.mat ... 2326.mat    one MATLAB file per sequence (read with scipy.io.loadmat, no pickle)
    labels_index.csv                optional: one row per sequence, used only to skip files when filtering
    frames/0001/000001.jpg ...      optional: the images; everything here works without them

Conventions
- Frame *indices* `i` in this module are 0-based array indices; Penn's image names are 1-based
  (`frames/NNNN/{i + 1:06d}.jpg`).
- Penn Action has no timestamps: frames are assumed to be `PENN_FPS` = 30 per second.
- `bbox` rows are [x1, y1, x2, y2] in pixels, as stored (sequence 2173 has x2 < x1 in some rows; we do
  not reorder them). Two sequences (1154, 1865) have one bbox row fewer than frames: the last row is
  padded with NaN.
- Sides: Penn's joint list says "left shoulder, right shoulder, ...", but in the annotations the joint
  called "left" is the person's RIGHT (observer's left). The labels themselves show it:
  in "front" views the "left" shoulder is on the image's left in 96% of sequences (a person facing the
  camera has their right shoulder there); in "back" views it is on the image's right in 76%; in "right"
  views (right side towards the camera) the "left" joints are the better visible ones in 75%; and in
  strum_guitar the "left" wrist travels further than the "right" one in 95% of sequences (right-handed
  strumming). MediaPipe's LEFT_* is the person's left, so `PENN_SIDES_SWAPPED = True` maps Penn "left"
  to MediaPipe RIGHT_*. Swapping sides consistently does not change any joint angle; it matters when
  comparing with a detector (per-joint PCK) and for rules that name a side.
"""

from __future__ import annotations

import csv
import functools
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np

from ..core.landmarks import NUM_LANDMARKS, PoseLandmark
from ..core.types import PoseFrame

PENN_FPS = 30.0

GYM_CLASSES = ("bench_press", "clean_and_jerk", "jump_rope", "jumping_jacks", "pullup", "pushup", "situp", "squat")
# The action strings as stored in the .mat files (they differ from the dataset README's list).
PENN_ACTIONS = ("baseball_pitch", "baseball_swing", "bench_press", "bowl", "clean_and_jerk", "golf_swing",
                "jump_rope", "jumping_jacks", "pullup", "pushup", "situp", "squat", "strum_guitar",
                "tennis_forehand", "tennis_serve")
SPLITS = ("train", "test")

# Penn's joint order, with its own (observer-side) names.
PENN_JOINTS = ("head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist",
               "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle")
NUM_PENN_JOINTS = len(PENN_JOINTS)

PENN_SIDES_SWAPPED = True  # see the module docstring for the evidence


def _penn_landmarks(swapped: bool) -> tuple[PoseLandmark, ...]:
    out = []
    for name in PENN_JOINTS:
        if name == "head":
            out.append(PoseLandmark.NOSE)
            continue
        side, joint = name.split("_", 1)
        if swapped:
            side = "right" if side == "left" else "left"
        out.append(PoseLandmark[f"{side.upper()}_{joint.upper()}"])
    return tuple(out)


# PENN_TO_LANDMARK[j] is the MediaPipe landmark of Penn joint j.
PENN_TO_LANDMARK: tuple[PoseLandmark, ...] = _penn_landmarks(PENN_SIDES_SWAPPED)
# Penn skeleton as pairs of Penn joint indices (for drawing).
PENN_CONNECTIONS: tuple[tuple[int, int], ...] = (
    (1, 2), (1, 3), (3, 5), (2, 4), (4, 6), (1, 7), (2, 8), (7, 8), (7, 9), (9, 11), (8, 10), (10, 12),
)


def _fill_sources() -> np.ndarray:
    """For each of the 33 landmarks, the Penn joint whose position it copies (with visibility 0 when it
    is not itself a Penn joint): face -> head, hand points -> wrist, heel/foot -> ankle."""
    src = np.full(NUM_LANDMARKS, -1, dtype=np.int64)
    for j, lm in enumerate(PENN_TO_LANDMARK):
        src[int(lm)] = j
    by_landmark = {lm: j for j, lm in enumerate(PENN_TO_LANDMARK)}
    for lm in PoseLandmark:
        if src[int(lm)] >= 0:
            continue
        name = lm.name
        if name.startswith(("LEFT_", "RIGHT_")):
            side, part = name.split("_", 1)
            if part in ("PINKY", "INDEX", "THUMB"):
                src[int(lm)] = by_landmark[PoseLandmark[f"{side}_WRIST"]]
                continue
            if part in ("HEEL", "FOOT_INDEX"):
                src[int(lm)] = by_landmark[PoseLandmark[f"{side}_ANKLE"]]
                continue
        src[int(lm)] = by_landmark[PoseLandmark.NOSE]  # eyes, ears, mouth
    return src


_FILL_SOURCE = _fill_sources()
_MAPPED = np.array([int(lm) for lm in PENN_TO_LANDMARK], dtype=np.int64)


class PennFormatError(ValueError):
    """A Penn Action label file is unreadable or inconsistent. The message names the file."""


@dataclass(frozen=True, eq=False)
class PennClip:
    """One annotated Penn Action sequence. Arrays are read-only.

    xy: (N, 13, 2) pixel coordinates in Penn's joint order (PENN_JOINTS).
    visibility: (N, 13) bool (False = joint not visible / not annotated reliably).
    bbox: (N, 4) [x1, y1, x2, y2] pixels; NaN rows where the file has fewer rows than frames.
    view: Penn's coarse viewpoint (the `pose` field): front, back, left, right, ...
    split: "train" or "test" (the official split).
    frames_dir: the folder with the sequence's JPEGs, or None when it is not present.
    """

    id: str
    action: str
    view: str
    split: str
    nframes: int
    width: int
    height: int
    xy: np.ndarray
    visibility: np.ndarray
    bbox: np.ndarray
    labels_path: Path
    frames_dir: Path | None = None

    def __post_init__(self) -> None:
        n = self.nframes
        # Own read-only copies, so neither the caller nor `dataclasses.replace` users can change a clip.
        object.__setattr__(self, "xy", np.array(self.xy, dtype=np.float64))
        object.__setattr__(self, "visibility", np.array(self.visibility, dtype=bool))
        object.__setattr__(self, "bbox", np.array(self.bbox, dtype=np.float64))
        if self.xy.shape != (n, NUM_PENN_JOINTS, 2) or self.visibility.shape != (n, NUM_PENN_JOINTS) \
                or self.bbox.shape != (n, 4):
            raise PennFormatError(f"{self.labels_path}: inconsistent array shapes for {n} frames")
        for arr in (self.xy, self.visibility, self.bbox):
            arr.setflags(write=False)

    @property
    def image_size(self) -> tuple[int, int]:
        return (self.width, self.height)

    @property
    def has_frames(self) -> bool:
        return self.frames_dir is not None

    def frame_path(self, i: int) -> Path | None:
        """The JPEG of 0-based frame i (Penn names are 1-based), or None without a frames folder."""
        if not 0 <= i < self.nframes:
            raise IndexError(f"frame index {i} outside 0..{self.nframes - 1} of clip {self.id}")
        return None if self.frames_dir is None else self.frames_dir / f"{i + 1:06d}.jpg"

    def timestamp_s(self, i: int, fps: float = PENN_FPS) -> float:
        return i / fps


@dataclass(frozen=True)
class DatasetScan:
    """The clips that matched a scan, sorted by id, and the files that could not be read."""

    clips: list[PennClip]
    errors: list[tuple[Path, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.clips)

    def counts(self) -> dict[str, int]:
        """Number of clips per action."""
        return dict(sorted(Counter(c.action for c in self.clips).items()))


# ------------------------------------------------------------------------------------------ reading

_REQUIRED = ("action", "pose", "x", "y", "visibility", "train", "bbox", "dimensions", "nframes")


def _string(mat: dict, name: str, path: Path) -> str:
    v = np.asarray(mat[name])
    if v.dtype.kind != "U" or v.size != 1:
        raise PennFormatError(f"{path}: field {name!r} should be a string, got {v.dtype} of shape {v.shape}")
    s = str(v.reshape(-1)[0]).strip()
    if not s:
        raise PennFormatError(f"{path}: field {name!r} is empty")
    return s


def _integer(mat: dict, name: str, path: Path, size: int = 1) -> np.ndarray:
    v = np.asarray(mat[name])
    if v.dtype.kind not in "iuf" or v.size != size:
        raise PennFormatError(f"{path}: field {name!r} should hold {size} number(s), got {v.dtype} of shape {v.shape}")
    v = v.reshape(-1).astype(np.float64)
    if not np.all(np.isfinite(v)) or np.any(v != np.round(v)):
        raise PennFormatError(f"{path}: field {name!r} should hold whole numbers, got {v.tolist()}")
    return v.astype(np.int64)


def _matrix(mat: dict, name: str, path: Path, rows: int, cols: int) -> np.ndarray:
    v = np.asarray(mat[name])
    if v.dtype.kind not in "iufb" or v.ndim != 2 or v.shape != (rows, cols):
        raise PennFormatError(f"{path}: field {name!r} should be {rows} x {cols} numbers "
                              f"(nframes x {cols}), got {v.dtype} of shape {v.shape}")
    return v.astype(np.float64)


def _read_clip(path: Path, frames_dir: Path | None) -> PennClip:
    import scipy.io

    try:
        mat = scipy.io.loadmat(str(path), squeeze_me=False, chars_as_strings=True,
                               variable_names=list(_REQUIRED))
    except FileNotFoundError:
        raise
    except Exception as e:  # scipy raises MatReadError, OSError, IndexError, ValueError... for broken files
        raise PennFormatError(f"{path}: not a readable MATLAB .mat file (truncated or corrupt?): "
                              f"{type(e).__name__}: {e}") from e
    missing = [k for k in _REQUIRED if k not in mat]
    if missing:
        raise PennFormatError(f"{path}: missing field(s) {', '.join(missing)}")

    action = _string(mat, "action", path)
    if action not in PENN_ACTIONS:
        raise PennFormatError(f"{path}: unknown action {action!r} (known: {', '.join(PENN_ACTIONS)})")
    view = _string(mat, "pose", path)
    train = int(_integer(mat, "train", path)[0])
    if train not in (1, -1):
        raise PennFormatError(f"{path}: field 'train' should be 1 (train) or -1 (test), got {train}")
    n = int(_integer(mat, "nframes", path)[0])
    if n < 1:
        raise PennFormatError(f"{path}: nframes must be at least 1, got {n}")
    h, w, n_dim = (int(v) for v in _integer(mat, "dimensions", path, size=3))
    if n_dim != n:
        raise PennFormatError(f"{path}: dimensions say {n_dim} frames but nframes is {n}")
    if w < 1 or h < 1:
        raise PennFormatError(f"{path}: image dimensions must be positive, got {w} x {h}")

    x = _matrix(mat, "x", path, n, NUM_PENN_JOINTS)
    y = _matrix(mat, "y", path, n, NUM_PENN_JOINTS)
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise PennFormatError(f"{path}: joint coordinates contain NaN or infinite values")
    vis_raw = _matrix(mat, "visibility", path, n, NUM_PENN_JOINTS)
    if not np.all((vis_raw == 0) | (vis_raw == 1)):
        raise PennFormatError(f"{path}: visibility must be 0 or 1")

    bbox_raw = np.asarray(mat["bbox"])
    if bbox_raw.ndim == 2 and bbox_raw.shape == (n - 1, 4) and n > 1:
        bbox_raw = np.vstack([bbox_raw.astype(np.float64), np.full((1, 4), np.nan)])  # known quirk: pad
    bbox = _matrix({"bbox": bbox_raw}, "bbox", path, n, 4)

    return PennClip(
        id=path.stem, action=action, view=view, split="train" if train == 1 else "test", nframes=n,
        width=w, height=h, xy=np.stack([x, y], axis=-1), visibility=vis_raw.astype(bool), bbox=bbox,
        labels_path=path, frames_dir=frames_dir,
    )


@functools.lru_cache(maxsize=8192)
def _read_clip_cached(path: str, mtime_ns: int, size: int, frames_dir: str | None) -> PennClip:
    """Cached per file version: a changed file (mtime or size) is read again."""
    return _read_clip(Path(path), Path(frames_dir) if frames_dir else None)


def _frames_dir_for(labels_path: Path, frames_root: Path | None = None) -> Path | None:
    root = frames_root if frames_root is not None else labels_path.parent.parent / "frames"
    d = root / labels_path.stem
    return d if d.is_dir() else None


# Penn Action's coarse viewpoint (`pose`) as the camera views the judging knows (core/judging.py). Its joints
# have no depth, so the view cannot be read from them: the annotation says it.
CAMERA_VIEWS = {"front": "front", "back": "rear", "left": "side", "right": "side"}


def camera_view(clip: "PennClip") -> str | None:
    """The clip's camera view for judging (None when the annotation names none we know)."""
    return CAMERA_VIEWS.get(clip.view)


def load_clip(path: str | Path) -> PennClip:
    """Read one label file. Raises PennFormatError (naming the file) when it is malformed, truncated,
    misses a field, has inconsistent shapes or an unknown action; FileNotFoundError when absent."""
    path = Path(path)
    st = os.stat(path)
    fd = _frames_dir_for(path)
    return _read_clip_cached(str(path), st.st_mtime_ns, st.st_size, str(fd) if fd else None)


def labels_dir(root: str | Path) -> Path:
    """`root/labels`, with a clear error when it is missing."""
    d = Path(root) / "labels"
    if not d.is_dir():
        raise FileNotFoundError(f"no Penn Action labels folder at {d}")
    return d


def _index_rows(root: Path, label_files: list[Path]) -> dict[str, dict] | None:
    """labels_index.csv as {id: row} when it exists and is not older than any label file."""
    index = root / "labels_index.csv"
    try:
        st = index.stat()
    except FileNotFoundError:
        return None
    newest = max((p.stat().st_mtime_ns for p in label_files), default=0)
    if st.st_mtime_ns < newest:
        return None  # stale: a label file changed after the index was written
    try:
        with open(index, newline="") as f:
            rows = {r["id"]: r for r in csv.DictReader(f)}
    except (OSError, KeyError, UnicodeDecodeError, csv.Error):
        return None
    return rows


def _as_set(value: str | Iterable[str] | None) -> frozenset[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return frozenset((value,))
    return frozenset(value)


def scan_dataset(root: str | Path, actions: str | Iterable[str] | None = GYM_CLASSES, split: str | None = None,
                 view: str | Iterable[str] | None = None) -> DatasetScan:
    """Load every clip of `root/labels` that matches the filters (None = no filter).

    A file that cannot be read is reported in `errors` as (path, message) and never stops the scan.
    `labels_index.csv`, when present and up to date, is used only to skip files that cannot match; each
    loaded clip is filtered again on its own fields. Clips are cached per file version in the process.
    """
    root = Path(root)
    if split is not None and split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS} or None, got {split!r}")
    want_actions, want_views = _as_set(actions), _as_set(view)
    ldir = labels_dir(root)
    files = sorted(p for p in ldir.iterdir() if p.suffix == ".mat" and not p.name.startswith("."))
    index = _index_rows(root, files)
    frames_root = root / "frames"
    has_frames_root = frames_root.is_dir()

    clips: list[PennClip] = []
    errors: list[tuple[Path, str]] = []
    for p in files:
        row = index.get(p.stem) if index is not None else None
        if row is not None:
            try:
                row_split = "train" if int(row["train"]) == 1 else "test"
            except (KeyError, ValueError):
                row_split = None
            if (want_actions is not None and row.get("action") not in want_actions) \
                    or (want_views is not None and row.get("pose") not in want_views) \
                    or (split is not None and row_split is not None and row_split != split):
                continue
        try:
            st = p.stat()
            fd = _frames_dir_for(p, frames_root) if has_frames_root else None
            clip = _read_clip_cached(str(p), st.st_mtime_ns, st.st_size, str(fd) if fd else None)
        except (PennFormatError, OSError) as e:
            errors.append((p, str(e)))
            continue
        if want_actions is not None and clip.action not in want_actions:
            continue
        if want_views is not None and clip.view not in want_views:
            continue
        if split is not None and clip.split != split:
            continue
        clips.append(clip)
    return DatasetScan(clips=clips, errors=errors)


# ---------------------------------------------------------------------------------- joint mapping

def penn_to_pose_frame(clip: PennClip, i: int, fps: float = PENN_FPS) -> PoseFrame:
    """Frame i (0-based) of a clip as a PoseFrame: Penn joints at their landmarks with visibility 1
    (annotated visible) or 0; every other landmark copies the nearest Penn joint's position (face ->
    head, hand -> wrist, heel/foot -> ankle) with visibility 0, so it is never used for measuring."""
    if not 0 <= i < clip.nframes:
        raise IndexError(f"frame index {i} outside 0..{clip.nframes - 1} of clip {clip.id}")
    xy = clip.xy[i][_FILL_SOURCE]
    vis = np.zeros(NUM_LANDMARKS)
    vis[_MAPPED] = clip.visibility[i].astype(np.float64)
    return PoseFrame.from_pixels(xy, vis, clip.image_size, timestamp_s=i / fps)


def pose_frame_to_penn(frame: PoseFrame) -> tuple[np.ndarray, np.ndarray]:
    """(13, 2) pixel coordinates and (13,) visibility (0..1) in Penn's joint order; head = nose.

    The round trip through penn_to_pose_frame returns the joints to within floating-point rounding
    (PoseFrame stores coordinates normalised to the image, and x / w * w is not always x bit for bit)."""
    return frame.pixels[_MAPPED].copy(), frame.visibility[_MAPPED].copy()


def clip_pose_frames(clip: PennClip, fps: float = PENN_FPS) -> list[PoseFrame]:
    """All frames of a clip as PoseFrames, timestamps i / fps."""
    return [penn_to_pose_frame(clip, i, fps) for i in range(clip.nframes)]


def bbox_size_px(clip: PennClip, i: int) -> float:
    """max(width, height) of frame i's box; for a padded (NaN) row, of the box around all joints."""
    b = clip.bbox[i]
    if np.all(np.isfinite(b)):
        return float(max(abs(b[2] - b[0]), abs(b[3] - b[1])))
    xy = clip.xy[i]
    return float(max(np.ptp(xy[:, 0]), np.ptp(xy[:, 1])))


def read_frame_image(path: Path | None) -> np.ndarray | None:
    """A frame JPEG as an RGB array (OpenCV decodes BGR: converted here, at the edge), or None when the
    path is None, absent or unreadable."""
    import cv2

    image = cv2.imread(str(path)) if path is not None and path.exists() else None
    return None if image is None else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


__all__ = [
    "DatasetScan", "GYM_CLASSES", "NUM_PENN_JOINTS", "PENN_ACTIONS", "PENN_CONNECTIONS", "PENN_FPS", "PENN_JOINTS",
    "PENN_SIDES_SWAPPED", "PENN_TO_LANDMARK", "PennClip", "PennFormatError", "bbox_size_px", "clip_pose_frames",
    "labels_dir", "load_clip", "pose_frame_to_penn", "penn_to_pose_frame", "read_frame_image", "scan_dataset",
]
