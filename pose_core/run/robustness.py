"""Does the count survive the way people film? `python -m pose_core robustness FOLDER`.

For every clip of FOLDER/videos.csv (the format `evaluate` reads) and every transform of
`media.variants.TRANSFORMS` (a cut to a zoomed / mirrored / rotated picture, a handheld camera, a box over
a limb, the feet or the head out of frame, low light, 320x240, 15 fps, portrait...), a transformed copy of
the clip is made (cached on disk by the clip's SHA-256, the transform, its parameters and the seed) and
counted with the clip's labelled exercise. Each count is compared with the count on the untransformed clip
("unchanged") and with the hand count ("exact"). Clips run side by side, one process per core.
"""

from __future__ import annotations

import hashlib
import time
from concurrent.futures import FIRST_COMPLETED, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..media.variants import TRANSFORMS, Clip, NotApplicable, PoseSample, write_variant
from .evaluate import EvaluateError, read_manifest
from .workers import Pool

DEFAULT_OUT = Path("runs") / "robustness"
MAX_SIDE = 1280  # variants are made at the size the analysis reads (analyze_video's max_side)
POSE_EVERY_S = 0.2  # how often poses are sampled to place the occluding box and the crops
LIMB_ENDS = {"knee": "ankle", "elbow": "wrist"}  # a primary angle bent at these hides that joint and half its limb
DEFAULT_LIMB = ("knee", "ankle", 1.0)  # otherwise the lower leg is hidden


class RobustnessError(ValueError):
    """The folder, the clips or the transforms asked for cannot be run (the message says why)."""


@dataclass
class Baseline:
    file: str
    exercise: str
    expected: int
    sha256: str = ""
    counted: int | None = None  # on the untransformed clip; None when the analysis failed
    error: str = ""
    seconds: float = 0.0

    @property
    def exact(self) -> bool:
        return self.counted == self.expected


@dataclass
class PairResult:
    file: str
    exercise: str
    transform: str
    expected: int
    baseline: int | None = None
    counted: int | None = None
    error: str = ""
    skipped: str = ""  # why the transform does not apply to this clip (then nothing was counted)
    note: str = ""  # where the cut / box / crop went
    variant: str = ""  # the variant's file
    seconds: float = 0.0

    @property
    def ran(self) -> bool:
        return not self.skipped

    @property
    def unchanged(self) -> bool:
        return self.counted is not None and self.counted == self.baseline

    @property
    def exact(self) -> bool:
        return self.counted is not None and self.counted == self.expected


@dataclass
class SuiteResult:
    folder: str
    transforms: list[str]
    seed: int
    out_dir: str
    baselines: list[Baseline] = field(default_factory=list)
    pairs: list[PairResult] = field(default_factory=list)
    seconds: float = 0.0


def occluded_limb(rule) -> tuple[str, str, float]:
    """The limb to hide, from the exercise's primary angle (data, not a list of exercises): a joint angle
    bent at the knee or the elbow hides that joint and half the limb below it (the knee for a squat, the
    elbow and forearm for a push-up); anything else hides the lower leg."""
    primary = rule.primary
    if primary.kind == "joint":
        vertex = primary.joints[1].removeprefix("left_").removeprefix("right_")
        if vertex in LIMB_ENDS:
            return vertex, LIMB_ENDS[vertex], 0.5
    return DEFAULT_LIMB


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sample_poses(video: str | Path, every_s: float = POSE_EVERY_S, max_side: int = MAX_SIDE,
                 cache: str | None = None) -> PoseSample:
    """The poses the analysis sees (the tracking estimator on every frame), kept every `every_s` seconds.
    Detecting sampled frames afresh is cheaper but often finds a pull-up upside down (raised arms taken
    for legs) in a dark gym; the tracker, like the analysis, keeps the body the right way up. With a pose
    cache the clip's cached observations are sampled (no second pass of the model)."""
    if cache:
        tracked = ((o.t, o.pose) for o in _observations(video, cache))
    else:
        tracked = _tracked(video, max_side)
    ts, xys, viss = [], [], []
    next_t = 0.0
    for t, pose in tracked:
        if t + 1e-6 < next_t or pose is None:
            continue
        next_t = t + every_s
        ts.append(t)
        xys.append(pose.pixels)
        viss.append(pose.visibility)
    if not ts:
        return PoseSample(np.zeros(0), np.zeros((0, 33, 2)), np.zeros((0, 33)))
    return PoseSample(np.array(ts), np.array(xys), np.array(viss))


def _tracked(video: str | Path, max_side: int):
    from ..media.estimator import PoseEstimator
    from ..media.video import read_frames

    with PoseEstimator(static_image_mode=False) as est:
        for t, img in read_frames(video, max_side=max_side):
            yield t, est.process(img, t)


def _observations(video: str | Path, cache: str) -> list:
    """The video's pose observations from the pose cache (estimated and kept there when missing)."""
    from ..store.pose_cache import PoseCache

    return PoseCache(cache).observations(video, max_side=MAX_SIDE)


