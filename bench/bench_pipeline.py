"""Speed and memory of the analysis pipeline, as a ratio against the bare single-process MediaPipe loop.

Modes, each a whole fresh process timed from outside (Python start-up, imports and model included):
  bare     cv2.VideoCapture decode + cvtColor + Pose.process (model_complexity=1, tracking): the ceiling of one
           process, the yardstick
  single   `gympose analyze --single-process` path: analyze_video(parallel=False), annotated H.264, frames.csv
  chunked  analyze_video(parallel=True): poses of time chunks in 2 worker processes, one Session, H.264
  auto     analyze_video() as the CLI runs it (chunked from GYMPOSE_PARALLEL_MIN_S seconds of video)
  novideo  `gympose analyze --no-video` (the command itself, pose_core.cli): the time to the result (frames.csv,
           reps, summary); with the pose workers the main process decodes nothing (the workers send each pose
           with its signature), and they are started before the rest of the analysis is imported
  after    the dashboard's way: the result first (novideo + the overlay stored), then the annotated video
           drawn from it (run.render_video); `t_result` is when the result was published
Modes run side by side, clip by clip, in rotating order, so background load hits them alike; the ratio
(full fps / bare fps in the same round) is what compares.
Also: memory flatness (peak RSS of the process and its children) on a clip concatenated N times (ffmpeg),
time to the first analysed frame (cold: a new process; warm: the next analysis in a process that keeps its
pose pool / spare estimator, as the dashboard does).

    python bench/bench_pipeline.py [--long squat_4.mp4 ...] [--short ...] [--modes bare single chunked]
                                   [--repeat-long 10] [--rounds 1] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pose_core.store.settings import shared_data_dir  # (the installed package: `make venv` installs it editable)

ROOT = Path(__file__).resolve().parent.parent

EXERCISES = ("squat", "pushup", "pullup", "situp", "jumping_jacks", "bench_press", "jump_rope", "clean_and_jerk")
LONG = ["squat_4.mp4", "pushup_1.mp4", "squat_10.mp4"]  # the shared clips of 20 s and more
SHORT = ["situp_3.mp4", "jumping_jacks_1.mp4", "squat_1.mp4", "situp_11.mp4"]  # 3.4 s, 6 s, 10.7 s, 13.4 s


def exercise_of(video: str) -> str:
    stem = Path(video).stem
    for ex in EXERCISES:
        if stem.startswith(ex):
            return ex
    return "squat"


def worker(mode: str, video: str) -> dict:
    os.environ.setdefault("GLOG_minloglevel", "2")
    t_first = None
    if mode == "bare":
        import cv2
        import mediapipe as mp

        pose = mp.solutions.pose.Pose(model_complexity=1, static_image_mode=False)
        cap = cv2.VideoCapture(video)
        n = 0
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            pose.process(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            n += 1
    elif mode == "novideo":  # the command as a user runs it (its own order of imports and start-ups)
        import contextlib
        import io

        from pose_core.cli import main as cli_main

        with tempfile.TemporaryDirectory() as out:
            said = io.StringIO()
            with contextlib.redirect_stdout(said):
                code = cli_main(["analyze", video, "--exercise", exercise_of(video), "--no-video", "--quiet",
                                 "--out", str(Path(out) / "result")])
            t_result = time.perf_counter()
        if code != 0:
            raise SystemExit(f"gympose analyze failed ({code})")
        n = json.loads(said.getvalue().strip().splitlines()[-1])["frames"]
    else:
        from pose_core.run.pipeline import analyze_video

        first = []
        parallel = {"single": False, "chunked": True, "auto": None, "novideo": None, "after": None}[mode]
        with tempfile.TemporaryDirectory() as out:
            res = analyze_video(video, exercise_of(video), out, write_video=mode != "novideo", parallel=parallel,
                                video_after=mode == "after",
                                progress=lambda d, e: first.append(time.perf_counter()) if d >= 1 and not first else None)
            t_result = time.perf_counter()
            if mode == "after":
                from pose_core.run.render_video import draw_annotated

                assert draw_annotated(out, video)
        n = res.summary.frames
        t_first = first[0] if first else None
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"mode": mode, "frames": n, "t_first": t_first, "t_result": None if mode == "bare" else t_result, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "children_peak_rss_mb": kids}


def run(mode: str, video: Path) -> dict:
    """One mode in a fresh process, timed from outside: start-up included. cpu_s: the CPU time it used (all its
    threads, and the processes it started and waited for)."""
    import resource

    c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, __file__, "--worker", mode, str(video)], capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])))
    dt = time.perf_counter() - t0
    c1 = resource.getrusage(resource.RUSAGE_CHILDREN)  # (the process and the children it waited for)
    if p.returncode != 0:
        raise RuntimeError(p.stderr[-2000:])
    r = json.loads(p.stdout.strip().splitlines()[-1])
    r.update(seconds=dt, fps=r["frames"] / dt, video=video.name,
             cpu_s=round(c1.ru_utime + c1.ru_stime - c0.ru_utime - c0.ru_stime, 2))
    if r.get("t_result") is not None:  # (perf_counter is system-wide on Linux: the child's clock is ours)
        r["result_s"] = r["t_result"] - t0
        r["result_fps"] = r["frames"] / r["result_s"]
    return r


def ttff() -> dict:
    """Time to the first analysed frame: cold (fresh process, from its start) and warm (the next analysis in
    the same process, with a kept pose pool / spare estimator), single and chunked, on one clip."""
    t_start = time.perf_counter()
    from pose_core.run.live import EstimatorFactory
    from pose_core.run.parallel import PosePool
    from pose_core.run.pipeline import analyze_video

    video = str(shared_data_dir() / "videos" / "squat_1.mp4")
    out = {}
    for mode in ("single", "chunked"):
        factory = EstimatorFactory(keep_spare=True) if mode == "single" else None
        pool = PosePool(2, warm=False) if mode == "chunked" else None
        times = []
        for i in range(2):
            first = []
            t0 = time.perf_counter() if i else t_start
            analyze_video(video, "squat", None, write_video=True, parallel=mode == "chunked", pool=pool,
                          estimator_factory=factory,
                          progress=lambda d, e: first.append(time.perf_counter()) if d >= 1 and not first else None)
            times.append(first[0] - t0)
            time.sleep(1.0)  # the dashboard's user takes a moment: the spare is warmed meanwhile
        if pool is not None:
            pool.close()
        out[mode] = {"cold_s": round(times[0], 3), "warm_s": round(times[1], 3)}
        t_start = time.perf_counter()  # the second mode's "cold" excludes nothing already imported: noted
    return out


def concat(video: Path, times: int, out: Path) -> Path:
    lst = out.with_suffix(".txt")
    lst.write_text("".join(f"file '{video.resolve()}'\n" for _ in range(times)))
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "concat", "-safe", "0", "-i", str(lst), "-c", "copy",
                    str(out)], check=True)
    return out


def load() -> str:
    return f"load {os.getloadavg()[0]:.1f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker", nargs=2, metavar=("MODE", "VIDEO"))
    ap.add_argument("--ttff-worker", action="store_true")
    ap.add_argument("--videos", default=str(shared_data_dir() / "videos"))
    ap.add_argument("--long", nargs="*", default=LONG)
    ap.add_argument("--short", nargs="*", default=SHORT)
    ap.add_argument("--modes", nargs="*", default=["bare", "single", "chunked"])
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--repeat-long", type=int, default=10)
    ap.add_argument("--long-clip", default="squat_1.mp4")
    ap.add_argument("--no-ttff", action="store_true")
    ap.add_argument("--json")
    a = ap.parse_args()
    if a.worker:
        print(json.dumps(worker(*a.worker)))
        return
    if a.ttff_worker:
        print(json.dumps(ttff()))
        return
    videos = Path(a.videos)
    result: dict = {"clips": [], "cpus": os.cpu_count()}
    modes = [m for m in a.modes if m != "bare"]
    hdr = f"{'clip':20s} {'s':>5s} {'frames':>6s} {'bare fps':>8s} " + " ".join(f"{m + ' fps':>11s} {'ratio':>5s}" for m in modes)
    print(hdr)
    for kind, names in (("long", a.long), ("short", a.short)):
        for name in names:
            v = videos / name
            from pose_core.media.video import probe

            dur = probe(v).duration_s
            rows = {m: [] for m in ["bare", *modes]}
            for rnd in range(a.rounds):
                order = ["bare", *modes]
                order = order[rnd % len(order):] + order[: rnd % len(order)]
                for m in order:
                    rows[m].append(run(m, v))
            best = {m: max(rs, key=lambda r: r["fps"]) for m, rs in rows.items()}
            b = best["bare"]["fps"]
            entry = {"clip": name, "kind": kind, "duration_s": round(dur, 1), "frames": best["bare"]["frames"],
                     "bare_fps": round(b, 1), "load": os.getloadavg()[0]}
            line = f"{name:20s} {dur:5.1f} {best['bare']['frames']:6d} {b:8.1f} "
            for m in modes:
                entry[f"{m}_fps"] = round(best[m]["fps"], 1)
                entry[f"{m}_ratio"] = round(best[m]["fps"] / b, 2)
                line += f"{best[m]['fps']:11.1f} {best[m]['fps'] / b:5.2f} "
                if m == "after":  # (the ratio above: result and video; this one: to the result)
                    entry["after_result_ratio"] = round(max(r["result_fps"] for r in rows[m]) / b, 2)
                    line += f"(result {entry['after_result_ratio']:.2f}) "
            result["clips"].append(entry)
            print(line + f" ({load()})", flush=True)
    for kind in ("long", "short"):
        es = [e for e in result["clips"] if e["kind"] == kind]
        if es:
            print(f"  {kind} clips: " + ", ".join(
                f"{m}/bare {statistics.fmean(e[f'{m}_ratio'] for e in es):.2f}" for m in modes))
    if a.repeat_long > 1 and shutil.which("ffmpeg"):
        with tempfile.TemporaryDirectory() as tmp:
            mem = {}
            for times in (1, a.repeat_long):
                v = concat(videos / a.long_clip, times, Path(tmp) / f"long_x{times}.mp4")
                mem[times] = {m: run(m, v) for m in ["bare", *modes]}
            print(f"\nmemory flatness on {a.long_clip} x1 -> x{a.repeat_long} (peak RSS of the process + its "
                  "largest child, MB):")
            for times, rs in mem.items():
                print(f"  x{times:<3d} {rs['bare']['frames']:6d} frames: " + ", ".join(
                    f"{m} {r['peak_rss_mb']:.0f}+{r['children_peak_rss_mb']:.0f} MB ({r['fps']:.1f} fps)"
                    for m, r in rs.items()))
            result["memory"] = {str(k): v for k, v in mem.items()}
    if not a.no_ttff:
        p = subprocess.run([sys.executable, __file__, "--ttff-worker"], capture_output=True, text=True)
        if p.returncode == 0:
            t = json.loads(p.stdout.strip().splitlines()[-1])
            result["ttff"] = t
            print("\ntime to the first analysed frame (squat_1; cold = new process incl. imports, warm = next "
                  "analysis with the kept pool / spare estimator):")
            for m, r in t.items():
                print(f"  {m:8s} cold {r['cold_s']:.2f} s, warm {r['warm_s']:.2f} s")
        else:
            print("ttff failed:", p.stderr[-500:])
    print(f"\n{load()} on {os.cpu_count()} cores at the end")
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
