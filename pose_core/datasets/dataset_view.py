"""Browsing the Penn Action dataset (what the Dataset page shows, without any UI): where the dataset is,
which folders may be opened, the clip table and its filters, the per-class summary, and one frame drawn
with its ground-truth skeleton (on the real image when the frames exist, on a blank canvas otherwise).

Confinement: the configured folder (`pose_core.store.settings.configured_penn_root`) is the root. A folder
typed by the user must be that root or inside it, and every file read for a clip (labels, frames) must
resolve inside the folder being browsed; symlinks that lead out are refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from ..core.confine import is_within, shown_path, strip_root
from ..core.rules import RuleSet
from .penn import GYM_CLASSES, PennClip, load_clip, read_frame_image, scan_dataset
from .penn_labels import LABELS, dataset_fingerprint, draw_penn_label, label_summary, labelled_frames

ALL = "All"
ANY_LABEL = "Any"
BLANK_GREY = 236  # canvas colour when the clip's frames are not present

EXPECTED_LAYOUT = """\
Penn_Action/
├── labels/             0001.mat … 2326.mat   (required: one annotation file per clip)
├── labels_index.csv    optional, only makes filtering faster
└── frames/             optional: 0001/000001.jpg …  (without them the skeleton is drawn on a blank canvas)"""


class DatasetFolderError(ValueError):
    """The folder cannot be browsed (absent, outside the configured root, no labels/). For the user."""


def resolve_dataset_folder(typed: str | None, root: Path) -> Path:
    """The folder to browse: `root` when nothing is typed, else the typed folder (absolute, or relative to
    root), which must be root or inside it, exist, and hold labels/. Raises DatasetFolderError; its
    messages name folders relative to root, never the server's absolute paths."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetFolderError("The configured dataset folder does not exist.")
    text = (typed or "").strip()
    if "\x00" in text:
        raise DatasetFolderError("That is not a folder name.")
    folder = Path(text).expanduser() if text else root
    if not folder.is_absolute():
        folder = root / folder
    if not is_within(root, folder, allow_root=True):
        raise DatasetFolderError("That folder is outside the configured dataset folder; only that folder and "
                                 "folders inside it can be opened.")
    folder = folder.resolve()
    shown = shown_path(folder, root, "The dataset folder")
    if not folder.is_dir():
        raise DatasetFolderError(f"There is no folder {shown}.")
    labels = folder / "labels"
    if not labels.is_dir() or not is_within(folder, labels, allow_root=True):
        raise DatasetFolderError(f"{shown} is not a Penn Action folder: it has no labels/ subfolder.")
    return folder


# ------------------------------------------------------------------------------------------- tables

CLIP_COLUMNS = ("clip", "action", "view", "split", "frames", "width", "height", "has_frames")


def clip_table(folder: Path, actions: Iterable[str] = GYM_CLASSES) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """One row per readable clip of `actions` (clip, action, view, split, frames, width, height,
    has_frames) and the (file, message) of every label file that could not be read."""
    scan = scan_dataset(folder, actions=tuple(actions))
    rows = [{"clip": c.id, "action": c.action, "view": c.view, "split": c.split, "frames": c.nframes,
             "width": c.width, "height": c.height, "has_frames": c.frames_dir is not None} for c in scan.clips]
    return pd.DataFrame(rows, columns=list(CLIP_COLUMNS)), [(shown_path(p, folder), strip_root(m, folder)) for p, m in scan.errors]


def labelled_by_class(folder: Path, rules: RuleSet, action: str, cache_dir: Path | None = None,
                      progress=None) -> pd.DataFrame:
    """Every frame of one class labelled by `rules` (penn_labels.labelled_frames for that class alone, so
    each class is cached on its own and shared with the Thresholds page's reference distribution).
    `progress(done, total, clip_id)` is called per clip while labelling (never when cached)."""
    return labelled_frames(folder, rules, (action,), cache_dir=cache_dir, progress=progress)


def clip_label_counts(frames: pd.DataFrame) -> pd.DataFrame:
    """Per clip: number of frames per label (columns correct, incorrect, unknown) and pct_correct."""
    if frames.empty:
        return pd.DataFrame(columns=["clip", *LABELS, "pct_correct"])
    counts = frames.groupby(["clip", "label"]).size().unstack("label", fill_value=0)
    counts = counts.reindex(columns=list(LABELS), fill_value=0)
    counts["pct_correct"] = 100.0 * counts["correct"] / counts.sum(axis=1)
    return counts.reset_index()


