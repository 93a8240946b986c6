"""Live frames first: while a live frame is in the pose model, a background analysis on the same machine waits
before starting its next frame.

Why: on this 2-core machine the pose model slows down by ~30% whenever vector work runs on the other core
(the live model pinned to one core: 19.7 ms a frame alone, 25.6 ms beside another model, 26.1 ms beside a
memory copy loop, 20.5 ms beside a scalar spin loop): shared vector units and caches, which no scheduling
priority can give back. The analysis already runs at the lowest weight, so it only costs the live model
while both run at the same moment; this makes that moment rare.

The gate is a file of 8 bytes in the workspace (`Settings.live_gate`): a CLOCK_MONOTONIC time (seconds) until which a live frame is
being analysed, 0 when none is. `LiveGate.held()` (the live side) writes it around each frame's analysis, with
a short lease so that a server that dies mid-frame frees it by itself. `GateWaiter.wait()` (the analysis side,
before each model call) sleeps while it is held, at most MAX_WAIT_S per frame, so the analysis can never be
starved: it only moves its frames into the live path's gaps. Anything wrong with the file (missing, unreadable,
an impossible time) means "not held": the analysis never fails or stops because of the gate.
"""

from __future__ import annotations

import contextlib
import os
import struct
import threading
import time
from pathlib import Path
from typing import Iterator

GATE_ENV = "GYMPOSE_LIVE_GATE"  # the analysis process and its pose workers find the gate here
HOLD_S = 0.25  # the lease of one live frame (a frame's analysis takes 20-100 ms)
MAX_WAIT_S = 0.25  # the longest an analysis frame waits for the live frames
POLL_S = 0.002
REOPEN_S = 1.0  # a missing gate file is looked for again at most this often
_FMT = struct.Struct("d")


class LiveGate:
    """The live side: `with gate.held(): <analyse the frame>`. Several live sessions of one server (one gate
    object each, the same file) count their frames together: the gate is released when the last one is done."""

    _holders: dict[str, int] = {}  # path -> frames being analysed in this process
    _lock = threading.Lock()

    def __init__(self, path: str | Path, clock=time.monotonic):
        self.path = Path(path)
        self.clock = clock
        self._fd: int | None = None

    def _write(self, until: float) -> None:
        with contextlib.suppress(OSError):
            if self._fd is None:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            os.pwrite(self._fd, _FMT.pack(until), 0)

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        key = str(self.path)
        with LiveGate._lock:
            LiveGate._holders[key] = LiveGate._holders.get(key, 0) + 1
            self._write(self.clock() + HOLD_S)
        try:
            yield
        finally:
            with LiveGate._lock:
                left = LiveGate._holders[key] = LiveGate._holders[key] - 1
                self._write(0.0 if left == 0 else self.clock() + HOLD_S)

    def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None


class GateWaiter:
    """The analysis side: `waiter.wait()` before each frame's model call; returns the seconds it waited."""

    def __init__(self, path: str | Path, clock=time.monotonic, sleep=time.sleep):
        self.path = Path(path)
        self.clock, self.sleep = clock, sleep
        self._fd: int | None = None
        self._next_open = 0.0

    def _held_until(self) -> float:
        now = self.clock()
        if self._fd is None:
            if now < self._next_open:
                return 0.0
            try:
                self._fd = os.open(self.path, os.O_RDONLY)
            except OSError:
                self._next_open = now + REOPEN_S
                return 0.0
        try:
            raw = os.pread(self._fd, _FMT.size, 0)
        except OSError:
            return 0.0
        if len(raw) != _FMT.size:
            return 0.0
        until = _FMT.unpack(raw)[0]
        # (a time beyond one lease from now is not one our live side wrote: ignored)
        return until if until == until and now < until <= now + HOLD_S else 0.0

    def wait(self) -> float:
        start = self.clock()
        while self._held_until() and self.clock() - start < MAX_WAIT_S:  # (0.0: not held)
            self.sleep(POLL_S)
        return self.clock() - start

    def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None


def waiter_from_env() -> GateWaiter | None:
    """The gate this analysis process was given ($GYMPOSE_LIVE_GATE), if any."""
    path = os.environ.get(GATE_ENV, "").strip()
    return GateWaiter(path) if path else None
