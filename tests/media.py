"""Small synthetic media for tests (made on the fly, nothing committed)."""
from pathlib import Path

import numpy as np


def write_video(path: Path, frames: int = 30, size=(320, 240), fps: int = 15, value: int = 40, codec="libx264") -> Path:
    import av

    w, h = size
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=fps)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        for i in range(frames):
            img = np.full((h, w, 3), value, np.uint8)
            img[:, : (i * 7) % w] = 90  # some change between frames
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def write_empty_video(path: Path) -> Path:
    import av

    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=15)
        s.width, s.height, s.pix_fmt = 320, 240, "yuv420p"
        c.start_encoding()  # header written, no frame ever encoded
    return path


def frame_at(video: Path, seconds: float) -> np.ndarray:
    from pose_core.media.video import read_frames

    for t, img in read_frames(video):
        if t >= seconds:
            return img
    raise AssertionError("clip shorter than requested")
