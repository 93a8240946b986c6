"""Live coaching in the real browser while the same dashboard analyses a video (issue 14, item 3).

    python -m bench.bench_live_browser [--camera squat_1.mp4] [--load squat_4.mp4] [--fps 30]
                                       [--load-via dashboard|process]

(from the checkout's root, as a module: the browser helpers are the browser tests', tests/browser_utils.py).

What it does (inside a private network namespace, as the live browser test: aiortc skips 127.0.0.1):
starts the dashboard (`streamlit run`, its own workspace), opens the Live page in headless Chromium with a fake
camera (the clip as a 640x480 .y4m at --fps, looped by Chromium; the page asks for 15 fps), presses START, and
reads what the page shows under the video: processed fps, ms per analysed frame, and how far the overlay is
behind the camera (median and 95th percentile over the last 300 frames: from the capture timestamp of the
frame the overlay shows, aligned on the frame that arrived soonest, to the moment the overlay is drawn;
FreshFrames.stats). First idle, then while a second tab uploads --load on the Analyze page and the server
analyses it (a job: the analysis process with its pose pool, both cores), readings taken only while that job
runs and once the window (300 frames at the page's 15 fps) holds only frames from under load (the worst and the
median reading are reported). --load-via process
runs `gympose analyze` at nice 10 beside the server instead. At the end the camera is stopped and the count
shown is checked against the camera clip's reps per loop.

The browser runs on the same machine, on the same cores (its capture, VP8 encoding and decoding cost about
half a core at 15 fps); a user's browser runs on their own device. Prints a table and writes
bench/out/bench_live_browser.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pose_core.store.settings import shared_data_dir
from tests.browser_utils import (NETNS_PREFIX, VIEWPORT, StreamlitServer, browser, can_unshare, make_fake_camera,
                                 wait_for_app, wait_idle)

ROOT = Path(__file__).resolve().parent.parent

CAMERA_REPS = {"squat_1.mp4": 3}  # complete reps in one loop of the camera clip (annotated in videos.csv)
WINDOW_FRAMES = 300  # FreshFrames keeps the latency of the last 300 returned frames
PAGE_FPS = 15  # the Live page asks the camera for 15 fps: the window spans WINDOW_FRAMES / 15 = 20 s


def window_s(fps: int) -> float:
    """Seconds until the latency window holds only frames returned from now on."""
    return WINDOW_FRAMES / min(fps, PAGE_FPS) + 1


_DELAY = re.compile(r"overlay (\d+) ms behind the camera \(p95 (\d+) ms\)")
_FRAMES = re.compile(r"Frames processed: (\d+)")


def reading(page) -> dict:
    """What the Live page shows under the video right now."""
    out: dict = {}
    with contextlib.suppress(Exception):
        cap = page.locator('[data-testid="stCaptionContainer"]').filter(has_text="Frames processed").first
        text = cap.inner_text(timeout=2000)
        m = _DELAY.search(text)
        if m:
            out.update(median_ms=int(m.group(1)), p95_ms=int(m.group(2)))
        m = _FRAMES.search(text)
        if m:
            out["frames"] = int(m.group(1))
        m = re.search(r"(\d+) ms per frame", text)
        if m:
            out["analysis_ms"] = int(m.group(1))  # one frame through the live session (pose, counting, overlay)
        m = re.search(r"(\d+) late frames skipped", text)
        out["skipped"] = int(m.group(1)) if m else 0
    with contextlib.suppress(Exception):
        loc = page.locator('[data-testid="stMetric"]').filter(has_text="Processed").locator(
            '[data-testid="stMetricValue"]')
        m = re.match(r"(\d+) fps", loc.first.inner_text(timeout=2000).strip())
        if m:
            out["fps"] = int(m.group(1))
    with contextlib.suppress(Exception):
        loc = page.locator('[data-testid="stMetric"]').filter(has_text="Reps").locator('[data-testid="stMetricValue"]')
        out["reps"] = int(loc.first.inner_text(timeout=2000).strip())
    return out


def job_states(home: Path) -> list[str]:
    states = []
    for f in (home / "jobs").glob("*/status.json"):
        with contextlib.suppress(OSError, ValueError):
            states.append(json.loads(f.read_text()).get("state", ""))
    return states


def measure(y4m: Path, load_clip: Path, home: Path, idle_s: float, clip_s: float, fps: int,
            load_via: str = "dashboard", close_tab: bool = False) -> dict:
    flags = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
             f"--use-file-for-fake-video-capture={y4m}", "--allow-loopback-in-peer-connection",
             # the Live tab stays in the background while the other tab uploads: it must not be throttled
             "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
             "--disable-backgrounding-occluded-windows"]
    res: dict = {}
    with StreamlitServer(home) as server, browser(flags) as b:
        ctx = b.new_context(viewport=VIEWPORT)
        live = ctx.new_page()
        live.goto(f"{server.url}/live")
        wait_for_app(live, "Live coaching", 60)
        start = live.frame_locator("iframe").first.get_by_role("button", name="START")
        start.wait_for(timeout=30000)
        start.click()
        t_start = time.monotonic()
        while time.monotonic() - t_start < 60 and reading(live).get("frames", 0) == 0:
            time.sleep(0.5)
        res["first_frame_after_s"] = round(time.monotonic() - t_start, 1)
        # Idle: wait until the window holds only frames from now on.
        time.sleep(max(idle_s, window_s(fps)))
        res["idle"] = reading(live)
        if load_via == "process":  # another program on the machine, at the dashboard's background priority
            proc = subprocess.Popen(["nice", "-n", "10", sys.executable, "-m", "pose_core", "analyze",
                                     str(load_clip), "--exercise", exercise_of(load_clip.name), "--out",
                                     str(home / "cli-out")], cwd=ROOT, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            t0 = time.monotonic()
            while proc.poll() is None:
                if time.monotonic() - t0 >= window_s(fps):
                    res.setdefault("load_readings", []).append(reading(live))
                time.sleep(1.0)
            res["analysis_s"] = round(time.monotonic() - t0, 1)
            return finish(live, res, t_start, clip_s)
        # Under load: another tab uploads the load clip and the server analyses it.
        other = ctx.new_page()
        other.goto(server.url)
        wait_for_app(other, "Analyze a workout video", 60)
        other.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(str(load_clip))
        other.get_by_text(load_clip.name).first.wait_for(timeout=30000)
        run = other.get_by_role("button", name=re.compile("Analyze as "))
        run.wait_for(timeout=10000)
        wait_idle(other)
        run.click()
        t0 = None
        while time.monotonic() - (t0 or time.monotonic()) < 600:
            states = job_states(home)
            if close_tab and "running" in states and not other.is_closed():
                other.close()  # the job goes on without the page
            if "running" in states and t0 is None:
                t0 = time.monotonic()
            if t0 is not None and "running" not in states:
                break
            r = reading(live)
            if t0 is not None and time.monotonic() - t0 >= window_s(fps):  # only frames from under load
                res.setdefault("load_readings", []).append(r)
            time.sleep(1.0)
        res["analysis_s"] = round(time.monotonic() - t0, 1) if t0 else None
        res["job_states"] = job_states(home)
        return finish(live, res, t_start, clip_s)


def finish(live, res: dict, t_start: float, clip_s: float) -> dict:
    """Stop the camera; the count the page shows then is the session's final one."""
    res["elapsed_s"] = round(time.monotonic() - t_start, 1)
    res["loops"] = round(res["elapsed_s"] / clip_s, 2)
    with contextlib.suppress(Exception):
        live.frame_locator("iframe").first.get_by_role("button", name="STOP").click(timeout=10000)
    time.sleep(3.0)
    res["end"] = reading(live)
    return res


