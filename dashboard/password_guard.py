"""Slowing down password guessing across browser sessions (plain Python: no Streamlit here).

A delay per browser session does not slow anybody who opens ten sessions at once. So the server keeps one
count of wrong passwords per client address and one for all clients together (the address can be shared
behind a proxy, or be many), and hands out each attempt's turn:
- every client's attempts are answered one at a time, at least GAP_S apart (all clients: GAP_ALL_S apart);
- after FREE wrong ones, the wait before the next answer doubles with each further wrong one, up to MAX_WAIT_S
  (per client after FREE, for everybody after FREE_ALL); the counts are forgotten FORGET_S after the last
  wrong one, and a client's own count when it gives the right password;
- an attempt whose turn is near (within HOLD_S) waits for it; one further off is refused at once, without
  looking at the password, with the wait to say on the page.
The counts are kept in a small JSON file in the workspace (written atomically), so a restarted server does
not forget them.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from pose_core.core.io import atomic_write_json

GAP_S = 1.0  # a client's attempts are answered at least this far apart
GAP_ALL_S = 0.2  # everybody's together
FREE = 3  # wrong passwords a client may give before the waits grow
FREE_ALL = 20  # ... and all clients together
MAX_WAIT_S = 300.0
FORGET_S = 900.0  # counts are forgotten this long after the last wrong password
HOLD_S = 5.0  # an attempt whose turn is at most this far away waits for it; further away: refused at once
ALL = "*"  # the key of the count of all clients together


def wait_after(wrong: int, free: int) -> float:
    """The wait before the next answer after `wrong` wrong passwords (0 while within the free ones)."""
    return 0.0 if wrong < free else min(MAX_WAIT_S, 2.0 ** (wrong - free))


@dataclass(frozen=True)
class Outcome:
    granted: bool
    wait_s: float = 0.0  # > 0: refused without looking at the password; try again after this long
    next_wait_s: float = 0.0  # a wrong password: how long until this client's next attempt is answered


class GuessLimiter:
    """Wrong-password counts of one server (see the module's docstring). `path`: where they are kept (None:
    in memory only). `clock`: time.time (tests pass their own)."""

    def __init__(self, path: str | Path | None = None, clock: Callable[[], float] = time.time):
        self.path = Path(path) if path else None
        self.clock = clock
        self._lock = threading.Lock()
        self._wrong: dict[str, list[float]] = {}  # key -> [wrong count, time of the last wrong one]
        self._turn: dict[str, float] = {}  # key -> when its next attempt may be answered
        self._load()

    def _load(self) -> None:
        with contextlib.suppress(OSError, ValueError, TypeError, AttributeError):
            doc = json.loads(self.path.read_text())
            self._wrong = {str(k): [int(v[0]), float(v[1])] for k, v in doc.get("wrong", {}).items()}
            self._turn = {str(k): float(v) for k, v in doc.get("turn", {}).items()}

    def _save(self) -> None:
        if self.path is not None:
            with contextlib.suppress(OSError):
                atomic_write_json(self.path, {"wrong": self._wrong, "turn": self._turn})

    def _forget_old(self, now: float) -> None:
        for key in [k for k, (_, last) in self._wrong.items() if now - last > FORGET_S]:
            del self._wrong[key]
        for key in [k for k, t in self._turn.items() if t < now - FORGET_S]:
            del self._turn[key]

    def attempt(self, client: str, check: Callable[[], bool], sleep: Callable[[float], None] = time.sleep) -> Outcome:
        """One attempt from `client`: waits for its turn (if near) and returns check()'s verdict, or refuses it
        at once with the wait when its turn is further off than HOLD_S."""
        client = client or "unknown"
        with self._lock:
            now = self.clock()
            self._forget_old(now)
            turn = max(now, self._turn.get(client, 0.0), self._turn.get(ALL, 0.0))
            if turn - now > HOLD_S:
                return Outcome(False, turn - now)
            self._turn[client] = turn + GAP_S  # the next attempts queue behind this one
            self._turn[ALL] = max(self._turn.get(ALL, 0.0), turn + GAP_ALL_S)
        if turn > now:
            sleep(turn - now)
        if check():
            with self._lock:
                self._wrong.pop(client, None)
                self._save()
            return Outcome(True)
        with self._lock:
            now = self.clock()
            for key, free in ((client, FREE), (ALL, FREE_ALL)):
                count = self._wrong.get(key, [0, now])[0] + 1
                self._wrong[key] = [count, now]
                self._turn[key] = max(self._turn.get(key, 0.0), now + wait_after(count, free))
            self._save()
            return Outcome(False, next_wait_s=max(self._turn[client], self._turn[ALL]) - now)
