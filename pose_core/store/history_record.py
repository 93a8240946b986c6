"""One session of the history as a record (`SessionRecord`: its reps, counts and averages), made from an
analysis or read back from JSON; `history.HistoryStore` keeps them in SQLite."""

from __future__ import annotations

import math
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from ..core.session import Summary, mean_extreme, reps_correct
from ..core.tempo import avg_rep_time_s
from ..core.types import CheckResult, RepEvent, RestSide, Verdict

SOURCES = ("video", "live")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def finite_or_none(v) -> float | None:
    return None if v is None or (isinstance(v, float) and not math.isfinite(v)) else float(v)


@dataclass(frozen=True)
class SessionRecord:
    """One session. Counts and averages are derived from `reps` unless given (records listed from the
    database carry them without loading the reps)."""

    exercise: str
    name: str
    source: str = "video"
    reps: tuple[RepEvent, ...] = ()
    rep_count: int | None = None
    reps_correct: int | None = None
    partial_reps: int = 0
    frames: int = 0
    frames_correct_pct: float | None = None
    duration_s: float = 0.0
    avg_extreme: float | None = None  # mean of each rep's primary-angle extreme ("depth")
    avg_rep_s: float | None = None
    primary_angle: str = ""
    analysis_dir: str | None = None
    rules_source: str = ""
    extra: dict = field(default_factory=dict)  # e.g. {"rest": "high"}
    created_at: str = field(default_factory=_now)
    uid: str = field(default_factory=lambda: uuid.uuid4().hex)
    id: int | None = None  # set once stored
    pending: bool = False  # listed from the spool folder: kept safely, not yet in the database

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, got {self.source!r}")
        if not self.exercise:
            raise ValueError("exercise is required")
        reps = tuple(self.reps)
        object.__setattr__(self, "reps", reps)
        if self.rep_count is None:
            object.__setattr__(self, "rep_count", len(reps))
        if self.reps_correct is None:
            object.__setattr__(self, "reps_correct", reps_correct(reps))
        if self.avg_extreme is None and reps:
            object.__setattr__(self, "avg_extreme", mean_extreme(reps, self.extra.get("rest", RestSide.HIGH)))
        if self.avg_rep_s is None and reps:
            object.__setattr__(self, "avg_rep_s", avg_rep_time_s(reps))

    @property
    def reps_correct_pct(self) -> float | None:
        return round(100.0 * self.reps_correct / self.rep_count, 1) if self.rep_count else None

    def to_json(self) -> dict:
        d = asdict(self)
        d["reps"] = [r.to_dict() for r in self.reps]
        return d

    @classmethod
    def from_json(cls, d: dict) -> "SessionRecord":
        d = dict(d)
        d["reps"] = tuple(rep_from_dict(r) for r in d.get("reps", []))
        return cls(**d)


def rep_from_dict(d: dict) -> RepEvent:
    """Inverse of RepEvent.to_dict (extra keys such as tempo are ignored)."""
    return RepEvent(index=int(d["index"]), start_s=float(d["start_s"]), end_s=float(d["end_s"]),
                    peak_s=float(d["peak_s"]), primary_min=float(d["primary_min"]), primary_max=float(d["primary_max"]),
                    verdict=Verdict(d["verdict"]), reasons=tuple(d.get("reasons", ())),
                    angle_extremes={k: (float(v[0]), float(v[1])) for k, v in d.get("angle_extremes", {}).items()},
                    checks=tuple(CheckResult.from_dict(c) for c in d.get("checks", ())), view=str(d.get("view", "")),
                    doubt=str(d.get("doubt", "") or ""))


def record_from_analysis(summary: Summary, reps: list[RepEvent], analysis_dir: str | Path | None = None,
                         rest: RestSide | str = RestSide.HIGH, name: str | None = None,
                         extra: dict | None = None) -> SessionRecord:
    """A history record for one analysed video (`summary` as pose_core.run.pipeline returns it)."""
    return SessionRecord(
        exercise=summary.exercise, name=name or summary.video or "video", source="video",
        reps=tuple(reps), partial_reps=int(summary.partial_reps), frames=int(summary.frames),
        frames_correct_pct=finite_or_none(summary.frames_correct_pct), duration_s=float(summary.duration_s),
        primary_angle=summary.primary_angle, analysis_dir=str(analysis_dir) if analysis_dir else None,
        rules_source=str(summary.rules), extra={"rest": str(rest), **(extra or {})},
    )
