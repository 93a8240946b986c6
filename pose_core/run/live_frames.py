"""Only the newest camera frame is analysed: `FreshFrames` keeps live coaching current when the analysis falls
behind the camera, and measures how far the overlay is behind it."""

from __future__ import annotations

import collections
import contextlib
import threading
import time
from typing import TYPE_CHECKING, Callable

import numpy as np

if TYPE_CHECKING:  # (live.py imports this module: no import back at run time)
    from .live import LiveSession


class FreshFrames:
    """Keeps live coaching current when processing falls behind the camera: only the newest frame is analysed.

    `process_av_frame` (the streamlit-webrtc frame callback, run synchronously) never waits for the model: it
    hands the frame to one analysis thread (replacing a frame still waiting there: that stale frame is
    skipped, never queued), waits at most `wait_s` for it, and returns the camera's current image with the
    newest overlay drawn on it (this frame's if the analysis finished in time, else the last one). So the
    video never lags, and the overlay is at most one analysis behind.

    Latency, per returned frame: from the capture of the frame whose analysis the overlay shows to the
    moment it is returned (`stats()`: median and 95th percentile over the recent frames; processed and
    skipped counts; processed fps). A frame's capture time is its own timestamp (`process_av_frame`: the
    sender's capture clock, from the RTP timestamps), put on our clock by the frame that arrived soonest
    after its capture: so a frame that waited anywhere on its way (the network, the decoder, a busy event
    loop) counts that wait; only the fastest frame's transport is left out."""

    def __init__(self, session: LiveSession, wait_s: float = 0.02, window: int = 300,
                 clock: Callable[[], float] = time.monotonic, gate=None):
        self.session = session
        self.gate = gate  # a run.live_gate.LiveGate: held while a frame is analysed (analyses on this machine wait)
        self.wait_s = wait_s
        self.clock = clock
        self._cv = threading.Condition()
        self._pending: tuple | None = None  # (rgb, t, captured_at, seq) waiting for the analysis thread
        self._seq = 0
        self._done_seq = 0
        self._overlay_captured_at: float | None = None  # capture time of the frame the overlay comes from
        self._latencies: collections.deque[float] = collections.deque(maxlen=window)
        self._done_times: collections.deque[float] = collections.deque(maxlen=60)
        self.received = self.processed = self.skipped = 0
        self._offset: float | None = None  # our clock minus the sender's capture clock (the smallest seen)
        self._last_frame_t: float | None = None
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="live-analysis", daemon=True)
        self._thread.start()

    def submit(self, rgb: np.ndarray, t: float | None, captured_at: float | None = None) -> int:
        """Hand a frame to the analysis thread (the frame must not be modified afterwards); returns its number."""
        with self._cv:
            self._seq += 1
            self.received += 1
            if self._pending is not None:
                self.skipped += 1  # stale: a newer frame replaces it
            self._pending = (rgb, t, self.clock() if captured_at is None else captured_at, self._seq)
            self._cv.notify_all()
            return self._seq

    def _run(self) -> None:
        while True:
            with self._cv:
                while self._pending is None and not self._stop:
                    self._cv.wait()
                if self._stop:
                    return
                rgb, t, captured_at, seq = self._pending
                self._pending = None
            with self.gate.held() if self.gate is not None else contextlib.nullcontext():
                self.session.process_frame(rgb, t, draw_here=False)  # never raises; overlay_on draws its overlay
            with self._cv:
                self.processed += 1
                self._done_seq = seq
                self._overlay_captured_at = captured_at
                self._done_times.append(self.clock())
                self._cv.notify_all()

    def wait_for(self, seq: int, timeout_s: float) -> bool:
        """Wait until frame `seq` (or a newer one) has been analysed, at most timeout_s."""
        end = self.clock() + timeout_s
        with self._cv:
            while self._done_seq < seq:
                left = end - self.clock()
                if left <= 0:
                    return False
                self._cv.wait(left)
            return True

    def overlay_on(self, rgb: np.ndarray, now: float | None = None) -> np.ndarray:
        """Draw the newest overlay on `rgb` (in place) and record its latency."""
        drawer = self.session.last_drawer
        with self._cv:
            captured_at = self._overlay_captured_at
        if drawer is not None and captured_at is not None:
            drawer(rgb)
            self._latencies.append((self.clock() if now is None else now) - captured_at)
        return rgb

    def process_frame(self, rgb: np.ndarray, t: float | None = None, captured_at: float | None = None) -> np.ndarray:
        """The camera's frame `rgb`, returned at once with the newest overlay drawn on it."""
        seq = self.submit(rgb.copy(), t, captured_at)
        if self.wait_s > 0:
            self.wait_for(seq, self.wait_s)
        return self.overlay_on(rgb)

    def process_av_frame(self, frame):
        """streamlit-webrtc / PyAV adapter. It blocks at most `wait_s` (the Live page runs it in streamlit-webrtc's
        async mode: on its worker thread, which is handed only the newest frame)."""
        import av

        captured_at = self.capture_time(frame.time, self.clock())
        img = frame.to_ndarray(format="rgb24")
        out = self.process_frame(img, frame.time, captured_at)
        new = av.VideoFrame.from_ndarray(out, format="rgb24")
        new.pts, new.time_base = frame.pts, frame.time_base
        return new

    def capture_time(self, frame_t: float | None, now: float) -> float:
        """When a frame stamped `frame_t` (the sender's capture clock, seconds) was captured, on our clock."""
        if frame_t is None:
            return now
        if self._last_frame_t is not None and frame_t < self._last_frame_t:
            self._offset = None  # a new stream: its clock starts again
        self._last_frame_t = frame_t
        if self._offset is None or now - frame_t < self._offset:
            self._offset = now - frame_t
        return frame_t + self._offset

    def stats(self) -> dict:
        """Latency (ms, median / p95 over the recent returned frames), processed fps, frame counts."""
        with self._cv:
            lat = sorted(self._latencies)
            d = list(self._done_times)
            counts = dict(received=self.received, processed=self.processed, skipped=self.skipped)
        pick = (lambda q: round(1000 * lat[min(len(lat) - 1, int(q * len(lat)))], 1)) if lat else (lambda q: None)
        fps = (len(d) - 1) / (d[-1] - d[0]) if len(d) >= 2 and d[-1] > d[0] else 0.0
        return dict(latency_median_ms=pick(0.5), latency_p95_ms=pick(0.95), processed_fps=round(fps, 1), **counts)

    def close(self) -> None:
        with self._cv:
            self._stop = True
            self._cv.notify_all()
        self._thread.join(timeout=5)
        if self.gate is not None:
            self.gate.close()
