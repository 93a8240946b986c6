"""Upload-to-result of the dashboard in a real browser (issue 24), idle and beside CPU-bound programs, with the
bare MediaPipe loop on the same clip timed in the same run as the yardstick.

    python -m bench.bench_upload_browser [--clip squat_1.mp4 ...] [--exercise squat] [--hogs 2] [--rounds 1]
                                         [--timeout 300] [--json out.json]

(from the checkout's root, as a module: the browser helpers are the browser tests', tests/browser_utils.py).

What it does: starts the dashboard (`streamlit run`, a temporary workspace, analyses in their own process as
users run it), opens the Analyze page in headless Chromium (/usr/bin/chromium via Playwright) with the exercise
in the URL, waits until the server's analysis process has warmed its model and pose pool (--warm-s), then per
round and per condition (idle; then beside --hogs `python -c 'while 1: pass'` at ordinary priority, started
1 s before the upload and stopped once the video is there):
  - upload: the clip given to the file input, until the page lists it (the bytes sent to the server);
  - click: "Analyze as <exercise>" clicked; from there, timed in the browser (Playwright's own waits):
    `result_s` until the summary (the "Reps" figure) and the rep table are visible, `video_s` until the annotated
    video's download button is there (the video is drawn after the result); `job_done_s`: when the server's job
    published the result (its status.json), the rest of result_s is the page's (polling, drawing);
  - from the job's status.json (read from the workspace, not the page): whether the analysis said "busy" and
    when its first time-left estimate came;
  - bare: the bare single-process MediaPipe loop on the same clip (bench/bench_pipeline.py's `bare`: cv2
    decode + cvtColor + Pose.process, a fresh process timed from outside, start-up included), idle and beside
    the same hogs; ratio = bare_s / result_s (above 1: the result comes sooner than the bare loop's poses).
Also printed: loaded_over_idle = the best loaded result_s / the best idle result_s (issue 24's bar: under 3x);
the bare loop's CPU time and its `ceiling` (the ratio its own CPU work would reach spread over every core with
nothing else running: it already uses more than one core); the machine's busy CPU time from the click to the
result (`machine_cpu_s`: the job, the server, the browser) and Chromium's share of it.
The browser runs on the same cores as the server (Chromium's drawing of the progress costs some CPU); a
user's browser runs on their own device.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.bench_pipeline import exercise_of
from bench.bench_pipeline import run as run_mode
from pose_core.store.settings import shared_data_dir
from tests.browser_utils import CHROMIUM, VIEWPORT, StreamlitServer, browser, wait_for_app, wait_idle

ROOT = Path(__file__).resolve().parent.parent
HOG = "while 1: pass"


@contextlib.contextmanager
def hogs(n: int):
    """n CPU-bound programs at ordinary priority (1 s to get going), stopped at the end of the block."""
    procs = [subprocess.Popen([sys.executable, "-c", HOG]) for _ in range(n)]
    try:
        if procs:
            time.sleep(1.0)
        yield
    finally:
        for p in procs:
            p.kill()
            p.wait()


class StatusWatch:
    """Reads the jobs' status.json files in the workspace (a thread, 4 times a second): busy said, first eta."""

    def __init__(self, jobs_dir: Path, t0: float):
        self.jobs_dir, self.t0 = jobs_dir, t0
        self.epoch0 = time.time()  # (status.json's times are the epoch's)
        self.last: dict = {}
        self.seen: set[str] = {p.name for p in jobs_dir.glob("*")} if jobs_dir.is_dir() else set()
        self.busy = False
        self.first_eta: tuple[float, float] | None = None
        self.stages: list[str] = []
        self._stop = threading.Event()
        self._th = threading.Thread(target=self._run, daemon=True)
        self._th.start()

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            for p in self.jobs_dir.glob("*/status.json") if self.jobs_dir.is_dir() else ():
                if p.parent.name in self.seen:
                    continue  # an earlier round's job
                with contextlib.suppress(OSError, ValueError):
                    s = json.loads(p.read_text())
                    self.last = s
                    self.busy |= bool(s.get("busy"))
                    if s.get("eta_s") is not None and self.first_eta is None:
                        self.first_eta = (round(time.perf_counter() - self.t0, 1), s["eta_s"])
                    if s.get("stage") and (not self.stages or self.stages[-1] != s["stage"]):
                        self.stages.append(s["stage"])

    def stop(self) -> dict:
        """What was seen; job_started_s / job_done_s: the server's own times (from the click), so the page's
        share (its polling every JOB_POLL_S, drawing the result) is result_s - job_done_s."""
        self._stop.set()
        self._th.join(timeout=2)
        out = {"busy_said": self.busy, "first_eta": self.first_eta, "stages": self.stages}
        for key, field in (("job_started_s", "started"), ("job_done_s", "finished")):
            if self.last.get(field):
                out[key] = round(self.last[field] - self.epoch0, 2)
        return out


