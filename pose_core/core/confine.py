"""Path confinement: only files under a configured folder are read or written on behalf of a user.
`safe_join` refuses any name that would leave its root (.., absolute paths, symlinks out), `is_within` says
whether a path lies under a root, `shown_path` is how a message may name a path (relative, never the server's
absolute path), `sanitize_filename` turns a user's file name into a plain one."""

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
        raise PathError(f"{name!r} is outside its folder")
    return candidate


def is_within(root: str | Path, path: str | Path, allow_root: bool = False) -> bool:
    """True when path (resolved, so symlinks count where they lead) is inside root; root itself only with
    allow_root."""
    root_r = Path(root).resolve()
    p = Path(path).resolve()
    return (allow_root and p == root_r) or root_r in p.parents


def shown_path(path: str | Path, root: str | Path, root_name: str = "") -> str:
    """A path as a message may show it: relative to root (root itself is `root_name` or "."), never the
    server's absolute path; a path outside root shows its name only."""
    p = Path(path)
    try:
        root_r, p_r = Path(root).resolve(), p.resolve()
    except (OSError, RuntimeError):
        return p.name
    if p_r == root_r:
        return root_name or "."
    if root_r in p_r.parents:
        return p_r.relative_to(root_r).as_posix()
    return p.name


def strip_root(text: str, root: str | Path, root_name: str = "") -> str:
    """A message with root's absolute path taken out: paths under root become relative to it, root itself
    becomes `root_name` (or ".")."""
    for r in sorted({str(Path(root)), str(Path(root).resolve())}, key=len, reverse=True):
        text = text.replace(r.rstrip("/") + "/", "").replace(r, root_name or ".")
    return text


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
