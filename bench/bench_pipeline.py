"""Speed and memory of the analysis pipeline, as a ratio against the bare MediaPipe loop.

(a) bare: cv2.VideoCapture decode + cvtColor + Pose.process (model_complexity=1, tracking) -- the ceiling;
(b) full: pose_core.run.pipeline.analyze_video with annotated H.264 video, frames.csv, reps.json.
Both run on the same frames in the same run, each in a fresh subprocess (so peak RSS is per mode), and
both are timed end to end from building the pose model to the last frame (imports excluded).
Memory flatness: the same two modes on one clip concatenated N times (default 10).

    python bench/bench_pipeline.py [--clips squat_1.mp4 ...] [--repeat-long 10] [--json out.json]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pose_core.store.settings import shared_data_dir


def worker(mode: str, video: str) -> dict:
    os.environ.setdefault("GLOG_minloglevel", "2")
    if mode == "bare":
        import cv2
        import mediapipe as mp

        # Timed from the model's construction, like (b), whose analyze_video builds its own estimator.
        t0 = time.perf_counter()
        pose = mp.solutions.pose.Pose(model_complexity=1, static_image_mode=False)
        cap = cv2.VideoCapture(video)
        n = 0
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            pose.process(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            n += 1
        dt = time.perf_counter() - t0
    else:
        from pose_core.run.pipeline import analyze_video

        exercise = Path(video).stem.rsplit("_", 1)[0]
        if exercise not in ("squat", "pushup", "pullup", "situp", "jumping_jacks", "bench_press"):
            exercise = "squat"
        with tempfile.TemporaryDirectory() as out:
            t0 = time.perf_counter()
            res = analyze_video(video, exercise, out, write_video=True)
            dt = time.perf_counter() - t0
        n = res.summary.frames
    return {"mode": mode, "video": Path(video).name, "frames": n, "seconds": dt, "fps": n / dt,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run(mode: str, video: Path) -> dict:
    p = subprocess.run([sys.executable, __file__, "--worker", mode, str(video)], capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(p.stderr[-2000:])
    return json.loads(p.stdout.strip().splitlines()[-1])


def concat(video: Path, times: int, out: Path) -> Path:
    from pose_core.media.video import H264Writer, probe, read_frames

    info = probe(video)
    t_off = 0.0
    with H264Writer(out, info.width, info.height, info.fps, preset="ultrafast") as w:
        for _ in range(times):
            last = 0.0
            for t, img in read_frames(video):
                w.write(t_off + t, img)
                last = t
            t_off += last + 1.0 / info.fps
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker", nargs=2, metavar=("MODE", "VIDEO"))
    ap.add_argument("--videos", default=str(shared_data_dir() / "videos"))
    ap.add_argument("--clips", nargs="*")
    ap.add_argument("--repeat-long", type=int, default=10)
    ap.add_argument("--long-clip", default="squat_1.mp4")
    ap.add_argument("--json")
    a = ap.parse_args()
    if a.worker:
        print(json.dumps(worker(*a.worker)))
        return
    videos = Path(a.videos)
    names = a.clips or [r["file"] for r in csv.DictReader(open(videos / "videos.csv"))]
    rows = []
    print(f"{'clip':22s} {'frames':>6s} {'bare fps':>9s} {'full fps':>9s} {'ratio':>6s} {'bare MB':>8s} {'full MB':>8s}")
    tot = {"bare": [0, 0.0], "full": [0, 0.0]}
    for name in names:
        b, f = run("bare", videos / name), run("full", videos / name)
        for r in (b, f):
            tot[r["mode"]][0] += r["frames"]
            tot[r["mode"]][1] += r["seconds"]
        rows.append({"clip": name, "bare": b, "full": f, "ratio": f["fps"] / b["fps"]})
        print(f"{name:22s} {b['frames']:6d} {b['fps']:9.1f} {f['fps']:9.1f} {f['fps'] / b['fps']:6.2f} "
              f"{b['peak_rss_mb']:8.0f} {f['peak_rss_mb']:8.0f}", flush=True)
    bare_fps, full_fps = tot["bare"][0] / tot["bare"][1], tot["full"][0] / tot["full"][1]
    print(f"{'ALL':22s} {tot['bare'][0]:6d} {bare_fps:9.1f} {full_fps:9.1f} {full_fps / bare_fps:6.2f}")
    result = {"clips": rows, "overall": {"bare_fps": bare_fps, "full_fps": full_fps, "ratio": full_fps / bare_fps}}
    if a.repeat_long > 1:
        with tempfile.TemporaryDirectory() as tmp:
            mem = {}
            for times in (1, a.repeat_long):
                v = concat(videos / a.long_clip, times, Path(tmp) / f"long_x{times}.mp4")
                mem[times] = (run("bare", v), run("full", v))
            print(f"\nmemory flatness on {a.long_clip} (peak RSS, MB):")
            for times, (b, f) in mem.items():
                print(f"  x{times:<3d} {b['frames']:6d} frames: bare {b['peak_rss_mb']:.0f} MB ({b['fps']:.1f} fps), "
                      f"full {f['peak_rss_mb']:.0f} MB ({f['fps']:.1f} fps, ratio {f['fps'] / b['fps']:.2f})")
            result["memory"] = {str(k): {"bare": v[0], "full": v[1]} for k, v in mem.items()}
    if a.json:
        Path(a.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
