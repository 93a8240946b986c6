"""Writing video: `H264Writer`, a browser-playable H.264 mp4 from RGB frames (reading is media.video)."""

from __future__ import annotations

import queue
import threading
from pathlib import Path
from typing import Callable

import numpy as np

from ..core.io import NoSpaceError, is_no_space

_END = object()  # the writer thread's last item


def _nearly_full(folder: Path, min_free_bytes: int = 1 << 20) -> bool:
    """Less than min_free_bytes free where the output goes (an encoder that died there ran out of space)."""
    import shutil

    try:
        return shutil.disk_usage(folder).free < min_free_bytes
    except OSError:
        return False


class H264Writer:
    """Write RGB frames to a browser-playable H.264 mp4 (libx264, yuv420p, +faststart).

    The caller's thread only queues the frame; a writer thread draws the overlay (optional `draw` callback)
    and converts the frame to I420 (OpenCV, SIMD) straight into a shared-memory slot; encoding and muxing
    run in a helper process (`python -m pose_core.media.encoder`: the second core, and no
    contention with the pose model for Python's GIL). Slots go back and forth over the helper's stdin/stdout.
    Frames may come with timestamps (variable frame rate is preserved); sizes are made even. Memory is
    bounded by the number of slots, whatever the video's length."""

    def __init__(self, path: str | Path, width: int, height: int, fps: float, crf: int = 26, preset: str = "ultrafast",
                 queue_size: int = 6):
        import subprocess
        import sys
        from multiprocessing import shared_memory

        import cv2

        self.path = str(path)
        self._code = cv2.COLOR_RGB2YUV_I420
        self.width, self.height = width - width % 2, height - height % 2
        if self.width < 2 or self.height < 2:
            raise ValueError(f"frame size too small to encode: {width}x{height}")
        self._slot_bytes = self.width * self.height * 3 // 2
        self._shm = shared_memory.SharedMemory(create=True, size=self._slot_bytes * queue_size)
        self._slots_free = list(range(queue_size))
        self._last_pts = -1
        self._closed = False
        self._error: str | None = None
        self._reported = False
        self.frames_written = 0
        cmd = [sys.executable, "-m", "pose_core.media.encoder", self.path, str(self.width), str(self.height),
               str(max(1, int(round(fps)))), str(crf), preset, self._shm.name, str(self._slot_bytes)]
        # Its own process group: a Ctrl-C in the terminal reaches only us, so the interrupt is reported as one
        # (the encoder is stopped by close(), or ends when its input pipe closes), not as an encoder failure.
        # (Not its own session: Linux schedules each session as a group of its own, so an encoder there would
        # take an equal share of the CPU whatever our nice value: a live session beside an analysis would lag.)
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True, bufsize=1, process_group=0)
        self._q: queue.Queue = queue.Queue(maxsize=queue_size)
        self._thread = threading.Thread(target=self._render_loop, name="video-render", daemon=True)
        self._thread.start()

    def _raised(self) -> Exception:
        """The exception for the recorded error: NoSpaceError when the disk is full (the encoder's message
        says so, or it failed with almost no space left in the output folder), else RuntimeError."""
        folder = Path(self.path).parent
        if is_no_space(self._error) or _nearly_full(folder):
            return NoSpaceError(folder)
        return RuntimeError(self._error)

    def _fail(self) -> Exception:
        if self._error is not None:
            return self._raised()
        err = ""
        try:
            self._proc.kill()
            _, err = self._proc.communicate(timeout=5)
        except Exception:
            pass
        lines = [ln for ln in (err or "").strip().splitlines() if ln.strip()]
        # (the last line that is ours: FFmpeg may log more after the exception's line)
        ours = [ln for ln in lines if not ln.startswith("[")]
        last = (ours or lines)[-1] if lines else f"encoder exited ({self._proc.returncode})"
        self._error = f"video encoding failed: {last}"
        return self._raised()

    def _take_slot(self) -> int:
        if self._slots_free:
            return self._slots_free.pop()
        try:
            line = self._proc.stdout.readline()  # blocks (without the GIL) until the encoder frees a slot
        except (OSError, ValueError):
            line = ""
        if not line.strip().isdigit():
            raise self._fail()
        return int(line)

    def write(self, timestamp_s: float, image: np.ndarray, draw: Callable[[np.ndarray], object] | None = None) -> None:
        """Queue a frame. `draw(image)`, if given, runs on the writer's thread just before conversion (so an
        overlay is drawn off the caller's thread; OpenCV drawing releases the GIL). The image must not be
        modified by the caller afterwards."""
        if self._error is not None:
            self._reported = True
            raise self._raised()
        if self._closed:
            raise RuntimeError("writer is closed")
        while True:
            try:
                self._q.put((timestamp_s, image, draw), timeout=0.5)
                return
            except queue.Full:
                if self._error is None and not self._thread.is_alive():  # (a bug there must not hang us)
                    self._error = "video encoding failed: the writer's thread stopped"
                if self._error is not None:
                    self._reported = True
                    raise self._raised() from None

    def _render_loop(self) -> None:
        import cv2

        while True:
            item = self._q.get()
            if item is _END:
                return
            if self._error is not None:
                continue  # keep draining so the producer never blocks
            timestamp_s, image, draw = item
            try:
                if draw is not None:
                    draw(image)
                if image.shape[1] != self.width or image.shape[0] != self.height:
                    image = image[: self.height, : self.width]
                slot = self._take_slot()
                dst = np.ndarray((self.height * 3 // 2, self.width), np.uint8, buffer=self._shm.buf,
                                 offset=slot * self._slot_bytes)
                cv2.cvtColor(np.ascontiguousarray(image), self._code, dst=dst)
                del dst
                pts = int(round(timestamp_s * 1000))
                if pts <= self._last_pts:
                    pts = self._last_pts + 1
                self._last_pts = pts
                try:
                    self._proc.stdin.write(f"{slot} {pts}\n")
                except (BrokenPipeError, OSError, ValueError):
                    raise self._fail() from None
                self.frames_written += 1
            except BaseException as e:
                if self._error is None:
                    self._error = (f"video encoding failed: {e}" if isinstance(e, NoSpaceError) or not
                                   (isinstance(e, RuntimeError) and e.args) else e.args[0])

    def close(self) -> None:
        """Finish the file. Raises RuntimeError if encoding failed and the caller was not told yet."""
        if self._closed:
            return
        self._closed = True
        while self._thread.is_alive():  # (a thread that died cannot take the end: do not wait for it)
            try:
                self._q.put(_END, timeout=0.5)
                break
            except queue.Full:
                continue
        self._thread.join()
        try:
            if self._error is None:
                status = ""
                try:
                    self._proc.stdin.write("END\n")
                    self._proc.stdin.close()
                    for line in self._proc.stdout:  # drain freed-slot lines up to the final status
                        if not line.strip().isdigit():
                            status = line.strip()
                            break
                    self._proc.wait(timeout=60)
                except Exception:
                    pass
                if not status.startswith("OK"):
                    self._fail()
        finally:
            if self._proc.poll() is None:
                self._proc.kill()
                self._proc.wait()
            self._shm.close()
            self._shm.unlink()
        if self._error is not None and not self._reported:
            self._reported = True
            raise self._raised()

    def __enter__(self) -> "H264Writer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
