"""Cost of exercise recognition (features + tree ensemble), per video frame, on top of the pose model.

    python bench/bench_recognition.py [--seconds 60] [--fps 30] [--repeat 3] [--clip VIDEO --cache DIR]

Poses are synthetic (a 30 fps squatter with tracker-like jitter), or a real clip's poses from a pose cache
(--clip, --cache): the cost barely depends on what the person does, and MediaPipe is not timed here (see
bench_live.py / bench_pipeline.py for that). Four figures:
  file     ExerciseRecognizer.predict over the whole sequence (windows of 3 s every 0.5 s), divided by
           the number of frames
  auto     what `--exercise auto` adds per frame of the recognised stretch (the first 20 s): predict, then
           the cross-check with counting under the candidates (run.crosscheck.checked)
  window   one prediction on the last 3 s (what the live page computes every 0.5 s)
  live     OnlineRecognizer.update per frame until it locks, amortised per frame (and its worst frame)
Writes bench/out/bench_recognition.json.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

import numpy as np

from pose_core.core.landmarks import NUM_LANDMARKS, PoseLandmark as L
from pose_core.recognition import WINDOW_S, ExerciseRecognizer, OnlineRecognizer
from pose_core.core.types import PoseFrame


def synthetic_squat(seconds: float, fps: float, seed: int = 0) -> list[PoseFrame]:
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(int(seconds * fps)):
        t = i / fps
        d = 0.5 - 0.5 * math.cos(2 * math.pi * t / 2.5)
        hip = np.array([300.0, 220.0 + 80 * d])
        pts = {"SHOULDER": hip + [20 + 30 * d, -110], "ELBOW": hip + [70 + 30 * d, -80],
               "WRIST": hip + [120 + 30 * d, -85], "HIP": hip, "KNEE": np.array([340.0 + 20 * d, 300 + 10 * d]),
               "ANKLE": np.array([320.0, 380.0])}
        xy = np.zeros((NUM_LANDMARKS, 2))
        vis = np.full(NUM_LANDMARKS, 0.2)
        xy[L.NOSE] = pts["SHOULDER"] + [15, -45]
        vis[L.NOSE] = 0.99
        for side, dx in (("LEFT", -6.0), ("RIGHT", 6.0)):
            for name, p in pts.items():
                lm = L[f"{side}_{name}"]
                xy[lm] = p + [dx, 0.3 * dx]
                vis[lm] = 0.95 if side == "RIGHT" else 0.6
        xy += rng.normal(0, 2.0, xy.shape)
        frames.append(PoseFrame.from_pixels(xy, vis, (640, 480), t))
    return frames


def timed(fn, repeat: int) -> float:
    best = math.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--fps", type=float, default=30.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--clip", type=Path, help="a video whose poses are in --cache (instead of the synthetic squat)")
    ap.add_argument("--cache", type=Path, help="the pose cache folder holding --clip's poses")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "bench_recognition.json")
    a = ap.parse_args(argv)

    from pose_core.core.rules import load_rules
    from pose_core.run.crosscheck import checked
    from pose_core.run.pipeline import RECOGNIZE_SECONDS

    t0 = time.perf_counter()
    rec = ExerciseRecognizer.load()
    load_ms = (time.perf_counter() - t0) * 1000
    if a.clip:
        from pose_core.store.pose_cache import PoseCache

        frames = [o.pose for o in PoseCache(a.cache).observations(a.clip) if o.pose is not None]
    else:
        frames = synthetic_squat(a.seconds, a.fps)
    n = len(frames)
    rules = load_rules()

    result = rec.predict(frames)
    file_s = timed(lambda: rec.predict(frames), a.repeat)
    first = [f for f in frames if f.timestamp_s - frames[0].timestamp_s <= RECOGNIZE_SECONDS]
    auto_s = timed(lambda: checked(rec.predict(first), first, rules), a.repeat)
    last = [f for f in frames if f.timestamp_s >= frames[-1].timestamp_s - WINDOW_S]
    window_s = timed(lambda: rec.predict(last), max(a.repeat, 10))

    online_costs = []
    online = OnlineRecognizer(rec, lock_after=10 ** 9)  # never locks: the worst case, predicting all along
    for f in frames:
        t1 = time.perf_counter()
        online.update(f)
        online_costs.append(time.perf_counter() - t1)

    out = {
        "frames": n, "fps": a.fps, "seconds": a.seconds,
        "model_load_ms": round(load_ms, 1),
        "file_per_frame_ms": round(1000 * file_s / n, 4),
        "file_total_ms": round(1000 * file_s, 1),
        "auto_per_frame_ms": round(1000 * auto_s / len(first), 4),
        "auto_frames": len(first),
        "clip": a.clip.name if a.clip else "synthetic squat",
        "windows": result.windows,
        "window_prediction_ms": round(1000 * window_s, 2),
        "live_per_frame_mean_ms": round(1000 * statistics.fmean(online_costs), 4),
        "live_per_frame_p99_ms": round(1000 * float(np.percentile(online_costs, 99)), 2),
        "live_worst_frame_ms": round(1000 * max(online_costs), 2),
        "recognised_as": result.exercise, "confidence": round(result.confidence, 3),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(), "python": platform.python_version(),
    }
    for k, v in out.items():
        print(f"{k:>24}: {v}")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
