"""Real-world files: MPEG-4 Part 2, rotation metadata, variable frame rate; the writer's output."""
import contextlib
import shutil
import subprocess
from fractions import Fraction

import numpy as np
import pytest

from helpers import VIDEOS, needs_videos
from pose_core.run.pipeline import analyze_video
from pose_core.media.video import VideoError, probe, read_frames
from pose_core.media.writer import H264Writer

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed (make system-deps)")


def reencode(src, dst, codec="mpeg4", keep=lambda i: True, pts=None):
    import av

    info = probe(src)
    with av.open(str(dst), "w") as c:
        s = c.add_stream(codec, rate=int(round(info.fps)))
        s.width, s.height, s.pix_fmt = info.width, info.height, "yuv420p"
        s.codec_context.time_base = Fraction(1, 1000)
        if codec == "mpeg4":
            s.bit_rate = 2_000_000
        for i, (t, img) in enumerate(read_frames(src)):
            if not keep(i):
                continue
            f = av.VideoFrame.from_ndarray(img, format="rgb24")  # read_frames yields RGB
            f.pts, f.time_base = int(round(t * 1000)), Fraction(1, 1000)
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return dst


@needs_videos
def test_mpeg4_part2_input(tmp_path):
    v = reencode(VIDEOS / "pushup_4.mp4", tmp_path / "mp4v.mp4", "mpeg4")
    assert probe(v).codec == "mpeg4"
    res = analyze_video(v, "pushup", tmp_path / "out")
    assert res.summary.reps == 4
    assert probe(tmp_path / "out" / "annotated.mp4").codec == "h264"


@needs_videos
def test_frames_for_the_model_are_the_same_frames():
    """The pose workers' decode (one thread) gives every frame, with the same timestamps and pixels as the
    frame loop's; so does a time range of it (what a chunk reads)."""
    v = VIDEOS / "squat_10.mp4"
    n = 0
    for (t, a), (tm, b) in zip(read_frames(v, backend="av"), read_frames(v, backend="av", for_model=True),
                               strict=True):  # streamed: the clip's frames are never all held
        assert tm == t and np.array_equal(a, b)
        n += 1
    assert n > 600
    whole = ((t, img) for t, img in read_frames(v, backend="av") if 10.0 - 1e-3 <= t < 12.0 - 1e-3)
    part = read_frames(v, backend="av", for_model=True, start_s=10.0, end_s=12.0)
    pairs = list(zip(part, whole, strict=True))
    assert len(pairs) > 30 and all(tp == tw and np.array_equal(a, b) for (tp, a), (tw, b) in pairs)


@needs_videos
def test_one_conversion_context_a_read_gives_every_frame_its_own_pixels():
    """A PyAV read keeps one YUV->RGB context for all its frames (one thread for the model's): each frame's
    pixels are still those of the frame converted on its own, and those of OpenCV's decode (the single-process
    path), in a whole read and in a time range (a chunk); also after a size change between two reads."""
    import itertools

    import av

    for v in (VIDEOS / "pushup_1.mp4", VIDEOS / "squat_10.mp4"):
        with av.open(str(v)) as c:
            own = [f.to_ndarray(format="rgb24", src_colorspace="ITU601")
                   for f in itertools.islice(c.decode(video=0), 40)]
        model = [img for _, img in itertools.islice(read_frames(v, backend="av", for_model=True), 40)]
        cv = [img for _, img in itertools.islice(read_frames(v), 40)]
        assert len(own) == len(model) == len(cv) == 40
        assert all(np.array_equal(a, b) and np.array_equal(a, c) for a, b, c in zip(own, model, cv)), v.name
        part = list(read_frames(v, backend="av", for_model=True, start_s=4.0, end_s=5.0))
        whole = [(t, img) for t, img in read_frames(v, backend="av") if 4.0 - 1e-3 <= t < 5.0 - 1e-3]
        assert len(part) == len(whole) > 20
        assert all(tp == tw and np.array_equal(a, b) for (tp, a), (tw, b) in zip(part, whole))