def _poses_path(out_dir: Path, sha: str) -> Path:
    return out_dir / "poses" / f"{sha[:16]}-tracked.npz"


def _save_poses(path: Path, sample: PoseSample) -> None:
    from ..core.io import atomic_path

    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, t=sample.t, xy=sample.xy, vis=sample.vis)


def _load_poses(path: Path) -> PoseSample | None:
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as z:
        return PoseSample(z["t"], z["xy"], z["vis"])


def _count(video: Path, exercise: str, rules_path: str | None, cache: str | None = None) -> int:
    """The video's count. With a pose cache only the poses are kept (the count is always computed anew),
    so a rerun after a counter or rules change re-counts every variant in seconds."""
    from ..core.rules import load_rules
    from .pipeline import analyze_observations, analyze_video

    rules = load_rules(rules_path) if rules_path else load_rules()
    if cache:
        return analyze_observations(video, _observations(video, cache), exercise, rules=rules).summary.reps
    return analyze_video(video, exercise, None, rules=rules, write_video=False, parallel=False).summary.reps


def _failure(e: Exception) -> str:
    return str(e) or type(e).__name__


def clip_baseline(folder: str, row: dict, out_dir: str, rules_path: str | None, want_poses: bool,
                  cache: str | None = None) -> Baseline:
    """The untransformed clip: its SHA-256, its count, and (when a transform needs them) its sampled poses,
    cached in out_dir/poses/. cache: a pose cache folder (see run_suite). Never raises: a failure is the
    result's `error`."""
    res = Baseline(row["file"], row["exercise"], int(row["reps_complete"]))
    start = time.perf_counter()
    video = Path(folder) / row["file"]
    try:
        res.sha256 = file_sha256(video)
        samples = _poses_path(Path(out_dir), res.sha256)
        if want_poses and not samples.is_file():
            _save_poses(samples, sample_poses(video, cache=cache))
        res.counted = _count(video, row["exercise"], rules_path, cache)
    except Exception as e:  # one clip's failure (not a video, nobody in it...) must not end a long suite
        res.error = _failure(e)
    res.seconds = round(time.perf_counter() - start, 2)
    return res


def _clip_facts(video: Path, poses: PoseSample | None, limb: tuple[str, str, float]) -> Clip:
    from ..media.video import probe, read_frames

    info = probe(video)
    _, first = next(iter(read_frames(video, max_side=MAX_SIDE)))
    return Clip(first.shape[1], first.shape[0], info.duration_s, info.fps, poses, limb)


def variant_path(out_dir: str | Path, sha: str, file: str, name: str, seed: int,
                 limb: tuple[str, str, float] | None = None) -> Path:
    """Where a variant is cached: one folder per source clip (by content), one file per recipe."""
    return Path(out_dir) / "variants" / sha[:16] / f"{Path(file).stem}.{name}-{TRANSFORMS[name].key(seed, limb)}.mp4"


def _make_variant(video: Path, dst: Path, name: str, seed: int, out_dir: str, sha: str,
                  limb: tuple[str, str, float]) -> str:
    """Make the variant if it is not cached; returns the recipe's note. A transform that does not apply
    to the clip leaves a .skip file with the reason (raised as NotApplicable now and on later runs)."""
    skip, note_file = dst.with_suffix(".skip"), dst.with_suffix(".note")
    if skip.is_file():
        raise NotApplicable(skip.read_text(encoding="utf-8").strip())
    if dst.is_file():
        return note_file.read_text(encoding="utf-8").strip() if note_file.is_file() else ""
    from ..core.io import atomic_write_text

    transform = TRANSFORMS[name]
    poses = _load_poses(_poses_path(Path(out_dir), sha)) if transform.needs_poses else None
    if transform.needs_poses and poses is None:  # not remembered: the poses may be there on the next run
        raise NotApplicable("no poses were sampled from the clip")
    try:
        recipe = transform.recipe(_clip_facts(video, poses, limb), seed)
    except NotApplicable as e:
        atomic_write_text(skip, str(e))
        raise
    write_variant(video, dst, recipe, max_side=MAX_SIDE)
    atomic_write_text(note_file, recipe.note)
    return recipe.note


def run_pair(folder: str, row: dict, name: str, seed: int, out_dir: str, rules_path: str | None, sha: str,
             limb: tuple[str, str, float], cache: str | None = None) -> PairResult:
    """One (clip, transform): make the variant (or take it from the cache) and count it. Never raises."""
    res = PairResult(row["file"], row["exercise"], name, int(row["reps_complete"]))
    start = time.perf_counter()
    dst = variant_path(out_dir, sha, row["file"], name, seed, limb)
    try:
        res.note = _make_variant(Path(folder) / row["file"], dst, name, seed, out_dir, sha, limb)
        res.variant = str(dst)
        res.counted = _count(dst, row["exercise"], rules_path, cache)
    except NotApplicable as e:
        res.skipped = str(e)
    except Exception as e:  # a failed variant or analysis is reported in its cell, the suite goes on
        res.error = _failure(e)
    res.seconds = round(time.perf_counter() - start, 2)
    return res


