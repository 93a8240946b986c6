"""What every `gympose` sub-command shares: exit codes, one-line errors, the progress bar and log on stderr,
native libraries kept quiet, an output folder checked before any work starts."""

from __future__ import annotations

import os
import sys
from pathlib import Path

EXIT_BAD_INPUT = 2
EXIT_FAILURE = 1
EXIT_INTERRUPTED = 130


def quiet_native_logs() -> None:
    """MediaPipe/TFLite write INFO/WARNING lines straight to file descriptor 2 from C++. Keep stderr for
    our own messages: native fd 2 goes to /dev/null, Python's sys.stderr keeps the real stderr."""
    from .store.settings import native_logs_wanted, quiet_native_libraries

    quiet_native_libraries()
    if native_logs_wanted():
        return
    try:
        sys.stderr.flush()
        real = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
        sys.stderr = os.fdopen(real, "w", buffering=1)
    except OSError:
        pass


class Progress:
    """A progress bar on stderr (tqdm), silent when stderr is not wanted."""

    def __init__(self, enabled: bool, desc: str, unit: str = "frame"):
        self.bar = None
        self.enabled, self.desc, self.unit = enabled, desc, unit

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self.bar is None:  # created on the first frame, so an early error prints no empty bar
            from tqdm import tqdm

            self.bar = tqdm(total=total or None, unit=self.unit, desc=self.desc, file=sys.stderr, dynamic_ncols=True,
                            leave=False, disable=None)  # disable=None: only on a terminal
        if total and self.bar.total != total:
            self.bar.total = total
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def fail(msg: str, code: int = EXIT_BAD_INPUT) -> int:
    print(f"error: {msg}", file=sys.stderr)
    return code


def not_a_folder(out: Path) -> Path | None:
    """The first existing path of out and its parents when it is not a folder (out cannot be created)."""
    for p in (out, *out.parents):
        if os.path.lexists(p):  # (False, not an error, for a name too long: output_problem says that)
            return None if p.is_dir() else p
    return None


def output_refused(out: Path) -> str | None:
    """Why the output folder cannot be used, said before any work starts (None: it looks usable)."""
    from .core.io import output_problem

    blocked = not_a_folder(out)
    if blocked is not None:
        return f"--out {out}: {blocked} exists and is not a folder"
    problem = output_problem(out)
    return str(problem) if problem is not None else None


def stderr_log(quiet: bool):
    """A log function for a command's messages, written above its progress bar (none with --quiet)."""
    def log(msg: str) -> None:
        if not quiet:
            from tqdm import tqdm

            tqdm.write(msg, file=sys.stderr)

    return log
