"""Issue 25, item 1: a video damaged in the middle (64 KB of random bytes over the middle of squat_1.mp4,
10.7 s, 3 reps) is decoded past the damage as FFmpeg does: the frames after it are analysed, the count
comes out as with the undamaged file (or one less at most: a rep may straddle the damage), and the
summary's note names the stretch that could not be read instead of saying the file ends early. The
unread stretch is also handed to the pipeline as a gap (start_s, end_s). A file cut off at the end keeps
its "ends early" note (tests/test_disk_and_truncation.py)."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from helpers import SQUAT_CLIP, SQUAT_CLIP_REPS, needs_videos
from media import damage_middle
from pose_core.media.video import probe, read_frames
from pose_core.run import pipeline

# FFmpeg's own command line on the same damaged file (ffmpeg -i damaged.mp4 -f null -): 315 of 322 frames,
# nothing between 5.23 s and 5.50 s (measured; checked again below when ffmpeg is installed).
FFMPEG_FRAMES, GAP = 315, (5.25, 5.5)
NOTE = re.compile(r"^Could not read (\d+\.\d)-(\d+\.\d) s of the video \(damaged\)")


@pytest.fixture(scope="module")
def damaged(tmp_path_factory):
    if not SQUAT_CLIP.exists():
        pytest.skip(f"shared clip not found: {SQUAT_CLIP} (set GYMPOSE_SHARED_DATA)")
    return damage_middle(SQUAT_CLIP, tmp_path_factory.mktemp("damaged") / "squat_1_damaged.mp4")


def _frames_after(gaps_seen: list, **kw) -> list[float]:
    return [t for t, _ in read_frames(kw.pop("video"), max_side=256, gaps=gaps_seen, **kw)]


@needs_videos
@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")
def test_ffmpeg_itself_reads_past_the_damage(damaged):
    p = subprocess.run(["ffmpeg", "-nostdin", "-i", str(damaged), "-map", "0:v", "-vf", "showinfo", "-f", "null", "-"],
                       capture_output=True, text=True, timeout=120)
    times = [float(x) for x in re.findall(r"pts_time:([0-9.]+)", p.stderr)]
    assert len(times) == FFMPEG_FRAMES
    jumps = [(a, b) for a, b in zip(times, times[1:]) if b - a > 0.1]
    assert len(jumps) == 1 and jumps[0][0] == pytest.approx(5.233, abs=0.02) and jumps[0][1] == pytest.approx(5.5, abs=0.02)


@needs_videos
@pytest.mark.parametrize("kw", [{"backend": "auto"}, {"backend": "av"}, {"backend": "av", "for_model": True},
                                {"backend": "av", "for_model": True, "start_s": 4.0, "end_s": 7.0}],
                         ids=["opencv", "pyav", "pose-worker", "pose-worker-chunk"])
def test_every_reader_goes_past_the_damage_and_names_the_gap(damaged, kw):
    """OpenCV (the single-process frame loop) stops at the damage: PyAV takes over after it; PyAV (the
    chunked frame loop and the pose workers, also reading a time range) skips what cannot be decoded."""
    gaps: list = []
    times = _frames_after(gaps, video=damaged, **kw)
    end = kw.get("end_s", probe(damaged).duration_s)
    assert times[-1] == pytest.approx(end, abs=0.1)  # read to the end (of the range), not stopped at 5.3 s
    assert len(times) >= (FFMPEG_FRAMES if "start_s" not in kw else 80)
    (gap,) = gaps
    assert gap[0] == pytest.approx(GAP[0], abs=0.06) and gap[1] == pytest.approx(GAP[1], abs=0.02), gaps
    assert not [t for t in times if gap[0] + 0.01 < t < gap[1] - 0.01]  # nothing read inside it


@needs_videos
def test_an_undamaged_file_has_no_gap_even_with_variable_frame_rate():
    gaps: list = []
    times = _frames_after(gaps, video=SQUAT_CLIP)
    assert len(times) == 322 and gaps == []


@needs_videos
@pytest.mark.parametrize("parallel", [False, True], ids=["one-process", "chunked"])
def test_the_analysis_goes_past_the_damage_says_where_and_counts_as_the_whole_file(damaged, parallel):
    res = pipeline.analyze_video(damaged, "squat", write_video=False, parallel=parallel)
    s = res.summary
    assert s.frames >= FFMPEG_FRAMES - 2 and s.duration_s == pytest.approx(10.7, abs=0.1)  # frames after it analysed
    # squat_1 undamaged: 3 reps. Measured on the damaged copy: 3 (the damage falls between reps 2 and 3).
    assert SQUAT_CLIP_REPS - 1 <= s.reps <= SQUAT_CLIP_REPS and s.reps == 3, (s.reps, s.notes)
    assert not [n for n in s.notes if "ends early" in n], s.notes
    (note,) = [n for n in s.notes if NOTE.match(n)]
    a, b = map(float, NOTE.match(note).groups())
    assert (a, b) == (round(res.gaps[0][0], 1), round(res.gaps[0][1], 1)) and a == pytest.approx(5.3, abs=0.1) \
        and b == pytest.approx(5.5, abs=0.05)
    (gap,) = res.gaps
    assert gap[0] == pytest.approx(GAP[0], abs=0.06) and gap[1] == pytest.approx(GAP[1], abs=0.02)
    # the unread stretch is a cut for counting at the first frame after it: no rep is put together across it
    assert any(abs(c - gap[1]) < 0.1 for c in s.cuts), (s.cuts, gap)


def test_a_pause_in_a_variable_frame_rate_file_is_no_gap(tmp_path):
    """A phone that stops recording for a second leaves a jump in time but no frames in it: not damage."""
    from fractions import Fraction

    import av
    import numpy as np

    path = tmp_path / "pause.mp4"
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=15)
        s.width, s.height, s.pix_fmt = 160, 120, "yuv420p"
        s.codec_context.time_base = Fraction(1, 1000)
        for i in range(60):
            f = av.VideoFrame.from_ndarray(np.full((120, 160, 3), (i * 4) % 256, np.uint8), format="rgb24")
            f.pts, f.time_base = int(1000 * (i / 15 + (1.2 if i >= 30 else 0.0))), Fraction(1, 1000)
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    for backend in ("auto", "av"):
        gaps: list = []
        times = [t for t, _ in read_frames(path, backend=backend, gaps=gaps)]
        assert len(times) == 60 and max(b - a for a, b in zip(times, times[1:])) > 1.0
        assert gaps == [], backend


def test_the_note_names_each_stretch_and_joins_near_ones():
    from pose_core.media.damage import gaps_note

    assert gaps_note([]) == []
    (note,) = gaps_note([(6.423, 6.673), (6.715, 9.551), (12.0, 12.4)])
    assert note.startswith("Could not read 6.4-9.6 s and 12.0-12.4 s of the video (damaged): the rest was analysed")
