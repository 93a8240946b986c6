"""Upload-to-result of a dashboard analysis, idle and beside CPU-bound programs on every core (issue 24).

The dashboard's way exactly: a JobRunner with its analysis process (isolate=True, nice 10, the live gate
given but not held: no live session), a fresh upload submitted, timed until the job is done (the result on
the page: summary, reps, history row); the annotated video, drawn after it, is timed as well. Loaded: one
`python -c 'while 1: pass'` per core, at ordinary priority, started from this script's session.
Each round: idle, then loaded (the runner and its warm process are kept between them, as a server keeps them).

    python bench/bench_loaded.py [--clip squat_1.mp4] [--exercise squat] [--rounds 2] [--hogs 2] [--timeout 300]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from pose_core.store.settings import shared_data_dir  # noqa: E402


def one(runner, rules, clip: Path, uploads: Path, exercise: str, n: int, timeout: float) -> dict:
    from pose_core.run.jobs import read_status

    up = uploads / f"20260101-00000{n}_{clip.name}"
    shutil.copy(clip, up)
    t0 = time.perf_counter()
    job = runner.submit(up, exercise, rules)
    end = time.monotonic() + timeout
    busy_seen, etas = False, []
    while not (s := read_status(runner.jobs_dir, job)).final and time.monotonic() < end:
        busy_seen |= getattr(s, "busy", False)  # (what the page would have said; getattr: also times older code)
        if getattr(s, "eta_s", None) is not None:
            etas.append((round(time.perf_counter() - t0, 1), s.eta_s))
        time.sleep(0.05)
    result_s = time.perf_counter() - t0
    video_s = None
    folder = runner.analyses_dir / s.result_dir
    while s.state == "done" and time.monotonic() < end:
        if (folder / "annotated.mp4").exists() or (folder / "video_error.txt").exists():
            video_s = time.perf_counter() - t0
            break
        time.sleep(0.1)
    s = read_status(runner.jobs_dir, job)
    return {"state": s.state, "result_s": round(result_s, 2), "video_s": None if video_s is None else round(video_s, 2),
            "stage": s.stage, "load": round(os.getloadavg()[0], 2), "busy_said": busy_seen,
            "eta_first": etas[0] if etas else None}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clip", default="squat_1.mp4")
    ap.add_argument("--exercise", default="squat")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--hogs", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--json")
    a = ap.parse_args()
    from pose_core.core.rules import load_rules
    from pose_core.run.jobs import JobRunner

    clip = shared_data_dir() / "videos" / a.clip
    rules = load_rules()
    out: dict = {"clip": a.clip, "hogs": a.hogs, "idle": [], "loaded": []}
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:  # (a timed-out job may still write)
        tmp = Path(tmp)
        for d in ("jobs", "analyses", "uploads"):
            (tmp / d).mkdir()
        runner = JobRunner(tmp / "jobs", tmp / "analyses", tmp / "uploads", nice=10, isolate=True,
                           live_gate=tmp / "live.gate")
        try:
            time.sleep(5)  # the analysis process warms its model and pose pool, as after a server start
            n = 0
            for _ in range(a.rounds):
                for kind in ("idle", "loaded"):
                    hogs = [subprocess.Popen([sys.executable, "-c", "while 1: pass"]) for _ in range(a.hogs)] \
                        if kind == "loaded" else []
                    try:
                        time.sleep(1.0 if hogs else 0.0)
                        n += 1
                        r = one(runner, rules, clip, tmp / "uploads", a.exercise, n, a.timeout)
                    finally:
                        for h in hogs:
                            h.kill()
                            h.wait()
                    out[kind].append(r)
                    print(kind, json.dumps(r), flush=True)
                    time.sleep(3)
        finally:
            runner.close()
    best = {k: min(r["result_s"] for r in out[k]) for k in ("idle", "loaded")}
    out["loaded_over_idle"] = round(best["loaded"] / best["idle"], 2)
    print(f"{a.clip}: upload-to-result idle {best['idle']:.1f} s, beside {a.hogs} CPU-bound programs "
          f"{best['loaded']:.1f} s: {out['loaded_over_idle']:.2f}x")
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
