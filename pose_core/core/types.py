"""The library's own data types. MediaPipe's result types are converted to these in exactly one place
(`pose_core.media.estimator`); Penn Action annotations in `pose_core.datasets.penn`."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from enum import StrEnum

import numpy as np

from .landmarks import NUM_LANDMARKS, PoseLandmark


# ------------------------------------------------------------------------------ the vocabulary
# StrEnums: each member IS its string (== "rest", json/csv write "rest"), so files and tests are unchanged.

class Phase(StrEnum):
    """Where the movement is (the counter's phase)."""
    REST = "rest"
    TRANSITION = "transition"
    PEAK = "peak"
    UNKNOWN = "unknown"


class FrameLabelKind(StrEnum):
    """The verdict on one frame."""
    CORRECT = "correct"
    INCORRECT = "incorrect"
    UNKNOWN = "unknown"


class Verdict(StrEnum):
    """The verdict on one rep: "not judged" when no fault was found but the checks its form stands on could
    not be seen from this camera view (a push-up's body line head-on): never silently "correct"."""
    CORRECT = "correct"
    INCORRECT = "incorrect"
    NOT_JUDGED = "not judged"


class CheckStatus(StrEnum):
    """One rep check's outcome (not judged: the camera's view cannot show it, or the joints were hidden)."""
    PASS = "pass"
    FAIL = "fail"
    NOT_JUDGED = "not_judged"


class View(StrEnum):
    """The camera's view of the body."""
    SIDE = "side"
    FRONT = "front"
    REAR = "rear"
    OBLIQUE = "oblique"


class RestSide(StrEnum):
    """Which end of the primary signal is the rest position."""
    HIGH = "high"
    LOW = "low"


@dataclass(frozen=True, eq=False)
class PoseFrame:
    """One person's pose in one image.

    landmarks: (33, 3) float array: x, y normalised to the image (0..1, may be slightly outside),
        z MediaPipe's relative depth (0 when unknown).
    visibility: (33,) float array in 0..1 (probability the landmark is visible / annotated).
    image_size: (width, height) in pixels.
    timestamp_s: seconds from the start of the stream.
    world: optional (33, 3) float array: MediaPipe's metric 3D landmarks (`pose_world_landmarks`), metres,
        origin between the hips, x right / y down / z away from the camera as the image's axes; the same
        body gives the same 3D angles from any camera position. None when unknown (Penn Action, old files).
    """

    landmarks: np.ndarray
    visibility: np.ndarray
    image_size: tuple[int, int]
    timestamp_s: float = 0.0
    world: np.ndarray | None = None

    def __post_init__(self) -> None:
        lm = np.asarray(self.landmarks, dtype=np.float64)
        vis = np.asarray(self.visibility, dtype=np.float64)
        if lm.shape != (NUM_LANDMARKS, 3):
            raise ValueError(f"landmarks must have shape ({NUM_LANDMARKS}, 3), got {lm.shape}")
        if vis.shape != (NUM_LANDMARKS,):
            raise ValueError(f"visibility must have shape ({NUM_LANDMARKS},), got {vis.shape}")
        if not np.all(np.isfinite(lm)):
            raise ValueError("landmarks contain NaN or infinite values")
        if np.any((vis < 0) | (vis > 1)) or not np.all(np.isfinite(vis)):
            raise ValueError("visibility must be within 0..1")
        w, h = self.image_size
        if int(w) <= 0 or int(h) <= 0:
            raise ValueError(f"image_size must be positive, got {self.image_size}")
        if not math.isfinite(self.timestamp_s):
            raise ValueError("timestamp_s must be finite")
        if self.world is not None:
            world = np.asarray(self.world, dtype=np.float64)
            if world.shape != (NUM_LANDMARKS, 3):
                raise ValueError(f"world landmarks must have shape ({NUM_LANDMARKS}, 3), got {world.shape}")
            if not np.all(np.isfinite(world)):
                raise ValueError("world landmarks contain NaN or infinite values")
            world.setflags(write=False)
            object.__setattr__(self, "world", world)
        lm.setflags(write=False)
        vis.setflags(write=False)
        object.__setattr__(self, "landmarks", lm)
        object.__setattr__(self, "visibility", vis)
        object.__setattr__(self, "image_size", (int(w), int(h)))
        object.__setattr__(self, "timestamp_s", float(self.timestamp_s))
        # Pixel coordinates are read for every angle of every frame: computed once here, not per access.
        px = lm[:, :2] * np.array([int(w), int(h)], dtype=np.float64)
        px.setflags(write=False)
        object.__setattr__(self, "_pixels", px)

    @classmethod
    def from_pixels(cls, xy_px: np.ndarray, visibility: np.ndarray, image_size: tuple[int, int],
                    timestamp_s: float = 0.0) -> "PoseFrame":
        """Build from (33, 2) pixel coordinates (z = 0)."""
        xy = np.asarray(xy_px, dtype=np.float64)
        w, h = image_size
        lm = np.zeros((NUM_LANDMARKS, 3))
        lm[:, 0] = xy[:, 0] / w
        lm[:, 1] = xy[:, 1] / h
        return cls(lm, visibility, image_size, timestamp_s)

    @property
    def pixels(self) -> np.ndarray:
        """(33, 2) pixel coordinates (read-only)."""
        return self._pixels

    def point(self, landmark: PoseLandmark | int) -> np.ndarray:
        return self.pixels[int(landmark)]

    def with_timestamp(self, timestamp_s: float) -> "PoseFrame":
        return PoseFrame(self.landmarks, self.visibility, self.image_size, timestamp_s, self.world)


@dataclass(frozen=True)
class FrameLabel:
    """The verdict on one frame: `label` is correct, incorrect or unknown (no pose / no rule)."""

    label: FrameLabelKind
    reasons: tuple[str, ...] = ()

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)


