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


class OutputError(OSError):
    """An output folder cannot be written (no permission, a read-only file system, a name too long...):
    said plainly, naming the folder the user gave, like NoSpaceError. Keeps the original errno."""

    def __init__(self, folder: str | Path, error: OSError):
        reason = (error.strerror or type(error).__name__).lower()
        super().__init__(error.errno, f"cannot write to {folder}: {reason}")
        self.folder = str(folder)

    def __str__(self) -> str:
        return self.strerror


def concerns_path(error: OSError, folder: str | Path) -> bool:
    """Whether an OSError names `folder`, something inside it, or one of its parents (creating it failed)."""
    folder = Path(os.path.abspath(folder))
    for name in (error.filename, error.filename2):
        if name is None:
            continue
        p = Path(os.path.abspath(os.fsdecode(name)))
        if p == folder or folder in p.parents or p in folder.parents:
            return True
    return False


def output_error(error: OSError, folder: str | Path) -> OSError:
    """The error to report for an OSError met while writing into `folder`: NoSpaceError for a full disk,
    OutputError when it concerns the folder (or its making), else the error itself."""
    if isinstance(error, (NoSpaceError, OutputError)):
        return error
    if is_no_space(error):
        return NoSpaceError(folder)
    return OutputError(folder, error) if concerns_path(error, folder) else error


def output_problem(folder: str | Path) -> OutputError | None:
    """Why `folder` could not be created or written into, found before any work starts (None: it looks
    writable; writing may still fail, and is then reported the same way). Checks the nearest existing
    folder on its path: write permission, a read-only file system, and each name's length."""
    folder = Path(os.path.abspath(folder))
    if any(len(os.fsencode(part)) > 255 for part in folder.parts):  # (NAME_MAX of every common file system)
        return OutputError(folder, OSError(errno.ENAMETOOLONG, os.strerror(errno.ENAMETOOLONG)))
    existing = next((p for p in (folder, *folder.parents) if os.path.lexists(p)), None)
    if existing is None or not existing.is_dir():
        return None  # (not a folder: the caller says so in its own words)
    with contextlib.suppress(OSError, AttributeError):
        if os.statvfs(existing).f_flag & os.ST_RDONLY:
            return OutputError(folder, OSError(errno.EROFS, os.strerror(errno.EROFS)))
    if not os.access(existing, os.W_OK | os.X_OK):
        return OutputError(folder, OSError(errno.EACCES, os.strerror(errno.EACCES)))
    return None
