"""Small file helpers: atomic writes (write to a temporary name in the same folder, then rename) so a
crash or a bad input never leaves a half-written file and never destroys what was saved before."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path`, on error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or (path.suffix + ".tmp"), dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, allow_nan=False) + "\n")


class NoSpaceError(OSError):
    """The disk (or quota) is full while writing into `folder`: said plainly instead of "encoder exited (1)".
    An OSError with errno ENOSPC, so code that handles OSError still does."""

    def __init__(self, folder: str | Path):
        super().__init__(errno.ENOSPC, f"no space left on device: {folder}")
        self.folder = str(folder)

    def __str__(self) -> str:
        return self.strerror


# How a full disk shows up in a helper process's message (ffmpeg/PyAV: "[Errno 28] No space left on device").
_NO_SPACE_TEXT = ("no space left on device", "errno 28", "disk quota exceeded", "errno 122")


def is_no_space(error: BaseException | str | None) -> bool:
    """True when an exception (or a helper's error text) says the disk or the quota is full."""
    if error is None:
        return False
    if isinstance(error, BaseException):
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        error = str(error)
    return any(t in str(error).lower() for t in _NO_SPACE_TEXT)