@dataclass(frozen=True)
class CheckResult:
    """One rep check on one rep: the measured statistic against its allowed range.
    status: "pass", "fail", or "not_judged" (the camera's view cannot show it, or the joints were hidden)."""

    angle: str
    stat: str
    value: float
    min: float
    max: float
    status: CheckStatus
    message: str = ""  # the fault with its measurement, when status == "fail"
    essential: bool = False  # without it judged, the rep's form has no verdict (RepEvent.form_judged)

    def to_dict(self) -> dict:
        num = lambda x: round(x, 2) if math.isfinite(x) else None  # noqa: E731
        d = {"angle": self.angle, "stat": self.stat, "value": num(self.value), "min": num(self.min),
             "max": num(self.max), "status": self.status, "message": self.message}
        if self.essential:
            d["essential"] = True
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "CheckResult":
        num = lambda x, default: float(x) if x is not None else default  # noqa: E731
        return cls(angle=str(d["angle"]), stat=str(d["stat"]), value=num(d.get("value"), math.nan),
                   min=num(d.get("min"), -math.inf), max=num(d.get("max"), math.inf), status=CheckStatus(d["status"]),
                   message=str(d.get("message", "")), essential=bool(d.get("essential", False)))

    @property
    def target(self) -> str:
        """The allowed range in words: "<= 100", ">= 150" or "80-120"."""
        if math.isfinite(self.min) and math.isfinite(self.max):
            return f"{self.min:.0f}-{self.max:.0f}"
        return f"<= {self.max:.0f}" if math.isfinite(self.max) else f">= {self.min:.0f}"


@dataclass(frozen=True)
class RepEvent:
    """One repetition as judged by the counter and the rule's checks."""

    index: int  # 1-based among complete reps
    start_s: float
    end_s: float
    peak_s: float  # time of the extreme of the primary angle
    primary_min: float
    primary_max: float
    verdict: Verdict
    reasons: tuple[str, ...] = ()
    angle_extremes: dict[str, tuple[float, float]] = field(default_factory=dict)  # name -> (min, max)
    checks: tuple[CheckResult, ...] = ()  # every rep check, with its measured value
    view: View | str = ""  # the camera view the rep was judged from ("" when unknown)
    doubt: str = ""  # why the count of this rep is uncertain ("" when both signals saw it: sure)

    @property
    def uncertain(self) -> bool:
        return bool(self.doubt)

    @property
    def not_judged(self) -> tuple[CheckResult, ...]:
        return tuple(c for c in self.checks if c.status == CheckStatus.NOT_JUDGED)

    @property
    def form_judged(self) -> bool:
        """The rep's form verdict stands: a fault was found, or every essential check was judged (a push-up
        filmed head-on with the legs hidden passes its other checks but its body line was never seen)."""
        return self.verdict != Verdict.NOT_JUDGED

    @property
    def range_of_motion(self) -> float:
        return self.primary_max - self.primary_min

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    @property
    def down_s(self) -> float:
        """Time from leaving the rest position to the extreme (eccentric for most lifts)."""
        return self.peak_s - self.start_s

    @property
    def up_s(self) -> float:
        return self.end_s - self.peak_s

    def to_dict(self) -> dict:
        d = asdict(self)
        d["reasons"] = list(self.reasons)
        d["checks"] = [c.to_dict() for c in self.checks]
        d["range_of_motion"] = round(self.range_of_motion, 2)
        d["angle_extremes"] = {k: [round(a, 2), round(b, 2)] for k, (a, b) in self.angle_extremes.items()}
        d["duration_s"] = round(self.duration_s, 3)
        d["tempo"] = {"down_s": round(self.down_s, 3), "up_s": round(self.up_s, 3)}
        d["uncertain"] = self.uncertain
        d["form_judged"] = self.form_judged
        for k in ("start_s", "end_s", "peak_s", "primary_min", "primary_max"):
            d[k] = round(d[k], 3)
        return d

