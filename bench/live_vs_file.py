"""Live and files agree: every clip of a folder replayed through the live path (LiveSession, frames
letterboxed to the camera's 640x480 and thinned to the page's 15 fps), its count compared with the file's
(`analyze`, the same folder's videos.csv hand count beside it).

    python bench/live_vs_file.py ../shared/data/videos [--workers 2] [--json bench/out/live_vs_file.json]

A live session has no end of stream: the count is what the page shows once the clip's last frame has been
held for HOLD_S more (the person standing still after the set), so a rep still settling is counted.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path


HOLD_S = 1.5


def _one(folder: str, row: dict, fps: float) -> dict:
    import cv2  # noqa: F401 (letterbox)

    from bench_live import letterbox
    from pose_core.core.rules import load_rules
    from pose_core.media.video import read_frames
    from pose_core.run.live import LiveSession
    from pose_core.run.pipeline import analyze_video

    rules = load_rules()
    path = Path(folder) / row["file"]
    file_count = analyze_video(path, row["exercise"], write_video=False, parallel=False).summary.reps
    live = LiveSession(rules[row["exercise"]], rules.defaults)
    last = -1.0
    img = None
    for t, rgb in read_frames(path):
        if t - last < 1.0 / fps - 1e-3:
            continue  # the page asks the camera for `fps`
        last = t
        img = letterbox(rgb)
        live.process_frame(img, t)
    # The camera keeps running after the set: the person holds still for a moment (the clip's last frame), so a
    # rep that was still settling as the clip ended is counted, as it would be live.
    for k in range(int(HOLD_S * fps)):
        if img is not None:
            live.process_frame(img, last + (k + 1) / fps)
    live.close()
    return {"file": row["file"], "expected": int(row["reps_complete"]), "file_count": file_count,
            "live_count": live.snapshot().rep_count}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("folder")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--fps", type=float, default=15.0)
    p.add_argument("--json")
    a = p.parse_args(argv)
    rows = list(csv.DictReader(open(Path(a.folder) / "videos.csv", newline="")))
    out = []
    with ProcessPoolExecutor(a.workers, mp_context=get_context("spawn")) as ex:
        futs = [ex.submit(_one, a.folder, r, a.fps) for r in rows]
        for f in as_completed(futs):
            r = f.result()
            out.append(r)
            print(f"{r['file']:24s} expected {r['expected']:3d} file {r['file_count']:3d} live {r['live_count']:3d}"
                  f" {'ok' if abs(r['live_count'] - r['file_count']) <= 1 else 'DIFF'}", flush=True)
    within = sum(abs(r["live_count"] - r["file_count"]) <= 1 for r in out)
    same = sum(r["live_count"] == r["file_count"] for r in out)
    print(f"live vs file: same {same}/{len(out)}, within one {within}/{len(out)}")
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
