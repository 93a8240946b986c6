"""Path confinement: only files under a configured folder are read or written on behalf of a user.
`safe_join` refuses any name that would leave its root (.., absolute paths, symlinks out), `is_within` says
whether a path lies under a root, `sanitize_filename` turns a user's file name into a plain one."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path


class PathError(ValueError):
    """A user-supplied name would leave its folder, or is not allowed there."""


def safe_join(root: str | Path, name: str | Path) -> Path:
    """root/name, resolved, refusing anything that ends up outside root (.., absolute paths, symlinks out)."""
    root_r = Path(root).resolve()
    name = str(name)
    if not name or "\x00" in name:
        raise PathError(f"invalid file name {name!r}")
    candidate = (root_r / name).resolve()
    if candidate == root_r or root_r not in candidate.parents:
        raise PathError(f"{name!r} is outside {root_r}")
    return candidate


def is_within(root: str | Path, path: str | Path, allow_root: bool = False) -> bool:
    """True when path (resolved, so symlinks count where they lead) is inside root; root itself only with
    allow_root."""
    root_r = Path(root).resolve()
    p = Path(path).resolve()
    return (allow_root and p == root_r) or root_r in p.parents


def sanitize_filename(name: str, default: str = "upload", max_len: int = 80) -> str:
    """A plain, portable file name: no folders, ASCII letters/digits/._- only, no leading dot."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = unicodedata.normalize("NFKD", base).encode("ascii", "ignore").decode()
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", base).strip("._-")
    if not base:
        base = default
    stem, dot, ext = base.rpartition(".")
    stem = stem.strip("._-")
    if dot and stem and ext:
        ext = ext[:10].lower()
        return f"{stem[: max_len - len(ext) - 1]}.{ext}"
    return base[:max_len]
