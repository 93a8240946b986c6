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


def damage_middle(src: Path, dst: Path, nbytes: int = 64 * 1024, seed: int = 25) -> Path:
    """A copy of src with nbytes of (seeded) random bytes written over the middle of the file: a video
    damaged in the middle (the container's index at either end still intact)."""
    data = bytearray(Path(src).read_bytes())
    mid = len(data) // 2 - nbytes // 2
    data[mid:mid + nbytes] = np.random.default_rng(seed).integers(0, 256, nbytes, dtype=np.uint8).tobytes()
    Path(dst).write_bytes(bytes(data))
    return Path(dst)