def select(folder: str | Path, clips: list[str] | None = None, limit: int | None = None,
           transforms: list[str] | None = None) -> tuple[list[dict], list[str]]:
    """The manifest rows and transform names to run (RobustnessError names what is wrong)."""
    try:
        rows = read_manifest(folder)
    except EvaluateError as e:
        raise RobustnessError(str(e)) from None
    if clips is not None and limit is not None:
        raise RobustnessError("give either the clips or a limit, not both")
    if clips is not None:
        known = {r["file"]: r for r in rows}
        missing = [c for c in clips if c not in known]
        if missing or not clips:
            raise RobustnessError(f"not in videos.csv: {', '.join(missing) or '(no clip named)'}")
        rows = [known[c] for c in dict.fromkeys(clips)]
    if limit is not None:
        if limit < 1:
            raise RobustnessError(f"the limit must be 1 or more, got {limit}")
        rows = rows[:limit]
    names = list(TRANSFORMS) if transforms is None else list(dict.fromkeys(transforms))
    unknown = [n for n in names if n not in TRANSFORMS]
    if unknown or not names:
        raise RobustnessError(f"unknown transform(s) {', '.join(unknown) or '(none named)'}; choose from: "
                              + ", ".join(TRANSFORMS))
    return rows, names


def _limbs(rows: list[dict], rules_path: str | None) -> dict[str, tuple[str, str, float]]:
    from ..core.rules import load_rules

    rules = load_rules(rules_path) if rules_path else load_rules()
    return {r["file"]: occluded_limb(rules.exercises[r["exercise"]]) if r["exercise"] in rules.exercises
            else DEFAULT_LIMB for r in rows}


def run_suite(folder: str | Path, clips: list[str] | None = None, limit: int | None = None,
              transforms: list[str] | None = None, out_dir: str | Path = DEFAULT_OUT, workers: int = 2,
              seed: int = 0, rules_path: str | None = None, progress: Callable[[int, int], None] | None = None,
              log: Callable[[str], None] | None = None, cache: str | Path | None = None) -> SuiteResult:
    """Every selected (clip, transform) pair; results in the manifest's order, then the transforms' order.
    Each clip's baseline runs first; its pairs are queued as soon as it is done (one process per worker).
    cache: a pose cache folder (`store.pose_cache.PoseCache`, as `evaluate --cache`): the poses of every
    variant and untransformed clip are taken from it (estimated and kept when missing); counts are never
    cached, so a rerun after a counter change re-counts everything in seconds."""
    from ..core.rules import load_rules

    start = time.perf_counter()
    rows, names = select(folder, clips, limit, transforms)
    if rules_path:
        load_rules(rules_path)  # a bad rules file is refused before any work starts
    folder, out, cache = str(folder), Path(out_dir), str(cache) if cache else None
    out.mkdir(parents=True, exist_ok=True)
    limbs = _limbs(rows, rules_path)
    want_poses = any(TRANSFORMS[n].needs_poses for n in names)
    baselines: list[Baseline | None] = [None] * len(rows)
    pairs: dict[tuple[int, str], PairResult] = {}
    total, done = len(rows) * (1 + len(names)), 0
    pool = Pool(max(1, workers), inline=True)
    try:
        pending = {pool.submit(clip_baseline, folder, row, str(out), rules_path, want_poses, cache): (i, None)
                   for i, row in enumerate(rows)}
        while pending:
            finished, _ = wait(list(pending), return_when=FIRST_COMPLETED)
            for fut in finished:
                i, name = pending.pop(fut)
                res = fut.result()
                if name is None:
                    baselines[i] = res
                    for n in names:
                        pending[pool.submit(run_pair, folder, rows[i], n, seed, str(out), rules_path, res.sha256,
                                            limbs[rows[i]["file"]], cache)] = (i, n)
                else:
                    res.baseline = baselines[i].counted
                    pairs[(i, name)] = res
                done += 1
                if log:
                    log(_log_line(res, done, total))
                if progress:
                    progress(done, total)
    finally:  # an interrupt drops the queued pairs instead of running them all first
        pool.close(cancel=True)
    ordered = [pairs[(i, n)] for i in range(len(rows)) for n in names]
    return SuiteResult(folder, names, seed, str(out), baselines, ordered,  # type: ignore[arg-type]
                       round(time.perf_counter() - start, 1))


def _log_line(res: Baseline | PairResult, done: int, total: int) -> str:
    head = f"[{done}/{total}] {res.file}"
    if isinstance(res, Baseline):
        return f"{head} untransformed: " + (res.error or f"{res.counted} (hand {res.expected})")
    if res.skipped:
        return f"{head} {res.transform}: not applicable ({res.skipped})"
    if res.error:
        return f"{head} {res.transform}: failed ({res.error})"
    return f"{head} {res.transform}: {res.counted}" + ("" if res.unchanged else f" CHANGED from {res.baseline}")
