"""Estimate the poses of every video in some folders once and keep them in a pose cache
(`pose_core.store.pose_cache`), so that evaluation, training and the robustness suite re-run in seconds.

    python bench/fill_pose_cache.py ../shared/data/videos ../shared/data/pushfit --cache .gympose/pose_cache
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

from pose_core.media.video import VIDEO_EXTENSIONS
from pose_core.store.pose_cache import PoseCache


def _one(video: str, cache: str) -> tuple[str, int, float]:
    start = time.perf_counter()
    obs = PoseCache(cache).observations(video)
    return video, len(obs), time.perf_counter() - start


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("folders", nargs="+")
    p.add_argument("--cache", required=True)
    p.add_argument("--workers", type=int, default=2)
    a = p.parse_args(argv)
    videos = sorted(str(f) for d in a.folders for f in Path(d).iterdir()
                    if f.suffix.lower().lstrip(".") in VIDEO_EXTENSIONS)
    with ProcessPoolExecutor(a.workers, mp_context=get_context("spawn")) as ex:
        futs = [ex.submit(_one, v, a.cache) for v in videos]
        for i, f in enumerate(as_completed(futs), 1):
            try:
                v, n, s = f.result()
                print(f"[{i}/{len(videos)}] {Path(v).name}: {n} frames, {s:.1f} s", file=sys.stderr)
            except Exception as e:  # noqa: BLE001 - a bad file is reported, the rest go on
                print(f"[{i}/{len(videos)}] failed: {e}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
