"""Shot changes (camera cuts) from the picture.

Every frame gets a tiny *signature*: a 32x18 RGB thumbnail (1.7 KB; cheap next to the pose model). Two
consecutive signatures that differ far more than a moving person or a panning camera makes them differ are
a cut candidate; the counter decides with the pose (`core.cuts`): a cut is when the picture and the pose
jump at once. The signature is also what the pose cache stores, so cuts can be re-detected without decoding.
"""

from __future__ import annotations

import numpy as np

SIGNATURE_SIZE = (32, 18)  # (width, height) of the thumbnail


def frame_signature(img: np.ndarray) -> np.ndarray:
    """The frame's thumbnail (18 x 32 x 3 uint8) for shot-change detection."""
    import cv2

    return cv2.resize(img, SIGNATURE_SIZE, interpolation=cv2.INTER_AREA)


def signature_distance(a: np.ndarray | None, b: np.ndarray | None) -> float:
    """How different two consecutive frames look, 0 (same) .. 1 (nothing alike): the mean of a spatial term
    (mean absolute difference of the brightness-normalised thumbnails) and a colour term (histogram
    distance), so a fade or an exposure change is not a cut but a new scene is. NaN without both."""
    if a is None or b is None:
        return float("nan")
    fa, fb = a.astype(np.float32), b.astype(np.float32)
    # Brightness-normalised: a fade or auto-exposure scales the picture, a cut rearranges it.
    na = fa / max(float(fa.mean()), 8.0)
    nb = fb / max(float(fb.mean()), 8.0)
    spatial = float(np.mean(np.abs(na - nb))) / 2.0
    ha = _hist(a)
    hb = _hist(b)
    colour = 0.5 * float(np.abs(ha - hb).sum())
    return min(1.0, 0.5 * min(1.0, spatial) + 0.5 * colour)


def _hist(sig: np.ndarray, bins: int = 8) -> np.ndarray:
    q = (sig.reshape(-1, 3).astype(np.int32) * bins) // 256
    idx = q[:, 0] * bins * bins + q[:, 1] * bins + q[:, 2]
    h = np.bincount(idx, minlength=bins ** 3).astype(np.float64)
    return h / max(h.sum(), 1.0)
