"""Penn Action's angle distributions per exercise, angle and phase, as histogram counts: shipped with the
package (`reference_histograms.json`) so the Thresholds page shows a real reference on a fresh install,
without the dataset. Only counts are stored (no frames, no joints), with the dataset's citation.

Regenerate from the labels (the training split: the test split is kept for reporting) with

    python -m pose_core.datasets.reference_histograms --penn ../shared/data/penn_action

The bins are the Thresholds page's axis for each angle (`store.tuning.axis_range`), 90 per axis; values
outside the axis are left out. Phases are those the built-in rules give each frame.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.io import atomic_write_text
from ..core.rules import RuleSet, load_rules
from .penn import GYM_CLASSES

REFERENCE_FILE = Path(__file__).resolve().parent / "reference_histograms.json"
BINS = 90
PHASES = ("rest", "transition", "peak")
CITATION = ('W. Zhang, M. Zhu, K. Derpanis, "From Actemes to Action: A Strongly-supervised Representation for '
            'Detailed Action Understanding", ICCV 2013 (Penn Action dataset).')
FORMAT = 1


def bin_edges(rule, angle: str) -> tuple[float, float]:
    """(low end, bin width) of an angle's bins: the Thresholds page's axis in BINS bins."""
    from ..store.tuning import axis_range  # (store imports datasets lazily too: no cycle at import time)

    lo, hi = axis_range(rule, angle)
    return float(lo), (float(hi) - float(lo)) / BINS


def histogram(values, lo: float, width: float) -> list[int]:
    """Counts of values in BINS bins of `width` from `lo` (non-finite and out-of-axis values left out)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    idx = np.floor((v - lo) / width).astype(int)
    idx = idx[(idx >= 0) & (idx < BINS)]
    return np.bincount(idx, minlength=BINS).astype(int).tolist()


def counts_frame(hist: dict, rule, angle: str) -> pd.DataFrame:
    """One angle's {"lo", "width", "counts": {phase: [...]}} as rows lo, hi, phase, phase_name, count
    (empty bins left out)."""
    lo, width, rows = float(hist["lo"]), float(hist["width"]), []
    for phase, counts in hist["counts"].items():
        for i, n in enumerate(counts):
            if n:
                rows.append((lo + i * width, lo + (i + 1) * width, phase, int(n)))
    df = pd.DataFrame(rows, columns=["lo", "hi", "phase", "count"])
    df["phase_name"] = df["phase"].map(rule.counting.display_phase)
    return df


def penn_histograms(root: str | Path, rules: RuleSet, action: str, angles=None,
                    cache_dir: str | Path | None = None) -> dict:
    """{angle: {"lo", "width", "counts": {phase: [BINS ints]}}} of one Penn Action class (training split),
    labelled by `rules`. Each angle is binned in the column its thresholds apply to (the detrended counting
    value for a height that counts the reps), as the Thresholds page shows it."""
    from ..store.tuning import value_column
    from .penn_labels import labelled_frames

    rule = rules[action]
    df = labelled_frames(root, rules, (action,), cache_dir)
    df = df[df["split"] == "train"]
    out = {}
    for angle in (angles if angles is not None else list(rule.angles)):
        lo, width = bin_edges(rule, angle)
        col = value_column(rule, angle)
        values = pd.to_numeric(df[col], errors="coerce") if col in df.columns else pd.Series(dtype=float)
        out[angle] = {"lo": lo, "width": width,
                      "counts": {ph: histogram(values[df["phase"] == ph], lo, width) for ph in PHASES}}
    return out


def build(root: str | Path, rules: RuleSet | None = None, actions=GYM_CLASSES,
          cache_dir: str | Path | None = None, log=None) -> dict:
    """The reference document from the Penn Action labels at `root` (training split)."""
    rules = rules or load_rules()
    doc = {"format": FORMAT, "source": "Penn Action, training split, labelled by GymPose's built-in rules",
           "citation": CITATION, "bins": BINS,
           "regenerate": "python -m pose_core.datasets.reference_histograms --penn PATH/TO/penn_action",
           "exercises": {}}
    for action in actions:
        if log:
            log(f"labelling {action}...")
        doc["exercises"][action] = penn_histograms(root, rules, action, cache_dir=cache_dir)
    return doc


def load_reference(path: str | Path = REFERENCE_FILE) -> dict | None:
    """The shipped reference document, or None when it is missing or unreadable."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) and doc.get("format") == FORMAT else None


def reference_counts(rule, angle: str, doc: dict | None = None) -> pd.DataFrame | None:
    """The shipped Penn Action histogram of one exercise's angle (rows lo, hi, phase, phase_name, count), or
    None when there is none (no file, an exercise or angle Penn Action does not have, other bins)."""
    doc = doc if doc is not None else load_reference()
    hist = ((doc or {}).get("exercises", {}).get(rule.name) or {}).get(angle)
    if not hist:
        return None
    lo, width = bin_edges(rule, angle)
    if abs(float(hist["lo"]) - lo) > 1e-9 or abs(float(hist["width"]) - width) > 1e-9:
        return None  # a rules file changed this angle's axis: these bins would not line up
    df = counts_frame(hist, rule, angle)
    return df if len(df) else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Regenerate the shipped Penn Action reference histograms.")
    ap.add_argument("--penn", type=Path, required=True, help="the Penn Action folder (with labels/)")
    ap.add_argument("--out", type=Path, default=REFERENCE_FILE)
    ap.add_argument("--cache", type=Path, default=None, help="label cache folder (parquet)")
    args = ap.parse_args(argv)
    if not (args.penn / "labels").is_dir():
        print(f"error: no labels/ folder in {args.penn}", file=sys.stderr)
        return 2
    doc = build(args.penn, cache_dir=args.cache, log=lambda m: print(m, file=sys.stderr, flush=True))
    atomic_write_text(args.out, json.dumps(doc, separators=(",", ":"), allow_nan=False) + "\n")
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