def exercise_of(name: str) -> str:
    return "jumping_jacks" if name.startswith("jumping_jacks") else name.rsplit("_", 1)[0]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", type=Path, default=shared_data_dir() / "videos")
    ap.add_argument("--camera", default="squat_1.mp4")
    ap.add_argument("--load", default="squat_4.mp4")
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--idle-s", type=float, default=12.0)
    ap.add_argument("--load-via", choices=("dashboard", "process"), default="dashboard",
                    help="the analysis: a job of the same dashboard (default), or `gympose analyze` at nice 10")
    ap.add_argument("--close-tab", action="store_true",
                    help="close the uploading tab once its job runs (the upload came from another device)")
    ap.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--y4m", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--home", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--json", type=Path, default=ROOT / "bench" / "out" / "bench_live_browser.json")
    args = ap.parse_args(argv)
    camera, load_clip = args.videos / args.camera, args.videos / args.load
    for f in (camera, load_clip):
        if not f.is_file():
            print(f"not found: {f} (set GYMPOSE_SHARED_DATA or --videos)", file=sys.stderr)
            return 2
    clip_s = 10.7 if args.camera == "squat_1.mp4" else 10.0
    if args.inside:
        try:
            res = measure(args.y4m, load_clip, args.home, args.idle_s, clip_s, args.fps, args.load_via,
                          args.close_tab)
        except Exception as e:
            res = {"error": f"{type(e).__name__}: {e}"}
        print("RESULT " + json.dumps(res), flush=True)
        return 0
    if not can_unshare():  # (skipped, not failed: the rest of `make bench` stands)
        print("live in the browser: skipped, it needs `unshare -n` (root) for a private network namespace "
              "(see ../shared/PLATFORM.md)")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        y4m = make_fake_camera(camera, Path(tmp) / "cam.y4m", seconds=clip_s, fps=args.fps)
        cmd = NETNS_PREFIX + [sys.executable, __file__, "--inside", "--y4m", str(y4m), "--home", str(Path(tmp) / "home"),
                              "--camera", args.camera, "--load", args.load, "--fps", str(args.fps),
                              "--idle-s", str(args.idle_s), "--videos", str(args.videos), "--load-via", args.load_via]
        cmd += ["--close-tab"] if args.close_tab else []
        out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900,
                             env=dict(os.environ, PYTHONPATH=str(ROOT)))
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")]
    if not lines:
        print(out.stdout[-3000:], out.stderr[-3000:], file=sys.stderr)
        return 1
    res = json.loads(lines[-1][len("RESULT "):])
    if "error" in res:
        print(res["error"], file=sys.stderr)
        return 1
    loads = res.get("load_readings") or []
    worst = max(loads, key=lambda r: r.get("p95_ms", 0)) if loads else {}
    # the typical reading: each figure's median over the readings (each reading is the last 300 frames)
    figures = ("fps", "analysis_ms", "median_ms", "p95_ms", "skipped")
    typical = {k: round(statistics.median(r[k] for r in loads if k in r)) for k in figures
               if any(k in r for r in loads)}
    per_loop = CAMERA_REPS.get(args.camera)
    reps = res["end"].get("reps")
    expected = (int(res["loops"]) * per_loop, int(res["loops"] + 1) * per_loop) if per_loop else None
    res.update(camera=args.camera, load=args.load, fps=args.fps, worst_under_load=worst, typical_under_load=typical,
               expected_reps=expected,
               reps_right=bool(expected and expected[0] <= (reps or 0) <= expected[1]))
    print(f"Live page in Chromium, fake camera {args.camera} at 640x480 {args.fps} fps "
          f"(first analysed frame {res['first_frame_after_s']} s after START)")
    print(f"{'':46} {'processed fps':>13} {'ms a frame':>10} {'latency median ms':>17} {'p95 ms':>8} "
          f"{'skipped':>8}")
    for label, r in (("idle", res["idle"]), (f"analysing {args.load} ({len(loads)} readings): worst", worst),
                     ("    median of the readings", typical)):
        print(f"{label:46} {r.get('fps', '-'):>13} {r.get('analysis_ms', '-'):>10} {r.get('median_ms', '-'):>17} "
              f"{r.get('p95_ms', '-'):>8} {r.get('skipped', '-'):>8}")
    print(f"analysis took {res['analysis_s']} s beside live; reps shown {reps} after {res['loops']} loops of the "
          f"camera clip (expected {expected[0]}-{expected[1]}): {'right' if res['reps_right'] else 'WRONG'}"
          if expected else f"reps shown {reps}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
