"""The analysis' place on the CPU: background work that never starves, and that gives way to live coaching.

- `lower_priority(nice)`: the calling thread (and what it starts from then on) at a raised nice value. Not
  SCHED_IDLE any more: that runs only when no other task of the group wants the CPU, so beside any busy
  program an analysis crept (an 11.5 s clip took 287 s with two CPU-bound programs running).
- `background_group()`: the analysis process in a scheduling group of its own (Linux schedules each session
  as one group, "autogroup"; nice and policies act only inside it). The group's own nice is what it weighs
  against other programs: `NORMAL_GROUP_NICE` (0, an equal share) normally, `LIVE_GROUP_NICE` (19, the
  lowest weight) while a live session runs on this server. Unlike a thread's SCHED_IDLE or a lowered nice,
  a group's nice of 0 or more can be changed back and forth without privileges.
- `LiveYield`: a thread of the analysis process that watches the live gate (run.live_gate: held while a
  live frame is analysed) and lowers the group while live frames came within the last `LIVE_QUIET_S`.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time

NORMAL_GROUP_NICE = 0  # no live session: an equal share beside other programs (never starved)
LIVE_GROUP_NICE = 19  # a live session runs: the lowest weight Linux gives a group
LIVE_QUIET_S = 3.0  # this long without a live frame: the live session is over, back to the normal share
WATCH_S = 0.2  # how often the gate is looked at


def lower_priority(nice: int) -> bool:
    """Make the calling thread, and the threads and processes it starts from now on, background work: its
    nice value raised by `nice` (on Linux per thread, inherited by what the thread starts). False where the
    platform does not allow it."""
    tid = threading.get_native_id()
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice))
        return True
    return False


def set_group_nice(nice: int) -> bool:
    """The nice value of this process's scheduling group (autogroup); False where there is none."""
    try:
        with open("/proc/self/autogroup", "w") as f:
            f.write(str(int(nice)))
        return True
    except OSError:
        return False


def group_nice(pid: int | str = "self") -> int | None:
    """The nice value of a process's scheduling group ("/autogroup-N nice K"), None where unknown."""
    try:
        with open(f"/proc/{pid}/autogroup") as f:
            return int(f.read().split()[-1])
    except (OSError, ValueError, IndexError):
        return None


def background_group(nice: int = NORMAL_GROUP_NICE) -> bool:
    """Put this whole process (and what it starts from now on) in a scheduling group of its own, at `nice`.
    Needed because Linux (autogroup) schedules each session as one group: left in the web server's session,
    an analysis would weigh as much as the server and the live session together. A new session (setsid)
    makes a new autogroup. False where this is not possible (not Linux, autogroup off, not allowed)."""
    with contextlib.suppress(AttributeError, OSError):
        if os.getsid(0) != os.getpid():
            os.setsid()
    return set_group_nice(nice)


class LiveYield:
    """Watches the live gate from a thread of its own: the group's nice is LIVE_GROUP_NICE while live frames
    come (and LIVE_QUIET_S after the last), NORMAL_GROUP_NICE otherwise. `live` says which."""

    def __init__(self, gate_path: str, clock=time.monotonic):
        from .live_gate import GateWaiter

        self.waiter = GateWaiter(gate_path, clock=clock)
        self.clock = clock
        self.live = False
        self._last_live = -1e9
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gympose-live-yield", daemon=True)

    def start(self) -> "LiveYield":
        self._thread.start()
        return self

    def check(self) -> bool:
        """One look at the gate; changes the group's nice when the answer changes. Returns `live`."""
        now = self.clock()
        if self.waiter._held_until():
            self._last_live = now
        live = now - self._last_live < LIVE_QUIET_S
        if live != self.live:
            set_group_nice(LIVE_GROUP_NICE if live else NORMAL_GROUP_NICE)
            self.live = live
        return live

    def _run(self) -> None:
        while not self._stop.wait(WATCH_S):
            with contextlib.suppress(Exception):  # (the analysis never fails for the watcher's sake)
                self.check()

    def stop(self) -> None:
        self._stop.set()