def upload_and_time(page, url: str, clip: Path, exercise: str, jobs_dir: Path, timeout_s: float) -> dict:
    """One upload on a fresh Analyze page: the times from the click to the result and to the video."""
    page.goto(f"{url}/?exercise={exercise}")
    wait_for_app(page, "Analyze a workout video", 60)
    t_up = time.perf_counter()
    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(str(clip))
    page.get_by_text(clip.name).first.wait_for(timeout=60000)
    run = page.get_by_role("button", name=re.compile("Analyze as "))
    run.wait_for(timeout=30000)
    wait_idle(page)
    upload_s = time.perf_counter() - t_up
    main = page.locator('[data-testid="stMain"]')
    t0 = time.perf_counter()
    watch = StatusWatch(jobs_dir, t0)
    cpu = CpuUse()
    out: dict = {"upload_s": round(upload_s, 2)}
    try:
        run.click()
        main.locator('[data-testid="stMetric"]').filter(has_text="Reps").first.wait_for(timeout=timeout_s * 1000)
        out["summary_s"] = round(time.perf_counter() - t0, 2)
        main.locator('[data-testid="stDataFrame"]').first.wait_for(timeout=timeout_s * 1000)
        out["result_s"] = round(time.perf_counter() - t0, 2)  # the summary and the rep table both visible
        out.update(cpu.read())  # (click to result: the job, the server, the browser, anything else running)
        page.get_by_role("button", name="Annotated video (mp4)").wait_for(timeout=timeout_s * 1000)
        out["video_s"] = round(time.perf_counter() - t0, 2)
        with contextlib.suppress(Exception):
            out["reps_shown"] = main.locator('[data-testid="stMetric"]').filter(has_text="Reps").first.locator(
                '[data-testid="stMetricValue"]').inner_text(timeout=2000).strip()
    except Exception as e:  # a timeout: reported with what was reached
        out["error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
    finally:
        out.update(watch.stop())
    out["load"] = round(os.getloadavg()[0], 2)
    return out


def bare(clip: Path) -> dict:
    """The bare loop's time and CPU time; `ceiling`: the ratio its own CPU work would reach spread over every
    core with nothing else running (bare_s / (cpu_s / cores)): the bare loop already uses more than one core
    (MediaPipe's own threads, OpenCV's decoder), so two cores cannot give it 2x."""
    r = run_mode("bare", clip)
    cores = os.cpu_count() or 1
    return {"bare_s": round(r["seconds"], 2), "bare_cpu_s": r["cpu_s"], "frames": r["frames"],
            "ceiling": round(r["seconds"] / (r["cpu_s"] / cores), 2) if r["cpu_s"] else None,
            "load": round(os.getloadavg()[0], 2)}


class CpuUse:
    """CPU time used on the whole machine (busy: all but idle and I/O wait) and by Chromium's processes (the
    browser's share), from start() to read()."""

    def __init__(self):
        import psutil

        self._psutil = psutil
        self.start()

    def _chromium(self) -> float:
        t = 0.0
        for p in self._psutil.Process().children(recursive=True):
            try:
                if "chrom" in p.name().lower() or "headless" in p.name().lower():
                    c = p.cpu_times()
                    t += c.user + c.system
            except self._psutil.Error:
                pass
        return t

    def _machine(self) -> float:
        c = self._psutil.cpu_times()
        return sum(c) - c.idle - getattr(c, "iowait", 0.0)

    def start(self) -> None:
        self._m0, self._c0 = self._machine(), self._chromium()

    def read(self) -> dict:
        return {"machine_cpu_s": round(self._machine() - self._m0, 2),
                "chromium_cpu_s": round(self._chromium() - self._c0, 2)}


def measure(clips: list[tuple[Path, str]], n_hogs: int, rounds: int, warm_s: float, timeout_s: float) -> list[dict]:
    """Each (clip, exercise) in turn on one server (its analysis process kept warm between them, as a server
    keeps it): idle, then beside n_hogs CPU-bound programs, `rounds` times."""
    results = [{"clip": clip.name, "exercise": ex, "hogs": n_hogs, "idle": [], "loaded": []} for clip, ex in clips]
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:  # (a timed-out job may still write)
        home = Path(tmp) / "gympose"
        with StreamlitServer(home) as server, browser() as b:
            ctx = b.new_context(viewport=VIEWPORT)
            page = ctx.new_page()
            page.goto(f"{server.url}/?exercise={clips[0][1]}")
            wait_for_app(page, "Analyze a workout video", 60)
            time.sleep(warm_s)  # the analysis process starts with the page's first run and warms its pose pool
            conditions = [("idle", 0)] + ([("loaded", n_hogs)] if n_hogs > 0 else [])
            for (clip, exercise), res in zip(clips, results):
                for _ in range(rounds):
                    for kind, n in conditions:
                        with hogs(n):
                            r = bare(clip)
                            r.update(upload_and_time(page, server.url, clip, exercise, home / "jobs", timeout_s))
                        if r.get("result_s"):
                            r["ratio_result"] = round(r["bare_s"] / r["result_s"], 2)
                        if r.get("video_s"):
                            r["ratio_video"] = round(r["bare_s"] / r["video_s"], 2)
                        res[kind].append(r)
                        print(clip.name, kind, json.dumps(r), flush=True)
                        time.sleep(3)
    return [summarise(res) for res in results]


def summarise(res: dict) -> dict:
    for kind in ("idle", "loaded"):
        done = [r for r in res[kind] if r.get("result_s")]
        if done:
            res[f"best_{kind}"] = min(done, key=lambda r: r["result_s"])
    if "best_idle" in res and "best_loaded" in res:
        res["loaded_over_idle"] = round(res["best_loaded"]["result_s"] / res["best_idle"]["result_s"], 2)
    return res


def table(res: dict) -> str:
    head = (f"{res['clip']} ({res['exercise']}), click to result / to the annotated video, in Chromium; bare loop "
            "on the same clip, same conditions")
    lines = [head, f"{'':22} {'upload s':>8} {'result s':>8} {'(job done)':>10} {'video s':>8} {'bare s':>7} "
                   f"{'bare/result':>11} {'bare/video':>10} {'busy said':>9} {'load':>5} {'bare CPU-s':>10} "
                   f"{'ceiling':>7} {'CPU-s to result':>15} {'(Chromium)':>10}"]
    for kind in ("idle", "loaded"):
        for r in res[kind]:
            label = "idle" if kind == "idle" else f"+ {res['hogs']} CPU-bound programs"
            lines.append(f"{label:22} {r.get('upload_s', '-'):>8} {r.get('result_s', '-'):>8} "
                         f"{r.get('job_done_s', '-'):>10} {r.get('video_s', '-'):>8} "
                         f"{r.get('bare_s', '-'):>7} {r.get('ratio_result', '-'):>11} {r.get('ratio_video', '-'):>10} "
                         f"{str(r.get('busy_said', '-')):>9} {r.get('load', '-'):>5} {r.get('bare_cpu_s', '-'):>10} "
                         f"{r.get('ceiling', '-'):>7} {r.get('machine_cpu_s', '-'):>15} {r.get('chromium_cpu_s', '-'):>10}"
                         + (f"  {r['error']}" if 'error' in r else ""))
    if "loaded_over_idle" in res:
        lines.append(f"loaded / idle (best result_s each): {res['loaded_over_idle']:.2f}x")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", type=Path, default=shared_data_dir() / "videos")
    ap.add_argument("--clip", nargs="+", default=["squat_1.mp4"], help="one or more clips of --videos")
    ap.add_argument("--exercise", help="default: from each clip's name")
    ap.add_argument("--hogs", type=int, default=os.cpu_count() or 2,
                    help="CPU-bound programs beside the loaded run (0: idle only)")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--warm-s", type=float, default=8.0, help="wait after the first page load (pool warm-up)")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds per wait (result, video)")
    ap.add_argument("--json", type=Path, help="write the results here")
    a = ap.parse_args(argv)
    clips = [(a.videos / name, a.exercise or exercise_of(name)) for name in a.clip]
    missing = [str(c) for c, _ in clips if not c.is_file()]
    if missing:
        print(f"not found: {', '.join(missing)} (set GYMPOSE_SHARED_DATA or --videos)", file=sys.stderr)
        return 2
    if not CHROMIUM.exists():
        print(f"no Chromium at {CHROMIUM}", file=sys.stderr)
        return 2
    results = measure(clips, max(0, a.hogs), max(1, a.rounds), a.warm_s, a.timeout)
    print("\n\n".join(table(res) for res in results))
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(results, indent=1))
    return 0 if all("error" not in r for res in results for k in ("idle", "loaded") for r in res[k]) else 1


if __name__ == "__main__":
    sys.exit(main())