@needs_videos
def test_variable_frame_rate_uses_timestamps(tmp_path):
    # Drop frames irregularly (like a phone under load): timestamps keep real time, counts stay right.
    v = reencode(VIDEOS / "squat_1.mp4", tmp_path / "vfr.mp4", "libx264", keep=lambda i: i % 3 != 1 or 100 < i < 200)
    times = [t for t, _ in read_frames(v)]
    gaps = np.diff(times)
    assert gaps.max() > 1.8 * gaps.min()  # really variable
    assert times[-1] == pytest.approx(10.7, abs=0.1)  # real duration, not frames / nominal fps
    res = analyze_video(v, "squat", None)
    assert res.summary.reps == 3
    assert res.summary.duration_s == pytest.approx(10.7, abs=0.15)


@needs_videos
@needs_ffmpeg
def test_rotation_metadata_is_applied(tmp_path):
    # Store the pixels turned on their side with a "display rotated" tag, as phones do.
    src = VIDEOS / "pushup_4.mp4"
    turned, sideways = tmp_path / "turned.mp4", tmp_path / "sideways.mp4"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(src), "-vf", "transpose=1", "-c:v", "libx264",
                    str(turned)], check=True)
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(turned), "-c", "copy",
                    "-metadata:s:v:0", "rotate=90", str(sideways)], check=True)
    info = probe(sideways)
    assert info.rotation in (90, 270)
    assert (info.width, info.height) == (640, 360)  # upright again
    t, first = next(iter(read_frames(sideways)))
    t0, orig = next(iter(read_frames(src)))
    assert first.shape == orig.shape
    assert np.abs(first.astype(int) - orig.astype(int)).mean() < 12  # same picture, only re-encoded
    assert analyze_video(sideways, "pushup", None).summary.reps == 4


def test_writer_makes_browser_playable_h264(tmp_path):
    out = tmp_path / "w.mp4"
    with H264Writer(out, 321, 241, 25) as w:  # odd sizes are made even
        for i in range(25):
            w.write(i / 25, np.full((241, 321, 3), i * 10, np.uint8))
    info = probe(out)
    assert info.codec == "h264" and (info.width, info.height) == (320, 240)
    assert info.frame_count == 25
    head = out.read_bytes()[:4096]
    assert b"moov" in head  # +faststart: the index is at the front, so a browser can start playing at once


def test_probe_errors(tmp_path):
    with pytest.raises(VideoError, match="not found"):
        probe(tmp_path / "missing.mp4")
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 1000)
    with pytest.raises(VideoError, match="not a video"):
        probe(bad)
    with pytest.raises(VideoError, match="not a file"):
        probe(tmp_path)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_writer_whose_thread_died_raises_instead_of_hanging(tmp_path, monkeypatch):
    """A bug in the writer's own thread (it once lost a name when the writer moved module) must reach the
    caller as an error: before, write() waited forever for room in the thread's queue."""
    def broken(self):
        raise NameError("_END")

    monkeypatch.setattr(H264Writer, "_render_loop", broken)
    w = H264Writer(tmp_path / "x.mp4", 64, 48, 10)
    try:
        with pytest.raises(RuntimeError, match="writer's thread stopped"):
            for i in range(50):
                w.write(i / 10, np.zeros((48, 64, 3), np.uint8))
    finally:
        with contextlib.suppress(RuntimeError):
            w.close()


def test_writer_failure_is_reported_not_hung(tmp_path):
    import os

    before = set(os.listdir("/dev/shm")) if os.path.isdir("/dev/shm") else set()
    w = H264Writer(tmp_path / "no" / "such" / "dir" / "x.mp4", 64, 48, 10)
    with pytest.raises(RuntimeError, match="video encoding failed"):
        for i in range(50):
            w.write(i / 10, np.zeros((48, 64, 3), np.uint8))
        w.close()
    w.close()  # idempotent
    after = set(os.listdir("/dev/shm")) if os.path.isdir("/dev/shm") else set()
    assert after <= before  # the shared-memory slots were released
