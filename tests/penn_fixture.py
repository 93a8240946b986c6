"""A tiny synthetic dataset in Penn Action's layout (labels/NNNN.mat written with scipy.io.savemat,
frames/NNNN/NNNNNN.jpg written with cv2), made by the tests themselves: no real data involved.

Clips are side-view squats of a stick figure whose knee angle goes 175 -> `min_knee` -> 175 deg; the
frames are plain textured images with no person in them (a pose model should find nobody).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

WIDTH, HEIGHT = 192, 144


def squat_joints(knee_deg: float, near_side_visible: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(13, 2) pixel joints in Penn order and (13,) visibility for a side-view squat at a knee angle.
    Both sides share positions (2 px apart); Penn's "left" joints are marked invisible unless asked otherwise."""
    a = math.radians((180.0 - knee_deg) / 2)  # shin leans forward by a, thigh backward by a
    shin = thigh = 30.0
    ankle = np.array([96.0, 130.0])
    knee = ankle + shin * np.array([math.sin(a), -math.cos(a)])
    hip = knee + thigh * np.array([-math.sin(a), -math.cos(a)])
    shoulder = hip + np.array([0.0, -40.0])
    elbow = shoulder + np.array([8.0, 14.0])
    wrist = elbow + np.array([10.0, 0.0])
    head = shoulder + np.array([2.0, -14.0])
    near = {"shoulder": shoulder, "elbow": elbow, "wrist": wrist, "hip": hip, "knee": knee, "ankle": ankle}
    xy = [head]
    vis = [1]
    for part in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle"):
        for side_offset, visible in ((0.0, near_side_visible), (2.0, True)):
            xy.append(near[part] + np.array([side_offset, 0.0]))
            vis.append(1 if visible else 0)
    return np.array(xy), np.array(vis, dtype=np.uint8)


def squat_curve(n_frames: int, min_knee: float) -> np.ndarray:
    t = np.linspace(0.0, 1.0, n_frames)
    return 175.0 - (175.0 - min_knee) * np.sin(math.pi * t) ** 2


def mat_fields(action: str = "squat", n_frames: int = 40, min_knee: float = 70.0, view: str = "right",
               train: int = 1) -> dict:
    xs, ys, vs = [], [], []
    for k in squat_curve(n_frames, min_knee):
        xy, vis = squat_joints(float(k), near_side_visible=False)
        xs.append(xy[:, 0])
        ys.append(xy[:, 1])
        vs.append(vis)
    x, y = np.array(xs), np.array(ys)
    bbox = np.stack([x.min(1) - 5, y.min(1) - 5, x.max(1) + 5, y.max(1) + 5], axis=1)
    return {
        "action": action, "pose": view, "x": x, "y": y, "visibility": np.array(vs, dtype=np.uint8),
        "train": np.array([[train]], dtype=np.int32), "bbox": bbox,
        "dimensions": np.array([[HEIGHT, WIDTH, n_frames]], dtype=np.uint16),
        "nframes": np.array([[n_frames]], dtype=np.uint16),
    }


def write_mat(path: Path, fields: dict) -> Path:
    import scipy.io

    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(str(path), fields)
    return path


def write_frames(folder: Path, n_frames: int, seed: int = 0) -> None:
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    base = np.linspace(40, 200, WIDTH, dtype=np.float64)[None, :, None] * np.ones((HEIGHT, 1, 3))
    for i in range(n_frames):
        img = np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)
        cv2.imwrite(str(folder / f"{i + 1:06d}.jpg"), img)


def make_penn_dataset(root: Path, with_frames: bool = True, n_frames: int = 40) -> Path:
    """Writes root/labels/0001.mat (deep squat, train), 0002.mat (shallow squat, test) and, with
    frames, root/frames/0001/ and 0002/. Returns root."""
    write_mat(root / "labels" / "0001.mat", mat_fields(n_frames=n_frames, min_knee=70.0, train=1))
    write_mat(root / "labels" / "0002.mat", mat_fields(n_frames=n_frames, min_knee=112.0, train=-1, view="left"))
    if with_frames:
        write_frames(root / "frames" / "0001", n_frames, seed=1)
        write_frames(root / "frames" / "0002", n_frames, seed=2)
    return root
