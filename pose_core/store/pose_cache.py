"""A cache of a video's per-frame observations: timestamp, pose (image landmarks, visibility, metric world
landmarks) and the frame's signature (`media.shots`). The pose model is by far the most expensive step; with
the observations kept, `evaluate --cache DIR` and the robustness suite re-run the counting, judging and
recognition on hundreds of clips in seconds after a rule or code change.

Stored as one .npz per video (plain arrays, read with allow_pickle=False) named by the file's SHA-256, the
decode size and the pose model's version, so a changed file or model never reuses stale poses. Written
atomically.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from ..core.io import atomic_write_bytes
from ..core.landmarks import NUM_LANDMARKS
from ..core.types import PoseFrame

CACHE_FORMAT = 1


@dataclass(frozen=True)
class Observation:
    """What the model and the picture say about one frame."""

    t: float
    pose: PoseFrame | None
    signature: np.ndarray | None = None  # media.shots.frame_signature of the frame


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def model_version() -> str:
    try:
        from importlib.metadata import version

        return "mediapipe-" + version("mediapipe")
    except Exception:  # noqa: BLE001 - a version string only names the cache file
        return "mediapipe-unknown"


def encode(observations: Iterable[Observation]) -> bytes:
    obs = list(observations)
    n = len(obs)
    t = np.array([o.t for o in obs], dtype=np.float64)
    has = np.array([o.pose is not None for o in obs], dtype=bool)
    lm = np.zeros((n, NUM_LANDMARKS, 3), np.float32)
    vis = np.zeros((n, NUM_LANDMARKS), np.float32)
    world = np.zeros((n, NUM_LANDMARKS, 3), np.float32)
    has_world = np.zeros(n, dtype=bool)
    size = np.zeros((n, 2), np.int32)
    sig_shape = next((o.signature.shape for o in obs if o.signature is not None), (0, 0, 3))
    sigs = np.zeros((n, *sig_shape), np.uint8)
    has_sig = np.zeros(n, dtype=bool)
    for i, o in enumerate(obs):
        if o.pose is not None:
            lm[i], vis[i], size[i] = o.pose.landmarks, o.pose.visibility, o.pose.image_size
            if o.pose.world is not None:
                world[i], has_world[i] = o.pose.world, True
        if o.signature is not None and o.signature.shape == sig_shape:
            sigs[i], has_sig[i] = o.signature, True
    buf = io.BytesIO()
    np.savez_compressed(buf, format=np.array([CACHE_FORMAT]), t=t, has=has, landmarks=lm, visibility=vis,
                        world=world, has_world=has_world, size=size, signatures=sigs, has_signature=has_sig)
    return buf.getvalue()


def decode(data: bytes | Path | str) -> list[Observation]:
    src = io.BytesIO(data) if isinstance(data, bytes) else data
    with np.load(src, allow_pickle=False) as z:
        if int(z["format"][0]) != CACHE_FORMAT:
            raise ValueError("pose cache: unknown format")
        t, has, lm, vis = z["t"], z["has"], z["landmarks"], z["visibility"]
        world, has_world, size = z["world"], z["has_world"], z["size"]
        sigs, has_sig = z["signatures"], z["has_signature"]
    out = []
    for i in range(len(t)):
        pose = None
        if has[i]:
            pose = PoseFrame(lm[i].astype(np.float64), np.clip(vis[i].astype(np.float64), 0, 1),
                             (int(size[i][0]), int(size[i][1])), float(t[i]),
                             world[i].astype(np.float64) if has_world[i] else None)
        out.append(Observation(float(t[i]), pose, sigs[i] if has_sig[i] else None))
    return out


def observe(video: str | Path, estimator, max_side: int = 1280, backend: str = "auto",
            progress=None) -> Iterator[Observation]:
    """Run the pose model over a video: one Observation per decoded frame (the pipeline's own loop)."""
    from ..media.poses import poses
    from ..media.shots import frame_signature

    for t, img, pose in poses(video, estimator, max_side, progress=progress, backend=backend):
        yield Observation(t, pose, frame_signature(img))


class PoseCache:
    """Observations of videos kept in `folder` (one .npz each)."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    def path_for(self, video: str | Path, max_side: int = 1280, backend: str = "auto") -> Path:
        key = f"{file_sha256(video)[:32]}-{max_side}-{backend}-{model_version()}"
        return self.folder / f"{key}.npz"

    def get(self, video: str | Path, max_side: int = 1280, backend: str = "auto") -> list[Observation] | None:
        path = self.path_for(video, max_side, backend)
        if not path.is_file():
            return None
        try:
            return decode(path)
        except (OSError, ValueError, KeyError):
            return None  # damaged or foreign: estimated again

    def put(self, video: str | Path, observations: Iterable[Observation], max_side: int = 1280,
            backend: str = "auto") -> list[Observation]:
        obs = list(observations)
        atomic_write_bytes(self.path_for(video, max_side, backend), encode(obs))
        return obs

    def observations(self, video: str | Path, max_side: int = 1280, backend: str = "auto",
                     estimator=None, progress=None) -> list[Observation]:
        """The cached observations, estimated now (and kept) when missing."""
        cached = self.get(video, max_side, backend)
        if cached is not None:
            return cached
        from ..media.poses import estimator_for

        with estimator_for(estimator) as est:
            return self.put(video, observe(video, est, max_side, backend, progress), max_side, backend)
