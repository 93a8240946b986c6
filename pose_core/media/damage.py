"""Reading a video past damage in its middle, as FFmpeg's command line does: a packet that cannot be decoded
is skipped and decoding goes on with the next one, so a few KB of garbage cost a fraction of a second of
frames instead of the rest of the file.

`GapFinder` watches the frames' timestamps as they are read and names the stretches that could not be read
(start_s, end_s): a jump in time where the file holds frames (its packets are there; they did not decode),
or right after the decoder reported an error. A pause in a variable-frame-rate phone video holds no packets
and is no gap. A file that stops decoding before its end is not a gap either: that is the pipeline's
"ends early" note.
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import Iterator

# A jump in timestamps longer than this many frame intervals (and GAP_MIN_S) may be a gap. Shorter ones are
# what variable-frame-rate phone videos do, and a tenth of a second lost is nothing to report.
GAP_MIN_FRAMES = 3.5
GAP_MIN_S = 0.15
# A decoder error names the next jump a gap if it comes within this many frames (frame threads and B-frame
# reordering put the missing frames' place a few frames after the error).
ERROR_WINDOW_FRAMES = 24


def decoded_frames(container, stream, finder: "GapFinder | None" = None) -> Iterator:
    """The stream's frames in presentation order; a packet the decoder refuses is skipped (told to `finder`).
    An error of the demuxer itself (a file cut off, a container too damaged to go on) is raised."""
    import av

    for packet in container.demux(stream):
        try:
            frames = packet.decode()
        except av.error.FFmpegError:
            if finder is not None:
                finder.error()
            continue
        yield from frames


class GapFinder:
    """Call `error()` when a packet could not be decoded and `frame(t)` before each frame read (timestamps in
    seconds from the first frame, increasing); the gaps found are appended to `sink` as (start_s, end_s):
    start_s is when the first missing frame was due, end_s the first frame read again. With sink=None
    nothing is looked for (the pose workers: their reader's gaps are the frame loop's)."""

    def __init__(self, path: str | Path, fps: float, t_first: float, sink: list | None):
        self.path, self.t_first, self.sink = str(path), t_first, sink
        self.frame_s = 1.0 / fps if fps and math.isfinite(fps) and fps > 0 else 1.0 / 30
        self.last: float | None = None
        self._error_window = 0  # frames left in which a jump counts as a gap because of a decoder error
        self._index = None  # the container, opened on the first jump to look for packets in it

    def error(self) -> None:
        self._error_window = ERROR_WINDOW_FRAMES

    def frame(self, t: float) -> None:
        if self.sink is not None and self.last is not None:
            jump = t - self.last
            if jump > max(GAP_MIN_FRAMES * self.frame_s, GAP_MIN_S) and \
                    (self._error_window > 0 or self._holds_frames(self.last, t)):
                self.sink.append((round(self.last + self.frame_s, 3), round(t, 3)))
                self._error_window = 0
        self._error_window = max(0, self._error_window - 1)
        self.last = t

    def _holds_frames(self, t0: float, t1: float) -> bool:
        """Whether the file has video packets strictly between t0 and t1 (demuxed only, never decoded)."""
        import av

        try:
            if self._index is None:
                self._index = av.open(self.path)
            c = self._index
            s = c.streams.video[0]
            if not s.time_base:
                return False
            lo, hi = self.t_first + t0 + 0.5 * self.frame_s, self.t_first + t1 - 0.5 * self.frame_s
            c.seek(int(lo / s.time_base), stream=s, backward=True, any_frame=False)
            for packet in c.demux(s):
                if packet.pts is not None and lo < float(packet.pts * s.time_base) < hi:
                    return True
                order = packet.dts if packet.dts is not None else packet.pts
                if order is not None and float(order * s.time_base) >= hi:
                    return False  # (decode order: B-frames' times come after their reference's)
        except (av.error.FFmpegError, OSError, ValueError):
            return False
        return False

    def close(self) -> None:
        if self._index is not None:
            with contextlib.suppress(Exception):
                self._index.close()
            self._index = None


def gaps_note(gaps: list[tuple[float, float]], join_s: float = 0.5) -> list[str]:
    """The summary's note naming the stretches that could not be read (none: no note). Stretches less than
    join_s apart are named as one (a frame or two read in the middle of the damage)."""
    spans: list[list[float]] = []
    for a, b in gaps:
        if spans and a - spans[-1][1] < join_s:
            spans[-1][1] = b
        else:
            spans.append([a, b])
    if not spans:
        return []
    text = " and ".join(f"{a:.1f}-{b:.1f} s" for a, b in spans[:5]) + (" and more" if len(spans) > 5 else "")
    return [f"Could not read {text} of the video (damaged): the rest was analysed; a rep across a damaged "
            "stretch may be missed."]
