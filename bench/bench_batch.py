"""Speed-up of `python -m pose_core batch` with more workers, on the 14 shared clips.

Runs the CLI end to end (process start, pool start-up, every analysis, the table) with 1 and 2 local
worker processes, and optionally on a Dask LocalCluster (2 workers x 1 thread, started before the clock:
an existing cluster), each `--repeat` times, alternating so that background load hits all modes alike.
Checks that every run gives the same counts as the hand counts in videos.csv.

    python bench/bench_batch.py [--repeat 3] [--workers 1 2] [--dask] [--video] [--json out.json]

--video also writes the annotated H.264 videos (default: --no-video, i.e. pose + counting + frames.csv).
The machine's load average is printed beside each run: other jobs on a shared box skew the wall-clock
figures; the CPU seconds of the local runs (CLI + its workers) do not depend on them as much.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from pose_core.store.settings import shared_data_dir


def run_once(videos: Path, out: Path, extra: list[str]) -> dict:
    cmd = [sys.executable, "-m", "pose_core", "batch", str(videos), "--out", str(out), "-q", *extra]
    load = os.getloadavg()[0]
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    # CPU of the CLI and its (reaped) local workers; a Dask cluster's work is not ours and not counted.
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    if p.returncode != 0:
        raise SystemExit(f"batch failed ({' '.join(extra)}): {p.stderr[-1000:]}")
    summary = json.loads(p.stdout.strip().splitlines()[-1])
    with open(out / "batch.csv", newline="") as f:
        rows = {r["item"]: r for r in csv.DictReader(f)}
    return {"wall_s": wall, "cpu_s": cpu, "summary": summary, "rows": rows, "load_before": load}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", type=Path, default=shared_data_dir() / "videos")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--dask", action="store_true", help="also on a Dask LocalCluster(n_workers=2, threads_per_worker=1)")
    ap.add_argument("--video", action="store_true", help="write annotated videos too (default --no-video)")
    ap.add_argument("--json", type=Path, help="write the results here")
    args = ap.parse_args()

    with open(args.videos / "videos.csv", newline="") as f:
        expected = {Path(r["file"]).stem: int(r["reps_complete"]) for r in csv.DictReader(f)}
    extra = [] if args.video else ["--no-video"]
    modes: list[tuple[str, list[str]]] = [(f"local x{n}", ["--workers", str(n)]) for n in args.workers]

    cluster = None
    if args.dask:
        from distributed import LocalCluster

        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
        modes.append(("dask 2x1", ["--scheduler", cluster.scheduler_address]))

    results: dict[str, list[dict]] = {m: [] for m, _ in modes}
    frames = None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for k in range(args.repeat):
                for name, mode_args in modes:
                    out = Path(tmp) / f"{name.replace(' ', '_')}_{k}"
                    r = run_once(args.videos, out, extra + mode_args)
                    got = {item: int(row["reps"]) for item, row in r["rows"].items()}
                    if got != expected:
                        diff = {i: (expected.get(i), got.get(i)) for i in expected if expected.get(i) != got.get(i)}
                        print(f"  note: {name} counts differ from the hand counts: {diff}")
                    frames = sum(int(row["frames"]) for row in r["rows"].values())
                    results[name].append(r)
                    cpu = f"{r['cpu_s']:6.1f} CPU s" if not name.startswith("dask") else "  (CPU on the cluster)"
                    print(f"run {k + 1} {name:10s} {r['wall_s']:6.1f} s  {cpu}  ({frames / r['wall_s']:5.1f} frames/s, "
                          f"load avg before {r['load_before']:.1f})", flush=True)
    finally:
        if cluster is not None:
            cluster.close()

    base_name = modes[0][0]
    base = statistics.median(r["wall_s"] for r in results[base_name])
    print(f"\n{len(expected)} clips, {frames} frames, {'with' if args.video else 'without'} annotated video, "
          f"{os.cpu_count()} CPUs, median of {args.repeat}:")
    summary = {}
    for name, _ in modes:
        walls = [r["wall_s"] for r in results[name]]
        med = statistics.median(walls)
        summary[name] = {"median_s": round(med, 2), "runs_s": [round(w, 2) for w in walls],
                         "cpu_s": [round(r["cpu_s"], 1) for r in results[name]],
                         "frames_per_s": round(frames / med, 1), "speedup_vs_" + base_name.replace(" ", "_"): round(base / med, 2)}
        print(f"  {name:10s} {med:6.1f} s  {frames / med:5.1f} frames/s  speed-up x{base / med:.2f}  "
              f"(runs: {', '.join(f'{w:.1f}' for w in walls)})")
    if args.json:
        args.json.write_text(json.dumps({"clips": len(expected), "frames": frames, "video": args.video,
                                         "results": summary}, indent=2) + "\n")


if __name__ == "__main__":
    main()
