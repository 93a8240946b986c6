"""Reading video.

Reading uses PyAV (FFmpeg): H.264 and MPEG-4 Part 2 mp4, mov, webm...; it yields RGB frames with their
presentation timestamps (variable frame rate safe) and applies rotation metadata (portrait phone videos).
Frames are decoded on a background thread so decoding overlaps the pose model (the second core); damaged
data in the middle of a file is skipped and the stretch it cost is reported (media.damage).
Writing (H.264 that browsers play directly) is media.writer. Memory stays flat in video length: bounded
queues, nothing accumulated.
"""

from __future__ import annotations

import math
import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from .damage import GapFinder, decoded_frames


VIDEO_EXTENSIONS = ("mp4", "mov", "m4v", "webm", "mkv", "avi")  # what counts as a video file (uploads, batch)
ProgressFn = Callable[[int, int], None]  # (frames done, frames expected; 0 when unknown)


MIN_VIDEO_SIDE = 16  # pixels: nobody can be found in less (and the encoder cannot write it)
# FFmpeg's demuxers for single still images (a .png/.jpg would otherwise be "a video" of one frame).
_STILL_IMAGE_FORMATS = ("image2", "png_pipe", "jpeg_pipe", "webp_pipe", "bmp_pipe", "tiff_pipe", "gif_pipe",
                        "jpegls_pipe", "j2k_pipe", "qoi_pipe", "pgm_pipe", "ppm_pipe", "pam_pipe", "dpx_pipe")


class VideoError(ValueError):
    """The file cannot be read as a video (missing, not a video, a still image, corrupt, no frames, too small)."""


@dataclass(frozen=True)
class VideoInfo:
    path: str
    width: int  # after rotation
    height: int
    fps: float
    frame_count: int  # an estimate from the container; 0 when unknown
    duration_s: float
    rotation: int  # degrees applied to display upright
    codec: str
    first_frame_s: float = 0.0  # the first frame's presentation time (timestamps are counted from it)


def _rotation_of(stream, frame=None) -> int:
    rot = 0
    if frame is not None and getattr(frame, "rotation", None):
        rot = int(frame.rotation)
    return rot % 360


def probe(path: str | Path) -> VideoInfo:
    import av

    path = Path(path)
    if not path.exists():
        raise VideoError(f"{path}: file not found")
    if not path.is_file():
        raise VideoError(f"{path}: not a file")
    try:
        with av.open(str(path)) as c:
            if not c.streams.video:
                raise VideoError(f"{path}: no video stream in this file")
            if c.format.name in _STILL_IMAGE_FORMATS or c.format.name.endswith("_pipe"):
                raise VideoError(f"{path}: not a video: a still image ({c.format.name.removesuffix('_pipe')})")
            s = c.streams.video[0]
            rate = s.average_rate or s.base_rate or s.guessed_rate
            fps = float(rate) if rate else 30.0
            if not math.isfinite(fps) or fps <= 0 or fps > 1000:
                fps = 30.0
            duration = float(s.duration * s.time_base) if s.duration and s.time_base else (
                c.duration / 1e6 if c.duration else 0.0)
            first = None
            for first in c.decode(s):
                break
            if first is None:
                raise VideoError(f"{path}: the video has no frames")
            rot = _rotation_of(s, first)
            w, h = first.width, first.height
            if rot in (90, 270):
                w, h = h, w
            if min(w, h) < MIN_VIDEO_SIDE:
                raise VideoError(f"{path}: video too small ({w}x{h} pixels; at least "
                                 f"{MIN_VIDEO_SIDE}x{MIN_VIDEO_SIDE} needed)")
            frames = s.frames or int(round(duration * fps))
            t_first = float(first.time) if first.time is not None and math.isfinite(first.time) else 0.0
            return VideoInfo(str(path), w, h, fps, int(frames), duration, rot, s.codec_context.name, t_first)
    except VideoError:
        raise
    except Exception as e:  # PyAV raises many error types for non-video/corrupt input
        raise VideoError(f"{path}: not a video file, or the video is corrupt ({type(e).__name__})") from None


def _rotate(img: np.ndarray, rotation: int) -> np.ndarray:
    # PyAV's rotation is the counter-clockwise angle the frame must be turned to display upright.
    if rotation == 90:
        return np.ascontiguousarray(np.rot90(img, 1))
    if rotation == 180:
        return np.ascontiguousarray(img[::-1, ::-1])
    if rotation == 270:
        return np.ascontiguousarray(np.rot90(img, 3))
    return img


_END = object()