def filter_clips(clips: pd.DataFrame, per_clip: pd.DataFrame, actions: Iterable[str] | None = None,
                 split: str = ALL, view: str = ALL, label: str = ANY_LABEL) -> pd.DataFrame:
    """Clips of the chosen classes, split and view; with a label, only clips that have at least one frame
    with that label. `per_clip` is clip_label_counts(...). Keeps the order (by clip id)."""
    out = clips
    if actions is not None:
        out = out[out["action"].isin(list(actions))]
    if split != ALL:
        out = out[out["split"] == split]
    if view != ALL:
        out = out[out["view"] == view]
    if label != ANY_LABEL:
        if label not in LABELS:
            raise ValueError(f"label must be one of {LABELS} or {ANY_LABEL!r}, got {label!r}")
        having = set(per_clip.loc[per_clip[label] > 0, "clip"])
        out = out[out["clip"].isin(having)]
    return out.reset_index(drop=True)


def class_summary(clips: pd.DataFrame, frames: pd.DataFrame) -> pd.DataFrame:
    """Per class of `clips`: clips, frames, % correct / incorrect / unknown frames and % correct among the
    judged (not unknown) frames, from the labelled `frames` of those clips."""
    cols = ["action", "clips", "frames", "pct_correct", "pct_incorrect", "pct_unknown", "pct_correct_of_judged"]
    if clips.empty:
        return pd.DataFrame(columns=cols)
    sub = frames[frames["clip"].isin(set(clips["clip"]))]
    n_clips = clips.groupby("action").size().rename("clips")
    if sub.empty:
        out = n_clips.reset_index()
        out["frames"] = 0
        return out.reindex(columns=cols)
    summary = label_summary(sub).set_index("action")
    out = summary.join(n_clips, how="outer").reset_index()
    out["clips"] = out["clips"].fillna(0).astype(int)
    out["frames"] = out["frames"].fillna(0).astype(int)
    return out.reindex(columns=cols).sort_values("action").reset_index(drop=True)


# ------------------------------------------------------------------------------------------ one frame

def open_clip(folder: Path, clip_id: str) -> PennClip:
    """The clip `clip_id` of the folder (its labels file must resolve inside the folder)."""
    if not clip_id or not all(ch.isalnum() or ch in "_-" for ch in clip_id):
        raise DatasetFolderError(f"invalid clip id {clip_id!r}")
    path = Path(folder) / "labels" / f"{clip_id}.mat"
    if not is_within(folder, path, allow_root=True):
        raise DatasetFolderError(f"the labels of clip {clip_id} are outside the dataset folder")
    return load_clip(path)


@dataclass(frozen=True)
class FrameView:
    image_rgb: np.ndarray
    on_frame: bool  # True: drawn on the real frame; False: on a blank canvas of the clip's size
    note: str = ""  # why the real frame is not shown, when it should exist


def frame_view(clip: PennClip, i: int, folder: Path, label: str = "unknown", primary_name: str = "",
               primary_value: float = float("nan"), reason: str = "", unit: str = "deg") -> FrameView:
    """Frame i (0-based) with the ground-truth skeleton, the primary angle and the label drawn on it, as
    RGB. The image is read only when it resolves inside `folder`."""
    image, note = None, ""
    path = clip.frame_path(i)
    if path is not None:
        if not is_within(folder, path, allow_root=True):
            note = f"frame {i + 1} is outside the dataset folder; not read"
        elif path.is_file():
            image = read_frame_image(path)
            if image is None:
                note = f"frame image {path.name} could not be read"
        else:
            note = f"frame image {path.name} is missing"
    on_frame = image is not None
    if image is None:
        image = np.full((clip.height, clip.width, 3), BLANK_GREY, dtype=np.uint8)
    drawn = draw_penn_label(image, clip.xy[i], clip.visibility[i], label, primary_name, primary_value, reason, unit)
    return FrameView(image_rgb=drawn, on_frame=on_frame, note=note)


__all__ = [
    "ALL", "ANY_LABEL", "CLIP_COLUMNS", "DatasetFolderError", "EXPECTED_LAYOUT", "FrameView",
    "class_summary", "clip_label_counts", "clip_table", "dataset_fingerprint",
    "filter_clips", "frame_view", "labelled_by_class", "open_clip", "resolve_dataset_folder",
]
