"""What a page reads of a live session: an immutable snapshot (`LiveSnapshot`) and, in auto mode, where the
recognition of the exercise stands (`AutoStatus`). `live.LiveSession` publishes them under its lock."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..core.types import FrameLabelKind, Phase, RepEvent


@dataclass(frozen=True)
class AutoStatus:
    """Exercise recognition in a live session (`LiveSnapshot.auto`; None in manual mode)."""

    locked: bool = False
    exercise: str | None = None  # the exercise being counted; None while recognising
    source: str = "none"  # "auto" (recognised) | "user" (overridden) | "none" (still recognising)
    confidence: float = 0.0  # top probability of the latest prediction (of the lock, once locked)
    top: tuple[tuple[str, float], ...] = ()  # the latest prediction's best candidates
    reason: str = ""  # why the latest prediction could not tell ("" when it could, or none was made yet)
    streak: int = 0  # confident predictions of the same exercise in a row
    needed: int = 3  # ... needed to lock
    locked_at_s: float | None = None  # session time of the lock / override
    predictions: int = 0  # predictions made so far (one per `every_s` of stream time until the lock)
    recognition_ms: float = 0.0  # mean time the recogniser added per frame while recognising
    recognition_max_ms: float = 0.0  # its worst frame (a frame on which a prediction ran)

    @property
    def recognising(self) -> bool:
        return not self.locked

    @property
    def candidate(self) -> str | None:
        return self.top[0][0] if self.top else None


@dataclass(frozen=True)
class LiveSnapshot:
    """Everything the page shows about a live session at one moment."""

    exercise: str  # "" while auto mode is still recognising (nothing is counted then)
    display_name: str
    primary_angle: str
    frames_processed: int = 0
    frames_with_pose: int = 0
    errors: int = 0
    last_error: str = ""
    rep_count: int = 0
    partial_reps: int = 0
    phase: str = Phase.UNKNOWN  # display name of the current phase
    label: FrameLabelKind = FrameLabelKind.UNKNOWN
    feedback: tuple[str, ...] = ()
    primary_value: float = math.nan
    reps: tuple[RepEvent, ...] = ()  # times relative to the first processed frame
    fps: float = 0.0  # processed frames per second over the last ~2 s
    process_ms: float = 0.0  # mean processing time per frame (pose + analysis + overlay), recent frames
    duration_s: float = 0.0
    labels: dict[str, int] = field(default_factory=dict)
    reps_correct: int = 0
    frames_correct_pct: float | None = None  # % of the judged frames labelled correct
    saved_id: int | None = None  # set once the session was stored in the history
    auto: AutoStatus | None = None  # exercise recognition (None: the exercise was given)
    view: str | None = None  # the camera's view of the body (side / front / rear / oblique)
    notes: tuple[str, ...] = ()  # why nothing is counted yet, with the numbers (empty while it counts)


    @property
    def counting(self) -> bool:
        """An exercise is known (given, or recognised and locked) and reps are being counted."""
        return bool(self.exercise)