class _Clock:
    """Monotonic timestamps from the container's, starting at 0 (falls back to n / fps)."""

    def __init__(self, fps: float, t0: float | None = None) -> None:
        self.fps = fps
        self.t0: float | None = t0  # given: a read that starts mid-file counts from the file's first frame
        self.last = -math.inf
        self.n = 0

    def __call__(self, t: float | None) -> float:
        if t is None or not math.isfinite(t):
            t = self.n / self.fps
        if self.t0 is None:
            self.t0 = t
        t -= self.t0
        if t <= self.last:  # broken or duplicated timestamps: keep time moving forward
            t = self.last + 1.0 / self.fps
        self.last = t
        self.n += 1
        return t


class _Frames:
    """The bounded queue between the decode thread and the consumer (RGB frames, resized to max_side)."""

    def __init__(self, max_side: int | None, prefetch: int) -> None:
        self.max_side = max_side
        self.q: queue.Queue = queue.Queue(maxsize=prefetch)
        self.stop = threading.Event()

    def emit(self, t: float, img: np.ndarray, is_rgb: bool) -> bool:
        """Queue one frame; False when the consumer has stopped."""
        import cv2

        if not is_rgb:
            img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)  # the edge: OpenCV decodes BGR
        if self.max_side and max(img.shape[:2]) > self.max_side:
            scale = self.max_side / max(img.shape[:2])
            img = cv2.resize(img, (int(img.shape[1] * scale) // 2 * 2, int(img.shape[0] * scale) // 2 * 2),
                             interpolation=cv2.INTER_AREA)
        while not self.stop.is_set():
            try:
                self.q.put((t, img), timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def end(self) -> None:
        """Queue the end marker (dropping a frame if the consumer stopped and the queue is full)."""
        while True:
            try:
                self.q.put(_END, timeout=0.1)
                break
            except queue.Full:
                if self.stop.is_set():
                    try:
                        self.q.get_nowait()
                    except queue.Empty:
                        pass


def _decode_cv2(path: str | Path, fps: float, out: _Frames, finder: GapFinder) -> float | None:
    """OpenCV's FFmpeg build decodes to BGR faster than PyAV's swscale path; used for unrotated files.
    Returns the last frame's time when OpenCV stopped (at the end, or at damage it does not decode past),
    None when the consumer stopped reading."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 0)
    clock = _Clock(fps)
    try:
        while not out.stop.is_set():
            ok, img = cap.read()
            if not ok:
                break
            ms = cap.get(cv2.CAP_PROP_POS_MSEC)
            t = clock(ms / 1000.0 if ms or clock.n == 0 else None)
            finder.frame(t)
            if not out.emit(t, img, is_rgb=False):
                return None
    finally:
        cap.release()
    if clock.n == 0:
        raise VideoError("OpenCV decoded no frame")
    return None if out.stop.is_set() else clock.last


# Frames only the pose model sees (`read_frames(for_model=True)`, the pose workers) are decoded on one thread:
# the workers already run one per core, and FFmpeg's frame threads on top oversubscribed the cores (squat_4
# 720p, two halves side by side, three rounds each: 25.4-27.8 s of both loops together, against 27.0-27.9 s).
# Skipping the in-loop deblocking filter as well was 10% faster still but changed the poses enough to change
# the counts on 2 of 29 clips (jump_rope_11, squat_form_2) against the single-process run: not done.


def _decode_av(path: str | Path, fps: float, out: _Frames, start_s: float = 0.0, end_s: float | None = None,
               t_first: float = 0.0, for_model: bool = False, finder: GapFinder | None = None) -> None:
    """PyAV decode; with start_s > 0, seek to the keyframe before start_s and emit from the first frame at or
    after it, with timestamps counted from the file's first frame (t_first), as a read from the start gives.
    for_model: the frames feed only the pose model (one decoding thread; the same pixels). Packets that do
    not decode (damage) are skipped, as FFmpeg does; `finder` is told where (media.damage)."""
    import av
    from av.video.reformatter import VideoReformatter

    # One YUV->RGB conversion context for the whole read: a frame's own `to_ndarray(format=...)` builds a new
    # one (and, with swscale's automatic threads, its slice threads) for every frame. Same pixels; squat_4 720p:
    # 0.44 instead of 0.73 CPU-ms a frame with one thread (the pose workers), pushup_1 540p 0.26 instead of 0.48.
    to_rgb = VideoReformatter()
    sws_threads = 1 if for_model else 0  # 0: swscale's automatic slice threads
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        if for_model:
            s.codec_context.thread_count = 1
        else:
            s.thread_type = "AUTO"
        clock = _Clock(fps, t0=t_first if start_s > 0 else None)
        if start_s > 0 and s.time_base:
            c.seek(int((t_first + start_s) / s.time_base), stream=s, backward=True, any_frame=False)
        for frame in decoded_frames(c, s, finder):
            if out.stop.is_set():
                break
            if start_s > 0:
                if frame.time is None:
                    raise VideoError("a frame without a timestamp: cannot read from the middle of this file")
                if frame.time - t_first < start_s - 0.25 / fps:
                    continue  # between the keyframe and the start
            t = clock(frame.time)
            if end_s is not None and t >= end_s - 0.25 / fps:
                break
            if finder is not None:
                finder.frame(t)
            rot = _rotation_of(s, frame)
            # Unrotated files are read by OpenCV in one pass (BT.601 YUV->RGB whatever the file's tag); read
            # here (a time range), they get the same pixels, so both give the same poses. Rotated ones (only
            # ever read here) keep the file's own colour space.
            img = to_rgb.reformat(frame, format="rgb24", threads=sws_threads,
                                  **({"src_colorspace": "ITU601"} if rot == 0 else {})).to_ndarray()
            if not out.emit(t, _rotate(img, rot), is_rgb=True):
                break


def _decode(path: str | Path, info: VideoInfo, backend: str, out: _Frames, start_s: float = 0.0,
            end_s: float | None = None, for_model: bool = False, gaps: list | None = None) -> None:
    """The decode thread: frames into `out`, then an exception (if decoding failed) and the end marker."""
    finder = GapFinder(path, info.fps, info.first_frame_s, gaps)
    try:
        if start_s > 0 or end_s is not None or for_model:
            _decode_av(path, info.fps, out, start_s, end_s, info.first_frame_s, for_model, finder)
        elif info.rotation == 0 and backend != "av":
            try:
                stopped_at = _decode_cv2(path, info.fps, out, finder)
            except VideoError:
                _decode_av(path, info.fps, out, finder=finder)  # OpenCV could not open it: PyAV reads more formats
            else:
                if stopped_at is not None and stopped_at < info.duration_s - 2.0 / info.fps:
                    # OpenCV stops at damage it cannot decode: PyAV goes on from the next frame (it skips
                    # what cannot be decoded); at a file's real end it finds nothing more.
                    _decode_av(path, info.fps, out, stopped_at + 0.5 / info.fps, None, info.first_frame_s,
                               finder=finder)
        else:
            _decode_av(path, info.fps, out, finder=finder)
    except Exception as e:  # surfaced to the consumer
        out.q.put(e)
    finally:
        finder.close()
        out.end()


def read_frames(path: str | Path, max_side: int | None = None, prefetch: int = 8,
                backend: str = "auto", start_s: float = 0.0, end_s: float | None = None,
                info: VideoInfo | None = None, for_model: bool = False,
                gaps: list | None = None) -> Iterator[tuple[float, np.ndarray]]:
    """Yield (timestamp_s, rgb_frame) in presentation order, decoded on a background thread.

    Damaged data in the middle is skipped (decoding goes on after it); `gaps`, when given, receives each
    stretch that could not be read as (start_s, end_s), before the first frame after it is yielded. A file
    cut off (or undecodable to its end) yields what it could; one that yields no frame raises VideoError.
    max_side downsizes large frames (keeps aspect) to save work downstream. backend: "auto" (OpenCV for
    unrotated files, PyAV otherwise) or "av". Frames are RGB, as everywhere inside pose_core: OpenCV's BGR
    is converted here, on the decode thread, off the model's critical path.
    start_s / end_s: only the frames with start_s <= t < end_s (PyAV, seeking to the keyframe before start_s;
    timestamps as in a read from the start, so pieces of a file read separately join up).
    for_model: frames that only the pose model sees (the pose workers: PyAV, one decoding thread)."""
    info = info or probe(path)
    out = _Frames(max_side, prefetch)
    th = threading.Thread(target=_decode, args=(path, info, backend, out, start_s, end_s, for_model, gaps),
                          name="video-decode", daemon=True)
    th.start()
    produced = 0
    try:
        while True:
            item = out.q.get()
            if item is _END:
                break
            if isinstance(item, Exception):
                if produced == 0:
                    raise VideoError(f"{path}: cannot decode video ({type(item).__name__}: {item})")
                break  # truncated file: keep what was decoded
            produced += 1
            yield item
    finally:
        out.stop.set()
        th.join(timeout=5)
    if produced == 0:
        raise VideoError(f"{path}: the video has no decodable frames")
